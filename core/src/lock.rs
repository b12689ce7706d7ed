//! Per-container locks: concurrent commands on one id are serialised.
//!
//! A lock is `flock(2)` on `<root>/.pinc/locks/<id>`. The file is removed
//! when the container is deleted; a waiter that then wins the lock on the
//! unlinked file notices (inode changed) and retries on the new file.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;

use nix::fcntl::{Flock, FlockArg};

use crate::RuntimeRoot;

/// Errors taking a container lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("failed to open lock file {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to lock {path}")]
    Flock {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error(transparent)]
    Root(#[from] crate::root::RootError),
}

/// Holds the lock on one container id until dropped.
#[derive(Debug)]
pub struct IdLock {
    _lock: Flock<File>,
    path: PathBuf,
}

/// Opens (creating) a lock file, private and close-on-exec.
fn open(path: &std::path::Path) -> Result<File, LockError> {
    OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| LockError::Open {
            path: path.to_path_buf(),
            source,
        })
}

impl IdLock {
    /// Blocks until the lock on `id` is ours.
    pub fn acquire(root: &RuntimeRoot, id: &str) -> Result<Self, LockError> {
        let path = root.private_dir("locks")?.join(id);
        loop {
            let file = open(&path)?;
            root.hand_over(&path);
            let lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, source)| {
                LockError::Flock {
                    path: path.clone(),
                    source,
                }
            })?;
            let held = lock.metadata().map(|m| (m.dev(), m.ino())).ok();
            let linked = fs::metadata(&path).map(|m| (m.dev(), m.ino())).ok();
            if held.is_some() && held == linked {
                return Ok(Self { _lock: lock, path });
            }
        }
    }

    /// Takes the lock on `id` only if nobody holds it (never blocks).
    pub fn try_acquire(root: &RuntimeRoot, id: &str) -> Result<Option<Self>, LockError> {
        let path = root.private_dir("locks")?.join(id);
        loop {
            let file = open(&path)?;
            root.hand_over(&path);
            let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => lock,
                Err((_, nix::Error::EWOULDBLOCK)) => return Ok(None),
                Err((_, source)) => return Err(LockError::Flock { path, source }),
            };
            // As in `acquire`: a lock on a file a delete has just unlinked
            // guards nothing; take the one now at the path.
            let held = lock.metadata().map(|m| (m.dev(), m.ino())).ok();
            let linked = fs::metadata(&path).map(|m| (m.dev(), m.ino())).ok();
            if held.is_some() && held == linked {
                return Ok(Some(Self { _lock: lock, path }));
            }
        }
    }

    /// Removes the lock file while still holding it (on delete).
    pub fn remove(self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use super::*;

    #[test]
    fn serialises_holders_and_survives_removal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = RuntimeRoot::open(dir.path()).expect("root");
        let inside = Arc::new(AtomicU32::new(0));
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let root = root.clone();
                let inside = Arc::clone(&inside);
                std::thread::spawn(move || {
                    let lock = IdLock::acquire(&root, "c1").expect("lock");
                    assert_eq!(
                        inside.fetch_add(1, Ordering::SeqCst),
                        0,
                        "two holders at once"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    inside.fetch_sub(1, Ordering::SeqCst);
                    if i % 2 == 0 {
                        lock.remove();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread");
        }
    }
}
