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

/// runc's table: ID, PID, STATUS, BUNDLE, CREATED, OWNER.
pub fn table(states: &[StateView]) -> String {
    let rows: Vec<[String; 6]> = std::iter::once([
        "ID".to_string(),
        "PID".to_string(),
        "STATUS".to_string(),
        "BUNDLE".to_string(),
        "CREATED".to_string(),
        "OWNER".to_string(),
    ])
    .chain(states.iter().map(|s| {
        [
            s.id.clone(),
            s.pid.to_string(),
            s.status.clone(),
            s.bundle.display().to_string(),
            s.created.clone(),
            s.owner.clone(),
        ]
    }))
    .collect();
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            let cells: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            cells.join("   ").trim_end().to_string() + "\n"
        })
        .collect()
}
