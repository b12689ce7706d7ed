//! The short lifecycle commands: state, start, kill, delete, pause, resume.

use std::path::PathBuf;

use libcontainer::container::{Container, ContainerStatus};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::process::late_hooks::{self, Kind};
use crate::process::signal;
use crate::state::id;
use crate::state::lock::IdLock;
use crate::state::sidecar::Sidecar;
use crate::RuntimeRoot;

/// Loads a container's state, refreshed against its live process.
pub fn load(root: &RuntimeRoot, id: &str) -> Result<Container> {
    id::validate(id)?;
    let dir = root.container_dir(id);
    if !dir.join("state.json").exists() {
        return Err(Error::NotFound { id: id.to_string() });
    }
    match Container::load(dir.clone()) {
        Ok(container) => Ok(container),
        // A kill tore it mid-write: take the last whole copy (state_copy).
        Err(_) if crate::state::state_copy::restore(&dir) => Container::load(dir),
        Err(e) => Err(e),
    }
    .map_err(Error::lib(format!("failed to load container {id:?}")))
}

/// The OCI state as `runc state` prints it, plus what pinc decided.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateView {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::HashMap<String, String>>,
    pub pinc: Sidecar,
}

pub fn status_name(status: ContainerStatus) -> &'static str {
    match status {
        ContainerStatus::Creating => "creating",
        ContainerStatus::Created => "created",
        ContainerStatus::Running => "running",
        ContainerStatus::Stopped => "stopped",
        ContainerStatus::Paused => "paused",
    }
}

/// Builds the state view of a loaded container.
pub fn view(container: &Container) -> StateView {
    let sidecar = Sidecar::load(&container.root);
    let status = container.status();
    let owner = container
        .state
        .creator
        .and_then(|uid| nix::unistd::User::from_uid(uid.into()).ok().flatten())
        .map(|u| u.name)
        .or_else(|| container.state.creator.map(|u| u.to_string()))
        .unwrap_or_default();
    StateView {
        oci_version: "1.0.2".to_string(),
        id: container.id().to_string(),
        pid: match status {
            ContainerStatus::Stopped => 0,
            _ => container.pid().map(|p| p.as_raw()).unwrap_or(0),
        },
        status: status_name(status).to_string(),
        bundle: container.bundle().clone(),
        rootfs: sidecar
            .rootfs
            .clone()
            .unwrap_or_else(|| container.bundle().join("rootfs")),
        created: container
            .created()
            .map(|c| c.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
            .unwrap_or_default(),
        owner,
        annotations: container.state.annotations.clone(),
        pinc: sidecar,
    }
}

pub fn state(root: &RuntimeRoot, id: &str) -> Result<StateView> {
    id::validate(id)?;
    if crate::state::reclaim::reclaim_if_dead(root, id)? {
        return Err(Error::Reclaimed { id: id.to_string() });
    }
    Ok(view(&load(root, id)?))
}

/// The id's lock and its container, for commands that change it. A
/// container whose create or delete died is reclaimed instead; the lock file
/// of an id with no container is not left behind.
pub(crate) fn locked(root: &RuntimeRoot, id: &str) -> Result<(IdLock, Container)> {
    id::validate(id)?;
    let lock = IdLock::acquire(root, id)?;
    // Under the lock a journal entry means its writer died (reclaim.rs).
    if crate::state::reclaim::pending(root, id) {
        crate::state::reclaim::reclaim(root, id, lock);
        return Err(Error::Reclaimed { id: id.to_string() });
    }
    match load(root, id) {
        Ok(container) => Ok((lock, container)),
        Err(e) => {
            if !root.container_dir(id).exists() {
                lock.remove();
            }
            Err(e)
        }
    }
}

fn wrong_state(container: &Container, action: &'static str, hint: &'static str) -> Error {
    Error::WrongState {
        id: container.id().to_string(),
        action,
        status: status_name(container.status()).to_string(),
        hint,
    }
}

pub fn start(root: &RuntimeRoot, id: &str) -> Result<()> {
    let (_lock, mut container) = locked(root, id)?;
    crate::crash::point("start:locked");
    if !container.can_start() {
        return Err(wrong_state(&container, "start", ""));
    }
    // poststart hooks run after the start, and a failure is a warning (see
    // late_hooks). runc 1.1.5 runs them during `create` instead and fails
    // the create; pinc follows the runtime-spec.
    let poststart = late_hooks::take(&container.root, Kind::Poststart)?;
    if let Err(e) = container.start() {
        poststart.restore(&container.root);
        return Err(Error::lib(format!("failed to start container {id:?}"))(e));
    }
    crate::crash::point("start:started");
    crate::state::state_copy::keep(&container.root);
    poststart.run(&container.state, Some(&container.root));
    Ok(())
}

/// Signals a sandboxed container (no cgroup to enumerate): its init, or every
/// process in its pid namespace.
fn kill_sandboxed(container: &Container, sig: nix::sys::signal::Signal, all: bool) -> Result<()> {
    let init = container.pid().map(|p| p.as_raw()).unwrap_or(0);
    let pids = if all {
        crate::container::ps::pids_by_namespace(init)
    } else {
        vec![init]
    };
    for pid in pids {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).map_err(|source| {
            Error::Sys {
                what: format!(
                    "failed to signal pid {pid} of container {:?}",
                    container.id()
                ),
                source,
            }
        })?;
    }
    Ok(())
}

/// Kills a sandboxed container's processes and waits (up to 5 s) for init to die.
fn stop_sandboxed(container: &mut Container) -> Result<()> {
    let _ = kill_sandboxed(container, nix::sys::signal::Signal::SIGKILL, true);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        container
            .refresh_status()
            .map_err(Error::lib("failed to read the container's status"))?;
        if container.status() == ContainerStatus::Stopped {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    Err(wrong_state(container, "stop", ""))
}

pub fn kill(root: &RuntimeRoot, id: &str, sig: &str, all: bool) -> Result<()> {
    let sig = signal::parse(sig)?;
    // Without a root there is no container; taking the lock would create the
    // root (as root, in Slurm's cleanup: the user's next job could not use it).
    if !root.path().is_dir() {
        return Err(Error::NotFound { id: id.to_string() });
    }
    let (_lock, mut container) = locked(root, id)?;
    let sandboxed = Sidecar::load(&container.root).sandbox;
    let stopped = container.status() == ContainerStatus::Stopped;
    if all && stopped {
        // Like runc: `kill --all` of a stopped container signals what is
        // left in its cgroup. containerd's shim sends it after init exits
        // when the pid namespace is shared (Kubernetes pods).
        if sandboxed {
            return Ok(());
        }
        return container
            .kill(sig, true)
            .map_err(Error::lib(format!("failed to signal container {id:?}")));
    }
    if !container.can_kill() {
        // runc's wording: containerd's shims turn "container not running"
        // into NotFound, which CRI's StopContainer accepts.
        let hint = if stopped {
            " (container not running)"
        } else {
            ""
        };
        return Err(wrong_state(&container, "kill", hint));
    }
    if sandboxed {
        return kill_sandboxed(&container, sig, all);
    }
    if let Err(e) = container.kill(sig, all) {
        // Init exited between the state check and the signal: say so as
        // for a container found stopped, not as a failure to signal.
        if container.refresh_status().is_ok() && container.status() == ContainerStatus::Stopped {
            return Err(wrong_state(&container, "kill", " (container not running)"));
        }
        return Err(Error::lib(format!("failed to signal container {id:?}"))(e));
    }
    crate::state::state_copy::keep(&container.root);
    Ok(())
}

/// Deletes a container. `--force` kills a live one first, and succeeds
/// quietly when the container is already gone (Slurm cleans up that way).
pub fn delete(root: &RuntimeRoot, id: &str, force: bool) -> Result<()> {
    id::validate(id)?;
    if !root.path().is_dir() {
        // As in kill: do not create the root just to find nothing in it.
        return already_gone(id, force);
    }
    crate::state::reclaim::sweep(root);
    let lock = IdLock::acquire(root, id)?;
    crate::crash::point("delete:locked");
    let mut container = match find_for_delete(root, id, force)? {
        Found::Container(container) => *container,
        Found::Remains => {
            crate::state::reclaim::reclaim(root, id, lock);
            return Ok(());
        }
        Found::Nothing => {
            lock.remove();
            return already_gone(id, force);
        }
    };
    let status = container.status();
    // As runc: a created container (its process never ran) is killed and
    // deleted without --force; a live one needs --force.
    if !force && !matches!(status, ContainerStatus::Stopped | ContainerStatus::Created) {
        return Err(Error::NotStopped {
            id: id.to_string(),
            status: status_name(status).to_string(),
        });
    }
    let sidecar = Sidecar::load(&container.root);
    journal_delete(root, id, &sidecar)?;
    crate::crash::point("delete:journaled");
    if let Err(e) = stop_and_delete(&mut container, &sidecar, status, force) {
        // The container stays: its journal entry would have the next
        // command under the lock tear it down.
        crate::state::reclaim::end(root, id);
        return Err(e);
    }
    // Reported after the ledger and lock are released: the container is gone.
    let leftover = remove_own_cgroups(&sidecar);
    crate::crash::point("delete:cgroups");
    crate::ledger::Ledger::release(root, id)?;
    crate::crash::point("delete:released");
    crate::state::reclaim::end(root, id);
    lock.remove();
    leftover
}

/// A delete of an id with no container: fine with --force, else NotFound.
fn already_gone(id: &str, force: bool) -> Result<()> {
    if force {
        Ok(())
    } else {
        Err(Error::NotFound { id: id.to_string() })
    }
}

/// What `delete` finds under the id's lock.
enum Found {
    Container(Box<Container>),
    /// Only remains to tear down: nothing alive is protected by them.
    Remains,
    Nothing,
}

/// A journal entry under the lock means its writer died: a create or a
/// delete killed half-way. A dir without readable state is a create of a
/// pinc without journals or a state file torn by a kill. Both are remains;
/// unreadable state is an error without --force.
fn find_for_delete(root: &RuntimeRoot, id: &str, force: bool) -> Result<Found> {
    if crate::state::reclaim::pending(root, id) {
        return Ok(Found::Remains);
    }
    let dir = root.container_dir(id);
    if !dir.exists() {
        return Ok(Found::Nothing);
    }
    match load(root, id) {
        Ok(container) => Ok(Found::Container(Box::new(container))),
        Err(e) if !force && dir.join("state.json").exists() => Err(e),
        Err(_) => Ok(Found::Remains),
    }
}

/// From here a pinc killed mid-delete leaves an entry that the next
/// command under the id's lock finishes (reclaim.rs).
fn journal_delete(root: &RuntimeRoot, id: &str, sidecar: &Sidecar) -> Result<()> {
    let cgroups_path = sidecar
        .cgroups_path
        .clone()
        .unwrap_or_else(|| crate::state::reclaim::default_cgroups_path(id));
    crate::state::reclaim::begin(
        root,
        id,
        &crate::state::reclaim::Journal {
            op: "delete".into(),
            cgroups_path,
        },
    )
}

/// Stops what still runs, deletes the container and runs its poststop
/// hooks; a failing hook is a warning and the delete goes on (late_hooks).
fn stop_and_delete(
    container: &mut Container,
    sidecar: &Sidecar,
    status: ContainerStatus,
    force: bool,
) -> Result<()> {
    if sidecar.sandbox && status != ContainerStatus::Stopped {
        stop_sandboxed(container)?;
    } else if !sidecar.sandbox && (force || status == ContainerStatus::Created) {
        if let Some(path) = &sidecar.cgroups_path {
            crate::state::reclaim::kill_cgroup(path, std::time::Duration::from_secs(10));
        }
    }
    let poststop = late_hooks::take(&container.root, Kind::Poststop)?;
    if let Err(e) = container.delete(force) {
        poststop.restore(&container.root);
        let what = format!("failed to delete container {:?}", container.id());
        return Err(Error::lib(what)(e));
    }
    crate::crash::point("delete:deleted");
    poststop.run(&container.state, None);
    Ok(())
}

/// Removes pinc's own cgroups, unknown to libcontainer; tries both and
/// returns the first failure.
fn remove_own_cgroups(sidecar: &Sidecar) -> Result<()> {
    let Some(path) = &sidecar.cgroups_path else {
        return Ok(());
    };
    let mut leftover = Ok(());
    if let Some(mount) = &sidecar.hugetlb_v2 {
        leftover = pinc_cgroup::hugetlb::remove_v2(mount, path).map_err(Error::from);
    }
    if let Some(mount) = &sidecar.rdma_mount {
        let removed = pinc_cgroup::rdma::remove(mount, path).map_err(Error::from);
        leftover = leftover.and(removed);
    }
    leftover
}

pub fn pause(root: &RuntimeRoot, id: &str) -> Result<()> {
    let (_lock, mut container) = locked(root, id)?;
    require_cgroups(&container, "pause")?;
    if !container.can_pause() {
        return Err(wrong_state(&container, "pause", ""));
    }
    container
        .pause()
        .map_err(Error::lib(format!("failed to pause container {id:?}")))?;
    crate::state::state_copy::keep(&container.root);
    Ok(())
}

pub fn resume(root: &RuntimeRoot, id: &str) -> Result<()> {
    let (_lock, mut container) = locked(root, id)?;
    require_cgroups(&container, "resume")?;
    if !container.can_resume() {
        return Err(wrong_state(&container, "resume", ""));
    }
    container
        .resume()
        .map_err(Error::lib(format!("failed to resume container {id:?}")))?;
    crate::state::state_copy::keep(&container.root);
    Ok(())
}

/// Commands that need the freezer or cgroup files refuse sandboxed containers.
pub(crate) fn require_cgroups(container: &Container, action: &'static str) -> Result<()> {
    if Sidecar::load(&container.root).sandbox {
        return Err(Error::NoCgroups {
            id: container.id().to_string(),
            action,
        });
    }
    Ok(())
}
