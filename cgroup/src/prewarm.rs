//! Starting the cgroup-attach grace period early.
//!
//! Moving a process between cgroups takes the kernel's global
//! `cgroup_threadgroup_rwsem` for writing, and the first writer after a quiet
//! period waits for a full RCU grace period (`rcu_sync_enter`): ~10 ms on
//! this project's hosts, a third of a container's create. Writers that come
//! while that grace period is running, or within one grace period after it,
//! pay only the rest of it. So `create` starts one at once, from a thread
//! that moves pinc into the cgroup it is already in (a no-op), while the
//! main thread parses the spec and forks libcontainer's processes, whose
//! own attach then waits less or not at all.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use crate::CallerCgroups;

/// The caller's own cgroup.procs in some hierarchy it may write (root only).
fn own_procs_file(caller: &CallerCgroups) -> Option<PathBuf> {
    ["pids", "cpu", "memory", "devices", "freezer"]
        .iter()
        .find_map(|c| caller.v1_dir(c))
        .or_else(|| caller.v2_dir())
        .map(|d| d.join("cgroup.procs"))
}

/// Starts the grace period in the background; returns at once. Does nothing
/// for unprivileged callers (their writes would fail anyway).
pub fn start(root: &std::path::Path) {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let Some(path) = CallerCgroups::read(root)
        .ok()
        .and_then(|c| own_procs_file(&c))
    else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("pinc-prewarm".into())
        .spawn(move || {
            // Signals sent to pinc must reach the main thread, not this one.
            let _ = nix::sys::signal::pthread_sigmask(
                nix::sys::signal::SigmaskHow::SIG_BLOCK,
                Some(&nix::sys::signal::SigSet::all()),
                None,
            );
            // "0" is the writing process itself; it is already there, so
            // nothing moves, but the kernel takes the lock all the same.
            if let Ok(mut f) = OpenOptions::new().write(true).open(&path) {
                let _ = f.write_all(b"0");
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_callers_own_procs_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("proc/self")).expect("proc");
        std::fs::write(
            root.join("proc/self/mountinfo"),
            "33 30 0:29 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n",
        )
        .expect("mountinfo");
        std::fs::write(root.join("proc/self/cgroup"), "3:pids:/user.slice\n").expect("cgroup");
        let caller = CallerCgroups::read(root).expect("read");
        assert_eq!(
            own_procs_file(&caller),
            Some(root.join("sys/fs/cgroup/pids/user.slice/cgroup.procs"))
        );
    }
}
