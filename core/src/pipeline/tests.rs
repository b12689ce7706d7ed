use std::collections::HashMap;

use super::*;

/// A stage error of a given kind, as a stage's typed enum would be.
#[derive(Debug, thiserror::Error)]
#[error("no free cores")]
struct NoCores;

impl StageFailure for NoCores {
    fn kind(&self) -> ErrorKind {
        ErrorKind::PlacementRefused
    }
}

fn with_ctx<T>(f: impl FnOnce(&Context<'_>) -> T) -> T {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = RuntimeRoot::open(dir.path()).expect("root");
    let run = testing::TestRun {
        id: "c1",
        ..Default::default()
    };
    run.with_ctx(&root, &Request::default(), f)
}

fn annotate(
    key: &'static str,
) -> FnStage<impl Fn(&mut Spec, &Context<'_>, &mut Facts) -> Result<(), StageError>> {
    FnStage::new(
        key,
        move |spec: &mut Spec, ctx: &Context<'_>, _: &mut Facts| {
            let mut a = spec.annotations().clone().unwrap_or_default();
            let order = a.len().to_string();
            a.insert(key.to_string(), format!("{order}:{}", ctx.id));
            spec.set_annotations(Some(a));
            Ok(())
        },
    )
}

/// A caller's spec with content in every part a stage may touch.
fn full_spec() -> Spec {
    serde_json::from_value(serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/", "env": ["PINC_CPUS=2"]},
        "annotations": {"pinc.io/cpus": "2"},
        "mounts": [{"destination": "/dev/shm", "type": "tmpfs", "source": "shm"}],
        "linux": {"resources": {"cpu": {"cpus": "0-1"}}, "namespaces": [{"type": "mount"}]}
    }))
    .expect("spec")
}

#[test]
fn noop_returns_the_spec_unchanged_and_records_nothing() {
    let spec = full_spec();
    let out = with_ctx(|ctx| Pipeline::noop().run(spec.clone(), ctx)).expect("noop");
    assert_eq!(out.spec, spec);
    assert!(out.changed_by.is_empty());
    assert_eq!(out.facts.device_locality, DeviceLocality::default());
    assert!(out.facts.keep_affinity.is_none() && out.facts.id_maps.is_none());
}

#[test]
fn stages_run_in_order_and_each_change_is_recorded() {
    let pipeline = Pipeline::noop()
        .with_stage(annotate("first"))
        .with_stage(FnStage::new(
            "looks-only",
            |_: &mut Spec, _: &Context<'_>, _: &mut Facts| Ok(()),
        ))
        .then(Pipeline::noop().with_stage(annotate("second")));
    assert_eq!(
        pipeline.stage_names(),
        vec!["first", "looks-only", "second"]
    );
    let mut spec = Spec::default();
    spec.set_annotations(Some(HashMap::new()));
    let out = with_ctx(|ctx| pipeline.run(spec, ctx)).expect("run");
    let a = out.spec.annotations().as_ref().expect("annotations");
    assert_eq!(a["first"], "0:c1");
    assert_eq!(a["second"], "1:c1");
    assert_eq!(out.changed_by, vec!["first", "second"]);
}

#[test]
fn facts_reach_later_stages() {
    let pipeline = Pipeline::noop()
        .with_stage(FnStage::new(
            "devices",
            |_: &mut Spec, _: &Context<'_>, facts: &mut Facts| {
                facts.device_locality = DeviceLocality(vec!["0000:3b:00.0".into()]);
                Ok(())
            },
        ))
        .with_stage(FnStage::new(
            "placement",
            |spec: &mut Spec, _: &Context<'_>, facts: &mut Facts| {
                let mut a = spec.annotations().clone().unwrap_or_default();
                a.insert("near".into(), facts.device_locality.0.join(","));
                spec.set_annotations(Some(a));
                Ok(())
            },
        ));
    let out = with_ctx(|ctx| pipeline.run(Spec::default(), ctx)).expect("run");
    let a = out.spec.annotations().as_ref().expect("annotations");
    assert_eq!(a["near"], "0000:3b:00.0");
    // The fact itself is not in the spec: only what a stage wrote there.
    assert_eq!(a.len(), 1);
    assert_eq!(out.changed_by, vec!["placement"]);
}

#[test]
fn an_error_names_its_stage_keeps_its_kind_and_stops() {
    let pipeline = Pipeline::noop()
        .with_stage(FnStage::new(
            "placement",
            |_: &mut Spec, _: &Context<'_>, _: &mut Facts| Err(NoCores.into()),
        ))
        .with_stage(annotate("never"));
    let err = with_ctx(|ctx| pipeline.run(Spec::default(), ctx)).expect_err("fails");
    assert_eq!(err.to_string(), "placement");
    assert_eq!(
        std::error::Error::source(&err).map(|s| s.to_string()),
        Some("no free cores".to_string())
    );
    assert_eq!(err.kind(), ErrorKind::PlacementRefused);
}

#[test]
fn host_roots_join_absolute_paths() {
    let host = HostRoots {
        fs: PathBuf::from("/tmp/fixture"),
    };
    assert_eq!(
        host.join("/sys/kernel/mm/hugepages"),
        Path::new("/tmp/fixture/sys/kernel/mm/hugepages")
    );
    assert_eq!(HostRoots::host().join("/proc"), Path::new("/proc"));
}
