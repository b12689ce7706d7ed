//! The cgroup limits pinc applies itself, around libcontainer: hugetlb on
//! hosts where libcontainer's manager cannot (hybrid: the controller is on
//! cgroup2 beside v1 hierarchies; reservations), and RDMA, which libcgroups
//! ignores. Each is planned from the final spec before anything exists, so
//! a host that cannot enforce a limit refuses the create, and applied once
//! the init is there.

use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::Spec;
use pinc_cgroup::mode::{self, cgroup_mounts};
use pinc_cgroup::{hugetlb, rdma, CgroupMode};
use pinc_errkind::ErrorKind;

use crate::pipeline::HostRoots;

/// A limit this host cannot enforce, or could not apply.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("failed to read {}", path.display())]
    Mountinfo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("hugepage limits requested, but this host has no hugetlb cgroup controller")]
    NoHugetlb,
    #[error("hugetlb")]
    Hugetlb(#[source] hugetlb::HugetlbError),
    #[error("rdma")]
    Rdma(#[source] rdma::RdmaError),
}

impl PlanError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            PlanError::Mountinfo { .. } => ErrorKind::Internal,
            PlanError::NoHugetlb | PlanError::Hugetlb(_) | PlanError::Rdma(_) => {
                ErrorKind::Unsupported
            }
        }
    }
}

fn mountinfo(host: &HostRoots) -> Result<String, PlanError> {
    let path = host.join("/proc/self/mountinfo");
    std::fs::read_to_string(&path).map_err(|source| PlanError::Mountinfo { path, source })
}

/// What pinc must do itself for hugepage limits.
#[derive(Debug)]
pub struct HugetlbPlan {
    /// The cgroup2 mount holding the hugetlb controller.
    pub mount: PathBuf,
    limits: Vec<hugetlb::Limit>,
    /// libcontainer runs its v1 manager here (hybrid host): pinc makes the
    /// hugetlb cgroup itself. Otherwise (pure v2) pinc only adds reservations.
    pub own_cgroup: bool,
}

/// Decides who applies hugepage limits; on hybrid hosts removes them from
/// the spec libcontainer sees (its v1 manager refuses a controller that is
/// not a v1 hierarchy). v1 hosts need nothing: libcgroups writes limits and
/// reservations there.
pub fn hugetlb_plan(spec: &mut Spec, host: &HostRoots) -> Result<Option<HugetlbPlan>, PlanError> {
    let Some(mut linux) = spec.linux().clone() else {
        return Ok(None);
    };
    let Some(mut resources) = linux.resources().clone() else {
        return Ok(None);
    };
    let requested = resources.hugepage_limits().clone().unwrap_or_default();
    if requested.is_empty() {
        return Ok(None);
    }
    let mounts = cgroup_mounts(&mountinfo(host)?);
    let mount = match hugetlb::locate(&host.fs, &mounts) {
        hugetlb::Location::V1 => return Ok(None),
        hugetlb::Location::V2(mount) => mount,
        hugetlb::Location::None => return Err(PlanError::NoHugetlb),
    };
    let own_cgroup = mode::detect(&mounts) != CgroupMode::Unified;
    if own_cgroup {
        resources.set_hugepage_limits(None);
        linux.set_resources(Some(resources));
        spec.set_linux(Some(linux));
    }
    let limits = requested
        .iter()
        .map(|l| hugetlb::Limit {
            page_size: l.page_size().clone(),
            bytes: l.limit().max(0) as u64,
        })
        .collect();
    Ok(Some(HugetlbPlan {
        mount,
        limits,
        own_cgroup,
    }))
}

/// Applies hugepage limits with reservations; returns the cgroup2 mount when
/// pinc made the container's hugetlb cgroup (to remove it on delete).
pub fn apply_hugetlb(
    plan: &HugetlbPlan,
    cgroup_path: &Path,
    init_pid: i32,
) -> Result<Option<PathBuf>, PlanError> {
    if plan.own_cgroup {
        if let Err(e) = hugetlb::apply_v2(&plan.mount, cgroup_path, &plan.limits, init_pid) {
            let _ = hugetlb::remove_v2(&plan.mount, cgroup_path);
            return Err(PlanError::Hugetlb(e));
        }
        Ok(Some(plan.mount.clone()))
    } else {
        hugetlb::write_v2_limits(&hugetlb::v2_dir(&plan.mount, cgroup_path), &plan.limits)
            .map_err(PlanError::Hugetlb)?;
        Ok(None)
    }
}

/// What pinc must do itself for RDMA limits (libcgroups ignores them).
#[derive(Debug)]
pub struct RdmaPlan {
    /// The v1 rdma hierarchy or the cgroup2 mount holding the controller.
    pub mount: PathBuf,
    v1: bool,
    limits: Vec<rdma::Limit>,
    /// pinc makes the container's rdma cgroup (a v1 hierarchy, or cgroup2 on
    /// a hybrid host); otherwise libcontainer made it (unified host).
    pub own_cgroup: bool,
}

/// Checks `linux.resources.rdma` and finds the controller to apply it with;
/// fails when the host has none. `None` when the spec sets no RDMA limit.
pub fn rdma_plan(spec: &Spec, host: &HostRoots) -> Result<Option<RdmaPlan>, PlanError> {
    let Some(requested) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.rdma().as_ref())
        .filter(|r| !r.is_empty())
    else {
        return Ok(None);
    };
    // Sorted: rdma.max is written in a stable order.
    let mut hcas: Vec<_> = requested.iter().collect();
    hcas.sort_by(|a, b| a.0.cmp(b.0));
    let limits = hcas
        .into_iter()
        .map(|(hca, r)| rdma::Limit::new(hca, r.hca_handles(), r.hca_objects()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(PlanError::Rdma)?;
    let mounts = cgroup_mounts(&mountinfo(host)?);
    let (mount, v1) = match rdma::locate(&host.fs, &mounts) {
        rdma::Location::V1(mount) => (mount, true),
        rdma::Location::V2(mount) => (mount, false),
        rdma::Location::Missing => return Err(PlanError::Rdma(rdma::missing(&host.fs))),
    };
    let own_cgroup = v1 || mode::detect(&mounts) != CgroupMode::Unified;
    Ok(Some(RdmaPlan {
        mount,
        v1,
        limits,
        own_cgroup,
    }))
}

/// Applies RDMA limits; returns the mount when pinc made the container's
/// rdma cgroup (to remove it on delete).
pub fn apply_rdma(
    plan: &RdmaPlan,
    host: &HostRoots,
    cgroup_path: &Path,
    systemd: bool,
    init_pid: i32,
) -> Result<Option<PathBuf>, PlanError> {
    if plan.own_cgroup {
        let applied = if plan.v1 {
            rdma::apply_v1(&plan.mount, cgroup_path, &plan.limits, init_pid)
        } else {
            rdma::apply_v2(&plan.mount, cgroup_path, &plan.limits, Some(init_pid))
        };
        if let Err(e) = applied {
            let _ = rdma::remove(&plan.mount, cgroup_path);
            return Err(PlanError::Rdma(e));
        }
        return Ok(Some(plan.mount.clone()));
    }
    // Unified host: libcontainer's cgroup, which the systemd driver names
    // after a slice and scope, not after cgroupsPath (as libcgroups decides).
    let path = if systemd && !cgroup_path.is_absolute() {
        rdma::unified_cgroup_of(&host.fs, init_pid).map_err(PlanError::Rdma)?
    } else {
        cgroup_path.to_path_buf()
    };
    rdma::apply_v2(&plan.mount, &path, &plan.limits, None).map_err(PlanError::Rdma)?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_rdma(json: serde_json::Value) -> Spec {
        let mut spec = Spec::default();
        let mut linux = spec.linux().clone().expect("linux");
        let resources =
            serde_json::from_value(serde_json::json!({ "rdma": json })).expect("resources");
        linux.set_resources(Some(resources));
        spec.set_linux(Some(linux));
        spec
    }

    #[test]
    fn rdma_plan_needs_limits_and_plain_hca_names() {
        let host = HostRoots::host();
        assert!(rdma_plan(&Spec::default(), &host)
            .expect("no rdma")
            .is_none());
        assert!(rdma_plan(&with_rdma(serde_json::json!({})), &host)
            .expect("empty rdma")
            .is_none());
        // Names are checked before the host is: the same error everywhere.
        let err = rdma_plan(
            &with_rdma(serde_json::json!({"mlx5_0": {"hcaHandles": 1}, "../x": {}})),
            &host,
        )
        .expect_err("bad name");
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        let cause = std::error::Error::source(&err).expect("cause").to_string();
        assert!(cause.contains("invalid HCA name \"../x\""), "{cause}");
    }

    #[test]
    fn a_host_without_mountinfo_is_an_internal_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = HostRoots {
            fs: dir.path().to_path_buf(),
        };
        let err = rdma_plan(
            &with_rdma(serde_json::json!({"mlx5_0": {"hcaHandles": 1}})),
            &host,
        )
        .expect_err("no mountinfo");
        assert_eq!(err.kind(), ErrorKind::Internal);
        assert!(err.to_string().contains("proc/self/mountinfo"), "{err}");
    }
}
