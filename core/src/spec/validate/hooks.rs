//! `hooks`: programs that must exist before the container does.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use libcontainer::oci_spec::runtime::{Hook, Spec};
use nix::fcntl::OFlag;

use super::{at, inroot, SpecError};

/// Whether a mode says "a file someone may execute".
fn executable(mode: u32) -> bool {
    mode & libc::S_IFMT == libc::S_IFREG && mode & 0o111 != 0
}

pub(super) fn check(spec: &Spec, rootfs: Option<&Path>) -> Result<(), SpecError> {
    let Some(hooks) = spec.hooks() else {
        return Ok(());
    };
    // Run by the runtime before pivot_root: host paths. poststop hooks are
    // left out: runc runs them at delete and only logs their failures.
    let host_side = [
        ("hooks.prestart", hooks.prestart()),
        ("hooks.createRuntime", hooks.create_runtime()),
        ("hooks.createContainer", hooks.create_container()),
        ("hooks.poststart", hooks.poststart()),
    ];
    for (list, entries) in host_side {
        for (i, hook) in entries.iter().flatten().enumerate() {
            common(list, i, hook)?;
            let path = hook.path();
            let field = at(list, i, "path");
            let meta = fs::metadata(path).map_err(|source| match source.kind() {
                std::io::ErrorKind::NotFound => SpecError::Missing {
                    field: field.clone(),
                    path: path.clone(),
                    source,
                },
                _ => SpecError::Unusable {
                    field: field.clone(),
                    path: path.clone(),
                    source,
                },
            })?;
            if !executable(meta.permissions().mode()) {
                return Err(SpecError::NotExecutable {
                    field,
                    path: path.clone(),
                });
            }
        }
    }
    for (i, hook) in hooks.start_container().iter().flatten().enumerate() {
        common("hooks.startContainer", i, hook)?;
        if let Some(rootfs) = rootfs {
            in_container(spec, rootfs, &at("hooks.startContainer", i, "path"), hook)?;
        }
    }
    Ok(())
}

fn common(list: &str, i: usize, hook: &Hook) -> Result<(), SpecError> {
    let path = hook.path();
    if path.as_os_str().is_empty() {
        return Err(SpecError::Empty {
            field: at(list, i, "path"),
        });
    }
    if !path.is_absolute() {
        return Err(SpecError::NotAbsolute {
            field: at(list, i, "path"),
            value: path.clone(),
        });
    }
    if let Some(t) = hook.timeout() {
        if t <= 0 {
            return Err(SpecError::HookTimeout {
                field: at(list, i, "timeout"),
                value: t,
            });
        }
    }
    Ok(())
}

/// startContainer hooks run inside the container: their path is looked up
/// in the rootfs, unless a mount may provide it.
fn in_container(spec: &Spec, rootfs: &Path, field: &str, hook: &Hook) -> Result<(), SpecError> {
    let path = hook.path();
    let under_mount = spec.mounts().iter().flatten().any(|m| {
        let dest = Path::new("/").join(m.destination());
        dest != Path::new("/") && path.starts_with(&dest)
    });
    if under_mount {
        return Ok(());
    }
    let unusable = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::NotFound => SpecError::Missing {
            field: field.into(),
            path: path.clone(),
            source,
        },
        _ => SpecError::Unusable {
            field: field.into(),
            path: path.clone(),
            source,
        },
    };
    let root = inroot::open_root(rootfs).map_err(unusable)?;
    let fd = inroot::open(&root, path, OFlag::O_PATH).map_err(unusable)?;
    let stat = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&fd))
        .map_err(|e| unusable(e.into()))?;
    if !executable(stat.st_mode) {
        return Err(SpecError::NotExecutable {
            field: field.into(),
            path: path.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::validate::test_support::spec;
    use serde_json::json;

    fn err(hooks: serde_json::Value, rootfs: &Path) -> String {
        check(&spec(json!({ "hooks": hooks })), Some(rootfs))
            .expect_err("invalid")
            .to_string()
    }

    #[test]
    fn host_hooks_must_be_executable_files() {
        let dir = tempfile::tempdir().expect("dir");
        let plain = dir.path().join("plain");
        fs::write(&plain, "#!/bin/sh\n").expect("plain");
        let r = dir.path();
        assert_eq!(
            err(
                json!({"prestart": [{"path": "/bin/true"}, {"path": "/no/such/hook"}]}),
                r
            ),
            "hooks.prestart[1].path: /no/such/hook does not exist"
        );
        assert_eq!(
            err(json!({"createRuntime": [{"path": "bin/true"}]}), r),
            "hooks.createRuntime[0].path: \"bin/true\" is not an absolute path"
        );
        assert_eq!(
            err(json!({"poststart": [{"path": plain}]}), r),
            format!(
                "hooks.poststart[0].path: {} is not an executable file",
                plain.display()
            )
        );
        assert_eq!(
            err(json!({"createContainer": [{"path": "/bin"}]}), r),
            "hooks.createContainer[0].path: /bin is not an executable file"
        );
        assert!(err(
            json!({"prestart": [{"path": "/bin/true", "timeout": 0}]}),
            r
        )
        .starts_with("hooks.prestart[0].timeout:"));
        check(
            &spec(json!({"hooks": {"poststop": [{"path": "/no/such/hook"}]}})),
            Some(r),
        )
        .expect("poststop is not checked");
    }

    #[test]
    fn start_container_hooks_are_looked_up_in_the_rootfs() {
        let rootfs = tempfile::tempdir().expect("rootfs");
        fs::create_dir(rootfs.path().join("bin")).expect("bin");
        let hook = rootfs.path().join("bin/hook");
        fs::write(&hook, "#!/bin/sh\n").expect("hook");
        fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).expect("chmod");
        let r = rootfs.path();
        check(
            &spec(json!({"hooks": {"startContainer": [{"path": "/bin/hook"}]}})),
            Some(r),
        )
        .expect("in rootfs");
        assert_eq!(
            err(json!({"startContainer": [{"path": "/bin/true"}]}), r),
            "hooks.startContainer[0].path: /bin/true does not exist"
        );
        check(
            &spec(
                json!({"mounts": [{"destination": "/opt", "type": "bind", "source": "/usr"}],
                          "hooks": {"startContainer": [{"path": "/opt/hook"}]}}),
            ),
            Some(r),
        )
        .expect("a mount may provide it");
    }
}
