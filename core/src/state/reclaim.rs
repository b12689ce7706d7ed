//! Crash recovery: what a pinc killed half-way through `create`, `delete`
//! or `exec` leaves on the node is found and removed by the next pinc that
//! looks (`create`, `list`, `state`, `delete`, and commands on that id).
//!
//! `create` and `delete` write a journal entry, `<root>/.pinc/journal/<id>`,
//! under the id lock before they make or remove anything, and remove it
//! last. The lock is a record lock that dies with its holder, so "journal
//! present and lock free" means exactly "that command died". Its teardown
//! does not trust the state dir (it may not exist yet, be half-written, or
//! be gone already): it kills libcontainer's forked processes still holding
//! the id's lock file, everything in the container's cgroup in every
//! hierarchy, removes those cgroup dirs, the state, staging and exec dirs,
//! the ledger entry, the journal and the lock file.
//!
//! An exec view (`<root>/.pinc/exec/<id>.<pid>`) whose pinc is gone is
//! removed, and the process libcontainer forked for it killed.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::orphans;
use crate::error::{Error, Result};
use crate::state::lock::IdLock;
use crate::state::sidecar::Sidecar;
use crate::RuntimeRoot;

const JOURNAL: &str = "journal";
/// Suffix of an entry being written; `~` is in no container id.
const TMP: &str = "~tmp";

/// What a teardown needs to know when no state says it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Journal {
    /// "create" or "delete": what was under way (for the log).
    pub op: String,
    /// The container's cgroupsPath as libcontainer gets it.
    pub cgroups_path: PathBuf,
}

fn path(root: &RuntimeRoot, id: &str) -> Result<PathBuf> {
    Ok(root.private_dir(JOURNAL)?.join(id))
}

/// Records `journal` for `id` (atomically: a torn entry would name no cgroup).
/// The caller holds the id lock.
pub fn begin(root: &RuntimeRoot, id: &str, journal: &Journal) -> Result<()> {
    let path = path(root, id)?;
    let tmp = path.with_file_name(format!("{id}{TMP}"));
    let json = serde_json::to_vec(journal).map_err(|source| Error::Json {
        what: format!("journal {}", path.display()),
        source,
    })?;
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&json)?;
        fs::rename(&tmp, &path)
    };
    write().map_err(Error::io("failed to write the journal", &path))?;
    root.hand_over(&path);
    Ok(())
}

/// Ends `id`'s journal entry: the command finished (or undid) its work.
pub fn end(root: &RuntimeRoot, id: &str) {
    if let Ok(path) = path(root, id) {
        let _ = fs::remove_file(path);
    }
}

fn read(root: &RuntimeRoot, id: &str) -> Option<Journal> {
    let bytes = fs::read(root.path().join(".pinc").join(JOURNAL).join(id)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Whether a create or delete of `id` is under way or died.
pub fn pending(root: &RuntimeRoot, id: &str) -> bool {
    root.path().join(".pinc").join(JOURNAL).join(id).exists()
}

/// Reclaims `id` if the command its journal names died; true if it did.
pub fn reclaim_if_dead(root: &RuntimeRoot, id: &str) -> Result<bool> {
    if !pending(root, id) {
        return Ok(false);
    }
    let lock = match IdLock::try_acquire_existing(root, id)? {
        Some(lock) => lock,
        // A journal whose lock file is gone (removed by hand): dead too.
        None if !root.path().join(".pinc/locks").join(id).exists() => {
            match IdLock::try_acquire(root, id)? {
                Some(lock) => lock,
                None => return Ok(false),
            }
        }
        None => return Ok(false), // A live command holds it.
    };
    // Re-checked under the lock: the command may have finished meanwhile.
    if !pending(root, id) {
        // A failed create removed its lock file just before we made one.
        if !root.container_dir(id).exists() {
            lock.remove();
        }
        return Ok(false);
    }
    reclaim(root, id, lock);
    Ok(true)
}

/// Reclaims every container whose create or delete died, and every exec
/// view whose pinc is gone. Best effort: a failure is logged, never fatal.
pub fn sweep(root: &RuntimeRoot) {
    let journal = root.path().join(".pinc").join(JOURNAL);
    for name in names(&journal) {
        if let Some(id) = name.strip_suffix(TMP) {
            // An entry whose writer died before it was complete.
            if let Ok(Some(lock)) = IdLock::try_acquire_existing(root, id) {
                let _ = fs::remove_file(journal.join(&name));
                if !root.container_dir(id).exists() && !pending(root, id) {
                    lock.remove();
                }
            }
            continue;
        }
        let id = name;
        if let Err(e) = reclaim_if_dead(root, &id) {
            tracing::warn!(target: "pinc", "failed to reclaim {id:?}: {e}");
        }
    }
    let views = root.path().join(".pinc/exec");
    for name in names(&views) {
        let Some(pid) = name
            .rsplit_once('.')
            .and_then(|(_, p)| p.parse::<i64>().ok())
        else {
            continue;
        };
        if !orphans::alive(Path::new("/proc"), pid) {
            remove_view(&views.join(name));
        }
    }
}

/// `sweep`, and also the lock files of ids that have no container, as a
/// create killed before its journal existed leaves, and the temp files of
/// a ledger or topology cache write killed before its rename. For `list`,
/// which reads every container anyway; not for the create path.
pub fn sweep_all(root: &RuntimeRoot) {
    sweep(root);
    if let Err(e) = crate::ledger::Ledger::sweep(root) {
        tracing::warn!(target: "pinc", "{e}");
    }
    crate::node_topology::sweep_cache(root, |pid| {
        orphans::alive(Path::new("/proc"), i64::from(pid))
    });
    let locks = root.path().join(".pinc/locks");
    for id in names(&locks) {
        if root.container_dir(&id).exists() || pending(root, &id) {
            continue;
        }
        if let Ok(Some(lock)) = IdLock::try_acquire_existing(root, &id) {
            // Re-checked under the lock: a create may have made it meanwhile.
            if !root.container_dir(&id).exists() && !pending(root, &id) {
                lock.remove();
            }
        }
    }
}

fn names(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

fn remove_view(view: &Path) {
    orphans::kill(
        &orphans::holders_under(Path::new("/proc"), view),
        "left behind by a pinc exec that died",
    );
    let _ = fs::remove_dir_all(view);
}

/// Tears down everything `id` may hold on the node; the caller holds its
/// lock, which this removes.
pub fn reclaim(root: &RuntimeRoot, id: &str, lock: IdLock) {
    let journal = read(root, id);
    tracing::warn!(
        target: "pinc",
        "reclaiming container {id:?}: a pinc {} died half-way",
        journal.as_ref().map(|j| j.op.as_str()).unwrap_or("command")
    );
    let dir = root.container_dir(id);
    let cgroups_path = journal
        .map(|j| j.cgroups_path)
        .or_else(|| Sidecar::load(&dir).cgroups_path)
        .unwrap_or_else(|| default_cgroups_path(id));
    if let Ok(locks) = root.private_dir("locks") {
        orphans::kill(
            &orphans::holders_of(Path::new("/proc"), &locks.join(id)),
            "a container process left behind by a pinc create that died",
        );
    }
    // libcontainer's own teardown first where its state is readable (a
    // systemd scope is known only to it), then pinc's, which needs none.
    if let Ok(mut container) = libcontainer::container::Container::load(dir.clone()) {
        let _ = container.delete(true);
    }
    let mut cgroups_left = false;
    for d in &kill_cgroup(&cgroups_path, Duration::from_secs(2)) {
        if let Err(e) = pinc_cgroup::teardown::remove(d, Duration::from_secs(2)) {
            tracing::warn!(target: "pinc", "{e}");
            cgroups_left = true;
        }
    }
    let _ = fs::remove_dir_all(&dir);
    let _ = fs::remove_dir_all(root.path().join(".pinc/staging").join(id));
    let views = root.path().join(".pinc/exec");
    for name in names(&views) {
        if name.rsplit_once('.').is_some_and(|(v, _)| v == id) {
            remove_view(&views.join(name));
        }
    }
    if let Err(e) = crate::ledger::Ledger::release(root, id) {
        tracing::warn!(target: "pinc", "failed to release the allocation of {id:?}: {e}");
    }
    // A cgroup that would not go keeps the journal: the next sweep retries.
    if !cgroups_left {
        end(root, id);
    }
    lock.remove();
}

/// SIGKILLs everything in the container's cgroup, in every hierarchy, and
/// waits up to `wait` until it is empty; returns the cgroup's dirs.
/// libcgroups gives a killed process only ~100 ms to leave before its
/// rmdir fails, which a loaded node exceeds: `delete` empties it first.
pub fn kill_cgroup(cgroups_path: &Path, wait: Duration) -> Vec<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mounts = pinc_cgroup::mode::cgroup_mounts(&mountinfo);
    let dirs = pinc_cgroup::teardown::dirs(&mounts, cgroups_path);
    pinc_cgroup::teardown::kill_all(&dirs, wait);
    dirs
}

/// pinc's cgroupsPath for a container whose spec names none (see create).
pub fn default_cgroups_path(id: &str) -> PathBuf {
    PathBuf::from(format!("/pinc/{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_create_is_reclaimed_a_live_one_is_not() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = RuntimeRoot::open(tmp.path()).expect("root");
        let journal = Journal {
            op: "create".into(),
            cgroups_path: "/pinc-test-nonexistent/c1".into(),
        };
        let live = IdLock::acquire(&root, "c1").expect("lock");
        begin(&root, "c1", &journal).expect("begin");
        assert_eq!(read(&root, "c1"), Some(journal));
        fs::create_dir_all(root.container_dir("c1")).expect("dir");
        fs::create_dir_all(root.private_dir("staging").expect("staging").join("c1"))
            .expect("staging");
        sweep(&root);
        assert!(root.container_dir("c1").exists(), "its create still runs");
        drop(live); // As if that create died.
        sweep(&root);
        assert!(!root.container_dir("c1").exists());
        assert!(!root.path().join(".pinc/staging/c1").exists());
        assert!(!pending(&root, "c1"));
        assert!(!root.path().join(".pinc/locks/c1").exists());
    }

    #[test]
    fn a_finished_command_leaves_nothing_to_reclaim() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = RuntimeRoot::open(tmp.path()).expect("root");
        let lock = IdLock::acquire(&root, "c1").expect("lock");
        begin(&root, "c1", &Journal::default()).expect("begin");
        fs::create_dir_all(root.container_dir("c1")).expect("dir");
        end(&root, "c1");
        drop(lock);
        assert!(!reclaim_if_dead(&root, "c1").expect("reclaim"));
        assert!(root.container_dir("c1").exists(), "a finished create stays");
    }

    #[test]
    fn lock_files_without_a_container_go_on_a_full_sweep() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = RuntimeRoot::open(tmp.path()).expect("root");
        drop(IdLock::acquire(&root, "gone").expect("lock"));
        drop(IdLock::acquire(&root, "live").expect("lock"));
        fs::create_dir_all(root.container_dir("live")).expect("dir");
        let busy = IdLock::acquire(&root, "busy").expect("lock");
        sweep(&root);
        assert!(
            root.path().join(".pinc/locks/gone").exists(),
            "not on the create path"
        );
        sweep_all(&root);
        assert!(!root.path().join(".pinc/locks/gone").exists());
        assert!(root.path().join(".pinc/locks/live").exists());
        assert!(
            root.path().join(".pinc/locks/busy").exists(),
            "held: a create runs"
        );
        drop(busy);
    }

    #[test]
    fn views_of_dead_execs_go() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = RuntimeRoot::open(tmp.path()).expect("root");
        let views = root.private_dir("exec").expect("exec");
        let mine = views.join(format!("c1.{}", std::process::id()));
        // pid_max is at most 2^22: this pid never runs.
        let dead = views.join("c1.99999999");
        fs::create_dir_all(mine.join("c1")).expect("mine");
        fs::create_dir_all(dead.join("c1")).expect("dead");
        sweep(&root);
        assert!(mine.exists());
        assert!(!dead.exists());
    }
}
