//! `ps`: the processes of a container.

use std::fs;

use libcgroups::common::{create_cgroup_manager, CgroupConfig, CgroupManager};
use libcontainer::container::Container;

use super::load;
use crate::error::{Error, Result};
use crate::state::sidecar::Sidecar;
use crate::RuntimeRoot;

/// The cgroup manager of a created container.
pub(crate) fn cgroup_manager(
    container: &Container,
) -> Result<libcgroups::common::AnyCgroupManager> {
    let config = container
        .spec()
        .map_err(Error::lib("failed to read the container's cgroup config"))?;
    create_cgroup_manager(CgroupConfig {
        cgroup_path: config.cgroup_path,
        systemd_cgroup: container.systemd(),
        container_name: container.id().to_string(),
    })
    .map_err(|source| Error::CgroupSetup {
        what: format!(
            "failed to open the cgroups of container {:?}",
            container.id()
        ),
        source: Box::new(source),
    })
}

/// Processes sharing the init's pid namespace: the sandbox has no cgroup to list.
pub(crate) fn pids_by_namespace(init_pid: i32) -> Vec<i32> {
    let ns = |pid: &str| fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let Some(target) = ns(&init_pid.to_string()) else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|pid| ns(&pid.to_string()).as_ref() == Some(&target))
        .collect();
    pids.sort_unstable();
    pids
}

/// The pids of every process in the container.
pub fn pids(root: &RuntimeRoot, id: &str) -> Result<Vec<i32>> {
    let container = load::load(root, id)?;
    if Sidecar::load(&container.root).sandbox {
        return Ok(container
            .pid()
            .map(|p| pids_by_namespace(p.as_raw()))
            .unwrap_or_default());
    }
    let mut pids: Vec<i32> = cgroup_manager(&container)?
        .get_all_pids()
        .map_err(Box::new)?
        .into_iter()
        .map(|p| p.as_raw())
        .collect();
    pids.sort_unstable();
    Ok(pids)
}
