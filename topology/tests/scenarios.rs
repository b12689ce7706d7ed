//! Placement scenarios on the real-machine fixtures (read in place, see `pinc_topology::testdata`),
//! with the CPU lists computed from the facts the fixtures' README states.

#[macro_use]
mod common;

use std::collections::BTreeSet;
use std::sync::LazyLock;

use pinc_cpulist::CpuList;
use pinc_request::placement::{from_words, MemMode, PlacementRequest};
use pinc_topology::planner::{plan, Constraints, Placement, PlanError};
use pinc_topology::{from_xml, Topology};

/// A real-machine topology, read in place (see `pinc_topology::testdata`).
fn load(name: &str) -> Topology {
    let path = pinc_topology::testdata::path(name).expect("tests check needs_topologies! first");
    from_xml(&path).unwrap_or_else(|e| panic!("loading {}: {e:?}", path.display()))
}

static SUPERMICRO: LazyLock<Topology> = LazyLock::new(|| load("supermicro-x9drg-2s-e5-gpu-ib.xml"));
static HP: LazyLock<Topology> = LazyLock::new(|| load("hp-sl390s-2s-6c-3gpu-ib.xml"));
static POWER8: LazyLock<Topology> = LazyLock::new(|| load("ibm-power8-2s-4p100.xml"));
static NEC: LazyLock<Topology> = LazyLock::new(|| load("nec-2s-skylake-8ve-2ib.xml"));
static KNL: LazyLock<Topology> = LazyLock::new(|| load("intel-knl-snc4-hybrid-8numa.xml"));
static EPYC: LazyLock<Topology> = LazyLock::new(|| load("amd-epyc9654-2s-384pu.xml"));

fn list(s: &str) -> CpuList {
    s.parse().expect("cpu list")
}

fn req(words: &[&str]) -> PlacementRequest {
    from_words(words.iter().copied())
        .expect("valid request")
        .expect("a request")
}

/// A node with a ledger: places requests, remembers what they hold, frees.
struct Node<'t> {
    t: &'t Topology,
    allowed: CpuList,
    jobs: Vec<(String, CpuList)>,
}

impl<'t> Node<'t> {
    fn new(t: &'t Topology) -> Self {
        Node {
            t,
            allowed: t.pus(),
            jobs: Vec::new(),
        }
    }

    fn within(t: &'t Topology, allowed: &str) -> Self {
        Node {
            allowed: list(allowed),
            ..Node::new(t)
        }
    }

    fn taken(&self) -> CpuList {
        self.jobs.iter().flat_map(|(_, r)| r.iter()).collect()
    }

    fn try_place(&self, words: &[&str]) -> Result<Placement, PlanError> {
        let c = Constraints {
            allowed_cpus: self.allowed.clone(),
            allowed_mems: None,
            taken: self.taken(),
        };
        plan(self.t, &req(words), &c)
    }

    /// Places and records under `name`.
    fn place(&mut self, name: &str, words: &[&str]) -> Placement {
        let p = self
            .try_place(words)
            .unwrap_or_else(|e| panic!("{name} {words:?}: {e}"));
        self.jobs.push((name.to_string(), p.reserved.clone()));
        p
    }

    fn free(&mut self, name: &str) {
        let before = self.jobs.len();
        self.jobs.retain(|(n, _)| n != name);
        assert_eq!(self.jobs.len() + 1, before, "no job {name}");
    }
}

fn l3_groups(t: &Topology, cpus: &CpuList) -> BTreeSet<usize> {
    cpus.iter()
        .filter_map(|p| t.core_of(p).and_then(|c| c.l3))
        .collect()
}

fn packages(t: &Topology, cpus: &CpuList) -> BTreeSet<u32> {
    cpus.iter()
        .filter_map(|p| t.core_of(p).map(|c| c.package))
        .collect()
}

// ---------------------------------------------------------------------------
// Supermicro X9DRG: NUMA0 0-7,16-23, NUMA1 8-15,24-31; GPU 03:00.0 on
// NUMA 0, cuda0 (84:00.0) and mlx5_0 on NUMA 1.

#[test]
fn supermicro_strict_near_the_hca_is_numa1() {
    needs_topologies!();
    let p = Node::new(&SUPERMICRO).place("a", &["cores=8", "near=mlx5_0", "policy=strict"]);
    assert_eq!(p.cpus, list("8-15,24-31"));
    assert_eq!(p.reserved, p.cpus);
    assert_eq!(p.mems, list("1"));
    assert_eq!(p.numa_nodes, vec![1]);
    assert!(
        p.reasons.iter().any(|r| r.contains("near mlx5_0")),
        "{:?}",
        p.reasons
    );
}

#[test]
fn supermicro_shared_bus_id_resolves_to_the_hca() {
    needs_topologies!();
    // 0000:04:00.0 is both the SAS HBA (NUMA 0) and the HCA (NUMA 1): the
    // planner prefers the HCA.
    let p = Node::new(&SUPERMICRO).place("a", &["cores=2", "near=0000:04:00.0"]);
    assert_eq!(p.cpus, list("8-9,24-25"));
    // GPU indexes follow CUDA order: cuda0 (84:00.0, NUMA 1) is GPU 0, then
    // the others by bus id: 03:00.0 (NUMA 0) is GPU 1.
    let p = Node::new(&SUPERMICRO).place("a", &["cores=1", "near=0"]);
    assert_eq!(p.numa_nodes, vec![1]);
    let p = Node::new(&SUPERMICRO).place("a", &["cores=1", "near=1"]);
    assert_eq!(p.numa_nodes, vec![0]);
    assert_eq!(p.cpus, list("0,16"));
}

#[test]
fn supermicro_gpu_and_hca_on_different_sockets() {
    needs_topologies!();
    // compact: both nodes, one core on each (cores, so no SMT quota issue).
    let p = Node::new(&SUPERMICRO).place("a", &["cores=2", "near=03:00.0,mlx5_0"]);
    assert_eq!(p.numa_nodes, vec![0, 1]);
    assert_eq!(p.cpus, list("0,8,16,24"));
    assert_eq!(p.mems, list("0-1"));
    assert!(
        p.reasons
            .iter()
            .any(|r| r.contains("near devices on different nodes")),
        "{:?}",
        p.reasons
    );
    // An odd count: the extra core on the first device's node.
    let p = Node::new(&SUPERMICRO).place("a", &["cores=3", "near=03:00.0,mlx5_0"]);
    assert_eq!(p.cpus, list("0-1,8,16-17,24"));
    // strict: refused, naming both devices and their nodes.
    let err = Node::new(&SUPERMICRO)
        .try_place(&["cores=2", "near=03:00.0,mlx5_0", "policy=strict"])
        .expect_err("strict cannot serve both sockets");
    assert!(matches!(err, PlanError::StrictConflict(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "policy=strict: the near devices sit on different NUMA nodes: 03:00.0 on [0], mlx5_0 on [1]"
    );
    // Two GPUs on NUMA 1 agree: strict works.
    let p = Node::new(&SUPERMICRO).place(
        "a",
        &["cores=4", "near=cuda0,0000:83:00.0", "policy=strict"],
    );
    assert_eq!(p.cpus, list("8-11,24-27"));
}

#[test]
fn supermicro_spill_and_strict_refusal() {
    needs_topologies!();
    let p = Node::new(&SUPERMICRO).place("a", &["cores=9"]);
    assert_eq!(p.cpus, list("0-8,16-24"));
    assert_eq!(p.mems, list("0-1"));
    let err = Node::new(&SUPERMICRO)
        .try_place(&["cores=9", "policy=strict"])
        .expect_err("no node has 9 cores");
    assert_eq!(
        err.to_string(),
        "policy=strict: no single NUMA node has 9 cores free (best: NUMA 0 with 8)"
    );
    // cpus=N counts threads: 16 CPUs fit one node.
    let p = Node::new(&SUPERMICRO).place("a", &["cpus=16", "policy=strict"]);
    assert_eq!(p.cpus, list("0-7,16-23"));
}

#[test]
fn supermicro_fragmentation_best_fit_and_spill() {
    needs_topologies!();
    let mut n = Node::new(&SUPERMICRO);
    let a = n.place("a", &["cores=4"]);
    assert_eq!(a.cpus, list("0-3,16-19"));
    // Best fit: NUMA 0 has exactly 4 left, NUMA 1 has 8.
    let b = n.place("b", &["cores=4"]);
    assert_eq!(b.cpus, list("4-7,20-23"));
    let c = n.place("c", &["cores=6"]);
    assert_eq!(c.cpus, list("8-13,24-29"));
    n.free("a");
    // 4 free on NUMA 0, 2 on NUMA 1: 6 cores must span, fuller node first.
    let d = n.place("d", &["cores=6"]);
    assert_eq!(d.cpus, list("0-3,14-19,30-31"));
    assert_eq!(d.numa_nodes, vec![0, 1]);
    n.free("b");
    n.free("d");
    // c holds 6 of NUMA 1: a 2-core job fills its hole, keeping NUMA 0 whole.
    let e = n.place("e", &["cores=2"]);
    assert_eq!(e.cpus, list("14-15,30-31"));
    let f = n.place("f", &["cores=8", "policy=strict"]);
    assert_eq!(f.cpus, list("0-7,16-23"));
}

#[test]
fn supermicro_exhaustion_messages() {
    needs_topologies!();
    let mut n = Node::new(&SUPERMICRO);
    n.place("a", &["cores=8"]);
    n.place("b", &["cores=8"]);
    let err = n.try_place(&["cores=1"]).expect_err("full");
    assert_eq!(
        err.to_string(),
        "no free cores: 1 core needed, 0 free within the allowed CPUs 0-31 (16 cores held by other pinc containers)"
    );
    n.free("a");
    let err = n.try_place(&["cpus=17"]).expect_err("16 CPUs free");
    assert_eq!(
        err.to_string(),
        "no free cores: 17 CPUs needed, 16 free within the allowed CPUs 0-31 (8 cores held by other pinc containers)"
    );
    let p = n.place("c", &["cpus=16"]);
    assert_eq!(p.cpus, list("0-7,16-23"));
    // Without other containers, the message has no holders part.
    let err = Node::within(&SUPERMICRO, "0-3")
        .try_place(&["cores=5"])
        .expect_err("4 allowed");
    assert_eq!(
        err.to_string(),
        "no free cores: 5 cores needed, 4 free within the allowed CPUs 0-3"
    );
}

#[test]
fn supermicro_inside_the_callers_cpus() {
    needs_topologies!();
    // A Slurm step holding half of each socket.
    let mut n = Node::within(&SUPERMICRO, "4-11,20-27");
    let p = n.place("a", &["cores=4"]);
    assert_eq!(p.cpus, list("4-7,20-23"));
    let err = n.try_place(&["cores=5"]).expect_err("4 allowed cores left");
    assert!(matches!(err, PlanError::NoFreeCores { .. }), "{err}");
    let p = n.place("b", &["cores=4"]);
    assert_eq!(p.cpus, list("8-11,24-27"));
    // Only the first thread of each core allowed: whole cores still reserved.
    let p = Node::within(&SUPERMICRO, "0-7").place("a", &["cores=2"]);
    assert_eq!(p.cpus, list("0-1"));
    assert_eq!(p.reserved, list("0-1,16-17"));
}

#[test]
fn supermicro_inside_the_callers_cpus_spill() {
    needs_topologies!();
    let n = Node::within(&SUPERMICRO, "4-11,20-27");
    let p = n.try_place(&["cores=5"]).expect("8 allowed");
    assert_eq!(p.cpus, list("4-8,20-24"));
    assert_eq!(p.numa_nodes, vec![0, 1]);
}

#[test]
fn supermicro_smt_off_and_cpus() {
    needs_topologies!();
    let p = Node::new(&SUPERMICRO).place("a", &["cpus=4", "smt=off"]);
    assert_eq!(p.cpus, list("0-3"));
    assert_eq!(p.reserved, list("0-3,16-19"));
    let p = Node::new(&SUPERMICRO).place("a", &["cpus=3"]);
    assert_eq!(p.cpus, list("0-1,16"));
    assert_eq!(p.reserved, list("0-1,16-17"));
}

// ---------------------------------------------------------------------------
// HP SL390s: interleaved numbering, NUMA 0 even PUs, NUMA 1 odd, siblings
// (n, n+12); GPU 06:00.0 and mlx4_0 on NUMA 0, GPUs 11:00.0 and 14:00.0 on
// NUMA 1.

#[test]
fn hp_interleaved_whole_node_near_the_gpu() {
    needs_topologies!();
    let p = Node::new(&HP).place("a", &["cores=6", "near=0000:06:00.0"]);
    let evens: CpuList = (0..24).filter(|p| p % 2 == 0).collect();
    assert_eq!(
        p.cpus, evens,
        "NUMA 0's 6 cores: 0-10 even and siblings +12"
    );
    for cpu in p.cpus.iter().filter(|&c| c < 12) {
        assert!(p.cpus.contains(cpu + 12), "sibling of {cpu}");
    }
    assert_eq!(p.mems, list("0"));
}

#[test]
fn hp_interleaved_small_jobs() {
    needs_topologies!();
    let mut n = Node::new(&HP);
    let p = n.place("a", &["cores=2", "near=06:00.0"]);
    assert_eq!(p.cpus, list("0,2,12,14"));
    let p = n.place("b", &["cpus=3", "near=11:00.0"]);
    assert_eq!(p.cpus, list("1,3,13"));
    assert_eq!(p.reserved, list("1,3,13,15"));
    let p = n.place("c", &["cpus=2", "smt=off", "near=mlx4_0"]);
    assert_eq!(p.cpus, list("4,6"));
    assert_eq!(p.reserved, list("4,6,16,18"));
    let p = n.place("d", &["cores=2", "near=0000:14:00.0", "policy=strict"]);
    assert_eq!(p.cpus, list("5,7,17,19"));
    // NUMA 0 has 2 cores left (8/20, 10/22): strict near its GPU refuses 3.
    let err = n
        .try_place(&["cores=3", "near=06:00.0", "policy=strict"])
        .expect_err("2 left on NUMA 0");
    assert_eq!(
        err.to_string(),
        "policy=strict: no single NUMA node has 3 cores free (best: NUMA 0 with 2)"
    );
    // compact spills to NUMA 1 (2 left there too).
    let p = n.place("e", &["cores=3", "near=06:00.0"]);
    assert_eq!(p.cpus, list("8,9,10,20,21,22"));
    assert_eq!(p.numa_nodes, vec![0, 1]);
}

// ---------------------------------------------------------------------------
// POWER8: sparse ids, NUMA0 0-1,8-9,16-17,24-25 and NUMA1 80-81,88-89,
// 96-97,104-105; each core is its own L3 group; 4 GPUs, 2 per node.

#[test]
fn power8_sparse_ids() {
    needs_topologies!();
    let p = Node::new(&POWER8).place("a", &["cores=4", "near=000a:01:00.0"]);
    assert_eq!(p.cpus, list("80-81,88-89,96-97,104-105"));
    assert_eq!(p.mems, list("1"));
    let p = Node::new(&POWER8).place("a", &["cpus=3", "near=cuda3"]);
    assert_eq!(p.cpus, list("80-81,88"));
    assert_eq!(p.reserved, list("80-81,88-89"));
    let p = Node::new(&POWER8).place("a", &["cores=5"]);
    assert_eq!(p.cpus, list("0-1,8-9,16-17,24-25,80-81"));
    assert_eq!(p.mems, list("0-1"));
    let p = Node::new(&POWER8).place("a", &["cores=2", "policy=spread"]);
    assert_eq!(p.cpus, list("0-1,80-81"));
    let err = Node::new(&POWER8)
        .try_place(&["cores=5", "policy=strict"])
        .expect_err("4 cores per node");
    assert_eq!(
        err.to_string(),
        "policy=strict: no single NUMA node has 5 cores free (best: NUMA 0 with 4)"
    );
    // GPUs 0002 and 0003 are on NUMA 0: they agree.
    let p = Node::new(&POWER8).place("a", &["cores=2", "near=cuda0,cuda1", "policy=strict"]);
    assert_eq!(p.cpus, list("0-1,8-9"));
}

// ---------------------------------------------------------------------------
// NEC: every device on NUMA 0 (HCAs 1a:00.0 and 3e:00.0).

#[test]
fn nec_device_node_full_compact_spills_strict_refuses() {
    needs_topologies!();
    let mut n = Node::new(&NEC);
    let p = n.place("a", &["cores=8", "near=0000:1a:00.0", "policy=strict"]);
    assert_eq!(p.cpus, list("0-7,16-23"));
    let err = n
        .try_place(&["cores=8", "near=0000:3e:00.0", "policy=strict"])
        .expect_err("NUMA 0 is full");
    assert_eq!(
        err.to_string(),
        "policy=strict: no single NUMA node has 8 cores free (best: NUMA 0 with 0)"
    );
    let p = n.place("b", &["cores=8", "near=0000:3e:00.0"]);
    assert_eq!(p.cpus, list("8-15,24-31"));
    assert_eq!(p.numa_nodes, vec![1]);
}

#[test]
fn hbm_on_a_node_without_hbm_is_refused() {
    needs_topologies!();
    let err = Node::new(&NEC)
        .try_place(&["cores=1", "hbm=on"])
        .expect_err("no HBM");
    assert_eq!(
        err.to_string(),
        "hbm requested, but no high-bandwidth memory node is near CPUs 0,16"
    );
}

// ---------------------------------------------------------------------------
// KNL SNC4 hybrid: DRAM 0-3, MCDRAM pairs (0,7) (1,4) (2,5) (3,6); core k
// has PUs k, k+16, k+32, k+48.

#[test]
fn knl_hbm_adds_the_paired_mcdram() {
    needs_topologies!();
    let p = Node::new(&KNL).place("a", &["cores=4", "hbm=on"]);
    assert_eq!(p.cpus, list("0-3,16-19,32-35,48-51"));
    assert_eq!(p.numa_nodes, vec![0]);
    assert_eq!(p.mems, list("0,7"));
    assert_eq!(p.mem_policy, Some((MemMode::Preferred, list("7"))));
    let p = Node::new(&KNL).place("a", &["cores=4", "hbm=on", "mem=bind"]);
    assert_eq!(p.mems, list("7"));
    assert_eq!(p.mem_policy, Some((MemMode::Bind, list("7"))));
    // Without hbm: DRAM only.
    let p = Node::new(&KNL).place("a", &["cores=4"]);
    assert_eq!(p.mems, list("0"));
    assert_eq!(p.mem_policy, None);
}

#[test]
fn knl_hbm_follows_the_cpus_across_quadrants() {
    needs_topologies!();
    let mut n = Node::new(&KNL);
    n.place("a", &["cores=4"]);
    let p = n.place("b", &["cores=2", "hbm=on"]);
    assert_eq!(p.cpus, list("4-5,20-21,36-37,52-53"));
    assert_eq!(p.mems, list("1,4"));
    let p = Node::new(&KNL).place("a", &["cores=6", "hbm=on"]);
    assert_eq!(p.cpus, list("0-5,16-21,32-37,48-53"));
    assert_eq!(p.mems, list("0-1,4,7"));
}

#[test]
fn knl_spread_over_quadrants() {
    needs_topologies!();
    let p = Node::new(&KNL).place("a", &["cores=4", "policy=spread"]);
    assert_eq!(p.numa_nodes, vec![0, 1, 2, 3]);
    assert_eq!(p.cpus, list("0,4,8,12,16,20,24,28,32,36,40,44,48,52,56,60"));
    let p = Node::new(&KNL).place("a", &["cpus=16", "policy=strict", "hbm=on"]);
    assert_eq!(p.mems, list("0,7"));
}

// ---------------------------------------------------------------------------
// EPYC 9654 x2: 24 L3 groups (CCDs) of 8 cores, group g = cores 8g..8g+7 and
// siblings +192; groups 0-11 on package 0, 12-23 on package 1.

fn ccd(g: u32) -> CpuList {
    (8 * g..8 * g + 8).flat_map(|c| [c, c + 192]).collect()
}

#[test]
fn epyc_eight_cores_stay_on_one_ccd_nine_span_two() {
    needs_topologies!();
    let t = &*EPYC;
    let p = Node::new(t).place("a", &["cores=8"]);
    assert_eq!(p.cpus, ccd(0));
    assert_eq!(l3_groups(t, &p.cpus).len(), 1);
    let p = Node::new(t).place("a", &["cores=9"]);
    assert_eq!(p.cpus, list("0-8,192-200"));
    assert_eq!(l3_groups(t, &p.cpus), BTreeSet::from([0, 1]));
    let p = Node::new(t).place("a", &["cpus=16"]);
    assert_eq!(l3_groups(t, &p.cpus).len(), 1);
    let p = Node::new(t).place("a", &["cpus=17"]);
    assert_eq!(l3_groups(t, &p.cpus).len(), 2);
}

#[test]
fn epyc_ccds_fill_one_by_one() {
    needs_topologies!();
    let t = &*EPYC;
    let mut n = Node::new(t);
    for g in 0..24 {
        let p = n.place(&format!("j{g}"), &["cores=8"]);
        assert_eq!(p.cpus, ccd(g), "job {g}");
    }
    let err = n.try_place(&["cores=1"]).expect_err("full");
    assert!(
        err.to_string()
            .contains("(192 cores held by other pinc containers)"),
        "{err}"
    );
    n.free("j13");
    let p = n.place("k", &["cores=4"]);
    assert_eq!(p.cpus, list("104-107,296-299"));
}

#[test]
fn epyc_best_fit_ccd_under_fragmentation() {
    needs_topologies!();
    let t = &*EPYC;
    let mut n = Node::new(t);
    // Leave CCD 0 with 3 free cores and CCD 1 with 5.
    n.place("a", &["cores=5"]);
    let b = n.place("b", &["cores=3"]);
    assert_eq!(b.cpus, list("5-7,197-199"), "exactly CCD 0's 3-core hole");
    n.free("a");
    let p = n.place("c", &["cores=3"]);
    assert_eq!(p.cpus, list("0-2,192-194"), "3 cores: the 5-core hole");
    // Now CCD 0 has 2 free (3-4); a 2-core job fills exactly that hole.
    let p = n.place("d", &["cores=2"]);
    assert_eq!(p.cpus, list("3-4,195-196"));
    // CCD 0 is full; the next 8 cores take CCD 1 whole.
    let p = n.place("e", &["cores=8"]);
    assert_eq!(p.cpus, ccd(1));
}

#[test]
fn epyc_fragmented_ccds() {
    needs_topologies!();
    let t = &*EPYC;
    let mut n = Node::new(t);
    // One core held in every CCD: 7 free in each.
    for g in 0..24u32 {
        n.jobs
            .push((format!("h{g}"), list(&format!("{},{}", 8 * g, 8 * g + 192))));
    }
    let p = n.place("a", &["cores=7"]);
    assert_eq!(p.cpus, list("1-7,193-199"));
    let p = n.place("b", &["cores=8"]);
    assert_eq!(p.cpus, list("9-15,17,201-207,209"));
    assert_eq!(l3_groups(t, &p.cpus), BTreeSet::from([1, 2]));
}

/// Regression (fixed quality bug): when one NUMA node spans both packages (this CPUID fixture,
/// or EPYC in NPS0), a request larger than a CCD takes the *fullest* L3
/// groups by index whatever their package: with CCDs 0 and 12 whole and the
/// others at 7 free, `cores=9` takes CCD 0 plus a core of CCD 12 (package 1)
/// instead of CCD 0 plus a core of CCD 1 (same package).
#[test]

fn epyc_l3_spill_crosses_packages() {
    needs_topologies!();
    let t = &*EPYC;
    let mut n = Node::new(t);
    for g in (0..24u32).filter(|g| *g != 0 && *g != 12) {
        n.jobs
            .push((format!("h{g}"), list(&format!("{},{}", 8 * g, 8 * g + 192))));
    }
    let p = n.place("a", &["cores=9"]);
    assert_eq!(
        packages(t, &p.cpus),
        BTreeSet::from([0]),
        "cpus {} span packages",
        p.cpus
    );
}

#[test]
fn epyc_whole_package_and_beyond() {
    needs_topologies!();
    let t = &*EPYC;
    let p = Node::new(t).place("a", &["cores=96"]);
    assert_eq!(packages(t, &p.cpus), BTreeSet::from([0]));
    assert_eq!(l3_groups(t, &p.cpus).len(), 12);
    let p = Node::new(t).place("a", &["cores=97"]);
    assert_eq!(packages(t, &p.cpus), BTreeSet::from([0, 1]));
    assert_eq!(l3_groups(t, &p.cpus).len(), 13);
}

#[test]
fn hugepages_only_request_has_no_cpus() {
    needs_topologies!();
    let p = Node::new(&NEC).place("a", &["hugepages=2M:16"]);
    assert!(p.cpus.is_empty() && p.reserved.is_empty() && p.mems.is_empty());
}

/// Regression (fixed): `allowed_mems` is only checked after the choice, never used to make
/// it. A caller confined to memory node 1 (cpuset.mems=1) but allowed every
/// CPU is refused `cores=2`, although NUMA 1 is entirely free: compact picks
/// NUMA 0 (best fit, lowest index) and then fails the mems check.
#[test]

fn allowed_mems_steer_the_choice() {
    needs_topologies!();
    let t = &*SUPERMICRO;
    let c = Constraints {
        allowed_cpus: t.pus(),
        allowed_mems: Some(list("1")),
        taken: CpuList::new(),
    };
    match plan(t, &req(&["cores=2"]), &c) {
        Ok(p) => assert_eq!(p.cpus, list("8-9,24-25")),
        Err(e) => panic!("refused although NUMA 1 is free: {e}"),
    }
}
