//! Where a placement's memory goes: the CPUs' nodes or the HBM beside them.

use pinc_cpulist::CpuList;

use super::{Constraints, PlanError};
use crate::{MemoryKind, NumaNode, Topology};
use pinc_request::placement::{MemMode, PlacementRequest};

/// The CPUs a memory node serves: its own, or for a CPU-less node (HBM,
/// CXL) the ones it sits beside.
fn served_cpus(n: &NumaNode) -> &CpuList {
    if n.cpus.is_empty() {
        &n.near_cpus
    } else {
        &n.cpus
    }
}

/// HBM nodes near any of `cpus`.
fn hbm_near(t: &Topology, cpus: &CpuList) -> CpuList {
    t.numa_nodes
        .iter()
        .filter(|n| n.kind == MemoryKind::Hbm)
        .filter(|n| !served_cpus(n).intersection(cpus).is_empty())
        .map(|n| n.os_index)
        .collect()
}

/// The HBM node beside most of `cpus` (lowest index on a tie).
fn hbm_beside_most(t: &Topology, hbm: &CpuList, cpus: &CpuList) -> Option<u32> {
    let beside = |n: u32| {
        t.numa(n)
            .map_or(0, |node| served_cpus(node).intersection(cpus).len())
    };
    let mut ordered: Vec<u32> = hbm.iter().collect();
    ordered.sort_by_key(|&n| (std::cmp::Reverse(beside(n)), n));
    ordered.first().copied()
}

/// Memory: the CPUs' nodes, or the HBM nodes near them; returns the
/// container's cpuset.mems and its memory policy.
pub(super) fn plan_memory(
    t: &Topology,
    request: &PlacementRequest,
    c: &Constraints,
    cpus: &CpuList,
    numa_nodes: &[u32],
    reasons: &mut Vec<String>,
) -> Result<(CpuList, Option<(MemMode, CpuList)>), PlanError> {
    let local: CpuList = numa_nodes.iter().copied().collect();
    let (mems, mode, policy_nodes, preferred_hbm) = if request.hbm {
        let hbm = hbm_near(t, cpus);
        if hbm.is_empty() {
            return Err(PlanError::NoHbm(cpus.to_string()));
        }
        reasons.push(format!("hbm: NUMA {hbm} near the cpus"));
        // Preferred by default: fall back to DRAM when HBM is full.
        let mode = request.mem.unwrap_or(MemMode::Preferred);
        let mems = if mode == MemMode::Preferred {
            local.iter().chain(hbm.iter()).collect()
        } else {
            hbm.clone()
        };
        // For `preferred`, the HBM node beside most of the CPUs comes first.
        let first = hbm_beside_most(t, &hbm, cpus);
        (mems, Some(mode), hbm, first)
    } else {
        (local.clone(), request.mem, local, None)
    };
    if let Some(allowed) = &c.allowed_mems {
        if !mems.is_subset(allowed) {
            return Err(PlanError::Mems {
                cpus: cpus.to_string(),
                nodes: mems.to_string(),
                allowed: allowed.to_string(),
            });
        }
    }
    let mem_policy = mode.map(|m| {
        let nodes = match m {
            MemMode::Preferred => match preferred_hbm {
                Some(n) => std::iter::once(n).collect(),
                None => policy_nodes.iter().take(1).collect(),
            },
            _ => policy_nodes.clone(),
        };
        (m, nodes)
    });
    reasons.push(match &mem_policy {
        Some((m, n)) => format!("mems {mems}, memory policy {m:?} on NUMA {n}").to_lowercase(),
        None => format!("mems {mems} (local to the cpus)"),
    });
    Ok((mems, mem_policy))
}
