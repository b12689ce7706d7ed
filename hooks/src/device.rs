//! Device nodes read from the host with `lstat`, never following symlinks.

use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{lstat, major, minor, SFlag};

/// Errors reading a device node.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("device path {path:?} must be absolute and contain only normal components")]
    BadContainerPath { path: String },
    #[error("device node {} does not exist", path.display())]
    Missing {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("cannot lstat {}", path.display())]
    Stat {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("refusing symlink {} (device nodes and their parent directories must not be symlinks)", path.display())]
    Symlink { path: PathBuf },
    #[error("{} is not a character or block device (file type {file_type:#o})", path.display())]
    NotADevice { path: PathBuf, file_type: u32 },
}

impl DeviceError {
    /// True if the node (or a parent directory) does not exist.
    pub fn is_missing(&self) -> bool {
        matches!(self, DeviceError::Missing { .. })
    }
}

/// The kind of a device node: character or block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    Char,
    Block,
}

impl NodeKind {
    /// The OCI `linux.devices[].type` letter: `'c'` or `'b'`.
    pub fn as_char(self) -> char {
        match self {
            NodeKind::Char => 'c',
            NodeKind::Block => 'b',
        }
    }
}

/// A device node as found on the host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceNode {
    /// Path inside the container, e.g. `/dev/nvidia0`.
    pub path: PathBuf,
    /// Path on the host, i.e. `<root>/dev/nvidia0`.
    pub host_path: PathBuf,
    pub kind: NodeKind,
    pub major: u64,
    pub minor: u64,
    /// Permission bits only (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl DeviceNode {
    /// Reads the device node `container_path` (absolute, e.g. `/dev/nvidia0`)
    /// below `root` with `lstat`. The node and every directory between `root`
    /// and it must not be symlinks.
    pub fn read(root: &Path, container_path: &str) -> Result<DeviceNode, DeviceError> {
        let rel = Path::new(container_path).strip_prefix("/").map_err(|_| {
            DeviceError::BadContainerPath {
                path: container_path.to_owned(),
            }
        })?;
        if rel.as_os_str().is_empty()
            || !rel.components().all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(DeviceError::BadContainerPath {
                path: container_path.to_owned(),
            });
        }
        let mut host_path = root.to_path_buf();
        let mut st = None;
        for component in rel.components() {
            host_path.push(component);
            let s = lstat(&host_path).map_err(|source| {
                if source == nix::errno::Errno::ENOENT {
                    DeviceError::Missing {
                        path: host_path.clone(),
                        source,
                    }
                } else {
                    DeviceError::Stat {
                        path: host_path.clone(),
                        source,
                    }
                }
            })?;
            if SFlag::from_bits_truncate(s.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK {
                return Err(DeviceError::Symlink { path: host_path });
            }
            st = Some(s);
        }
        let Some(st) = st else {
            return Err(DeviceError::BadContainerPath {
                path: container_path.to_owned(),
            });
        };
        let file_type = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        let kind = if file_type == SFlag::S_IFCHR {
            NodeKind::Char
        } else if file_type == SFlag::S_IFBLK {
            NodeKind::Block
        } else {
            return Err(DeviceError::NotADevice {
                path: host_path,
                file_type: file_type.bits(),
            });
        };
        Ok(DeviceNode {
            path: PathBuf::from(container_path),
            host_path,
            kind,
            major: major(st.st_rdev),
            minor: minor(st.st_rdev),
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
        })
    }

    /// Like [`DeviceNode::read`], but a missing node is `Ok(None)`.
    pub fn read_optional(
        root: &Path,
        container_path: &str,
    ) -> Result<Option<DeviceNode>, DeviceError> {
        match DeviceNode::read(root, container_path) {
            Ok(node) => Ok(Some(node)),
            Err(e) if e.is_missing() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{chardev, require_root};

    #[test]
    fn reads_char_device() {
        require_root!();
        let dir = tempfile::tempdir().expect("tempdir");
        chardev(dir.path(), "/dev/nvidia0", 195, 0);
        let node = DeviceNode::read(dir.path(), "/dev/nvidia0").expect("read node");
        assert_eq!(node.path, Path::new("/dev/nvidia0"));
        assert_eq!(node.host_path, dir.path().join("dev/nvidia0"));
        assert_eq!(node.kind, NodeKind::Char);
        assert_eq!(node.kind.as_char(), 'c');
        assert_eq!((node.major, node.minor), (195, 0));
        assert_eq!(node.mode, 0o666);
        assert_eq!((node.uid, node.gid), (0, 0));
    }

    #[test]
    fn refuses_symlinked_node() {
        require_root!();
        let dir = tempfile::tempdir().expect("tempdir");
        chardev(dir.path(), "/dev/real", 195, 0);
        std::os::unix::fs::symlink("real", dir.path().join("dev/nvidia0")).expect("symlink");
        let err = DeviceNode::read(dir.path(), "/dev/nvidia0").expect_err("symlink refused");
        assert!(matches!(err, DeviceError::Symlink { .. }), "{err:?}");
        assert!(err.to_string().contains("dev/nvidia0"), "{err}");
        // read_optional must not turn a symlink into "absent".
        assert!(DeviceNode::read_optional(dir.path(), "/dev/nvidia0").is_err());
    }

    #[test]
    fn refuses_symlinked_parent_directory() {
        require_root!();
        let dir = tempfile::tempdir().expect("tempdir");
        chardev(dir.path(), "/real/uverbs0", 231, 192);
        std::fs::create_dir_all(dir.path().join("dev")).expect("mkdir dev");
        std::os::unix::fs::symlink("../real", dir.path().join("dev/infiniband")).expect("symlink");
        let err =
            DeviceNode::read(dir.path(), "/dev/infiniband/uverbs0").expect_err("symlink refused");
        assert!(matches!(err, DeviceError::Symlink { .. }), "{err:?}");
    }

    #[test]
    fn refuses_regular_file_and_reports_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("dev")).expect("mkdir dev");
        std::fs::write(dir.path().join("dev/nvidiactl"), "").expect("write");
        let err = DeviceNode::read(dir.path(), "/dev/nvidiactl").expect_err("not a device");
        assert!(matches!(err, DeviceError::NotADevice { .. }), "{err:?}");
        let err = DeviceNode::read(dir.path(), "/dev/nvidia9").expect_err("missing");
        assert!(err.is_missing());
        assert!(err.to_string().contains("dev/nvidia9"), "{err}");
        assert_eq!(
            DeviceNode::read_optional(dir.path(), "/dev/nvidia9").expect("optional"),
            None
        );
        assert!(matches!(
            DeviceNode::read(dir.path(), "dev/x"),
            Err(DeviceError::BadContainerPath { .. })
        ));
        assert!(matches!(
            DeviceNode::read(dir.path(), "/dev/../etc"),
            Err(DeviceError::BadContainerPath { .. })
        ));
    }
}
