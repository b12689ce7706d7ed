//! `delete`: stops what still runs, deletes the container and its cgroups,
//! and releases its ledger entry, journaled so a killed delete is finished.

use libcontainer::container::{Container, ContainerStatus};

use super::kill::kill_sandboxed;
use super::load::{load, wrong_state};
use super::state::status_name;
use crate::error::{Error, Result};
use crate::process::late_hooks::{self, Kind};
use crate::state::id;
use crate::state::lock::IdLock;
use crate::state::sidecar::Sidecar;
use crate::RuntimeRoot;

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
