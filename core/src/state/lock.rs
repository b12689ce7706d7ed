//! Per-container locks: concurrent commands on one id are serialised.
//!
//! A lock is a POSIX record lock (`fcntl(F_SETLKW)`) on
//! `<root>/.pinc/locks/<id>`. Record locks belong to the process, are not
//! inherited across fork and die with their holder: the container process
//! libcontainer forks during create inherits the lock file's descriptor, and
//! with `flock` it kept a killed create's lock held for as long as it lived
//! (every later command on the id waited). Within one process, where record
//! locks do not exclude each other, a registry of held paths does.
//!
//! The file is removed when the container is deleted; a waiter that then
//! wins the lock on the unlinked file notices (inode changed) and retries.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

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
    Lock {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error(transparent)]
    Root(#[from] crate::state::root::RootError),
}

/// Lock paths this process holds, and a wake-up for its threads waiting on one.
static HELD: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
static RELEASED: Condvar = Condvar::new();

/// Claims `path` within this process; waits for another thread's claim to
/// end when `wait`, else returns false.
fn claim(path: &Path, wait: bool) -> bool {
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let set = held.get_or_insert_with(HashSet::new);
        if set.insert(path.to_path_buf()) {
            return true;
        }
        if !wait {
            return false;
        }
        held = RELEASED.wait(held).unwrap_or_else(|e| e.into_inner());
    }
}

fn unclaim(path: &Path) {
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(set) = held.as_mut() {
        set.remove(path);
    }
    RELEASED.notify_all();
}

/// Holds the lock on one container id until dropped.
#[derive(Debug)]
pub struct IdLock {
    file: Option<File>,
    path: PathBuf,
}

impl Drop for IdLock {
    fn drop(&mut self) {
        // Closing the file releases the record lock.
        drop(self.file.take());
        unclaim(&self.path);
    }
}

/// Opens (creating, when `create`) a lock file, private and close-on-exec.
fn open(path: &Path, create: bool) -> Result<File, LockError> {
    OpenOptions::new()
        .create(create)
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

/// A write lock on the whole file; `wait` blocks until it is granted.
/// Ok(false): another process holds it.
fn lock_file(file: &File, wait: bool) -> nix::Result<bool> {
    // SAFETY: flock is plain old data; all-zero is a valid value that the
    // fields set below complete (l_start 0 and l_len 0: the whole file).
    let mut range: libc::flock = unsafe { std::mem::zeroed() };
    range.l_type = libc::F_WRLCK as libc::c_short;
    range.l_whence = libc::SEEK_SET as libc::c_short;
    let cmd = if wait { libc::F_SETLKW } else { libc::F_SETLK };
    loop {
        // SAFETY: the descriptor is open for the call's duration and `range`
        // is a valid flock the kernel only reads for F_SETLK(W).
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), cmd, &range as *const libc::flock) };
        if rc == 0 {
            return Ok(true);
        }
        match nix::errno::Errno::last() {
            nix::errno::Errno::EINTR => continue,
            nix::errno::Errno::EAGAIN | nix::errno::Errno::EACCES if !wait => return Ok(false),
            errno => return Err(errno),
        }
    }
}

impl IdLock {
    /// Blocks until the lock on `id` is ours.
    pub fn acquire(root: &RuntimeRoot, id: &str) -> Result<Self, LockError> {
        let path = root.private_dir("locks")?.join(id);
        loop {
            claim(&path, true);
            // A waiting lock is granted or fails; never None.
            if let Some(lock) = Self::take(root, path.clone(), true, true)? {
                return Ok(lock);
            }
        }
    }

    /// Takes the lock on `id` only if nobody holds it (never blocks).
    pub fn try_acquire(root: &RuntimeRoot, id: &str) -> Result<Option<Self>, LockError> {
        let path = root.private_dir("locks")?.join(id);
        if !claim(&path, false) {
            return Ok(None);
        }
        Self::take(root, path, false, true)
    }

    /// Like `try_acquire`, but only where the lock file exists: a sweep
    /// must not make lock files (a command finishing meanwhile has just
    /// removed its own).
    pub fn try_acquire_existing(root: &RuntimeRoot, id: &str) -> Result<Option<Self>, LockError> {
        let path = root.private_dir("locks")?.join(id);
        if !claim(&path, false) {
            return Ok(None);
        }
        match Self::take(root, path, false, false) {
            Err(LockError::Open { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(None)
            }
            other => other,
        }
    }

    /// Locks `path`, claimed by this process already; the claim ends with
    /// the returned lock, or here when there is none.
    fn take(
        root: &RuntimeRoot,
        path: PathBuf,
        wait: bool,
        create: bool,
    ) -> Result<Option<Self>, LockError> {
        // From here the claim is released by IdLock's drop.
        let mut lock = Self { file: None, path };
        loop {
            let file = open(&lock.path, create)?;
            root.hand_over(&lock.path);
            let locked = lock_file(&file, wait).map_err(|source| LockError::Lock {
                path: lock.path.clone(),
                source,
            })?;
            if !locked {
                return Ok(None);
            }
            // A lock on a file a delete has just unlinked guards nothing;
            // take the one now at the path.
            let held = file.metadata().map(|m| (m.dev(), m.ino())).ok();
            let linked = fs::metadata(&lock.path).map(|m| (m.dev(), m.ino())).ok();
            if held.is_some() && held == linked {
                lock.file = Some(file);
                return Ok(Some(lock));
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

    /// A lock held by another process excludes us and dies with it.
    #[test]
    fn another_process_holds_it_until_it_dies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = RuntimeRoot::open(dir.path()).expect("root");
        let path = root.private_dir("locks").expect("locks").join("c1");
        // python's lockf is fcntl(F_SETLKW): the same kind of lock.
        let mut holder = std::process::Command::new("python3")
            .arg("-c")
            .arg("import fcntl,sys; f=open(sys.argv[1],'a+'); fcntl.lockf(f, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()")
            .arg(&path)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(holder.stdout.take().expect("stdout")),
            &mut line,
        )
        .expect("read");
        assert_eq!(line.trim(), "held");
        assert!(IdLock::try_acquire(&root, "c1").expect("try").is_none());
        holder.kill().expect("kill");
        holder.wait().expect("reap");
        let lock = IdLock::try_acquire(&root, "c1").expect("try");
        assert!(lock.is_some(), "the lock died with its holder");
        // Within the process the held path excludes a second taker too.
        assert!(IdLock::try_acquire(&root, "c1").expect("try").is_none());
        drop(lock);
        assert!(IdLock::try_acquire(&root, "c1").expect("try").is_some());
    }
}
