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

use std::collections::BTreeSet;

use pinc_cpulist::CpuList;
use serde::Serialize;

use crate::devices::{self, DeviceError};
use crate::request::{Amount, MemMode, Policy, Request};
use crate::{Core, MemoryKind, Topology};

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

/// A taken core and how many request units it serves.
#[derive(Debug, Clone)]
struct Taken<'t> {
    free: Free<'t>,
    used: usize,
}

/// Takes cores from `node` until `need` units: the smallest L3 group that
/// fits alone; otherwise the fullest groups of the package that can hold the
/// rest (a NUMA node may span packages: EPYC NPS0), then the others.
/// Returns units taken.
fn take_from_node<'t>(
    free: &[Free<'t>],
    node: u32,
    need: usize,
    amount: Amount,
    smt: bool,
    out: &mut Vec<Taken<'t>>,
) -> usize {
    let mut groups: Vec<(Option<usize>, u32, Vec<&Free<'t>>)> = Vec::new();
    for f in free.iter().filter(|f| f.core.numa == Some(node)) {
        match groups.iter_mut().find(|(l3, _, _)| *l3 == f.core.l3) {
            Some((_, _, v)) => v.push(f),
            None => groups.push((f.core.l3, f.core.package, vec![f])),
        }
    }
    let cap = |g: &Vec<&Free<'_>>| g.iter().map(|f| units(amount, smt, f)).sum::<usize>();
    let fitting = groups
        .iter()
        .filter(|(_, _, g)| cap(g) >= need)
        .min_by_key(|(l3, _, g)| (cap(g), *l3));
    let order: Vec<&Free<'t>> = match fitting {
        Some((_, _, g)) => g.clone(),
        None => {
            let mut per_package: Vec<(u32, usize)> = Vec::new();
            for (_, pkg, g) in &groups {
                match per_package.iter_mut().find(|(p, _)| p == pkg) {
                    Some((_, c)) => *c += cap(g),
                    None => per_package.push((*pkg, cap(g))),
                }
            }
            let home = per_package
                .iter()
                .filter(|(_, c)| *c >= need)
                .min_by_key(|(p, c)| (*c, *p))
                .or_else(|| {
                    per_package
                        .iter()
                        .max_by_key(|(p, c)| (*c, std::cmp::Reverse(*p)))
                })
                .map(|(p, _)| *p);
            let mut sorted = groups.clone();
            sorted.sort_by_key(|(l3, pkg, g)| (Some(*pkg) != home, std::cmp::Reverse(cap(g)), *l3));
            sorted.into_iter().flat_map(|(_, _, g)| g).collect()
        }
    };
    let mut got = 0;
    for f in order {
        if got >= need {
            break;
        }
        let used = units(amount, smt, f).min(need - got);
        got += used;
        out.push(Taken {
            free: f.clone(),
            used,
        });
    }
    got
}

/// Fills nodes in order; returns what is still missing.
fn take_in_order<'t>(
    free: &[Free<'t>],
    nodes: &[u32],
    need: usize,
    amount: Amount,
    smt: bool,
    out: &mut Vec<Taken<'t>>,
) -> usize {
    let mut left = need;
    for &n in nodes {
        if left == 0 {
            break;
        }
        left = left.saturating_sub(take_from_node(free, n, left, amount, smt, out));
    }
    left
}

/// Even shares across nodes, capped by what each holds; returns what is
/// still missing.
fn take_even<'t>(
    free: &[Free<'t>],
    nodes: &[u32],
    need: usize,
    amount: Amount,
    smt: bool,
    out: &mut Vec<Taken<'t>>,
) -> usize {
    let mut quotas: Vec<(u32, usize, usize)> = nodes
        .iter()
        .map(|&n| (n, capacity(free, n, amount, smt), 0))
        .collect();
    let mut left = need;
    while left > 0 {
        let open: Vec<usize> = (0..quotas.len())
            .filter(|&i| quotas[i].2 < quotas[i].1)
            .collect();
        if open.is_empty() {
            break;
        }
        for i in open {
            if left == 0 {
                break;
            }
            quotas[i].2 += 1;
            left -= 1;
        }
    }
    let mut missing = left;
    for (n, _, q) in quotas {
        if q > 0 {
            let got = take_from_node(free, n, q, amount, smt, out);
            missing += q.saturating_sub(got);
        }
    }
    missing
}

/// The node set a compact placement grows from `seed`: nearest first by
/// distance to the set, then same package, then capacity, then index.
fn grow(t: &Topology, seed: u32, nodes: &[(u32, usize)], need: usize) -> Vec<u32> {
    let mut chosen = vec![seed];
    let mut have = nodes
        .iter()
        .find(|(n, _)| *n == seed)
        .map_or(0, |(_, c)| *c);
    let seed_pkg = t.package_of_numa(seed);
    while have < need {
        let next = nodes
            .iter()
            .filter(|(n, c)| !chosen.contains(n) && *c > 0)
            .min_by_key(|(n, c)| {
                let d = chosen
                    .iter()
                    .map(|&m| t.distance(m, *n))
                    .min()
                    .unwrap_or(u64::MAX);
                (
                    d,
                    t.package_of_numa(*n) != seed_pkg,
                    std::cmp::Reverse(*c),
                    *n,
                )
            });
        match next {
            Some((n, c)) => {
                chosen.push(*n);
                have += c;
            }
            None => break,
        }
    }
    chosen
}

/// Score of a node set: fewer packages (crossing a socket costs most), then
/// fewer nodes, then shorter distances.
fn score(t: &Topology, set: &[u32]) -> (usize, usize, u64) {
    let packages: BTreeSet<Option<u32>> = set.iter().map(|&n| t.package_of_numa(n)).collect();
    let dist: u64 = set
        .iter()
        .flat_map(|&a| set.iter().map(move |&b| (a, b)))
        .map(|(a, b)| t.distance(a, b))
        .sum();
    (packages.len(), set.len(), dist)
}

/// Plans a request. `request.amount` must be set (hugepage-only requests
/// have no CPU placement).
pub fn plan(t: &Topology, request: &Request, c: &Constraints) -> Result<Placement, PlanError> {
    let Some(amount) = request.amount else {
        return Ok(Placement {
            cpus: CpuList::new(),
            reserved: CpuList::new(),
            mems: CpuList::new(),
            numa_nodes: Vec::new(),
            mem_policy: None,
            reasons: vec!["no CPU request: hugepages only".into()],
        });
    };
    let smt = request.smt;
    let need = wanted(amount);
    let mut reasons = vec![format!(
        "request: {}{}, policy {:?}",
        describe(amount, need),
        if smt { "" } else { ", one thread per core" },
        request.policy
    )
    .to_lowercase()];
    let free = free_cores(t, c);
    let total: usize = free.iter().map(|f| units(amount, smt, f)).sum();
    let held_cores = t
        .cores
        .iter()
        .filter(|core| core.pus.iter().any(|p| c.taken.contains(*p)))
        .count();
    reasons.push(format!(
        "allowed CPUs {} ({} free {}, {} cores held by other containers)",
        c.allowed_cpus,
        total,
        if matches!(amount, Amount::Cpus(_)) && smt {
            "CPUs"
        } else {
            "cores"
        },
        held_cores
    ));
    if total < need {
        return Err(PlanError::NoFreeCores {
            wanted: describe(amount, need),
            free: total.to_string(),
            allowed: c.allowed_cpus.to_string(),
            held: if held_cores > 0 {
                format!(" ({held_cores} cores held by other pinc containers)")
            } else {
                String::new()
            },
        });
    }

    // Preferred nodes from devices, merged like the Topology Manager merges
    // hints, but conflicts widen the set instead of being dropped.
    let mut preferred: Vec<u32> = Vec::new();
    let mut per_device: Vec<(String, Vec<u32>)> = Vec::new();
    for selector in &request.near {
        let d = devices::resolve(t, selector)?;
        let nodes = devices::numa_of(t, d);
        reasons.push(format!("near {selector} ({}): NUMA {:?}", d.bus_id, nodes));
        per_device.push((selector.clone(), nodes.clone()));
        for n in nodes {
            if !preferred.contains(&n) {
                preferred.push(n);
            }
        }
    }
    preferred.sort_unstable();
    let conflict = per_device.len() > 1 && {
        let first: BTreeSet<u32> = per_device[0].1.iter().copied().collect();
        per_device.iter().any(|(_, n)| {
            n.iter()
                .copied()
                .collect::<BTreeSet<_>>()
                .is_disjoint(&first)
        })
    };

    let cpu_nodes: Vec<(u32, usize)> = t
        .numa_nodes
        .iter()
        .filter(|n| !n.cpus.is_empty())
        .map(|n| (n.os_index, capacity(&free, n.os_index, amount, smt)))
        .collect();

    let chosen: Vec<u32> = match request.policy {
        Policy::Strict => {
            if conflict {
                return Err(PlanError::StrictConflict(format!(
                    "the near devices sit on different NUMA nodes: {}",
                    per_device
                        .iter()
                        .map(|(s, n)| format!("{s} on {n:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            let pool: Vec<&(u32, usize)> = cpu_nodes
                .iter()
                .filter(|(n, _)| preferred.is_empty() || preferred.contains(n))
                .collect();
            match pool
                .iter()
                .filter(|(_, cap)| *cap >= need)
                .min_by_key(|(n, cap)| (*cap, *n))
            {
                Some((n, cap)) => {
                    reasons.push(format!("NUMA {n}: best fit ({cap} free)"));
                    vec![*n]
                }
                None => {
                    let Some((node, best)) = pool
                        .iter()
                        .max_by_key(|(n, cap)| (*cap, std::cmp::Reverse(*n)))
                        .map(|(n, c)| (*n, *c))
                    else {
                        return Err(PlanError::StrictConflict(format!(
                            "no NUMA node with CPUs is near {}",
                            request.near.join(",")
                        )));
                    };
                    return Err(PlanError::Strict {
                        wanted: describe(amount, need),
                        node,
                        free: best.to_string(),
                    });
                }
            }
        }
        Policy::Compact => {
            let fits_alone = |pool: &[u32]| {
                cpu_nodes
                    .iter()
                    .filter(|(n, cap)| pool.contains(n) && *cap >= need)
                    .min_by_key(|(n, cap)| (*cap, *n))
                    .map(|(n, _)| *n)
            };
            let all: Vec<u32> = cpu_nodes.iter().map(|(n, _)| *n).collect();
            let single = if conflict {
                None
            } else if preferred.is_empty() {
                fits_alone(&all)
            } else {
                fits_alone(&preferred)
            };
            match single {
                Some(n) => {
                    reasons.push(format!("NUMA {n}: best fit among nodes that fit alone"));
                    vec![n]
                }
                None => {
                    let seeds: Vec<u32> = if preferred.is_empty() {
                        all.clone()
                    } else {
                        preferred.clone()
                    };
                    let mut best: Option<Vec<u32>> = None;
                    for seed in seeds {
                        let mut set = grow(t, seed, &cpu_nodes, need);
                        // Device nodes always belong to the set.
                        for p in &preferred {
                            if !set.contains(p) {
                                set.push(*p);
                            }
                        }
                        let cap: usize = set.iter().map(|n| capacity(&free, *n, amount, smt)).sum();
                        if cap < need {
                            continue;
                        }
                        if best.as_ref().is_none_or(|b| score(t, &set) < score(t, b)) {
                            best = Some(set);
                        }
                    }
                    let set = best.unwrap_or(all);
                    reasons.push(format!(
                        "NUMA {:?}: no single node fits; nearest nodes by distance{}",
                        set,
                        if conflict {
                            " (near devices on different nodes)"
                        } else {
                            ""
                        }
                    ));
                    set
                }
            }
        }
        Policy::Spread => {
            let mut nodes: Vec<(u32, usize)> =
                cpu_nodes.iter().copied().filter(|(_, c)| *c > 0).collect();
            // Alternate packages so two nodes of one request land on two sockets.
            nodes.sort_by_key(|(n, _)| {
                let pkg = t.package_of_numa(*n).unwrap_or(0);
                let rank = t
                    .numa_nodes
                    .iter()
                    .filter(|m| {
                        m.os_index < *n
                            && t.package_of_numa(m.os_index) == Some(pkg)
                            && !m.cpus.is_empty()
                    })
                    .count();
                (rank, pkg, *n)
            });
            nodes.truncate(need.max(1));
            reasons.push(format!(
                "spread across NUMA {:?}",
                nodes.iter().map(|(n, _)| *n).collect::<Vec<_>>()
            ));
            nodes.into_iter().map(|(n, _)| n).collect()
        }
    };

    // Take cores.
    let mut taken: Vec<Taken<'_>> = Vec::new();
    if request.policy == Policy::Spread || conflict {
        // Even quotas (spread; or one share per device node when near
        // devices disagree), re-distributing what a node cannot hold.
        let nodes = if request.policy == Policy::Spread {
            chosen.clone()
        } else {
            preferred.clone()
        };
        let left = take_even(&free, &nodes, need, amount, smt, &mut taken);
        if left > 0 {
            // Device nodes were too small: spill to the rest of the set.
            let rest: Vec<u32> = chosen
                .iter()
                .copied()
                .filter(|n| !nodes.contains(n))
                .collect();
            take_in_order(&free, &rest, left, amount, smt, &mut taken);
        }
    } else {
        let mut order = chosen.clone();
        if order.len() > 1 {
            order.sort_by_key(|n| {
                (
                    !preferred.contains(n),
                    std::cmp::Reverse(capacity(&free, *n, amount, smt)),
                    *n,
                )
            });
        }
        take_in_order(&free, &order, need, amount, smt, &mut taken);
    }

    // Each core gives what it was taken for: with SMT its first `used`
    // usable threads, cores=N all of them, without SMT one. Whole cores are
    // reserved either way.
    taken.sort_by_key(|t| t.free.core.index);
    let mut cpus = CpuList::new();
    let mut reserved = CpuList::new();
    for t in &taken {
        let f = &t.free;
        for p in &f.core.pus {
            reserved.insert(*p);
        }
        let pus: Vec<u32> = match (amount, smt) {
            (Amount::Cpus(_), true) => f.usable.iter().copied().take(t.used).collect(),
            (Amount::Cores(_), true) => f.usable.clone(),
            (_, false) => f.usable.iter().copied().take(1).collect(),
        };
        for p in pus {
            cpus.insert(p);
        }
    }
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

    // Memory: the CPUs' nodes, or the HBM nodes near them.
    let mut mems: CpuList = numa_nodes.iter().copied().collect();
    let mut policy_nodes = mems.clone();
    let mut mode = request.mem;
    let mut preferred_hbm: Option<u32> = None;
    if request.hbm {
        let hbm: CpuList = t
            .numa_nodes
            .iter()
            .filter(|n| n.kind == MemoryKind::Hbm)
            .filter(|n| {
                let near = if n.cpus.is_empty() {
                    &n.near_cpus
                } else {
                    &n.cpus
                };
                !near.intersection(&cpus).is_empty()
            })
            .map(|n| n.os_index)
            .collect();
        if hbm.is_empty() {
            return Err(PlanError::NoHbm(cpus.to_string()));
        }
        reasons.push(format!("hbm: NUMA {hbm} near the cpus"));
        // Preferred by default: fall back to DRAM when HBM is full.
        mode = Some(mode.unwrap_or(MemMode::Preferred));
        if mode == Some(MemMode::Preferred) {
            mems = mems.iter().chain(hbm.iter()).collect();
        } else {
            mems = hbm.clone();
        }
        // For `preferred`, the HBM node beside most of the CPUs comes first.
        let beside = |n: u32| {
            t.numa(n).map_or(0, |node| {
                let near = if node.cpus.is_empty() {
                    &node.near_cpus
                } else {
                    &node.cpus
                };
                near.intersection(&cpus).len()
            })
        };
        let mut ordered: Vec<u32> = hbm.iter().collect();
        ordered.sort_by_key(|&n| (std::cmp::Reverse(beside(n)), n));
        preferred_hbm = ordered.first().copied();
        policy_nodes = hbm;
    }
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
    Ok(Placement {
        cpus,
        reserved,
        mems,
        numa_nodes,
        mem_policy,
        reasons,
    })
}
