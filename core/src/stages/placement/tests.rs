use pinc_topology::{planner, DeviceKind};

use super::*;

/// A real-machine topology, read in place (`None`: not on this machine,
/// and the caller skips).
fn fixture() -> Option<Topology> {
    let path = pinc_topology::testdata::path("hp-sl390s-2s-6c-3gpu-ib.xml")?;
    Some(pinc_topology::from_xml(&path).expect("fixture topology"))
}

#[test]
fn injected_devices_steer_placement_when_the_topology_knows_them() {
    let Some(t) = fixture() else {
        pinc_testkit::skip!("{}", pinc_topology::testdata::ABSENT)
    };
    let gpus: Vec<&pinc_topology::Device> = t
        .devices
        .iter()
        .filter(|d| d.kind == DeviceKind::Gpu)
        .collect();
    // The GPU farthest from NUMA 0, so the choice is visible.
    let gpu = gpus
        .iter()
        .find(|d| pinc_topology::devices::numa_of(&t, d) != [0])
        .expect("a GPU away from NUMA 0");
    let locality = DeviceLocality(vec![gpu.bus_id.clone(), "0000:99:00.0".to_string()]);
    let near = near(&locality, &t);
    assert_eq!(
        near,
        vec![gpu.bus_id.clone()],
        "unknown devices are dropped"
    );

    let mut req = request::from_words(["cores=2"])
        .expect("request")
        .expect("some");
    req.near = near;
    let c = planner::Constraints {
        allowed_cpus: t.pus(),
        ..Default::default()
    };
    let p = planner::plan(&t, &req, &c).expect("plan");
    assert_eq!(p.numa_nodes, pinc_topology::devices::numa_of(&t, gpu));
}

#[test]
fn no_devices_no_locality() {
    let Some(t) = fixture() else {
        pinc_testkit::skip!("{}", pinc_topology::testdata::ABSENT)
    };
    assert!(near(&DeviceLocality::default(), &t).is_empty());
}

/// Two CPUs on two NUMA nodes, a GPU on the second, 2 MiB pages.
fn two_node_machine() -> Topology {
    pinc_topology::synthetic::build("numa_per_package=2 cores_per_numa=1 gpus=1:1 hugepages=64x2M")
        .expect("synthetic")
}

/// Runs the stage as create would, on a fixture host root, with `facts`
/// as the stages before it left them.
fn place(
    root: &RuntimeRoot,
    host: &HostRoots,
    id: &'static str,
    spec: &mut Spec,
    facts: &mut Facts,
) -> Result<(), StageError> {
    let run = crate::pipeline::testing::TestRun {
        id,
        host: host.clone(),
        ..Default::default()
    };
    let stage = PlacementStage::new(Box::new(|_, _| Ok(two_node_machine())));
    run.apply(&stage, spec, root, facts)
}

fn asking(entries: &[&str]) -> Spec {
    let mut spec = Spec::default();
    let mut process = spec.process().clone().expect("process");
    process.set_env(Some(entries.iter().map(|e| e.to_string()).collect()));
    spec.set_process(Some(process));
    spec
}

fn cpus_of(spec: &Spec) -> Option<String> {
    crate::spec::pinned_cpus(spec)
}

#[test]
fn the_stage_places_near_the_devices_reserves_and_mounts_hugepages() {
    let caller = pinc_cgroup::affinity::get(0).expect("affinity");
    if !caller.contains(1) {
        pinc_testkit::skip!("needs CPUs 0 and 1 in this process's affinity");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = RuntimeRoot::open(&dir.path().join("root")).expect("root");
    let host = HostRoots {
        fs: dir.path().join("host"),
    };
    std::fs::create_dir_all(host.join("/sys/kernel/mm/hugepages/hugepages-2048kB"))
        .expect("fixture sysfs");
    let gpu = two_node_machine().devices[0].bus_id.clone();
    let mut facts = Facts {
        device_locality: DeviceLocality(vec![gpu]),
        ..Facts::default()
    };
    let mut spec = asking(&["PINC_CPUS=1", "PINC_HUGEPAGES=2M:4"]);
    place(&root, &host, "a", &mut spec, &mut facts).expect("placed");
    // NUMA 1 holds the GPU and CPU 1.
    assert_eq!(cpus_of(&spec).as_deref(), Some("1"));
    let resources = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().clone())
        .expect("resources");
    assert_eq!(
        resources
            .cpu()
            .as_ref()
            .and_then(|c| c.mems().clone())
            .as_deref(),
        Some("1")
    );
    let limits = resources.hugepage_limits().clone().expect("limits");
    assert_eq!(limits.len(), 1);
    assert_eq!(limits[0].limit(), 4 * 2 * 1024 * 1024);
    let mounts = spec.mounts().clone().expect("mounts");
    assert!(mounts
        .iter()
        .any(|m| m.destination() == std::path::Path::new("/dev/hugepages")));
    // "a" exists (the ledger drops entries of containers that are gone).
    std::fs::create_dir_all(root.container_dir("a")).expect("state dir");
    std::fs::write(root.container_dir("a").join("state.json"), "{}").expect("state");
    let ledger = Ledger::open(&root).expect("ledger").list().expect("list");
    assert_eq!(ledger.len(), 1);
    assert_eq!(
        (ledger[0].id.as_str(), ledger[0].cpus.to_string()),
        ("a", "1".to_string())
    );

    // A second container pinning the same CPU is refused, naming the holder.
    let mut pinned = asking(&["PINC_CPUS=1"]);
    let mut linux = pinned.linux().clone().expect("linux");
    let mut resources = linux.resources().clone().unwrap_or_default();
    let mut cpu = resources.cpu().clone().unwrap_or_default();
    cpu.set_cpus(Some("1".into()));
    resources.set_cpu(Some(cpu));
    linux.set_resources(Some(resources));
    pinned.set_linux(Some(linux));
    let err = place(&root, &host, "b", &mut pinned, &mut Facts::default()).expect_err("held");
    assert_eq!(err.kind(), ErrorKind::PlacementRefused);
    assert!(err.to_string().contains("held by a"), "{err}");
}

#[test]
fn a_page_size_the_host_lacks_is_refused_and_nothing_is_reserved() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = RuntimeRoot::open(&dir.path().join("root")).expect("root");
    // A host root without /sys/kernel/mm/hugepages.
    let host = HostRoots {
        fs: dir.path().join("host"),
    };
    let mut spec = asking(&["PINC_HUGEPAGES=2M:4"]);
    let before = spec.clone();
    let err = place(&root, &host, "a", &mut spec, &mut Facts::default()).expect_err("no pages");
    assert_eq!(err.kind(), ErrorKind::PlacementRefused);
    assert_eq!(spec, before);
    assert!(
        !Ledger::file(&root).exists(),
        "hugepages alone take no ledger entry"
    );
}

#[test]
fn a_spec_without_a_placement_request_is_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = RuntimeRoot::open(dir.path()).expect("root");
    let host = HostRoots::host();
    let mut spec = asking(&["PATH=/bin"]);
    let before = spec.clone();
    place(&root, &host, "a", &mut spec, &mut Facts::default()).expect("nothing to do");
    assert_eq!(spec, before);
    assert!(!Ledger::file(&root).exists());
}
