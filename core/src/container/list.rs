//! `list`: every container under the runtime root.

use std::fs;

use crate::container::state::{self, StateView};
use crate::RuntimeRoot;

/// States of all containers, sorted by id. Unreadable entries are skipped:
/// one broken container must not hide the others.
pub fn list(root: &RuntimeRoot) -> Vec<StateView> {
    // Ghosts of commands that died are reclaimed, not listed.
    crate::state::reclaim::sweep_all(root);
    let mut ids: Vec<String> = fs::read_dir(root.path())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("state.json").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| !name.starts_with('.'))
        .collect();
    ids.sort();
    ids.iter()
        .filter_map(|id| state::state(root, id).ok())
        .collect()
}
