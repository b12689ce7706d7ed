//! pinc's own record beside libcontainer's state.json, in the container dir:
//! what later commands (exec, ps, state) must know about how it was created.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const FILE: &str = "pinc.json";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Sidecar {
    /// Created inside pinc's rootless sandbox (own user namespace, no real cgroups).
    #[serde(default)]
    pub sandbox: bool,
    /// The final spec differs from the bundle's and is kept in the container dir.
    #[serde(default)]
    pub final_spec: bool,
    /// Created with --no-new-keyring: exec keeps its caller's session
    /// keyring too, as runc's exec does for such a container.
    #[serde(default)]
    pub no_new_keyring: bool,
    /// The CPUs the container's processes are confined to by affinity, when the
    /// spec had no cpuset and the caller's affinity was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<String>,
    /// linux.cgroupsPath of the final spec (the sandbox re-creates it for exec).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups_path: Option<std::path::PathBuf>,
    /// The cgroup2 mount where pinc made the container's hugetlb cgroup
    /// itself (hybrid hosts); removed on delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hugetlb_v2: Option<std::path::PathBuf>,
    /// The rdma hierarchy (v1) or cgroup2 mount where pinc made the
    /// container's rdma cgroup itself (libcgroups has no rdma controller);
    /// removed on delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdma_mount: Option<std::path::PathBuf>,
    /// The container's root filesystem (absolute), for `state`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<std::path::PathBuf>,
    /// Names of the pipeline stages that edited the spec.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<String>,
}

impl Sidecar {
    pub fn save(&self, container_dir: &Path) -> Result<()> {
        let path = container_dir.join(FILE);
        let json = serde_json::to_vec(self).map_err(|source| Error::Json {
            what: format!("sidecar {}", path.display()),
            source,
        })?;
        fs::write(&path, json).map_err(Error::io("failed to write", path))
    }

    /// The sidecar, or the default for containers pinc did not annotate.
    pub fn load(container_dir: &Path) -> Self {
        fs::read(container_dir.join(FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(Sidecar::load(dir.path()), Sidecar::default());
        let s = Sidecar {
            sandbox: true,
            final_spec: true,
            no_new_keyring: true,
            affinity: Some("1".into()),
            rootfs: Some("/b/rootfs".into()),
            cgroups_path: Some("/pinc/c".into()),
            hugetlb_v2: Some("/sys/fs/cgroup/unified".into()),
            rdma_mount: Some("/sys/fs/cgroup/rdma".into()),
            stages: vec!["placement".into()],
        };
        s.save(dir.path()).expect("save");
        assert_eq!(Sidecar::load(dir.path()), s);
    }
}
