//! The rootfs mounts of a Create request, mounted by the shim at
//! `<bundle>/rootfs` (as runc's shim does) and unmounted on delete.

use std::path::Path;

use containerd_shim::protos::api::Mount;

use crate::errors::{Error, Result};

pub fn mount_rootfs(bundle: &Path, mounts: &[Mount]) -> Result<bool> {
    if mounts.is_empty() {
        return Ok(false);
    }
    let target = bundle.join("rootfs");
    std::fs::create_dir_all(&target).map_err(Error::io("failed to create", &target))?;
    for (n, m) in mounts.iter().enumerate() {
        let done = containerd_shim::mount::mount_rootfs(
            Some(m.type_.as_str()),
            Some(m.source.as_str()),
            &m.options,
            &target,
        );
        if let Err(source) = done {
            if n > 0 {
                unmount_rootfs(bundle);
            }
            return Err(Error::Shim {
                what: "failed to mount the rootfs",
                source,
            });
        }
    }
    Ok(true)
}

/// Unmounts everything at or under `<bundle>/rootfs` (lazily if busy).
pub fn unmount_rootfs(bundle: &Path) {
    let target = bundle.join("rootfs");
    let t = target.to_string_lossy();
    if let Err(e) = containerd_shim::mount::umount_recursive(Some(&t), 0) {
        tracing::warn!("unmount {t}: {e}; retrying lazily");
        if let Err(e) = containerd_shim::mount::umount_recursive(Some(&t), libc::MNT_DETACH) {
            tracing::error!("unmount {t}: {e}");
        }
    }
}
