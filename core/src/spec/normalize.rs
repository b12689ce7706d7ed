//! Rewrites that make what runc 1.1.5 accepts acceptable to libcontainer
//! 0.7, with the effect runc gives. Plain functions over the spec, except
//! [`create_cwd`], which makes a directory in the rootfs as runc does.

use std::path::PathBuf;

use libcontainer::oci_spec::runtime::{
    Capability, LinuxDeviceCgroup, LinuxDeviceType, LinuxNamespaceType, Spec,
};
use serde_json::Value;

use crate::spec::validate::{inroot, SpecError};

/// The capability sets of `process.capabilities`.
const CAP_SETS: &[&str] = &[
    "bounding",
    "effective",
    "inheritable",
    "permitted",
    "ambient",
];

/// Before the typed parse: drops capability names libcontainer does not
/// know, as runc does ("ignoring unknown or unavailable capabilities"),
/// instead of refusing the whole spec.
pub fn raw(config: &mut Value) {
    let Some(caps) = config
        .pointer_mut("/process/capabilities")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for set in CAP_SETS {
        let Some(list) = caps.get_mut(*set).and_then(Value::as_array_mut) else {
            continue;
        };
        list.retain(|name| {
            let known = serde_json::from_value::<Capability>(name.clone()).is_ok();
            if !known {
                tracing::warn!(target: "pinc", "ignoring unknown capability {name} in process.capabilities.{set}");
            }
            known
        });
    }
}

/// After the pipeline, before libcontainer sees the spec.
pub fn spec(spec: &mut Spec) {
    if let Some(mut process) = spec.process().clone() {
        let before = process.clone();
        // libcontainer orders seccomp by `is_some()`: an explicit false
        // would be treated like true. runc treats it as unset.
        if process.no_new_privileges() == Some(false) {
            process.set_no_new_privileges(None);
        }
        // libcontainer leaves a capability set alone when it is absent, so
        // the process would keep all of root's; runc gives it none.
        let caps = crate::process::exec::process::complete(process.capabilities().as_ref());
        process.set_capabilities(Some(caps));
        if process != before {
            spec.set_process(Some(process));
        }
    }
    let Some(mut linux) = spec.linux().clone() else {
        return;
    };
    let before = linux.clone();
    // libcontainer 0.7 knows only the plain forms, and already makes the
    // root mount's propagation recursive (MS_REC) for them.
    let plain = match linux.rootfs_propagation().as_deref() {
        Some("rshared") => Some("shared"),
        Some("rslave") => Some("slave"),
        Some("rprivate") => Some("private"),
        Some("runbindable") => Some("unbindable"),
        _ => None,
    };
    if let Some(plain) = plain {
        linux.set_rootfs_propagation(Some(plain.to_string()));
    }
    let has = |kind| linux.namespaces().iter().flatten().any(|n| n.typ() == kind);
    // runc ignores these without the namespace; libcontainer refuses.
    let (uts, user) = (has(LinuxNamespaceType::Uts), has(LinuxNamespaceType::User));
    if !user && (linux.uid_mappings().is_some() || linux.gid_mappings().is_some()) {
        tracing::warn!(target: "pinc", "ignoring linux.uidMappings/gidMappings: no user namespace");
        linux.set_uid_mappings(None);
        linux.set_gid_mappings(None);
    }
    // Device paths are inside the container: a relative one is from "/".
    // For one path listed twice runc makes the first and skips the rest;
    // libcontainer fails on the second mknod.
    if let Some(mut devices) = linux.devices().clone() {
        for d in devices.iter_mut().filter(|d| d.path().is_relative()) {
            let path = PathBuf::from("/").join(d.path());
            d.set_path(path);
        }
        let mut seen = std::collections::HashSet::new();
        devices.retain(|d| {
            let first = seen.insert(d.path().clone());
            if !first {
                tracing::warn!(target: "pinc", "ignoring a second linux.devices entry for {}", d.path().display());
            }
            first
        });
        linux.set_devices(Some(devices));
    }
    deny_devices_first(&mut linux);
    if linux != before {
        spec.set_linux(Some(linux));
    }
    if !uts && spec.domainname().is_some() {
        tracing::warn!(target: "pinc", "ignoring domainname: no uts namespace");
        spec.set_domainname(None);
    }
}

/// runc denies every device the spec does not allow. libcgroups writes only
/// the spec's rules and its default allows, so without a leading deny-all
/// rule a container could open any device node it makes (with CAP_MKNOD).
fn deny_devices_first(linux: &mut libcontainer::oci_spec::runtime::Linux) {
    let mut resources = linux.resources().clone().unwrap_or_default();
    let mut rules = resources.devices().clone().unwrap_or_default();
    let denies_all = rules.first().is_some_and(|r| {
        !r.allow()
            && matches!(r.typ(), None | Some(LinuxDeviceType::A))
            && r.major().is_none()
            && r.minor().is_none()
            && r.access().as_deref().is_none_or(|a| {
                let a = if a.is_empty() { "rwm" } else { a };
                ['r', 'w', 'm'].iter().all(|c| a.contains(*c))
            })
    });
    if denies_all {
        return;
    }
    let mut deny = LinuxDeviceCgroup::default();
    deny.set_allow(false)
        .set_typ(Some(LinuxDeviceType::A))
        .set_major(None)
        .set_minor(None)
        .set_access(Some("rwm".to_string()));
    rules.insert(0, deny);
    resources.set_devices(Some(rules));
    linux.set_resources(Some(resources));
}

/// Makes a missing `process.cwd` inside the rootfs (mode 0755, owned by
/// the container's root), as runc does. Never follows a symlink out of the
/// rootfs. A cwd under a mount destination is left to the mount.
pub fn create_cwd(spec: &Spec) -> Result<(), SpecError> {
    let (Some(root), Some(process)) = (spec.root(), spec.process()) else {
        return Ok(());
    };
    let cwd = process.cwd();
    if !cwd.is_absolute() || cwd.as_os_str() == "/" {
        return Ok(());
    }
    let under_mount = spec.mounts().iter().flatten().any(|m| {
        let dest = PathBuf::from("/").join(m.destination());
        dest.as_os_str() != "/" && cwd.starts_with(&dest)
    });
    if under_mount
        || root
            .path()
            .join(cwd.strip_prefix("/").unwrap_or(cwd))
            .is_dir()
    {
        return Ok(());
    }
    inroot::mkdir_all(root.path(), cwd, 0o755, container_root(spec)).map_err(|source| {
        SpecError::CreateCwd {
            path: cwd.clone(),
            source,
        }
    })
}

/// The host ids of the container's uid/gid 0, when a user namespace maps them.
fn container_root(spec: &Spec) -> Option<(u32, u32)> {
    let linux = spec.linux().as_ref()?;
    let host_of = |maps: &Option<Vec<libcontainer::oci_spec::runtime::LinuxIdMapping>>| {
        maps.iter()
            .flatten()
            .find(|m| m.container_id() == 0)
            .map(|m| m.host_id())
    };
    Some((
        host_of(linux.uid_mappings())?,
        host_of(linux.gid_mappings())?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::validate::test_support;
    use serde_json::json;

    #[test]
    fn unknown_capabilities_are_dropped() {
        let mut v = json!({"process": {"capabilities": {
            "bounding": ["CAP_KILL", "CAP_FOO"], "ambient": ["CAP_NOPE"]}}});
        raw(&mut v);
        assert_eq!(
            v["process"]["capabilities"]["bounding"],
            json!(["CAP_KILL"])
        );
        assert_eq!(v["process"]["capabilities"]["ambient"], json!([]));
        let mut v = json!({"process": {}});
        raw(&mut v);
        assert_eq!(v, json!({"process": {}}));
    }

    #[test]
    fn recursive_propagations_map_to_libcontainers() {
        for (given, want) in [
            ("rshared", "shared"),
            ("rslave", "slave"),
            ("rprivate", "private"),
            ("runbindable", "unbindable"),
            ("shared", "shared"),
        ] {
            let mut s = test_support::spec(json!({"linux": {"rootfsPropagation": given}}));
            spec(&mut s);
            let got = s
                .linux()
                .as_ref()
                .and_then(|l| l.rootfs_propagation().clone());
            assert_eq!(got.as_deref(), Some(want), "{given}");
        }
    }

    #[test]
    fn devices_are_denied_unless_allowed() {
        let rules = |v: serde_json::Value| {
            let mut s = test_support::spec(v);
            spec(&mut s);
            let devices = s
                .linux()
                .as_ref()
                .and_then(|l| l.resources().clone())
                .and_then(|r| r.devices().clone())
                .unwrap_or_default();
            devices
                .iter()
                .map(|d| format!("{} {d}", d.allow()))
                .collect::<Vec<_>>()
        };
        assert_eq!(rules(json!({"linux": {}})), ["false a *:* rwm"]);
        let allow = json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"});
        let got = rules(json!({"linux": {"resources": {"devices": [allow]}}}));
        assert_eq!(got, ["false a *:* rwm", "true c 1:3 rw"]);
        let already = json!({"allow": false, "access": "rwm"});
        let got = rules(json!({"linux": {"resources": {"devices": [already, allow]}}}));
        assert_eq!(got.len(), 2, "{got:?}");
    }

    #[test]
    fn absent_capability_sets_become_empty() {
        let mut s = test_support::spec(json!({"process": {
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"]}}}));
        // test_support may fill in a default process; take ours as given.
        let mut p = s.process().clone().expect("process");
        let mut only: libcontainer::oci_spec::runtime::LinuxCapabilities =
            serde_json::from_value(json!({"bounding": ["CAP_KILL"]})).expect("caps");
        only.set_effective(None)
            .set_permitted(None)
            .set_inheritable(None)
            .set_ambient(None);
        p.set_capabilities(Some(only));
        s.set_process(Some(p));
        spec(&mut s);
        let caps = s
            .process()
            .as_ref()
            .and_then(|p| p.capabilities().clone())
            .expect("caps");
        assert_eq!(caps.bounding().as_ref().map(|b| b.len()), Some(1));
        for set in [
            caps.effective(),
            caps.permitted(),
            caps.inheritable(),
            caps.ambient(),
        ] {
            assert!(set.as_ref().is_some_and(|s| s.is_empty()), "{caps:?}");
        }
        let mut none = test_support::spec(json!({}));
        let mut p = none.process().clone().expect("process");
        p.set_capabilities(None);
        none.set_process(Some(p));
        spec(&mut none);
        let caps = none
            .process()
            .as_ref()
            .and_then(|p| p.capabilities().clone());
        assert!(caps.is_some_and(|c| c.bounding().as_ref().is_some_and(|b| b.is_empty())));
    }

    #[test]
    fn explicit_false_no_new_privileges_is_unset() {
        let nnp = |v: serde_json::Value| {
            let mut s = test_support::spec(json!({"process": {"noNewPrivileges": v}}));
            spec(&mut s);
            s.process().as_ref().and_then(|p| p.no_new_privileges())
        };
        assert_eq!(nnp(json!(false)), None);
        assert_eq!(nnp(json!(true)), Some(true));
    }

    #[test]
    fn fields_runc_ignores_without_their_namespace() {
        let maps = json!([{"containerID": 0, "hostID": 100000, "size": 10}]);
        let mut s = test_support::spec(json!({"domainname": "d",
            "linux": {"namespaces": [{"type": "pid"}], "uidMappings": maps, "gidMappings": maps,
                      "devices": [{"path": "dev/x", "type": "c", "major": 1, "minor": 3}]}}));
        spec(&mut s);
        let linux = s.linux().as_ref().expect("linux");
        assert!(linux.uid_mappings().is_none() && linux.gid_mappings().is_none());
        assert!(s.domainname().is_none());
        let devices = linux.devices().as_ref().expect("devices");
        assert_eq!(devices[0].path(), &PathBuf::from("/dev/x"));

        let dev = |minor| json!({"path": "/dev/y", "type": "c", "major": 1, "minor": minor});
        let mut s = test_support::spec(json!({"linux": {"devices": [dev(3), dev(5)]}}));
        spec(&mut s);
        let devices = s
            .linux()
            .as_ref()
            .and_then(|l| l.devices().clone())
            .expect("devices");
        assert_eq!(devices.len(), 1, "the first entry wins, as in runc");
        assert_eq!(devices[0].minor(), 3);

        let mut s = test_support::spec(json!({"domainname": "d",
            "linux": {"namespaces": [{"type": "uts"}, {"type": "user"}], "uidMappings": maps}}));
        spec(&mut s);
        assert_eq!(s.domainname().as_deref(), Some("d"));
        assert!(s.linux().as_ref().expect("linux").uid_mappings().is_some());
    }

    #[test]
    fn missing_cwd_is_created_inside_the_rootfs() {
        let rootfs = tempfile::tempdir().expect("rootfs");
        let s = test_support::spec(json!({"root": {"path": rootfs.path()},
            "process": {"cwd": "/work/dir"}}));
        create_cwd(&s).expect("create");
        let made = rootfs.path().join("work/dir");
        assert!(made.is_dir());
        create_cwd(&s).expect("again");
        let s = test_support::spec(json!({"root": {"path": rootfs.path()},
            "mounts": [{"destination": "/data", "type": "tmpfs", "source": "tmpfs"}],
            "process": {"cwd": "/data/x"}}));
        create_cwd(&s).expect("under a mount");
        assert!(!rootfs.path().join("data").exists());
    }
}
