//! Small queries on the model that the loaders, the renderer and tests share.

use pinc_cpulist::CpuList;

use crate::model::{Device, DeviceKind, Topology};

impl Topology {
    /// The device with an OS device of this name ("mlx5_0", "cuda1", "eth0").
    /// The reliable way to find an HCA: bus ids can repeat in hand-edited
    /// topologies.
    pub fn device_by_name(&self, name: &str) -> Option<&Device> {
        self.devices
            .iter()
            .find(|d| d.names.iter().any(|n| n == name))
    }

    /// The first device at a PCI bus id, "0000:03:00.0" or "03:00.0"
    /// (domain 0), case-insensitive.
    pub fn device_by_bus_id(&self, bus_id: &str) -> Option<&Device> {
        let wanted = bus_id.to_ascii_lowercase();
        let wanted = if wanted.matches(':').count() == 1 {
            format!("0000:{wanted}")
        } else {
            wanted
        };
        self.devices.iter().find(|d| d.bus_id == wanted)
    }

    /// The devices of one kind, in topology order.
    pub fn devices_of_kind(&self, kind: DeviceKind) -> impl Iterator<Item = &Device> + '_ {
        self.devices.iter().filter(move |d| d.kind == kind)
    }

    /// The PUs of a package.
    pub fn package_cpus(&self, os_index: u32) -> CpuList {
        self.cores
            .iter()
            .filter(|c| c.package == os_index)
            .flat_map(|c| c.pus.iter().copied())
            .collect()
    }

    /// The NUMA node (OS index) whose CPUs include a PU.
    pub fn numa_of_pu(&self, pu: u32) -> Option<u32> {
        self.numa_nodes
            .iter()
            .find(|n| n.cpus.contains(pu))
            .map(|n| n.os_index)
    }
}
