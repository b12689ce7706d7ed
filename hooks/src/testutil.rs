//! Fixture helpers for unit tests.

use std::path::{Path, PathBuf};

use nix::sys::stat::{makedev, mknod, Mode, SFlag};

pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test creates real device nodes with mknod and needs root (run as root, e.g. `sudo -E cargo test -p pinc-hooks`)"
    );
}

/// Writes `contents` to `<root>/<rel>`, creating parent directories.
pub fn write(root: &Path, rel: &str, contents: &str) -> PathBuf {
    let path = root.join(rel.trim_start_matches('/'));
    let parent = path.parent().expect("fixture path has a parent");
    std::fs::create_dir_all(parent).expect("create fixture dirs");
    std::fs::write(&path, contents).expect("write fixture file");
    path
}

/// Creates a real character device `<root>/<rel>` (mode 0666, parents created).
pub fn chardev(root: &Path, rel: &str, major: u64, minor: u64) -> PathBuf {
    let path = root.join(rel.trim_start_matches('/'));
    let parent = path.parent().expect("fixture path has a parent");
    std::fs::create_dir_all(parent).expect("create fixture dirs");
    mknod(
        &path,
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        makedev(major, minor),
    )
    .expect("mknod fixture device");
    // mknod is subject to the umask; set the mode explicitly.
    nix::sys::stat::fchmodat(
        None,
        &path,
        Mode::from_bits_truncate(0o666),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .expect("chmod fixture device");
    path
}

/// Creates the symlink `<root>/<rel>` -> `target` (parents created).
pub fn symlink(root: &Path, rel: &str, target: &str) {
    let path = root.join(rel.trim_start_matches('/'));
    let parent = path.parent().expect("fixture path has a parent");
    std::fs::create_dir_all(parent).expect("create fixture dirs");
    std::os::unix::fs::symlink(target, &path).expect("create fixture symlink");
}
