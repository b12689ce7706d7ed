//! RDMA HCAs: their uverbs/umad/issm nodes and rdma_cm, a /sys/class view
//! showing only them, and a memlock limit high enough to register memory.

use std::path::{Path, PathBuf};

use crate::selection::{self, DeviceSelection};
use crate::{DeviceNode, Hca};
use oci_spec::runtime::Spec;

use super::DevicesError;
use super::{edits, DevicesStage, Injected};
use crate::memlock;

pub(super) fn inject(
    stage: &DevicesStage,
    spec: &mut Spec,
    name: &str,
    request: &DeviceSelection,
    rootless: bool,
    out: &mut Injected,
) -> Result<(), DevicesError> {
    let found = crate::rdma::discover_hcas(&stage.root)?;
    let mut chosen =
        selection::select_hcas(&found.hcas, request).map_err(|source| DevicesError::Select {
            from: name.to_string(),
            source,
        })?;
    if rootless && *request == DeviceSelection::All {
        chosen.retain(|h| h.devices.iter().all(edits::openable));
    }
    if chosen.is_empty() {
        return Ok(());
    }
    for hca in &chosen {
        for node in &hca.devices {
            edits::add_device(spec, node, rootless)?;
            out.devices.push(node.path.clone());
        }
        out.near
            .push(hca.bus_id.clone().unwrap_or_else(|| hca.name.clone()));
    }
    if let Some(cm) = &found.rdma_cm {
        edits::add_device(spec, cm, rootless)?;
        out.devices.push(cm.path.clone());
    }
    mask_sysfs(spec, &stage.root, &chosen)?;
    memlock::apply(spec, stage.memlock());
    out.hcas = chosen.iter().map(|h| h.name.clone()).collect();
    Ok(())
}

/// The container's /sys/class/infiniband{,_verbs,_mad} show only the chosen
/// HCAs: an empty tmpfs over each, with the chosen entries bind-mounted in
/// (read-only, sysfs stays live). Verbs libraries enumerate these folders,
/// so without this a container would see, and try, every HCA on the node.
fn mask_sysfs(spec: &mut Spec, root: &Path, chosen: &[&Hca]) -> Result<(), DevicesError> {
    // The sysfs the container will see: masks need their mount points there.
    let Some(container_sys) = container_sys(spec) else {
        return Ok(());
    };
    let node_names = |prefixes: &[&str]| -> Vec<String> {
        let mut names: Vec<String> = chosen
            .iter()
            .flat_map(|h| h.devices.iter())
            .filter_map(|d: &DeviceNode| d.path.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| prefixes.iter().any(|p| n.starts_with(p)))
            .collect();
        names.push("abi_version".to_string());
        names
    };
    let classes: [(&str, Vec<String>); 3] = [
        (
            "sys/class/infiniband",
            chosen.iter().map(|h| h.name.clone()).collect(),
        ),
        ("sys/class/infiniband_verbs", node_names(&["uverbs"])),
        ("sys/class/infiniband_mad", node_names(&["umad", "issm"])),
    ];
    let sys = canonical(&root.join("sys"))?;
    for (class, names) in classes {
        let dir = root.join(class);
        let rel = class.trim_start_matches("sys/");
        if !dir.is_dir() || !container_sys.join(rel).is_dir() {
            continue;
        }
        let dest = Path::new("/").join(class);
        edits::add_mount(
            spec,
            "tmpfs",
            Path::new("tmpfs"),
            &dest,
            &["nosuid", "noexec", "nodev", "mode=755", "size=64k"],
        );
        for name in names {
            let entry = dir.join(&name);
            if std::fs::symlink_metadata(&entry).is_err() {
                continue;
            }
            // sysfs class entries are symlinks into /sys/devices: follow
            // them, but never out of the (fixture) sysfs.
            let source = canonical(&entry)?;
            if !source.starts_with(&sys) {
                return Err(DevicesError::SysfsEscape {
                    entry,
                    target: source,
                    sys,
                });
            }
            edits::add_bind(
                spec,
                &source,
                &dest.join(&name),
                &["bind", "ro", "nosuid", "noexec", "nodev"],
            );
        }
    }
    Ok(())
}

/// Where the container's /sys comes from: the host's sysfs for a sysfs
/// mount, the source folder for a bind.
fn container_sys(spec: &Spec) -> Option<PathBuf> {
    let mounts = spec.mounts().as_ref()?;
    let m = mounts
        .iter()
        .rev()
        .find(|m| m.destination() == Path::new("/sys"))?;
    match m.typ().as_deref() {
        Some("sysfs") => Some(PathBuf::from("/sys")),
        _ => m.source().clone(),
    }
}

fn canonical(path: &Path) -> Result<PathBuf, DevicesError> {
    std::fs::canonicalize(path).map_err(|source| DevicesError::Resolve {
        path: path.to_path_buf(),
        source,
    })
}
