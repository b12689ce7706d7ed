//! Which NUMA nodes a request goes to, per policy and `near=` devices.

use std::collections::BTreeSet;

use super::{describe, Job, PlanError};
use crate::devices;
use crate::Topology;
use pinc_request::placement::PlacementRequest;

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

/// The NUMA nodes the `near=` devices point at.
pub(super) struct Near {
    /// Every device's nodes, merged and sorted.
    pub(super) preferred: Vec<u32>,
    /// Each selector and its nodes, for error messages.
    pub(super) per_device: Vec<(String, Vec<u32>)>,
    /// Two devices share no node.
    pub(super) conflict: bool,
}

/// Preferred nodes from devices, merged like the Topology Manager merges
/// hints, but conflicts widen the set instead of being dropped.
pub(super) fn near_devices(
    t: &Topology,
    near: &[String],
    reasons: &mut Vec<String>,
) -> Result<Near, PlanError> {
    let mut preferred: Vec<u32> = Vec::new();
    let mut per_device: Vec<(String, Vec<u32>)> = Vec::new();
    for selector in near {
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
    Ok(Near {
        preferred,
        per_device,
        conflict,
    })
}

/// `policy=strict`: the best-fitting single node (among the device nodes,
/// if any), or an error naming the closest miss.
pub(super) fn choose_strict(
    job: &Job<'_, '_>,
    cpu_nodes: &[(u32, usize)],
    near: &Near,
    request: &PlacementRequest,
    reasons: &mut Vec<String>,
) -> Result<Vec<u32>, PlanError> {
    if near.conflict {
        return Err(PlanError::StrictConflict(format!(
            "the near devices sit on different NUMA nodes: {}",
            near.per_device
                .iter()
                .map(|(s, n)| format!("{s} on {n:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let pool: Vec<&(u32, usize)> = cpu_nodes
        .iter()
        .filter(|(n, _)| near.preferred.is_empty() || near.preferred.contains(n))
        .collect();
    if let Some((n, cap)) = pool
        .iter()
        .filter(|(_, cap)| *cap >= job.need)
        .min_by_key(|(n, cap)| (*cap, *n))
    {
        reasons.push(format!("NUMA {n}: best fit ({cap} free)"));
        return Ok(vec![*n]);
    }
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
    Err(PlanError::Strict {
        wanted: describe(job.amount, job.need),
        node,
        free: best.to_string(),
    })
}

/// `policy=compact`: the best-fitting node that holds the request alone,
/// else the tightest set of nearest nodes.
pub(super) fn choose_compact(
    job: &Job<'_, '_>,
    cpu_nodes: &[(u32, usize)],
    near: &Near,
    reasons: &mut Vec<String>,
) -> Vec<u32> {
    let fits_alone = |pool: &[u32]| {
        cpu_nodes
            .iter()
            .filter(|(n, cap)| pool.contains(n) && *cap >= job.need)
            .min_by_key(|(n, cap)| (*cap, *n))
            .map(|(n, _)| *n)
    };
    let all: Vec<u32> = cpu_nodes.iter().map(|(n, _)| *n).collect();
    let single = if near.conflict {
        None
    } else if near.preferred.is_empty() {
        fits_alone(&all)
    } else {
        fits_alone(&near.preferred)
    };
    if let Some(n) = single {
        reasons.push(format!("NUMA {n}: best fit among nodes that fit alone"));
        return vec![n];
    }
    let set = nearest_set(job, cpu_nodes, &near.preferred).unwrap_or(all);
    reasons.push(format!(
        "NUMA {:?}: no single node fits; nearest nodes by distance{}",
        set,
        if near.conflict {
            " (near devices on different nodes)"
        } else {
            ""
        }
    ));
    set
}

/// The best-scoring node set grown from each seed (the device nodes, or
/// every node) that holds the request; device nodes always belong to it.
fn nearest_set(
    job: &Job<'_, '_>,
    cpu_nodes: &[(u32, usize)],
    preferred: &[u32],
) -> Option<Vec<u32>> {
    let seeds: Vec<u32> = if preferred.is_empty() {
        cpu_nodes.iter().map(|(n, _)| *n).collect()
    } else {
        preferred.to_vec()
    };
    let mut best: Option<Vec<u32>> = None;
    for seed in seeds {
        let mut set = grow(job.t, seed, cpu_nodes, job.need);
        for p in preferred {
            if !set.contains(p) {
                set.push(*p);
            }
        }
        let cap: usize = set.iter().map(|n| job.capacity(*n)).sum();
        if cap < job.need {
            continue;
        }
        if best
            .as_ref()
            .is_none_or(|b| score(job.t, &set) < score(job.t, b))
        {
            best = Some(set);
        }
    }
    best
}

/// `policy=spread`: up to `need` nodes, alternating packages so two nodes
/// of one request land on two sockets.
pub(super) fn choose_spread(
    t: &Topology,
    cpu_nodes: &[(u32, usize)],
    need: usize,
    reasons: &mut Vec<String>,
) -> Vec<u32> {
    let mut nodes: Vec<(u32, usize)> = cpu_nodes.iter().copied().filter(|(_, c)| *c > 0).collect();
    nodes.sort_by_key(|(n, _)| {
        let pkg = t.package_of_numa(*n).unwrap_or(0);
        let rank = t
            .numa_nodes
            .iter()
            .filter(|m| {
                m.os_index < *n && t.package_of_numa(m.os_index) == Some(pkg) && !m.cpus.is_empty()
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
