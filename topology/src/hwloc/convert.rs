//! Converting hwloc's object tree to the model, step by step.

use std::collections::BTreeMap;

use hwlocality::object::attributes::ObjectAttributes;
use hwlocality::object::distance::DistancesKind;
use hwlocality::object::types::ObjectType;
use hwlocality::Topology as HwTopology;
use pinc_cpulist::CpuList;

use super::devices::devices;
use super::{cpus_of, index, memory_kind, page_type_pools, text};
use crate::error::TopologyError;
use crate::model::{Core, Distances, HugepagePool, MemoryKind, NumaNode, Package, Topology};

struct RawNode {
    os_index: u32,
    memory: u64,
    kind: MemoryKind,
    plain_dram: bool,
    hw_cpus: CpuList,
    parent_cpus: CpuList,
    hugepages: Vec<HugepagePool>,
}

pub(super) fn convert(
    hw: &HwTopology,
    source: String,
    kernel_cpus: Option<&BTreeMap<u32, CpuList>>,
) -> Result<Topology, TopologyError> {
    let what = source.as_str();
    let all_pus = gather_pus(hw, what)?;
    let raw_nodes = gather_nodes(hw, &all_pus, what)?;
    let owned = assign_pus(&raw_nodes, kernel_cpus, &all_pus);
    let numa_nodes = finish_nodes(raw_nodes, &owned);
    let package_sets = gather_packages(hw, &all_pus, what)?;
    let packages = link_packages(&package_sets, &numa_nodes);
    let l3_groups = gather_l3_groups(hw, &all_pus);
    let core_sets = gather_cores(hw, &all_pus, what)?;
    let cores = number_cores(core_sets, &package_sets, &numa_nodes, &l3_groups);
    let devices = devices(hw, &numa_nodes, &all_pus);
    let distances = distances(hw, what)?;
    Ok(Topology {
        source,
        packages,
        numa_nodes,
        l3_groups,
        cores,
        devices,
        distances,
    })
}

/// Every PU's OS index.
fn gather_pus(hw: &HwTopology, what: &str) -> Result<CpuList, TopologyError> {
    let mut all_pus = CpuList::new();
    for pu in hw.objects_with_type(ObjectType::PU) {
        let os = pu.os_index().ok_or_else(|| TopologyError::Unexpected {
            what: what.to_string(),
            reason: "a PU has no OS index".to_string(),
        })?;
        all_pus.insert(index(os, what)?);
    }
    Ok(all_pus)
}

/// NUMA nodes as hwloc reports them, in its (logical) order.
fn gather_nodes(
    hw: &HwTopology,
    all_pus: &CpuList,
    what: &str,
) -> Result<Vec<RawNode>, TopologyError> {
    let mut raw_nodes = Vec::new();
    for node in hw.objects_with_type(ObjectType::NUMANode) {
        let os_index = index(node.os_index().unwrap_or(node.logical_index()), what)?;
        let subtype = text(node.subtype());
        let memory = match node.attributes() {
            Some(ObjectAttributes::NUMANode(a)) => a.local_memory().map_or(0, |m| m.get()),
            _ => 0,
        };
        let hw_cpus = cpus_of(node).intersection(all_pus);
        let parent_cpus = node
            .parent()
            .map(cpus_of)
            .unwrap_or_default()
            .intersection(all_pus);
        raw_nodes.push(RawNode {
            os_index,
            memory,
            kind: memory_kind(subtype.as_deref()),
            plain_dram: subtype
                .as_deref()
                .is_none_or(|s| s.eq_ignore_ascii_case("dram")),
            hw_cpus,
            parent_cpus,
            hugepages: page_type_pools(node),
        });
    }
    Ok(raw_nodes)
}

/// Which node owns each PU: the kernel's answer when known, else the first
/// plain DRAM node hwloc puts it under (then any node, in hwloc order).
fn assign_pus(
    raw_nodes: &[RawNode],
    kernel_cpus: Option<&BTreeMap<u32, CpuList>>,
    all_pus: &CpuList,
) -> BTreeMap<u32, CpuList> {
    let mut owned: BTreeMap<u32, CpuList> = BTreeMap::new();
    match kernel_cpus {
        Some(map) => {
            for n in raw_nodes {
                let cpus = map
                    .get(&n.os_index)
                    .map(|c| c.intersection(all_pus))
                    .unwrap_or_default();
                owned.insert(n.os_index, cpus);
            }
        }
        None => {
            let mut order: Vec<&RawNode> = raw_nodes.iter().collect();
            // Stable: plain DRAM first, hwloc order otherwise.
            order.sort_by_key(|n| !n.plain_dram);
            for n in raw_nodes {
                owned.insert(n.os_index, CpuList::new());
            }
            for pu in all_pus.iter() {
                if let Some(n) = order.iter().find(|n| n.hw_cpus.contains(pu)) {
                    if let Some(set) = owned.get_mut(&n.os_index) {
                        set.insert(pu);
                    }
                }
            }
        }
    }
    owned
}

/// The nodes with their owned CPUs, or for CPU-less ones the CPUs they sit
/// near; sorted by OS index.
fn finish_nodes(raw_nodes: Vec<RawNode>, owned: &BTreeMap<u32, CpuList>) -> Vec<NumaNode> {
    let mut numa_nodes: Vec<NumaNode> = raw_nodes
        .into_iter()
        .map(|n| {
            let cpus = owned.get(&n.os_index).cloned().unwrap_or_default();
            let near_cpus = if cpus.is_empty() {
                if n.parent_cpus.is_empty() {
                    n.hw_cpus
                } else {
                    n.parent_cpus
                }
            } else {
                CpuList::new()
            };
            NumaNode {
                os_index: n.os_index,
                memory: n.memory,
                kind: n.kind,
                cpus,
                near_cpus,
                hugepages: n.hugepages,
            }
        })
        .collect();
    numa_nodes.sort_by_key(|n| n.os_index);
    numa_nodes
}

/// Packages as (OS index, CPUs); one package of every PU when hwloc
/// reports none.
fn gather_packages(
    hw: &HwTopology,
    all_pus: &CpuList,
    what: &str,
) -> Result<Vec<(u32, CpuList)>, TopologyError> {
    let mut package_sets: Vec<(u32, CpuList)> = Vec::new();
    for p in hw.objects_with_type(ObjectType::Package) {
        let os = index(p.os_index().unwrap_or(p.logical_index()), what)?;
        package_sets.push((os, cpus_of(p).intersection(all_pus)));
    }
    if package_sets.is_empty() {
        package_sets.push((0, all_pus.clone()));
    }
    Ok(package_sets)
}

/// Each package with the nodes whose CPUs (or near CPUs) it holds.
fn link_packages(package_sets: &[(u32, CpuList)], numa_nodes: &[NumaNode]) -> Vec<Package> {
    package_sets
        .iter()
        .map(|(os, cpus)| Package {
            os_index: *os,
            numa_nodes: numa_nodes
                .iter()
                .filter(|n| {
                    let local = if n.cpus.is_empty() {
                        &n.near_cpus
                    } else {
                        &n.cpus
                    };
                    !local.intersection(cpus).is_empty()
                })
                .map(|n| n.os_index)
                .collect(),
        })
        .collect()
}

/// L3 groups. hwloc 2.0 XML (KNL in hybrid mode) stores the MCDRAM cache
/// as an L3Cache of subtype "MemorySideCache": not a CPU cache.
fn gather_l3_groups(hw: &HwTopology, all_pus: &CpuList) -> Vec<CpuList> {
    hw.objects_with_type(ObjectType::L3Cache)
        .filter(|c| text(c.subtype()).is_none_or(|s| !s.eq_ignore_ascii_case("MemorySideCache")))
        .map(|c| cpus_of(c).intersection(all_pus))
        .filter(|c| !c.is_empty())
        .collect()
}

/// Cores as (OS index, PUs), then a core of its own for each PU hwloc put
/// in no core.
fn gather_cores(
    hw: &HwTopology,
    all_pus: &CpuList,
    what: &str,
) -> Result<Vec<(Option<u32>, CpuList)>, TopologyError> {
    let mut core_sets: Vec<(Option<u32>, CpuList)> = Vec::new();
    for c in hw.objects_with_type(ObjectType::Core) {
        let pus = cpus_of(c).intersection(all_pus);
        if pus.is_empty() {
            continue;
        }
        let os = c.os_index().map(|i| index(i, what)).transpose()?;
        core_sets.push((os, pus));
    }
    for pu in all_pus.iter() {
        if !core_sets.iter().any(|(_, pus)| pus.contains(pu)) {
            core_sets.push((None, std::iter::once(pu).collect()));
        }
    }
    Ok(core_sets)
}

/// The cores, each placed in the package, node and L3 group of its first PU.
fn number_cores(
    core_sets: Vec<(Option<u32>, CpuList)>,
    package_sets: &[(u32, CpuList)],
    numa_nodes: &[NumaNode],
    l3_groups: &[CpuList],
) -> Vec<Core> {
    let numa_of_pu = |pu: u32| {
        numa_nodes
            .iter()
            .find(|n| n.cpus.contains(pu))
            .map(|n| n.os_index)
    };
    let package_of_pu = |pu: u32| {
        package_sets
            .iter()
            .find(|(_, cpus)| cpus.contains(pu))
            .map(|(os, _)| *os)
    };
    let mut cores = Vec::with_capacity(core_sets.len());
    for (i, (os_index, pus)) in core_sets.into_iter().enumerate() {
        let Some(first) = pus.iter().next() else {
            continue;
        };
        cores.push(Core {
            index: i,
            os_index,
            package: package_of_pu(first).unwrap_or(0),
            numa: numa_of_pu(first),
            l3: l3_groups.iter().position(|l3| l3.contains(first)),
            pus: pus.iter().collect(),
        });
    }
    cores
}

/// OS device names whose presence makes a PCI device a GPU.
/// The NUMA latency matrix, rows and columns in OS-index order.
fn distances(hw: &HwTopology, what: &str) -> Result<Option<Distances>, TopologyError> {
    let all = hw
        .distances_with_type(None, ObjectType::NUMANode)
        .map_err(|source| TopologyError::Load {
            what: what.to_string(),
            source,
        })?;
    let chosen = all
        .iter()
        .find(|d| d.name().is_some_and(|n| n.to_bytes() == b"NUMALatency"))
        .or_else(|| {
            all.iter()
                .find(|d| d.kind().contains(DistancesKind::MEANS_LATENCY))
        })
        .or_else(|| all.first());
    let Some(d) = chosen else {
        return Ok(None);
    };
    let mut ids = Vec::with_capacity(d.num_objects());
    for obj in d.objects() {
        let Some(obj) = obj else {
            return Ok(None);
        };
        ids.push(index(obj.os_index().unwrap_or(obj.logical_index()), what)?);
    }
    let n = ids.len();
    let raw = d.distances();
    if raw.len() != n * n {
        return Err(TopologyError::Unexpected {
            what: what.to_string(),
            reason: format!("a {n}-node distance matrix has {} values", raw.len()),
        });
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| ids[i]);
    let nodes: Vec<u32> = order.iter().map(|&i| ids[i]).collect();
    let mut values = Vec::with_capacity(n * n);
    for &i in &order {
        for &j in &order {
            values.push(raw[i * n + j]);
        }
    }
    Ok(Some(Distances { nodes, values }))
}
