//! hugetlb limits with reservations, where libcgroups cannot set them.
//!
//! A plain `hugetlb.<size>.max` is charged at page fault, so a job that maps
//! more than its share dies with SIGBUS at first touch. The reservation
//! files (`hugetlb.<size>.rsvd.max` in v2, `.rsvd.limit_in_bytes` in v1) are
//! charged at mmap, which then fails with ENOMEM: a clean error. libcgroups
//! writes the v1 files itself; on a hybrid host whose hugetlb controller
//! lives in the cgroup2 mount (while the others are v1) it refuses hugepage
//! limits outright, and on v2 it sets no reservation. This module covers both.

use std::fs;
use std::path::{Path, PathBuf};

use crate::mode::CgroupMount;

/// Errors writing hugetlb cgroup files.
#[derive(Debug, thiserror::Error)]
pub enum HugetlbError {
    #[error("failed to write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to create {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to remove {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A limit for one page size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// The kernel's name of the size: "2MB", "1GB", "64KB".
    pub page_size: String,
    pub bytes: u64,
}

/// "2MB" for 2048 KiB, "1GB" for 1048576 KiB, as the hugetlb files are named.
pub fn page_size_name(kb: u64) -> String {
    if kb >= 1024 * 1024 && kb % (1024 * 1024) == 0 {
        format!("{}GB", kb / (1024 * 1024))
    } else if kb >= 1024 && kb % 1024 == 0 {
        format!("{}MB", kb / 1024)
    } else {
        format!("{kb}KB")
    }
}

/// Where the hugetlb controller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A v1 hierarchy (libcgroups handles it, reservations included).
    V1,
    /// The cgroup2 mount at this path.
    V2(PathBuf),
    /// Nowhere: hugepage limits cannot be enforced.
    None,
}

/// Finds the hugetlb controller among the host's cgroup mounts (`root` is
/// the filesystem root the mount points are read under).
pub fn locate(root: &Path, mounts: &[CgroupMount]) -> Location {
    if mounts.iter().any(|m| {
        m.controllers
            .as_ref()
            .is_some_and(|c| c.iter().any(|c| c == "hugetlb"))
    }) {
        return Location::V1;
    }
    for m in mounts.iter().filter(|m| m.controllers.is_none()) {
        let dir = root.join(m.mount_point.strip_prefix("/").unwrap_or(&m.mount_point));
        let controllers = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
        if controllers.split_whitespace().any(|c| c == "hugetlb") {
            return Location::V2(dir);
        }
    }
    Location::None
}

fn write(path: PathBuf, text: &str) -> Result<(), HugetlbError> {
    fs::write(&path, text).map_err(|source| HugetlbError::Write { path, source })
}

/// The container's directory in a cgroup2 mount.
pub fn v2_dir(mount: &Path, cgroup_path: &Path) -> PathBuf {
    mount.join(cgroup_path.strip_prefix("/").unwrap_or(cgroup_path))
}

/// Writes `max` and `rsvd.max` for each limit into an existing v2 cgroup dir
/// (`rsvd.max` only where the kernel has it).
pub fn write_v2_limits(dir: &Path, limits: &[Limit]) -> Result<(), HugetlbError> {
    for l in limits {
        let max = dir.join(format!("hugetlb.{}.max", l.page_size));
        if max.exists() {
            write(max, &l.bytes.to_string())?;
        }
        let rsvd = dir.join(format!("hugetlb.{}.rsvd.max", l.page_size));
        if rsvd.exists() {
            write(rsvd, &l.bytes.to_string())?;
        }
    }
    Ok(())
}

/// In the cgroup2 mount `mount`: creates the container's cgroup (enabling
/// hugetlb in every parent on the way down), sets the limits with
/// reservations, and moves `pid` in.
pub fn apply_v2(
    mount: &Path,
    cgroup_path: &Path,
    limits: &[Limit],
    pid: i32,
) -> Result<PathBuf, HugetlbError> {
    let leaf = v2_dir(mount, cgroup_path);
    let mut dir = mount.to_path_buf();
    let relative = leaf.strip_prefix(mount).unwrap_or(&leaf).to_path_buf();
    for part in relative.components() {
        write(dir.join("cgroup.subtree_control"), "+hugetlb")?;
        dir.push(part);
        if !dir.exists() {
            fs::create_dir(&dir).map_err(|source| HugetlbError::Create {
                path: dir.clone(),
                source,
            })?;
        }
    }
    write_v2_limits(&leaf, limits)?;
    write(leaf.join("cgroup.procs"), &pid.to_string())?;
    Ok(leaf)
}

/// Removes the container's cgroup2 dir made by `apply_v2` (its processes
/// must be gone). A missing dir is fine.
pub fn remove_v2(mount: &Path, cgroup_path: &Path) -> Result<(), HugetlbError> {
    let leaf = v2_dir(mount, cgroup_path);
    match fs::remove_dir(&leaf) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(HugetlbError::Remove { path: leaf, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode::cgroup_mounts;

    #[test]
    fn size_names_match_the_kernel_files() {
        assert_eq!(page_size_name(2048), "2MB");
        assert_eq!(page_size_name(1048576), "1GB");
        assert_eq!(page_size_name(64), "64KB");
        assert_eq!(page_size_name(32768), "32MB");
    }

    #[test]
    fn locates_hugetlb_in_v1_v2_or_nowhere() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let v1 =
            cgroup_mounts("40 30 0:40 / /sys/fs/cgroup/hugetlb rw - cgroup cgroup rw,hugetlb\n");
        assert_eq!(locate(root, &v1), Location::V1);
        let hybrid = cgroup_mounts("31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n");
        assert_eq!(locate(root, &hybrid), Location::None);
        fs::create_dir_all(root.join("sys/fs/cgroup/unified")).expect("mkdir");
        fs::write(
            root.join("sys/fs/cgroup/unified/cgroup.controllers"),
            "hugetlb\n",
        )
        .expect("write");
        assert_eq!(
            locate(root, &hybrid),
            Location::V2(root.join("sys/fs/cgroup/unified"))
        );
    }

    #[test]
    fn apply_v2_on_a_tree() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mount = dir.path();
        // cgroupfs creates the interface files; a plain tree needs them made.
        let leaf = mount.join("pinc/c1");
        fs::create_dir_all(&leaf).expect("mkdir");
        for f in ["hugetlb.2MB.max", "hugetlb.2MB.rsvd.max", "cgroup.procs"] {
            fs::write(leaf.join(f), "max").expect("file");
        }
        let limits = [Limit {
            page_size: "2MB".into(),
            bytes: 8 << 20,
        }];
        apply_v2(mount, Path::new("/pinc/c1"), &limits, 42).expect("apply");
        assert_eq!(
            fs::read_to_string(leaf.join("hugetlb.2MB.rsvd.max")).expect("read"),
            "8388608"
        );
        assert_eq!(
            fs::read_to_string(leaf.join("hugetlb.2MB.max")).expect("read"),
            "8388608"
        );
        assert_eq!(
            fs::read_to_string(leaf.join("cgroup.procs")).expect("read"),
            "42"
        );
        assert_eq!(
            fs::read_to_string(mount.join("pinc/cgroup.subtree_control")).expect("read"),
            "+hugetlb"
        );
    }
}
