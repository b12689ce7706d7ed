//! Spec edits shared by the device kinds: device nodes with their cgroup
//! rules, read-only bind mounts, hooks.

use std::path::{Path, PathBuf};

use crate::DeviceNode;
use oci_spec::runtime::{
    Hook, Hooks, LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, Mount, Spec,
};

use super::DevicesError;

/// Adds a device node. Rootful: a `linux.devices` entry (the runtime mknods
/// it) plus a device-cgroup allow rule. Rootless: mknod is impossible in a
/// user namespace, so the host node is bind-mounted, and only if the caller
/// can open it on the host.
pub fn add_device(spec: &mut Spec, node: &DeviceNode, rootless: bool) -> Result<(), DevicesError> {
    if rootless {
        if let Err(e) = nix::unistd::access(
            &node.host_path,
            nix::unistd::AccessFlags::R_OK | nix::unistd::AccessFlags::W_OK,
        ) {
            return Err(DevicesError::NotOpenable {
                path: node.host_path.clone(),
                reason: e.desc(),
            });
        }
        add_bind(
            spec,
            &node.host_path,
            &node.path,
            &["bind", "nosuid", "noexec"],
        );
        return Ok(());
    }
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut devices = linux.devices().clone().unwrap_or_default();
    if devices.iter().any(|d| d.path() == &node.path) {
        return Ok(());
    }
    let typ = match node.kind.as_char() {
        'b' => LinuxDeviceType::B,
        _ => LinuxDeviceType::C,
    };
    let mut device = LinuxDevice::default();
    device
        .set_path(node.path.clone())
        .set_typ(typ)
        .set_major(node.major as i64)
        .set_minor(node.minor as i64)
        .set_file_mode(Some(node.mode))
        .set_uid(Some(node.uid))
        .set_gid(Some(node.gid));
    devices.push(device);
    let mut resources = linux.resources().clone().unwrap_or_default();
    let mut rules = resources.devices().clone().unwrap_or_default();
    let mut rule = LinuxDeviceCgroup::default();
    rule.set_allow(true)
        .set_typ(Some(typ))
        .set_major(Some(node.major as i64))
        .set_minor(Some(node.minor as i64))
        .set_access(Some("rwm".to_string()));
    rules.push(rule);
    resources.set_devices(Some(rules));
    linux.set_resources(Some(resources));
    linux.set_devices(Some(devices));
    spec.set_linux(Some(linux));
    Ok(())
}

/// Whether the caller may open `node` on the host (what a rootless caller
/// is limited to).
pub fn openable(node: &DeviceNode) -> bool {
    nix::unistd::access(
        &node.host_path,
        nix::unistd::AccessFlags::R_OK | nix::unistd::AccessFlags::W_OK,
    )
    .is_ok()
}

/// Appends a bind mount unless something is already mounted at `dest`.
pub fn add_bind(spec: &mut Spec, source: &Path, dest: &Path, options: &[&str]) {
    add_mount(spec, "bind", source, dest, options);
}

/// Appends a mount unless something is already mounted at `dest`.
pub fn add_mount(spec: &mut Spec, typ: &str, source: &Path, dest: &Path, options: &[&str]) {
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    if mounts.iter().any(|m| m.destination() == dest) {
        return;
    }
    let mut mount = Mount::default();
    mount
        .set_destination(dest.to_path_buf())
        .set_typ(Some(typ.to_string()))
        .set_source(Some(source.to_path_buf()))
        .set_options(Some(options.iter().map(|o| o.to_string()).collect()));
    mounts.push(mount);
    spec.set_mounts(Some(mounts));
}

/// Appends a `createContainer` hook (runs in the container's namespaces,
/// after the mounts, before pivot_root).
pub fn add_create_container_hook(spec: &mut Spec, path: PathBuf, args: Vec<String>) {
    let mut hooks: Hooks = spec.hooks().clone().unwrap_or_default();
    let mut list = hooks.create_container().clone().unwrap_or_default();
    if list
        .iter()
        .any(|h| h.path() == &path && h.args().as_ref() == Some(&args))
    {
        return;
    }
    let mut hook = Hook::default();
    hook.set_path(path)
        .set_args(Some(args))
        .set_timeout(Some(30));
    list.push(hook);
    hooks.set_create_container(Some(list));
    spec.set_hooks(Some(hooks));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_are_not_duplicated() {
        let mut spec = Spec::default();
        let before = spec.mounts().as_ref().map_or(0, Vec::len);
        add_bind(
            &mut spec,
            Path::new("/a"),
            Path::new("/x/y"),
            &["bind", "ro"],
        );
        add_bind(
            &mut spec,
            Path::new("/b"),
            Path::new("/x/y"),
            &["bind", "ro"],
        );
        let mounts = spec.mounts().clone().expect("mounts");
        assert_eq!(mounts.len(), before + 1);
        let m = mounts.last().expect("mount");
        assert_eq!(m.source().as_deref(), Some(Path::new("/a")));
    }

    #[test]
    fn hooks_are_not_duplicated() {
        let mut spec = Spec::default();
        let args = vec!["pinc-hook".to_string(), "ldconfig".to_string()];
        add_create_container_hook(&mut spec, PathBuf::from("/usr/bin/pinc-hook"), args.clone());
        add_create_container_hook(&mut spec, PathBuf::from("/usr/bin/pinc-hook"), args);
        let hooks = spec.hooks().clone().expect("hooks");
        assert_eq!(hooks.create_container().as_ref().map(Vec::len), Some(1));
    }
}
