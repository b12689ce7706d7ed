//! `spec`: a starting config.json, as `runc spec` writes one.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use libcontainer::oci_spec::runtime::{
    LinuxDeviceCgroup, LinuxIdMapping, LinuxIdMappingBuilder, Spec,
};

use crate::error::{Error, Result};

/// The default spec (`rootless`: a user namespace mapping the caller to root,
/// no network namespace, /sys bind-mounted), with `sh` as the process.
pub fn template(rootless: bool) -> Spec {
    let mut spec = if rootless {
        let (uid, gid) = (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        );
        let mut spec = Spec::rootless(uid, gid);
        // With subordinate ids (and newuidmap), map a whole range too.
        if let Some((sub_u, sub_g)) = crate::rootless::subid::for_user(Path::new("/"), uid, gid) {
            if let Some(mut linux) = spec.linux().clone() {
                linux
                    .set_uid_mappings(Some(oci_maps(&crate::rootless::subid::maps(
                        uid,
                        Some(sub_u),
                    ))))
                    .set_gid_mappings(Some(oci_maps(&crate::rootless::subid::maps(
                        gid,
                        Some(sub_g),
                    ))));
                spec.set_linux(Some(linux));
            }
        }
        spec
    } else {
        Spec::default()
    };
    spec.set_hostname(Some("pinc".to_string()));
    // No inheritable capabilities, as runc's template since 1.1.2
    // (CVE-2022-29162): with them, a binary carrying file inheritable
    // capabilities gains those capabilities in the container.
    if let Some(mut process) = spec.process().clone() {
        if let Some(mut caps) = process.capabilities().clone() {
            caps.set_inheritable(None);
            process.set_capabilities(Some(caps));
        }
        spec.set_process(Some(process));
    }
    // Deny every device first, as runc's template does; libcontainer then
    // allows its default set (null, zero, tty, ...). An empty list would
    // leave the device cgroup open to every host device.
    if !rootless {
        if let Some(mut linux) = spec.linux().clone() {
            let mut resources = linux.resources().clone().unwrap_or_default();
            let mut deny = LinuxDeviceCgroup::default();
            deny.set_allow(false).set_access(Some("rwm".to_string()));
            resources.set_devices(Some(vec![deny]));
            linux.set_resources(Some(resources));
            spec.set_linux(Some(linux));
        }
    }
    spec
}

fn oci_maps(maps: &[crate::rootless::subid::IdMap]) -> Vec<LinuxIdMapping> {
    maps.iter()
        .filter_map(|m| {
            LinuxIdMappingBuilder::default()
                .container_id(m.container)
                .host_id(m.host)
                .size(m.size)
                .build()
                .ok()
        })
        .collect()
}

/// Writes `<bundle>/config.json`; refuses to overwrite one.
pub fn write(bundle: &Path, rootless: bool) -> Result<()> {
    let path = bundle.join("config.json");
    let json = serde_json::to_vec_pretty(&template(rootless)).map_err(|source| Error::Json {
        what: "spec".into(),
        source,
    })?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::ConfigExists { path: path.clone() },
            _ => Error::Io {
                what: "failed to create",
                path: path.clone(),
                source: e,
            },
        })?;
    file.write_all(&json)
        .map_err(Error::io("failed to write", &path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), false).expect("first");
        let text = std::fs::read_to_string(dir.path().join("config.json")).expect("read");
        let spec: Spec = serde_json::from_str(&text).expect("parses");
        assert_eq!(spec.hostname().as_deref(), Some("pinc"));
        let rules = spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().as_ref())
            .and_then(|r| r.devices().clone())
            .expect("device rules");
        assert!(!rules[0].allow(), "deny-all first, as runc's template");
        assert!(
            !text.contains("inheritable"),
            "no inheritable capabilities, as runc's template: {text}"
        );
        let path = dir.path().join("config.json");
        assert!(
            matches!(write(dir.path(), false), Err(Error::ConfigExists { path: p }) if p == path),
            "second write must refuse"
        );
    }

    #[test]
    fn rootless_maps_the_caller() {
        let spec = template(true);
        let linux = spec.linux().as_ref().expect("linux");
        let map = &linux.uid_mappings().as_ref().expect("uid map")[0];
        assert_eq!(map.host_id(), nix::unistd::getuid().as_raw());
        assert_eq!(map.container_id(), 0);
    }
}
