//! One walker over `/proc` and readers of the per-process files the tests
//! look at. Processes come and go while a test runs: a file that cannot be
//! read is an empty or absent value, never an error.

use std::fs;

/// Pids of the processes in `/proc` (none when it cannot be read).
pub fn pids() -> Vec<i32> {
    fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// [`pids`] without this test process.
pub fn other_pids() -> Vec<i32> {
    let me = std::process::id() as i32;
    pids().into_iter().filter(|&pid| pid != me).collect()
}

/// The command line of `pid`, its arguments joined by spaces (with a
/// trailing space: each argument ends in NUL); empty when it is gone.
pub fn cmdline(pid: i32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// The environment of `pid` as `KEY=value` entries (empty when unreadable).
pub fn environ(pid: i32) -> Vec<Vec<u8>> {
    fs::read(format!("/proc/{pid}/environ"))
        .map(|env| {
            env.split(|b| *b == 0)
                .filter(|kv| !kv.is_empty())
                .map(<[u8]>::to_vec)
                .collect()
        })
        .unwrap_or_default()
}

/// (state, ppid) of `pid` from `/proc/<pid>/stat`.
pub fn stat(pid: i32) -> Option<(char, i32)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields follow the
    // last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Whether `pid` runs (a zombie or a gone process does not).
pub fn alive(pid: i32) -> bool {
    stat(pid).is_some_and(|(state, _)| !matches!(state, 'Z' | 'X'))
}

/// A signal mask line of `/proc/<pid>/status` ("SigCgt", "SigIgn",
/// "SigBlk"...) as bits (signal n is bit n - 1); None when it is gone.
pub fn signal_mask(pid: i32, field: &str) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hex = s
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_found_alive_with_its_command_line() {
        let me = std::process::id() as i32;
        assert!(pids().contains(&me));
        assert!(!other_pids().contains(&me));
        assert!(alive(me));
        assert_eq!(
            stat(me).map(|(_, ppid)| ppid),
            Some(nix::unistd::getppid().as_raw())
        );
        let exe = std::env::args().next().expect("argv[0]");
        assert!(
            cmdline(me).starts_with(&format!("{exe} ")),
            "{}",
            cmdline(me)
        );
        assert!(!environ(me).is_empty() || std::env::vars_os().next().is_none());
        assert_eq!(cmdline(-1), "");
    }

    #[test]
    fn signal_masks_show_an_ignored_signal() {
        let bit = 1u64 << (libc::SIGUSR2 - 1);
        let me = std::process::id() as i32;
        let before = signal_mask(me, "SigIgn").expect("SigIgn");
        // SAFETY: SIG_IGN for SIGUSR2 touches no Rust state; the old
        // disposition is put back below.
        let old = unsafe { libc::signal(libc::SIGUSR2, libc::SIG_IGN) };
        let during = signal_mask(me, "SigIgn").expect("SigIgn");
        // SAFETY: as above, restoring what was there.
        unsafe { libc::signal(libc::SIGUSR2, old) };
        assert_eq!(before & bit, 0, "SIGUSR2 ignored before: {before:x}");
        assert_ne!(during & bit, 0, "SIGUSR2 not shown ignored: {during:x}");
        assert_eq!(signal_mask(me, "NoSuchMask"), None);
        assert_eq!(signal_mask(-1, "SigIgn"), None);
    }
}
