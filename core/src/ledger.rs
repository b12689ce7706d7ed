//! The node's allocation ledger: which cores (and memory nodes) placed
//! containers hold, so two pinc containers never share a core.
//!
//! One JSON file under the runtime root, read and rewritten (temp file +
//! rename) under an exclusive `flock`. Entries are released on delete and on
//! a failed create; entries of containers that no longer exist (a crashed
//! create, a killed runtime, a removed state dir) are reclaimed whenever the
//! ledger is next updated. A create in progress holds its id lock and has no
//! state.json yet, so "no state and lock free" is exactly "dead".

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use pinc_cpulist::CpuList;
use serde::{Deserialize, Serialize};

use crate::state::lock::IdLock;
use crate::RuntimeRoot;

/// Errors reading or writing the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("failed to open the allocation ledger {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to lock the allocation ledger {path}")]
    Lock {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("failed to write the allocation ledger {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the allocation ledger {path} is corrupt")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Root(#[from] crate::state::root::RootError),
    #[error(transparent)]
    IdLock(#[from] crate::state::lock::LockError),
}

/// What one container holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub id: String,
    /// Whole cores (all their PUs).
    pub cpus: CpuList,
    pub mems: CpuList,
}

/// The ledger of one runtime root.
pub struct Ledger {
    root: RuntimeRoot,
    path: PathBuf,
    lock_path: PathBuf,
}

/// Where a write puts the ledger before its rename.
fn tmp_of(file: &Path) -> PathBuf {
    file.with_extension("json.tmp")
}

/// The ledger's folder under the runtime root's private dir, and its file.
const DIR: &str = "ledger";
const FILE: &str = "allocations.json";

impl Ledger {
    pub fn open(root: &RuntimeRoot) -> Result<Self, LedgerError> {
        let dir = root.private_dir(DIR)?;
        Ok(Self {
            root: root.clone(),
            path: dir.join(FILE),
            lock_path: dir.join("lock"),
        })
    }

    fn lock(&self) -> Result<Flock<File>, LedgerError> {
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&self.lock_path)
            .map_err(|source| LedgerError::Open {
                path: self.lock_path.clone(),
                source,
            })?;
        self.root.hand_over(&self.lock_path);
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, source)| LedgerError::Lock {
            path: self.lock_path.clone(),
            source,
        })
    }

    fn read(&self) -> Result<Vec<Allocation>, LedgerError> {
        match fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| LedgerError::Corrupt {
                path: self.path.clone(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(LedgerError::Open {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Where `root`'s ledger file is (whether or not it exists yet), for
    /// callers that must not create the ledger just to look at it.
    pub fn file(root: &RuntimeRoot) -> PathBuf {
        root.private_path(DIR).join(FILE)
    }

    fn tmp_path(&self) -> PathBuf {
        tmp_of(&self.path)
    }

    /// Removes the temporary file of a write whose pinc was killed before
    /// its rename (the ledger itself is whole: the rename never happened).
    pub fn sweep(root: &RuntimeRoot) -> Result<(), LedgerError> {
        if !tmp_of(&Self::file(root)).exists() {
            return Ok(());
        }
        let ledger = Self::open(root)?;
        let _lock = ledger.lock()?;
        let _ = fs::remove_file(ledger.tmp_path());
        Ok(())
    }

    fn write(&self, allocations: &[Allocation]) -> Result<(), LedgerError> {
        let tmp = self.tmp_path();
        let err = |source| LedgerError::Write {
            path: self.path.clone(),
            source,
        };
        let json = serde_json::to_vec(allocations).map_err(|source| LedgerError::Corrupt {
            path: self.path.clone(),
            source,
        })?;
        let mut f = File::create(&tmp).map_err(err)?;
        self.root.hand_over(&tmp);
        f.write_all(&json)
            .and_then(|_| f.sync_data())
            .map_err(err)?;
        fs::rename(&tmp, &self.path).map_err(err)
    }

    /// Drops entries of containers that are gone; `except` is the caller's
    /// own id (whose lock it holds).
    fn reclaim(
        &self,
        allocations: &mut Vec<Allocation>,
        except: Option<&str>,
    ) -> Result<(), LedgerError> {
        let mut kept = Vec::with_capacity(allocations.len());
        for a in allocations.drain(..) {
            let alive = Some(a.id.as_str()) == except
                || self.root.container_dir(&a.id).join("state.json").exists()
                || match IdLock::try_acquire(&self.root, &a.id)? {
                    // Someone holds the id: a create in progress.
                    None => true,
                    Some(lock) => {
                        // Re-check under the lock, then drop the entry and the lock file.
                        let exists = self.root.container_dir(&a.id).join("state.json").exists();
                        if !exists {
                            lock.remove();
                            tracing::info!(target: "pinc", id = a.id, "reclaimed the allocation of a container that no longer exists");
                        }
                        exists
                    }
                };
            if alive {
                kept.push(a);
            }
        }
        *allocations = kept;
        Ok(())
    }

    /// Runs `f` on the live allocations (others' dead entries reclaimed) under
    /// the lock; writes them back if `f` changed them.
    pub fn update<T, E>(
        &self,
        own_id: Option<&str>,
        f: impl FnOnce(&mut Vec<Allocation>) -> Result<T, E>,
    ) -> Result<Result<T, E>, LedgerError> {
        let _lock = self.lock()?;
        let before = self.read()?;
        let mut allocations = before.clone();
        self.reclaim(&mut allocations, own_id)?;
        let result = f(&mut allocations);
        if allocations != before {
            self.write(&allocations)?;
        }
        Ok(result)
    }

    /// The live allocations.
    pub fn list(&self) -> Result<Vec<Allocation>, LedgerError> {
        self.update(None, |a| Ok::<_, std::convert::Infallible>(a.clone()))
            .map(|r| r.unwrap_or_else(|e| match e {}))
    }

    /// Releases what `id` holds; a no-op when the ledger was never used.
    pub fn release(root: &RuntimeRoot, id: &str) -> Result<(), LedgerError> {
        if !Self::file(root).exists() {
            return Ok(());
        }
        let ledger = Self::open(root)?;
        ledger
            .update(Some(id), |a| {
                a.retain(|x| x.id != id);
                Ok::<_, std::convert::Infallible>(())
            })
            .map(|r| r.unwrap_or_else(|e| match e {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc(id: &str, cpus: &str) -> Allocation {
        Allocation {
            id: id.into(),
            cpus: cpus.parse().expect("cpus"),
            mems: "0".parse().expect("mems"),
        }
    }

    #[test]
    fn records_releases_and_reclaims_the_dead() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = RuntimeRoot::open(dir.path()).expect("root");
        let ledger = Ledger::open(&root).expect("ledger");
        // "live" has a state dir; "dead" has none and nobody holds its lock.
        fs::create_dir_all(root.container_dir("live")).expect("dir");
        fs::write(root.container_dir("live").join("state.json"), "{}").expect("state");
        ledger
            .update(Some("live"), |a| {
                a.push(alloc("live", "0-1"));
                a.push(alloc("dead", "2-3"));
                Ok::<_, ()>(())
            })
            .expect("io")
            .expect("ok");
        let ids: Vec<String> = ledger
            .list()
            .expect("list")
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(
            ids,
            vec!["live"],
            "the dead entry is reclaimed on the next update"
        );

        // A create in progress (its id lock held, no state yet) is not reclaimed.
        let _busy = IdLock::acquire(&root, "creating").expect("lock");
        ledger
            .update(Some("x"), |a| {
                a.push(alloc("creating", "4"));
                Ok::<_, ()>(())
            })
            .expect("io")
            .expect("ok");
        assert_eq!(ledger.list().expect("list").len(), 2);

        Ledger::release(&root, "live").expect("release");
        Ledger::release(&root, "creating").expect("release");
        assert!(ledger.list().expect("list").is_empty());
        assert!(
            !root.path().join(".pinc/locks/dead").exists(),
            "reclaim leaves no lock file"
        );
    }

    #[test]
    fn a_failed_update_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = RuntimeRoot::open(dir.path()).expect("root");
        let ledger = Ledger::open(&root).expect("ledger");
        let r = ledger
            .update(Some("a"), |_| Err::<(), _>("no free cores"))
            .expect("io");
        assert_eq!(r, Err("no free cores"));
        assert!(!dir.path().join(".pinc/ledger/allocations.json").exists());
        assert!(!Ledger::file(&root).exists());
        ledger
            .update(Some("a"), |a| {
                a.push(alloc("a", "0"));
                Ok::<(), &str>(())
            })
            .expect("io")
            .expect("update");
        assert!(
            Ledger::file(&root).exists(),
            "Ledger::file names the file open() writes"
        );
    }
}
