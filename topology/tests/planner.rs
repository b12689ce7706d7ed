//! Planner behaviour on small hand-built nodes, one property per test.

use pinc_cpulist::CpuList;
use pinc_request::placement::from_words;
use pinc_topology::planner::{plan, Constraints, PlanError};
use pinc_topology::{Core, Device, DeviceKind, Distances, MemoryKind, NumaNode, Package, Topology};

/// `packages` x `numa_per_pkg` nodes of `cores` cores with `smt` threads,
/// Linux stride numbering (siblings n, n + total cores), `l3` groups per node,
/// distances 10 / 12 (same package) / 32 (other package).
fn node(packages: u32, numa_per_pkg: u32, cores: u32, smt: u32, l3: u32) -> Topology {
    let nodes = packages * numa_per_pkg;
    let total = nodes * cores;
    let mut t = Topology {
        source: "test".into(),
        ..Default::default()
    };
    for p in 0..packages {
        t.packages.push(Package {
            os_index: p,
            numa_nodes: (p * numa_per_pkg..(p + 1) * numa_per_pkg).collect(),
        });
    }
    for n in 0..nodes {
        let mut cpus = CpuList::new();
        for k in 0..cores {
            let core = n * cores + k;
            let pus: Vec<u32> = (0..smt).map(|s| core + s * total).collect();
            pus.iter().for_each(|p| cpus.insert(*p));
            let group = (n * l3 + k * l3 / cores) as usize;
            if t.l3_groups.len() <= group {
                t.l3_groups.push(CpuList::new());
            }
            pus.iter().for_each(|p| t.l3_groups[group].insert(*p));
            t.cores.push(Core {
                index: core as usize,
                os_index: Some(core),
                package: n / numa_per_pkg,
                numa: Some(n),
                l3: Some(group),
                pus,
            });
        }
        t.numa_nodes.push(NumaNode {
            os_index: n,
            memory: 1 << 30,
            kind: MemoryKind::Dram,
            cpus,
            near_cpus: CpuList::new(),
            hugepages: Vec::new(),
        });
    }
    let ids: Vec<u32> = (0..nodes).collect();
    let values = ids
        .iter()
        .flat_map(|&a| {
            ids.iter().map(move |&b| {
                if a == b {
                    10
                } else if a / numa_per_pkg == b / numa_per_pkg {
                    12
                } else {
                    32
                }
            })
        })
        .collect();
    t.distances = Some(Distances { nodes: ids, values });
    t
}

fn device(t: &mut Topology, name: &str, bus: &str, kind: DeviceKind, numa: u32) {
    let cpus = t.numa(numa).expect("node").cpus.clone();
    t.devices.push(Device {
        bus_id: bus.into(),
        kind,
        vendor_id: 0x10de,
        device_id: 1,
        names: vec![name.into()],
        numa: vec![numa],
        cpus,
    });
}

fn all(t: &Topology) -> Constraints {
    Constraints {
        allowed_cpus: t.pus(),
        ..Default::default()
    }
}

fn list(s: &str) -> CpuList {
    s.parse().expect("list")
}

fn req(words: &[&str]) -> pinc_request::placement::PlacementRequest {
    from_words(words.iter().copied())
        .expect("valid")
        .expect("some")
}

#[test]
fn compact_whole_cores_with_siblings() {
    let t = node(1, 2, 4, 2, 1);
    let p = plan(&t, &req(&["cpus=4"]), &all(&t)).expect("plan");
    // Two whole cores (0 and 1) with their siblings 8 and 9.
    assert_eq!(p.cpus, list("0-1,8-9"));
    assert_eq!(p.reserved, p.cpus);
    assert_eq!(p.mems, list("0"));
    let p = plan(&t, &req(&["cpus=3"]), &all(&t)).expect("plan");
    assert_eq!(p.cpus, list("0-1,8"), "3 CPUs, both cores reserved");
    assert_eq!(p.reserved, list("0-1,8-9"));
}

#[test]
fn smt_off_uses_one_thread_per_core_and_reserves_siblings() {
    let t = node(1, 1, 4, 2, 1);
    let p = plan(&t, &req(&["cpus=2", "smt=off"]), &all(&t)).expect("plan");
    assert_eq!(p.cpus, list("0-1"));
    assert_eq!(p.reserved, list("0-1,4-5"));
}

#[test]
fn best_fit_keeps_big_holes() {
    let t = node(1, 2, 4, 1, 1);
    let mut c = all(&t);
    c.taken = list("0"); // node 0 has 3 free cores, node 1 has 4
    let p = plan(&t, &req(&["cores=3"]), &c).expect("plan");
    assert_eq!(p.numa_nodes, vec![0], "3 cores fit node 0 exactly");
    let p = plan(&t, &req(&["cores=4"]), &c).expect("plan");
    assert_eq!(p.numa_nodes, vec![1]);
    assert_eq!(p.cpus, list("4-7"));
}

#[test]
fn spills_within_the_package_before_crossing_sockets() {
    // Two packages, two nodes each, four cores per node.
    let t = node(2, 2, 4, 1, 1);
    let p = plan(&t, &req(&["cores=6"]), &all(&t)).expect("plan");
    assert_eq!(
        p.numa_nodes,
        vec![0, 1],
        "same-package node is nearer than the other socket"
    );
    let mut c = all(&t);
    c.taken = list("4-7"); // node 1 is full: the nearest with room is across the socket
    let p = plan(&t, &req(&["cores=6"]), &c).expect("plan");
    assert_eq!(p.numa_nodes.len(), 2);
    assert!(!p.cpus.iter().any(|cpu| (4..8).contains(&cpu)));
}

#[test]
fn l3_best_fit_inside_a_node() {
    // One node, two L3 groups of 4 cores (0-3 and 4-7).
    let t = node(1, 1, 8, 1, 2);
    let mut c = all(&t);
    c.taken = list("0");
    let p = plan(&t, &req(&["cores=3"]), &c).expect("plan");
    assert_eq!(p.cpus, list("1-3"), "the group with exactly 3 free cores");
    let p = plan(&t, &req(&["cores=4"]), &c).expect("plan");
    assert_eq!(p.cpus, list("4-7"), "a whole L3 group rather than a split");
}

#[test]
fn strict_refuses_to_span_nodes() {
    let t = node(1, 2, 4, 1, 1);
    let err = plan(&t, &req(&["cores=5", "policy=strict"]), &all(&t)).expect_err("too big");
    assert_eq!(
        err.to_string(),
        "policy=strict: no single NUMA node has 5 cores free (best: NUMA 0 with 4)"
    );
    assert!(plan(&t, &req(&["cores=4", "policy=strict"]), &all(&t)).is_ok());
}

#[test]
fn spread_uses_every_node_and_alternates_packages() {
    let t = node(2, 2, 4, 1, 1);
    let p = plan(&t, &req(&["cores=4", "policy=spread"]), &all(&t)).expect("plan");
    assert_eq!(p.numa_nodes, vec![0, 1, 2, 3]);
    let p = plan(&t, &req(&["cores=2", "policy=spread"]), &all(&t)).expect("plan");
    assert_eq!(p.numa_nodes, vec![0, 2], "two nodes on two sockets");
}

#[test]
fn near_devices_choose_the_node_and_conflicts_widen() {
    let mut t = node(2, 1, 4, 1, 1);
    device(&mut t, "cuda0", "0000:06:00.0", DeviceKind::Gpu, 1);
    device(&mut t, "mlx5_0", "0000:05:00.0", DeviceKind::Hca, 0);
    let p = plan(&t, &req(&["cores=2", "near=0"]), &all(&t)).expect("plan");
    assert_eq!(p.numa_nodes, vec![1], "GPU 0 is on NUMA 1");
    let p = plan(&t, &req(&["cores=2", "near=05:00.0"]), &all(&t)).expect("plan");
    assert_eq!(p.numa_nodes, vec![0], "bus id without domain");
    let p = plan(&t, &req(&["cores=2", "near=cuda0,mlx5_0"]), &all(&t)).expect("plan");
    assert_eq!(
        p.numa_nodes,
        vec![0, 1],
        "conflicting locality uses both nodes"
    );
    let err = plan(
        &t,
        &req(&["cores=2", "near=cuda0,mlx5_0", "policy=strict"]),
        &all(&t),
    )
    .expect_err("strict");
    assert!(matches!(err, PlanError::StrictConflict(_)), "{err}");
    let err = plan(&t, &req(&["cores=1", "near=mlx4_9"]), &all(&t)).expect_err("unknown");
    assert!(
        err.to_string().contains("mlx4_9") && err.to_string().contains("mlx5_0"),
        "{err}"
    );
}

#[test]
fn stays_inside_the_callers_cpus_and_mems() {
    let t = node(1, 2, 4, 1, 1);
    let c = Constraints {
        allowed_cpus: list("4-7"),
        allowed_mems: Some(list("1")),
        taken: CpuList::new(),
    };
    let p = plan(&t, &req(&["cores=2"]), &c).expect("plan");
    assert_eq!(p.cpus, list("4-5"));
    assert_eq!(p.mems, list("1"));
    let err = plan(&t, &req(&["cores=5"]), &c).expect_err("too many");
    assert_eq!(
        err.to_string(),
        "no free cores: 5 cores needed, 4 free within the allowed CPUs 4-7"
    );
    let c = Constraints {
        allowed_cpus: list("0-7"),
        allowed_mems: Some(list("1")),
        taken: CpuList::new(),
    };
    // Allowed memory steers the choice: node 1, although node 0 comes first.
    let p = plan(&t, &req(&["cores=2"]), &c).expect("plan");
    assert_eq!(p.cpus, list("4-5"));
    assert_eq!(p.mems, list("1"));
}

#[test]
fn exhaustion_names_the_holders() {
    let t = node(1, 1, 4, 1, 1);
    let mut c = all(&t);
    c.taken = list("0-3");
    let err = plan(&t, &req(&["cpus=1"]), &c).expect_err("full");
    assert!(
        err.to_string()
            .contains("4 cores held by other pinc containers"),
        "{err}"
    );
}

#[test]
fn hbm_prefers_the_near_high_bandwidth_node() {
    let mut t = node(1, 2, 4, 1, 1);
    // Node 2: CPU-less MCDRAM next to node 0's CPUs.
    t.numa_nodes.push(NumaNode {
        os_index: 2,
        memory: 2 << 30,
        kind: MemoryKind::Hbm,
        cpus: CpuList::new(),
        near_cpus: list("0-3"),
        hugepages: Vec::new(),
    });
    let p = plan(&t, &req(&["cores=2", "hbm=on"]), &all(&t)).expect("plan");
    assert_eq!(p.mems, list("0,2"));
    let (mode, nodes) = p.mem_policy.expect("policy");
    assert_eq!(format!("{mode:?}"), "Preferred");
    assert_eq!(nodes, list("2"));
    let p = plan(&t, &req(&["cores=2", "hbm=on", "mem=bind"]), &all(&t)).expect("plan");
    assert_eq!(p.mems, list("2"));
    let mut c = all(&t);
    c.allowed_cpus = list("4-7");
    assert!(matches!(
        plan(&t, &req(&["cores=1", "hbm=on"]), &c),
        Err(PlanError::NoHbm(_))
    ));
}

#[test]
fn deterministic() {
    let t = node(2, 2, 8, 2, 2);
    let r = req(&["cpus=11", "policy=compact"]);
    let a = plan(&t, &r, &all(&t)).expect("a");
    let b = plan(&t, &r, &all(&t)).expect("b");
    assert_eq!(a, b);
}
