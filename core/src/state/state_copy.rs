//! A whole copy of the container's state.json, for when a kill tears it.
//!
//! libcontainer rewrites state.json in place (truncate, then write) on
//! create, start, kill, pause and resume; a pinc killed in between leaves it
//! empty or cut, and every later command on the container failed to parse
//! it. pinc keeps the last whole version beside it (written atomically after
//! each of those commands) and restores from it, with the status read off
//! the init process rather than trusted from the copy.

use std::fs;
use std::path::Path;

const STATE: &str = "state.json";
const COPY: &str = "pinc-state.json";

/// Writes `bytes` to `dir/name` through a temporary file and a rename.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, dir.join(name))
}

/// Keeps a copy of the container's state, if it is whole. Best effort: a
/// failure only means an older copy (or none) to restore from.
pub fn keep(dir: &Path) {
    let Ok(bytes) = fs::read(dir.join(STATE)) else {
        return;
    };
    if serde_json::from_slice::<serde_json::Value>(&bytes).is_ok() {
        if let Err(e) = write_atomic(dir, COPY, &bytes) {
            tracing::warn!(target: "pinc", "failed to keep a copy of {}: {e}", dir.join(STATE).display());
        }
    }
}

/// What the init process says the status is: gone -> stopped; still in
/// libcontainer's code (it never exec'd) -> created; otherwise as the copy
/// said when that was paused, else running.
fn observed_status(proc: &Path, pid: i64, recorded: &str) -> &'static str {
    if !crate::state::orphans::alive(proc, pid) {
        return "stopped";
    }
    let comm = fs::read_to_string(proc.join(pid.to_string()).join("comm")).unwrap_or_default();
    if comm.starts_with(crate::state::orphans::FORKED_COMM) {
        "created"
    } else if recorded == "paused" {
        "paused"
    } else {
        "running"
    }
}

/// Restores a torn state.json from the copy; true when it did.
pub fn restore(dir: &Path) -> bool {
    restore_with(dir, Path::new("/proc"))
}

fn restore_with(dir: &Path, proc: &Path) -> bool {
    let whole = fs::read(dir.join(STATE))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some();
    if whole {
        return false;
    }
    let Some(mut state) = fs::read(dir.join(COPY))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    else {
        return false;
    };
    let pid = state["pid"].as_i64().unwrap_or(0);
    let status = observed_status(proc, pid, state["status"].as_str().unwrap_or_default());
    state["status"] = serde_json::Value::String(status.into());
    tracing::warn!(target: "pinc", "{} was torn; restored from pinc's copy as {status}", dir.join(STATE).display());
    write_atomic(dir, STATE, state.to_string().as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_proc(pid: i64, comm: &str, state: char) -> tempfile::TempDir {
        let proc = tempfile::tempdir().expect("proc");
        let dir = proc.path().join(pid.to_string());
        fs::create_dir(&dir).expect("pid dir");
        fs::write(dir.join("stat"), format!("{pid} ({comm}) {state} 1 1 1\n")).expect("stat");
        fs::write(dir.join("comm"), format!("{comm}\n")).expect("comm");
        proc
    }

    #[test]
    fn a_torn_state_is_restored_with_the_observed_status() {
        let dir = tempfile::tempdir().expect("dir");
        fs::write(
            dir.path().join(STATE),
            r#"{"id":"c1","pid":42,"status":"created"}"#,
        )
        .expect("state");
        keep(dir.path());
        fs::write(dir.path().join(STATE), "").expect("tear");
        // The init exec'd its program since the copy was made: a torn start.
        let proc = fake_proc(42, "sleep", 'S');
        assert!(restore_with(dir.path(), proc.path()));
        let state: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.path().join(STATE)).expect("read")).expect("json");
        assert_eq!(state["status"], "running");
        assert_eq!(state["id"], "c1");
        assert!(
            !restore_with(dir.path(), proc.path()),
            "whole: nothing to do"
        );
    }

    #[test]
    fn statuses_follow_the_init() {
        let created = fake_proc(7, "youki:[2:INIT]", 'S');
        assert_eq!(observed_status(created.path(), 7, "created"), "created");
        let zombie = fake_proc(7, "sleep", 'Z');
        assert_eq!(observed_status(zombie.path(), 7, "running"), "stopped");
        let paused = fake_proc(7, "sleep", 'D');
        assert_eq!(observed_status(paused.path(), 7, "paused"), "paused");
        assert_eq!(observed_status(paused.path(), 8, "running"), "stopped");
    }

    #[test]
    fn a_torn_copy_is_never_kept() {
        let dir = tempfile::tempdir().expect("dir");
        fs::write(dir.path().join(STATE), "{\"id\":").expect("torn");
        keep(dir.path());
        assert!(!dir.path().join(COPY).exists());
        assert!(!restore(dir.path()), "no copy: nothing to restore from");
    }
}
