//! NVIDIA GPUs: device nodes, control nodes, and the host driver's
//! user-space files (libraries from the ld cache, tools), mounted read-only,
//! with a hook that refreshes the container's ld cache.

use std::path::{Path, PathBuf};

use crate::driver::{self, Capabilities};
use crate::ldcache::{Arch, LdCache};
use crate::selection::{self, DeviceSelection};
use oci_spec::runtime::Spec;

use super::DevicesError;
use super::{edits, DevicesStage, Injected};

/// NVML's soname, looked up in the device root's ld cache.
const NVML: &str = "libnvidia-ml.so.1";

/// libnvidia-ml from the root's ld cache, resolved inside the root; `None`
/// when the driver's libraries are not installed (no NVML: fall back to procfs).
pub fn nvml_library(root: &Path) -> Option<PathBuf> {
    let cache = LdCache::for_root(root).ok()?;
    let entry = cache
        .entries
        .iter()
        .find(|e| e.soname == NVML && e.arch == Arch::native())?;
    crate::resolve::resolve_in_root(root, &entry.path).ok()
}

pub(super) fn inject(
    stage: &DevicesStage,
    spec: &mut Spec,
    name: &str,
    request: &DeviceSelection,
    env: &[String],
    rootless: bool,
    out: &mut Injected,
) -> Result<(), DevicesError> {
    let nvml = nvml_library(&stage.root);
    let found = match crate::gpu::discover_gpus_with(&stage.root, nvml.as_deref()) {
        // `all` is in every CUDA image's env: on a node whose driver
        // libraries are installed but whose GPUs are absent (a login node),
        // it must not fail the container.
        Err(e @ crate::GpuError::Nvml { .. }) if *request == DeviceSelection::All => {
            tracing::warn!(target: "pinc", "NVML unusable ({e}); reading /proc/driver/nvidia");
            crate::gpu::discover_gpus(&stage.root)?
        }
        other => other?,
    };
    if found.gpus.is_empty() && matches!(request, DeviceSelection::List(_)) {
        return Err(DevicesError::NoGpus {
            from: name.to_string(),
            nvml: nvml
                .as_deref()
                .map_or("libnvidia-ml.so.1 not in the ld cache".to_string(), |p| {
                    p.display().to_string()
                }),
            listing: stage.root.join("proc/driver/nvidia/gpus"),
        });
    }
    let mut chosen =
        selection::select_gpus(&found.gpus, request).map_err(|source| DevicesError::Select {
            from: name.to_string(),
            source,
        })?;
    if let Some(allocation) = &stage.slurm {
        chosen = allocation.restrict(chosen, *request == DeviceSelection::All)?;
    }
    if rootless && *request == DeviceSelection::All {
        chosen.retain(|g| edits::openable(&g.device));
    }
    if chosen.is_empty() {
        return Ok(());
    }
    for gpu in &chosen {
        edits::add_device(spec, &gpu.device, rootless)?;
        out.devices.push(gpu.device.path.clone());
        out.near.push(gpu.bus_id.clone());
    }
    for node in &found.control {
        edits::add_device(spec, node, rootless)?;
        out.devices.push(node.path.clone());
    }
    out.gpus = chosen.iter().map(|g| g.uuid.clone()).collect();
    driver_files(stage, spec, env, out)
}

/// Mounts the driver's libraries and tools the capabilities ask for.
fn driver_files(
    stage: &DevicesStage,
    spec: &mut Spec,
    env: &[String],
    out: &mut Injected,
) -> Result<(), DevicesError> {
    let caps_value = env
        .iter()
        .rev()
        .find_map(|kv| kv.strip_prefix("NVIDIA_DRIVER_CAPABILITIES="))
        .unwrap_or("");
    let caps = Capabilities::parse(caps_value).map_err(DevicesError::Capabilities)?;
    let files = driver::discover_driver(&stage.root, &caps).map_err(DevicesError::Driver)?;
    for file in files.libraries.iter().chain(files.binaries.iter()) {
        edits::add_bind(
            spec,
            &file.host_path,
            &file.container_path,
            &["bind", "ro", "nosuid", "nodev"],
        );
        out.mounts.push(file.container_path.clone());
    }
    if files.libraries.is_empty() {
        return Ok(());
    }
    match stage.hook() {
        Some(hook) => {
            let mut args = vec!["pinc-hook".to_string(), "ldconfig".to_string()];
            args.extend(
                driver::library_dirs(&files)
                    .iter()
                    .map(|d| format!("--folder={}", d.display())),
            );
            edits::add_create_container_hook(spec, hook, args);
        }
        None => tracing::warn!(
            target: "pinc",
            "pinc-hook not found (set PINC_HOOK): the driver libraries are mounted, but the container's ld cache is not refreshed"
        ),
    }
    Ok(())
}
