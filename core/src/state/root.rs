//! The runtime root: where container state lives.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// Errors preparing the runtime root.
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("failed to create the state directory {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the state directory {path} is not usable")]
    Unusable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A prepared runtime root directory (absolute, existing, mode 0700).
#[derive(Debug, Clone)]
pub struct RuntimeRoot {
    path: PathBuf,
}

/// Where state goes when `--root` is not given: /run/pinc for root,
/// $XDG_RUNTIME_DIR/pinc otherwise, and /tmp/pinc-<uid> when a login
/// session has no XDG_RUNTIME_DIR (e.g. `su` without a PAM session).
pub fn default_path(euid: u32, xdg_runtime_dir: Option<&str>) -> PathBuf {
    if euid == 0 {
        return PathBuf::from("/run/pinc");
    }
    match xdg_runtime_dir {
        Some(dir) if !dir.is_empty() => Path::new(dir).join("pinc"),
        _ => PathBuf::from(format!("/tmp/pinc-{euid}")),
    }
}

impl RuntimeRoot {
    /// Uses `path`, creating it (and parents) if needed.
    pub fn open(path: &Path) -> Result<Self, RootError> {
        if !path.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
                .map_err(|source| RootError::Create {
                    path: path.to_path_buf(),
                    source,
                })?;
        }
        let path = fs::canonicalize(path).map_err(|source| RootError::Unusable {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self { path })
    }

    /// Opens an existing root without creating it: for read-only commands.
    pub fn existing(path: &Path) -> Self {
        Self {
            path: fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state directory of one container.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.path.join(id)
    }

    /// Where pinc's private folder `name` is, made or not.
    pub fn private_path(&self, name: &str) -> PathBuf {
        self.path.join(".pinc").join(name)
    }

    /// Scratch space pinc owns (locks, staged specs); hidden from `list`.
    pub fn private_dir(&self, name: &str) -> Result<PathBuf, RootError> {
        let dir = self.private_path(name);
        let private = self.path.join(".pinc");
        let existed = dir.is_dir();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| RootError::Create {
                path: dir.clone(),
                source,
            })?;
        if !existed {
            self.hand_over(&private);
            self.hand_over(&dir);
        }
        Ok(dir)
    }

    /// The owner of the root when it is not the caller: root working in a
    /// user's root, as Slurm's cleanup (Query/Kill/Delete run as root) does
    /// in `--root=/run/pinc-slurm/<user>`.
    fn foreign_owner(&self) -> Option<(u32, u32)> {
        use std::os::unix::fs::MetadataExt;
        let euid = nix::unistd::geteuid().as_raw();
        let meta = fs::metadata(&self.path).ok()?;
        (euid == 0 && meta.uid() != 0).then(|| (meta.uid(), meta.gid()))
    }

    /// Gives what root creates in a user's root (private dirs, lock and
    /// ledger files) to that user: otherwise the user's next pinc fails
    /// with EACCES on it. Best effort: a failure shows up later as that EACCES.
    pub fn hand_over(&self, path: &Path) {
        if let Some((uid, gid)) = self.foreign_owner() {
            let _ = std::os::unix::fs::lchown(path, Some(uid), Some(gid));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn defaults_follow_runc_conventions() {
        assert_eq!(
            default_path(0, Some("/run/user/0")),
            PathBuf::from("/run/pinc")
        );
        assert_eq!(
            default_path(1000, Some("/run/user/1000")),
            PathBuf::from("/run/user/1000/pinc")
        );
        assert_eq!(default_path(1000, None), PathBuf::from("/tmp/pinc-1000"));
        assert_eq!(
            default_path(1000, Some("")),
            PathBuf::from("/tmp/pinc-1000")
        );
    }

    #[test]
    fn open_creates_private_dirs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = RuntimeRoot::open(&dir.path().join("a/b")).expect("open");
        assert!(root.path().is_dir());
        let locks = root.private_dir("locks").expect("locks");
        assert!(locks.starts_with(root.path()));
        let mode = fs::metadata(&locks).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
