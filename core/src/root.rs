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

    /// Scratch space pinc owns (locks, staged specs); hidden from `list`.
    pub fn private_dir(&self, name: &str) -> Result<PathBuf, RootError> {
        let dir = self.path.join(".pinc").join(name);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| RootError::Create {
                path: dir.clone(),
                source,
            })?;
        Ok(dir)
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
