//! The seam where pinc's HPC stages edit the spec between "load the bundle"
//! and "libcontainer creates": what a stage is ([`Stage`]), what it may know
//! ([`Context`], the [`Request`] read once), what it tells later stages
//! ([`Facts`]), and the runner, which records the stages that changed the
//! spec. It names no stage: they live in [`crate::stages`].
//!
//! Stages run in order; the first error aborts the create before anything
//! exists.

use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::Spec;
use pinc_cpulist::CpuList;
use pinc_errkind::ErrorKind;

use crate::cgroup_plan::{HugetlbPlan, RdmaPlan};
use crate::rootless::{IdMaps, Mode};
use crate::RuntimeRoot;

pub use pinc_request::{Request, RequestError};

/// Where the host's /proc, /sys and /dev are read from: "/" on a node, a
/// fixture tree in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoots {
    pub fs: PathBuf,
}

impl HostRoots {
    /// The machine pinc runs on.
    pub fn host() -> Self {
        Self {
            fs: PathBuf::from("/"),
        }
    }

    /// `path` (absolute, as on the host) under these roots.
    pub fn join(&self, path: &str) -> PathBuf {
        self.fs.join(path.trim_start_matches('/'))
    }
}

/// What a stage may know besides the spec.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub id: &'a str,
    /// The caller's bundle (canonical).
    pub bundle: &'a Path,
    /// The runtime root (for node-wide state such as the allocation ledger).
    pub root: &'a RuntimeRoot,
    /// How the container runs: as root, delegated, or in pinc's sandbox.
    pub mode: &'a Mode,
    /// cgroups are a systemd unit's (`--systemd-cgroup`).
    pub systemd_cgroup: bool,
    /// What the container asked pinc for.
    pub request: &'a Request,
    pub host: &'a HostRoots,
}

impl Context<'_> {
    /// The container runs without root on the host.
    pub fn rootless(&self) -> bool {
        *self.mode != Mode::Root
    }
}

/// The PCI bus ids (or HCA names) of the devices the container was given,
/// which placement keeps its CPUs near unless the request names its own.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeviceLocality(pub Vec<String>);

/// What stages learn that later stages, or create itself, need: typed,
/// never passed through the spec (where it would leak into `pinc state`).
#[derive(Debug, Default)]
pub struct Facts {
    pub device_locality: DeviceLocality,
    /// The CPUs to give the container's processes when the spec pins none:
    /// the caller's, which joining a cpuset cgroup would otherwise reset.
    pub keep_affinity: Option<CpuList>,
    /// The sandbox's user namespace mapping (rootless without delegation).
    pub id_maps: Option<IdMaps>,
    /// Hugepage limits pinc applies itself once the init exists.
    pub hugetlb: Option<HugetlbPlan>,
    /// RDMA limits pinc applies itself once the init exists.
    pub rdma: Option<RdmaPlan>,
}

/// A stage's own error: it says which [`ErrorKind`] it is, so callers (the
/// shim) can rely on kinds, never on wording.
pub trait StageFailure: std::error::Error + Send + Sync + 'static {
    fn kind(&self) -> ErrorKind;
}

/// What a stage returns when it refuses the spec: its typed error, boxed.
#[derive(Debug)]
pub struct StageError {
    kind: ErrorKind,
    error: Box<dyn std::error::Error + Send + Sync>,
}

impl<E: StageFailure> From<E> for StageError {
    fn from(e: E) -> Self {
        Self {
            kind: e.kind(),
            error: Box::new(e),
        }
    }
}

impl StageError {
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The stage's typed error.
    pub fn error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self.error.as_ref()
    }
}

impl std::fmt::Display for StageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

/// A stage failed; the stage's own error is the source.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The request itself is malformed: no stage ran.
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("{stage}")]
    Stage {
        stage: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
        kind: ErrorKind,
    },
}

impl PipelineError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            PipelineError::Request(_) => ErrorKind::InvalidSpec,
            PipelineError::Stage { kind, .. } => *kind,
        }
    }
}

/// One edit of the spec.
pub trait Stage {
    fn name(&self) -> &'static str;
    fn apply(
        &self,
        spec: &mut Spec,
        ctx: &Context<'_>,
        facts: &mut Facts,
    ) -> Result<(), StageError>;
}

/// A function used as a stage.
pub struct FnStage<F> {
    name: &'static str,
    f: F,
}

impl<F> FnStage<F>
where
    F: Fn(&mut Spec, &Context<'_>, &mut Facts) -> Result<(), StageError>,
{
    pub fn new(name: &'static str, f: F) -> Self {
        Self { name, f }
    }
}

impl<F> Stage for FnStage<F>
where
    F: Fn(&mut Spec, &Context<'_>, &mut Facts) -> Result<(), StageError>,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn apply(
        &self,
        spec: &mut Spec,
        ctx: &Context<'_>,
        facts: &mut Facts,
    ) -> Result<(), StageError> {
        (self.f)(spec, ctx, facts)
    }
}

/// An ordered list of stages. The empty pipeline leaves the spec untouched.
#[derive(Default)]
pub struct Pipeline {
    stages: Vec<Box<dyn Stage>>,
}

/// What a run made: the spec, the facts, and which stages changed the spec
/// (the record `pinc state` shows).
#[derive(Debug)]
pub struct Outcome {
    pub spec: Spec,
    pub facts: Facts,
    pub changed_by: Vec<&'static str>,
}

impl Pipeline {
    /// No stages: the spec reaches libcontainer as the caller wrote it.
    pub fn noop() -> Self {
        Self::default()
    }

    pub fn with_stage(mut self, stage: impl Stage + 'static) -> Self {
        self.stages.push(Box::new(stage));
        self
    }

    /// This pipeline's stages, then `next`'s.
    pub fn then(mut self, next: Pipeline) -> Self {
        self.stages.extend(next.stages);
        self
    }

    pub fn stage_names(&self) -> Vec<&'static str> {
        self.stages.iter().map(|s| s.name()).collect()
    }

    /// Runs every stage over `spec`, in order, noting which changed it.
    pub fn run(&self, mut spec: Spec, ctx: &Context<'_>) -> Result<Outcome, PipelineError> {
        let mut facts = Facts::default();
        let mut changed_by = Vec::new();
        for stage in &self.stages {
            tracing::debug!(stage = stage.name(), "pipeline stage");
            let before = spec.clone();
            stage
                .apply(&mut spec, ctx, &mut facts)
                .map_err(|e| PipelineError::Stage {
                    stage: stage.name(),
                    kind: e.kind,
                    source: e.error,
                })?;
            if spec != before {
                changed_by.push(stage.name());
            }
        }
        Ok(Outcome {
            spec,
            facts,
            changed_by,
        })
    }
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests;
