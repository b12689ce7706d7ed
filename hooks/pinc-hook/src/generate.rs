//! `pinc-hook cdi generate` and `pinc-hook list`: what discovery finds under
//! `PINC_DEVICE_ROOT` (else "/"), as CDI specs or as text.
//!
//! GPUs become kind `nvidia.com/gpu` (devices by index and UUID, plus
//! `all`; the control nodes, the driver files for `utility,compute` and the
//! ld-cache hook shared by all of them). HCAs become kind `pinc.io/rdma`
//! (devices by name, plus `all`; rdma_cm shared).

use std::path::{Path, PathBuf};

use anyhow::Context;
use pinc_devices::cdi::{CdiDevice, CdiDeviceNode, CdiHook, CdiMount, CdiSpec, ContainerEdits};
use pinc_devices::driver::{self, Capabilities};
use pinc_devices::{DeviceNode, NvidiaDevices, RdmaDevices};

/// The CDI version written: the oldest pinc reads, so older consumers
/// (podman 4.3 reads up to 0.5.0) accept the files too.
const CDI_VERSION: &str = "0.5.0";

fn device_root() -> PathBuf {
    std::env::var_os("PINC_DEVICE_ROOT")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

fn discover(root: &Path) -> anyhow::Result<(NvidiaDevices, RdmaDevices)> {
    let nvml = pinc_devices::inject::nvml_library(root);
    let gpus =
        pinc_devices::gpu::discover_gpus_with(root, nvml.as_deref()).context("discovering GPUs")?;
    let hcas = pinc_devices::rdma::discover_hcas(root).context("discovering RDMA HCAs")?;
    Ok((gpus, hcas))
}

pub fn list() -> anyhow::Result<()> {
    let root = device_root();
    let (gpus, hcas) = discover(&root)?;
    for g in &gpus.gpus {
        println!(
            "gpu {} {} {} {} {}",
            g.index,
            g.uuid,
            g.bus_id,
            g.device.path.display(),
            g.model
        );
    }
    for h in &hcas.hcas {
        let nodes: Vec<String> = h
            .devices
            .iter()
            .map(|d| d.path.display().to_string())
            .collect();
        println!(
            "hca {} {} {}",
            h.name,
            h.bus_id.as_deref().unwrap_or("-"),
            nodes.join(",")
        );
    }
    Ok(())
}

fn cdi_node(node: &DeviceNode) -> CdiDeviceNode {
    CdiDeviceNode {
        path: node.path.display().to_string(),
        host_path: (node.host_path != node.path).then(|| node.host_path.display().to_string()),
        ..CdiDeviceNode::default()
    }
}

fn device(name: String, nodes: &[&DeviceNode]) -> CdiDevice {
    CdiDevice {
        name,
        annotations: Default::default(),
        container_edits: ContainerEdits {
            device_nodes: nodes.iter().map(|n| cdi_node(n)).collect(),
            ..ContainerEdits::default()
        },
    }
}

fn gpu_spec(root: &Path, found: &NvidiaDevices) -> anyhow::Result<CdiSpec> {
    let mut devices = Vec::new();
    for g in &found.gpus {
        devices.push(device(g.index.to_string(), &[&g.device]));
        devices.push(device(g.uuid.clone(), &[&g.device]));
    }
    let all: Vec<&DeviceNode> = found.gpus.iter().map(|g| &g.device).collect();
    devices.push(device("all".to_string(), &all));
    let files = driver::discover_driver(root, &Capabilities::default())
        .context("finding the driver's files")?;
    let mounts = files
        .libraries
        .iter()
        .chain(files.binaries.iter())
        .map(|f| CdiMount {
            host_path: f.host_path.display().to_string(),
            container_path: f.container_path.display().to_string(),
            options: ["ro", "nosuid", "nodev", "bind"].map(String::from).to_vec(),
            typ: Some("bind".to_string()),
        })
        .collect();
    let mut hooks = Vec::new();
    if !files.libraries.is_empty() {
        let me = std::fs::read_link("/proc/self/exe").context("locating pinc-hook")?;
        let mut args = vec!["pinc-hook".to_string(), "ldconfig".to_string()];
        args.extend(
            driver::library_dirs(&files)
                .iter()
                .map(|d| format!("--folder={}", d.display())),
        );
        hooks.push(CdiHook {
            hook_name: "createContainer".to_string(),
            path: me.display().to_string(),
            args,
            env: Vec::new(),
            timeout: None,
        });
    }
    Ok(CdiSpec {
        cdi_version: CDI_VERSION.to_string(),
        kind: "nvidia.com/gpu".to_string(),
        annotations: Default::default(),
        devices,
        container_edits: ContainerEdits {
            device_nodes: found.control.iter().map(cdi_node).collect(),
            mounts,
            hooks,
            ..ContainerEdits::default()
        },
    })
}

fn rdma_spec(found: &RdmaDevices) -> CdiSpec {
    let mut devices: Vec<CdiDevice> = found
        .hcas
        .iter()
        .map(|h| device(h.name.clone(), &h.devices.iter().collect::<Vec<_>>()))
        .collect();
    let all: Vec<&DeviceNode> = found.hcas.iter().flat_map(|h| h.devices.iter()).collect();
    devices.push(device("all".to_string(), &all));
    CdiSpec {
        cdi_version: CDI_VERSION.to_string(),
        kind: "pinc.io/rdma".to_string(),
        annotations: Default::default(),
        devices,
        container_edits: ContainerEdits {
            device_nodes: found.rdma_cm.iter().map(cdi_node).collect(),
            ..ContainerEdits::default()
        },
    }
}

pub fn run(output_dir: &str, format: &str) -> anyhow::Result<()> {
    let ext = match format {
        "yaml" | "json" => format,
        other => anyhow::bail!("--format {other}: expected yaml or json"),
    };
    let root = device_root();
    let (gpus, hcas) = discover(&root)?;
    let mut specs = Vec::new();
    if !gpus.gpus.is_empty() {
        specs.push(("pinc-nvidia-gpu", gpu_spec(&root, &gpus)?));
    }
    if !hcas.hcas.is_empty() {
        specs.push(("pinc-rdma", rdma_spec(&hcas)));
    }
    if specs.is_empty() {
        eprintln!(
            "pinc-hook: no GPUs or RDMA HCAs found under {}",
            root.display()
        );
    }
    for (name, spec) in specs {
        let file = PathBuf::from(output_dir).join(format!("{name}.{ext}"));
        spec.validate(&file)
            .with_context(|| format!("generated an invalid spec for {}", spec.kind))?;
        let text = if ext == "json" {
            serde_json::to_string_pretty(&spec)? + "\n"
        } else {
            serde_norway::to_string(&spec)?
        };
        if output_dir == "-" {
            if ext == "yaml" {
                println!("---");
            }
            print!("{text}");
            continue;
        }
        std::fs::create_dir_all(output_dir).with_context(|| format!("creating {output_dir}"))?;
        // Write then rename: a consumer scanning the folder never reads half a file.
        let tmp = file.with_extension(format!("{ext}.tmp"));
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &file).with_context(|| format!("writing {}", file.display()))?;
        println!("{}", file.display());
    }
    Ok(())
}
