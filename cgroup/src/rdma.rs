//! RDMA limits (`linux.resources.rdma`), which libcgroups ignores.
//!
//! The rdma controller caps how many HCA handles (verbs contexts) and HCA
//! objects (QPs, CQs, MRs, ...) a cgroup may hold per device, through
//! `rdma.max`. libcgroups knows no rdma controller in v1 or v2, so pinc makes
//! the container's rdma cgroup itself in a v1 hierarchy (or in the cgroup2
//! mount of a hybrid host), or, on a unified host where libcontainer made the
//! container's cgroup, enables `+rdma` above it and writes the limits.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::caller::parse_memberships;
use crate::mode::CgroupMount;

/// Errors checking or writing rdma cgroup files.
#[derive(Debug, thiserror::Error)]
pub enum RdmaError {
    #[error("linux.resources.rdma is set, but this kernel has no rdma cgroup controller (not in /proc/cgroups)")]
    Missing,
    #[error("linux.resources.rdma is set, but the rdma cgroup controller is not mounted (no cgroup v1 hierarchy or cgroup2 mount holds it)")]
    NotMounted,
    #[error("linux.resources.rdma: invalid HCA name {name:?} (must be non-empty, without '/' or whitespace)")]
    InvalidHca { name: String },
    #[error("failed to read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("process {pid} has no cgroup2 membership in {path}")]
    NoUnifiedCgroup { pid: i32, path: PathBuf },
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

/// The limits for one HCA; `None` is no limit (`max`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    hca: String,
    pub hca_handles: Option<u32>,
    pub hca_objects: Option<u32>,
}

impl Limit {
    /// A limit for the HCA `hca` (as in /sys/class/infiniband). The name is
    /// checked for shape only: the kernel refuses unknown devices on write.
    pub fn new(
        hca: &str,
        hca_handles: Option<u32>,
        hca_objects: Option<u32>,
    ) -> Result<Self, RdmaError> {
        if hca.is_empty() || hca.contains('/') || hca.chars().any(char::is_whitespace) {
            return Err(RdmaError::InvalidHca {
                name: hca.to_string(),
            });
        }
        Ok(Self {
            hca: hca.to_string(),
            hca_handles,
            hca_objects,
        })
    }

    pub fn hca(&self) -> &str {
        &self.hca
    }

    /// The `rdma.max` line: `mlx5_0 hca_handle=2 hca_object=max`.
    pub fn line(&self) -> String {
        let value = |v: Option<u32>| v.map_or_else(|| "max".to_string(), |n| n.to_string());
        format!(
            "{} hca_handle={} hca_object={}",
            self.hca,
            value(self.hca_handles),
            value(self.hca_objects)
        )
    }
}

/// Where the rdma controller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The v1 hierarchy mounted at this path.
    V1(PathBuf),
    /// The cgroup2 mount at this path.
    V2(PathBuf),
    /// Nowhere: rdma limits cannot be enforced (see [`missing`] for why).
    Missing,
}

/// `mount_point` read under `root`.
fn under(root: &Path, mount_point: &Path) -> PathBuf {
    root.join(mount_point.strip_prefix("/").unwrap_or(mount_point))
}

/// Finds the rdma controller among the host's cgroup mounts (`root` is the
/// filesystem root the mount points are read under).
pub fn locate(root: &Path, mounts: &[CgroupMount]) -> Location {
    let v1 = mounts.iter().find(|m| {
        m.controllers
            .as_ref()
            .is_some_and(|c| c.iter().any(|c| c == "rdma"))
    });
    if let Some(m) = v1 {
        return Location::V1(under(root, &m.mount_point));
    }
    for m in mounts.iter().filter(|m| m.controllers.is_none()) {
        let dir = under(root, &m.mount_point);
        let controllers = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
        if controllers.split_whitespace().any(|c| c == "rdma") {
            return Location::V2(dir);
        }
    }
    Location::Missing
}

/// Why [`locate`] found nothing: the kernel lacks the controller (not in
/// `<root>/proc/cgroups`), or has it but nothing mounts it.
pub fn missing(root: &Path) -> RdmaError {
    let cgroups = fs::read_to_string(root.join("proc/cgroups")).unwrap_or_default();
    let known = cgroups
        .lines()
        .filter(|l| !l.starts_with('#'))
        .any(|l| l.split_whitespace().next() == Some("rdma"));
    if known {
        RdmaError::NotMounted
    } else {
        RdmaError::Missing
    }
}

/// The container's directory in an rdma hierarchy or cgroup2 mount.
pub fn cgroup_dir(mount: &Path, cgroup_path: &Path) -> PathBuf {
    mount.join(cgroup_path.strip_prefix("/").unwrap_or(cgroup_path))
}

/// The cgroup2 path of `pid` ("/system.slice/x.scope"), from
/// `<root>/proc/<pid>/cgroup`: where the systemd driver put a container.
pub fn unified_cgroup_of(root: &Path, pid: i32) -> Result<PathBuf, RdmaError> {
    let path = root.join(format!("proc/{pid}/cgroup"));
    let text = fs::read_to_string(&path).map_err(|source| RdmaError::Read {
        path: path.clone(),
        source,
    })?;
    parse_memberships(&text)
        .into_iter()
        .find(|m| m.controllers.is_empty())
        .map(|m| PathBuf::from(m.path))
        .ok_or(RdmaError::NoUnifiedCgroup { pid, path })
}

fn write(path: PathBuf, text: &str) -> Result<(), RdmaError> {
    fs::write(&path, text).map_err(|source| RdmaError::Write { path, source })
}

fn create_dir(dir: &Path) -> Result<(), RdmaError> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(RdmaError::Create {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// Writes the limits into `<dir>/rdma.max`, one write per device: the kernel
/// parses a single device per write and refuses several lines at once.
pub fn write_limits(dir: &Path, limits: &[Limit]) -> Result<(), RdmaError> {
    let path = dir.join("rdma.max");
    let failed = |source| RdmaError::Write {
        path: path.clone(),
        source,
    };
    // No create: a missing rdma.max means no controller there, which the
    // kernel reports better than an empty file would.
    let mut file = OpenOptions::new().write(true).open(&path).map_err(failed)?;
    for l in limits {
        file.write_all(format!("{}\n", l.line()).as_bytes())
            .map_err(failed)?;
    }
    Ok(())
}

/// In the v1 rdma hierarchy at `mount`: creates the container's cgroup,
/// moves `pid` in and sets the limits. Returns the cgroup dir.
pub fn apply_v1(
    mount: &Path,
    cgroup_path: &Path,
    limits: &[Limit],
    pid: i32,
) -> Result<PathBuf, RdmaError> {
    let leaf = cgroup_dir(mount, cgroup_path);
    let mut dir = mount.to_path_buf();
    for part in leaf.strip_prefix(mount).unwrap_or(&leaf).components() {
        dir.push(part);
        create_dir(&dir)?;
    }
    write(leaf.join("cgroup.procs"), &pid.to_string())?;
    write_limits(&leaf, limits)?;
    Ok(leaf)
}

/// In the cgroup2 mount `mount`: enables rdma in every ancestor of the
/// container's cgroup (creating missing ones, and the cgroup itself), moves
/// `pid` in when given (pinc owns the cgroup on a hybrid host; on a unified
/// host libcontainer already did), and sets the limits. Returns the cgroup dir.
pub fn apply_v2(
    mount: &Path,
    cgroup_path: &Path,
    limits: &[Limit],
    pid: Option<i32>,
) -> Result<PathBuf, RdmaError> {
    let leaf = cgroup_dir(mount, cgroup_path);
    let mut dir = mount.to_path_buf();
    // Never the leaf's own subtree_control: a cgroup with processes cannot
    // enable controllers for children (EBUSY), and the limits go in the leaf.
    for part in leaf.strip_prefix(mount).unwrap_or(&leaf).components() {
        write(dir.join("cgroup.subtree_control"), "+rdma")?;
        dir.push(part);
        create_dir(&dir)?;
    }
    if let Some(pid) = pid {
        write(leaf.join("cgroup.procs"), &pid.to_string())?;
    }
    write_limits(&leaf, limits)?;
    Ok(leaf)
}

/// Removes the container's cgroup made by `apply_v1` or `apply_v2` (its
/// processes must be gone). A missing dir is fine.
pub fn remove(mount: &Path, cgroup_path: &Path) -> Result<(), RdmaError> {
    let leaf = cgroup_dir(mount, cgroup_path);
    match fs::remove_dir(&leaf) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(RdmaError::Remove { path: leaf, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode::cgroup_mounts;

    fn read(path: &Path) -> String {
        fs::read_to_string(path).expect("read")
    }

    #[test]
    fn lines_write_max_for_unset_fields() {
        let l = Limit::new("mlx5_0", Some(2), Some(100)).expect("limit");
        assert_eq!(l.line(), "mlx5_0 hca_handle=2 hca_object=100");
        let l = Limit::new("mlx5_1", None, Some(0)).expect("limit");
        assert_eq!(l.line(), "mlx5_1 hca_handle=max hca_object=0");
        let l = Limit::new("hfi1_0", None, None).expect("limit");
        assert_eq!(l.line(), "hfi1_0 hca_handle=max hca_object=max");
        assert_eq!(l.hca(), "hfi1_0");
    }

    #[test]
    fn hca_names_are_checked_for_shape() {
        for bad in ["", "../mlx5_0", "mlx5/0", "mlx5 0", "mlx5_0\n", "\tx"] {
            let err = Limit::new(bad, Some(1), None).expect_err(bad);
            assert!(matches!(&err, RdmaError::InvalidHca { name } if name == bad));
            assert!(err.to_string().contains("invalid HCA name"), "{err}");
        }
        // The device need not exist: the kernel checks it on write.
        Limit::new("no_such_hca", Some(1), None).expect("any plain name");
    }

    #[test]
    fn locates_rdma_in_v1_v2_or_nowhere() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let v1 = cgroup_mounts(
            "31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
             40 30 0:40 / /sys/fs/cgroup/rdma rw - cgroup cgroup rw,rdma\n",
        );
        assert_eq!(
            locate(root, &v1),
            Location::V1(root.join("sys/fs/cgroup/rdma"))
        );
        // This machine's layout: cgroup2 holds only hugetlb.
        let hybrid = cgroup_mounts(
            "31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
             32 30 0:28 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n",
        );
        let unified = root.join("sys/fs/cgroup/unified");
        fs::create_dir_all(&unified).expect("mkdir");
        fs::write(unified.join("cgroup.controllers"), "hugetlb\n").expect("write");
        assert_eq!(locate(root, &hybrid), Location::Missing);
        fs::write(unified.join("cgroup.controllers"), "hugetlb rdma misc\n").expect("write");
        assert_eq!(locate(root, &hybrid), Location::V2(unified));
    }

    #[test]
    fn missing_tells_absent_from_unmounted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        // No /proc/cgroups at all reads as "not in the kernel".
        assert!(matches!(missing(root), RdmaError::Missing));
        fs::create_dir_all(root.join("proc")).expect("mkdir");
        fs::write(
            root.join("proc/cgroups"),
            "#subsys_name\thierarchy\tnum_cgroups\tenabled\n\
             cpuset\t3\t16\t1\nhugetlb\t0\t4\t1\npids\t8\t16\t1\n",
        )
        .expect("write");
        let err = missing(root);
        assert!(matches!(err, RdmaError::Missing));
        assert_eq!(
            err.to_string(),
            "linux.resources.rdma is set, but this kernel has no rdma cgroup controller (not in /proc/cgroups)"
        );
        fs::write(
            root.join("proc/cgroups"),
            "#subsys_name\thierarchy\tnum_cgroups\tenabled\nrdma\t0\t1\t1\n",
        )
        .expect("write");
        assert!(matches!(missing(root), RdmaError::NotMounted));
    }

    #[test]
    fn apply_v1_on_a_tree() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mount = dir.path();
        // cgroupfs makes rdma.max in every new dir; a plain tree needs it made.
        let leaf = mount.join("pinc/c1");
        fs::create_dir_all(&leaf).expect("mkdir");
        fs::write(leaf.join("rdma.max"), "").expect("file");
        let limits = [
            Limit::new("mlx5_0", Some(2), Some(100)).expect("limit"),
            Limit::new("mlx5_1", None, Some(7)).expect("limit"),
        ];
        let made = apply_v1(mount, Path::new("/pinc/c1"), &limits, 42).expect("apply");
        assert_eq!(made, leaf);
        assert_eq!(read(&leaf.join("cgroup.procs")), "42");
        assert_eq!(
            read(&leaf.join("rdma.max")),
            "mlx5_0 hca_handle=2 hca_object=100\nmlx5_1 hca_handle=max hca_object=7\n"
        );
        assert!(
            !mount.join("cgroup.subtree_control").exists(),
            "v1 has no subtree_control"
        );
        // The processes gone, remove takes the leaf and tolerates a second call.
        fs::remove_file(leaf.join("cgroup.procs")).expect("rm");
        fs::remove_file(leaf.join("rdma.max")).expect("rm");
        remove(mount, Path::new("/pinc/c1")).expect("remove");
        assert!(!leaf.exists());
        assert!(mount.join("pinc").exists(), "the parent is kept");
        remove(mount, Path::new("/pinc/c1")).expect("remove again");
    }

    #[test]
    fn apply_v1_without_rdma_max_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let limits = [Limit::new("mlx5_0", Some(1), None).expect("limit")];
        let err = apply_v1(dir.path(), Path::new("/a/b"), &limits, 1).expect_err("no file");
        assert!(dir.path().join("a/b/cgroup.procs").exists());
        match err {
            RdmaError::Write { path, source } => {
                assert_eq!(path, dir.path().join("a/b/rdma.max"));
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn apply_v2_enables_rdma_in_every_ancestor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mount = dir.path();
        let leaf = mount.join("pinc/job/c1");
        fs::create_dir_all(&leaf).expect("mkdir");
        fs::write(leaf.join("rdma.max"), "").expect("file");
        let limits = [Limit::new("mlx5_0", Some(2), None).expect("limit")];
        // Hybrid host: pinc owns the cgroup and moves the pid in.
        apply_v2(mount, Path::new("/pinc/job/c1"), &limits, Some(7)).expect("apply");
        for ancestor in [
            mount.to_path_buf(),
            mount.join("pinc"),
            mount.join("pinc/job"),
        ] {
            assert_eq!(read(&ancestor.join("cgroup.subtree_control")), "+rdma");
        }
        assert!(
            !leaf.join("cgroup.subtree_control").exists(),
            "never the leaf's own"
        );
        assert_eq!(read(&leaf.join("cgroup.procs")), "7");
        assert_eq!(
            read(&leaf.join("rdma.max")),
            "mlx5_0 hca_handle=2 hca_object=max\n"
        );
    }

    #[test]
    fn apply_v2_on_a_unified_host_leaves_the_pid_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mount = dir.path();
        let leaf = mount.join("system.slice/pinc-c1.scope");
        fs::create_dir_all(&leaf).expect("mkdir");
        fs::write(leaf.join("rdma.max"), "").expect("file");
        let limits = [Limit::new("mlx5_0", None, Some(5)).expect("limit")];
        let made = apply_v2(
            mount,
            Path::new("system.slice/pinc-c1.scope"),
            &limits,
            None,
        )
        .expect("apply");
        assert_eq!(made, leaf);
        assert!(!leaf.join("cgroup.procs").exists());
        assert_eq!(
            read(&mount.join("system.slice/cgroup.subtree_control")),
            "+rdma"
        );
        assert_eq!(
            read(&leaf.join("rdma.max")),
            "mlx5_0 hca_handle=max hca_object=5\n"
        );
    }

    #[test]
    fn finds_the_cgroup2_path_of_a_pid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        fs::create_dir_all(root.join("proc/42")).expect("mkdir");
        fs::write(
            root.join("proc/42/cgroup"),
            "5:cpuset:/pinc/c1\n0::/system.slice/pinc-c1.scope\n",
        )
        .expect("write");
        assert_eq!(
            unified_cgroup_of(root, 42).expect("path"),
            PathBuf::from("/system.slice/pinc-c1.scope")
        );
        fs::write(root.join("proc/42/cgroup"), "5:cpuset:/pinc/c1\n").expect("write");
        assert!(matches!(
            unified_cgroup_of(root, 42),
            Err(RdmaError::NoUnifiedCgroup { pid: 42, .. })
        ));
        assert!(matches!(
            unified_cgroup_of(root, 43),
            Err(RdmaError::Read { .. })
        ));
    }
}
