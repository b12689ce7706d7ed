//! `exec`: a new process in a running container.
//!
//! libcontainer's tenant builder reads the spec from `<state.bundle>/config.json`.
//! When pinc's pipeline changed the spec, the state keeps the caller's bundle
//! and the final spec sits in the container dir; exec then runs against a
//! short-lived view root whose state points at the container dir, so the new
//! process joins exactly what the pipeline built.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::executor::PincExecutor;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;

use crate::error::{Error, Result};
use crate::lock::IdLock;
use crate::run::{block_signals, wait_forwarding};
use crate::sidecar::Sidecar;
use crate::{ops, rootless, RuntimeRoot};

#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub id: String,
    /// A process.json (runtime-spec `process`) instead of `command`.
    pub process: Option<PathBuf>,
    pub command: Vec<String>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub tty: bool,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    pub user: Option<(u32, Option<u32>)>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub preserve_fds: i32,
    pub ignore_paused: bool,
}

/// A view root for one exec: `<root>/.pinc/exec/<id>.<pid>/<id>/state.json`.
struct View {
    root: PathBuf,
}

impl View {
    fn create(root: &RuntimeRoot, id: &str, container_dir: &Path) -> Result<Self> {
        let base = root
            .private_dir("exec")?
            .join(format!("{id}.{}", std::process::id()));
        let dir = base.join(id);
        fs::create_dir_all(&dir).map_err(Error::io("failed to create exec view", &dir))?;
        let mut state: serde_json::Value = serde_json::from_slice(
            &fs::read(container_dir.join("state.json"))
                .map_err(Error::io("failed to read state", container_dir))?,
        )
        .map_err(|source| Error::Json {
            what: "container state".into(),
            source,
        })?;
        state["bundle"] = serde_json::Value::String(container_dir.display().to_string());
        let path = dir.join("state.json");
        fs::write(&path, state.to_string())
            .map_err(Error::io("failed to write exec view", &path))?;
        Ok(Self { root: base })
    }
}

impl Drop for View {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// Exec'd processes run where the container runs: a caller's process.json
/// without execCPUAffinity gets the container's (in a copy, under `dir`).
fn with_affinity(process: &Path, affinity: Option<&str>, dir: &Path) -> Result<PathBuf> {
    let Some(cpus) = affinity else {
        return Ok(process.to_path_buf());
    };
    let mut value: serde_json::Value =
        serde_json::from_slice(&fs::read(process).map_err(Error::io("failed to read", process))?)
            .map_err(|source| Error::Json {
            what: format!("process file {}", process.display()),
            source,
        })?;
    if !value["execCPUAffinity"].is_null() {
        return Ok(process.to_path_buf());
    }
    value["execCPUAffinity"] = serde_json::json!({"final": cpus});
    let copy = dir.join(format!("process-{}.json", std::process::id()));
    fs::write(&copy, value.to_string()).map_err(Error::io("failed to write", &copy))?;
    Ok(copy)
}

/// Writes a process.json for `--tty` without `--process`: the tenant builder
/// takes a terminal only from a process file.
fn tty_process(opts: &ExecOptions, dir: &Path) -> Result<PathBuf> {
    let mut env: Vec<String> = opts.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    if !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let (uid, gid) = opts
        .user
        .map(|(u, g)| (u, g.unwrap_or(0)))
        .unwrap_or((0, 0));
    let process = serde_json::json!({
        "terminal": true,
        "args": opts.command,
        "env": env,
        "cwd": opts.cwd.clone().unwrap_or_else(|| PathBuf::from("/")),
        "user": {"uid": uid, "gid": gid, "additionalGids": opts.additional_gids},
        "noNewPrivileges": opts.no_new_privs,
    });
    let path = dir.join("process.json");
    fs::write(&path, process.to_string()).map_err(Error::io("failed to write", &path))?;
    Ok(path)
}

/// Runs a process in the container; returns its exit code (0 when detached).
pub fn exec(root: &RuntimeRoot, opts: &ExecOptions) -> Result<i32> {
    let lock = IdLock::acquire(root, &opts.id)?;
    let container = ops::load(root, &opts.id)?;
    let running = container.can_exec()
        || (opts.ignore_paused
            && container.status() == libcontainer::container::ContainerStatus::Paused);
    if !running {
        return Err(Error::WrongState {
            id: opts.id.clone(),
            action: "exec in",
            status: ops::status_name(container.status()).to_string(),
            hint: "",
        });
    }
    if opts.process.is_none() && opts.command.is_empty() {
        return Err(Error::Unsupported(
            "exec needs a command or --process".into(),
        ));
    }
    let sidecar = Sidecar::load(&container.root);
    if sidecar.sandbox {
        let pid = container.pid().map(|p| p.as_raw()).unwrap_or(0);
        rootless::join(
            pid,
            sidecar.cgroups_path.as_deref().unwrap_or(Path::new("")),
        )?;
    }
    let view = if sidecar.final_spec {
        Some(View::create(root, &opts.id, &container.root)?)
    } else {
        None
    };
    let view_root = view.as_ref().map_or(root.path(), |v| v.root.as_path());
    let process = match (&opts.process, opts.tty) {
        (Some(p), _) => Some(with_affinity(p, sidecar.affinity.as_deref(), view_root)?),
        (None, true) => Some(tty_process(opts, view_root)?),
        (None, false) => None,
    };
    let env: HashMap<String, String> = opts.env.iter().cloned().collect();
    let pid = ContainerBuilder::new(opts.id.clone(), SyscallType::default())
        .with_executor(PincExecutor)
        .with_root_path(view_root)
        .map_err(Error::lib("invalid runtime root"))?
        .with_console_socket(opts.console_socket.as_ref())
        .with_pid_file(opts.pid_file.as_ref())
        .map_err(Error::lib("invalid pid file"))?
        .with_preserved_fds(opts.preserve_fds)
        .validate_id()
        .map_err(Error::lib("invalid container id"))?
        .as_tenant()
        .with_detach(opts.detach)
        .with_cwd(opts.cwd.as_ref())
        .with_env(env)
        .with_process(process.as_ref())
        .with_no_new_privs(opts.no_new_privs)
        .with_container_args(opts.command.clone())
        .with_capabilities(opts.caps.clone())
        .with_user(opts.user.map(|u| u.0))
        .with_group(opts.user.and_then(|u| u.1))
        .with_additional_gids(opts.additional_gids.clone())
        .with_ignore_paused(opts.ignore_paused)
        .build()
        .map_err(Error::lib(format!(
            "failed to exec in container {:?}",
            opts.id
        )))?;
    drop(view);
    drop(lock);
    let set = block_signals()?;
    if opts.detach {
        return Ok(0);
    }
    wait_forwarding(pid.as_raw(), &set)
}
