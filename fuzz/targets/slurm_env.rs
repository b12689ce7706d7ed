//! The Slurm job environment pinc runs in (`SLURM_JOB_ID`,
//! `SLURM_STEP_GPUS`, `SLURM_JOB_GPUS`, `CUDA_VISIBLE_DEVICES`) bounding the
//! GPUs a container may get, and the launcher environment (`SLURM_*`,
//! `PMI*`, `PMIX_*`) the hpc preset passes on.
//!
//! Input: `KEY=VALUE` lines of the caller's environment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use pinc_core::oci_spec::runtime::{Process, Spec};
use pinc_core::pipeline::{Context, Facts, HostRoots, Request, Stage};
use pinc_core::rootless::Mode;
use pinc_core::stages::hpc_preset::HpcPresetStage;
use pinc_core::RuntimeRoot;
use pinc_devices::inject::SlurmGpus;
use pinc_devices::memlock::Memlock;
use pinc_devices::{DeviceNode, Gpu, NodeKind};

fn gpus() -> Vec<Gpu> {
    (0..3)
        .map(|i: u32| Gpu {
            index: i as usize,
            minor: 2 * i,
            uuid: format!("GPU-{i}aaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"),
            bus_id: format!("0000:1{i}:00.0"),
            model: "Fuzz".to_string(),
            device: DeviceNode {
                path: PathBuf::from(format!("/dev/nvidia{}", 2 * i)),
                host_path: PathBuf::from(format!("/dev/nvidia{}", 2 * i)),
                kind: NodeKind::Char,
                major: 195,
                minor: (2 * i).into(),
                mode: 0o666,
                uid: 0,
                gid: 0,
            },
        })
        .collect()
}

fn main() {
    let gpus = gpus();
    let root = RuntimeRoot::open(&pinc_fuzz::scratch().join("root")).expect("runtime root");
    let host = HostRoots::host();
    afl::fuzz!(|data: &[u8]| {
        let Some(text) = pinc_fuzz::text(data) else {
            return;
        };
        let pairs = pinc_fuzz::env_pairs(text);
        // The process environment: the last of repeated names wins.
        let env: HashMap<String, String> = pairs.iter().cloned().collect();
        if let Some(alloc) = SlurmGpus::from_env(|k| env.get(k).cloned()) {
            let all: Vec<&Gpu> = gpus.iter().collect();
            let held = alloc
                .restrict(all.clone(), true)
                .expect("`all` is never refused");
            for g in &held {
                // Every GPU `all` gave is one a named request may have too.
                alloc.restrict(vec![*g], false).unwrap_or_else(|e| {
                    panic!("GPU {} given for all, refused by name: {e}", g.index)
                });
            }
        }
        let mut spec = Spec::default();
        spec.set_annotations(Some(HashMap::from([(
            "pinc.io/hpc".to_string(),
            "true".to_string(),
        )])));
        let mut process = Process::default();
        process.set_env(Some(vec!["PATH=/bin".to_string()]));
        spec.set_process(Some(process));
        let stage = HpcPresetStage::new(
            pairs,
            Memlock {
                hard: u64::MAX,
                may_raise: false,
            },
        );
        let request = Request::read(&spec).expect("the request reads");
        let ctx = Context {
            id: "fuzz",
            bundle: Path::new("/nonexistent/bundle"),
            root: &root,
            mode: &Mode::Root,
            systemd_cgroup: false,
            request: &request,
            host: &host,
        };
        stage
            .apply(&mut spec, &ctx, &mut Facts::default())
            .expect("the preset applies");
    });
}
