//! Finding a container for a verb: loading its state, taking its id's lock,
//! and the refusals the verbs share.

use libcontainer::container::Container;

use super::state::status_name;
use crate::error::{Error, Result};
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

pub(super) fn wrong_state(
    container: &Container,
    action: &'static str,
    hint: &'static str,
) -> Error {
    Error::WrongState {
        id: container.id().to_string(),
        action,
        status: status_name(container.status()).to_string(),
        hint,
    }
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
