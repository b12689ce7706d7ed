//! What a container asks for in `pinc.io/*` annotations and `PINC_*` env:
//! all of it read by pinc's one request module (`pinc_request`:
//! placement, `require-cgroups`, `hpc`, `gpus`/`NVIDIA_VISIBLE_DEVICES`,
//! `rdma`, `cdi.k8s.io/*`), `pinc plan` words after a `--` line,
//! `NVIDIA_DRIVER_CAPABILITIES`, `cdi.k8s.io/*` names, then what consumes
//! them: device selection, `near=` resolution, the planner and the hpc and
//! devices stages, on fixed topologies and devices.

use std::path::{Path, PathBuf};

use pinc_core::oci_spec::runtime::{Process, Spec};
use pinc_core::pipeline::{Context, Facts, HostRoots, Request, Stage};
use pinc_core::rootless::Mode;
use pinc_core::stages::hpc_preset::HpcPresetStage;
use pinc_core::RuntimeRoot;
use pinc_cpulist::CpuList;
use pinc_devices::inject::DevicesStage;
use pinc_devices::memlock::Memlock;
use pinc_devices::{cdi, driver, selection, DeviceNode, Gpu, Hca, NodeKind};
use pinc_request::placement as request;
use pinc_topology::planner::{self, Constraints};
use pinc_topology::{devices, synthetic};

fn node(path: &str, major: u64, minor: u64) -> DeviceNode {
    DeviceNode {
        path: PathBuf::from(path),
        host_path: PathBuf::from(path),
        kind: NodeKind::Char,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    }
}

fn gpus() -> Vec<Gpu> {
    (0..2)
        .map(|i: u32| Gpu {
            index: i as usize,
            minor: i + 4,
            uuid: format!("GPU-0000000{i}-1111-2222-3333-444444444444"),
            bus_id: format!("0000:0{}:00.0", i + 6),
            model: "Fuzz".to_string(),
            device: node(&format!("/dev/nvidia{}", i + 4), 195, (i + 4).into()),
        })
        .collect()
}

fn hcas() -> Vec<Hca> {
    vec![
        Hca {
            name: "mlx5_0".to_string(),
            bus_id: Some("0000:05:00.0".to_string()),
            numa_node: Some(0),
            devices: vec![node("/dev/infiniband/uverbs0", 231, 192)],
        },
        Hca {
            name: "rxe0".to_string(),
            bus_id: None,
            numa_node: None,
            devices: vec![node("/dev/infiniband/uverbs1", 231, 193)],
        },
    ]
}

fn check_request(r: &request::PlacementRequest) {
    match r.amount {
        Some(request::Amount::Cpus(n) | request::Amount::Cores(n)) => {
            assert!((1..=65536).contains(&n), "amount {n} out of range")
        }
        None => assert!(!r.hugepages.is_empty(), "a request for nothing: {r:?}"),
    }
    for h in &r.hugepages {
        assert!(h.size_kb > 0 && h.count > 0, "empty hugepages {h:?}");
    }
}

fn main() {
    let topology = synthetic::build(
        "packages=2 numa_per_package=2 cores_per_numa=2 smt=2 gpus=0:1,3:1 hcas=1:1 \
         cpuless_numa=hbm:1 hugepages=16x2M",
    )
    .expect("fixed topology");
    let constraints = Constraints {
        allowed_cpus: topology.pus(),
        allowed_mems: None,
        taken: "0-1".parse::<CpuList>().expect("taken"),
    };
    let (gpus, hcas) = (gpus(), hcas());
    let scratch = pinc_fuzz::scratch();
    let device_root = scratch.join("device-root");
    std::fs::create_dir_all(&device_root).expect("device root");
    let root = RuntimeRoot::open(&scratch.join("root")).expect("runtime root");
    let host = HostRoots::host();

    afl::fuzz!(|data: &[u8]| {
        let Some(text) = pinc_fuzz::text(data) else {
            return;
        };
        let (spec_part, words) = pinc_fuzz::sections(text);
        let (annotations, env) = pinc_fuzz::annotations_and_env(spec_part);

        let read = Request::from_parts(&annotations, &env);
        if let Ok(Some(r)) = read.as_ref().map(|r| r.placement.as_ref()) {
            check_request(r);
            for selector in &r.near {
                let _ = devices::resolve(&topology, selector);
            }
            if let Ok(p) = planner::plan(&topology, r, &constraints) {
                for pu in p.cpus.iter() {
                    assert!(!constraints.taken.contains(pu), "placed on taken PU {pu}");
                }
            }
        }
        if let Ok(Some(r)) = request::from_words(words.split_whitespace()) {
            check_request(&r);
        }
        let asks = read.iter().flat_map(|r| [&r.gpus, &r.rdma]).flatten();
        for ask in asks {
            if let selection::DeviceSelection::List(items) = &ask.selection {
                for item in items {
                    assert!(!item.is_empty(), "an empty selector from {}", ask.from);
                    if let Some(bus) = selection::normalize_bus_id(item) {
                        assert_eq!(
                            selection::normalize_bus_id(&bus).as_deref(),
                            Some(bus.as_str()),
                            "bus id {item:?} normalizes to {bus:?}, which does not"
                        );
                    }
                }
            }
            let _ = selection::select_gpus(&gpus, &ask.selection);
            let _ = selection::select_hcas(&hcas, &ask.selection);
        }
        if let Some(value) = env
            .iter()
            .rev()
            .find_map(|kv| kv.strip_prefix("NVIDIA_DRIVER_CAPABILITIES="))
        {
            if let Ok(caps) = driver::Capabilities::parse(value) {
                let shown = caps.to_string();
                let back = driver::Capabilities::parse(&shown).expect("shown caps parse");
                assert_eq!(back, caps, "{value:?} -> {shown:?}");
            }
        }
        if let Ok(r) = &read {
            for name in &r.cdi {
                cdi::parse_qualified_name(name).expect("a requested name is qualified");
            }
        }

        // The stages that read these requests, on a spec carrying them.
        let mut spec = Spec::default();
        spec.set_annotations(Some(annotations.clone()));
        let mut process = Process::default();
        process.set_env(Some(env.clone()));
        spec.set_process(Some(process));
        let hpc = HpcPresetStage::new(
            pinc_fuzz::env_pairs(words),
            Memlock {
                hard: 64 << 20,
                may_raise: false,
            },
        );
        let Ok(request) = read else {
            return;
        };
        let ctx = Context {
            id: "fuzz",
            bundle: Path::new("/nonexistent/bundle"),
            root: &root,
            mode: &Mode::Root,
            systemd_cgroup: false,
            request: &request,
            host: &host,
        };
        let _ = hpc.apply(&mut spec, &ctx, &mut Facts::default());
        let _ = DevicesStage::new(device_root.clone()).inject(&mut spec, &request, false);
    });
}
