//! Processes a `create` (or `exec`) killed half-way leaves behind.
//!
//! The process libcontainer forks for the container (comm `youki:[...]`,
//! still pinc's code before it execs the container's program) waits on its
//! channel to pinc, or on a hook, forever once pinc is gone: it never execs,
//! so close-on-exec never closes what it inherited. It still holds the id's
//! lock file (and an exec's view dir) open, which is how `reclaim` finds it
//! once the journal says its creator died. (The lock itself is a record
//! lock and died with pinc; see lock.rs.)

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// libcontainer names its forked processes `youki:[1:INTER]`, `youki:[2:INIT]`.
pub(crate) const FORKED_COMM: &str = "youki:[";

/// Whether `pid` runs under `proc` (a zombie does not).
pub(crate) fn alive(proc: &Path, pid: i64) -> bool {
    if pid <= 0 {
        return false;
    }
    let stat = fs::read_to_string(proc.join(pid.to_string()).join("stat")).unwrap_or_default();
    // "pid (comm) S ...": the state follows the last ')'.
    match stat.rsplit_once(')') {
        Some((_, rest)) => !matches!(rest.trim_start().chars().next(), Some('Z' | 'X') | None),
        None => false,
    }
}

/// Processes under `proc` that libcontainer forked and that have an open
/// descriptor for which `holds(target, metadata)` is true.
fn forked_holding(proc: &Path, holds: impl Fn(&Path, Option<&fs::Metadata>) -> bool) -> Vec<i32> {
    let Ok(entries) = fs::read_dir(proc) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let comm = fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if !comm.starts_with(FORKED_COMM) {
            continue;
        }
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let held = fds.flatten().any(|fd| {
            let target = fs::read_link(fd.path()).unwrap_or_default();
            holds(&target, fs::metadata(fd.path()).ok().as_ref())
        });
        if held {
            found.push(pid);
        }
    }
    found.sort_unstable();
    found
}

/// Forked processes holding `file` open (the same inode).
pub fn holders_of(proc: &Path, file: &Path) -> Vec<i32> {
    let Ok(meta) = fs::metadata(file) else {
        return Vec::new();
    };
    let (dev, ino) = (meta.dev(), meta.ino());
    forked_holding(proc, |_, m| {
        m.is_some_and(|m| m.dev() == dev && m.ino() == ino)
    })
}

/// Forked processes holding something under `dir` open (by path: the dir
/// may be gone already, its files with it).
pub fn holders_under(proc: &Path, dir: &Path) -> Vec<i32> {
    forked_holding(proc, |target, _| target.starts_with(dir))
}

/// SIGKILLs `pids`, saying why.
pub fn kill(pids: &[i32], why: &str) {
    for &pid in pids {
        tracing::warn!(target: "pinc", "killing pid {pid}: {why}");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    /// A fake /proc: pid 10 (forked by libcontainer) and pid 11 (a pinc)
    /// hold the lock, pid 12 (forked) holds a file in a view dir.
    fn fixture() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("tmp");
        let lock = dir.path().join("c1.lock");
        let view = dir.path().join("view");
        fs::create_dir(&view).expect("view");
        fs::write(&lock, "").expect("lock");
        fs::write(view.join("state.json"), "").expect("state");
        let proc = dir.path().join("proc");
        for (pid, comm, target) in [
            (10, "youki:[2:INIT]", lock.clone()),
            (11, "pinc", lock.clone()),
            (12, "youki:[1:INTER]", view.join("state.json")),
        ] {
            let fd = proc.join(format!("{pid}/fd"));
            fs::create_dir_all(&fd).expect("fd dir");
            fs::write(proc.join(format!("{pid}/comm")), format!("{comm}\n")).expect("comm");
            symlink(target, fd.join("4")).expect("fd link");
        }
        (dir, lock, view)
    }

    #[test]
    fn finds_forked_holders_of_a_file_or_a_dir() {
        let (dir, lock, view) = fixture();
        let proc = dir.path().join("proc");
        assert_eq!(holders_of(&proc, &lock), vec![10]);
        assert_eq!(holders_under(&proc, &view), vec![12]);
        fs::remove_dir_all(&view).expect("rm view");
        assert_eq!(
            holders_under(&proc, &view),
            vec![12],
            "by path, once gone too"
        );
    }

    #[test]
    fn a_missing_file_has_no_holders() {
        let (dir, _, _) = fixture();
        let proc = dir.path().join("proc");
        assert!(holders_of(&proc, &dir.path().join("missing")).is_empty());
    }
}
