//! Loads the real-machine hwloc XML fixtures (read in place, see `pinc_topology::testdata`) and
//! checks the facts their README states, plus `live()` on this machine.

#[macro_use]
mod common;

use pinc_cpulist::CpuList;
use pinc_topology::{from_xml, live, DeviceKind, HugepagePool, MemoryKind, Topology};

/// A real-machine topology, read in place (see `pinc_topology::testdata`).
fn load(name: &str) -> Topology {
    let path = pinc_topology::testdata::path(name).expect("tests check needs_topologies! first");
    from_xml(&path).unwrap_or_else(|e| panic!("loading {}: {e:?}", path.display()))
}

fn list(s: &str) -> CpuList {
    s.parse().expect("cpu list")
}

fn even(range: std::ops::Range<u32>, rem: u32) -> CpuList {
    range.filter(|p| p % 2 == rem).collect()
}

/// Invariants every loaded topology must keep.
fn check_consistent(t: &Topology) {
    let pus = t.pus();
    // Each PU in exactly one core and, when it has any NUMA node, one node.
    let in_cores: usize = t.cores.iter().map(|c| c.pus.len()).sum();
    assert_eq!(in_cores, pus.len(), "a PU is in two cores");
    let in_nodes: usize = t.numa_nodes.iter().map(|n| n.cpus.len()).sum();
    assert_eq!(in_nodes, pus.len(), "PUs and NUMA cpus disagree");
    for (i, c) in t.cores.iter().enumerate() {
        assert_eq!(c.index, i);
        assert!(
            c.pus.windows(2).all(|w| w[0] < w[1]),
            "core {i} PUs unsorted"
        );
        assert_eq!(c.numa, t.numa_of_pu(c.pus[0]));
        assert!(t.packages.iter().any(|p| p.os_index == c.package));
        if let Some(l3) = c.l3 {
            assert!(c.pus.iter().all(|&p| t.l3_groups[l3].contains(p)));
        }
    }
    for n in &t.numa_nodes {
        assert!(
            n.cpus.is_empty() != n.near_cpus.is_empty(),
            "node {} has both or neither cpus and near_cpus",
            n.os_index
        );
        assert!(t.package_of_numa(n.os_index).is_some());
    }
    if let Some(d) = &t.distances {
        assert!(
            d.nodes.windows(2).all(|w| w[0] < w[1]),
            "distances not in OS order"
        );
        assert_eq!(d.values.len(), d.nodes.len() * d.nodes.len());
        for &n in &d.nodes {
            assert_eq!(t.distance(n, n), 10);
        }
    }
    // Serialises (the JSON view of `pinc topology`).
    let json = serde_json::to_value(t).expect("json");
    assert!(json["numa_nodes"].is_array());
    // The text view mentions every NUMA node.
    let text = pinc_topology::render::text(t);
    for n in &t.numa_nodes {
        assert!(text.contains(&format!("numa {}", n.os_index)), "{text}");
    }
}

#[test]
fn ibm_power8_sparse_ids() {
    needs_topologies!();
    let t = load("ibm-power8-2s-4p100.xml");
    check_consistent(&t);
    assert_eq!(t.packages.len(), 2);
    assert_eq!(t.numa_nodes.len(), 2);
    assert_eq!(t.cores.len(), 8);
    assert_eq!(t.pus().len(), 16);
    assert_eq!(t.smt(), 2);
    let n0 = t.numa(0).expect("node 0");
    let n1 = t.numa(1).expect("node 1");
    assert_eq!(n0.cpus, list("0-1,8-9,16-17,24-25"));
    assert_eq!(n1.cpus, list("80-81,88-89,96-97,104-105"));
    assert!(
        n0.memory > 60 << 30 && n0.memory < 70 << 30,
        "{}",
        n0.memory
    );
    assert_eq!(n0.kind, MemoryKind::Dram);
    let core_ids: Vec<u32> = t.cores.iter().filter_map(|c| c.os_index).collect();
    assert_eq!(core_ids, vec![8, 16, 32, 40, 136, 144, 152, 168]);
    assert_eq!(t.core_of(97).expect("core").pus, vec![96, 97]);
    assert_eq!(t.core_of(97).expect("core").package, 1);

    let gpus: Vec<_> = t.devices_of_kind(DeviceKind::Gpu).collect();
    assert_eq!(gpus.len(), 4);
    for (bus, node, cuda) in [
        ("0002:01:00.0", 0, "cuda0"),
        ("0003:01:00.0", 0, "cuda1"),
        ("000a:01:00.0", 1, "cuda2"),
        ("000b:01:00.0", 1, "cuda3"),
    ] {
        let g = t.device_by_bus_id(bus).expect(bus);
        assert_eq!(g.kind, DeviceKind::Gpu);
        assert_eq!((g.vendor_id, g.device_id), (0x10de, 0x15f9));
        assert_eq!(g.numa, vec![node], "{bus}");
        assert_eq!(&g.cpus, &t.numa(node).expect("node").cpus);
        assert!(g.names.iter().any(|n| n == cuda), "{:?}", g.names);
        assert!(g.names.iter().any(|n| n.starts_with("nvml")));
        assert!(g.names.iter().any(|n| n.starts_with("opencl")));
    }
    // The homogeneous NUMA matrix is kept; the GPU-package NVLink one is not.
    let d = t.distances.as_ref().expect("NUMA distances");
    assert_eq!(d.nodes, vec![0, 1]);
    assert_eq!(t.distance(0, 1), 40);
}

#[test]
fn hp_sl390s_interleaved_numbering() {
    needs_topologies!();
    let t = load("hp-sl390s-2s-6c-3gpu-ib.xml");
    check_consistent(&t);
    assert_eq!(t.packages.len(), 2);
    assert_eq!(t.numa_nodes.len(), 2);
    assert_eq!(t.cores.len(), 12);
    assert_eq!(t.pus(), list("0-23"));
    assert_eq!(t.numa(0).expect("node 0").cpus, even(0..24, 0));
    assert_eq!(t.numa(1).expect("node 1").cpus, even(0..24, 1));
    for n in 0..12 {
        assert_eq!(t.core_of(n).expect("core").pus, vec![n, n + 12]);
    }
    let package0: Vec<u32> = t
        .cores
        .iter()
        .filter(|c| c.package == 0)
        .filter_map(|c| c.os_index)
        .collect();
    assert_eq!(package0, vec![0, 8, 2, 10, 1, 9]);
    let mem = t.numa(0).expect("node 0").memory;
    assert!(mem > 17 << 30 && mem < 19 << 30, "{mem}");

    let gpus: Vec<_> = t.devices_of_kind(DeviceKind::Gpu).collect();
    assert_eq!(gpus.len(), 3, "the BMC's ATI VGA is not a GPU");
    assert!(gpus
        .iter()
        .all(|g| (g.vendor_id, g.device_id) == (0x10de, 0x06d2)));
    for (bus, node) in [
        ("0000:06:00.0", 0),
        ("0000:11:00.0", 1),
        ("0000:14:00.0", 1),
    ] {
        let g = t.device_by_bus_id(bus).expect(bus);
        assert_eq!(g.kind, DeviceKind::Gpu);
        assert_eq!(g.numa, vec![node], "{bus}");
    }
    let vga = t.device_by_bus_id("01:03.0").expect("BMC VGA");
    assert_eq!(vga.kind, DeviceKind::Other);

    let hca = t.device_by_name("mlx4_0").expect("mlx4_0");
    assert_eq!(hca.kind, DeviceKind::Hca);
    assert_eq!(hca.bus_id, "0000:05:00.0");
    assert_eq!(hca.numa, vec![0]);
    assert!(hca.names.iter().any(|n| n == "ib0"));
    assert_eq!(t.device_by_name("ib0"), Some(hca));
    for eth in ["eth0", "eth1"] {
        let nic = t.device_by_name(eth).expect(eth);
        assert_eq!(nic.kind, DeviceKind::Nic);
        assert_eq!(nic.numa, vec![0]);
    }
}

#[test]
fn supermicro_x9drg_gpus_and_shared_bus_id() {
    needs_topologies!();
    let t = load("supermicro-x9drg-2s-e5-gpu-ib.xml");
    check_consistent(&t);
    assert_eq!(t.numa_nodes.len(), 2);
    assert_eq!(t.cores.len(), 16);
    assert_eq!(t.pus().len(), 32);
    assert_eq!(t.numa(0).expect("node 0").cpus, list("0-7,16-23"));
    assert_eq!(t.numa(1).expect("node 1").cpus, list("8-15,24-31"));
    assert_eq!(t.numa(1).expect("node 1").memory, 32 << 30);
    for n in 0..16 {
        assert_eq!(t.core_of(n).expect("core").pus, vec![n, n + 16]);
    }

    for (bus, node) in [
        ("0000:03:00.0", 0),
        ("0000:83:00.0", 1),
        ("0000:84:00.0", 1),
    ] {
        let g = t.device_by_bus_id(bus).expect(bus);
        assert_eq!(g.kind, DeviceKind::Gpu, "{bus}");
        assert_eq!((g.vendor_id, g.device_id), (0x10de, 0x1094));
        assert_eq!(g.numa, vec![node], "{bus}");
    }
    assert_eq!(
        t.device_by_name("cuda0").expect("cuda0").bus_id,
        "0000:84:00.0"
    );
    // The Matrox VGA is the BMC's.
    assert_eq!(
        t.device_by_bus_id("05:03.0").expect("vga").kind,
        DeviceKind::Other
    );
    for eth in ["eth0", "eth1"] {
        let nic = t.device_by_name(eth).expect(eth);
        assert_eq!(nic.kind, DeviceKind::Nic);
        assert_eq!(nic.numa, vec![1]);
    }

    // The hand-added HCA shares 0000:04:00.0 with the SAS HBA on NUMA 0:
    // by name it is the HCA on NUMA 1, by bus id the SAS device.
    let hca = t.device_by_name("mlx5_0").expect("mlx5_0");
    assert_eq!(hca.kind, DeviceKind::Hca);
    assert_eq!(hca.bus_id, "0000:04:00.0");
    assert_eq!(hca.numa, vec![1]);
    assert_eq!(hca.cpus, list("8-15,24-31"));
    assert!(hca.names.iter().any(|n| n == "ib0"));
    let sas = t.device_by_bus_id("0000:04:00.0").expect("bus id");
    assert_eq!(sas.kind, DeviceKind::Other);
    assert_eq!((sas.vendor_id, sas.device_id), (0x8086, 0x1d6b));
    assert_eq!(sas.numa, vec![0]);
    assert_eq!(
        t.devices
            .iter()
            .filter(|d| d.bus_id == "0000:04:00.0")
            .count(),
        2
    );
}

#[test]
fn nec_everything_on_numa0_and_hugepages() {
    needs_topologies!();
    let t = load("nec-2s-skylake-8ve-2ib.xml");
    check_consistent(&t);
    assert_eq!(t.numa_nodes.len(), 2);
    assert_eq!(t.cores.len(), 16);
    assert_eq!(t.pus().len(), 32);
    assert_eq!(t.numa(0).expect("node 0").cpus, list("0-7,16-23"));
    assert_eq!(t.numa(1).expect("node 1").cpus, list("8-15,24-31"));
    let m0 = t.numa(0).expect("node 0").memory;
    let m1 = t.numa(1).expect("node 1").memory;
    assert!(m0 > 45 << 30 && m0 < 47 << 30, "{m0}");
    assert!(m1 > 46 << 30 && m1 < 48 << 30, "{m1}");

    // hwloc carries the pools in the XML's page types (totals only).
    for n in &t.numa_nodes {
        assert_eq!(
            n.hugepages,
            vec![
                HugepagePool {
                    size_kb: 2048,
                    total: 2048,
                    free: 2048
                },
                HugepagePool {
                    size_kb: 1 << 20,
                    total: 0,
                    free: 0
                },
            ],
            "node {}",
            n.os_index
        );
    }

    assert_eq!(t.devices.len(), 12);
    assert!(
        t.devices.iter().all(|d| d.numa == vec![0]),
        "{:?}",
        t.devices
    );
    let ves: Vec<_> = t
        .devices
        .iter()
        .filter(|d| d.names.iter().any(|n| n.starts_with("ve")))
        .collect();
    assert_eq!(ves.len(), 8);
    assert!(ves
        .iter()
        .all(|d| d.kind == DeviceKind::Other && d.vendor_id == 0x1bcf));
    let hcas: Vec<_> = t.devices_of_kind(DeviceKind::Hca).collect();
    assert_eq!(hcas.len(), 2);
    assert_eq!(hcas[0].bus_id, "0000:1a:00.0");
    assert_eq!(hcas[1].bus_id, "0000:3e:00.0");
    assert!(hcas.iter().all(|h| h.names.is_empty()));
    assert_eq!(t.devices_of_kind(DeviceKind::Nic).count(), 2);
    assert_eq!(t.devices_of_kind(DeviceKind::Gpu).count(), 0);
    assert_eq!(t.distance(0, 1), 21);
}

#[test]
fn intel_knl_mcdram_is_cpuless_hbm() {
    needs_topologies!();
    let t = load("intel-knl-snc4-hybrid-8numa.xml");
    check_consistent(&t);
    assert_eq!(t.packages.len(), 1);
    assert_eq!(t.cores.len(), 16);
    assert_eq!(t.pus(), list("0-63"));
    assert_eq!(t.smt(), 4);
    for k in 0..16 {
        assert_eq!(
            t.core_of(k).expect("core").pus,
            vec![k, k + 16, k + 32, k + 48]
        );
    }
    assert_eq!(t.numa_nodes.len(), 8);
    for (dram, mcdram) in [(0, 7), (1, 4), (2, 5), (3, 6)] {
        let d = t.numa(dram).expect("dram");
        let m = t.numa(mcdram).expect("mcdram");
        assert_eq!(d.kind, MemoryKind::Dram);
        assert_eq!(m.kind, MemoryKind::Hbm);
        assert_eq!(d.memory, 1 << 30);
        assert_eq!(m.memory, 2 << 30);
        assert_eq!(d.cpus.len(), 16);
        assert!(m.cpus.is_empty(), "MCDRAM {mcdram} has cpus");
        assert_eq!(m.near_cpus, d.cpus, "pair ({dram}, {mcdram})");
    }
    assert_eq!(
        t.numa(0).expect("node 0").cpus,
        list("0-3,16-19,32-35,48-51")
    );
    assert_eq!(t.packages[0].numa_nodes, (0..8).collect::<Vec<u32>>());
    // Hybrid mode's MCDRAM cache is no CPU L3.
    assert!(t.l3_groups.is_empty());
    assert!(t.devices.is_empty());
}

#[test]
fn amd_epyc_l3_groups() {
    needs_topologies!();
    let t = load("amd-epyc9654-2s-384pu.xml");
    check_consistent(&t);
    assert_eq!(t.packages.len(), 2);
    assert_eq!(t.numa_nodes.len(), 1);
    assert_eq!(t.numa(0).expect("node 0").memory, 0);
    assert_eq!(t.cores.len(), 192);
    assert_eq!(t.pus(), list("0-383"));
    assert_eq!(t.l3_groups.len(), 24);
    for (i, g) in t.l3_groups.iter().enumerate() {
        assert_eq!(t.cores.iter().filter(|c| c.l3 == Some(i)).count(), 8);
        assert_eq!(g.len(), 16);
    }
    for n in 0..192 {
        let core = t.core_of(n).expect("core");
        assert_eq!(core.pus, vec![n, n + 192]);
        assert_eq!(core.package, if n < 96 { 0 } else { 1 });
    }
    assert_eq!(t.l3_groups[1], list("8-15,200-207"));
    assert_eq!(t.package_cpus(1), list("96-191,288-383"));
    assert!(t.devices.is_empty());
    assert!(t.distances.is_none());
}

#[test]
fn live_matches_sysfs() {
    let t = live().expect("live topology");
    check_consistent(&t);
    assert_eq!(t.source, "live");
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").expect("online");
    assert_eq!(
        t.pus(),
        list(&online),
        "PUs vs /sys/devices/system/cpu/online"
    );
    let nodes: CpuList = t.numa_nodes.iter().map(|n| n.os_index).collect();
    if let Ok(online) = std::fs::read_to_string("/sys/devices/system/node/online") {
        assert_eq!(
            nodes,
            list(&online),
            "nodes vs /sys/devices/system/node/online"
        );
    }
    for n in &t.numa_nodes {
        let dir = format!("/sys/devices/system/node/node{}", n.os_index);
        if let Ok(cpus) = std::fs::read_to_string(format!("{dir}/cpulist")) {
            assert_eq!(n.cpus, list(&cpus), "node {} cpus", n.os_index);
        }
        assert!(n.memory > 0, "node {} has no memory size", n.os_index);
        let per_node = std::path::Path::new(&dir).join("hugepages").exists();
        for p in n.hugepages.iter().filter(|_| per_node) {
            let pool = format!("{dir}/hugepages/hugepages-{}kB", p.size_kb);
            let read = |f: &str| {
                std::fs::read_to_string(format!("{pool}/{f}"))
                    .expect("pool file")
                    .trim()
                    .parse::<u64>()
                    .expect("number")
            };
            // Another process may change the pool between reads; totals
            // on a test machine do not move.
            assert_eq!(p.total, read("nr_hugepages"), "{pool}");
            assert!(p.free <= p.total);
        }
    }
    assert!(!t.cores.is_empty());
}
