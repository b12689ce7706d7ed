//! Taking cores from the chosen nodes, L3 group by L3 group.

use pinc_cpulist::CpuList;

use super::nodes::Near;
use super::{capacity, units, Free, Job};
use pinc_request::placement::{Amount, Policy};

/// A taken core and how many request units it serves.
#[derive(Debug, Clone)]
pub(super) struct Taken<'t> {
    pub(super) free: Free<'t>,
    pub(super) used: usize,
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

/// Takes the cores from the chosen nodes.
pub(super) fn take_cores<'t>(
    job: &Job<'_, 't>,
    policy: Policy,
    chosen: &[u32],
    near: &Near,
) -> Vec<Taken<'t>> {
    let (free, amount, smt, need) = (job.free, job.amount, job.smt, job.need);
    let mut taken: Vec<Taken<'t>> = Vec::new();
    if policy == Policy::Spread || near.conflict {
        // Even quotas (spread; or one share per device node when near
        // devices disagree), re-distributing what a node cannot hold.
        let nodes = if policy == Policy::Spread {
            chosen.to_vec()
        } else {
            near.preferred.clone()
        };
        let left = take_even(free, &nodes, need, amount, smt, &mut taken);
        if left > 0 {
            // Device nodes were too small: spill to the rest of the set.
            let rest: Vec<u32> = chosen
                .iter()
                .copied()
                .filter(|n| !nodes.contains(n))
                .collect();
            take_in_order(free, &rest, left, amount, smt, &mut taken);
        }
    } else {
        let mut order = chosen.to_vec();
        if order.len() > 1 {
            order.sort_by_key(|n| {
                (
                    !near.preferred.contains(n),
                    std::cmp::Reverse(job.capacity(*n)),
                    *n,
                )
            });
        }
        take_in_order(free, &order, need, amount, smt, &mut taken);
    }
    taken
}

/// The container's CPUs and the whole cores reserved for it. Each core
/// gives what it was taken for: with SMT its first `used` usable threads,
/// cores=N all of them, without SMT one. Whole cores are reserved either way.
pub(super) fn cpus_of(taken: &[Taken<'_>], amount: Amount, smt: bool) -> (CpuList, CpuList) {
    let mut cpus = CpuList::new();
    let mut reserved = CpuList::new();
    for t in taken {
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
    (cpus, reserved)
}
