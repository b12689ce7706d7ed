//! The crate-level error: each module's own error, kept as the source.

use crate::spec::bundle;
use crate::state::{id, lock, root};
use crate::{pipeline, rootless};

/// Every way a pinc lifecycle call can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Id(#[from] id::IdError),
    #[error(transparent)]
    Root(#[from] root::RootError),
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error(transparent)]
    Bundle(#[from] bundle::BundleError),
    #[error(transparent)]
    Spec(#[from] crate::spec::validate::SpecError),
    #[error(transparent)]
    Pipeline(#[from] pipeline::PipelineError),
    #[error(transparent)]
    Rootless(#[from] rootless::RootlessError),
    #[error(transparent)]
    CgroupPlan(#[from] crate::cgroup_plan::PlanError),
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error(transparent)]
    Exec(#[from] crate::process::exec::ExecError),
    #[error(transparent)]
    DevLinks(#[from] crate::mounts::devlinks::DevLinksError),
    #[error(transparent)]
    HookRelay(#[from] crate::process::hook_relay::RelayError),
    #[error("container {id:?} does not exist")]
    NotFound { id: String },
    #[error("container id {id:?} is already in use")]
    IdInUse { id: String },
    #[error("container {id:?} does not exist: a pinc that died half-way left it behind, and it was removed")]
    Reclaimed { id: String },
    #[error("cannot {action} container {id:?}: it is {status}{hint}")]
    WrongState {
        id: String,
        action: &'static str,
        status: String,
        hint: &'static str,
    },
    /// runc's wording for `delete` of a live container without --force.
    #[error("cannot delete container {id:?} that is not stopped: {status} (stop it first or use --force)")]
    NotStopped { id: String, status: String },
    #[error("invalid signal {0:?}")]
    Signal(String),
    /// `update --resources FILE` that is not a LinuxResources object.
    #[error("invalid resources in {path}")]
    Resources {
        path: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{what}")]
    Libcontainer {
        what: String,
        #[source]
        source: Box<libcontainer::error::LibcontainerError>,
    },
    #[error("{what}: {path}")]
    Io {
        what: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}")]
    Sys {
        what: String,
        #[source]
        source: nix::Error,
    },
    #[error("invalid {what}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Affinity(#[from] pinc_cgroup::AffinityError),
    #[error(transparent)]
    Oom(#[from] pinc_cgroup::oom::OomError),
    #[error(transparent)]
    Cgroup(#[from] Box<libcgroups::common::AnyManagerError>),
    #[error("{what}")]
    CgroupSetup {
        what: String,
        #[source]
        source: Box<libcgroups::common::CreateCgroupSetupError>,
    },
    #[error(transparent)]
    Interval(#[from] crate::container::events::IntervalError),
    /// `pinc spec` never overwrites a bundle's config.
    #[error("{path} exists; remove it first")]
    ConfigExists { path: std::path::PathBuf },
    /// Pausing, resuming, updating or reading stats needs the container's
    /// cgroup, which a rootless container without delegation does not have.
    #[error("cannot {action} container {id:?}: it runs rootless without delegated cgroups")]
    NoCgroups { id: String, action: &'static str },
    /// libcontainer created the container but did not report its init.
    #[error("libcontainer returned no init pid")]
    NoInitPid,
    /// pinc's own hugetlb cgroup (unknown to libcontainer) failed.
    #[error(transparent)]
    Hugetlb(#[from] pinc_cgroup::hugetlb::HugetlbError),
    /// pinc's own rdma cgroup (unknown to libcontainer) failed.
    #[error(transparent)]
    Rdma(#[from] pinc_cgroup::rdma::RdmaError),
}

impl Error {
    pub(crate) fn lib(
        what: impl Into<String>,
    ) -> impl FnOnce(libcontainer::error::LibcontainerError) -> Self {
        let what = what.into();
        move |source| Error::Libcontainer {
            what,
            source: Box::new(source),
        }
    }

    pub(crate) fn io(
        what: &'static str,
        path: impl Into<std::path::PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Error::Io { what, path, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
