//! RDMA HCAs: their uverbs/umad/issm nodes and rdma_cm, a /sys/class view
//! showing only them, and a memlock limit high enough to register memory.

use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::{PosixRlimitBuilder, PosixRlimitType, Spec};
use pinc_hooks::selection::{self, Request};
use pinc_hooks::{DeviceNode, Hca};

use super::{edits, DevicesStage, Injected};
use crate::pipeline::StageError;

/// What the caller may set `RLIMIT_MEMLOCK` to, read once from pinc's own
/// process: the container cannot go above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memlock {
    /// The caller's hard limit in bytes; `u64::MAX` is unlimited.
    pub hard: u64,
    /// CAP_SYS_RESOURCE: the hard limit may be raised.
    pub may_raise: bool,
}

impl Memlock {
    pub fn of_caller() -> Memlock {
        let hard = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_MEMLOCK)
            .map(|(_, hard)| hard)
            .unwrap_or(0);
        Memlock {
            hard: if hard == libc::RLIM_INFINITY {
                u64::MAX
            } else {
                hard
            },
            may_raise: has_cap_sys_resource(),
        }
    }
}

/// CAP_SYS_RESOURCE (bit 24) in the effective set.
fn has_cap_sys_resource() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << 24) != 0)
}

pub(super) fn inject(
    stage: &DevicesStage,
    spec: &mut Spec,
    name: &str,
    request: &Request,
    rootless: bool,
    out: &mut Injected,
) -> Result<(), StageError> {
    let found = pinc_hooks::rdma::discover_hcas(&stage.root)?;
    let mut chosen =
        selection::select_hcas(&found.hcas, request).map_err(|e| format!("{name}: {e}"))?;
    if rootless && *request == Request::All {
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
    memlock(spec, stage.memlock());
    out.hcas = chosen.iter().map(|h| h.name.clone()).collect();
    Ok(())
}

/// The container's /sys/class/infiniband{,_verbs,_mad} show only the chosen
/// HCAs: an empty tmpfs over each, with the chosen entries bind-mounted in
/// (read-only, sysfs stays live). Verbs libraries enumerate these folders,
/// so without this a container would see, and try, every HCA on the node.
fn mask_sysfs(spec: &mut Spec, root: &Path, chosen: &[&Hca]) -> Result<(), StageError> {
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
                return Err(format!(
                    "{} resolves to {}, outside {}",
                    entry.display(),
                    source.display(),
                    sys.display()
                )
                .into());
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

fn canonical(path: &Path) -> Result<PathBuf, StageError> {
    std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()).into())
}

/// RDMA pins the memory it registers: lift RLIMIT_MEMLOCK as far as the
/// caller may, unless the spec already chose a value.
pub(crate) fn memlock(spec: &mut Spec, caller: Memlock) {
    let Some(mut process) = spec.process().clone() else {
        return;
    };
    let mut rlimits = process.rlimits().clone().unwrap_or_default();
    if rlimits
        .iter()
        .any(|r| r.typ() == PosixRlimitType::RlimitMemlock)
    {
        return;
    }
    let limit = if caller.may_raise {
        u64::MAX
    } else {
        caller.hard
    };
    if limit != u64::MAX {
        tracing::warn!(
            target: "pinc",
            "RLIMIT_MEMLOCK stays at {limit} bytes, the caller's hard limit (raising it needs CAP_SYS_RESOURCE): RDMA and MPI memory registration may fail"
        );
    }
    match PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitMemlock)
        .hard(limit)
        .soft(limit)
        .build()
    {
        Ok(rlimit) => rlimits.push(rlimit),
        Err(e) => tracing::warn!(target: "pinc", "RLIMIT_MEMLOCK not set: {e}"),
    }
    process.set_rlimits(Some(rlimits));
    spec.set_process(Some(process));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memlock_of(spec: &Spec) -> Option<(u64, u64)> {
        spec.process()
            .as_ref()
            .and_then(|p| p.rlimits().clone())
            .and_then(|r| {
                r.iter()
                    .find(|r| r.typ() == PosixRlimitType::RlimitMemlock)
                    .map(|r| (r.soft(), r.hard()))
            })
    }

    #[test]
    fn memlock_unlimited_only_when_the_caller_may_raise_it() {
        let mut spec = Spec::default();
        memlock(
            &mut spec,
            Memlock {
                hard: 8 << 20,
                may_raise: true,
            },
        );
        assert_eq!(memlock_of(&spec), Some((u64::MAX, u64::MAX)));
        let mut spec = Spec::default();
        memlock(
            &mut spec,
            Memlock {
                hard: 8 << 20,
                may_raise: false,
            },
        );
        assert_eq!(memlock_of(&spec), Some((8 << 20, 8 << 20)));
        let mut spec = Spec::default();
        memlock(
            &mut spec,
            Memlock {
                hard: u64::MAX,
                may_raise: false,
            },
        );
        assert_eq!(memlock_of(&spec), Some((u64::MAX, u64::MAX)));
    }

    #[test]
    fn memlock_set_by_the_spec_is_kept() {
        let mut spec = Spec::default();
        let mut process = spec.process().clone().expect("default process");
        let r = PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitMemlock)
            .hard(1024u64)
            .soft(512u64)
            .build()
            .expect("rlimit");
        process.set_rlimits(Some(vec![r]));
        spec.set_process(Some(process));
        memlock(
            &mut spec,
            Memlock {
                hard: u64::MAX,
                may_raise: true,
            },
        );
        assert_eq!(memlock_of(&spec), Some((512, 1024)));
    }
}
