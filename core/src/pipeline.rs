//! The seam where pinc's HPC stages edit the spec between "load the bundle"
//! and "libcontainer creates". Stages are plain functions over the spec, run
//! in order; the first error aborts the create before anything exists.

use std::collections::HashMap;
use std::path::Path;

use libcontainer::oci_spec::runtime::Spec;

/// The spec's annotations and process env: where every request is read from.
pub fn annotations_and_env(spec: &Spec) -> (HashMap<String, String>, Vec<String>) {
    let annotations = spec.annotations().clone().unwrap_or_default();
    let env = spec
        .process()
        .as_ref()
        .and_then(|p| p.env().clone())
        .unwrap_or_default();
    (annotations, env)
}

/// A request: the annotation if set, else the last entry of the first env
/// variable found. Returns the name it came from (for messages) and the value.
pub fn lookup(
    annotations: &HashMap<String, String>,
    env: &[String],
    annotation: &str,
    vars: &[&str],
) -> Option<(String, String)> {
    if let Some(v) = annotations.get(annotation) {
        return Some((annotation.to_string(), v.clone()));
    }
    vars.iter().find_map(|var| {
        env.iter()
            .rev()
            .find_map(|kv| kv.strip_prefix(var).and_then(|r| r.strip_prefix('=')))
            .map(|v| (var.to_string(), v.to_string()))
    })
}

/// A Kubernetes pod's sandbox (pause) container: pod annotations reach it
/// too, but it needs no cores or devices of its own.
pub fn is_pod_sandbox(annotations: &HashMap<String, String>) -> bool {
    [
        "io.kubernetes.cri.container-type",
        "io.kubernetes.cri-o.ContainerType",
    ]
    .iter()
    .any(|k| annotations.get(*k).is_some_and(|v| v == "sandbox"))
}

/// What a stage returns when it refuses the spec.
pub type StageError = Box<dyn std::error::Error + Send + Sync>;

/// A stage failed; the stage's own error is the source.
#[derive(Debug, thiserror::Error)]
#[error("{stage}: {source}")]
pub struct PipelineError {
    pub stage: &'static str,
    #[source]
    pub source: StageError,
}

/// What a stage may know besides the spec.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub id: &'a str,
    /// The caller's bundle (canonical).
    pub bundle: &'a Path,
    /// The runtime root (for node-wide state such as an allocation ledger).
    pub root: &'a Path,
    /// The container runs without root on the host.
    pub rootless: bool,
}

/// One edit of the spec.
pub trait Stage {
    fn name(&self) -> &'static str;
    fn apply(&self, spec: &mut Spec, ctx: &Context<'_>) -> Result<(), StageError>;
}

/// A function used as a stage.
pub struct FnStage<F> {
    name: &'static str,
    f: F,
}

impl<F> FnStage<F>
where
    F: Fn(&mut Spec, &Context<'_>) -> Result<(), StageError>,
{
    pub fn new(name: &'static str, f: F) -> Self {
        Self { name, f }
    }
}

impl<F> Stage for FnStage<F>
where
    F: Fn(&mut Spec, &Context<'_>) -> Result<(), StageError>,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn apply(&self, spec: &mut Spec, ctx: &Context<'_>) -> Result<(), StageError> {
        (self.f)(spec, ctx)
    }
}

/// An ordered list of stages. The empty pipeline leaves the spec untouched.
#[derive(Default)]
pub struct Pipeline {
    stages: Vec<Box<dyn Stage>>,
}

impl Pipeline {
    /// No HPC stages: the spec reaches libcontainer as the caller wrote it.
    pub fn noop() -> Self {
        Self::default()
    }

    pub fn with_stage(mut self, stage: impl Stage + 'static) -> Self {
        self.stages.push(Box::new(stage));
        self
    }

    pub fn stage_names(&self) -> Vec<&'static str> {
        self.stages.iter().map(|s| s.name()).collect()
    }

    /// Runs every stage over `spec`, in order.
    pub fn run(&self, mut spec: Spec, ctx: &Context<'_>) -> Result<Spec, PipelineError> {
        for stage in &self.stages {
            tracing::debug!(stage = stage.name(), "pipeline stage");
            stage
                .apply(&mut spec, ctx)
                .map_err(|source| PipelineError {
                    stage: stage.name(),
                    source,
                })?;
        }
        Ok(spec)
    }
}

/// The HPC pipeline the CLI and the shim both run: the MPI preset, devices
/// (GPUs, HCAs, CDI), then placement (CPUs, memory, hugepages) near them.
pub fn hpc() -> Pipeline {
    Pipeline::noop()
        .with_stage(crate::hpc_preset::HpcPresetStage::from_env())
        .with_stage(crate::devices::DevicesStage::from_env())
        .with_stage(crate::placement::PlacementStage::new(Box::new(
            crate::placement::live_topology,
        )))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn ctx() -> Context<'static> {
        Context {
            id: "c1",
            bundle: Path::new("/b"),
            root: Path::new("/r"),
            rootless: false,
        }
    }

    fn annotate(
        key: &'static str,
    ) -> FnStage<impl Fn(&mut Spec, &Context<'_>) -> Result<(), StageError>> {
        FnStage::new(key, move |spec: &mut Spec, ctx: &Context<'_>| {
            let mut a = spec.annotations().clone().unwrap_or_default();
            let order = a.len().to_string();
            a.insert(key.to_string(), format!("{order}:{}", ctx.id));
            spec.set_annotations(Some(a));
            Ok(())
        })
    }

    #[test]
    fn noop_returns_the_spec_unchanged() {
        let spec = Spec::default();
        let out = Pipeline::noop().run(spec.clone(), &ctx()).expect("noop");
        assert_eq!(
            serde_json::to_value(&out).expect("out"),
            serde_json::to_value(&spec).expect("in")
        );
    }

    #[test]
    fn stages_run_in_order() {
        let pipeline = Pipeline::noop()
            .with_stage(annotate("first"))
            .with_stage(annotate("second"));
        assert_eq!(pipeline.stage_names(), vec!["first", "second"]);
        let mut spec = Spec::default();
        spec.set_annotations(Some(HashMap::new()));
        let out = pipeline.run(spec, &ctx()).expect("run");
        let a = out.annotations().as_ref().expect("annotations");
        assert_eq!(a["first"], "0:c1");
        assert_eq!(a["second"], "1:c1");
    }

    #[test]
    fn an_error_names_its_stage_and_stops() {
        let pipeline = Pipeline::noop()
            .with_stage(FnStage::new(
                "placement",
                |_: &mut Spec, _: &Context<'_>| Err("no free cores".into()),
            ))
            .with_stage(annotate("never"));
        let err = pipeline.run(Spec::default(), &ctx()).expect_err("fails");
        assert_eq!(err.to_string(), "placement: no free cores");
    }
}
