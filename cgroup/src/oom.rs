//! `linux.resources.memory.disableOOMKiller` on cgroup v1, which libcgroups
//! never sets: libcontainer 0.7 passes it `false` whatever the spec says,
//! and its v1 memory controller then writes 0 to `memory.oom_control`.
//! runc writes 1 there. cgroup v2 has no such switch (runc ignores the field
//! there too).

use std::fs;
use std::path::{Path, PathBuf};

use crate::caller::{CallerCgroups, CallerError};

const OOM_CONTROL: &str = "memory.oom_control";

/// Errors disabling the OOM killer of a cgroup.
#[derive(Debug, thiserror::Error)]
pub enum OomError {
    #[error("failed to find the memory cgroup of pid {pid}")]
    Find {
        pid: i32,
        #[source]
        source: CallerError,
    },
    #[error("failed to disable the OOM killer: cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Writes 1 to `memory.oom_control` of the v1 memory cgroup that `pid` is in,
/// all paths read under `root` ("/" on a live host). Returns the file written,
/// or `None` when no v1 memory hierarchy is mounted (pure cgroup v2).
pub fn disable_v1(root: &Path, pid: i32) -> Result<Option<PathBuf>, OomError> {
    let cgroups =
        CallerCgroups::read_pid(root, pid).map_err(|source| OomError::Find { pid, source })?;
    let Some(dir) = cgroups.v1_dir("memory") else {
        return Ok(None);
    };
    let path = dir.join(OOM_CONTROL);
    fs::write(&path, "1").map_err(|source| OomError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, text).expect("write");
    }

    const MOUNTINFO: &str = "31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
         35 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";

    #[test]
    fn writes_oom_control_of_the_pids_memory_cgroup() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(&root.join("proc/self/mountinfo"), MOUNTINFO);
        write(&root.join("proc/self/cgroup"), "4:memory:/user.slice\n");
        write(&root.join("proc/42/cgroup"), "4:memory:/pinc/c1\n0::/\n");
        let file = root.join("sys/fs/cgroup/memory/pinc/c1/memory.oom_control");
        write(&file, "0");
        assert_eq!(disable_v1(root, 42).expect("disable"), Some(file.clone()));
        assert_eq!(fs::read_to_string(&file).expect("read"), "1");
    }

    #[test]
    fn pure_v2_has_nothing_to_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(
            &root.join("proc/self/mountinfo"),
            "31 30 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        );
        write(&root.join("proc/42/cgroup"), "0::/pinc/c1\n");
        assert_eq!(disable_v1(root, 42).expect("v2"), None);
    }

    #[test]
    fn errors_name_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(&root.join("proc/self/mountinfo"), MOUNTINFO);
        write(&root.join("proc/42/cgroup"), "4:memory:/pinc/gone\n");
        let err = disable_v1(root, 42).expect_err("no cgroup dir");
        assert!(
            err.to_string()
                .contains("sys/fs/cgroup/memory/pinc/gone/memory.oom_control"),
            "{err}"
        );
        let err = disable_v1(root, 7).expect_err("no such pid");
        let cause = std::error::Error::source(&err).expect("cause").to_string();
        assert!(cause.contains("proc/7/cgroup"), "{cause}");
    }
}
