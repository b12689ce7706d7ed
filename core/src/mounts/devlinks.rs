//! The /dev entries every container gets: the symlinks (`/dev/fd`,
//! `/dev/stdin`, ...) and the device nodes (`/dev/null`, ... and the spec's
//! `linux.devices`).
//!
//! Without a mount on /dev they land in the image itself, and libcontainer
//! 0.7 then refuses the next container from the same rootfs ("failed to
//! prepare rootfs": EEXIST), where runc keeps an existing entry. pinc
//! removes entries that are exactly the ones libcontainer will make again
//! (same link target; same device type and number), so the result is runc's.
//! Everything is done relative to fds opened without following symlinks:
//! an image whose /dev (or a folder below it) is a symlink is left alone.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::{LinuxDeviceType, Spec};
use nix::fcntl::{readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

/// The links libcontainer makes, as (name in /dev, target).
const DEFAULT_LINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("kcore", "/proc/kcore"),
];

#[derive(Debug, thiserror::Error)]
#[error("failed to remove the old {path}, which libcontainer would make again")]
pub struct DevLinksError {
    path: PathBuf,
    #[source]
    source: nix::Error,
}

/// libcontainer's default device nodes: (name in /dev, char major, minor).
const DEFAULT_NODES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

fn has_dev_mount(spec: &Spec) -> bool {
    spec.mounts().as_ref().is_some_and(|m| {
        m.iter().any(|m| {
            // "/dev", "/dev/", "dev" and "/./dev" all name it.
            let parts: Vec<_> = m
                .destination()
                .components()
                .filter(|c| matches!(c, std::path::Component::Normal(_)))
                .collect();
            parts.len() == 1 && parts[0].as_os_str() == "dev"
        })
    })
}

/// Opens a directory, unless it is a symlink.
fn open_dir(path: &Path) -> Option<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW).bits())
        .open(path)
        .ok()
}

/// Opens `<rootfs>/dev/<dir>` one component at a time, none a symlink (the
/// rootfs path itself is the caller's, as runc trusts it).
fn open_below_dev(rootfs: &Path, dir: &Path) -> Option<File> {
    let mut current = open_dir(&rootfs.join("dev"))?;
    for part in dir.components() {
        let std::path::Component::Normal(name) = part else {
            return None;
        };
        let next = format!("/proc/self/fd/{}/{}", current.as_raw_fd(), name.to_str()?);
        current = open_dir(Path::new(&next))?;
    }
    Some(current)
}

/// Whether `name` in `dir` is a device node of this kind and number.
fn same_node(dir: &File, name: &str, kind: SFlag, major: u64, minor: u64) -> bool {
    fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok_and(|st| {
        SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == kind
            && nix::sys::stat::major(st.st_rdev) == major
            && nix::sys::stat::minor(st.st_rdev) == minor
    })
}

fn remove(dir: &File, name: &str, shown: PathBuf) -> Result<(), DevLinksError> {
    unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir).map_err(|source| {
        DevLinksError {
            path: shown,
            source,
        }
    })
}

/// The spec's device nodes below /dev, as (folder below /dev, name, kind,
/// major, minor).
fn spec_nodes(spec: &Spec) -> Vec<(PathBuf, String, SFlag, u64, u64)> {
    let devices = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default();
    devices
        .iter()
        .filter_map(|d| {
            let rel = d.path().strip_prefix("/dev").ok()?;
            let name = rel.file_name()?.to_str()?.to_string();
            let folder = rel.parent().unwrap_or(Path::new("")).to_path_buf();
            let kind = match d.typ() {
                LinuxDeviceType::B => SFlag::S_IFBLK,
                LinuxDeviceType::P => SFlag::S_IFIFO,
                _ => SFlag::S_IFCHR,
            };
            Some((folder, name, kind, d.major() as u64, d.minor() as u64))
        })
        .collect()
}

/// Removes the default links left in `rootfs`'s /dev by an earlier
/// container, when the spec mounts nothing on /dev. `in_use` tells whether
/// another container runs from this rootfs (asked only when there is
/// something to clear): its /dev entries are live, so they stay, and
/// libcontainer refuses the new container as before.
pub fn clear(
    spec: &Spec,
    rootfs: &Path,
    in_use: impl FnOnce() -> bool,
) -> Result<(), DevLinksError> {
    if has_dev_mount(spec) {
        return Ok(());
    }
    let dev = rootfs.join("dev");
    let leftover = DEFAULT_LINKS
        .iter()
        .map(|(name, _)| dev.join(name))
        .chain(DEFAULT_NODES.iter().map(|(name, _, _)| dev.join(name)))
        .chain(
            spec_nodes(spec)
                .iter()
                .map(|(f, name, ..)| dev.join(f).join(name)),
        )
        .any(|path| path.symlink_metadata().is_ok());
    if !leftover || in_use() {
        return Ok(());
    }
    let Some(dev) = open_below_dev(rootfs, Path::new("")) else {
        return Ok(());
    };
    let shown = |folder: &Path, name: &str| rootfs.join("dev").join(folder).join(name);
    for (name, target) in DEFAULT_LINKS {
        let same = readlinkat(Some(dev.as_raw_fd()), name)
            .is_ok_and(|t| t == std::ffi::OsStr::new(target));
        if same {
            remove(&dev, name, shown(Path::new(""), name))?;
        }
    }
    for (name, major, minor) in DEFAULT_NODES {
        if same_node(&dev, name, SFlag::S_IFCHR, major, minor) {
            remove(&dev, name, shown(Path::new(""), name))?;
        }
    }
    for (folder, name, kind, major, minor) in spec_nodes(spec) {
        let Some(dir) = open_below_dev(rootfs, &folder) else {
            continue;
        };
        if same_node(&dir, &name, kind, major, minor) {
            remove(&dir, &name, shown(&folder, &name))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn spec(dev_mount: bool) -> Spec {
        let mut spec = Spec::default();
        if !dev_mount {
            let mounts = spec
                .mounts()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|m| m.destination() != Path::new("/dev"))
                .collect();
            spec.set_mounts(Some(mounts));
        }
        spec
    }

    #[test]
    fn removes_only_the_links_libcontainer_makes() {
        let root = tempfile::tempdir().expect("tempdir");
        let dev = root.path().join("dev");
        std::fs::create_dir(&dev).expect("dev");
        symlink("/proc/self/fd", dev.join("fd")).expect("fd");
        symlink("/proc/self/fd/1", dev.join("stdout")).expect("stdout");
        symlink("/elsewhere", dev.join("stdin")).expect("stdin");
        std::fs::write(dev.join("stderr"), "file").expect("stderr");
        clear(&spec(false), root.path(), || false).expect("clear");
        assert!(dev.join("fd").symlink_metadata().is_err());
        assert!(dev.join("stdout").symlink_metadata().is_err());
        assert!(
            dev.join("stdin").symlink_metadata().is_ok(),
            "other links stay"
        );
        assert!(dev.join("stderr").exists(), "files stay");
    }

    #[test]
    fn removes_device_nodes_of_the_same_number_only() {
        use nix::sys::stat::{makedev, mknod, Mode};
        // Device nodes need root; a non-root unit-test run skips, saying so.
        pinc_testkit::require_root!("mknod");
        let root = tempfile::tempdir().expect("tempdir");
        let dev = root.path().join("dev");
        std::fs::create_dir_all(dev.join("infiniband")).expect("dev");
        let node = |p: &Path, major, minor| {
            mknod(
                p,
                SFlag::S_IFCHR,
                Mode::from_bits_truncate(0o666),
                makedev(major, minor),
            )
            .expect("mknod (needs root)")
        };
        node(&dev.join("null"), 1, 3);
        node(&dev.join("zero"), 1, 4);
        node(&dev.join("infiniband/uverbs0"), 231, 192);
        let mut spec = spec(false);
        let device: libcontainer::oci_spec::runtime::LinuxDevice = serde_json::from_value(
            serde_json::json!({"path": "/dev/infiniband/uverbs0", "type": "c", "major": 231, "minor": 192}),
        )
        .expect("device");
        let mut linux = spec.linux().clone().expect("linux");
        linux.set_devices(Some(vec![device]));
        spec.set_linux(Some(linux));
        clear(&spec, root.path(), || false).expect("clear");
        assert!(dev.join("null").symlink_metadata().is_err());
        assert!(
            dev.join("zero").symlink_metadata().is_ok(),
            "another number stays"
        );
        assert!(dev.join("infiniband/uverbs0").symlink_metadata().is_err());
    }

    #[test]
    fn a_rootfs_in_use_or_any_spelling_of_a_dev_mount_is_left_alone() {
        let root = tempfile::tempdir().expect("tempdir");
        let dev = root.path().join("dev");
        std::fs::create_dir(&dev).expect("dev");
        symlink("/proc/self/fd", dev.join("fd")).expect("fd");
        clear(&spec(false), root.path(), || true).expect("clear");
        assert!(dev.join("fd").symlink_metadata().is_ok(), "in use");
        for dest in ["/dev/", "dev", "/./dev"] {
            let mut s = spec(false);
            let mut mounts = s.mounts().clone().unwrap_or_default();
            let m: libcontainer::oci_spec::runtime::Mount = serde_json::from_value(
                serde_json::json!({"destination": dest, "type": "tmpfs", "source": "tmpfs"}),
            )
            .expect("mount");
            mounts.push(m);
            s.set_mounts(Some(mounts));
            clear(&s, root.path(), || false).expect("clear");
            assert!(dev.join("fd").symlink_metadata().is_ok(), "{dest}");
        }
    }

    #[test]
    fn a_dev_mount_or_a_dev_symlink_leaves_the_image_alone() {
        let root = tempfile::tempdir().expect("tempdir");
        let dev = root.path().join("dev");
        std::fs::create_dir(&dev).expect("dev");
        symlink("/proc/self/fd", dev.join("fd")).expect("fd");
        clear(&spec(true), root.path(), || false).expect("clear");
        assert!(dev.join("fd").symlink_metadata().is_ok());

        let other = tempfile::tempdir().expect("tempdir");
        let outside = other.path().join("outside");
        std::fs::create_dir(&outside).expect("outside");
        symlink("/proc/self/fd", outside.join("fd")).expect("fd");
        let image = tempfile::tempdir().expect("tempdir");
        symlink(&outside, image.path().join("dev")).expect("dev link");
        clear(&spec(false), image.path(), || false).expect("clear");
        assert!(
            outside.join("fd").symlink_metadata().is_ok(),
            "never follows /dev"
        );
    }
}
