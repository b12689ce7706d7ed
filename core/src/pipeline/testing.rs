//! How unit tests run stages as create would: a [`Context`] of their
//! choosing, the request read from the spec.

use std::path::Path;

use libcontainer::oci_spec::runtime::Spec;

use super::{Context, Facts, HostRoots, Request, Stage, StageError};
use crate::rootless::Mode;
use crate::RuntimeRoot;

/// The parts of a [`Context`] a test varies; the rest are fixed.
pub(crate) struct TestRun {
    pub id: &'static str,
    pub mode: Mode,
    pub systemd_cgroup: bool,
    pub host: HostRoots,
}

impl Default for TestRun {
    fn default() -> Self {
        Self {
            id: "t",
            mode: Mode::Root,
            systemd_cgroup: false,
            host: HostRoots::host(),
        }
    }
}

impl TestRun {
    /// `f` given a context over `root` and `request`.
    pub(crate) fn with_ctx<T>(
        &self,
        root: &RuntimeRoot,
        request: &Request,
        f: impl FnOnce(&Context<'_>) -> T,
    ) -> T {
        f(&Context {
            id: self.id,
            bundle: Path::new("/b"),
            root,
            mode: &self.mode,
            systemd_cgroup: self.systemd_cgroup,
            request,
            host: &self.host,
        })
    }

    /// `stage` alone over `spec`, the request read from `spec`, with the
    /// facts earlier stages left.
    pub(crate) fn apply(
        &self,
        stage: &dyn Stage,
        spec: &mut Spec,
        root: &RuntimeRoot,
        facts: &mut Facts,
    ) -> Result<(), StageError> {
        let request = Request::read(spec).expect("request");
        self.with_ctx(root, &request, |ctx| stage.apply(spec, ctx, facts))
    }

    /// [`TestRun::apply`] in a scratch runtime root, from no facts.
    pub(crate) fn scratch(&self, stage: &dyn Stage, spec: &mut Spec) -> Result<Facts, StageError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = RuntimeRoot::open(dir.path()).expect("root");
        let mut facts = Facts::default();
        self.apply(stage, spec, &root, &mut facts)?;
        Ok(facts)
    }
}
