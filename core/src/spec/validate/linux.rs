//! The rest of `linux`: devices, sysctls, root propagation.

use libcontainer::oci_spec::runtime::{Linux, LinuxDeviceType, LinuxNamespaceType};

use super::namespaces::has;
use super::{at, SpecError};

/// Values runc takes for linux.rootfsPropagation (the r-forms are mapped
/// for libcontainer by [`crate::spec::normalize`]).
pub(crate) const PROPAGATIONS: &[&str] = &[
    "shared",
    "slave",
    "private",
    "unbindable",
    "rshared",
    "rslave",
    "rprivate",
    "runbindable",
];

/// The kernel's dev_t as mknod(2) takes it: 12-bit major, 20-bit minor.
const MAX_MAJOR: i64 = (1 << 12) - 1;
const MAX_MINOR: i64 = (1 << 20) - 1;

/// IPC sysctls (besides fs.mqueue.*), namespaced by an ipc namespace.
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

pub(super) fn check(linux: &Linux) -> Result<(), SpecError> {
    devices(linux)?;
    sysctls(linux)?;
    if let Some(p) = linux.rootfs_propagation().as_deref() {
        if !PROPAGATIONS.contains(&p) {
            return Err(SpecError::UnknownValue {
                field: "linux.rootfsPropagation".into(),
                value: p.into(),
                expected: "shared, slave, private, unbindable, or an r- form of them",
            });
        }
    }
    Ok(())
}

fn devices(linux: &Linux) -> Result<(), SpecError> {
    for (i, d) in linux.devices().iter().flatten().enumerate() {
        if d.path().as_os_str().is_empty() {
            return Err(SpecError::Empty {
                field: at("linux.devices", i, "path"),
            });
        }
        match d.typ() {
            LinuxDeviceType::A => {
                return Err(SpecError::DeviceType {
                    field: at("linux.devices", i, "type"),
                    value: "a".into(),
                })
            }
            // A FIFO has no device number.
            LinuxDeviceType::P => continue,
            LinuxDeviceType::B | LinuxDeviceType::C | LinuxDeviceType::U => {}
        }
        for (field, value, max) in [
            ("major", d.major(), MAX_MAJOR),
            ("minor", d.minor(), MAX_MINOR),
        ] {
            if !(0..=max).contains(&value) {
                return Err(SpecError::DeviceNumber {
                    field: at("linux.devices", i, field),
                    value,
                    max,
                });
            }
        }
    }
    Ok(())
}

/// runc's rules: a sysctl must belong to a namespace the container owns.
fn sysctls(linux: &Linux) -> Result<(), SpecError> {
    let Some(sysctl) = linux.sysctl() else {
        return Ok(());
    };
    let mut keys: Vec<&String> = sysctl.keys().collect();
    keys.sort();
    for key in keys {
        let name = key.replace('/', ".");
        let field = format!("linux.sysctl[{key:?}]");
        let refuse = |reason| {
            Err(SpecError::Sysctl {
                field: field.clone(),
                reason,
            })
        };
        if IPC_SYSCTLS.contains(&name.as_str()) || name.starts_with("fs.mqueue.") {
            if !has(linux, LinuxNamespaceType::Ipc) {
                return refuse("not allowed in the host's ipc namespace");
            }
        } else if name.starts_with("net.") {
            if !has(linux, LinuxNamespaceType::Network) {
                return refuse("not allowed in the host's network namespace");
            }
        } else if name == "kernel.domainname" {
            if !has(linux, LinuxNamespaceType::Uts) {
                return refuse("not allowed in the host's uts namespace");
            }
        } else if name == "kernel.hostname" {
            return refuse("conflicts with the \"hostname\" field; set that instead");
        } else {
            return refuse("not in a namespace of the container: it would change the host");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::validate::test_support::spec;
    use serde_json::json;

    fn err(over: serde_json::Value) -> String {
        let s = spec(json!({ "linux": over }));
        check(s.linux().as_ref().expect("linux"))
            .expect_err("invalid")
            .to_string()
    }

    fn ok(over: serde_json::Value) {
        let s = spec(json!({ "linux": over }));
        check(s.linux().as_ref().expect("linux")).expect("valid");
    }

    #[test]
    fn devices() {
        let dev = |d: serde_json::Value| json!({"devices": [d]});
        assert_eq!(
            err(dev(
                json!({"path": "/dev/x", "type": "a", "major": 1, "minor": 3})
            )),
            "linux.devices[0].type: \"a\" is not a device node type (expected c, b, u or p)"
        );
        assert!(err(dev(
            json!({"path": "/dev/x", "type": "c", "major": -1, "minor": 3})
        ))
        .starts_with("linux.devices[0].major: -1 is out of range"));
        assert!(err(dev(
            json!({"path": "/dev/x", "type": "b", "major": 8, "minor": 1 << 20})
        ))
        .starts_with("linux.devices[0].minor:"));
        ok(dev(json!({"path": "/dev/x", "type": "p"})));
        ok(dev(
            json!({"path": "/dev/x", "type": "u", "major": 1, "minor": 3}),
        ));
    }

    #[test]
    fn sysctls_need_their_namespace() {
        let only = |types: &[&str], key: &str| {
            let ns: Vec<_> = types.iter().map(|t| json!({"type": t})).collect();
            json!({"namespaces": ns, "sysctl": {key: "1"}})
        };
        let e = err(only(&["pid"], "net.ipv4.ip_forward"));
        assert_eq!(
            e,
            "linux.sysctl[\"net.ipv4.ip_forward\"]: not allowed in the host's network namespace"
        );
        assert!(err(only(&["pid"], "kernel.msgmax")).contains("ipc namespace"));
        assert!(err(only(&["pid"], "fs.mqueue.msg_max")).contains("ipc namespace"));
        assert!(err(only(&["ipc", "network", "uts"], "vm.swappiness")).contains("change the host"));
        assert!(err(only(&["uts"], "kernel.hostname")).contains("hostname"));
        ok(only(&["network"], "net/ipv4/ip_forward"));
        ok(only(&["ipc"], "kernel.shmmax"));
        ok(only(&["uts"], "kernel.domainname"));
    }

    #[test]
    fn propagation() {
        for p in PROPAGATIONS {
            ok(json!({ "rootfsPropagation": p }));
        }
        assert!(err(json!({"rootfsPropagation": "bogus"}))
            .starts_with("linux.rootfsPropagation: unknown value \"bogus\""));
    }
}
