//! The process an exec runs, built the way runc builds it.
//!
//! libcontainer's tenant builder takes a process only from a file or from a
//! few CLI fields, and drops the rest of the container's process (rlimits,
//! umask, additionalGids, apparmor, selinux label, ...). pinc therefore always
//! writes the complete process itself and hands it over as a file:
//! - without `--process`, the container's own process is the base; the CLI
//!   replaces args, and overrides cwd, user, env entries, no-new-privileges,
//!   and adds capabilities and groups (runc's `exec` does the same);
//! - with `--process FILE`, the file is taken as it is, and what it leaves
//!   out (capabilities, rlimits, noNewPrivileges, apparmor, selinux label,
//!   umask, execCPUAffinity) comes from the container, as runc's setns init
//!   falls back to the container's config.

use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::{
    Capabilities, Capability, ExecCPUAffinity, LinuxCapabilities, Process,
};

/// What the caller of `exec` asked for, beside a process file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    pub user: Option<(u32, Option<u32>)>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub tty: bool,
    pub apparmor: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("the container's spec has no process to exec from")]
    NoContainerProcess,
    #[error("exec needs a command or --process")]
    NoCommand,
    #[error("--process {path}: process.args must not be empty")]
    EmptyArgs { path: PathBuf },
    #[error("--cwd {0:?}: the working directory must be an absolute path")]
    RelativeCwd(PathBuf),
    #[error("--process {path}: process.cwd {cwd:?} must be an absolute path")]
    RelativeFileCwd { path: PathBuf, cwd: PathBuf },
    #[error("--cap {0:?}: unknown capability")]
    UnknownCapability(String),
    #[error("invalid execCPUAffinity {0:?}")]
    Affinity(String, #[source] serde_json::Error),
    #[error("failed to read the process file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid process file {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// Parses a capability as runc takes it: `CAP_NET_ADMIN` or `NET_ADMIN`.
fn capability(name: &str) -> Result<Capability, ProcessError> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    serde_json::from_value(serde_json::Value::String(full))
        .map_err(|_| ProcessError::UnknownCapability(name.to_string()))
}

/// A capability set with every list present, so that libcontainer drops
/// what is not listed (it leaves a set untouched when it is absent).
pub fn complete(caps: Option<&LinuxCapabilities>) -> LinuxCapabilities {
    let set = |s: Option<&Capabilities>| Some(s.cloned().unwrap_or_default());
    let mut out = LinuxCapabilities::default();
    out.set_bounding(set(caps.and_then(|c| c.bounding().as_ref())))
        .set_effective(set(caps.and_then(|c| c.effective().as_ref())))
        .set_permitted(set(caps.and_then(|c| c.permitted().as_ref())))
        .set_inheritable(set(caps.and_then(|c| c.inheritable().as_ref())))
        .set_ambient(set(caps.and_then(|c| c.ambient().as_ref())));
    out
}

/// Adds `--cap` capabilities as runc does: to bounding, effective and
/// permitted; to ambient only when the process already has inheritable ones
/// (ambient needs inheritable, and exec never adds inheritable: CVE-2022-29162).
fn add_caps(caps: &mut LinuxCapabilities, added: &[Capability]) {
    grant(caps, added);
    if caps.inheritable().as_ref().is_some_and(|i| !i.is_empty()) {
        let mut a = caps.ambient().clone().unwrap_or_default();
        a.extend(added.iter().copied());
        caps.set_ambient(Some(a));
    }
}

/// Adds capabilities to the bounding, effective and permitted sets.
pub(super) fn grant(caps: &mut LinuxCapabilities, added: &[Capability]) {
    let grow = |s: &Option<Capabilities>| {
        let mut s = s.clone().unwrap_or_default();
        s.extend(added.iter().copied());
        Some(s)
    };
    let (b, e, p) = (
        grow(caps.bounding()),
        grow(caps.effective()),
        grow(caps.permitted()),
    );
    caps.set_bounding(b).set_effective(e).set_permitted(p);
}

/// Sets `KEY=VALUE` in an environment list, replacing an earlier `KEY`.
fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let prefix = format!("{key}=");
    env.retain(|e| !e.starts_with(&prefix) && e != key);
    env.push(format!("{key}={value}"));
}

/// The container's CPU affinity for exec'd processes, as execCPUAffinity.
fn affinity(cpus: &str) -> Result<ExecCPUAffinity, ProcessError> {
    serde_json::from_value(serde_json::json!({ "final": cpus }))
        .map_err(|e| ProcessError::Affinity(cpus.to_string(), e))
}

/// Reads a `--process` file.
pub fn read_file(path: &Path) -> Result<Process, ProcessError> {
    let bytes = std::fs::read(path).map_err(|source| ProcessError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| ProcessError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// The exec'd process from a `--process` file, completed from the container's.
pub fn from_file(
    mut process: Process,
    path: &Path,
    container: &Process,
    container_affinity: Option<&str>,
) -> Result<Process, ProcessError> {
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(ProcessError::EmptyArgs {
            path: path.to_path_buf(),
        });
    }
    if !process.cwd().is_absolute() {
        return Err(ProcessError::RelativeFileCwd {
            path: path.to_path_buf(),
            cwd: process.cwd().clone(),
        });
    }
    let caps = complete(
        process
            .capabilities()
            .as_ref()
            .or(container.capabilities().as_ref()),
    );
    process.set_capabilities(Some(caps));
    if process.no_new_privileges().is_none() {
        process.set_no_new_privileges(container.no_new_privileges());
    }
    if process.rlimits().as_ref().is_none_or(|r| r.is_empty()) {
        process.set_rlimits(container.rlimits().clone());
    }
    if process.apparmor_profile().is_none() {
        process.set_apparmor_profile(container.apparmor_profile().clone());
    }
    if process.selinux_label().is_none() {
        process.set_selinux_label(container.selinux_label().clone());
    }
    if process.user().umask().is_none() {
        let umask = container.user().umask();
        process.user_mut().set_umask(umask);
    }
    if process.exec_cpu_affinity().is_none() {
        let inherited = match container_affinity {
            Some(cpus) => Some(affinity(cpus)?),
            None => container.exec_cpu_affinity().clone(),
        };
        process.set_exec_cpu_affinity(inherited);
    }
    Ok(process)
}

/// The exec'd process from the CLI: the container's process with the
/// caller's changes.
pub fn from_cli(
    container: &Process,
    o: &Overrides,
    container_affinity: Option<&str>,
) -> Result<Process, ProcessError> {
    if o.command.is_empty() {
        return Err(ProcessError::NoCommand);
    }
    let mut p = container.clone();
    p.set_args(Some(o.command.clone()));
    p.set_command_line(None);
    p.set_terminal(Some(o.tty));
    p.set_console_size(None);
    if let Some(cwd) = &o.cwd {
        if !cwd.is_absolute() {
            return Err(ProcessError::RelativeCwd(cwd.clone()));
        }
        p.set_cwd(cwd.clone());
    }
    let mut env = p.env().clone().unwrap_or_default();
    for (k, v) in &o.env {
        set_env(&mut env, k, v);
    }
    p.set_env(Some(env));
    if let Some((uid, gid)) = o.user {
        let user = p.user_mut();
        user.set_uid(uid);
        if let Some(gid) = gid {
            user.set_gid(gid);
        }
        // A different user does not keep the container user's name.
        user.set_username(None);
    }
    if !o.additional_gids.is_empty() {
        let user = p.user_mut();
        let mut gids = user.additional_gids().clone().unwrap_or_default();
        gids.extend(o.additional_gids.iter().copied());
        user.set_additional_gids(Some(gids));
    }
    let added = o
        .caps
        .iter()
        .map(|c| capability(c))
        .collect::<Result<Vec<_>, _>>()?;
    let mut caps = complete(p.capabilities().as_ref());
    add_caps(&mut caps, &added);
    p.set_capabilities(Some(caps));
    if o.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(profile) = &o.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(cpus) = container_affinity {
        if p.exec_cpu_affinity().is_none() {
            p.set_exec_cpu_affinity(Some(affinity(cpus)?));
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container() -> Process {
        serde_json::from_value(serde_json::json!({
            "terminal": true,
            "user": {"uid": 1000, "gid": 100, "umask": 23, "additionalGids": [5], "username": "u"},
            "args": ["sleep", "100"],
            "env": ["PATH=/bin", "FOO=bar"],
            "cwd": "/work",
            "capabilities": {
                "bounding": ["CAP_KILL", "CAP_CHOWN"],
                "effective": ["CAP_KILL"],
                "permitted": ["CAP_KILL"]
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1000, "soft": 900}],
            "apparmorProfile": "docker-default",
            "selinuxLabel": "system_u:system_r:container_t:s0"
        }))
        .expect("process")
    }

    fn names(s: &Option<Capabilities>) -> Vec<String> {
        let mut v: Vec<String> = s
            .as_ref()
            .expect("set present")
            .iter()
            .map(|c| c.to_string())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn cli_exec_inherits_the_container_process() {
        let o = Overrides {
            command: vec!["id".into()],
            ..Default::default()
        };
        let p = from_cli(&container(), &o, None).expect("process");
        assert_eq!(p.args().as_deref(), Some(&["id".to_string()][..]));
        assert_eq!(p.user().uid(), 1000);
        assert_eq!(p.user().gid(), 100);
        assert_eq!(p.user().umask(), Some(23));
        assert_eq!(p.user().additional_gids().as_deref(), Some(&[5][..]));
        assert_eq!(p.cwd(), Path::new("/work"));
        assert_eq!(p.rlimits().as_ref().map(|r| r.len()), Some(1));
        assert_eq!(p.apparmor_profile().as_deref(), Some("docker-default"));
        assert_eq!(p.terminal(), Some(false));
        let caps = p.capabilities().as_ref().expect("caps");
        assert_eq!(names(caps.effective()).len(), 1);
        // Absent sets become empty ones, so libcontainer drops them.
        assert!(caps.inheritable().as_ref().is_some_and(|s| s.is_empty()));
        assert!(caps.ambient().as_ref().is_some_and(|s| s.is_empty()));
    }

    #[test]
    fn cli_overrides_replace_and_add() {
        let o = Overrides {
            command: vec!["sh".into()],
            env: vec![("FOO".into(), "baz".into()), ("NEW".into(), "1".into())],
            cwd: Some("/tmp".into()),
            user: Some((0, None)),
            additional_gids: vec![7],
            caps: vec!["net_admin".into()],
            no_new_privs: true,
            tty: true,
            apparmor: None,
        };
        let p = from_cli(&container(), &o, Some("0-1")).expect("process");
        let env = p.env().clone().expect("env");
        assert!(env.contains(&"FOO=baz".to_string()), "{env:?}");
        assert!(!env.contains(&"FOO=bar".to_string()), "{env:?}");
        assert!(env.contains(&"NEW=1".to_string()));
        assert_eq!(p.user().uid(), 0);
        assert_eq!(p.user().gid(), 100, "runc keeps the container's gid");
        assert_eq!(p.user().additional_gids().as_deref(), Some(&[5, 7][..]));
        assert_eq!(p.no_new_privileges(), Some(true));
        assert_eq!(p.terminal(), Some(true));
        let caps = p.capabilities().as_ref().expect("caps");
        assert!(names(caps.effective()).contains(&"NET_ADMIN".to_string()));
        assert!(names(caps.bounding()).contains(&"NET_ADMIN".to_string()));
        assert!(caps.ambient().as_ref().is_some_and(|s| s.is_empty()));
        assert!(caps.inheritable().as_ref().is_some_and(|s| s.is_empty()));
        assert!(p.exec_cpu_affinity().is_some());
    }

    #[test]
    fn cli_refuses_what_runc_refuses() {
        let none = Overrides::default();
        assert!(matches!(
            from_cli(&container(), &none, None),
            Err(ProcessError::NoCommand)
        ));
        let rel = Overrides {
            command: vec!["x".into()],
            cwd: Some("rel".into()),
            ..Default::default()
        };
        assert!(matches!(
            from_cli(&container(), &rel, None),
            Err(ProcessError::RelativeCwd(_))
        ));
        let cap = Overrides {
            command: vec!["x".into()],
            caps: vec!["CAP_NOPE".into()],
            ..Default::default()
        };
        let err = from_cli(&container(), &cap, None).expect_err("unknown cap");
        assert!(err.to_string().contains("CAP_NOPE"), "{err}");
    }

    #[test]
    fn process_file_falls_back_to_the_container() {
        let file: Process = serde_json::from_value(serde_json::json!({
            "args": ["id"], "cwd": "/", "user": {"uid": 5, "gid": 5}
        }))
        .expect("file");
        let p = from_file(file, Path::new("p.json"), &container(), Some("1")).expect("process");
        assert_eq!(p.user().uid(), 5);
        assert_eq!(p.user().umask(), Some(23));
        assert_eq!(p.rlimits().as_ref().map(|r| r.len()), Some(1));
        let caps = p.capabilities().as_ref().expect("caps");
        assert_eq!(names(caps.bounding()), ["CHOWN", "KILL"]);
        assert!(caps.inheritable().as_ref().is_some_and(|s| s.is_empty()));
        assert!(p.exec_cpu_affinity().is_some());
    }

    #[test]
    fn process_file_keeps_its_own_settings() {
        let file: Process = serde_json::from_value(serde_json::json!({
            "args": ["id"], "cwd": "/", "user": {"uid": 0, "gid": 0},
            "capabilities": {"effective": ["CAP_SYS_ADMIN"]},
            "noNewPrivileges": false
        }))
        .expect("file");
        let p = from_file(file, Path::new("p.json"), &container(), None).expect("process");
        let caps = p.capabilities().as_ref().expect("caps");
        assert_eq!(names(caps.effective()), ["SYS_ADMIN"]);
        assert!(caps.bounding().as_ref().is_some_and(|s| s.is_empty()));
        assert_eq!(p.no_new_privileges(), Some(false));
    }

    #[test]
    fn process_file_without_args_is_refused() {
        let file: Process = serde_json::from_value(
            serde_json::json!({"args": [], "cwd": "/", "user": {"uid": 0, "gid": 0}}),
        )
        .expect("file");
        let err = from_file(file, Path::new("p.json"), &container(), None).expect_err("empty");
        assert!(
            err.to_string().contains("process.args must not be empty"),
            "{err}"
        );
    }
}
