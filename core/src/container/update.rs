//! `update`: change a running container's cgroup limits.

use std::io::Read;
use std::path::PathBuf;

use libcgroups::common::{CgroupManager, ControllerOpt};
use libcontainer::oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources,
};

use super::{load, ps};
use crate::error::{Error, Result};
use crate::RuntimeRoot;

/// `--resources FILE|-` plus runc's individual flags, which win over the file.
#[derive(Debug, Clone, Default)]
pub struct UpdateOptions {
    pub id: String,
    pub resources: Option<PathBuf>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpu_rt_period: Option<u64>,
    pub cpu_rt_runtime: Option<i64>,
    pub memory: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub memory_swap: Option<i64>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
}

fn read_resources(path: &PathBuf) -> Result<LinuxResources> {
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(Error::io("failed to read resources from", "stdin"))?;
    } else {
        bytes = std::fs::read(path).map_err(Error::io("failed to read resources from", path))?;
    }
    serde_json::from_slice(&bytes).map_err(|source| Error::Resources {
        path: path.clone(),
        source,
    })
}

/// The resources an update asks for.
pub fn resources(opts: &UpdateOptions) -> Result<LinuxResources> {
    let mut r = match &opts.resources {
        Some(path) => read_resources(path)?,
        None => LinuxResources::default(),
    };
    let mut cpu: LinuxCpu = r.cpu().clone().unwrap_or_default();
    let mut cpu_set = r.cpu().is_some();
    macro_rules! set {
        ($target:ident, $flag:expr, $setter:ident, $touched:ident) => {
            if let Some(v) = $flag.clone() {
                $target.$setter(Some(v));
                $touched = true;
            }
        };
    }
    set!(cpu, opts.cpuset_cpus, set_cpus, cpu_set);
    set!(cpu, opts.cpuset_mems, set_mems, cpu_set);
    set!(cpu, opts.cpu_period, set_period, cpu_set);
    set!(cpu, opts.cpu_quota, set_quota, cpu_set);
    set!(cpu, opts.cpu_shares, set_shares, cpu_set);
    set!(cpu, opts.cpu_rt_period, set_realtime_period, cpu_set);
    set!(cpu, opts.cpu_rt_runtime, set_realtime_runtime, cpu_set);
    if cpu_set {
        r.set_cpu(Some(cpu));
    }
    let mut memory: LinuxMemory = r.memory().unwrap_or_default();
    let mut memory_set = r.memory().is_some();
    set!(memory, opts.memory, set_limit, memory_set);
    set!(memory, opts.memory_reservation, set_reservation, memory_set);
    set!(memory, opts.memory_swap, set_swap, memory_set);
    if memory_set {
        r.set_memory(Some(memory));
    }
    if let Some(limit) = opts.pids_limit {
        let mut pids = LinuxPids::default();
        pids.set_limit(limit);
        r.set_pids(Some(pids));
    }
    if let Some(weight) = opts.blkio_weight {
        let mut blkio: LinuxBlockIo = r.block_io().clone().unwrap_or_default();
        blkio.set_weight(Some(weight));
        r.set_block_io(Some(blkio));
    }
    Ok(r)
}

pub fn update(root: &RuntimeRoot, opts: &UpdateOptions) -> Result<()> {
    let resources = resources(opts)?;
    let (_lock, container) = load::locked(root, &opts.id)?;
    load::require_cgroups(&container, "update")?;
    let manager = ps::cgroup_manager(&container)?;
    manager
        .apply(&ControllerOpt {
            resources: &resources,
            disable_oom_killer: false,
            oom_score_adj: None,
            freezer_state: None,
        })
        .map_err(Box::new)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("r.json");
        std::fs::write(&file, r#"{"memory":{"limit":1000},"cpu":{"cpus":"0"}}"#).expect("write");
        let r = resources(&UpdateOptions {
            resources: Some(file),
            cpuset_cpus: Some("1".into()),
            pids_limit: Some(10),
            ..Default::default()
        })
        .expect("resources");
        assert_eq!(r.memory().as_ref().and_then(|m| m.limit()), Some(1000));
        assert_eq!(
            r.cpu().as_ref().and_then(|c| c.cpus().clone()),
            Some("1".into())
        );
        assert_eq!(r.pids().as_ref().map(|p| p.limit()), Some(10));
    }

    #[test]
    fn bad_json_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("bad.json");
        std::fs::write(&file, "{").expect("write");
        let err = resources(&UpdateOptions {
            resources: Some(file.clone()),
            ..Default::default()
        })
        .expect_err("bad");
        assert!(err.to_string().contains("bad.json"), "{err}");
    }
}
