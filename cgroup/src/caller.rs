//! The caller's own cgroups: which cgroup it sits in for each controller and
//! the cpuset it may use. A Slurm step or a Kubernetes pod confines pinc's
//! caller; pinc must plan within that, never widen it.

use std::fs;
use std::path::{Path, PathBuf};

use crate::mode::{cgroup_mounts, CgroupMount};
use pinc_cpulist::CpuList;

/// Errors reading the caller's cgroups.
#[derive(Debug, thiserror::Error)]
pub enum CallerError {
    #[error("failed to read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid cpu list in {path}")]
    List {
        path: PathBuf,
        #[source]
        source: pinc_cpulist::CpuListError,
    },
}

/// One line of /proc/<pid>/cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// Empty for the cgroup2 line ("0::/path").
    pub controllers: Vec<String>,
    pub path: String,
}

/// Where the caller sits in each hierarchy, resolved to cgroupfs directories.
#[derive(Debug, Clone)]
pub struct CallerCgroups {
    /// The filesystem root everything is read under ("/" on a live host).
    root: PathBuf,
    mounts: Vec<CgroupMount>,
    memberships: Vec<Membership>,
}

fn read(path: &Path) -> Result<String, CallerError> {
    fs::read_to_string(path).map_err(|source| CallerError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses /proc/<pid>/cgroup text.
pub fn parse_memberships(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            Some(Membership {
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                path: path.to_string(),
            })
        })
        .collect()
}

impl CallerCgroups {
    /// Reads `<root>/proc/self/{mountinfo,cgroup}`.
    pub fn read(root: &Path) -> Result<Self, CallerError> {
        Self::read_of(root, "self")
    }

    /// Another process's cgroups (`<root>/proc/<pid>/cgroup`), resolved
    /// against our own mounts.
    pub fn read_pid(root: &Path, pid: i32) -> Result<Self, CallerError> {
        Self::read_of(root, &pid.to_string())
    }

    fn read_of(root: &Path, pid: &str) -> Result<Self, CallerError> {
        let proc_self = root.join("proc/self");
        let mounts = cgroup_mounts(&read(&proc_self.join("mountinfo"))?);
        let memberships = parse_memberships(&read(&root.join("proc").join(pid).join("cgroup"))?);
        Ok(Self {
            root: root.to_path_buf(),
            mounts,
            memberships,
        })
    }

    pub fn mounts(&self) -> &[CgroupMount] {
        &self.mounts
    }

    /// The caller's directory for a v1 controller, if that controller is mounted.
    pub fn v1_dir(&self, controller: &str) -> Option<PathBuf> {
        let mount = self.mounts.iter().find(|m| {
            m.controllers
                .as_ref()
                .is_some_and(|c| c.iter().any(|c| c == controller))
        })?;
        let member = self
            .memberships
            .iter()
            .find(|m| m.controllers.iter().any(|c| c == controller))?;
        Some(self.resolve(mount, &member.path))
    }

    /// The caller's cgroup2 directory, if a cgroup2 hierarchy is mounted.
    pub fn v2_dir(&self) -> Option<PathBuf> {
        let mount = self.mounts.iter().find(|m| m.controllers.is_none())?;
        let member = self.memberships.iter().find(|m| m.controllers.is_empty())?;
        Some(self.resolve(mount, &member.path))
    }

    /// Joins a membership path onto its mount, accounting for a mount whose
    /// root is not the hierarchy root (cgroup namespaces, bind mounts).
    fn resolve(&self, mount: &CgroupMount, path: &str) -> PathBuf {
        let relative = Path::new(path)
            .strip_prefix(&mount.root)
            .unwrap_or_else(|_| Path::new(path.trim_start_matches('/')));
        let relative = relative.strip_prefix("/").unwrap_or(relative);
        let mount_point = mount
            .mount_point
            .strip_prefix("/")
            .unwrap_or(&mount.mount_point);
        self.root.join(mount_point).join(relative)
    }

    /// The CPUs the caller's cpuset allows (effective), if a cpuset controller
    /// is reachable; `None` means "no cpuset confinement visible".
    pub fn cpuset_cpus(&self) -> Result<Option<CpuList>, CallerError> {
        self.cpuset_file(
            "cpuset.effective_cpus",
            "cpuset.cpus.effective",
            "cpuset.cpus",
        )
    }

    /// The memory nodes the caller's cpuset allows (effective).
    pub fn cpuset_mems(&self) -> Result<Option<CpuList>, CallerError> {
        self.cpuset_file(
            "cpuset.effective_mems",
            "cpuset.mems.effective",
            "cpuset.mems",
        )
    }

    fn cpuset_file(
        &self,
        v1_name: &str,
        v2_name: &str,
        v1_fallback: &str,
    ) -> Result<Option<CpuList>, CallerError> {
        let candidates = [
            self.v1_dir("cpuset").map(|d| d.join(v1_name)),
            self.v1_dir("cpuset").map(|d| d.join(v1_fallback)),
            self.v2_dir().map(|d| d.join(v2_name)),
        ];
        for path in candidates.into_iter().flatten() {
            if path.exists() {
                let text = read(&path)?;
                let list = text
                    .parse()
                    .map_err(|source| CallerError::List { path, source })?;
                return Ok(Some(list));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, text).expect("write");
    }

    /// A hybrid host where the caller sits in a Slurm step's cpuset.
    fn fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(
            &root.join("proc/self/mountinfo"),
            "31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
             33 30 0:29 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n",
        );
        write(
            &root.join("proc/self/cgroup"),
            "7:cpuset:/slurm/uid_0/job_1/step_0\n0::/user.slice\n",
        );
        let step = root.join("sys/fs/cgroup/cpuset/slurm/uid_0/job_1/step_0");
        write(&step.join("cpuset.effective_cpus"), "2-3,6\n");
        write(&step.join("cpuset.effective_mems"), "0\n");
        dir
    }

    #[test]
    fn finds_the_callers_cpuset() {
        let dir = fixture();
        let caller = CallerCgroups::read(dir.path()).expect("read");
        assert_eq!(
            caller.v1_dir("cpuset").expect("cpuset dir"),
            dir.path()
                .join("sys/fs/cgroup/cpuset/slurm/uid_0/job_1/step_0")
        );
        assert_eq!(
            caller.v2_dir().expect("v2 dir"),
            dir.path().join("sys/fs/cgroup/unified/user.slice")
        );
        let cpus = caller.cpuset_cpus().expect("cpus").expect("some");
        assert_eq!(cpus.to_string(), "2-3,6");
        assert_eq!(
            caller
                .cpuset_mems()
                .expect("mems")
                .expect("some")
                .to_string(),
            "0"
        );
        assert_eq!(caller.v1_dir("memory"), None);
    }

    #[test]
    fn missing_files_name_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = CallerCgroups::read(dir.path()).expect_err("no proc");
        assert!(err.to_string().contains("proc/self/mountinfo"), "{err}");
    }
}
