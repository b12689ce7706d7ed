//! Whether the caller may manage cgroups below its own: the difference between
//! a login node (nothing delegated, cgroup v1) and a systemd user slice with
//! cgroup v2 delegation.

use std::path::PathBuf;

use nix::unistd::{access, AccessFlags};

use crate::CallerCgroups;

/// The v1 controllers libcontainer places every container into.
pub const V1_CONTROLLERS: &[&str] = &[
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
];

/// What the caller may write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    /// Cgroup directories the caller would need to create children in but cannot.
    pub not_writable: Vec<PathBuf>,
}

impl Delegation {
    /// Checks the caller's own directory in each mounted v1 controller and,
    /// when no v1 controller exists, its cgroup2 directory.
    pub fn check(caller: &CallerCgroups) -> Self {
        let mut dirs: Vec<PathBuf> = V1_CONTROLLERS
            .iter()
            .filter_map(|c| caller.v1_dir(c))
            .collect();
        if dirs.is_empty() {
            dirs.extend(caller.v2_dir());
        }
        dirs.sort();
        dirs.dedup();
        let not_writable = dirs
            .into_iter()
            .filter(|d| access(d, AccessFlags::W_OK | AccessFlags::X_OK).is_err())
            .collect();
        Self { not_writable }
    }

    /// True when every needed directory is writable.
    pub fn is_delegated(&self) -> bool {
        self.not_writable.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn read_only_dirs_are_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        fs::create_dir_all(root.join("proc/self")).expect("proc");
        fs::write(
            root.join("proc/self/mountinfo"),
            "33 30 0:29 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n\
             34 30 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
        )
        .expect("mountinfo");
        fs::write(root.join("proc/self/cgroup"), "3:pids:/a\n4:memory:/b\n").expect("cgroup");
        let pids = root.join("sys/fs/cgroup/pids/a");
        let memory = root.join("sys/fs/cgroup/memory/b");
        fs::create_dir_all(&pids).expect("pids");
        fs::create_dir_all(&memory).expect("memory");
        let caller = CallerCgroups::read(root).expect("read");
        assert!(Delegation::check(&caller).is_delegated());

        fs::set_permissions(&memory, fs::Permissions::from_mode(0o555)).expect("chmod");
        let delegation = Delegation::check(&caller);
        // root bypasses mode bits; only an unprivileged run sees the denial.
        if nix::unistd::geteuid().is_root() {
            assert!(delegation.is_delegated());
        } else {
            assert_eq!(delegation.not_writable, vec![memory]);
        }
    }
}
