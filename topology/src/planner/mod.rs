//! Where a container's CPUs and memory go.
//!
//! Whole cores by default (a core is never shared between two placed
//! containers), OS indexes out, deterministic for the same input. Learned
//! from kubelet's static CPU manager and Topology Manager, Slurm and Open MPI,
//! and better for HPC where they are weak:
//! - compact picks the *best-fitting* NUMA node (fewest free cores that still
//!   fit), keeping big holes for big requests; within it, the L3 group that
//!   fits, so a small job stays on one CCD;
//! - a request larger than one node spills to the *nearest* nodes by the
//!   distance matrix, so it stays in its package when a same-package node is
//!   closer than the other socket;
//! - `near=` devices choose the nodes first; GPUs and HCAs on different nodes
//!   are merged (both nodes), not silently ignored;
//! - it plans only inside what the caller may use (its affinity and cpuset:
//!   a Slurm step or a Kubernetes pod), never widening it.

mod memory;
mod nodes;
mod take;

use std::collections::BTreeSet;

use pinc_cpulist::CpuList;
use serde::Serialize;

use crate::devices::DeviceError;
use crate::{Core, Topology};
use pinc_request::placement::{Amount, MemMode, PlacementRequest, Policy};

use memory::plan_memory;
use nodes::{choose_compact, choose_spread, choose_strict, near_devices};
use take::{cpus_of, take_cores};

/// Why a request cannot be placed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("no free cores: {wanted} needed, {free} free within the allowed CPUs {allowed}{held}")]
    NoFreeCores {
        wanted: String,
        free: String,
        allowed: String,
        held: String,
    },
    #[error(
        "policy=strict: no single NUMA node has {wanted} free (best: NUMA {node} with {free})"
    )]
    Strict {
        wanted: String,
        node: u32,
        free: String,
    },
    #[error("policy=strict: {0}")]
    StrictConflict(String),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("hbm requested, but no high-bandwidth memory node is near CPUs {0}")]
    NoHbm(String),
    #[error(
        "the chosen CPUs {cpus} use NUMA nodes {nodes}, outside the allowed memory nodes {allowed}"
    )]
    Mems {
        cpus: String,
        nodes: String,
        allowed: String,
    },
}

/// What the caller may use, and what other containers hold.
#[derive(Debug, Clone, Default)]
pub struct Constraints {
    /// The caller's CPUs (affinity ∩ cpuset.effective).
    pub allowed_cpus: CpuList,
    /// The caller's memory nodes, if confined.
    pub allowed_mems: Option<CpuList>,
    /// PUs reserved by other containers (whole cores).
    pub taken: CpuList,
}

/// A placement and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placement {
    /// The container's cpuset.cpus.
    pub cpus: CpuList,
    /// Whole cores held for the container (what the ledger records).
    pub reserved: CpuList,
    /// The container's cpuset.mems.
    pub mems: CpuList,
    /// NUMA nodes of the chosen CPUs.
    pub numa_nodes: Vec<u32>,
    pub mem_policy: Option<(MemMode, CpuList)>,
    pub reasons: Vec<String>,
}

/// A core as the planner sees it: the PUs it may use.
#[derive(Debug, Clone)]
struct Free<'t> {
    core: &'t Core,
    usable: Vec<u32>,
}

/// How much one core contributes to the request.
fn units(amount: Amount, smt: bool, c: &Free<'_>) -> usize {
    match (amount, smt) {
        (Amount::Cpus(_), true) => c.usable.len(),
        _ => 1,
    }
}

fn wanted(amount: Amount) -> usize {
    match amount {
        Amount::Cpus(n) | Amount::Cores(n) => n,
    }
}

fn describe(amount: Amount, n: usize) -> String {
    let unit = match amount {
        Amount::Cpus(_) => "CPU",
        Amount::Cores(_) => "core",
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Cores with at least one allowed PU and none held.
fn free_cores<'t>(t: &'t Topology, c: &Constraints) -> Vec<Free<'t>> {
    t.cores
        .iter()
        .filter(|core| !core.pus.iter().any(|p| c.taken.contains(*p)))
        .map(|core| Free {
            core,
            usable: core
                .pus
                .iter()
                .copied()
                .filter(|p| c.allowed_cpus.contains(*p))
                .collect(),
        })
        .filter(|f| !f.usable.is_empty())
        // A core whose memory node the caller may not use is no choice.
        .filter(|f| match (&c.allowed_mems, f.core.numa) {
            (Some(mems), Some(n)) => mems.contains(n),
            _ => true,
        })
        .collect()
}

/// Capacity of a node (in request units).
fn capacity(free: &[Free<'_>], node: u32, amount: Amount, smt: bool) -> usize {
    free.iter()
        .filter(|f| f.core.numa == Some(node))
        .map(|f| units(amount, smt, f))
        .sum()
}

/// One request being planned: its size in planner units and the cores it
/// may take.
struct Job<'a, 't> {
    t: &'t Topology,
    free: &'a [Free<'t>],
    amount: Amount,
    smt: bool,
    need: usize,
}

impl Job<'_, '_> {
    fn capacity(&self, node: u32) -> usize {
        capacity(self.free, node, self.amount, self.smt)
    }
}

/// Plans a request. `request.amount` must be set (hugepage-only requests
/// have no CPU placement).
pub fn plan(
    t: &Topology,
    request: &PlacementRequest,
    c: &Constraints,
) -> Result<Placement, PlanError> {
    let Some(amount) = request.amount else {
        return Ok(hugepages_only());
    };
    let smt = request.smt;
    let need = wanted(amount);
    let mut reasons = vec![request_reason(request, amount, need)];
    let free = free_cores(t, c);
    let job = Job {
        t,
        free: &free,
        amount,
        smt,
        need,
    };
    check_free(&job, c, &mut reasons)?;
    let near = near_devices(t, &request.near, &mut reasons)?;
    let cpu_nodes: Vec<(u32, usize)> = t
        .numa_nodes
        .iter()
        .filter(|n| !n.cpus.is_empty())
        .map(|n| (n.os_index, job.capacity(n.os_index)))
        .collect();
    let chosen = match request.policy {
        Policy::Strict => choose_strict(&job, &cpu_nodes, &near, request, &mut reasons)?,
        Policy::Compact => choose_compact(&job, &cpu_nodes, &near, &mut reasons),
        Policy::Spread => choose_spread(t, &cpu_nodes, need, &mut reasons),
    };
    let mut taken = take_cores(&job, request.policy, &chosen, &near);
    taken.sort_by_key(|t| t.free.core.index);
    let (cpus, reserved) = cpus_of(&taken, amount, smt);
    let numa_nodes: Vec<u32> = taken
        .iter()
        .filter_map(|t| t.free.core.numa)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let l3: BTreeSet<Option<usize>> = taken.iter().map(|t| t.free.core.l3).collect();
    reasons.push(format!(
        "cpus {cpus} on {} core(s), NUMA {:?}, {} L3 group(s)",
        taken.len(),
        numa_nodes,
        l3.len()
    ));
    let (mems, mem_policy) = plan_memory(t, request, c, &cpus, &numa_nodes, &mut reasons)?;
    Ok(Placement {
        cpus,
        reserved,
        mems,
        numa_nodes,
        mem_policy,
        reasons,
    })
}

/// The placement of a request with no CPUs: nothing to pin.
fn hugepages_only() -> Placement {
    Placement {
        cpus: CpuList::new(),
        reserved: CpuList::new(),
        mems: CpuList::new(),
        numa_nodes: Vec::new(),
        mem_policy: None,
        reasons: vec!["no CPU request: hugepages only".into()],
    }
}

/// The first reason: what was asked.
fn request_reason(request: &PlacementRequest, amount: Amount, need: usize) -> String {
    format!(
        "request: {}{}, policy {:?}",
        describe(amount, need),
        if request.smt {
            ""
        } else {
            ", one thread per core"
        },
        request.policy
    )
    .to_lowercase()
}

/// Records how much is free and fails when the request cannot fit at all.
fn check_free(
    job: &Job<'_, '_>,
    c: &Constraints,
    reasons: &mut Vec<String>,
) -> Result<(), PlanError> {
    let total: usize = job.free.iter().map(|f| units(job.amount, job.smt, f)).sum();
    let held_cores = job
        .t
        .cores
        .iter()
        .filter(|core| core.pus.iter().any(|p| c.taken.contains(*p)))
        .count();
    reasons.push(format!(
        "allowed CPUs {} ({} free {}, {} cores held by other containers)",
        c.allowed_cpus,
        total,
        if matches!(job.amount, Amount::Cpus(_)) && job.smt {
            "CPUs"
        } else {
            "cores"
        },
        held_cores
    ));
    if total < job.need {
        return Err(PlanError::NoFreeCores {
            wanted: describe(job.amount, job.need),
            free: total.to_string(),
            allowed: c.allowed_cpus.to_string(),
            held: if held_cores > 0 {
                format!(" ({held_cores} cores held by other pinc containers)")
            } else {
                String::new()
            },
        });
    }
    Ok(())
}
