//! Topologies built from a one-line description, without hwloc, for tests.
//!
//! ```text
//! packages=2 numa_per_package=2 cores_per_numa=8 smt=2 numbering=stride
//! l3_per_numa=1 cpuless_numa=hbm:1 numa_ids=0,1,2,3,4,5,6,7 gpus=0:1 hcas=1:1
//! ```
//!
//! Space-separated `key=value` pairs, each key at most once, all optional:
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `packages` | 1 | packages (sockets) |
//! | `numa_per_package` | 1 | NUMA nodes with CPUs per package |
//! | `cores_per_numa` | 4 | cores per NUMA node with CPUs |
//! | `smt` | 1 | hardware threads per core |
//! | `numbering` | `linear` | PU numbering, see below |
//! | `l3_per_numa` | 1 | L3 groups per CPU-ful node (must divide `cores_per_numa`; 0 = none) |
//! | `memory` | `16G` | memory of each CPU-ful node (`K`/`M`/`G`/`T` are binary, bare = bytes) |
//! | `cpuless_numa` | none | `KIND:N[,KIND:N]`: N CPU-less nodes of KIND (`hbm`, `gpu`, `dram`) attached to *each* CPU-ful node |
//! | `cpuless_memory` | `16G` | memory of each CPU-less node |
//! | `numa_ids` | 0,1,2,… | OS indexes of all nodes: the CPU-ful ones package by package, then the CPU-less ones (for each `cpuless_numa` entry, one group per CPU-ful node in order) |
//! | `hugepages` | none | `COUNTxSIZE[,COUNTxSIZE]` on each CPU-ful node, all free (e.g. `2048x2M,0x1G`) |
//! | `gpus`, `hcas`, `nics` | none | `NUMA:COUNT[,NUMA:COUNT]`: devices local to NUMA node (OS index) NUMA |
//! | `distances` | generated | `none`, or n×n comma-separated values, rows and columns in `numa_ids` order |
//!
//! Numbering, with C cores per CPU-ful node, M CPU-ful nodes and T = C×M
//! cores in all, for thread i of local core j on CPU-ful node g:
//!
//! - `linear`: core k = g×C + j has PUs k×smt .. k×smt+smt-1 (POWER, ARM).
//! - `stride`: core k = g×C + j has PUs k, k+T, k+2T… (Linux on Intel and
//!   AMD: siblings n and n+T).
//! - `interleaved`: core k = j×M + g has PUs k, k+T… so that with two
//!   nodes NUMA 0 holds the even PUs and NUMA 1 the odd ones (HP SL390s).
//!
//! Generated distances: 10 on the diagonal, 12 between CPU-ful nodes of a
//! package, 20 across packages; a CPU-less node is 10 further from
//! everything than its host node (so 20 from its host).
//!
//! Devices get bus ids `0000:BB:00.0` with BB counting from 01 (GPUs, then
//! HCAs, then NICs) and names `cuda<k>`/`nvml<k>` (GPU, 10de:20b0),
//! `mlx5_<k>`/`ib<k>` (HCA, 15b3:101b) and `eth<k>` (NIC, 8086:1521).
//!
//! Limits: 64 NUMA nodes, NUMA ids up to 1023, PU numbers up to 8191.

use std::collections::{BTreeMap, BTreeSet};

use pinc_cpulist::CpuList;

use crate::error::TopologyError;
use crate::model::{
    Core, Device, DeviceKind, Distances, HugepagePool, MemoryKind, NumaNode, Package, Topology,
};

const MAX_NODES: usize = 64;
const MAX_NODE_ID: u32 = 1023;
const MAX_PU: u64 = 8191;

/// How PUs are numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbering {
    Linear,
    Stride,
    Interleaved,
}

/// Builds a topology from a description (see the module documentation).
pub fn build(description: &str) -> Result<Topology, TopologyError> {
    let d = Description::parse(description)?;
    let shape = Shape::parse(&d)?;
    let hugepages = parse_hugepages(&d)?;
    let (cores, l3_groups, node_cpus) = build_cores(&shape);
    let mut numa_nodes = build_numa_nodes(&shape, &node_cpus, &hugepages);
    let packages = build_packages(&shape);
    let distances = build_distances(&d, &shape)?;
    let devices = build_devices(&d, &numa_nodes)?;
    numa_nodes.sort_by_key(|n| n.os_index);
    Ok(Topology {
        source: format!("synthetic: {}", description.trim()),
        packages,
        numa_nodes,
        l3_groups,
        cores,
        devices,
        distances,
    })
}

const KNOWN: &[&str] = &[
    "packages",
    "numa_per_package",
    "cores_per_numa",
    "smt",
    "numbering",
    "l3_per_numa",
    "memory",
    "cpuless_numa",
    "cpuless_memory",
    "numa_ids",
    "hugepages",
    "gpus",
    "hcas",
    "nics",
    "distances",
];

/// A description split into its keys, each known and given once.
struct Description<'d> {
    text: &'d str,
    keys: BTreeMap<&'d str, &'d str>,
}

impl<'d> Description<'d> {
    fn parse(text: &'d str) -> Result<Self, TopologyError> {
        let mut d = Description {
            text,
            keys: BTreeMap::new(),
        };
        for token in text.split_whitespace() {
            let (k, v) = token
                .split_once('=')
                .ok_or_else(|| d.fail(format!("{token:?} is not key=value")))?;
            if d.keys.insert(k, v).is_some() {
                return Err(d.fail(format!("key {k:?} given twice")));
            }
        }
        if let Some(k) = d.keys.keys().find(|k| !KNOWN.contains(k)) {
            return Err(d.fail(format!("unknown key {k:?} (known: {})", KNOWN.join(", "))));
        }
        Ok(d)
    }

    fn get(&self, key: &str) -> Option<&'d str> {
        self.keys.get(key).copied()
    }

    fn fail(&self, reason: String) -> TopologyError {
        TopologyError::Synthetic {
            description: self.text.to_string(),
            reason,
        }
    }

    /// A whole number of at least `min`, or `default` when absent.
    fn count(&self, key: &str, default: u64, min: u64) -> Result<u64, TopologyError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => {
                let n: u64 = v
                    .parse()
                    .map_err(|_| self.fail(format!("{key}={v:?} is not a number")))?;
                if n < min {
                    return Err(self.fail(format!("{key} must be at least {min}")));
                }
                Ok(n)
            }
        }
    }
}

/// The machine a description asks for, checked against the limits.
struct Shape {
    packages: u64,
    numa_per_package: u64,
    cores_per_numa: u64,
    smt: u64,
    l3_per_numa: u64,
    numbering: Numbering,
    memory: u64,
    cpuless_memory: u64,
    /// The kinds of the CPU-less nodes each CPU-ful node gets.
    cpuless: Vec<MemoryKind>,
    cpuful: usize,
    total_nodes: usize,
    total_cores: u64,
    /// OS indexes: CPU-ful first, then CPU-less (entry-major, host-minor).
    ids: Vec<u32>,
}

impl Shape {
    fn parse(d: &Description<'_>) -> Result<Self, TopologyError> {
        let packages = d.count("packages", 1, 1)?;
        let numa_per_package = d.count("numa_per_package", 1, 1)?;
        let cores_per_numa = d.count("cores_per_numa", 4, 1)?;
        let smt = d.count("smt", 1, 1)?;
        let l3_per_numa = d.count("l3_per_numa", 1, 0)?;
        let numbering = parse_numbering(d)?;
        let memory = size(d.get("memory").unwrap_or("16G"))
            .ok_or_else(|| d.fail("memory: expected a size like 64G".to_string()))?;
        let cpuless_memory = size(d.get("cpuless_memory").unwrap_or("16G"))
            .ok_or_else(|| d.fail("cpuless_memory: expected a size like 16G".to_string()))?;

        let cpuful = packages.saturating_mul(numa_per_package);
        let cpuless = parse_cpuless(d)?;
        let total_nodes = cpuful.saturating_mul(1 + cpuless.len() as u64);
        if total_nodes > MAX_NODES as u64 {
            return Err(d.fail(format!("{total_nodes} NUMA nodes, more than {MAX_NODES}")));
        }
        let (cpuful, total_nodes) = (cpuful as usize, total_nodes as usize);
        let total_cores = (cpuful as u64).saturating_mul(cores_per_numa);
        let total_pus = total_cores.saturating_mul(smt);
        if total_pus > MAX_PU + 1 {
            return Err(d.fail(format!("{total_pus} PUs, more than {}", MAX_PU + 1)));
        }
        if l3_per_numa > 0 && cores_per_numa % l3_per_numa != 0 {
            return Err(d.fail(format!(
                "l3_per_numa={l3_per_numa} does not divide cores_per_numa={cores_per_numa}"
            )));
        }
        let ids = parse_numa_ids(d, total_nodes)?;
        Ok(Shape {
            packages,
            numa_per_package,
            cores_per_numa,
            smt,
            l3_per_numa,
            numbering,
            memory,
            cpuless_memory,
            cpuless,
            cpuful,
            total_nodes,
            total_cores,
            ids,
        })
    }

    /// The CPU-ful node (index) node `i` hangs off.
    fn host(&self, i: usize) -> usize {
        if i < self.cpuful {
            i
        } else {
            (i - self.cpuful) % self.cpuful
        }
    }
}

fn parse_numbering(d: &Description<'_>) -> Result<Numbering, TopologyError> {
    match d.get("numbering").unwrap_or("linear") {
        "linear" => Ok(Numbering::Linear),
        "stride" => Ok(Numbering::Stride),
        "interleaved" => Ok(Numbering::Interleaved),
        other => Err(d.fail(format!(
            "numbering={other:?}: expected linear, stride or interleaved"
        ))),
    }
}

/// `cpuless_numa=KIND:N,…`: the CPU-less node kinds, in order.
fn parse_cpuless(d: &Description<'_>) -> Result<Vec<MemoryKind>, TopologyError> {
    let mut cpuless: Vec<MemoryKind> = Vec::new();
    let Some(v) = d.get("cpuless_numa") else {
        return Ok(cpuless);
    };
    for item in v.split(',') {
        let (kind, n) = item
            .split_once(':')
            .ok_or_else(|| d.fail(format!("cpuless_numa item {item:?} is not KIND:N")))?;
        let kind = match kind {
            "hbm" => MemoryKind::Hbm,
            "gpu" => MemoryKind::Gpu,
            "dram" => MemoryKind::Dram,
            _ => return Err(d.fail(format!("cpuless_numa kind {kind:?}: hbm, gpu or dram"))),
        };
        let n: u64 = n
            .parse()
            .map_err(|_| d.fail(format!("cpuless_numa count {n:?} is not a number")))?;
        // Bounded before the nodes are made: each CPU-ful node gets
        // them all, so more than MAX_NODES can never fit.
        if cpuless.len() as u64 + n > MAX_NODES as u64 {
            return Err(d.fail(format!("cpuless_numa: more than {MAX_NODES} NUMA nodes")));
        }
        cpuless.extend(std::iter::repeat_n(kind, n as usize));
    }
    Ok(cpuless)
}

/// `numa_ids`, or 0.. when absent: one distinct id per node.
fn parse_numa_ids(d: &Description<'_>, total_nodes: usize) -> Result<Vec<u32>, TopologyError> {
    let ids: Vec<u32> = match d.get("numa_ids") {
        None => (0..total_nodes as u32).collect(),
        Some(v) => v
            .split(',')
            .map(|s| {
                s.parse::<u32>()
                    .ok()
                    .filter(|&n| n <= MAX_NODE_ID)
                    .ok_or_else(|| {
                        d.fail(format!("numa id {s:?} is not a number up to {MAX_NODE_ID}"))
                    })
            })
            .collect::<Result<_, _>>()?,
    };
    if ids.len() != total_nodes {
        return Err(d.fail(format!(
            "numa_ids has {} ids for {total_nodes} nodes",
            ids.len()
        )));
    }
    if ids.iter().collect::<BTreeSet<_>>().len() != ids.len() {
        return Err(d.fail("numa_ids repeats an id".to_string()));
    }
    Ok(ids)
}

/// `hugepages=COUNTxSIZE,…`: the pools of each CPU-ful node, smallest first.
fn parse_hugepages(d: &Description<'_>) -> Result<Vec<HugepagePool>, TopologyError> {
    let Some(v) = d.get("hugepages") else {
        return Ok(Vec::new());
    };
    let mut pools = Vec::new();
    for item in v.split(',') {
        let pool = item.split_once('x').and_then(|(n, s)| {
            let total = n.parse::<u64>().ok()?;
            let bytes = size(s)?;
            Some(HugepagePool {
                size_kb: bytes / 1024,
                total,
                free: total,
            })
        });
        pools.push(
            pool.ok_or_else(|| d.fail(format!("hugepages item {item:?} is not COUNTxSIZE")))?,
        );
    }
    pools.sort_by_key(|p| p.size_kb);
    Ok(pools)
}

/// Cores and their PUs by the numbering scheme; also the L3 groups and each
/// CPU-ful node's CPUs.
fn build_cores(s: &Shape) -> (Vec<Core>, Vec<CpuList>, Vec<CpuList>) {
    let mut cores = Vec::new();
    let mut l3_groups = Vec::new();
    let mut node_cpus = vec![CpuList::new(); s.cpuful];
    let (m, c, t, smt) = (s.cpuful as u64, s.cores_per_numa, s.total_cores, s.smt);
    for (g, cpus) in node_cpus.iter_mut().enumerate() {
        let g64 = g as u64;
        let package = (g64 / s.numa_per_package) as u32;
        let mut l3_cores: Vec<CpuList> = Vec::new();
        for j in 0..c {
            let pus: Vec<u32> = (0..smt)
                .map(|i| match s.numbering {
                    Numbering::Linear => (g64 * c + j) * smt + i,
                    Numbering::Stride => g64 * c + j + i * t,
                    Numbering::Interleaved => j * m + g64 + i * t,
                })
                .map(|pu| pu as u32)
                .collect::<BTreeSet<u32>>()
                .into_iter()
                .collect();
            cpus.extend_from(&pus);
            // Which of this node's L3 groups the core is in (none when 0).
            let slot = c
                .checked_div(s.l3_per_numa)
                .and_then(|per_l3| j.checked_div(per_l3))
                .map(|s| s as usize);
            if let Some(slot) = slot {
                if l3_cores.len() <= slot {
                    l3_cores.push(CpuList::new());
                }
                l3_cores[slot].extend_from(&pus);
            }
            cores.push(Core {
                index: cores.len(),
                os_index: Some(((g64 % s.numa_per_package) * c + j) as u32),
                package,
                numa: Some(s.ids[g]),
                l3: slot.map(|s| l3_groups.len() + s),
                pus,
            });
        }
        l3_groups.extend(l3_cores);
    }
    (cores, l3_groups, node_cpus)
}

/// Every node in listing order: CPU-ful ones with their CPUs and
/// hugepages, CPU-less ones near their host's CPUs.
fn build_numa_nodes(s: &Shape, node_cpus: &[CpuList], hugepages: &[HugepagePool]) -> Vec<NumaNode> {
    (0..s.total_nodes)
        .map(|i| {
            let on_cpus = i < s.cpuful;
            NumaNode {
                os_index: s.ids[i],
                memory: if on_cpus { s.memory } else { s.cpuless_memory },
                kind: if on_cpus {
                    MemoryKind::Dram
                } else {
                    s.cpuless[(i - s.cpuful) / s.cpuful]
                },
                cpus: if on_cpus {
                    node_cpus[i].clone()
                } else {
                    CpuList::new()
                },
                near_cpus: if on_cpus {
                    CpuList::new()
                } else {
                    node_cpus[s.host(i)].clone()
                },
                hugepages: if on_cpus {
                    hugepages.to_vec()
                } else {
                    Vec::new()
                },
            }
        })
        .collect()
}

/// Each package with the nodes (CPU-ful or hanging off one) it holds.
fn build_packages(s: &Shape) -> Vec<Package> {
    (0..s.packages as u32)
        .map(|p| {
            let mut nodes: Vec<u32> = (0..s.total_nodes)
                .filter(|&i| s.host(i) as u64 / s.numa_per_package == u64::from(p))
                .map(|i| s.ids[i])
                .collect();
            nodes.sort_unstable();
            Package {
                os_index: p,
                numa_nodes: nodes,
            }
        })
        .collect()
}

/// The distance matrix: given, generated, or none; rows in id order.
fn build_distances(d: &Description<'_>, s: &Shape) -> Result<Option<Distances>, TopologyError> {
    // In listing order first.
    let n = s.total_nodes;
    let listed: Option<Vec<u64>> = match d.get("distances") {
        Some("none") => None,
        Some(v) => {
            let values = v
                .split(',')
                .map(|s| s.parse::<u64>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| d.fail("distances: expected numbers".to_string()))?;
            if values.len() != n * n {
                return Err(d.fail(format!(
                    "distances has {} values for {n} nodes ({} needed)",
                    values.len(),
                    n * n
                )));
            }
            Some(values)
        }
        None if n > 1 => Some(generated_distances(s)),
        None => None,
    };
    Ok(listed.map(|values| {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| s.ids[i]);
        Distances {
            nodes: order.iter().map(|&i| s.ids[i]).collect(),
            values: order
                .iter()
                .flat_map(|&a| order.iter().map(move |&b| (a, b)))
                .map(|(a, b)| values[a * n + b])
                .collect(),
        }
    }))
}

/// The default matrix in listing order (see the module documentation).
fn generated_distances(s: &Shape) -> Vec<u64> {
    let n = s.total_nodes;
    let base = |a: usize, b: usize| {
        if a == b {
            10
        } else if a as u64 / s.numa_per_package == b as u64 / s.numa_per_package {
            12
        } else {
            20
        }
    };
    let mut values = Vec::with_capacity(n * n);
    for a in 0..n {
        for b in 0..n {
            values.push(if a == b {
                10
            } else {
                let extra = if a >= s.cpuful || b >= s.cpuful {
                    10
                } else {
                    0
                };
                base(s.host(a), s.host(b)) + extra
            });
        }
    }
    values
}

/// `gpus`, `hcas` and `nics`: devices on the nodes named, bus ids in order.
fn build_devices(
    d: &Description<'_>,
    numa_nodes: &[NumaNode],
) -> Result<Vec<Device>, TopologyError> {
    let mut devices = Vec::new();
    for (key, kind) in [
        ("gpus", DeviceKind::Gpu),
        ("hcas", DeviceKind::Hca),
        ("nics", DeviceKind::Nic),
    ] {
        let Some(v) = d.get(key) else { continue };
        let mut ordinal = 0;
        for item in v.split(',') {
            let (node, count) = item
                .split_once(':')
                .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
                .ok_or_else(|| d.fail(format!("{key} item {item:?} is not NUMA:COUNT")))?;
            let Some(numa) = numa_nodes.iter().find(|x| x.os_index == node) else {
                return Err(d.fail(format!("{key}: no NUMA node {node}")));
            };
            let cpus = if numa.cpus.is_empty() {
                numa.near_cpus.clone()
            } else {
                numa.cpus.clone()
            };
            for _ in 0..count {
                let bus = devices.len() + 1;
                if bus > 0xff {
                    return Err(d.fail("more than 255 devices".to_string()));
                }
                let (vendor_id, device_id, names) = identity(kind, ordinal);
                devices.push(Device {
                    bus_id: format!("0000:{bus:02x}:00.0"),
                    kind,
                    vendor_id,
                    device_id,
                    names,
                    numa: vec![node],
                    cpus: cpus.clone(),
                });
                ordinal += 1;
            }
        }
    }
    Ok(devices)
}

/// Vendor id, device id and OS names of the `ordinal`th device of a kind.
fn identity(kind: DeviceKind, ordinal: u32) -> (u16, u16, Vec<String>) {
    match kind {
        DeviceKind::Gpu => (
            0x10de,
            0x20b0,
            vec![format!("cuda{ordinal}"), format!("nvml{ordinal}")],
        ),
        DeviceKind::Hca => (
            0x15b3,
            0x101b,
            vec![format!("mlx5_{ordinal}"), format!("ib{ordinal}")],
        ),
        _ => (0x8086, 0x1521, vec![format!("eth{ordinal}")]),
    }
}

/// "16G" → bytes (binary suffixes K, M, G, T; bare numbers are bytes).
fn size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, shift) = match text.char_indices().last()? {
        (i, 'K' | 'k') => (&text[..i], 10),
        (i, 'M' | 'm') => (&text[..i], 20),
        (i, 'G' | 'g') => (&text[..i], 30),
        (i, 'T' | 't') => (&text[..i], 40),
        _ => (text, 0),
    };
    digits.parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

trait ExtendFrom {
    fn extend_from(&mut self, pus: &[u32]);
}

impl ExtendFrom for CpuList {
    fn extend_from(&mut self, pus: &[u32]) {
        for &pu in pus {
            self.insert(pu);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(s: &str) -> CpuList {
        s.parse().expect("cpu list")
    }

    #[test]
    fn defaults() {
        let t = build("").expect("empty description");
        assert_eq!(t.packages.len(), 1);
        assert_eq!(t.numa_nodes.len(), 1);
        assert_eq!(t.cores.len(), 4);
        assert_eq!(t.pus(), list("0-3"));
        assert_eq!(t.l3_groups, vec![list("0-3")]);
        assert_eq!(t.distances, None);
        assert_eq!(t.numa_nodes[0].memory, 16 << 30);
        assert!(t.source.starts_with("synthetic"));
    }

    #[test]
    fn linear_numbering() {
        let t = build("packages=2 cores_per_numa=4 smt=4 numbering=linear").expect("build");
        assert_eq!(t.pus().len(), 32);
        assert_eq!(t.cores[1].pus, vec![4, 5, 6, 7]);
        assert_eq!(t.numa(0).expect("node 0").cpus, list("0-15"));
        assert_eq!(t.numa(1).expect("node 1").cpus, list("16-31"));
        assert_eq!(t.smt(), 4);
    }

    #[test]
    fn stride_numbering_like_intel() {
        // Supermicro X9DRG: NUMA0 = 0-7,16-23, siblings (n, n+16).
        let t = build("packages=2 cores_per_numa=8 smt=2 numbering=stride").expect("build");
        assert_eq!(t.numa(0).expect("node 0").cpus, list("0-7,16-23"));
        assert_eq!(t.numa(1).expect("node 1").cpus, list("8-15,24-31"));
        assert_eq!(t.core_of(3).expect("core").pus, vec![3, 19]);
        assert_eq!(t.core_of(24).expect("core").pus, vec![8, 24]);
        assert_eq!(t.core_of(24).expect("core").package, 1);
        assert_eq!(t.package_of_numa(1), Some(1));
    }

    #[test]
    fn interleaved_numbering_like_sl390s() {
        let t = build("packages=2 cores_per_numa=6 smt=2 numbering=interleaved").expect("build");
        let even: CpuList = (0..24).filter(|p| p % 2 == 0).collect();
        let odd: CpuList = (0..24).filter(|p| p % 2 == 1).collect();
        assert_eq!(t.numa(0).expect("node 0").cpus, even);
        assert_eq!(t.numa(1).expect("node 1").cpus, odd);
        for pu in 0..12 {
            assert_eq!(t.core_of(pu).expect("core").pus, vec![pu, pu + 12]);
        }
    }

    #[test]
    fn epyc_like_l3_groups() {
        let t = build(
            "packages=2 numa_per_package=1 cores_per_numa=96 smt=2 numbering=stride l3_per_numa=12",
        )
        .expect("build");
        assert_eq!(t.pus().len(), 384);
        assert_eq!(t.l3_groups.len(), 24);
        assert!(t.l3_groups.iter().all(|g| g.len() == 16));
        assert_eq!(t.core_of(5).expect("core").pus, vec![5, 197]);
        assert_eq!(t.core_of(5).expect("core").l3, Some(0));
        assert_eq!(t.core_of(8).expect("core").l3, Some(1));
        assert_eq!(t.core_of(100).expect("core").l3, Some(12));
        assert_eq!(t.l3_groups[1], list("8-15,200-207"));
    }

    #[test]
    fn knl_like_hbm_nodes() {
        let t = build(
            "numa_per_package=4 cores_per_numa=4 smt=4 numbering=stride cpuless_numa=hbm:1 \
             numa_ids=0,1,2,3,7,4,5,6 memory=1G cpuless_memory=2G",
        )
        .expect("build");
        assert_eq!(t.numa_nodes.len(), 8);
        assert_eq!(
            t.numa_nodes.iter().map(|n| n.os_index).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4, 5, 6, 7]
        );
        for (dram, hbm) in [(0, 7), (1, 4), (2, 5), (3, 6)] {
            let d = t.numa(dram).expect("dram");
            let h = t.numa(hbm).expect("hbm");
            assert_eq!(d.kind, MemoryKind::Dram);
            assert_eq!(h.kind, MemoryKind::Hbm);
            assert!(h.cpus.is_empty());
            assert_eq!(h.near_cpus, d.cpus);
            assert_eq!(h.memory, 2 << 30);
            assert_eq!(t.distance(dram, hbm), 20);
            assert_eq!(t.distance(hbm, hbm), 10);
        }
        assert_eq!(t.numa(0).expect("node").cpus, list("0-3,16-19,32-35,48-51"));
        assert_eq!(t.distance(0, 1), 12);
        assert_eq!(t.distance(0, 4), 22);
        assert_eq!(t.packages[0].numa_nodes, vec![0, 1, 2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn sparse_ids_devices_and_distances() {
        let t = build(
            "packages=2 numa_per_package=2 cores_per_numa=8 smt=2 numbering=stride \
             numa_ids=0,1,4,5 gpus=0:1,5:2 hcas=1:1 nics=4:1 hugepages=2048x2M,0x1G",
        )
        .expect("build");
        assert_eq!(t.packages[0].numa_nodes, vec![0, 1]);
        assert_eq!(t.packages[1].numa_nodes, vec![4, 5]);
        assert_eq!(t.numa(4).expect("node 4").cpus, list("16-23,48-55"));
        let d = t.distances.as_ref().expect("distances");
        assert_eq!(d.nodes, vec![0, 1, 4, 5]);
        assert_eq!(t.distance(0, 1), 12);
        assert_eq!(t.distance(1, 4), 20);
        assert_eq!(t.distance(5, 5), 10);

        let gpus: Vec<_> = t.devices_of_kind(DeviceKind::Gpu).collect();
        assert_eq!(gpus.len(), 3);
        assert_eq!(gpus[0].numa, vec![0]);
        assert_eq!(gpus[1].numa, vec![5]);
        assert_eq!(gpus[2].names, vec!["cuda2", "nvml2"]);
        assert_eq!(gpus[1].cpus, t.numa(5).expect("node 5").cpus);
        let hca = t.device_by_name("mlx5_0").expect("hca");
        assert_eq!(hca.kind, DeviceKind::Hca);
        assert_eq!(hca.numa, vec![1]);
        assert_eq!(hca.bus_id, "0000:04:00.0");
        assert_eq!(t.device_by_bus_id("04:00.0"), Some(hca));
        assert_eq!(t.device_by_name("eth0").expect("nic").numa, vec![4]);

        let pools = &t.numa(5).expect("node 5").hugepages;
        assert_eq!(pools.len(), 2);
        assert_eq!(
            (pools[0].size_kb, pools[0].total, pools[0].free),
            (2048, 2048, 2048)
        );
        assert_eq!((pools[1].size_kb, pools[1].total), (1 << 20, 0));
    }

    #[test]
    fn explicit_distances_follow_numa_ids() {
        let t = build("packages=2 numa_ids=8,3 distances=10,21,21,10").expect("build");
        assert_eq!(t.distances.as_ref().expect("d").nodes, vec![3, 8]);
        assert_eq!(t.distance(3, 8), 21);
        let t = build("packages=2 distances=none").expect("build");
        assert!(t.distances.is_none());
    }

    #[test]
    fn every_pu_in_exactly_one_core_and_node() {
        for numbering in ["linear", "stride", "interleaved"] {
            let t = build(&format!(
                "packages=2 numa_per_package=4 cores_per_numa=24 smt=2 numbering={numbering}"
            ))
            .expect("build");
            assert_eq!(t.numa_nodes.len(), 8);
            assert_eq!(t.pus(), (0..384).collect::<CpuList>(), "{numbering}");
            let total: usize = t.numa_nodes.iter().map(|n| n.cpus.len()).sum();
            assert_eq!(total, 384);
            for core in &t.cores {
                assert_eq!(t.numa_of_pu(core.pus[0]), core.numa);
                assert!(core.pus.windows(2).all(|w| w[0] < w[1]));
            }
        }
    }

    #[test]
    fn huge_cpuless_counts_fail_at_once() {
        // Found while writing the fuzz target `synthetic` (fuzz/): the
        // nodes were pushed one by one before the node limit was checked,
        // so this ran until memory ran out.
        let err = build("cpuless_numa=hbm:99999999999").expect_err("too many");
        assert!(err.to_string().contains("more than 64 NUMA nodes"), "{err}");
        let err = build("cpuless_numa=hbm:40,gpu:40").expect_err("too many");
        assert!(err.to_string().contains("more than 64 NUMA nodes"), "{err}");
        build("cpuless_numa=hbm:63").expect("64 nodes fit");
    }

    #[test]
    fn rejects_bad_descriptions() {
        for bad in [
            "packages",
            "packages=0",
            "packages=x",
            "sockets=2",
            "smt=2 smt=2",
            "numbering=random",
            "cores_per_numa=6 l3_per_numa=4",
            "packages=2 numa_ids=0",
            "packages=2 numa_ids=1,1",
            "gpus=3:1",
            "gpus=0",
            "cpuless_numa=pmem:1",
            "hugepages=lots",
            "distances=10,20",
            "packages=65",
            "cores_per_numa=8192 smt=2",
        ] {
            let err = build(bad).expect_err(bad);
            assert!(err.to_string().contains(bad), "{bad}: {err}");
        }
    }
}
