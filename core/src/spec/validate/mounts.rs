//! `mounts`: destinations, bind sources and filesystem types, which
//! libcontainer reports only as "failed to prepare rootfs".

use std::fs;
use std::path::Path;

use libcontainer::oci_spec::runtime::{Mount, Spec};

use super::{at, SpecError};

/// Filesystem types the kernel can mount now or load a module for.
struct Filesystems {
    /// `None` when /proc/filesystems is unreadable: types are not checked.
    known: Option<Vec<String>>,
    /// modules.alias of the running kernel ("alias fs-<type> <module>").
    aliases: String,
}

impl Filesystems {
    fn read(host: &Path) -> Self {
        let known = fs::read_to_string(host.join("proc/filesystems"))
            .ok()
            .map(|text| {
                text.lines()
                    .filter_map(|l| l.split_whitespace().last())
                    .map(str::to_string)
                    .collect()
            });
        let release =
            fs::read_to_string(host.join("proc/sys/kernel/osrelease")).unwrap_or_default();
        let aliases = fs::read_to_string(
            host.join("lib/modules")
                .join(release.trim())
                .join("modules.alias"),
        )
        .unwrap_or_default();
        Self { known, aliases }
    }

    fn knows(&self, fstype: &str) -> bool {
        let Some(known) = &self.known else {
            return true;
        };
        // FUSE subtypes ("fuse.sshfs") are mounted by the fuse driver.
        let base = fstype.split('.').next().unwrap_or(fstype);
        if known.iter().any(|k| k == fstype || k == base) {
            return true;
        }
        let alias = format!("alias fs-{base} ");
        self.aliases.lines().any(|l| l.starts_with(&alias))
    }
}

pub(super) fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

pub(super) fn check(spec: &Spec, bundle: &Path, host: &Path) -> Result<(), SpecError> {
    let Some(mounts) = spec.mounts() else {
        return Ok(());
    };
    let filesystems = Filesystems::read(host);
    for (i, m) in mounts.iter().enumerate() {
        // A relative destination is taken from "/" (runc warns and does the same).
        if m.destination().as_os_str().is_empty() {
            return Err(SpecError::Empty {
                field: at("mounts", i, "destination"),
            });
        }
        if is_bind(m) {
            let Some(source) = m.source() else {
                return Err(SpecError::Empty {
                    field: at("mounts", i, "source"),
                });
            };
            // Relative sources are relative to the bundle, as in runc.
            let path = bundle.join(source);
            if let Err(e) = fs::metadata(&path) {
                let field = at("mounts", i, "source");
                return Err(match e.kind() {
                    std::io::ErrorKind::NotFound => SpecError::Missing {
                        field,
                        path,
                        source: e,
                    },
                    _ => SpecError::Unusable {
                        field,
                        path,
                        source: e,
                    },
                });
            }
            continue;
        }
        match m.typ().as_deref() {
            None | Some("") => {
                return Err(SpecError::NoMountType {
                    field: at("mounts", i, "type"),
                })
            }
            Some(t) if !filesystems.knows(t) => {
                return Err(SpecError::UnknownFilesystem {
                    field: at("mounts", i, "type"),
                    fstype: t.to_string(),
                })
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::validate::test_support::spec;
    use serde_json::json;

    fn host() -> tempfile::TempDir {
        let host = tempfile::tempdir().expect("host");
        fs::create_dir_all(host.path().join("proc/sys/kernel")).expect("proc");
        fs::write(
            host.path().join("proc/filesystems"),
            "nodev\tproc\nnodev\ttmpfs\n\text4\nnodev\tfuse\n",
        )
        .expect("filesystems");
        fs::write(host.path().join("proc/sys/kernel/osrelease"), "6.1.0-x\n").expect("release");
        let modules = host.path().join("lib/modules/6.1.0-x");
        fs::create_dir_all(&modules).expect("modules");
        fs::write(modules.join("modules.alias"), "alias fs-xfs xfs\n").expect("alias");
        host
    }

    fn check_mounts(mounts: serde_json::Value, bundle: &Path) -> Result<(), SpecError> {
        let h = host();
        check(&spec(json!({ "mounts": mounts })), bundle, h.path())
    }

    #[test]
    fn types_come_from_proc_filesystems_and_module_aliases() {
        let b = tempfile::tempdir().expect("bundle");
        for ok in ["proc", "ext4", "xfs", "fuse.sshfs"] {
            check_mounts(
                json!([{"destination": "/x", "type": ok, "source": "s"}]),
                b.path(),
            )
            .expect(ok);
        }
        let e = check_mounts(
            json!([{"destination": "/p", "type": "proc", "source": "proc"},
                   {"destination": "/x", "type": "nosuchfs", "source": "s"}]),
            b.path(),
        )
        .expect_err("unknown type");
        assert!(
            e.to_string()
                .starts_with("mounts[1].type: unknown filesystem type \"nosuchfs\""),
            "{e}"
        );
        let e = check_mounts(json!([{"destination": "/x", "source": "s"}]), b.path())
            .expect_err("no type");
        assert!(e.to_string().starts_with("mounts[0].type: no type"), "{e}");
    }

    #[test]
    fn bind_sources_must_exist_relative_to_the_bundle() {
        let b = tempfile::tempdir().expect("bundle");
        fs::create_dir(b.path().join("data")).expect("data");
        check_mounts(
            json!([{"destination": "/d", "source": "data", "options": ["rbind"]}]),
            b.path(),
        )
        .expect("relative source");
        let e = check_mounts(
            json!([{"destination": "/d", "type": "bind", "source": "/no/such/src"}]),
            b.path(),
        )
        .expect_err("missing source");
        assert_eq!(
            e.to_string(),
            "mounts[0].source: /no/such/src does not exist"
        );
        let e = check_mounts(
            json!([{"destination": "", "type": "tmpfs", "source": "tmpfs"}]),
            b.path(),
        )
        .expect_err("empty destination");
        assert_eq!(e.to_string(), "mounts[0].destination: must not be empty");
    }
}
