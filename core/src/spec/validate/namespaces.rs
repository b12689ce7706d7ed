//! `linux.namespaces` and the fields that need one of them.

use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use libcontainer::oci_spec::runtime::{Linux, LinuxNamespaceType, Spec};

use super::{at, SpecError};

/// statfs f_type of the kernel's namespace files (/proc/<pid>/ns/*).
const NSFS_MAGIC: i64 = 0x6e73_6673;
/// ioctl(2) NS_GET_NSTYPE, _IO(0xb7, 0x3): the CLONE_NEW* type of an ns fd.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

/// The spec's name for a namespace type.
pub(super) fn name(kind: LinuxNamespaceType) -> &'static str {
    match kind {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

fn clone_flag(kind: LinuxNamespaceType) -> libc::c_int {
    match kind {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => libc::CLONE_NEWTIME,
    }
}

fn name_of_flag(flag: libc::c_int) -> &'static str {
    [
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Cgroup,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::User,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Time,
    ]
    .into_iter()
    .find(|k| clone_flag(*k) == flag)
    .map(name)
    .unwrap_or("unknown")
}

/// Whether the spec lists a namespace of `kind` (new or joined).
pub(super) fn has(linux: &Linux, kind: LinuxNamespaceType) -> bool {
    linux.namespaces().iter().flatten().any(|n| n.typ() == kind)
}

/// `as_root`: pinc runs as root, where nothing fills in missing mappings
/// (rootless mode maps the caller's own ids).
pub(super) fn check(spec: &Spec, linux: &Linux, as_root: bool) -> Result<(), SpecError> {
    let namespaces = linux.namespaces().as_deref().unwrap_or_default();
    for (i, ns) in namespaces.iter().enumerate() {
        if let Some(first) = namespaces[..i].iter().position(|n| n.typ() == ns.typ()) {
            return Err(SpecError::DuplicateNamespace {
                field: at("linux.namespaces", i, ""),
                kind: name(ns.typ()).to_string(),
                first,
            });
        }
        if let Some(path) = ns.path() {
            check_path(&at("linux.namespaces", i, "path"), path, ns.typ())?;
        }
    }
    let new_user_ns = namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    if as_root && new_user_ns {
        for (field, maps) in [
            ("linux.uidMappings", linux.uid_mappings()),
            ("linux.gidMappings", linux.gid_mappings()),
        ] {
            if maps.as_deref().unwrap_or_default().is_empty() {
                return Err(SpecError::NeedsMappings {
                    field: field.into(),
                });
            }
        }
    }
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty())
        && !has(linux, LinuxNamespaceType::Uts)
    {
        return Err(SpecError::NeedsNamespace {
            field: "hostname".into(),
            namespace: "uts",
        });
    }
    Ok(())
}

/// A namespace to join must be a namespace file of the same type.
fn check_path(field: &str, path: &Path, kind: LinuxNamespaceType) -> Result<(), SpecError> {
    let stat = nix::sys::statfs::statfs(path).map_err(|e| {
        let source = std::io::Error::from(e);
        match source.kind() {
            std::io::ErrorKind::NotFound => SpecError::Missing {
                field: field.into(),
                path: path.into(),
                source,
            },
            _ => SpecError::Unusable {
                field: field.into(),
                path: path.into(),
                source,
            },
        }
    })?;
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between libcs.
    if stat.filesystem_type().0 as i64 != NSFS_MAGIC {
        return Err(SpecError::NotNamespace {
            field: field.into(),
            path: path.into(),
        });
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| SpecError::Unusable {
            field: field.into(),
            path: path.into(),
            source,
        })?;
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the open fd.
    let found = unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE as _) };
    // Kernels before 4.11 lack the ioctl: setns reports a mismatch then.
    if found >= 0 && found != clone_flag(kind) {
        return Err(SpecError::NamespaceKind {
            field: field.into(),
            path: path.into(),
            kind: name(kind).into(),
            found: name_of_flag(found),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::validate::test_support::spec;
    use serde_json::json;

    fn err(over: serde_json::Value) -> String {
        let s = spec(over);
        check(&s, s.linux().as_ref().expect("linux"), true)
            .expect_err("invalid")
            .to_string()
    }

    #[test]
    fn duplicates_and_hostname() {
        let e = err(
            json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "uts"}, {"type": "pid"}]}}),
        );
        assert_eq!(
            e,
            "linux.namespaces[2]: duplicate pid namespace (already in linux.namespaces[0])"
        );
        let e = err(json!({"hostname": "h", "linux": {"namespaces": [{"type": "pid"}]}}));
        assert_eq!(
            e,
            "hostname: set, but linux.namespaces has no uts namespace"
        );
    }

    #[test]
    fn a_new_user_namespace_needs_mappings_as_root() {
        let userns = json!({"linux": {"namespaces": [{"type": "user"}]}});
        assert_eq!(
            err(userns.clone()),
            "linux.uidMappings: a new user namespace needs at least one mapping"
        );
        let s = spec(userns);
        check(&s, s.linux().as_ref().expect("linux"), false).expect("rootless maps own ids");
        let maps = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
        let s = spec(json!({"linux": {"namespaces": [{"type": "user"}], "uidMappings": maps}}));
        let e = check(&s, s.linux().as_ref().expect("linux"), true).expect_err("no gid maps");
        assert!(e.to_string().starts_with("linux.gidMappings:"), "{e}");
    }

    #[test]
    fn paths_must_be_namespaces_of_the_type() {
        let ns = |path: &str| json!({"linux": {"namespaces": [{"type": "network", "path": path}]}});
        let e = err(ns("/no/such/ns"));
        assert_eq!(e, "linux.namespaces[0].path: /no/such/ns does not exist");
        let e = err(ns("/proc/self/status"));
        assert_eq!(
            e,
            "linux.namespaces[0].path: /proc/self/status is not a namespace file"
        );
        let e = err(ns("/proc/self/ns/ipc"));
        assert_eq!(
            e,
            "linux.namespaces[0].path: /proc/self/ns/ipc has namespace type ipc, expected network"
        );
        let s = spec(ns("/proc/self/ns/net"));
        check(&s, s.linux().as_ref().expect("linux"), true).expect("own netns");
    }
}
