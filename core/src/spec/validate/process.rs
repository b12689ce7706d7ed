//! `process`: what execve and the kernel would refuse later, nameless.

use std::fs;
use std::path::Path;

use libcontainer::oci_spec::runtime::{PosixRlimitType, Process};

use super::{at, SpecError};

/// The kernel's limit for one argv or envp string: MAX_ARG_STRLEN, 32 pages.
fn max_arg_strlen() -> usize {
    32 * page_size()
}

fn page_size() -> usize {
    // SAFETY: sysconf only reads a constant of the running system.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|n| *n > 0).unwrap_or(4096)
}

/// What execve accepts for argv + envp together (strings, their NULs and
/// the pointer arrays): sysconf(ARG_MAX), a quarter of the stack limit the
/// container inherits from pinc, or the kernel's rule for the spec's own
/// RLIMIT_STACK (a quarter, at most 6 MiB, at least MAX_ARG_STRLEN).
fn arg_max(p: &Process) -> Option<usize> {
    let stack = p
        .rlimits()
        .iter()
        .flatten()
        .rfind(|r| r.typ() == PosixRlimitType::RlimitStack)
        .map(|r| r.soft());
    if let Some(stack) = stack {
        let quarter = usize::try_from(stack / 4).unwrap_or(usize::MAX);
        return Some(quarter.min(6 << 20).max(max_arg_strlen()));
    }
    // SAFETY: sysconf only reads a limit of the calling process.
    let n = unsafe { libc::sysconf(libc::_SC_ARG_MAX) };
    usize::try_from(n).ok().filter(|n| *n > 0)
}

pub(super) fn check(p: &Process, host: &Path) -> Result<(), SpecError> {
    let args = p.args().as_deref().unwrap_or_default();
    if args.is_empty() {
        return Err(SpecError::Empty {
            field: "process.args".into(),
        });
    }
    if args[0].is_empty() {
        return Err(SpecError::Empty {
            field: "process.args[0]".into(),
        });
    }
    let cwd = p.cwd();
    if cwd.as_os_str().is_empty() {
        return Err(SpecError::Empty {
            field: "process.cwd".into(),
        });
    }
    if !cwd.is_absolute() {
        return Err(SpecError::NotAbsolute {
            field: "process.cwd".into(),
            value: cwd.clone(),
        });
    }
    let env = p.env().as_deref().unwrap_or_default();
    for (i, kv) in env.iter().enumerate() {
        if !kv.contains('=') {
            return Err(SpecError::EnvFormat {
                field: at("process.env", i, ""),
                value: kv.clone(),
            });
        }
    }
    exec_size(args, env, max_arg_strlen(), arg_max(p))?;
    for (i, r) in p.rlimits().iter().flatten().enumerate() {
        if r.soft() > r.hard() {
            return Err(SpecError::Rlimit {
                field: at("process.rlimits", i, ""),
                soft: r.soft(),
                hard: r.hard(),
            });
        }
    }
    if let Some(adj) = p.oom_score_adj() {
        if !(-1000..=1000).contains(&adj) {
            return Err(SpecError::OutOfRange {
                field: "process.oomScoreAdj".into(),
                value: adj.into(),
                min: -1000,
                max: 1000,
            });
        }
    }
    if p.selinux_label().as_deref().is_some_and(|l| !l.is_empty())
        && !host.join("sys/fs/selinux/enforce").exists()
    {
        return Err(SpecError::LsmDisabled {
            field: "process.selinuxLabel".into(),
            lsm: "SELinux",
        });
    }
    if p.apparmor_profile()
        .as_deref()
        .is_some_and(|l| !l.is_empty())
    {
        apparmor(host)?;
    }
    Ok(())
}

/// Refuses strings and totals execve would fail with E2BIG, which the
/// container's init reports as a bare exit status.
fn exec_size(
    args: &[String],
    env: &[String],
    max_string: usize,
    arg_max: Option<usize>,
) -> Result<(), SpecError> {
    let lists = [("process.args", args), ("process.env", env)];
    for (list, strings) in lists {
        for (i, s) in strings.iter().enumerate() {
            if s.len() + 1 > max_string {
                return Err(SpecError::StringTooLong {
                    field: at(list, i, ""),
                    len: s.len(),
                    max: max_string - 1,
                });
            }
        }
    }
    let Some(max) = arg_max else {
        return Ok(());
    };
    // As the kernel counts: each string with its NUL, and one pointer each.
    let pointer = std::mem::size_of::<usize>();
    let total: usize = args.iter().chain(env).map(|s| s.len() + 1 + pointer).sum();
    if total > max {
        return Err(SpecError::ArgsTooLarge { total, max });
    }
    Ok(())
}

/// An AppArmor profile needs AppArmor in the kernel.
fn apparmor(host: &Path) -> Result<(), SpecError> {
    let enabled = fs::read_to_string(host.join("sys/module/apparmor/parameters/enabled"))
        .is_ok_and(|s| s.trim() == "Y");
    if enabled {
        Ok(())
    } else {
        Err(SpecError::LsmDisabled {
            field: "process.apparmorProfile".into(),
            lsm: "AppArmor",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::validate::test_support::spec;
    use serde_json::json;

    fn err(over: serde_json::Value) -> String {
        let s = spec(json!({ "process": over }));
        let host = tempfile::tempdir().expect("host");
        check(s.process().as_ref().expect("process"), host.path())
            .expect_err("invalid")
            .to_string()
    }

    #[test]
    fn args_cwd_and_env_are_named() {
        assert_eq!(err(json!({"args": []})), "process.args: must not be empty");
        assert_eq!(
            err(json!({"args": [""]})),
            "process.args[0]: must not be empty"
        );
        assert_eq!(
            err(json!({"cwd": "tmp"})),
            "process.cwd: \"tmp\" is not an absolute path"
        );
        assert_eq!(err(json!({"cwd": ""})), "process.cwd: must not be empty");
        assert_eq!(
            err(json!({"env": ["A=1", "NOEQUALS"]})),
            "process.env[1]: \"NOEQUALS\" is not KEY=VALUE"
        );
    }

    #[test]
    fn limits_are_checked() {
        assert!(err(json!({"oomScoreAdj": 1001})).starts_with("process.oomScoreAdj: 1001"));
        assert!(err(json!({"oomScoreAdj": -1001})).starts_with("process.oomScoreAdj"));
        let e = err(json!({"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}]}));
        assert!(e.starts_with("process.rlimits[0]: soft limit 10"), "{e}");
        let e = err(json!({"selinuxLabel": "system_u:system_r:x:s0"}));
        assert!(e.contains("SELinux is not enabled"), "{e}");
        let e = err(json!({"apparmorProfile": "p"}));
        assert!(e.contains("AppArmor is not enabled"), "{e}");
    }

    #[test]
    fn execve_sizes() {
        let args = vec!["true".to_string()];
        let long = vec![format!("X={}", "a".repeat(100))];
        let e = exec_size(&args, &long, 64, None).expect_err("long");
        assert!(
            e.to_string().starts_with("process.env[0]: 102 bytes"),
            "{e}"
        );
        let many: Vec<String> = (0..10).map(|i| format!("X{i}=abcdef")).collect();
        let e = exec_size(&args, &many, 64, Some(100)).expect_err("total");
        assert!(
            e.to_string().starts_with("process.args + process.env:"),
            "{e}"
        );
        exec_size(&args, &many, 64, Some(10_000)).expect("fits");
    }

    #[test]
    fn the_specs_stack_limit_sets_the_execve_limit() {
        let with_stack = |soft: u64| {
            let s = spec(json!({"process": {"rlimits": [
                {"type": "RLIMIT_STACK", "soft": soft, "hard": soft}]}}));
            arg_max(s.process().as_ref().expect("process"))
        };
        assert_eq!(with_stack(8 << 20), Some(2 << 20));
        assert_eq!(with_stack(u64::MAX), Some(6 << 20));
        assert_eq!(with_stack(0), Some(max_arg_strlen()));
    }

    #[test]
    fn a_plain_process_passes() {
        let s = spec(json!({"process": {"oomScoreAdj": 1000}}));
        check(s.process().as_ref().expect("process"), Path::new("/")).expect("valid");
    }
}
