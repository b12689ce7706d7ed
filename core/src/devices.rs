//! The devices stage: GPUs (`pinc.io/gpus`, `PINC_GPUS`, or for
//! compatibility `NVIDIA_VISIBLE_DEVICES`) and RDMA HCAs (`pinc.io/rdma`,
//! `PINC_RDMA`) become device nodes in the container with device-cgroup
//! allow rules. Only devices that discovery found can be named; nothing in a
//! spec can point pinc at an arbitrary host path.
//!
//! Discovery reads procfs, sysfs and /dev under a root: "/" normally, or the
//! runtime's own `PINC_DEVICE_ROOT` (a fixture tree, for tests on machines
//! without GPUs or HCAs).

use std::path::PathBuf;

use libcontainer::oci_spec::runtime::{
    LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, LinuxResources, Spec,
};
use pinc_hooks::selection::{self, Request};
use pinc_hooks::DeviceNode;

use crate::pipeline::{annotations_and_env, lookup, Context, Stage, StageError};

pub struct DevicesStage {
    root: PathBuf,
}

impl DevicesStage {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// The root from `PINC_DEVICE_ROOT`, else "/".
    pub fn from_env() -> Self {
        Self::new(
            std::env::var_os("PINC_DEVICE_ROOT")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/")),
        )
    }
}

fn parse(name: &str, value: &str) -> Result<Request, StageError> {
    Request::parse(value).map_err(|e| format!("{name}: {e}").into())
}

fn add(spec_devices: &mut Vec<LinuxDevice>, rules: &mut Vec<LinuxDeviceCgroup>, node: &DeviceNode) {
    if spec_devices.iter().any(|d| d.path() == &node.path) {
        return;
    }
    let typ = match node.kind.as_char() {
        'b' => LinuxDeviceType::B,
        _ => LinuxDeviceType::C,
    };
    let mut device = LinuxDevice::default();
    device
        .set_path(node.path.clone())
        .set_typ(typ)
        .set_major(node.major as i64)
        .set_minor(node.minor as i64)
        .set_file_mode(Some(node.mode))
        .set_uid(Some(node.uid))
        .set_gid(Some(node.gid));
    spec_devices.push(device);
    let mut rule = LinuxDeviceCgroup::default();
    rule.set_allow(true)
        .set_typ(Some(typ))
        .set_major(Some(node.major as i64))
        .set_minor(Some(node.minor as i64))
        .set_access(Some("rwm".to_string()));
    rules.push(rule);
}

impl Stage for DevicesStage {
    fn name(&self) -> &'static str {
        "devices"
    }

    fn apply(&self, spec: &mut Spec, _ctx: &Context<'_>) -> Result<(), StageError> {
        let (annotations, env) = annotations_and_env(spec);
        let gpus = lookup(
            &annotations,
            &env,
            "pinc.io/gpus",
            &["PINC_GPUS", "NVIDIA_VISIBLE_DEVICES"],
        );
        let rdma = lookup(&annotations, &env, "pinc.io/rdma", &["PINC_RDMA"]);
        if gpus.is_none() && rdma.is_none() {
            return Ok(());
        }
        let mut nodes: Vec<DeviceNode> = Vec::new();
        if let Some((name, value)) = &gpus {
            let request = parse(name, value)?;
            if request != Request::Nothing {
                let found = pinc_hooks::gpu::discover_gpus(&self.root)?;
                let chosen = selection::select_gpus(&found.gpus, &request)
                    .map_err(|e| format!("{name}: {e}"))?;
                if !chosen.is_empty() {
                    nodes.extend(chosen.iter().map(|g| g.device.clone()));
                    nodes.extend(found.control.iter().cloned());
                }
            }
        }
        if let Some((name, value)) = &rdma {
            let request = parse(name, value)?;
            if request != Request::Nothing {
                let found = pinc_hooks::rdma::discover_hcas(&self.root)?;
                let chosen = selection::select_hcas(&found.hcas, &request)
                    .map_err(|e| format!("{name}: {e}"))?;
                if !chosen.is_empty() {
                    nodes.extend(chosen.iter().flat_map(|h| h.devices.iter().cloned()));
                    nodes.extend(found.rdma_cm.iter().cloned());
                }
            }
        }
        if nodes.is_empty() {
            return Ok(());
        }
        let mut linux = spec.linux().clone().unwrap_or_default();
        let mut devices = linux.devices().clone().unwrap_or_default();
        let mut resources: LinuxResources = linux.resources().clone().unwrap_or_default();
        let mut rules = resources.devices().clone().unwrap_or_default();
        for node in &nodes {
            add(&mut devices, &mut rules, node);
        }
        tracing::info!(target: "pinc", devices = ?nodes.iter().map(|n| n.path.display().to_string()).collect::<Vec<_>>(), "injected devices");
        resources.set_devices(Some(rules));
        linux.set_resources(Some(resources));
        linux.set_devices(Some(devices));
        spec.set_linux(Some(linux));
        Ok(())
    }
}
