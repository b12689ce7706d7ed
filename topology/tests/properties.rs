//! Property tests of the placement planner on random synthetic nodes (up to
//! 8 NUMA nodes / 384 PUs, 1-4 packages, SMT 1/2/4, linear/stride/interleaved
//! numbering, sparse shuffled NUMA ids, CPU-less HBM nodes, GPUs and HCAs)
//! and on the real-machine fixtures, for random sequences of requests under
//! random allowed CPU sets and pre-taken cores. Each placement's `reserved`
//! is fed into the next call's `taken`, as pinc's ledger does.
//!
//! Checked for every decision:
//! - (a) the CPUs are within the allowed CPUs, `reserved` is whole free cores;
//! - (b) successive placements never share a core;
//! - (c) exactly the requested number of CPUs / cores;
//! - (d) every mem node is the NUMA node of a chosen core (unless hbm);
//! - (e) the same input twice gives the same output;
//! - (f) strict results use exactly one NUMA node;
//! - (g) a refusal only when the free capacity really is too small (compact,
//!   spread), or no single eligible node fits (strict);
//!
//! plus the documented choices: compact's best-fit node and L3 group, spread's
//! node count. Planner bugs these properties found are pinned by minimal
//! regression tests at the end.

#[macro_use]
mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::LazyLock;

use pinc_cpulist::CpuList;
use pinc_request::placement::{from_words, Amount, PlacementRequest, Policy};
use pinc_topology::devices;
use pinc_topology::planner::{plan, Constraints, Placement, PlanError};
use pinc_topology::{from_xml, synthetic, DeviceKind, MemoryKind, Topology};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

// ---------------------------------------------------------------------------
// Inputs

/// A synthetic node, as the parameters of a `synthetic::build` description.
#[derive(Debug, Clone)]
struct Synth {
    packages: u32,
    numa_per_package: u32,
    cores_per_numa: u32,
    smt: u32,
    numbering: &'static str,
    /// Picks `l3_per_numa` among 0 and the divisors of `cores_per_numa`.
    l3_pick: usize,
    /// One CPU-less HBM node per CPU-ful node.
    hbm: bool,
    /// Sparse, shuffled NUMA ids (CPU-ful first, then the HBM ones).
    ids: Option<Vec<u32>>,
    /// CPU-ful node positions (listing order) holding a GPU / an HCA.
    gpus: Vec<usize>,
    hcas: Vec<usize>,
}

impl Synth {
    fn description(&self) -> String {
        let c = self.cores_per_numa;
        let divisors: Vec<u32> = std::iter::once(0)
            .chain((1..=c).filter(|k| c % k == 0))
            .collect();
        let l3 = divisors[self.l3_pick % divisors.len()];
        let mut d = format!(
            "packages={} numa_per_package={} cores_per_numa={c} smt={} numbering={} l3_per_numa={l3}",
            self.packages, self.numa_per_package, self.smt, self.numbering
        );
        if self.hbm {
            d.push_str(" cpuless_numa=hbm:1");
        }
        let id = |g: usize| self.ids.as_ref().map_or(g as u32, |ids| ids[g]);
        if let Some(ids) = &self.ids {
            let ids: Vec<String> = ids.iter().map(u32::to_string).collect();
            d.push_str(&format!(" numa_ids={}", ids.join(",")));
        }
        for (key, at) in [("gpus", &self.gpus), ("hcas", &self.hcas)] {
            if !at.is_empty() {
                let items: Vec<String> = at.iter().map(|&g| format!("{}:1", id(g))).collect();
                d.push_str(&format!(" {key}={}", items.join(",")));
            }
        }
        d
    }

    fn build(&self) -> Topology {
        let d = self.description();
        synthetic::build(&d).unwrap_or_else(|e| panic!("synthetic {d:?}: {e}"))
    }
}

fn synth() -> impl Strategy<Value = Synth> {
    (1u32..=4)
        .prop_flat_map(|packages| (Just(packages), 1u32..=(8 / packages)))
        .prop_flat_map(|(packages, npp)| {
            (
                Just(packages),
                Just(npp),
                prop::sample::select(vec![1u32, 2, 4]),
                any::<bool>(),
            )
        })
        .prop_flat_map(|(packages, npp, smt, hbm)| {
            let cpuful = packages * npp;
            let hbm = hbm && cpuful <= 4;
            let nodes = (cpuful * if hbm { 2 } else { 1 }) as usize;
            let max_cores = (384 / (cpuful * smt)).clamp(1, 48);
            (
                (Just(packages), Just(npp), Just(smt), Just(hbm)),
                1..=max_cores,
                prop::sample::select(vec!["linear", "stride", "interleaved"]),
                any::<usize>(),
                prop::option::of(
                    prop::sample::subsequence((0u32..1024).collect::<Vec<_>>(), nodes)
                        .prop_shuffle(),
                ),
                prop::collection::vec(0..cpuful as usize, 0..=2),
                prop::collection::vec(0..cpuful as usize, 0..=2),
            )
        })
        .prop_map(
            |(
                (packages, numa_per_package, smt, hbm),
                cores,
                numbering,
                l3_pick,
                ids,
                gpus,
                hcas,
            )| {
                Synth {
                    packages,
                    numa_per_package,
                    cores_per_numa: cores,
                    smt,
                    numbering,
                    l3_pick,
                    hbm,
                    ids,
                    gpus,
                    hcas,
                }
            },
        )
}

/// The caller's allowed CPUs and the cores other containers already hold.
#[derive(Debug, Clone)]
struct Env {
    /// 0-1: every PU; 2: a random PU subset; 3: a random NUMA-node subset.
    allow_mode: u8,
    allow_seed: u64,
    /// Percentage of cores pre-taken.
    taken_pct: u64,
    taken_seed: u64,
}

fn env() -> impl Strategy<Value = Env> {
    (0u8..4, any::<u64>(), 0u64..=50, any::<u64>()).prop_map(
        |(allow_mode, allow_seed, taken_pct, taken_seed)| Env {
            allow_mode,
            allow_seed,
            taken_pct,
            taken_seed,
        },
    )
}

/// One request of a sequence, in raw form (sized against the node later).
#[derive(Debug, Clone)]
struct Job {
    cores: bool,
    n_raw: u16,
    smt: bool,
    policy: u8,
    near: Vec<u8>,
    hbm: bool,
}

fn job() -> impl Strategy<Value = Job> {
    (
        any::<bool>(),
        0u16..1000,
        prop::bool::weighted(0.75),
        0u8..3,
        prop_oneof![3 => Just(Vec::new()), 1 => prop::collection::vec(any::<u8>(), 1..=2)],
        prop::bool::weighted(0.15),
    )
        .prop_map(|(cores, n_raw, smt, policy, near, hbm)| Job {
            cores,
            n_raw,
            smt,
            policy,
            near,
            hbm,
        })
}

fn jobs() -> impl Strategy<Value = Vec<Job>> {
    prop::collection::vec(job(), 1..=12)
}

/// SplitMix64: the random subsets, from a seed proptest chose.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn percent(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }
}

// ---------------------------------------------------------------------------
// Fixtures

const FIXTURES: &[&str] = &[
    "ibm-power8-2s-4p100.xml",
    "hp-sl390s-2s-6c-3gpu-ib.xml",
    "supermicro-x9drg-2s-e5-gpu-ib.xml",
    "nec-2s-skylake-8ve-2ib.xml",
    "intel-knl-snc4-hybrid-8numa.xml",
    "amd-epyc9654-2s-384pu.xml",
];

/// A real-machine topology file, read in place (see `pinc_topology::testdata`).
fn fixture_path(name: &str) -> PathBuf {
    pinc_topology::testdata::path(name).expect("tests check needs_topologies! first")
}

static LOADED: LazyLock<Vec<Topology>> = LazyLock::new(|| {
    FIXTURES
        .iter()
        .map(|name| {
            let path = fixture_path(name);
            from_xml(&path).unwrap_or_else(|e| panic!("loading {}: {e:?}", path.display()))
        })
        .collect()
});

// ---------------------------------------------------------------------------
// The model, seen independently of the planner

/// Precomputed facts about one node.
struct View<'t> {
    t: &'t Topology,
    /// PU -> core index.
    core_of: HashMap<u32, usize>,
    /// CPU-ful NUMA nodes, OS indexes.
    cpu_nodes: Vec<u32>,
    /// Device selectors `near=` may name (GPUs, HCAs, NICs).
    selectors: Vec<String>,
}

impl<'t> View<'t> {
    fn new(t: &'t Topology) -> Self {
        let core_of = t
            .cores
            .iter()
            .flat_map(|c| c.pus.iter().map(move |&p| (p, c.index)))
            .collect();
        let cpu_nodes = t
            .numa_nodes
            .iter()
            .filter(|n| !n.cpus.is_empty())
            .map(|n| n.os_index)
            .collect();
        let selectors = t
            .devices
            .iter()
            .filter(|d| matches!(d.kind, DeviceKind::Gpu | DeviceKind::Hca | DeviceKind::Nic))
            .map(|d| {
                // A name when unambiguous, else the bus id.
                d.names
                    .iter()
                    .find(|n| n.starts_with("mlx") || n.starts_with("cuda"))
                    .cloned()
                    .unwrap_or_else(|| d.bus_id.clone())
            })
            .collect();
        View {
            t,
            core_of,
            cpu_nodes,
            selectors,
        }
    }

    fn allowed(&self, e: &Env) -> CpuList {
        let mut rng = Mix(e.allow_seed);
        match e.allow_mode {
            2 => {
                let keep = 30 + rng.next() % 70;
                let mut set: CpuList = self.t.pus().iter().filter(|_| rng.percent(keep)).collect();
                if set.is_empty() {
                    set = self.t.pus().iter().take(1).collect();
                }
                set
            }
            3 => {
                let nodes: Vec<u32> = self
                    .cpu_nodes
                    .iter()
                    .copied()
                    .filter(|_| rng.percent(50))
                    .collect();
                let nodes = if nodes.is_empty() {
                    self.cpu_nodes[..1].to_vec()
                } else {
                    nodes
                };
                self.t
                    .numa_nodes
                    .iter()
                    .filter(|n| nodes.contains(&n.os_index))
                    .flat_map(|n| n.cpus.iter())
                    .collect()
            }
            _ => self.t.pus(),
        }
    }

    fn pretaken(&self, e: &Env) -> CpuList {
        let mut rng = Mix(e.taken_seed);
        self.t
            .cores
            .iter()
            .filter(|_| rng.percent(e.taken_pct))
            .flat_map(|c| c.pus.iter().copied())
            .collect()
    }

    /// The request words for a raw job.
    fn words(&self, j: &Job) -> Vec<String> {
        let pus = self.t.pus().len().max(1);
        let n = if j.n_raw < 900 {
            1 + usize::from(j.n_raw) % (pus / 4).max(1)
        } else {
            1 + usize::from(j.n_raw) % (pus + 8)
        };
        let mut w = vec![
            format!("{}={n}", if j.cores { "cores" } else { "cpus" }),
            format!("smt={}", if j.smt { "on" } else { "off" }),
            format!(
                "policy={}",
                ["compact", "spread", "strict"][usize::from(j.policy % 3)]
            ),
        ];
        if !self.selectors.is_empty() && !j.near.is_empty() {
            let near: Vec<&str> = j
                .near
                .iter()
                .map(|&k| self.selectors[usize::from(k) % self.selectors.len()].as_str())
                .collect();
            w.push(format!("near={}", near.join(",")));
        }
        if j.hbm {
            w.push("hbm=on".into());
        }
        w
    }

    /// PlacementRequest units a free core gives (the planner's definition of size).
    fn units(&self, amount: Amount, smt: bool, usable: usize) -> usize {
        match (amount, smt) {
            (Amount::Cpus(_), true) => usable,
            _ => 1,
        }
    }

    /// Free units per CPU-ful node: cores with no PU taken and some allowed.
    fn free_units(&self, r: &PlacementRequest, c: &Constraints) -> HashMap<u32, usize> {
        let amount = r.amount.expect("a CPU request");
        let mut per: HashMap<u32, usize> = self.cpu_nodes.iter().map(|&n| (n, 0)).collect();
        for core in &self.t.cores {
            if core.pus.iter().any(|&p| c.taken.contains(p)) {
                continue;
            }
            let usable = core
                .pus
                .iter()
                .filter(|&&p| c.allowed_cpus.contains(p))
                .count();
            if usable == 0 {
                continue;
            }
            if let Some(n) = core.numa {
                *per.entry(n).or_insert(0) += self.units(amount, r.smt, usable);
            }
        }
        per
    }

    /// NUMA nodes of the device selectors, one entry per selector.
    fn near_nodes(&self, r: &PlacementRequest) -> Vec<Vec<u32>> {
        r.near
            .iter()
            .map(|s| {
                let d = devices::resolve(self.t, s).expect("selectors name real devices");
                devices::numa_of(self.t, d)
            })
            .collect()
    }

    fn cores_of(&self, cpus: &CpuList) -> BTreeSet<usize> {
        cpus.iter().map(|p| self.core_of[&p]).collect()
    }

    fn hbm_near(&self, cpus: &CpuList) -> BTreeSet<u32> {
        self.t
            .numa_nodes
            .iter()
            .filter(|n| n.kind == MemoryKind::Hbm)
            .filter(|n| {
                let near = if n.cpus.is_empty() {
                    &n.near_cpus
                } else {
                    &n.cpus
                };
                !near.intersection(cpus).is_empty()
            })
            .map(|n| n.os_index)
            .collect()
    }
}

fn wanted(a: Amount) -> usize {
    match a {
        Amount::Cpus(n) | Amount::Cores(n) => n,
    }
}

/// Devices on nodes that the first device's nodes do not meet.
fn conflict(near: &[Vec<u32>]) -> bool {
    near.len() > 1 && near.iter().any(|n| n.iter().all(|x| !near[0].contains(x)))
}

// ---------------------------------------------------------------------------
// The properties

/// Runs a request sequence on a node, checking every decision.
fn check_sequence(t: &Topology, e: &Env, jobs: &[Job]) -> Result<(), TestCaseError> {
    let v = View::new(t);
    let allowed = v.allowed(e);
    let mut ledger = v.pretaken(e);
    let mut placed_cores: BTreeSet<usize> = ledger
        .iter()
        .map(|p| v.core_of[&p])
        .collect::<BTreeSet<_>>();
    for j in jobs {
        let words = v.words(j);
        let r = from_words(words.iter().map(String::as_str))
            .expect("valid words")
            .expect("a request");
        let c = Constraints {
            allowed_cpus: allowed.clone(),
            allowed_mems: None,
            taken: ledger.clone(),
        };
        let first = plan(t, &r, &c);
        // (e) deterministic, also on copies of the inputs.
        let again = plan(&t.clone(), &r.clone(), &c.clone());
        prop_assert_eq!(&first, &again, "not deterministic for {:?}", words);
        match first {
            Ok(p) => {
                check_placement(&v, &r, &c, &p, &words)?;
                // (b) no core shared with anything placed before.
                let cores = v.cores_of(&p.reserved);
                prop_assert!(
                    cores.is_disjoint(&placed_cores),
                    "{:?} reuses a held core: reserved {} with held {}",
                    words,
                    p.reserved,
                    ledger
                );
                placed_cores.extend(cores);
                ledger = ledger.iter().chain(p.reserved.iter()).collect();
            }
            Err(err) => check_refusal(&v, &r, &c, &err, &words)?,
        }
    }
    Ok(())
}

fn check_placement(
    v: &View<'_>,
    r: &PlacementRequest,
    c: &Constraints,
    p: &Placement,
    words: &[String],
) -> Result<(), TestCaseError> {
    let amount = r.amount.expect("a CPU request");
    let need = wanted(amount);
    let free = v.free_units(r, c);
    let total: usize = free.values().sum();
    prop_assert!(
        total >= need,
        "{:?} placed with only {} free units",
        words,
        total
    );
    let a = Accepted {
        v,
        r,
        c,
        p,
        words,
        amount,
        need,
        near: v.near_nodes(r),
        free,
        reserved_cores: v.cores_of(&p.reserved),
        cpu_cores: v.cores_of(&p.cpus),
    };
    check_cores(&a)?;
    check_amount(&a)?;
    check_memory(&a)?;
    check_strict(&a)?;
    check_compact(&a)?;
    check_spread(&a)
}

/// An accepted placement and what its checks share.
struct Accepted<'a, 't> {
    v: &'a View<'t>,
    r: &'a PlacementRequest,
    c: &'a Constraints,
    p: &'a Placement,
    words: &'a [String],
    amount: Amount,
    need: usize,
    near: Vec<Vec<u32>>,
    /// Free request units per node.
    free: HashMap<u32, usize>,
    reserved_cores: BTreeSet<usize>,
    cpu_cores: BTreeSet<usize>,
}

impl Accepted<'_, '_> {
    fn free_on(&self, n: u32) -> usize {
        self.free.get(&n).copied().unwrap_or(0)
    }

    fn preferred(&self) -> BTreeSet<u32> {
        self.near.iter().flatten().copied().collect()
    }
}

/// Inside the allowed CPUs; reserved is whole, free cores.
fn check_cores(a: &Accepted<'_, '_>) -> Result<(), TestCaseError> {
    let (t, c, p, words) = (a.v.t, a.c, a.p, a.words);
    let reserved_cores = &a.reserved_cores;
    // (a) inside the allowed CPUs; reserved is whole, free cores.
    prop_assert!(
        p.cpus.is_subset(&c.allowed_cpus),
        "{:?}: cpus {} outside allowed {}",
        words,
        p.cpus,
        c.allowed_cpus
    );
    prop_assert!(
        p.cpus.is_subset(&p.reserved),
        "{:?}: cpus not reserved",
        words
    );
    prop_assert!(
        p.reserved.intersection(&c.taken).is_empty(),
        "{:?}: reserved {} overlaps taken {}",
        words,
        p.reserved,
        c.taken
    );
    for &k in reserved_cores {
        let core = &t.cores[k];
        prop_assert!(
            core.pus.iter().all(|&pu| p.reserved.contains(pu)),
            "{:?}: core {:?} only partly reserved in {}",
            words,
            core.pus,
            p.reserved
        );
        prop_assert!(
            core.pus.iter().all(|&pu| !c.taken.contains(pu)),
            "{:?}: core {:?} was held",
            words,
            core.pus
        );
    }
    Ok(())
}

/// As many CPUs or cores as asked, and no idle reserved core.
fn check_amount(a: &Accepted<'_, '_>) -> Result<(), TestCaseError> {
    let (t, r, c, p, words) = (a.v.t, a.r, a.c, a.p, a.words);
    let (amount, need) = (a.amount, a.need);
    let (reserved_cores, cpu_cores) = (&a.reserved_cores, &a.cpu_cores);
    // (c) the amount.
    match (amount, r.smt) {
        (Amount::Cpus(n), true) => {
            prop_assert_eq!(p.cpus.len(), n, "{:?}: cpus {}", words, &p.cpus);
        }
        (Amount::Cpus(n), false) | (Amount::Cores(n), false) => {
            prop_assert_eq!(p.cpus.len(), n, "{:?}: cpus {}", words, &p.cpus);
            prop_assert_eq!(cpu_cores.len(), n, "{:?}: one thread per core", words);
        }
        (Amount::Cores(n), true) => {
            prop_assert_eq!(cpu_cores.len(), n, "{:?}: cpus {}", words, &p.cpus);
            // Every allowed thread of each chosen core.
            for &k in cpu_cores {
                for &pu in &t.cores[k].pus {
                    prop_assert_eq!(
                        p.cpus.contains(pu),
                        c.allowed_cpus.contains(pu),
                        "{:?}: core {:?} not whole in {}",
                        words,
                        &t.cores[k].pus,
                        &p.cpus
                    );
                }
            }
        }
    }
    if matches!(amount, Amount::Cores(_)) || !r.smt {
        prop_assert_eq!(
            reserved_cores.len(),
            need,
            "{:?}: reserved {}",
            words,
            &p.reserved
        );
    }

    // No reserved core without a CPU of the container.
    prop_assert_eq!(
        reserved_cores,
        cpu_cores,
        "{:?}: idle reserved core: cpus {} reserved {}",
        words,
        &p.cpus,
        &p.reserved
    );
    Ok(())
}

/// Memory local to the chosen cores, or HBM near them.
fn check_memory(a: &Accepted<'_, '_>) -> Result<(), TestCaseError> {
    let (t, v, r, p, words) = (a.v.t, a.v, a.r, a.p, a.words);
    let (reserved_cores, cpu_cores) = (&a.reserved_cores, &a.cpu_cores);
    // (d) memory local to the chosen cores.
    let nodes_of = |cores: &BTreeSet<usize>| -> BTreeSet<u32> {
        cores.iter().filter_map(|&k| t.cores[k].numa).collect()
    };
    let cpu_numa = nodes_of(cpu_cores);
    let mems: BTreeSet<u32> = p.mems.iter().collect();
    prop_assert_eq!(
        &p.numa_nodes.iter().copied().collect::<BTreeSet<_>>(),
        &nodes_of(reserved_cores),
        "{:?}: numa_nodes",
        words
    );
    if r.hbm {
        let hbm = v.hbm_near(&p.cpus);
        prop_assert!(
            !hbm.is_empty(),
            "{:?}: hbm placed without an HBM node",
            words
        );
        prop_assert!(
            mems.iter().all(|m| cpu_numa.contains(m) || hbm.contains(m)),
            "{:?}: mems {} neither local nor near HBM {:?}",
            words,
            &p.mems,
            hbm
        );
        prop_assert!(
            mems.iter().any(|m| hbm.contains(m)),
            "{:?}: hbm=on but mems {}",
            words,
            &p.mems
        );
    } else {
        prop_assert!(
            !mems.is_empty() && mems.is_subset(&cpu_numa),
            "{:?}: mems {} not local to the CPUs' nodes {:?}",
            words,
            &p.mems,
            cpu_numa
        );
    }
    Ok(())
}

/// Strict: one node, inside the device nodes, large enough.
fn check_strict(a: &Accepted<'_, '_>) -> Result<(), TestCaseError> {
    let (r, p, words, need) = (a.r, a.p, a.words, a.need);
    let near = &a.near;
    let preferred = a.preferred();
    let mems: BTreeSet<u32> = p.mems.iter().collect();
    let cpu_nodes_free = |n: u32| a.free_on(n);
    // (f) strict: one node, inside the device nodes, large enough.
    if r.policy == Policy::Strict {
        prop_assert_eq!(
            p.numa_nodes.len(),
            1,
            "{:?}: strict on {:?}",
            words,
            &p.numa_nodes
        );
        let n = p.numa_nodes[0];
        prop_assert!(
            !conflict(near),
            "{:?}: strict accepted conflicting devices",
            words
        );
        prop_assert!(preferred.is_empty() || preferred.contains(&n));
        prop_assert!(cpu_nodes_free(n) >= need);
        if !r.hbm {
            prop_assert_eq!(&mems, &BTreeSet::from([n]), "{:?}: strict mems", words);
        }
    }
    Ok(())
}

/// Compact: the best-fitting node, on the device node when one fits.
fn check_compact(a: &Accepted<'_, '_>) -> Result<(), TestCaseError> {
    let (t, v, r, c, p, words) = (a.v.t, a.v, a.r, a.c, a.p, a.words);
    let (amount, need, near) = (a.amount, a.need, &a.near);
    let reserved_cores = &a.reserved_cores;
    let preferred = a.preferred();
    let cpu_nodes_free = |n: u32| a.free_on(n);
    // Compact without devices: the best-fitting node when one fits alone,
    // and inside it a single L3 group when one fits.
    if r.policy == Policy::Compact && r.near.is_empty() {
        let best = v
            .cpu_nodes
            .iter()
            .map(|&n| (cpu_nodes_free(n), n))
            .filter(|(cap, _)| *cap >= need)
            .min();
        if let Some((_, n)) = best {
            prop_assert_eq!(&p.numa_nodes, &vec![n], "{:?}: not the best fit", words);
            let mut per_l3: HashMap<Option<usize>, usize> = HashMap::new();
            for core in t.cores.iter().filter(|k| k.numa == Some(n)) {
                let usable = core
                    .pus
                    .iter()
                    .filter(|&&pu| c.allowed_cpus.contains(pu))
                    .count();
                if usable > 0 && core.pus.iter().all(|&pu| !c.taken.contains(pu)) {
                    *per_l3.entry(core.l3).or_insert(0) += v.units(amount, r.smt, usable);
                }
            }
            if per_l3.values().any(|&cap| cap >= need) {
                let groups: BTreeSet<Option<usize>> =
                    reserved_cores.iter().map(|&k| t.cores[k].l3).collect();
                prop_assert_eq!(
                    groups.len(),
                    1,
                    "{:?}: fits one L3 group but spans {:?}",
                    words,
                    groups
                );
            }
        } else {
            prop_assert!(p.numa_nodes.len() > 1, "{:?}: nothing fits alone", words);
        }
    }

    // Compact near devices that agree: on a device node when one fits alone.
    if r.policy == Policy::Compact && !near.is_empty() && !conflict(near) {
        let best = preferred
            .iter()
            .map(|&n| (cpu_nodes_free(n), n))
            .filter(|(cap, _)| *cap >= need)
            .min();
        if let Some((_, n)) = best {
            prop_assert_eq!(
                &p.numa_nodes,
                &vec![n],
                "{:?}: not on the device node",
                words
            );
        }
    }
    Ok(())
}

/// Spread over as many nodes as it can.
fn check_spread(a: &Accepted<'_, '_>) -> Result<(), TestCaseError> {
    let (v, r, p, words, need) = (a.v, a.r, a.p, a.words, a.need);
    let cpu_nodes_free = |n: u32| a.free_on(n);
    // Spread: as many nodes as the request has units, up to the nodes with room.
    if r.policy == Policy::Spread {
        let with_room = v
            .cpu_nodes
            .iter()
            .filter(|&&n| cpu_nodes_free(n) > 0)
            .count();
        prop_assert_eq!(
            p.numa_nodes.len(),
            need.min(with_room),
            "{:?}: spread over {:?}",
            words,
            &p.numa_nodes
        );
    }
    Ok(())
}

fn check_refusal(
    v: &View<'_>,
    r: &PlacementRequest,
    c: &Constraints,
    err: &PlanError,
    words: &[String],
) -> Result<(), TestCaseError> {
    let need = wanted(r.amount.expect("a CPU request"));
    let near = v.near_nodes(r);
    let free = v.free_units(r, c);
    let total: usize = free.values().sum();
    // (g) capacity refusals only when capacity is short, and always then.
    match err {
        PlanError::NoFreeCores { .. } => {
            prop_assert!(
                total < need,
                "{:?}: refused with {} free: {}",
                words,
                total,
                err
            );
        }
        _ => prop_assert!(total >= need, "{:?}: {} free but {}", words, total, err),
    }
    match err {
        PlanError::NoFreeCores { .. } => {}
        PlanError::Strict { .. } => {
            prop_assert_eq!(r.policy, Policy::Strict);
            let preferred: BTreeSet<u32> = near.iter().flatten().copied().collect();
            let fits = free
                .iter()
                .any(|(n, cap)| *cap >= need && (preferred.is_empty() || preferred.contains(n)));
            prop_assert!(
                !fits,
                "{:?}: strict refused but a node fits: {}",
                words,
                err
            );
        }
        PlanError::StrictConflict(_) => {
            prop_assert_eq!(r.policy, Policy::Strict);
            prop_assert!(conflict(&near), "{:?}: no conflict but {}", words, err);
        }
        PlanError::NoHbm(_) => {
            prop_assert!(r.hbm);
            // Only when some CPU-ful node has no HBM beside it.
            let everywhere = v.cpu_nodes.iter().all(|&n| {
                let cpus = &v.t.numa(n).expect("node").cpus;
                !v.hbm_near(cpus).is_empty()
            });
            prop_assert!(!everywhere, "{:?}: HBM everywhere but {}", words, err);
        }
        PlanError::Device(_) | PlanError::Mems { .. } => {
            return Err(TestCaseError::fail(format!("{words:?}: unexpected {err}")));
        }
    }
    Ok(())
}

/// Every property on the real fixtures (outside `proptest!` so that their
/// absence is one counted skip, not 1024 empty cases).
#[test]
fn fixture_sequences() {
    needs_topologies!();
    let config = ProptestConfig {
        cases: 1024,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(which in 0..FIXTURES.len(), e in env(), js in jobs())| {
        check_sequence(&LOADED[which], &e, &js)?;
    });
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1024,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Every property on random synthetic nodes.
    #[test]
    fn synthetic_sequences(s in synth(), e in env(), js in jobs()) {
        let t = s.build();
        check_sequence(&t, &e, &js)?;
    }

    /// Filling a node with single cores, then everything refuses with
    /// NoFreeCores; freeing one job's cores makes exactly that room again.
    #[test]
    fn fill_then_free(s in synth(), smt in any::<bool>(), pick in any::<usize>()) {
        let t = s.build();
        let all = t.pus();
        let mut ledger = CpuList::new();
        let mut jobs: Vec<CpuList> = Vec::new();
        let words = ["cores=1".to_string(), format!("smt={}", if smt { "on" } else { "off" })];
        let r = from_words(words.iter().map(String::as_str)).expect("ok").expect("some");
        loop {
            let c = Constraints { allowed_cpus: all.clone(), allowed_mems: None, taken: ledger.clone() };
            match plan(&t, &r, &c) {
                Ok(p) => {
                    ledger = ledger.iter().chain(p.reserved.iter()).collect();
                    jobs.push(p.reserved);
                }
                Err(e) => {
                    prop_assert!(matches!(e, PlanError::NoFreeCores { .. }), "{}", e);
                    break;
                }
            }
            prop_assert!(jobs.len() <= t.cores.len());
        }
        prop_assert_eq!(jobs.len(), t.cores.len());
        prop_assert_eq!(&ledger, &all);
        // Free one job: the next request gets exactly that core back.
        let freed = jobs.remove(pick % jobs.len());
        let ledger: CpuList = jobs.iter().flat_map(|j| j.iter()).collect();
        let c = Constraints { allowed_cpus: all.clone(), allowed_mems: None, taken: ledger };
        let p = plan(&t, &r, &c).expect("the freed core");
        prop_assert_eq!(p.reserved, freed);
    }
}

// ---------------------------------------------------------------------------
// Planner bugs found by these properties, now fixed: minimal regressions.

fn one(t: &Topology, words: &[&str]) -> Result<Placement, PlanError> {
    let r = from_words(words.iter().copied())
        .expect("valid")
        .expect("some");
    let c = Constraints {
        allowed_cpus: t.pus(),
        ..Default::default()
    };
    plan(t, &r, &c)
}

/// Regression (fixed): spread (and compact with near devices on different nodes) gives each
/// node a quota in request *units*, but a node takes whole cores: with SMT and
/// `cpus=N`, a quota of 1 takes a 2-thread core, so the first cores in index
/// order absorb all N CPUs and the last nodes' cores are reserved with no CPU
/// of the container on them, while their nodes still appear in mems.
#[test]

fn spread_smt_cpus_leave_an_idle_reserved_core() {
    let t = synthetic::build("packages=1 numa_per_package=3 cores_per_numa=2 smt=2")
        .expect("synthetic");
    let p = one(&t, &["cpus=3", "policy=spread"]).expect("plan");
    // Was: cpus 0-1,4 reserved 0-1,4-5,8-9 mems 0-2: core 8-9 (NUMA 2) idle.
    assert_eq!(p.cpus.len(), 3);
    let nodes: BTreeSet<u32> = p.cpus.iter().filter_map(|c| t.numa_of_pu(c)).collect();
    assert_eq!(
        nodes.len(),
        3,
        "spread over 3 nodes, cpus {} reserved {} mems {}",
        p.cpus,
        p.reserved,
        p.mems
    );
}

/// Regression (fixed; same cause, real fixture): the GPU on NUMA 0 and the HCA on NUMA 1
/// of the Supermicro node; `cpus=2` gets CPUs 0,16 (one core, NUMA 0 only)
/// and reserves core 8/24 on NUMA 1 idle; mems 0-1.
#[test]

fn conflicting_devices_smt_cpus_leave_the_hca_side_without_cpus() {
    needs_topologies!();
    let t = &LOADED[2];
    let p = one(t, &["cpus=2", "near=03:00.0,mlx5_0"]).expect("plan");
    let nodes: BTreeSet<u32> = p.cpus.iter().filter_map(|c| t.numa_of_pu(c)).collect();
    assert_eq!(
        nodes,
        BTreeSet::from([0, 1]),
        "cpus {} reserved {}",
        p.cpus,
        p.reserved
    );
}

/// Regression (fixed): a device whose NUMA locality is a CPU-less node (GPU memory, HBM)
/// never fits policy=strict, and the error names NUMA 0, which does not
/// exist here, "with 0" free; compact does place it (on the host node 3).
#[test]

fn strict_near_a_device_on_a_cpuless_node() {
    let t = synthetic::build(
        "packages=1 numa_per_package=2 cores_per_numa=2 cpuless_numa=gpu:1 numa_ids=3,5,7,9 gpus=7:1",
    )
    .expect("synthetic");
    let compact = one(&t, &["cores=1", "near=cuda0"]).expect("compact places it");
    assert_eq!(compact.numa_nodes, vec![3]);
    match one(&t, &["cores=1", "near=cuda0", "policy=strict"]) {
        Ok(p) => assert_eq!(p.numa_nodes, vec![3]),
        Err(e) => panic!("strict refused: {e}"),
    }
}

/// Regression (fixed): with `cpus=N smt=on`, the planner takes cores until it has N usable
/// threads, then hands out the N CPUs in *core index* order, not in the order
/// it took them. When the allowed CPUs split a core (a caller cpuset holding
/// one thread of a core), the thread surplus of the last core taken lands on
/// another core, which can end up reserved with no CPU at all.
/// Here node 1 (3 free threads) is taken first: core 4-5, core 6(-7), then
/// core 0-1 on node 0 for the 4th CPU; index order gives 0,1,4,5 and leaves
/// core 6-7 reserved and idle.
#[test]

fn partly_allowed_cores_leave_an_idle_reserved_core() {
    let t = synthetic::build("packages=1 numa_per_package=2 cores_per_numa=2 smt=2")
        .expect("synthetic");
    let r = from_words(["cpus=4"]).expect("valid").expect("some");
    let c = Constraints {
        allowed_cpus: "0-1,4-6".parse().expect("list"),
        ..Default::default()
    };
    let p = plan(&t, &r, &c).expect("plan");
    assert_eq!(p.cpus.len(), 4);
    for core in &t.cores {
        let reserved = core.pus.iter().any(|&pu| p.reserved.contains(pu));
        let used = core.pus.iter().any(|&pu| p.cpus.contains(pu));
        assert!(
            !reserved || used,
            "core {:?} reserved but idle: cpus {} reserved {}",
            core.pus,
            p.cpus,
            p.reserved
        );
    }
}

/// Regression (fixed quality bug, doc vs behaviour): the module doc promises a spill "stays in
/// its package when a same-package node is closer than the other socket", but
/// `score` ranks node *count* before package count. 2 packages × 3 nodes × 4
/// cores; free: NUMA 0 has 0-2, NUMA 3 has 14-15, NUMA 4 has 19, NUMA 5 has
/// 23. `cores=4` takes 0-2 + 14 (NUMA 0 and 3, both sockets) although
/// 14,15,19,23 (NUMA 3-5) fit in package 1 alone.
#[test]

fn compact_spill_leaves_the_package_for_fewer_nodes() {
    let t = synthetic::build("packages=2 numa_per_package=3 cores_per_numa=4").expect("synthetic");
    let r = from_words(["cores=4"]).expect("valid").expect("some");
    let c = Constraints {
        allowed_cpus: t.pus(),
        taken: "3-13,16-18,20-22".parse().expect("list"),
        ..Default::default()
    };
    let p = plan(&t, &r, &c).expect("plan");
    let packages: BTreeSet<u32> = p
        .cpus
        .iter()
        .filter_map(|cpu| t.core_of(cpu).map(|k| k.package))
        .collect();
    assert_eq!(
        packages.len(),
        1,
        "cpus {} on NUMA {:?}",
        p.cpus,
        p.numa_nodes
    );
}
