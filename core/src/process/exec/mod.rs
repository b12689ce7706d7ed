//! `exec`: a new process in a running container, confined like its init.
//!
//! libcontainer's tenant builder reads the spec from `<state.bundle>/config.json`
//! and keeps only part of it for the new process (see `process` and
//! `confine`). pinc builds the whole process itself, as runc does, hands it
//! over as a process file, and applies what the builder drops (the seccomp
//! filter; the user namespace, see `join_user_namespace`).
//!
//! When pinc's pipeline changed the spec, the state keeps the caller's bundle
//! and the final spec sits in the container dir; exec then runs against a
//! short-lived view root whose state points at the container dir, so the new
//! process joins exactly what the pipeline built.

pub mod confine;
pub mod process;

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::oci_spec::runtime::{LinuxNamespaceType, Process, Spec};
use libcontainer::syscall::syscall::SyscallType;
use nix::sched::{setns, CloneFlags};

use crate::container::run::{block_signals, wait_forwarding};
use crate::container::{load, state};
use crate::error::{Error, Result};
use crate::process::executor::PincExecutor;
use crate::state::sidecar::Sidecar;
use crate::{rootless, RuntimeRoot};

pub use process::Overrides;

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
    /// runc's `--cgroup`: a sub-cgroup of the container's to run in.
    pub cgroup: Option<String>,
    /// runc's `--apparmor`: the profile for the new process.
    pub apparmor: Option<String>,
}

/// Why an exec could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Process(#[from] process::ProcessError),
    #[error(transparent)]
    Confine(#[from] confine::ConfineError),
    #[error("failed to load the container's spec {path}")]
    Spec {
        path: PathBuf,
        #[source]
        source: libcontainer::oci_spec::OciSpecError,
    },
    #[error("failed to make pinc undumpable before entering the container's user namespace")]
    Undumpable(#[source] std::io::Error),
    #[error("failed to enter the container's user namespace {path}")]
    UserNamespace {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "--cgroup {0:?}: per-controller sub-cgroups are not supported; give one path for all controllers"
    )]
    CgroupPerController(String),
    #[error(
        "--cgroup {sub:?}: {path} does not exist (as with runc, the sub-cgroup must be made first)"
    )]
    NoSubCgroup { sub: String, path: PathBuf },
    #[error("--cgroup {0:?}: the sub-cgroup must be a relative path below the container's cgroup")]
    SubCgroupEscapes(String),
}

/// A view root for one exec: `<root>/.pinc/exec/<id>.<pid>/<id>/state.json`,
/// whose bundle is `<...>/bundle` holding the spec the container runs with.
/// The tenant builder reads the spec only to know which namespaces to join,
/// its rootfs, and for its own checks.
struct View {
    root: PathBuf,
}

impl View {
    fn create(root: &RuntimeRoot, id: &str, container_dir: &Path, spec: &Spec) -> Result<Self> {
        let base = root
            .private_dir("exec")?
            .join(format!("{id}.{}", std::process::id()));
        let dir = base.join(id);
        let bundle = base.join("bundle");
        for d in [&dir, &bundle] {
            fs::create_dir_all(d).map_err(Error::io("failed to create exec view", d))?;
        }
        let view = Self { root: base };
        let config = bundle.join("config.json");
        spec.save(&config).map_err(|source| ExecError::Spec {
            path: config.clone(),
            source,
        })?;
        let mut state: serde_json::Value =
            serde_json::from_slice(&fs::read(container_dir.join("state.json")).map_err(
                Error::io("failed to read state", container_dir.join("state.json")),
            )?)
            .map_err(|source| Error::Json {
                what: "container state".into(),
                source,
            })?;
        state["bundle"] = serde_json::Value::String(bundle.display().to_string());
        let path = dir.join("state.json");
        fs::write(&path, state.to_string())
            .map_err(Error::io("failed to write exec view", &path))?;
        Ok(view)
    }
}

impl Drop for View {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// The spec the container runs with (pinc's final spec, or the bundle's),
/// with an absolute root path.
fn container_spec(container: &Container, sidecar: &Sidecar) -> Result<Spec> {
    let path = if sidecar.final_spec {
        container.root.join(crate::container::create::FINAL_SPEC)
    } else {
        container.bundle().join("config.json")
    };
    let mut spec = Spec::load(&path).map_err(|source| ExecError::Spec {
        path: path.clone(),
        source,
    })?;
    spec.canonicalize_rootfs(container.bundle())
        .map_err(|source| ExecError::Spec { path, source })?;
    Ok(spec)
}

/// The view's spec once pinc is inside the container's user namespace:
/// libcontainer would otherwise validate it as a new user namespace made by
/// an unprivileged caller.
fn without_user_namespace(spec: &Spec) -> Spec {
    let mut spec = spec.clone();
    if let Some(mut linux) = spec.linux().clone() {
        if let Some(ns) = linux.namespaces().clone() {
            let kept = ns
                .into_iter()
                .filter(|n| n.typ() != LinuxNamespaceType::User)
                .collect();
            linux.set_namespaces(Some(kept));
        }
        linux.set_uid_mappings(None).set_gid_mappings(None);
        spec.set_linux(Some(linux));
    }
    spec
}

fn has_user_namespace(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::User))
}

/// libcontainer's tenant builder joins every namespace of the container but
/// its user namespace, so without this an exec'd process would be the host's
/// root inside the container's mounts. pinc enters the user namespace first;
/// the new process, forked from pinc, is then created inside it (with full
/// capabilities there, and only there). The caller (root) keeps its host uid,
/// so it still owns the state, pid and cgroup files it writes.
/// Must be called single-threaded.
fn join_user_namespace(init_pid: i32) -> Result<(), ExecError> {
    // Inside that namespace, its root's CAP_SYS_PTRACE would reach pinc,
    // which still holds host files and the host's uid (runc's CVE-2016-9962
    // fix, the same way).
    nix::sys::prctl::set_dumpable(false).map_err(|e| ExecError::Undumpable(e.into()))?;
    let path = PathBuf::from(format!("/proc/{init_pid}/ns/user"));
    let file = File::open(&path).map_err(|source| ExecError::UserNamespace {
        path: path.clone(),
        source,
    })?;
    setns(&file, CloneFlags::CLONE_NEWUSER).map_err(|e| ExecError::UserNamespace {
        path,
        source: e.into(),
    })
}

/// The CPUs an exec'd process ends on, when pinc sets them (`None`: as the
/// kernel leaves them after the cgroup join). In a container without a
/// cpuset, pinc keeps the creator's affinity: an exec'd process runs where
/// the container runs, and within its own caller's binding (runc's exec'd
/// process keeps its caller's), so the intersection of the two; the
/// container's when they do not meet. Joining the cpuset cgroup may reset
/// affinity, so it is set again after the join. In the rootless sandbox,
/// affinity is how the placement is enforced: the container's CPUs then.
fn exec_affinity(sidecar: &Sidecar, spec: &Spec) -> Result<Option<String>> {
    let Some(container) = &sidecar.affinity else {
        return Ok(None);
    };
    let pinned = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.cpu().as_ref())
        .and_then(|c| c.cpus().as_ref())
        .is_some();
    if sidecar.sandbox && pinned {
        return Ok(Some(container.clone()));
    }
    let Ok(cpus) = container.parse::<pinc_cpulist::CpuList>() else {
        return Ok(Some(container.clone()));
    };
    let both = pinc_cgroup::affinity::get(0)?.intersection(&cpus);
    Ok(Some(if both.is_empty() { cpus } else { both }.to_string()))
}

/// The container's process without the execCPUAffinity that create put
/// there for the creator's affinity (see `exec_affinity`).
fn base_process(spec: &Spec, sidecar: &Sidecar) -> Result<Process> {
    let mut base = spec.process().clone().ok_or(ExecError::Process(
        process::ProcessError::NoContainerProcess,
    ))?;
    let injected = base.exec_cpu_affinity().as_ref().is_some_and(|a| {
        a.initial().is_none() && a.cpu_affinity_final().as_deref() == sidecar.affinity.as_deref()
    });
    if injected {
        base.set_exec_cpu_affinity(None);
    }
    Ok(base)
}

/// The complete process for this exec, written to `dir` as process.json,
/// and what the executor must add.
fn prepare_process(
    spec: &Spec,
    sidecar: &Sidecar,
    opts: &ExecOptions,
    dir: &Path,
) -> Result<(PathBuf, Option<confine::Confinement>)> {
    let base = &base_process(spec, sidecar)?;
    let affinity = exec_affinity(sidecar, spec)?;
    let affinity = affinity.as_deref();
    let mut proc = match &opts.process {
        Some(path) => {
            let file = process::read_file(path).map_err(ExecError::from)?;
            process::from_file(file, path, base, affinity).map_err(ExecError::from)?
        }
        None => {
            let o = Overrides {
                command: opts.command.clone(),
                env: opts.env.clone(),
                cwd: opts.cwd.clone(),
                user: opts.user,
                additional_gids: opts.additional_gids.clone(),
                caps: opts.caps.clone(),
                no_new_privs: opts.no_new_privs,
                tty: opts.tty,
                apparmor: opts.apparmor.clone(),
            };
            process::from_cli(base, &o, affinity).map_err(ExecError::from)?
        }
    };
    // The same checks as for a container's process: one line naming the
    // field (an environment too large for execve, an unknown rlimit, ...).
    crate::spec::validate::process(&proc)?;
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let confinement = confine::plan(seccomp, &mut proc).map_err(ExecError::from)?;
    let path = dir.join(format!("process-{}.json", std::process::id()));
    let json = serde_json::to_vec(&proc).map_err(|source| Error::Json {
        what: "exec process".into(),
        source,
    })?;
    fs::write(&path, json).map_err(Error::io("failed to write", &path))?;
    Ok((path, confinement))
}

/// runc's `--cgroup PATH` (one path for every controller, which is all
/// libcontainer can join). As in runc it must exist: libcontainer would make
/// it, and nothing would ever remove it.
fn sub_cgroup(
    arg: Option<&str>,
    cgroup_root: &Path,
    cgroups_path: Option<&Path>,
) -> Result<Option<String>, ExecError> {
    let Some(arg) = arg else { return Ok(None) };
    if arg.contains(':') {
        return Err(ExecError::CgroupPerController(arg.to_string()));
    }
    let sub = Path::new(arg);
    if sub.is_absolute()
        || sub
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(ExecError::SubCgroupEscapes(arg.to_string()));
    }
    // systemd-style paths ("slice:prefix:name") are resolved by libcgroups.
    if let Some(base) = cgroups_path.filter(|p| !p.to_string_lossy().contains(':')) {
        let relative = base.strip_prefix("/").unwrap_or(base);
        let hierarchies = fs::read_dir(cgroup_root).into_iter().flatten().flatten();
        for h in hierarchies {
            let container = h.path().join(relative);
            let path = container.join(sub);
            if container.is_dir() && !path.is_dir() {
                return Err(ExecError::NoSubCgroup {
                    sub: arg.to_string(),
                    path,
                });
            }
        }
    }
    Ok(Some(arg.to_string()))
}

/// Runs a process in the container; returns its exit code (0 when detached).
pub fn exec(root: &RuntimeRoot, opts: &ExecOptions) -> Result<i32> {
    let (lock, container) = load::locked(root, &opts.id)?;
    let paused = container.status() == ContainerStatus::Paused;
    if !(container.can_exec() || (opts.ignore_paused && paused)) {
        return Err(Error::WrongState {
            id: opts.id.clone(),
            action: "exec in",
            status: state::status_name(container.status()).to_string(),
            hint: "",
        });
    }
    let sidecar = Sidecar::load(&container.root);
    let spec = container_spec(&container, &sidecar)?;
    let cgroups_path = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
    let sub_cgroup = sub_cgroup(
        opts.cgroup.as_deref(),
        Path::new("/sys/fs/cgroup"),
        cgroups_path.as_deref(),
    )?;
    let join_userns = !sidecar.sandbox && has_user_namespace(&spec);
    let view_spec = if join_userns {
        without_user_namespace(&spec)
    } else {
        spec.clone()
    };
    let view = View::create(root, &opts.id, &container.root, &view_spec)?;
    crate::crash::point("exec:view");
    let (process_file, confinement) = prepare_process(&spec, &sidecar, opts, &view.root)?;
    let pid = container.pid().map(|p| p.as_raw()).unwrap_or(0);
    // The init's keyring, found by name from where create made it: before
    // any user namespace is entered.
    if !sidecar.no_new_keyring {
        crate::process::executor::join_session_keyring(&opts.id, false)?;
    }
    if sidecar.sandbox {
        rootless::join(
            pid,
            sidecar.cgroups_path.as_deref().unwrap_or(Path::new("")),
        )?;
    } else if join_userns {
        join_user_namespace(pid)?;
    }
    // The new process waits for nothing of ours but a frozen cgroup may hold
    // it (exec --ignore-paused): holding the id lock through the build would
    // keep `resume` and `delete` out for good.
    drop(lock);
    let env: HashMap<String, String> = HashMap::new();
    let pid = ContainerBuilder::new(opts.id.clone(), SyscallType::default())
        .with_executor(PincExecutor {
            confinement,
            start_hooks: None,
        })
        .with_root_path(&view.root)
        .map_err(Error::lib("invalid runtime root"))?
        .with_console_socket(opts.console_socket.as_ref())
        .with_pid_file(opts.pid_file.as_ref())
        .map_err(Error::lib("invalid pid file"))?
        .with_preserved_fds(opts.preserve_fds)
        .validate_id()
        .map_err(Error::lib("invalid container id"))?
        .as_tenant()
        .with_detach(opts.detach)
        .with_env(env)
        .with_process(Some(&process_file))
        .with_ignore_paused(opts.ignore_paused)
        .with_sub_cgroup(sub_cgroup)
        .build()
        .map_err(Error::lib(format!(
            "failed to exec in container {:?}",
            opts.id
        )))?;
    crate::crash::point("exec:built");
    drop(view);
    let set = block_signals()?;
    if opts.detach {
        return Ok(0);
    }
    wait_forwarding(pid.as_raw(), &set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_cgroup_must_exist_below_the_container() {
        let root = tempfile::tempdir().expect("tempdir");
        let base = Path::new("/pinc/c1");
        for h in ["memory", "cpu"] {
            fs::create_dir_all(root.path().join(h).join("pinc/c1/sub/a")).expect("mkdir");
        }
        let check = |arg| sub_cgroup(Some(arg), root.path(), Some(base));
        assert_eq!(
            sub_cgroup(None, root.path(), Some(base)).expect("none"),
            None
        );
        assert_eq!(check("sub/a").expect("path").as_deref(), Some("sub/a"));
        let err = check("cpu,memory:sub").expect_err("per controller");
        assert!(err.to_string().contains("cpu,memory:sub"), "{err}");
        assert!(matches!(check("../x"), Err(ExecError::SubCgroupEscapes(_))));
        assert!(matches!(check("/abs"), Err(ExecError::SubCgroupEscapes(_))));
        let err = check("missing").expect_err("missing");
        assert!(err.to_string().contains("pinc/c1/missing"), "{err}");
        // A hierarchy the container is not in does not count.
        fs::create_dir_all(root.path().join("pids")).expect("mkdir");
        assert!(check("sub").is_ok());
    }
}
