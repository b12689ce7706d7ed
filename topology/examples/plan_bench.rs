//! Benchmarks pinc's placement planner:
//!
//! ```text
//! cargo run --release -p pinc-topology --example plan_bench [-- --quick]
//! ```
//!
//! (a) Time per decision: 10 000 `plan()` calls of mixed requests (cpus or
//!     cores, smt on/off, compact/spread/strict, some `near=`) with a ledger
//!     that fills to ~95% and empties again, on the 384-PU EPYC fixture and a
//!     synthetic 8-NUMA / 384-PU node. Median, p99, max and mean.
//!
//! (b) Placement quality on every fixture and a few synthetic nodes, over the
//!     same random job stream (arrivals with random lifetimes, ~85% offered
//!     load) for three allocators:
//!     - `pinc`: `planner::plan`, policy compact, whole cores;
//!     - `kubelet-packed`: a re-implementation of kubelet's static CPU
//!       manager `takeByTopologyNUMAPacked` (no Topology Manager, no
//!       full-pcpus-only): whole sockets/NUMA nodes if the request covers
//!       them (NUMA first when a node spans sockets), then whole free cores,
//!       then single threads, each in order of the socket / NUMA node / core
//!       with the *fewest* free CPUs, then by id; thread granularity, so a
//!       core can be split between two jobs;
//!     - `first-fit`: the first free whole cores in CPU id order.
//!     `cores=N` is N×SMT CPUs for kubelet (it knows no cores).
//!
//! The example reads the real-machine topologies in place ($PINC_TOPOLOGIES or ../shared/topologies).

use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::{Duration, Instant};

use pinc_cpulist::CpuList;
use pinc_request::placement::{from_words, PlacementRequest};
use pinc_topology::planner::{plan, Constraints};
use pinc_topology::{from_xml, synthetic, DeviceKind, Topology};

/// SplitMix64: reproducible runs without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }

    /// An index drawn with the given weights.
    fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        let mut x = self.next() % total.max(1);
        for (i, &w) in weights.iter().enumerate() {
            if x < w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

const FIXTURES: &[(&str, &str)] = &[
    ("supermicro-x9drg", "supermicro-x9drg-2s-e5-gpu-ib.xml"),
    ("hp-sl390s", "hp-sl390s-2s-6c-3gpu-ib.xml"),
    ("ibm-power8", "ibm-power8-2s-4p100.xml"),
    ("nec-skylake", "nec-2s-skylake-8ve-2ib.xml"),
    ("intel-knl-snc4", "intel-knl-snc4-hybrid-8numa.xml"),
    ("amd-epyc9654", "amd-epyc9654-2s-384pu.xml"),
];

/// 8 NUMA nodes / 384 PUs: 2 sockets × 4 nodes (SNC4-like) × 24 cores, SMT 2,
/// 3 L3 groups per node, a GPU and an HCA on two nodes.
const SYNTH_8NUMA: &str = "packages=2 numa_per_package=4 cores_per_numa=24 smt=2 \
    numbering=stride l3_per_numa=3 gpus=0:1,4:1 hcas=1:1,5:1";

const SYNTHETIC: &[(&str, &str)] = &[
    ("synth-8numa-384", SYNTH_8NUMA),
    (
        "synth-2s-snc2-128",
        "packages=2 numa_per_package=2 cores_per_numa=16 smt=2 numbering=stride l3_per_numa=2",
    ),
    (
        "synth-2s-nps4-256",
        "packages=2 numa_per_package=4 cores_per_numa=16 smt=2 numbering=stride l3_per_numa=2",
    ),
    (
        "synth-1s-4numa-smt4",
        "packages=1 numa_per_package=4 cores_per_numa=12 smt=4 numbering=linear l3_per_numa=1",
    ),
];

fn fixture(file: &str) -> Topology {
    let path = pinc_topology::testdata::path(file)
        .expect("the real-machine topologies: set PINC_TOPOLOGIES or put shared/topologies beside the checkout");
    from_xml(&path).unwrap_or_else(|e| panic!("loading {}: {e:?}", path.display()))
}

fn request(words: &[String]) -> PlacementRequest {
    from_words(words.iter().map(String::as_str))
        .expect("the benchmark builds valid words")
        .expect("a CPU request")
}

// ---------------------------------------------------------------------------
// (a) Decision time

fn timing_request(rng: &mut Rng, t: &Topology, selectors: &[String]) -> Vec<String> {
    const SIZES: &[usize] = &[1, 2, 4, 8, 16, 24, 32, 48, 64];
    const WEIGHTS: &[u64] = &[20, 20, 18, 14, 10, 6, 5, 4, 3];
    let n = SIZES[rng.weighted(WEIGHTS)];
    let mut w = if rng.chance(60) {
        vec![format!("cpus={n}")]
    } else {
        vec![format!("cores={}", n.div_ceil(t.smt()))]
    };
    if rng.chance(10) {
        w.push("smt=off".into());
    }
    w.push(
        ["policy=compact", "policy=spread", "policy=strict"][rng.weighted(&[80, 10, 10])].into(),
    );
    if !selectors.is_empty() && rng.chance(20) {
        w.push(format!("near={}", selectors[rng.below(selectors.len())]));
    }
    w
}

struct Timing {
    median: Duration,
    p99: Duration,
    max: Duration,
    mean: Duration,
    refused: usize,
    peak_held: f64,
}

fn time_decisions(t: &Topology, decisions: usize, seed: u64) -> Timing {
    let mut rng = Rng(seed);
    let selectors: Vec<String> = t
        .devices
        .iter()
        .filter(|d| matches!(d.kind, DeviceKind::Gpu | DeviceKind::Hca))
        .filter_map(|d| d.names.first().cloned())
        .collect();
    let allowed = t.pus();
    let cores = t.cores.len() as f64;
    // (reserved PUs, cores held)
    let mut live: Vec<(CpuList, usize)> = Vec::new();
    let mut held = 0usize;
    let mut times = Vec::with_capacity(decisions);
    let mut refused = 0;
    let mut peak: f64 = 0.0;
    while times.len() < decisions {
        // Target occupancy: a triangle 0 -> 95% -> 0 every 2000 decisions.
        let phase = (times.len() % 2000) as f64 / 2000.0;
        let target = 0.95 * (1.0 - (2.0 * phase - 1.0).abs());
        while !live.is_empty() && held as f64 > target * cores {
            let (_, n) = live.swap_remove(rng.below(live.len()));
            held -= n;
        }
        let r = request(&timing_request(&mut rng, t, &selectors));
        let c = Constraints {
            allowed_cpus: allowed.clone(),
            allowed_mems: None,
            taken: live.iter().flat_map(|(p, _)| p.iter()).collect(),
        };
        let start = Instant::now();
        let result = black_box(plan(black_box(t), black_box(&r), black_box(&c)));
        times.push(start.elapsed());
        match result {
            Ok(p) => {
                let n = t
                    .cores
                    .iter()
                    .filter(|k| k.pus.iter().any(|&pu| p.reserved.contains(pu)))
                    .count();
                held += n;
                live.push((p.reserved, n));
                peak = peak.max(held as f64 / cores);
            }
            Err(_) => {
                refused += 1;
                if !live.is_empty() {
                    let (_, n) = live.swap_remove(rng.below(live.len()));
                    held -= n;
                }
            }
        }
    }
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    times.sort_unstable();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    Timing {
        median: at(0.5),
        p99: at(0.99),
        max: times[times.len() - 1],
        mean,
        refused,
        peak_held: peak,
    }
}

// ---------------------------------------------------------------------------
// (b) Quality

/// Facts per PU, indexed by PU number.
struct Facts {
    smt: usize,
    core: Vec<Option<usize>>,
    package: Vec<Option<u32>>,
    numa: Vec<Option<u32>>,
    l3: Vec<Option<usize>>,
    /// Cores ordered by their lowest PU (first-fit's order).
    cores_by_pu: Vec<usize>,
    /// A NUMA node holds CPUs of more than one package (kubelet: NUMA first).
    numa_first: bool,
}

impl Facts {
    fn new(t: &Topology) -> Self {
        let max = t.pus().iter().max().map_or(0, |m| m as usize + 1);
        let mut f = Facts {
            smt: t.smt(),
            core: vec![None; max],
            package: vec![None; max],
            numa: vec![None; max],
            l3: vec![None; max],
            cores_by_pu: Vec::new(),
            numa_first: false,
        };
        for c in &t.cores {
            for &p in &c.pus {
                let p = p as usize;
                f.core[p] = Some(c.index);
                f.package[p] = Some(c.package);
                f.numa[p] = c.numa;
                f.l3[p] = c.l3;
            }
        }
        let mut order: Vec<usize> = (0..t.cores.len()).collect();
        order.sort_by_key(|&k| t.cores[k].pus.first().copied());
        f.cores_by_pu = order;
        f.numa_first = t.numa_nodes.iter().any(|n| {
            n.cpus
                .iter()
                .filter_map(|p| f.package[p as usize])
                .collect::<BTreeSet<_>>()
                .len()
                > 1
        });
        f
    }
}

#[derive(Debug, Clone, Copy)]
struct Job {
    /// Threads asked (cpus=N), or cores asked (cores=N).
    n: usize,
    cores: bool,
    arrive: usize,
    leave: usize,
}

fn job_stream(t: &Topology, count: usize, load: f64, seed: u64) -> Vec<Job> {
    let mut rng = Rng(seed);
    let pus = t.pus().len();
    let smt = t.smt();
    // A batch/HPC-ish mix: many small jobs, some socket-sized ones.
    const SIZES: &[usize] = &[1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96];
    const WEIGHTS: &[u64] = &[16, 18, 18, 6, 14, 6, 9, 4, 4, 2, 2, 1];
    let sizes: Vec<(usize, u64)> = SIZES
        .iter()
        .zip(WEIGHTS)
        .filter(|(s, _)| **s <= (pus / 2).max(1))
        .map(|(s, w)| (*s, *w))
        .collect();
    let weights: Vec<u64> = sizes.iter().map(|(_, w)| *w).collect();
    let mean_cpus = sizes
        .iter()
        .map(|(s, w)| (*s * *w as usize) as f64)
        .sum::<f64>()
        / weights.iter().sum::<u64>() as f64;
    // One arrival per step: mean lifetime = load × PUs / mean size.
    let mean_life = (load * pus as f64 / mean_cpus).max(1.0);
    (0..count)
        .map(|i| {
            let cpus = sizes[rng.weighted(&weights)].0;
            let cores = cpus >= smt && cpus % smt == 0 && rng.chance(30);
            // Exponential lifetime.
            let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
            let life = (-(1.0 - u).ln() * mean_life).ceil().max(1.0) as usize;
            Job {
                n: if cores { cpus / smt } else { cpus },
                cores,
                arrive: i,
                leave: i + life,
            }
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Alloc {
    Pinc,
    Kubelet,
    FirstFit,
}

impl Alloc {
    fn name(self) -> &'static str {
        match self {
            Alloc::Pinc => "pinc",
            Alloc::Kubelet => "kubelet-packed",
            Alloc::FirstFit => "first-fit",
        }
    }
}

/// kubelet's takeByTopologyNUMAPacked over free threads; None when short.
fn kubelet_take(t: &Topology, f: &Facts, free: &[bool], n: usize) -> Option<Vec<u32>> {
    use std::collections::BTreeMap;
    let mut avail = free.to_vec();
    if avail.iter().filter(|&&a| a).count() < n {
        return None;
    }
    let pus: Vec<u32> = t.pus().iter().collect();
    // Level 1 is the NUMA node when one spans sockets, else the socket.
    let level = |p: u32, first: bool| -> u64 {
        let numa = f.numa[p as usize].map(u64::from);
        let package = f.package[p as usize].map(u64::from);
        let v = if first == f.numa_first { numa } else { package };
        v.unwrap_or(u64::MAX)
    };
    let free_per = |avail: &[bool], first: bool| -> BTreeMap<u64, usize> {
        let mut m = BTreeMap::new();
        for &p in &pus {
            *m.entry(level(p, first)).or_insert(0) += usize::from(avail[p as usize]);
        }
        m
    };
    let mut out: Vec<u32> = Vec::new();
    // 1. Whole first-level then second-level units, if the request covers them.
    for first in [true, false] {
        let counts = free_per(&avail, first);
        let mut units: Vec<(usize, u64)> = counts.iter().map(|(u, c)| (*c, *u)).collect();
        units.sort_unstable();
        for (_, u) in units {
            let members: Vec<u32> = pus
                .iter()
                .copied()
                .filter(|&p| level(p, first) == u)
                .collect();
            if members.iter().all(|&p| avail[p as usize]) && n - out.len() >= members.len() {
                for p in members {
                    avail[p as usize] = false;
                    out.push(p);
                }
            }
        }
    }
    // Cores ordered by: level-1 unit free CPUs, id; level-2 unit free CPUs,
    // id; core free CPUs, index (fewest free first: packed).
    let ordered = |avail: &[bool]| -> Vec<usize> {
        let (c1, c2) = (free_per(avail, true), free_per(avail, false));
        let mut keys: Vec<(usize, u64, usize, u64, usize, usize)> = t
            .cores
            .iter()
            .map(|core| {
                let p0 = core.pus[0];
                let (l1, l2) = (level(p0, true), level(p0, false));
                (
                    c1.get(&l1).copied().unwrap_or(0),
                    l1,
                    c2.get(&l2).copied().unwrap_or(0),
                    l2,
                    core.pus.iter().filter(|&&p| avail[p as usize]).count(),
                    core.index,
                )
            })
            .collect();
        keys.sort_unstable();
        keys.into_iter().map(|k| k.5).collect()
    };
    // 2. Whole free cores while the request needs at least a core.
    for k in ordered(&avail) {
        let core = &t.cores[k];
        if core.pus.iter().all(|&p| avail[p as usize]) && n - out.len() >= core.pus.len() {
            for &p in &core.pus {
                avail[p as usize] = false;
                out.push(p);
            }
        }
    }
    // 3. Single threads, partly used cores first.
    'threads: for k in ordered(&avail) {
        for &p in &t.cores[k].pus {
            if out.len() == n {
                break 'threads;
            }
            if avail[p as usize] {
                avail[p as usize] = false;
                out.push(p);
            }
        }
    }
    (out.len() == n).then_some(out)
}

/// First free whole cores in CPU id order: (cpus, reserved).
fn first_fit(t: &Topology, f: &Facts, free: &[bool], job: &Job) -> Option<(Vec<u32>, Vec<u32>)> {
    let mut units = 0;
    let mut cores = Vec::new();
    for &k in &f.cores_by_pu {
        if units >= job.n {
            break;
        }
        let core = &t.cores[k];
        if core.pus.iter().all(|&p| free[p as usize]) {
            units += if job.cores { 1 } else { core.pus.len() };
            cores.push(k);
        }
    }
    if units < job.n {
        return None;
    }
    let reserved: Vec<u32> = cores
        .iter()
        .flat_map(|&k| t.cores[k].pus.iter().copied())
        .collect();
    let mut cpus = reserved.clone();
    cpus.sort_unstable();
    if !job.cores {
        cpus.truncate(job.n);
    }
    Some((cpus, reserved))
}

#[derive(Default)]
struct Quality {
    placed: usize,
    refused: usize,
    numa_sum: usize,
    numa_spill: usize,
    pkg_spill: usize,
    l3_sum: usize,
    l3_spill: usize,
    split: usize,
}

/// Free capacity of each group (by a PU -> group map) for a job, in the
/// allocator's units: whole free cores (pinc, first-fit) or threads (kubelet).
fn room(
    t: &Topology,
    free: &[bool],
    group: &dyn Fn(u32) -> Option<u64>,
    job: &Job,
    alloc: Alloc,
    smt: usize,
) -> bool {
    let mut per: std::collections::BTreeMap<u64, usize> = std::collections::BTreeMap::new();
    for core in &t.cores {
        let Some(g) = group(core.pus[0]) else {
            continue;
        };
        let free_threads = core.pus.iter().filter(|&&p| free[p as usize]).count();
        let units = match alloc {
            Alloc::Kubelet => free_threads,
            _ if free_threads < core.pus.len() => 0,
            _ if job.cores => 1,
            _ => core.pus.len(),
        };
        *per.entry(g).or_insert(0) += units;
    }
    let need = match alloc {
        Alloc::Kubelet if job.cores => job.n * smt,
        _ => job.n,
    };
    per.values().any(|&u| u >= need)
}

/// A live job: (leave, cpus, held PUs).
type Live = (usize, Vec<u32>, Vec<u32>);

/// Which PUs are free: allowed and held by no live job.
fn free_pus(max: usize, allowed: &CpuList, live: &[Live]) -> Vec<bool> {
    let mut free = vec![false; max];
    for p in allowed.iter() {
        free[p as usize] = true;
    }
    for (_, _, held) in live {
        for &p in held {
            free[p as usize] = false;
        }
    }
    free
}

/// One job placed by `alloc`: its CPUs and the PUs it holds.
fn place(
    t: &Topology,
    f: &Facts,
    free: &[bool],
    allowed: &CpuList,
    live: &[Live],
    job: &Job,
    alloc: Alloc,
) -> Option<(Vec<u32>, Vec<u32>)> {
    match alloc {
        Alloc::Pinc => {
            let w = vec![
                format!("{}={}", if job.cores { "cores" } else { "cpus" }, job.n),
                "policy=compact".to_string(),
            ];
            let c = Constraints {
                allowed_cpus: allowed.clone(),
                allowed_mems: None,
                taken: live
                    .iter()
                    .flat_map(|(_, _, h)| h.iter().copied())
                    .collect(),
            };
            plan(t, &request(&w), &c)
                .ok()
                .map(|p| (p.cpus.iter().collect(), p.reserved.iter().collect()))
        }
        Alloc::Kubelet => {
            let n = if job.cores { job.n * f.smt } else { job.n };
            kubelet_take(t, f, free, n).map(|c| (c.clone(), c))
        }
        Alloc::FirstFit => first_fit(t, f, free, job),
    }
}

fn simulate(t: &Topology, f: &Facts, jobs: &[Job], alloc: Alloc) -> Quality {
    let max = f.core.len();
    let allowed = t.pus();
    let mut q = Quality::default();
    let mut live: Vec<Live> = Vec::new();
    for job in jobs {
        live.retain(|(leave, _, _)| *leave > job.arrive);
        let free = free_pus(max, &allowed, &live);
        let placed = place(t, f, &free, &allowed, &live, job, alloc);
        let Some((cpus, held)) = placed else {
            q.refused += 1;
            continue;
        };
        let set = |g: &dyn Fn(usize) -> Option<u64>| -> usize {
            cpus.iter()
                .filter_map(|&p| g(p as usize))
                .collect::<BTreeSet<_>>()
                .len()
        };
        let numa = set(&|p| f.numa[p].map(u64::from));
        let pkgs = set(&|p| f.package[p].map(u64::from));
        let l3 = set(&|p| f.l3[p].map(|x| x as u64));
        q.placed += 1;
        q.numa_sum += numa;
        q.l3_sum += l3;
        if numa > 1
            && room(
                t,
                &free,
                &|p| f.numa[p as usize].map(u64::from),
                job,
                alloc,
                f.smt,
            )
        {
            q.numa_spill += 1;
        }
        if pkgs > 1
            && room(
                t,
                &free,
                &|p| f.package[p as usize].map(u64::from),
                job,
                alloc,
                f.smt,
            )
        {
            q.pkg_spill += 1;
        }
        if l3 > 1
            && room(
                t,
                &free,
                &|p| f.l3[p as usize].map(|x| x as u64),
                job,
                alloc,
                f.smt,
            )
        {
            q.l3_spill += 1;
        }
        // Split: a core of this job holds a thread of another live job.
        let my_cores: BTreeSet<usize> = cpus.iter().filter_map(|&p| f.core[p as usize]).collect();
        let shared = live.iter().any(|(_, other, _)| {
            other
                .iter()
                .any(|&p| f.core[p as usize].is_some_and(|k| my_cores.contains(&k)))
        });
        if shared {
            q.split += 1;
        }
        live.push((job.leave, cpus, held));
    }
    q
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let decisions = if quick { 2_000 } else { 10_000 };
    let jobs_per_node = if quick { 1_000 } else { 4_000 };

    let epyc = fixture("amd-epyc9654-2s-384pu.xml");
    let synth = synthetic::build(SYNTH_8NUMA).expect("synthetic 8-NUMA node");

    println!("(a) planning time per decision ({decisions} decisions, mixed requests, ledger filling to ~95% and emptying)");
    println!();
    println!("| node | PUs | NUMA | median | p99 | max | mean | refused | peak held |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, t) in [
        ("amd-epyc9654 (fixture)", &epyc),
        ("synth-8numa-384", &synth),
    ] {
        let r = time_decisions(t, decisions, 0x5eed_0001);
        println!(
            "| {name} | {} | {} | {:.1} µs | {:.1} µs | {:.1} µs | {:.1} µs | {} | {:.0}% |",
            t.pus().len(),
            t.numa_nodes.len(),
            r.median.as_secs_f64() * 1e6,
            r.p99.as_secs_f64() * 1e6,
            r.max.as_secs_f64() * 1e6,
            r.mean.as_secs_f64() * 1e6,
            r.refused,
            r.peak_held * 100.0
        );
    }

    println!();
    println!("(b) placement quality, {jobs_per_node} jobs per node (cpus=N 1-96 or cores=N, compact; ~85% offered load; same stream for every allocator)");
    println!("    baselines: kubelet-packed = kubelet static policy takeByTopologyNUMAPacked (threads, no Topology Manager);");
    println!("               first-fit = first free whole cores in CPU id order");
    println!("    *spill columns: jobs spanning >1 NUMA node / package / L3 group although, at that moment, one had room for the whole job");
    println!();
    println!("| node | allocator | placed | refused | NUMA/job | NUMA spill* | pkg spill* | L3/job | L3 spill* | split-core jobs |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut nodes: Vec<(String, Topology)> = FIXTURES
        .iter()
        .map(|(name, file)| (name.to_string(), fixture(file)))
        .collect();
    for (name, d) in SYNTHETIC {
        nodes.push((
            name.to_string(),
            synthetic::build(d).expect("synthetic node"),
        ));
    }
    for (i, (name, t)) in nodes.iter().enumerate() {
        let f = Facts::new(t);
        let jobs = job_stream(t, jobs_per_node, 0.85, 0xb0b0 + i as u64);
        for alloc in [Alloc::Pinc, Alloc::Kubelet, Alloc::FirstFit] {
            let q = simulate(t, &f, &jobs, alloc);
            let per = |x: usize| x as f64 / q.placed.max(1) as f64;
            let pct = |x: usize| 100.0 * per(x);
            let l3 = if t.l3_groups.is_empty() {
                ("-".to_string(), "-".to_string())
            } else {
                (
                    format!("{:.2}", per(q.l3_sum)),
                    format!("{} ({:.1}%)", q.l3_spill, pct(q.l3_spill)),
                )
            };
            println!(
                "| {name} | {} | {} | {} | {:.2} | {} ({:.1}%) | {} ({:.1}%) | {} | {} | {} ({:.1}%) |",
                alloc.name(),
                q.placed,
                q.refused,
                per(q.numa_sum),
                q.numa_spill,
                pct(q.numa_spill),
                q.pkg_spill,
                pct(q.pkg_spill),
                l3.0,
                l3.1,
                q.split,
                pct(q.split)
            );
        }
    }
}
