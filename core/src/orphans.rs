//! A `create` (or `exec`) killed half-way must not make `kill` and
//! `delete --force` of its container hang.
//!
//! The process libcontainer forks for the container (comm `youki:[...]`,
//! still pinc's code before it execs the container's program) inherits the
//! descriptor of the container's lock file: close-on-exec only closes it at
//! an exec that never comes once its parent died, since it then waits on its
//! channel, or on a hook, forever. The `flock` stays held, and every later
//! command on the id waits for it. Such holders are found through
//! /proc/locks (the lock's owner, the pinc that took it, is dead) and the
//! descriptors in /proc/<pid>/fd, and killed.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// libcontainer names its forked processes `youki:[1:INTER]`, `youki:[2:INIT]`.
const FORKED_COMM: &str = "youki:[";

/// `MAJ:MIN:INO` as /proc/locks names a file (major and minor in hex).
fn lock_key(dev: u64, ino: u64) -> String {
    format!(
        "{:02x}:{:02x}:{ino}",
        nix::sys::stat::major(dev),
        nix::sys::stat::minor(dev)
    )
}

/// The pid that took the lock named `key`, from /proc/locks text (waiters,
/// the `->` lines, are not owners).
fn owner(locks: &str, key: &str) -> Option<i32> {
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) == Some(&"->") || fields.get(1) != Some(&"FLOCK") {
            return None;
        }
        if fields.get(5) != Some(&key) {
            return None;
        }
        fields.get(4)?.parse().ok()
    })
}

/// Whether `pid` runs (a zombie has let go of its descriptors).
fn alive(proc: &Path, pid: i32) -> bool {
    let stat = fs::read_to_string(proc.join(pid.to_string()).join("stat")).unwrap_or_default();
    // "pid (comm) S ...": the state follows the last ')'.
    match stat.rsplit_once(')') {
        Some((_, rest)) => !matches!(rest.trim_start().chars().next(), Some('Z' | 'X') | None),
        None => false,
    }
}

/// Processes under `proc` that libcontainer forked and that hold the lock
/// file `lock` open, when the pinc that took the lock is gone.
pub fn orphaned_holders(proc: &Path, lock: &Path) -> Vec<i32> {
    let Ok(meta) = fs::metadata(lock) else {
        return Vec::new();
    };
    let (dev, ino) = (meta.dev(), meta.ino());
    let locks = fs::read_to_string(proc.join("locks")).unwrap_or_default();
    let Some(owner) = owner(&locks, &lock_key(dev, ino)) else {
        return Vec::new();
    };
    if owner > 0 && alive(proc, owner) {
        return Vec::new(); // A live command holds it: wait for it.
    }
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
        let holds = fds
            .flatten()
            .any(|fd| fs::metadata(fd.path()).is_ok_and(|m| m.dev() == dev && m.ino() == ino));
        if holds {
            found.push(pid);
        }
    }
    found
}

/// Kills the orphaned holders of `lock` (see the module doc); returns
/// whether there were any.
pub fn kill_holders(lock: &Path) -> bool {
    let pids = orphaned_holders(Path::new("/proc"), lock);
    for &pid in &pids {
        tracing::warn!(
            target: "pinc",
            "killing pid {pid}: a container process left behind by a create that died, holding {}",
            lock.display()
        );
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    !pids.is_empty()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    /// A fake /proc: pid 10 (forked by libcontainer) and pid 11 (a waiting
    /// pinc) hold the lock, pid 12 (forked) holds another file.
    fn fixture(owner: i32) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("tmp");
        let lock = dir.path().join("c1.lock");
        let other = dir.path().join("other");
        fs::write(&lock, "").expect("lock");
        fs::write(&other, "").expect("other");
        let proc = dir.path().join("proc");
        for (pid, comm, target) in [
            (10, "youki:[2:INIT]", &lock),
            (11, "pinc", &lock),
            (12, "youki:[2:INIT]", &other),
        ] {
            let fd = proc.join(format!("{pid}/fd"));
            fs::create_dir_all(&fd).expect("fd dir");
            fs::write(proc.join(format!("{pid}/comm")), format!("{comm}\n")).expect("comm");
            let stat = format!("{pid} ({comm}) S 1 {pid} {pid}\n");
            fs::write(proc.join(format!("{pid}/stat")), stat).expect("stat");
            symlink(target, fd.join("4")).expect("fd link");
        }
        let meta = fs::metadata(&lock).expect("stat");
        let key = lock_key(meta.dev(), meta.ino());
        fs::write(
            proc.join("locks"),
            format!(
                "1: FLOCK  ADVISORY  WRITE 77 00:01:5 0 EOF\n\
                 2: FLOCK  ADVISORY  WRITE {owner} {key} 0 EOF\n\
                 2: -> FLOCK  ADVISORY  WRITE 11 {key} 0 EOF\n"
            ),
        )
        .expect("locks");
        (dir, lock)
    }

    #[test]
    fn finds_forked_holders_of_a_lock_whose_owner_died() {
        let (dir, lock) = fixture(999);
        assert_eq!(orphaned_holders(&dir.path().join("proc"), &lock), vec![10]);
    }

    #[test]
    fn a_live_owner_is_waited_for_a_zombie_is_not() {
        let (dir, lock) = fixture(11);
        let proc = dir.path().join("proc");
        assert!(orphaned_holders(&proc, &lock).is_empty());
        fs::write(proc.join("11/stat"), "11 (pinc) Z 1 11 11\n").expect("zombie");
        assert_eq!(orphaned_holders(&proc, &lock), vec![10]);
    }

    #[test]
    fn an_unheld_or_missing_lock_has_no_holders() {
        let (dir, _) = fixture(999);
        let proc = dir.path().join("proc");
        assert!(orphaned_holders(&proc, &dir.path().join("other")).is_empty());
        assert!(orphaned_holders(&proc, &dir.path().join("missing")).is_empty());
    }

    #[test]
    fn lock_keys_are_hex_device_numbers() {
        let dev = nix::sys::stat::makedev(254, 0);
        assert_eq!(lock_key(dev, 10058644), "fe:00:10058644");
    }
}
