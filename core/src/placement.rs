//! The placement stage: `pinc.io/cpus=…` (or `PINC_CPUS=…`) becomes
//! linux.resources.cpu.cpus/mems and linux.memoryPolicy, planned against the
//! node's topology, what the caller may use, and the allocation ledger.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::{
    LinuxCpu, LinuxHugepageLimit, LinuxMemoryPolicy, LinuxResources, MemoryPolicyModeType, Mount,
    Spec,
};
use pinc_cgroup::{affinity, CallerCgroups};
use pinc_cpulist::CpuList;
use pinc_topology::planner::{plan, Constraints, Placement};
use pinc_topology::request::{self, MemMode};
use pinc_topology::Topology;

use crate::ledger::{Allocation, Ledger};
use crate::pipeline::{annotations_and_env, is_pod_sandbox, Context, Stage, StageError};
use crate::RuntimeRoot;

/// Annotation that records the placement in the final spec (and so in `pinc state`).
pub const PLACEMENT_ANNOTATION: &str = "pinc.io/placement";

/// Where the topology comes from (given the runtime root, for its cache).
/// A valid request this node cannot meet now, besides the planner's own
/// refusals ([`pinc_topology::planner::PlanError`]).
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("the spec pins cpus {cpus}, outside the allowed CPUs {allowed}")]
    PinnedOutside { cpus: String, allowed: String },
    #[error("the spec pins cpus {cpus}, but cores {cores} are held by {holders}")]
    PinnedHeld {
        cpus: String,
        cores: String,
        holders: String,
    },
    #[error("pinc.io/hugepages: this kernel has no {name} pages")]
    NoPageSize { name: String },
    #[error(
        "pinc.io/hugepages: {count} x {name} pages requested, {free} free on NUMA {nodes} \
         (reserve more in /proc/sys/vm/nr_hugepages or /sys/devices/system/node/node*/hugepages)"
    )]
    FewHugepages {
        count: u64,
        name: String,
        free: u64,
        nodes: String,
    },
}

pub type TopologyLoader = Box<dyn Fn(&Path) -> Result<Topology, StageError>>;

pub struct PlacementStage {
    load: TopologyLoader,
}

impl PlacementStage {
    pub fn new(load: TopologyLoader) -> Self {
        Self { load }
    }
}

/// What the caller may use: its affinity within its cpuset, and its cpuset's mems.
pub fn caller_constraints() -> Result<(CpuList, Option<CpuList>), StageError> {
    let mut cpus = affinity::get(0)?;
    let mut mems = None;
    if let Ok(caller) = CallerCgroups::read(Path::new("/")) {
        if let Some(set) = caller.cpuset_cpus()? {
            cpus = cpus.intersection(&set);
        }
        mems = caller.cpuset_mems()?;
    }
    Ok((cpus, mems))
}

fn spec_cpus(spec: &Spec) -> Option<String> {
    spec.linux()
        .as_ref()?
        .resources()
        .as_ref()?
        .cpu()
        .as_ref()?
        .cpus()
        .clone()
}

/// Whole cores around `cpus`.
fn whole_cores(t: &Topology, cpus: &CpuList) -> CpuList {
    t.cores
        .iter()
        .filter(|c| c.pus.iter().any(|p| cpus.contains(*p)))
        .flat_map(|c| c.pus.iter().copied())
        .collect()
}

fn write_placement(spec: &mut Spec, p: &Placement) -> Result<(), StageError> {
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut resources: LinuxResources = linux.resources().clone().unwrap_or_default();
    let mut cpu: LinuxCpu = resources.cpu().clone().unwrap_or_default();
    if !p.cpus.is_empty() {
        cpu.set_cpus(Some(p.cpus.to_string()));
        cpu.set_mems(Some(p.mems.to_string()));
        resources.set_cpu(Some(cpu));
        linux.set_resources(Some(resources));
    }
    if let Some((mode, nodes)) = &p.mem_policy {
        let mut policy = LinuxMemoryPolicy::default();
        policy.set_mode(match mode {
            MemMode::Bind => MemoryPolicyModeType::MpolBind,
            MemMode::Interleave => MemoryPolicyModeType::MpolInterleave,
            MemMode::Preferred => MemoryPolicyModeType::MpolPreferred,
        });
        policy.set_nodes(Some(nodes.to_string()));
        linux.set_memory_policy(Some(policy));
    }
    spec.set_linux(Some(linux));
    let mut annotations = spec.annotations().clone().unwrap_or_default();
    annotations.insert(
        PLACEMENT_ANNOTATION.to_string(),
        serde_json::json!({"cpus": p.cpus, "mems": p.mems, "numa": p.numa_nodes, "why": p.reasons})
            .to_string(),
    );
    spec.set_annotations(Some(annotations));
    Ok(())
}

impl Stage for PlacementStage {
    fn name(&self) -> &'static str {
        "placement"
    }

    fn apply(&self, spec: &mut Spec, ctx: &Context<'_>) -> Result<(), StageError> {
        let (annotations, env) = annotations_and_env(spec);
        if is_pod_sandbox(&annotations) {
            return Ok(());
        }
        let Some(mut request) = request::from_spec(&annotations, &env)? else {
            return Ok(());
        };
        let topology = (self.load)(ctx.root)?;
        if request.near.is_empty() {
            request.near = device_locality(&annotations, &topology);
        }
        if request.amount.is_none() {
            // Hugepages only: no CPU placement, no ledger entry.
            return hugepages(spec, &topology, &request.hugepages, None);
        }
        let (allowed_cpus, allowed_mems) = caller_constraints()?;
        let root = RuntimeRoot::existing(ctx.root);
        let ledger = Ledger::open(&root)?;
        let pinned: Option<CpuList> = spec_cpus(spec).map(|s| s.parse()).transpose()?;
        let placement = ledger.update(
            Some(ctx.id),
            |allocations| -> Result<Placement, StageError> {
                allocations.retain(|a| a.id != ctx.id);
                let taken: CpuList = allocations.iter().flat_map(|a| a.cpus.iter()).collect();
                let placement = match &pinned {
                    // A spec that pins CPUs is validated, not overridden.
                    Some(cpus) => {
                        if !cpus.is_subset(&allowed_cpus) {
                            return Err(Refusal::PinnedOutside {
                                cpus: cpus.to_string(),
                                allowed: allowed_cpus.to_string(),
                            }
                            .into());
                        }
                        let reserved = whole_cores(&topology, cpus);
                        let clash = reserved.intersection(&taken);
                        if !clash.is_empty() {
                            let holders: Vec<&str> = allocations
                                .iter()
                                .filter(|a| !a.cpus.intersection(&clash).is_empty())
                                .map(|a| a.id.as_str())
                                .collect();
                            return Err(Refusal::PinnedHeld {
                                cpus: cpus.to_string(),
                                cores: clash.to_string(),
                                holders: holders.join(", "),
                            }
                            .into());
                        }
                        let mems: CpuList = topology
                            .cores
                            .iter()
                            .filter(|c| c.pus.iter().any(|p| cpus.contains(*p)))
                            .filter_map(|c| c.numa)
                            .collect();
                        Placement {
                            cpus: cpus.clone(),
                            reserved,
                            mems: mems.clone(),
                            numa_nodes: mems.iter().collect(),
                            mem_policy: None,
                            reasons: vec![format!(
                                "the spec pins cpus {cpus}: validated and reserved"
                            )],
                        }
                    }
                    None => plan(
                        &topology,
                        &request,
                        &Constraints {
                            allowed_cpus: allowed_cpus.clone(),
                            allowed_mems: allowed_mems.clone(),
                            taken,
                        },
                    )?,
                };
                allocations.push(Allocation {
                    id: ctx.id.to_string(),
                    cpus: placement.reserved.clone(),
                    mems: placement.mems.clone(),
                });
                Ok(placement)
            },
        )??;
        tracing::info!(target: "pinc", id = ctx.id, cpus = %placement.cpus, mems = %placement.mems, "placed");
        if pinned.is_none() {
            write_placement(spec, &placement)?;
        }
        hugepages(spec, &topology, &request.hugepages, Some(&placement.mems))
    }
}

/// The devices the devices stage gave the container, as `near=` selectors:
/// those the topology knows (a device hwloc does not list cannot steer
/// placement, and is not an error).
fn device_locality(annotations: &HashMap<String, String>, topology: &Topology) -> Vec<String> {
    let Some(value) = annotations.get(crate::devices::LOCALITY_ANNOTATION) else {
        return Vec::new();
    };
    value
        .split(',')
        .filter(|s| !s.is_empty())
        .filter(|s| match pinc_topology::devices::resolve(topology, s) {
            Ok(_) => true,
            Err(e) => {
                tracing::debug!(target: "pinc", "device {s} does not steer placement: {e}");
                false
            }
        })
        .map(str::to_string)
        .collect()
}

/// Hugepage requests: sizes the kernel has, enough free pages on the
/// container's memory nodes (spilling to the nearest nodes that have them),
/// limits in the spec, and hugetlbfs mounted in the container.
fn hugepages(
    spec: &mut Spec,
    topology: &Topology,
    requests: &[request::Hugepages],
    mems: Option<&CpuList>,
) -> Result<(), StageError> {
    if requests.is_empty() {
        return Ok(());
    }
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut resources: LinuxResources = linux.resources().clone().unwrap_or_default();
    let mut limits = resources.hugepage_limits().clone().unwrap_or_default();
    let mut nodes: Vec<u32> = match mems {
        Some(m) if !m.is_empty() => m.iter().collect(),
        _ => topology.numa_nodes.iter().map(|n| n.os_index).collect(),
    };
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    for (i, h) in requests.iter().enumerate() {
        let name = pinc_cgroup::hugetlb::page_size_name(h.size_kb);
        let sysfs =
            Path::new("/sys/kernel/mm/hugepages").join(format!("hugepages-{}kB", h.size_kb));
        if !sysfs.exists() {
            return Err(Refusal::NoPageSize { name: name.clone() }.into());
        }
        let free_on = |n: u32| {
            topology
                .numa(n)
                .and_then(|node| node.hugepages.iter().find(|p| p.size_kb == h.size_kb))
                .map_or(0, |p| p.free)
        };
        let mut free: u64 = nodes.iter().map(|&n| free_on(n)).sum();
        // Spill to the nearest nodes that have free pages.
        while free < h.count {
            let next = topology
                .numa_nodes
                .iter()
                .map(|n| n.os_index)
                .filter(|n| !nodes.contains(n) && free_on(*n) > 0)
                .min_by_key(|n| {
                    (
                        nodes
                            .iter()
                            .map(|&m| topology.distance(m, *n))
                            .min()
                            .unwrap_or(u64::MAX),
                        *n,
                    )
                });
            match next {
                Some(n) => {
                    nodes.push(n);
                    free += free_on(n);
                }
                None => {
                    return Err(Refusal::FewHugepages {
                        count: h.count,
                        name: name.clone(),
                        free,
                        nodes: nodes
                            .iter()
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join(","),
                    }
                    .into())
                }
            }
        }
        let mut limit = LinuxHugepageLimit::default();
        limit.set_page_size(name.clone());
        limit.set_limit((h.count * h.size_kb * 1024) as i64);
        limits.retain(|l| l.page_size() != &name);
        limits.push(limit);
        let destination = if i == 0 {
            PathBuf::from("/dev/hugepages")
        } else {
            PathBuf::from(format!("/dev/hugepages-{name}"))
        };
        if !mounts.iter().any(|m| m.destination() == &destination) {
            let mut mount = Mount::default();
            mount.set_destination(destination);
            mount.set_typ(Some("hugetlbfs".into()));
            mount.set_source(Some(PathBuf::from("hugetlbfs")));
            mount.set_options(Some(vec![
                "nosuid".into(),
                "nodev".into(),
                format!("pagesize={}", name.trim_end_matches('B')),
            ]));
            mounts.push(mount);
        }
    }
    resources.set_hugepage_limits(Some(limits));
    if mems.is_some_and(|m| !m.is_empty()) {
        let mut cpu: LinuxCpu = resources.cpu().clone().unwrap_or_default();
        let all: CpuList = nodes.iter().copied().collect();
        cpu.set_mems(Some(all.to_string()));
        resources.set_cpu(Some(cpu));
    }
    linux.set_resources(Some(resources));
    spec.set_linux(Some(linux));
    spec.set_mounts(Some(mounts));
    Ok(())
}

/// Loads a topology: an hwloc XML file, a synthetic description
/// (`synthetic:packages=2 ...`), or this machine.
pub fn load_topology(source: Option<&str>) -> Result<Topology, StageError> {
    Ok(match source {
        Some(s) if s.starts_with("synthetic:") => {
            pinc_topology::synthetic::build(s.trim_start_matches("synthetic:"))?
        }
        Some(path) => pinc_topology::hwloc::from_xml(path)?,
        None => pinc_topology::hwloc::live()?,
    })
}

/// What makes a cached live topology stale: a reboot or CPU hotplug.
fn machine_key() -> String {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    format!(
        "{}/{}",
        read("/proc/sys/kernel/random/boot_id"),
        read("/sys/devices/system/cpu/online")
    )
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Cached {
    key: String,
    topology: Topology,
}

/// The topology cache's file in the runtime root's private folder.
const CACHE: &str = "topology.json";

/// Where pinc `pid` writes the cache before its rename: one file per
/// writer, as concurrent creates may each scan.
fn cache_tmp(cache: &Path, pid: u32) -> PathBuf {
    cache.with_extension(format!("{pid}.tmp"))
}

/// Removes the cache temp files of pincs killed before their rename
/// (those of a live pinc are its write in progress).
pub fn sweep_cache(root: &RuntimeRoot, alive: impl Fn(u32) -> bool) {
    let cache = root.private_path(CACHE);
    let Some(dir) = cache.parent() else {
        return;
    };
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.strip_prefix("topology."))
            .and_then(|n| n.strip_suffix(".tmp"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if entry.path() == cache_tmp(&cache, pid) && !alive(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// This machine's topology, from a cache under the runtime root when it is
/// still valid (a full hwloc scan with I/O costs milliseconds per create).
/// Free hugepages change all the time and are always re-read from sysfs.
pub fn live_topology(root: &Path) -> Result<Topology, StageError> {
    let path = root.join(".pinc").join(CACHE);
    let key = machine_key();
    let cached = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Cached>(&b).ok())
        .filter(|c| c.key == key);
    let mut topology = match cached {
        Some(c) => c.topology,
        None => {
            let topology = pinc_topology::hwloc::live()?;
            let tmp = cache_tmp(&path, std::process::id());
            let json = serde_json::to_vec(&Cached {
                key,
                topology: topology.clone(),
            })?;
            // Best effort: without a cache pinc just scans again next time.
            if std::fs::create_dir_all(root.join(".pinc")).is_ok()
                && std::fs::write(&tmp, json).is_ok()
            {
                let _ = std::fs::rename(&tmp, &path);
            }
            topology
        }
    };
    pinc_topology::hugepages::read(Path::new("/"), &mut topology)?;
    Ok(topology)
}

/// `pinc plan`: a dry run. Against this machine it honours the caller's
/// CPUs and the ledger (without reserving); against a topology file it
/// plans on the whole of that node.
pub fn dry_run(
    root: &RuntimeRoot,
    source: Option<&str>,
    words: &[String],
) -> Result<Placement, StageError> {
    let topology = load_topology(source)?;
    let request = request::from_words(words.iter().map(String::as_str))?
        .ok_or("nothing to plan: give cpus=N or cores=N")?;
    let constraints = match source {
        Some(_) => Constraints {
            allowed_cpus: topology.pus(),
            ..Default::default()
        },
        None => {
            let (allowed_cpus, allowed_mems) = caller_constraints()?;
            let taken = if Ledger::file(root).exists() {
                Ledger::open(root)?
                    .list()?
                    .iter()
                    .flat_map(|a| a.cpus.iter())
                    .collect()
            } else {
                CpuList::new()
            };
            Constraints {
                allowed_cpus,
                allowed_mems,
                taken,
            }
        }
    };
    Ok(plan(&topology, &request, &constraints)?)
}

/// `pinc topology`: the node and the current allocations.
pub fn node(
    root: &RuntimeRoot,
    source: Option<&str>,
) -> Result<(Topology, Vec<Allocation>), StageError> {
    let topology = load_topology(source)?;
    let allocations = if source.is_none() && Ledger::file(root).exists() {
        Ledger::open(root)?.list()?
    } else {
        Vec::new()
    };
    Ok((topology, allocations))
}

#[cfg(test)]
mod tests {
    use pinc_topology::{planner, request, DeviceKind};

    use super::*;

    /// A real-machine topology, read in place (`None`: not on this machine).
    fn fixture() -> Option<Topology> {
        if pinc_topology::testdata::absent() {
            return None;
        }
        let path = pinc_topology::testdata::path("hp-sl390s-2s-6c-3gpu-ib.xml")?;
        Some(pinc_topology::from_xml(&path).expect("fixture topology"))
    }

    #[test]
    fn injected_devices_steer_placement_when_the_topology_knows_them() {
        let Some(t) = fixture() else { return };
        let gpus: Vec<&pinc_topology::Device> = t
            .devices
            .iter()
            .filter(|d| d.kind == DeviceKind::Gpu)
            .collect();
        // The GPU farthest from NUMA 0, so the choice is visible.
        let gpu = gpus
            .iter()
            .find(|d| pinc_topology::devices::numa_of(&t, d) != [0])
            .expect("a GPU away from NUMA 0");
        let annotations = HashMap::from([(
            crate::devices::LOCALITY_ANNOTATION.to_string(),
            format!("{},0000:99:00.0", gpu.bus_id),
        )]);
        let near = device_locality(&annotations, &t);
        assert_eq!(
            near,
            vec![gpu.bus_id.clone()],
            "unknown devices are dropped"
        );

        let mut req = request::from_words(["cores=2"])
            .expect("request")
            .expect("some");
        req.near = near;
        let c = planner::Constraints {
            allowed_cpus: t.pus(),
            ..Default::default()
        };
        let p = planner::plan(&t, &req, &c).expect("plan");
        assert_eq!(p.numa_nodes, pinc_topology::devices::numa_of(&t, gpu));
    }

    #[test]
    fn no_annotation_no_locality() {
        let Some(t) = fixture() else { return };
        assert!(device_locality(&HashMap::new(), &t).is_empty());
    }

    #[test]
    fn the_cache_sweep_removes_only_dead_writers_temp_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = RuntimeRoot::open(dir.path()).expect("root");
        let cache = root.private_path(CACHE);
        std::fs::create_dir_all(cache.parent().expect("parent")).expect("mkdir");
        for name in [CACHE, "topology.7.tmp", "topology.8.tmp", "topology.x.tmp"] {
            std::fs::write(cache.with_file_name(name), "{").expect("write");
        }
        sweep_cache(&root, |pid| pid == 8);
        let mut left: Vec<String> = std::fs::read_dir(cache.parent().expect("parent"))
            .expect("read")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["topology.8.tmp", CACHE, "topology.x.tmp"]);
        assert_eq!(cache_tmp(&cache, 7), cache.with_file_name("topology.7.tmp"));
    }
}
