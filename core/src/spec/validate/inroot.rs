//! Paths inside a rootfs, resolved as if the rootfs were "/" (openat2 with
//! RESOLVE_IN_ROOT): a symlink in the rootfs never leads out of it, which
//! matters when pinc, as root on the host, touches a user's rootfs.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};

/// Opens the rootfs itself, as the anchor for [`open`] and [`mkdir_all`].
pub(crate) fn open_root(root: &Path) -> io::Result<OwnedFd> {
    let fd = nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: open returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens `path` (absolute or not, taken from the rootfs' "/") inside `root`.
pub(crate) fn open(root: &OwnedFd, path: &Path, flags: OFlag) -> io::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let relative = clean(path);
    let target: &Path = if relative.as_os_str().is_empty() {
        Path::new(".")
    } else {
        &relative
    };
    let fd = openat2(root.as_raw_fd(), target, how)?;
    // SAFETY: openat2 returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `path` made relative, with "." and ".." resolved lexically (clamped at
/// the root), as runc cleans paths before it uses them.
fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// `mkdir -p` of `path` inside `root`, each new directory with `mode`
/// (less the umask) and owned by `owner` when given. Existing components
/// (symlinks included, resolved inside the root) are kept.
pub(crate) fn mkdir_all(
    root: &Path,
    path: &Path,
    mode: u32,
    owner: Option<(u32, u32)>,
) -> io::Result<()> {
    let root_fd = open_root(root)?;
    let dir_flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
    let mut parent = open(&root_fd, Path::new("."), dir_flags)?;
    let mut prefix = PathBuf::new();
    for name in clean(path).components() {
        prefix.push(name);
        match open(&root_fd, &prefix, dir_flags) {
            Ok(fd) => parent = fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match nix::sys::stat::mkdirat(
                    Some(parent.as_raw_fd()),
                    name.as_os_str(),
                    Mode::from_bits_truncate(mode),
                ) {
                    Ok(()) => {
                        if let Some((uid, gid)) = owner {
                            nix::unistd::fchownat(
                                Some(parent.as_raw_fd()),
                                name.as_os_str(),
                                Some(Uid::from_raw(uid)),
                                Some(Gid::from_raw(gid)),
                                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                            )?;
                        }
                    }
                    // Made meanwhile, or a dangling symlink: resolve it below.
                    Err(nix::Error::EEXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                parent = open(&root_fd, &prefix, dir_flags)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    #[test]
    fn creates_missing_dirs_and_keeps_symlinks_inside_the_root() {
        let root = tempfile::tempdir().expect("root");
        let outside = tempfile::tempdir().expect("outside");
        fs::create_dir(root.path().join("var")).expect("var");
        // An absolute symlink is taken from the rootfs' "/", not the host's.
        symlink("/var", root.path().join("home")).expect("home");
        symlink(outside.path(), root.path().join("escape")).expect("escape");
        mkdir_all(root.path(), Path::new("/home/user/work"), 0o755, None).expect("mkdir");
        assert!(root.path().join("var/user/work").is_dir());
        // Resolved as <root>/<outside>, which does not exist: refused.
        let result = mkdir_all(root.path(), Path::new("/escape/x"), 0o755, None);
        assert!(result.is_err(), "{result:?}");
        assert!(
            !outside.path().join("x").exists(),
            "created outside the root"
        );
        mkdir_all(root.path(), Path::new("/../../a/./b"), 0o755, None).expect("mkdir");
        assert!(root.path().join("a/b").is_dir());
        fs::write(root.path().join("file"), "").expect("file");
        assert!(mkdir_all(root.path(), Path::new("/file/sub"), 0o755, None).is_err());
    }

    #[test]
    fn open_resolves_in_root() {
        let root = tempfile::tempdir().expect("root");
        fs::create_dir_all(root.path().join("bin")).expect("bin");
        fs::write(root.path().join("bin/busybox"), "").expect("busybox");
        symlink("/bin/busybox", root.path().join("bin/sh")).expect("sh");
        let fd = open_root(root.path()).expect("root fd");
        open(&fd, Path::new("/bin/sh"), OFlag::O_PATH).expect("in root");
        assert!(open(&fd, Path::new("/etc/passwd"), OFlag::O_PATH).is_err());
    }
}
