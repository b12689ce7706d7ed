//! This node's topology as placement sees it: loaded from hwloc (cached
//! under the runtime root), an XML file or a synthetic description; what
//! the caller may use; and the back-ends of `pinc plan` and `pinc topology`.

use std::path::{Path, PathBuf};

use pinc_cgroup::{affinity, CallerCgroups};
use pinc_cpulist::CpuList;
use pinc_errkind::ErrorKind;
use pinc_request::placement as request;
use pinc_topology::planner::{plan, Constraints, Placement};
use pinc_topology::Topology;

use crate::ledger::{Allocation, Ledger};
use crate::pipeline::{HostRoots, StageFailure};
use crate::RuntimeRoot;

/// Why a topology, the caller's CPUs or a dry run could not be had.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Topology(#[from] pinc_topology::TopologyError),
    #[error(transparent)]
    Affinity(#[from] affinity::AffinityError),
    #[error(transparent)]
    Caller(#[from] pinc_cgroup::caller::CallerError),
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error(transparent)]
    Request(#[from] request::PlacementRequestError),
    #[error("nothing to plan: give cpus=N or cores=N")]
    NothingToPlan,
    #[error(transparent)]
    Plan(#[from] pinc_topology::planner::PlanError),
}

impl StageFailure for NodeError {
    fn kind(&self) -> ErrorKind {
        match self {
            NodeError::Request(_) | NodeError::NothingToPlan => ErrorKind::InvalidArgument,
            NodeError::Plan(_) => ErrorKind::PlacementRefused,
            NodeError::Topology(_)
            | NodeError::Affinity(_)
            | NodeError::Caller(_)
            | NodeError::Ledger(_) => ErrorKind::Internal,
        }
    }
}

/// Loads a topology: an hwloc XML file, a synthetic description
/// (`synthetic:packages=2 ...`), or this machine.
pub fn load_topology(source: Option<&str>) -> Result<Topology, NodeError> {
    Ok(match source {
        Some(s) if s.starts_with("synthetic:") => {
            pinc_topology::synthetic::build(s.trim_start_matches("synthetic:"))?
        }
        Some(path) => pinc_topology::hwloc::from_xml(path)?,
        None => pinc_topology::hwloc::live()?,
    })
}

/// What the caller may use: its affinity within its cpuset, and its
/// cpuset's mems.
pub fn caller_constraints(host: &HostRoots) -> Result<(CpuList, Option<CpuList>), NodeError> {
    let mut cpus = affinity::get(0)?;
    let mut mems = None;
    if let Ok(caller) = CallerCgroups::read(&host.fs) {
        if let Some(set) = caller.cpuset_cpus()? {
            cpus = cpus.intersection(&set);
        }
        mems = caller.cpuset_mems()?;
    }
    Ok((cpus, mems))
}

/// What makes a cached live topology stale: a reboot or CPU hotplug.
fn machine_key(host: &HostRoots) -> String {
    let read = |p: &str| {
        std::fs::read_to_string(host.join(p))
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
pub fn live_topology(root: &RuntimeRoot, host: &HostRoots) -> Result<Topology, NodeError> {
    let path = root.private_path(CACHE);
    let key = machine_key(host);
    let cached = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Cached>(&b).ok())
        .filter(|c| c.key == key);
    let mut topology = match cached {
        Some(c) => c.topology,
        None => {
            let topology = pinc_topology::hwloc::live()?;
            let tmp = cache_tmp(&path, std::process::id());
            let cached = Cached {
                key,
                topology: topology.clone(),
            };
            // Best effort: without a cache pinc just scans again next time.
            if let (Ok(json), Some(dir)) = (serde_json::to_vec(&cached), path.parent()) {
                if std::fs::create_dir_all(dir).is_ok() && std::fs::write(&tmp, json).is_ok() {
                    let _ = std::fs::rename(&tmp, &path);
                }
            }
            topology
        }
    };
    pinc_topology::hugepages::read(&host.fs, &mut topology)?;
    Ok(topology)
}

/// The CPUs the ledger holds on this node, without creating the ledger.
fn taken(root: &RuntimeRoot) -> Result<CpuList, NodeError> {
    Ok(allocations(root)?
        .iter()
        .flat_map(|a| a.cpus.iter())
        .collect())
}

fn allocations(root: &RuntimeRoot) -> Result<Vec<Allocation>, NodeError> {
    if !Ledger::file(root).exists() {
        return Ok(Vec::new());
    }
    Ok(Ledger::open(root)?.list()?)
}

/// `pinc plan`: a dry run. Against this machine it honours the caller's
/// CPUs and the ledger (without reserving); against a topology file it
/// plans on the whole of that node.
pub fn dry_run(
    root: &RuntimeRoot,
    source: Option<&str>,
    words: &[String],
) -> Result<Placement, NodeError> {
    let topology = load_topology(source)?;
    let request =
        request::from_words(words.iter().map(String::as_str))?.ok_or(NodeError::NothingToPlan)?;
    let constraints = match source {
        Some(_) => Constraints {
            allowed_cpus: topology.pus(),
            ..Default::default()
        },
        None => {
            let (allowed_cpus, allowed_mems) = caller_constraints(&HostRoots::host())?;
            Constraints {
                allowed_cpus,
                allowed_mems,
                taken: taken(root)?,
            }
        }
    };
    Ok(plan(&topology, &request, &constraints)?)
}

/// `pinc topology`: the node and the current allocations.
pub fn node(
    root: &RuntimeRoot,
    source: Option<&str>,
) -> Result<(Topology, Vec<Allocation>), NodeError> {
    let topology = load_topology(source)?;
    let allocations = match source {
        None => allocations(root)?,
        Some(_) => Vec::new(),
    };
    Ok((topology, allocations))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_topology_source_that_is_not_there_is_a_topology_error() {
        let err = load_topology(Some("/nonexistent/node.xml")).expect_err("missing");
        assert!(matches!(err, NodeError::Topology(_)), "{err}");
        assert_eq!(err.kind(), ErrorKind::Internal);
        let err = load_topology(Some("synthetic:packages=x")).expect_err("bad");
        assert!(matches!(err, NodeError::Topology(_)), "{err}");
    }
}
