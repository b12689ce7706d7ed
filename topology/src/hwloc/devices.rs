//! PCI devices: what they are and where they sit.

use hwlocality::object::attributes::ObjectAttributes;
use hwlocality::object::types::{OSDeviceType, ObjectType};
use hwlocality::Topology as HwTopology;
use pinc_cpulist::CpuList;

use super::{cpus_of, nodes_of, text};
use crate::model::{Device, DeviceKind, NumaNode};

fn is_gpu_osdev(name: &str, subtype: Option<&str>) -> bool {
    let sub = subtype.map(str::to_ascii_lowercase);
    matches!(
        sub.as_deref(),
        Some("cuda" | "nvml" | "opencl" | "rsmi" | "levelzero")
    ) || ["cuda", "nvml", "opencl", "rsmi", "ze"]
        .iter()
        .any(|p| name.strip_prefix(p).is_some_and(starts_with_digit))
}

fn starts_with_digit(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_digit())
}

/// `mlx5_0`, `mlx4_1`, `hfi1_0`, `qib0`, `bnxt_re0`, `irdma0`...: RDMA device names.
pub(super) fn is_rdma_name(name: &str) -> bool {
    if let Some(rest) = name.strip_prefix("mlx") {
        return rest.split_once('_').is_some_and(|(gen, n)| {
            gen.chars().all(|c| c.is_ascii_digit()) && starts_with_digit(n)
        });
    }
    name.strip_prefix("hfi").is_some_and(starts_with_digit)
        || name.strip_prefix("qib").is_some_and(starts_with_digit)
}

/// Classifies a PCI device from its class and OS devices.
///
/// VGA controllers (class 0x0300) count as GPUs only with compute OS
/// devices or from NVIDIA: servers' BMC VGA chips (ASPEED, Matrox, ATI
/// ES1000) are not GPUs. 3D and other display controllers always are.
pub(crate) fn classify(
    class_id: u16,
    vendor_id: u16,
    osdevs: &[(String, Option<String>, Option<OSDeviceType>)],
) -> DeviceKind {
    let gpu_osdev = osdevs
        .iter()
        .any(|(name, sub, _)| is_gpu_osdev(name, sub.as_deref()));
    let rdma = osdevs
        .iter()
        .any(|(name, _, ty)| *ty == Some(OSDeviceType::OpenFabrics) || is_rdma_name(name));
    match class_id {
        0x0302 | 0x0380 => DeviceKind::Gpu,
        0x0300 if gpu_osdev || vendor_id == 0x10de => DeviceKind::Gpu,
        _ if gpu_osdev => DeviceKind::Gpu,
        // InfiniBand (network class 0x0207, and serial-bus class 0x0c06 that
        // older ConnectX cards report), or any card with an RDMA device.
        0x0207 | 0x0c06 => DeviceKind::Hca,
        _ if rdma => DeviceKind::Hca,
        0x0200..=0x02ff => DeviceKind::Nic,
        _ => DeviceKind::Other,
    }
}

pub(super) fn devices(hw: &HwTopology, numa_nodes: &[NumaNode], all_pus: &CpuList) -> Vec<Device> {
    let known: CpuList = numa_nodes.iter().map(|n| n.os_index).collect();
    let mut out = Vec::new();
    for dev in hw.pci_devices() {
        let Some(ObjectAttributes::PCIDevice(pci)) = dev.attributes() else {
            continue;
        };
        let bus_id = format!(
            "{:04x}:{:02x}:{:02x}.{:x}",
            pci.domain(),
            pci.bus_id(),
            pci.bus_device(),
            pci.function()
        );
        let osdevs: Vec<(String, Option<String>, Option<OSDeviceType>)> = dev
            .io_children()
            .filter(|c| c.object_type() == ObjectType::OSDevice)
            .filter_map(|c| {
                let name = text(c.name())?;
                let ty = match c.attributes() {
                    Some(ObjectAttributes::OSDevice(a)) => Some(a.device_type()),
                    _ => None,
                };
                Some((name, text(c.subtype()), ty))
            })
            .collect();
        let kind = classify(pci.class_id(), pci.vendor_id(), &osdevs);
        let (numa, cpus) = match dev.first_non_io_ancestor() {
            // Hanging off the machine on a multi-node box: unknown.
            Some(anc) if anc.parent().is_none() && numa_nodes.len() > 1 => {
                (Vec::new(), CpuList::new())
            }
            Some(anc) => (
                nodes_of(anc).intersection(&known).iter().collect(),
                cpus_of(anc).intersection(all_pus),
            ),
            None => (Vec::new(), CpuList::new()),
        };
        out.push(Device {
            bus_id,
            kind,
            vendor_id: pci.vendor_id(),
            device_id: pci.device_id(),
            names: osdevs.into_iter().map(|(name, _, _)| name).collect(),
            numa,
            cpus,
        });
    }
    out
}
