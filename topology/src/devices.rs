//! Resolving `near=` selectors to devices and their NUMA nodes.

use crate::{Device, DeviceKind, Topology};

/// A selector that matches no device.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeviceError {
    #[error("near={selector}: no such device on this node (known: {known})")]
    Unknown { selector: String, known: String },
    #[error("near={0}: GPU UUIDs are resolved through NVML, which this node does not provide")]
    Uuid(String),
}

/// "b7:00.0" -> "0000:b7:00.0", lower case.
fn normalise_bus_id(s: &str) -> Option<String> {
    let s = s.trim().to_ascii_lowercase();
    let parts: Vec<&str> = s.split(':').collect();
    let with_domain = match parts.len() {
        2 => format!("0000:{s}"),
        3 => s.clone(),
        _ => return None,
    };
    with_domain.contains('.').then_some(with_domain)
}

/// GPUs in CUDA-like order: by their cudaN name when present, else bus id.
fn gpus(t: &Topology) -> Vec<&Device> {
    let mut gpus: Vec<&Device> = t
        .devices
        .iter()
        .filter(|d| d.kind == DeviceKind::Gpu)
        .collect();
    let cuda_index = |d: &Device| {
        d.names
            .iter()
            .find_map(|n| n.strip_prefix("cuda").and_then(|i| i.parse::<u32>().ok()))
    };
    gpus.sort_by_key(|d| (cuda_index(d).unwrap_or(u32::MAX), d.bus_id.clone()));
    gpus
}

/// Finds the device a selector names: a GPU index, a PCI bus id, or an OS
/// device name (cuda0, mlx5_0, ib0, eth0). On a bus id shared by two
/// functions (seen in real topologies), GPUs and HCAs win over other devices.
pub fn resolve<'t>(t: &'t Topology, selector: &str) -> Result<&'t Device, DeviceError> {
    let unknown = || DeviceError::Unknown {
        selector: selector.to_string(),
        known: describe(t),
    };
    if selector.to_ascii_uppercase().starts_with("GPU-") {
        return Err(DeviceError::Uuid(selector.to_string()));
    }
    if let Ok(index) = selector.parse::<usize>() {
        return gpus(t).get(index).copied().ok_or_else(unknown);
    }
    if let Some(bus) = normalise_bus_id(selector) {
        let rank = |d: &&Device| match d.kind {
            DeviceKind::Gpu | DeviceKind::Hca => 0,
            DeviceKind::Nic => 1,
            DeviceKind::Other => 2,
        };
        if let Some(d) = t
            .devices
            .iter()
            .filter(|d| d.bus_id == bus)
            .min_by_key(rank)
        {
            return Ok(d);
        }
    }
    t.devices
        .iter()
        .find(|d| d.names.iter().any(|n| n == selector))
        .ok_or_else(unknown)
}

/// NUMA nodes with CPUs that a device is local to: its own locality (a
/// CPU-less node, such as GPU memory, stands for the CPU nodes it sits
/// beside), else the nodes holding its local CPUs.
pub fn numa_of(t: &Topology, d: &Device) -> Vec<u32> {
    let by_cpus = |cpus: &pinc_cpulist::CpuList| -> Vec<u32> {
        t.numa_nodes
            .iter()
            .filter(|n| !n.cpus.is_empty() && !n.cpus.intersection(cpus).is_empty())
            .map(|n| n.os_index)
            .collect()
    };
    if d.numa.is_empty() {
        return by_cpus(&d.cpus);
    }
    let mut out: Vec<u32> = Vec::new();
    for &n in &d.numa {
        let nodes = match t.numa(n) {
            Some(node) if node.cpus.is_empty() => by_cpus(&node.near_cpus),
            _ => vec![n],
        };
        for m in nodes {
            if !out.contains(&m) {
                out.push(m);
            }
        }
    }
    out
}

/// A short list of what can be named, for error messages.
fn describe(t: &Topology) -> String {
    let mut out: Vec<String> = gpus(t)
        .iter()
        .enumerate()
        .map(|(i, d)| format!("GPU {i} ({})", d.bus_id))
        .collect();
    out.extend(
        t.devices
            .iter()
            .filter(|d| matches!(d.kind, DeviceKind::Hca | DeviceKind::Nic))
            .map(|d| match d.names.first() {
                Some(n) => format!("{n} ({})", d.bus_id),
                None => d.bus_id.clone(),
            }),
    );
    if out.is_empty() {
        "no GPUs, HCAs or NICs".to_string()
    } else {
        out.join(", ")
    }
}
