//! The plain topology model. All CPU and NUMA numbers are OS indexes (what
//! cgroups and `Cpus_allowed_list` use), never hwloc logical indexes.

use pinc_cpulist::CpuList;
use serde::Serialize;

/// A processor package (socket).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Package {
    pub os_index: u32,
    /// OS indexes of the NUMA nodes whose CPUs sit in this package.
    pub numa_nodes: Vec<u32>,
}

/// What kind of memory a NUMA node holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemoryKind {
    Dram,
    /// High-bandwidth memory (KNL MCDRAM, HBM2e on Sapphire Rapids Max...).
    Hbm,
    /// GPU memory exposed as a NUMA node (POWER9/NVLink, Grace Hopper).
    Gpu,
}

/// Free and total hugepages of one size on one NUMA node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct HugepagePool {
    pub size_kb: u64,
    pub total: u64,
    pub free: u64,
}

/// A NUMA node (memory node).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct NumaNode {
    pub os_index: u32,
    /// Bytes of memory; 0 when the source does not say.
    pub memory: u64,
    pub kind: MemoryKind,
    /// PUs local to this node (empty for CPU-less memory such as MCDRAM's
    /// twin or GPU memory, whose locality is given by `near_cpus`).
    pub cpus: CpuList,
    /// For CPU-less nodes: the CPUs this memory is attached to.
    pub near_cpus: CpuList,
    pub hugepages: Vec<HugepagePool>,
}

/// A physical core with its hardware threads (PUs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Core {
    /// Position in the topology's core list (stable, logical).
    pub index: usize,
    /// The core's OS index when known (not unique across packages).
    pub os_index: Option<u32>,
    pub package: u32,
    /// The NUMA node (OS index) whose CPUs contain this core.
    pub numa: Option<u32>,
    /// Index into `Topology::l3_groups`.
    pub l3: Option<usize>,
    /// PU OS indexes, ascending.
    pub pus: Vec<u32>,
}

/// What a PCI device is, for `near=` requests and device injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    Gpu,
    /// InfiniBand/RoCE HCA (has an `mlx*`/`hfi*`-style OS device).
    Hca,
    Nic,
    Other,
}

/// A PCI device with its locality.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Device {
    /// "0000:b7:00.0".
    pub bus_id: String,
    pub kind: DeviceKind,
    pub vendor_id: u16,
    pub device_id: u16,
    /// OS device names hwloc reports ("cuda0", "nvml0", "mlx5_0", "ib0", "eth0").
    pub names: Vec<String>,
    /// NUMA nodes (OS indexes) the device is local to; empty when unknown.
    pub numa: Vec<u32>,
    /// CPUs the device is local to; empty when unknown.
    pub cpus: CpuList,
}

/// The NUMA distance matrix (ACPI SLIT style: 10 = local).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Distances {
    /// OS indexes, in the order of `values`' rows and columns.
    pub nodes: Vec<u32>,
    /// Row-major, `nodes.len()` squared.
    pub values: Vec<u64>,
}

impl Distances {
    pub fn get(&self, from: u32, to: u32) -> Option<u64> {
        let i = self.nodes.iter().position(|&n| n == from)?;
        let j = self.nodes.iter().position(|&n| n == to)?;
        self.values.get(i * self.nodes.len() + j).copied()
    }
}

/// A whole node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
pub struct Topology {
    /// Where it came from ("live", a file path, "synthetic: ...").
    pub source: String,
    pub packages: Vec<Package>,
    pub numa_nodes: Vec<NumaNode>,
    /// L3 cache groups (CCDs, CCXs, sockets), as CPU sets.
    pub l3_groups: Vec<CpuList>,
    pub cores: Vec<Core>,
    pub devices: Vec<Device>,
    pub distances: Option<Distances>,
}

impl Topology {
    pub fn numa(&self, os_index: u32) -> Option<&NumaNode> {
        self.numa_nodes.iter().find(|n| n.os_index == os_index)
    }

    /// Every PU, ascending.
    pub fn pus(&self) -> CpuList {
        self.cores
            .iter()
            .flat_map(|c| c.pus.iter().copied())
            .collect()
    }

    /// The core that holds a PU.
    pub fn core_of(&self, pu: u32) -> Option<&Core> {
        self.cores.iter().find(|c| c.pus.contains(&pu))
    }

    /// NUMA distance, falling back to 10 (same node) / 20 (other node)
    /// when the source has no matrix.
    pub fn distance(&self, from: u32, to: u32) -> u64 {
        self.distances
            .as_ref()
            .and_then(|d| d.get(from, to))
            .unwrap_or(if from == to { 10 } else { 20 })
    }

    /// The package holding a NUMA node's CPUs (or the CPUs it is near).
    pub fn package_of_numa(&self, os_index: u32) -> Option<u32> {
        self.packages
            .iter()
            .find(|p| p.numa_nodes.contains(&os_index))
            .map(|p| p.os_index)
    }

    /// Hardware threads per core (the most common count).
    pub fn smt(&self) -> usize {
        let mut counts = std::collections::BTreeMap::new();
        for c in &self.cores {
            *counts.entry(c.pus.len()).or_insert(0usize) += 1;
        }
        counts
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map(|(k, _)| k)
            .unwrap_or(1)
    }
}
