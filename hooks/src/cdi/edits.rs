//! Applying the edits of requested CDI devices to an OCI spec.
//!
//! Semantics, where the CDI spec leaves room:
//! - env: `KEY=VALUE` replaces an existing `KEY`, else is appended.
//! - deviceNodes: missing type/major/minor are read with `lstat` of the host
//!   node below `root` (char or block devices only, no symlinks), as are
//!   fileMode/uid/gid unless given. fileMode keeps only permission bits.
//!   Each node gets a device-cgroup allow rule (`rwm` unless `permissions`
//!   says otherwise; none for FIFOs).
//! - mounts: no type means a bind mount; a bind mount without a `bind` or
//!   `rbind` option gets `bind` (non-recursive, the cautious choice), since
//!   runc-style runtimes only bind on the option.
//! - The same node, mount, hook or cgroup rule already present is not added
//!   again, so re-applying devices that an engine (CRI-O, containerd) already
//!   injected is harmless. A *different* node or mount at the same container
//!   path, or a different intelRdt, is a conflict and an error, whether it
//!   comes from another requested device or from the container spec.
//! - On any error the spec is left unchanged.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Hook, Hooks, Linux, LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, LinuxIntelRdt,
    LinuxResources, Mount, Process, Spec,
};

use super::registry::{Entry, Registry};
use super::spec::{CdiDeviceNode, CdiHook, CdiIntelRdt, CdiMount, ContainerEdits};
use super::{parse_qualified_name, CdiError};
use crate::device::{DeviceNode, NodeKind};

/// Who already set something that a CDI edit would set differently.
const CONTAINER_SPEC: &str = "the container spec";

/// What [`Registry::apply`] added, for logging.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// The CDI devices applied, fully qualified, in request order.
    pub devices: Vec<String>,
    /// Names of the environment variables set.
    pub env: Vec<String>,
    /// Container paths of the device nodes added to `linux.devices`.
    pub device_nodes: Vec<PathBuf>,
    /// Destinations of the mounts added.
    pub mounts: Vec<PathBuf>,
    /// Hooks added, as `hookName path`.
    pub hooks: Vec<String>,
    pub additional_gids: Vec<u32>,
    /// True if `linux.intelRdt` was set.
    pub intel_rdt: bool,
}

impl Registry {
    /// Applies the edits of `devices` (fully qualified names) to `spec`: for
    /// each device, the spec-level edits of its spec file (once per file)
    /// and then the device's own. `root` is the host root ("/" normally)
    /// below which device nodes are read.
    pub fn apply(
        &self,
        spec: &mut Spec,
        devices: &[String],
        root: &Path,
    ) -> Result<Applied, CdiError> {
        // Resolve every name first, so a bad request changes nothing.
        let mut wanted: Vec<(&str, Entry)> = Vec::new();
        for name in devices {
            if wanted.iter().any(|(n, _)| n == name) {
                continue;
            }
            let (vendor, class, _) = parse_qualified_name(name)?;
            let Some(&entry) = self.devices.get(name.as_str()) else {
                let kind = format!("{vendor}/{class}");
                return Err(CdiError::UnknownDevice {
                    device: name.clone(),
                    known: self.names_of_kind(&kind),
                    kind,
                });
            };
            wanted.push((name, entry));
        }
        let mut editor = Editor {
            spec: spec.clone(),
            root,
            applied: Applied::default(),
            node_owners: BTreeMap::new(),
            mount_owners: BTreeMap::new(),
            rdt_owner: None,
        };
        let mut specs_done = HashSet::new();
        for (name, entry) in wanted {
            let Some(loaded) = self.specs.get(entry.spec) else {
                continue;
            };
            if specs_done.insert(entry.spec) {
                editor.apply(name, &loaded.spec.container_edits)?;
            }
            if let Some(device) = loaded.spec.devices.get(entry.device) {
                editor.apply(name, &device.container_edits)?;
            }
            editor.applied.devices.push(name.to_owned());
        }
        *spec = editor.spec;
        Ok(editor.applied)
    }
}

/// Edits a copy of the spec, remembering which device set what.
struct Editor<'a> {
    spec: Spec,
    root: &'a Path,
    applied: Applied,
    node_owners: BTreeMap<PathBuf, String>,
    mount_owners: BTreeMap<PathBuf, String>,
    rdt_owner: Option<String>,
}

fn missing(device: &str, section: &'static str) -> CdiError {
    CdiError::MissingSection {
        device: device.to_owned(),
        section,
    }
}

impl Editor<'_> {
    fn apply(&mut self, device: &str, edits: &ContainerEdits) -> Result<(), CdiError> {
        for entry in &edits.env {
            self.set_env(device, entry)?;
        }
        for node in &edits.device_nodes {
            self.add_node(device, node)?;
        }
        for mount in &edits.mounts {
            self.add_mount(device, mount)?;
        }
        for hook in &edits.hooks {
            self.add_hook(hook);
        }
        for &gid in &edits.additional_gids {
            self.add_gid(device, gid)?;
        }
        if let Some(rdt) = &edits.intel_rdt {
            self.set_rdt(device, rdt)?;
        }
        Ok(())
    }

    fn process(&mut self, device: &str) -> Result<&mut Process, CdiError> {
        self.spec
            .process_mut()
            .as_mut()
            .ok_or_else(|| missing(device, "process"))
    }

    fn linux(&mut self, device: &str) -> Result<&mut Linux, CdiError> {
        self.spec
            .linux_mut()
            .as_mut()
            .ok_or_else(|| missing(device, "linux"))
    }

    fn set_env(&mut self, device: &str, entry: &str) -> Result<(), CdiError> {
        let key = entry.split_once('=').map_or(entry, |(k, _)| k);
        let env = self.process(device)?.env_mut().get_or_insert_with(Vec::new);
        let same_key = |e: &String| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key;
        match env.iter().position(same_key) {
            Some(first) => {
                env[first] = entry.to_owned();
                // Drop later duplicates so the value set here is the one seen.
                let mut index = 0;
                env.retain(|e| {
                    let keep = index <= first || !same_key(e);
                    index += 1;
                    keep
                });
            }
            None => env.push(entry.to_owned()),
        }
        if !self.applied.env.iter().any(|k| k == key) {
            self.applied.env.push(key.to_owned());
        }
        Ok(())
    }

    fn add_node(&mut self, device: &str, node: &CdiDeviceNode) -> Result<(), CdiError> {
        let new = resolve_node(self.root, device, node)?;
        let path = new.path().clone();
        let nodes = self
            .linux(device)?
            .devices_mut()
            .get_or_insert_with(Vec::new);
        let existing = nodes.iter().find(|d| d.path() == &path);
        match existing.map(|old| same_node(old, &new)) {
            Some(true) => {}
            Some(false) => {
                return Err(CdiError::Conflict {
                    what: format!("device node {}", path.display()),
                    first: self.owner_of_node(&path),
                    second: device.to_owned(),
                })
            }
            None => {
                nodes.push(new.clone());
                self.node_owners.insert(path.clone(), device.to_owned());
                self.applied.device_nodes.push(path);
            }
        }
        let rule_type = match new.typ() {
            LinuxDeviceType::B => LinuxDeviceType::B,
            LinuxDeviceType::C | LinuxDeviceType::U => LinuxDeviceType::C,
            // FIFOs and "all" are not governed by device-cgroup rules here.
            LinuxDeviceType::P | LinuxDeviceType::A => return Ok(()),
        };
        let access = node.permissions.as_deref().unwrap_or("rwm").to_owned();
        let mut rule = LinuxDeviceCgroup::default();
        rule.set_allow(true)
            .set_typ(Some(rule_type))
            .set_major(Some(new.major()))
            .set_minor(Some(new.minor()))
            .set_access(Some(access));
        let rules = self
            .linux(device)?
            .resources_mut()
            .get_or_insert_with(LinuxResources::default)
            .devices_mut()
            .get_or_insert_with(Vec::new);
        if !rules.contains(&rule) {
            rules.push(rule);
        }
        Ok(())
    }

    fn owner_of_node(&self, path: &Path) -> String {
        self.node_owners
            .get(path)
            .cloned()
            .unwrap_or_else(|| CONTAINER_SPEC.to_owned())
    }

    fn add_mount(&mut self, device: &str, mount: &CdiMount) -> Result<(), CdiError> {
        let new = oci_mount(mount);
        let destination = new.destination().clone();
        let mounts = self.spec.mounts_mut().get_or_insert_with(Vec::new);
        let existing = mounts.iter().find(|m| m.destination() == &destination);
        match existing.map(|old| *old == new) {
            Some(true) => Ok(()),
            Some(false) => Err(CdiError::Conflict {
                what: format!("mount {}", destination.display()),
                first: self
                    .mount_owners
                    .get(&destination)
                    .cloned()
                    .unwrap_or_else(|| CONTAINER_SPEC.to_owned()),
                second: device.to_owned(),
            }),
            None => {
                mounts.push(new);
                self.mount_owners
                    .insert(destination.clone(), device.to_owned());
                self.applied.mounts.push(destination);
                Ok(())
            }
        }
    }

    // `prestart` is deprecated in the OCI spec but still a valid CDI hook.
    #[allow(deprecated)]
    fn add_hook(&mut self, hook: &CdiHook) {
        let hooks = self.spec.hooks_mut().get_or_insert_with(Hooks::default);
        let list = match hook.hook_name.as_str() {
            "prestart" => hooks.prestart_mut(),
            "createRuntime" => hooks.create_runtime_mut(),
            "createContainer" => hooks.create_container_mut(),
            "startContainer" => hooks.start_container_mut(),
            "poststart" => hooks.poststart_mut(),
            // Validation allowed nothing else.
            _ => hooks.poststop_mut(),
        };
        let list = list.get_or_insert_with(Vec::new);
        let new = oci_hook(hook);
        if !list.contains(&new) {
            list.push(new);
            self.applied
                .hooks
                .push(format!("{} {}", hook.hook_name, hook.path));
        }
    }

    fn add_gid(&mut self, device: &str, gid: u32) -> Result<(), CdiError> {
        // CDI says 0 is ignored (it would be a no-op or a surprise).
        if gid == 0 {
            return Ok(());
        }
        let gids = self
            .process(device)?
            .user_mut()
            .additional_gids_mut()
            .get_or_insert_with(Vec::new);
        if !gids.contains(&gid) {
            gids.push(gid);
            self.applied.additional_gids.push(gid);
        }
        Ok(())
    }

    fn set_rdt(&mut self, device: &str, rdt: &CdiIntelRdt) -> Result<(), CdiError> {
        let new = oci_rdt(rdt);
        let owner = self.rdt_owner.clone();
        let slot = self.linux(device)?.intel_rdt_mut();
        match slot.as_ref().map(|old| *old == new) {
            Some(true) => Ok(()),
            Some(false) => Err(CdiError::Conflict {
                what: "linux.intelRdt".to_owned(),
                first: owner.unwrap_or_else(|| CONTAINER_SPEC.to_owned()),
                second: device.to_owned(),
            }),
            None => {
                *slot = Some(new);
                self.rdt_owner = Some(device.to_owned());
                self.applied.intel_rdt = true;
                Ok(())
            }
        }
    }
}

/// Nodes are the same device if type and numbers match; mode and owner may
/// legitimately differ between producers.
fn same_node(a: &LinuxDevice, b: &LinuxDevice) -> bool {
    a.typ() == b.typ() && a.major() == b.major() && a.minor() == b.minor()
}

fn declared_type(typ: &str) -> LinuxDeviceType {
    match typ {
        "b" => LinuxDeviceType::B,
        "u" => LinuxDeviceType::U,
        "p" => LinuxDeviceType::P,
        _ => LinuxDeviceType::C,
    }
}

/// The OCI device for a CDI node, reading the host node when the spec does
/// not give type and numbers.
fn resolve_node(root: &Path, device: &str, node: &CdiDeviceNode) -> Result<LinuxDevice, CdiError> {
    let host_path = node.host_path.as_deref().unwrap_or(&node.path);
    let read_host = || {
        DeviceNode::read(root, host_path).map_err(|source| CdiError::DeviceNode {
            device: device.to_owned(),
            path: host_path.to_owned(),
            source,
        })
    };
    let (typ, host) = match node.typ.as_deref() {
        None => {
            let host = read_host()?;
            let typ = match host.kind {
                NodeKind::Char => LinuxDeviceType::C,
                NodeKind::Block => LinuxDeviceType::B,
            };
            (typ, Some(host))
        }
        // FIFOs have no numbers to read.
        Some("p") => (LinuxDeviceType::P, None),
        Some(declared) if node.major.is_some() && node.minor.is_some() => {
            (declared_type(declared), None)
        }
        Some(declared) => {
            let host = read_host()?;
            let found = match host.kind {
                NodeKind::Char => "character",
                NodeKind::Block => "block",
            };
            let matches = matches!(
                (declared, host.kind),
                ("c" | "u", NodeKind::Char) | ("b", NodeKind::Block)
            );
            if !matches {
                return Err(CdiError::TypeMismatch {
                    device: device.to_owned(),
                    path: node.path.clone(),
                    host: host.host_path,
                    declared: declared.to_owned(),
                    found,
                });
            }
            (declared_type(declared), Some(host))
        }
    };
    let mut out = LinuxDevice::default();
    out.set_path(PathBuf::from(&node.path))
        .set_typ(typ)
        .set_major(
            node.major
                .or(host.as_ref().map(|h| h.major as i64))
                .unwrap_or(0),
        )
        .set_minor(
            node.minor
                .or(host.as_ref().map(|h| h.minor as i64))
                .unwrap_or(0),
        )
        // Go producers may write os.FileMode type bits; OCI wants permissions.
        .set_file_mode(
            node.file_mode
                .map(|m| m & 0o7777)
                .or(host.as_ref().map(|h| h.mode)),
        )
        .set_uid(node.uid.or(host.as_ref().map(|h| h.uid)))
        .set_gid(node.gid.or(host.as_ref().map(|h| h.gid)));
    Ok(out)
}

fn oci_mount(mount: &CdiMount) -> Mount {
    let typ = mount.typ.clone().unwrap_or_else(|| "bind".to_owned());
    let mut options = mount.options.clone();
    if typ == "bind" && !options.iter().any(|o| o == "bind" || o == "rbind") {
        options.push("bind".to_owned());
    }
    let mut out = Mount::default();
    out.set_destination(PathBuf::from(&mount.container_path))
        .set_source(Some(PathBuf::from(&mount.host_path)))
        .set_typ(Some(typ))
        .set_options((!options.is_empty()).then_some(options));
    out
}

fn oci_hook(hook: &CdiHook) -> Hook {
    let mut out = Hook::default();
    out.set_path(PathBuf::from(&hook.path))
        .set_args((!hook.args.is_empty()).then(|| hook.args.clone()))
        // Always an explicit env, even empty: libcontainer starts a
        // startContainer hook without one with the container's process env
        // (an image's LD_PRELOAD in a privileged hook, CVE-2025-23266).
        .set_env(Some(hook.env.clone()))
        .set_timeout(hook.timeout);
    out
}

// enableCMT/enableMBM are deprecated in runtime-spec 1.3 in favour of
// enableMonitoring (what libcontainer reads); set both for either reader.
#[allow(deprecated)]
fn oci_rdt(rdt: &CdiIntelRdt) -> LinuxIntelRdt {
    let mut out = LinuxIntelRdt::default();
    let monitoring = rdt.enable_cmt == Some(true) || rdt.enable_mbm == Some(true);
    out.set_clos_id(rdt.clos_id.clone())
        .set_l3_cache_schema(rdt.l3_cache_schema.clone())
        .set_mem_bw_schema(rdt.mem_bw_schema.clone())
        .set_enable_cmt(rdt.enable_cmt)
        .set_enable_mbm(rdt.enable_mbm)
        .set_enable_monitoring(monitoring.then_some(true));
    out
}

// The tests live in edits/tests.rs to keep this file short.
#[cfg(test)]
mod tests;
