//! Path resolution inside a root directory, the way a process `chroot`ed into
//! it would see the path.
//!
//! Symlinks are read with `readlink` and interpreted relative to `root`:
//! absolute targets restart at `root` and `..` stops at `root`, so whatever the
//! links say the result never leaves `root`. The root is typically a host or
//! image tree we do not trust (e.g. paths listed in its ld cache), and the
//! result is bind-mounted, so following a link out of it would leak host files.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// Most symlinks followed while resolving one path (Linux's limit for `open`).
pub const MAX_SYMLINKS: u32 = 40;

/// Errors resolving a path inside a root.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("cannot resolve {}: path must be absolute", path.display())]
    NotAbsolute { path: PathBuf },
    #[error(
        "cannot resolve {} under {}: {} does not exist",
        path.display(),
        root.display(),
        missing.display()
    )]
    Missing {
        root: PathBuf,
        path: PathBuf,
        /// The in-root path of the first component that does not exist.
        missing: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot resolve {} under {}: {} is not a directory",
        path.display(),
        root.display(),
        component.display()
    )]
    NotADirectory {
        root: PathBuf,
        path: PathBuf,
        /// The in-root path of the non-directory that had more components after it.
        component: PathBuf,
    },
    #[error(
        "cannot resolve {} under {}: more than {MAX_SYMLINKS} symlinks (loop?)",
        path.display(),
        root.display()
    )]
    TooManySymlinks { root: PathBuf, path: PathBuf },
    #[error("cannot resolve {} under {}: cannot read {}", path.display(), root.display(), host_path.display())]
    Io {
        root: PathBuf,
        path: PathBuf,
        host_path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ResolveError {
    /// True if a component (or a symlink's target) does not exist.
    pub fn is_missing(&self) -> bool {
        matches!(self, ResolveError::Missing { .. })
    }
}

/// Resolves the absolute `path` as seen inside `root` and returns the host
/// path of the file it names: `root` joined with [`in_root_path`].
pub fn resolve_in_root(root: &Path, path: &Path) -> Result<PathBuf, ResolveError> {
    let resolved = resolve_components(root, path)?;
    Ok(host_path(root, &resolved))
}

/// Resolves the absolute `path` as seen inside `root` and returns the
/// resolved path inside `root` (absolute, no symlinks, no `.`/`..`).
pub fn in_root_path(root: &Path, path: &Path) -> Result<PathBuf, ResolveError> {
    let resolved = resolve_components(root, path)?;
    Ok(in_root(&resolved))
}

/// One pending step of the walk; owned because symlink targets are spliced in.
enum Step {
    Root,
    Parent,
    Name(OsString),
}

fn steps(path: &Path) -> impl Iterator<Item = Step> + '_ {
    path.components().filter_map(|c| match c {
        // A prefix cannot occur on Unix; treat it like the root.
        Component::Prefix(_) | Component::RootDir => Some(Step::Root),
        Component::CurDir => None,
        Component::ParentDir => Some(Step::Parent),
        Component::Normal(name) => Some(Step::Name(name.to_owned())),
    })
}

fn in_root(resolved: &[OsString]) -> PathBuf {
    let mut path = PathBuf::from("/");
    path.extend(resolved);
    path
}

fn host_path(root: &Path, resolved: &[OsString]) -> PathBuf {
    let mut path = root.to_path_buf();
    path.extend(resolved);
    path
}

/// Walks `path` component by component below `root`, returning the resolved
/// in-root components.
fn resolve_components(root: &Path, path: &Path) -> Result<Vec<OsString>, ResolveError> {
    if !path.has_root() {
        return Err(ResolveError::NotAbsolute {
            path: path.to_path_buf(),
        });
    }
    let mut pending: VecDeque<Step> = steps(path).collect();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut links = 0u32;
    while let Some(step) = pending.pop_front() {
        let name = match step {
            Step::Root => {
                resolved.clear();
                continue;
            }
            // Like the kernel at a chroot's `/`: `..` of the root is the root.
            Step::Parent => {
                resolved.pop();
                continue;
            }
            Step::Name(name) => name,
        };
        resolved.push(name);
        let host = host_path(root, &resolved);
        let meta = std::fs::symlink_metadata(&host).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ResolveError::Missing {
                    root: root.to_path_buf(),
                    path: path.to_path_buf(),
                    missing: in_root(&resolved),
                    source,
                }
            } else {
                ResolveError::Io {
                    root: root.to_path_buf(),
                    path: path.to_path_buf(),
                    host_path: host.clone(),
                    source,
                }
            }
        })?;
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(ResolveError::TooManySymlinks {
                    root: root.to_path_buf(),
                    path: path.to_path_buf(),
                });
            }
            let target = std::fs::read_link(&host).map_err(|source| ResolveError::Io {
                root: root.to_path_buf(),
                path: path.to_path_buf(),
                host_path: host.clone(),
                source,
            })?;
            // The kernel treats an empty link target as a missing file.
            if target.as_os_str().is_empty() {
                return Err(ResolveError::Missing {
                    root: root.to_path_buf(),
                    path: path.to_path_buf(),
                    missing: in_root(&resolved),
                    source: std::io::ErrorKind::NotFound.into(),
                });
            }
            // The link is replaced by its target, which is resolved relative
            // to the link's directory (or the root, via Step::Root).
            resolved.pop();
            for step in steps(&target).collect::<Vec<_>>().into_iter().rev() {
                pending.push_front(step);
            }
        } else if !meta.is_dir() && !pending.is_empty() {
            return Err(ResolveError::NotADirectory {
                root: root.to_path_buf(),
                path: path.to_path_buf(),
                component: in_root(&resolved),
            });
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{symlink, write};

    fn resolve(root: &Path, path: &str) -> Result<PathBuf, ResolveError> {
        resolve_in_root(root, Path::new(path))
    }

    #[test]
    fn plain_paths_and_the_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(root, "usr/lib/libx.so.1", "x");
        std::fs::create_dir(root.join("usr/bin")).expect("mkdir");
        assert_eq!(
            resolve(root, "/usr/lib/libx.so.1").expect("resolve"),
            root.join("usr/lib/libx.so.1")
        );
        assert_eq!(
            resolve(root, "/usr/./lib//libx.so.1").expect("resolve"),
            root.join("usr/lib/libx.so.1")
        );
        assert_eq!(
            resolve(root, "/usr/bin/../lib/libx.so.1").expect("resolve"),
            root.join("usr/lib/libx.so.1")
        );
        assert_eq!(resolve(root, "/").expect("resolve"), root);
        assert_eq!(
            in_root_path(root, Path::new("/usr/lib/../lib")).expect("resolve"),
            Path::new("/usr/lib")
        );
        // Like the kernel, `x/..` needs `x` to exist.
        assert!(resolve(root, "/usr/nope/../lib")
            .expect_err("missing")
            .is_missing());
    }

    #[test]
    fn relative_links() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(root, "usr/lib/x86_64-linux-gnu/libcuda.so.535.104.05", "x");
        symlink(
            root,
            "usr/lib/x86_64-linux-gnu/libcuda.so.1",
            "libcuda.so.535.104.05",
        );
        // A directory link, and a link whose target goes up and back down.
        symlink(root, "lib64", "usr/lib/x86_64-linux-gnu");
        symlink(root, "opt/cuda/lib", "../../usr/lib/x86_64-linux-gnu/./");
        let want = root.join("usr/lib/x86_64-linux-gnu/libcuda.so.535.104.05");
        assert_eq!(
            resolve(root, "/usr/lib/x86_64-linux-gnu/libcuda.so.1").expect("resolve"),
            want
        );
        assert_eq!(resolve(root, "/lib64/libcuda.so.1").expect("resolve"), want);
        assert_eq!(
            resolve(root, "/opt/cuda/lib/libcuda.so.1").expect("resolve"),
            want
        );
        assert_eq!(
            in_root_path(root, Path::new("/lib64/libcuda.so.1")).expect("resolve"),
            Path::new("/usr/lib/x86_64-linux-gnu/libcuda.so.535.104.05")
        );
    }

    #[test]
    fn absolute_links_restart_at_the_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(root, "usr/share/real.conf", "x");
        symlink(root, "etc/alt.conf", "/usr/share/real.conf");
        // `/bin -> usr/bin` style merged-usr link plus an absolute dir link.
        write(root, "usr/bin/nvidia-smi", "x");
        symlink(root, "bin", "/usr/bin");
        assert_eq!(
            resolve(root, "/etc/alt.conf").expect("resolve"),
            root.join("usr/share/real.conf")
        );
        assert_eq!(
            resolve(root, "/bin/nvidia-smi").expect("resolve"),
            root.join("usr/bin/nvidia-smi")
        );
    }

    #[test]
    fn dotdot_never_climbs_above_the_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        // Exists on the host (outside root) but not inside it.
        write(dir.path(), "secret", "host");
        symlink(&root, "usr/lib/evil", "../../../../../../../../../secret");
        let err = resolve(&root, "/usr/lib/evil").expect_err("escaped the root");
        assert!(err.is_missing(), "{err:?}");
        assert!(err.to_string().contains("/secret"), "{err}");
        let err = resolve(&root, "/../secret").expect_err("escaped the root");
        assert!(err.is_missing(), "{err:?}");

        // With a file at the same place inside the root, that is what we get.
        write(&root, "etc/passwd", "decoy");
        symlink(
            &root,
            "usr/lib/passwd",
            "../../../../../../../../etc/passwd",
        );
        symlink(&root, "usr/lib/abs-passwd", "/../../etc/passwd");
        for link in ["/usr/lib/passwd", "/usr/lib/abs-passwd", "/../etc/passwd"] {
            let host = resolve(&root, link).expect("resolve");
            assert_eq!(host, root.join("etc/passwd"), "{link}");
            assert_eq!(std::fs::read_to_string(&host).expect("read"), "decoy");
        }

        // An absolute link to a host path outside the root stays inside it.
        let outside = dir.path().join("secret");
        symlink(
            &root,
            "usr/lib/abs-evil",
            outside.to_str().expect("utf-8 tempdir"),
        );
        let err = resolve(&root, "/usr/lib/abs-evil").expect_err("escaped the root");
        assert!(err.is_missing(), "{err:?}");
    }

    #[test]
    fn symlink_loops_and_the_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        symlink(root, "a", "b");
        symlink(root, "b", "/a");
        symlink(root, "self", "./self");
        for path in ["/a", "/self", "/a/x"] {
            let err = resolve(root, path).expect_err("loop");
            assert!(
                matches!(err, ResolveError::TooManySymlinks { .. }),
                "{path}: {err:?}"
            );
        }
        // A chain of exactly MAX_SYMLINKS links resolves; one more does not.
        write(root, "chain/target", "x");
        for i in 0..MAX_SYMLINKS {
            let next = if i + 1 == MAX_SYMLINKS {
                "target".to_owned()
            } else {
                format!("l{}", i + 1)
            };
            symlink(root, &format!("chain/l{i}"), &next);
        }
        assert_eq!(
            resolve(root, "/chain/l0").expect("40 links"),
            root.join("chain/target")
        );
        symlink(root, "chain/start", "l0");
        let err = resolve(root, "/chain/start").expect_err("41 links");
        assert!(
            matches!(err, ResolveError::TooManySymlinks { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn missing_components_and_bad_paths() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(root, "usr/lib/file", "x");
        symlink(root, "usr/lib/dangling", "gone.so.1");

        let err = resolve(root, "/usr/lib64/libcuda.so.1").expect_err("missing");
        assert!(
            matches!(&err, ResolveError::Missing { missing, .. } if missing == Path::new("/usr/lib64")),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("/usr/lib64/libcuda.so.1"), "{msg}");
        assert!(msg.contains(&root.display().to_string()), "{msg}");

        let err = resolve(root, "/usr/lib/dangling").expect_err("dangling");
        assert!(
            matches!(&err, ResolveError::Missing { missing, .. } if missing == Path::new("/usr/lib/gone.so.1")),
            "{err:?}"
        );

        let err = resolve(root, "/usr/lib/file/x").expect_err("not a dir");
        assert!(
            matches!(&err, ResolveError::NotADirectory { component, .. } if component == Path::new("/usr/lib/file")),
            "{err:?}"
        );
        assert!(resolve(root, "/usr/lib/file/..").is_err());

        let err = resolve(root, "usr/lib/file").expect_err("relative");
        assert!(matches!(err, ResolveError::NotAbsolute { .. }), "{err:?}");
    }
}
