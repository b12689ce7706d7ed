//! `state`: a container's OCI state, as `runc state` prints it.

use std::path::PathBuf;

use libcontainer::container::{Container, ContainerStatus};
use serde::Serialize;

use super::load::load;
use crate::error::{Error, Result};
use crate::state::id;
use crate::state::sidecar::Sidecar;
use crate::RuntimeRoot;

/// The OCI state as `runc state` prints it, plus what pinc decided.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateView {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::HashMap<String, String>>,
    pub pinc: Sidecar,
}

pub fn status_name(status: ContainerStatus) -> &'static str {
    match status {
        ContainerStatus::Creating => "creating",
        ContainerStatus::Created => "created",
        ContainerStatus::Running => "running",
        ContainerStatus::Stopped => "stopped",
        ContainerStatus::Paused => "paused",
    }
}

/// Builds the state view of a loaded container.
pub fn view(container: &Container) -> StateView {
    let sidecar = Sidecar::load(&container.root);
    let status = container.status();
    let owner = container
        .state
        .creator
        .and_then(|uid| nix::unistd::User::from_uid(uid.into()).ok().flatten())
        .map(|u| u.name)
        .or_else(|| container.state.creator.map(|u| u.to_string()))
        .unwrap_or_default();
    StateView {
        oci_version: "1.0.2".to_string(),
        id: container.id().to_string(),
        pid: match status {
            ContainerStatus::Stopped => 0,
            _ => container.pid().map(|p| p.as_raw()).unwrap_or(0),
        },
        status: status_name(status).to_string(),
        bundle: container.bundle().clone(),
        rootfs: sidecar
            .rootfs
            .clone()
            .unwrap_or_else(|| container.bundle().join("rootfs")),
        created: container
            .created()
            .map(|c| c.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
            .unwrap_or_default(),
        owner,
        annotations: container.state.annotations.clone(),
        pinc: sidecar,
    }
}

pub fn state(root: &RuntimeRoot, id: &str) -> Result<StateView> {
    id::validate(id)?;
    if crate::state::reclaim::reclaim_if_dead(root, id)? {
        return Err(Error::Reclaimed { id: id.to_string() });
    }
    Ok(view(&load(root, id)?))
}
