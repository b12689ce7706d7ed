//! Removing one container's cgroup from every hierarchy, when nothing else
//! knows where it is: a create or delete that died half-way leaves dirs in
//! the v1 hierarchies libcontainer made, in the cgroup2 mount where pinc put
//! hugetlb (hybrid hosts) and in the rdma controller, with no state to say so.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::mode::CgroupMount;

/// Errors removing a container's cgroup dirs.
#[derive(Debug, thiserror::Error)]
pub enum TeardownError {
    #[error("failed to remove cgroup {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The container's dir in each mounted hierarchy where it exists, once per
/// hierarchy (a v1 hierarchy mounted twice, cpu and cpu,cpuacct, counts once).
pub fn dirs(mounts: &[CgroupMount], cgroup_path: &Path) -> Vec<PathBuf> {
    let relative = cgroup_path.strip_prefix("/").unwrap_or(cgroup_path);
    if relative.as_os_str().is_empty() || relative.components().any(|c| c.as_os_str() == "..") {
        return Vec::new();
    }
    let mut found: Vec<PathBuf> = Vec::new();
    for m in mounts {
        let dir = m.mount_point.join(relative);
        let canonical = fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
        if dir.is_dir()
            && !found
                .iter()
                .any(|f| fs::canonicalize(f).ok().as_ref() == Some(&canonical))
        {
            found.push(dir);
        }
    }
    found
}

/// Every process in `dir` and its sub-cgroups (`cgroup.procs` in each).
pub fn procs(dir: &Path) -> Vec<i32> {
    let mut pids: Vec<i32> = fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    for child in subdirs(dir) {
        pids.extend(procs(&child));
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// SIGKILLs what runs in the container's cgroups and waits (up to `wait`)
/// until they are empty; returns the pids it signalled.
pub fn kill_all(dirs: &[PathBuf], wait: Duration) -> Vec<i32> {
    let mut signalled = Vec::new();
    let deadline = Instant::now() + wait;
    loop {
        let pids: Vec<i32> = dirs.iter().flat_map(|d| procs(d)).collect();
        if pids.is_empty() || Instant::now() >= deadline {
            signalled.sort_unstable();
            signalled.dedup();
            return signalled;
        }
        for &pid in &pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        signalled.extend(pids);
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Removes `dir` and its sub-cgroups, deepest first (cgroupfs dirs are
/// removed with rmdir, their files go with them). A missing dir is fine.
/// A process that has just left `cgroup.procs` may still pin the cgroup
/// (EBUSY) while it exits: retried until `wait` has passed.
pub fn remove(dir: &Path, wait: Duration) -> Result<(), TeardownError> {
    for child in subdirs(dir) {
        remove(&child, wait)?;
    }
    let deadline = Instant::now() + wait;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(source) => {
                return Err(TeardownError::Remove {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(point: &Path, controllers: Option<&[&str]>) -> CgroupMount {
        CgroupMount {
            mount_point: point.to_path_buf(),
            root: "/".into(),
            controllers: controllers.map(|c| c.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn finds_the_dir_in_each_hierarchy_once_and_lists_nested_procs() {
        let tmp = tempfile::tempdir().expect("tmp");
        let (cpu, pids, unified) = (
            tmp.path().join("cpu,cpuacct"),
            tmp.path().join("pids"),
            tmp.path().join("unified"),
        );
        fs::create_dir_all(cpu.join("pinc/c1/sub")).expect("cpu");
        fs::create_dir_all(pids.join("pinc/other")).expect("pids");
        fs::create_dir_all(unified.join("pinc/c1")).expect("unified");
        std::os::unix::fs::symlink(&cpu, tmp.path().join("cpu")).expect("link");
        fs::write(cpu.join("pinc/c1/cgroup.procs"), "10\n11\n").expect("procs");
        fs::write(cpu.join("pinc/c1/sub/cgroup.procs"), "12\n10\n").expect("procs");
        let mounts = [
            mount(&cpu, Some(&["cpu", "cpuacct"])),
            mount(&tmp.path().join("cpu"), Some(&["cpu"])),
            mount(&pids, Some(&["pids"])),
            mount(&unified, None),
        ];
        let found = dirs(&mounts, Path::new("/pinc/c1"));
        assert_eq!(found, vec![cpu.join("pinc/c1"), unified.join("pinc/c1")]);
        assert_eq!(procs(&found[0]), vec![10, 11, 12]);
        assert!(dirs(&mounts, Path::new("/")).is_empty(), "never the root");
        assert!(dirs(&mounts, Path::new("/pinc/../pinc/c1")).is_empty());
    }

    #[test]
    fn remove_takes_children_first_and_tolerates_absence() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("c1");
        fs::create_dir_all(dir.join("a/b")).expect("dirs");
        remove(&dir, Duration::ZERO).expect("remove");
        assert!(!dir.exists());
        remove(&dir, Duration::ZERO).expect("absent is fine");
    }
}
