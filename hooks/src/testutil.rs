//! Fixture helpers for unit tests, on top of `pinc-testkit` (the tree
//! builder and the skip convention shared by all of pinc's tests).

use std::path::{Path, PathBuf};

use pinc_testkit::tree::{self, SharedObject};

/// Skips a test that needs root (real device nodes via mknod, or
/// `ldconfig -r`) with one `SKIPPED <test>: <reason>` line, so a non-root
/// `cargo test -p pinc-devices` runs the rest.
macro_rules! require_root {
    () => {
        pinc_testkit::require_root!("mknod device nodes / ldconfig -r")
    };
}
pub(crate) use require_root;

/// Writes `contents` to `<root>/<rel>`, creating parent directories.
pub fn write(root: &Path, rel: &str, contents: &str) -> PathBuf {
    tree::file(root, rel, contents)
}

/// Creates a real character device `<root>/<rel>` (mode 0666, parents created).
pub fn chardev(root: &Path, rel: &str, major: u64, minor: u64) -> PathBuf {
    tree::chardev(root, rel, major, minor, 0o666)
}

/// Creates the symlink `<root>/<rel>` -> `target` (parents created).
pub fn symlink(root: &Path, rel: &str, target: &str) {
    tree::symlink(root, rel, target);
}

/// The multiarch-style library directory (relative) for the build target,
/// e.g. `usr/lib/x86_64-linux-gnu`. The name only matters to the tests:
/// ldconfig takes the arch from the ELF header.
pub fn native_lib_dir() -> String {
    format!("usr/lib/{}-linux-gnu", std::env::consts::ARCH)
}

/// `<dir>/<soname> -> <file>` when the names differ, as a driver install has.
fn soname_link(root: &Path, dir: &str, file: &str, soname: &str) {
    if file != soname {
        tree::symlink(root, &format!("{dir}/{soname}"), file);
    }
}

/// Compiles a stand-in shared library `<root>/<dir>/<file>` for the build
/// target with DT_SONAME `soname`, and the soname symlink.
pub fn shared_lib(root: &Path, dir: &str, file: &str, soname: &str) -> PathBuf {
    let path = SharedObject::new(&tree::path(root, &format!("{dir}/{file}")), soname).build();
    soname_link(root, dir, file, soname);
    path
}

/// Like [`shared_lib`], for i386 (`cc -m32`). Linked with `-nostdlib` so no
/// 32-bit libc is needed, but against a stub `libc.so.6`: ldconfig only tags
/// a library `libc6` (rather than plain ELF) when it needs `libc.so.6`.
#[cfg(target_arch = "x86_64")]
pub fn shared_lib_i386(root: &Path, dir: &str, file: &str, soname: &str) -> PathBuf {
    let stub_dir = tempfile::tempdir().expect("tempdir");
    let stub = SharedObject::new(&stub_dir.path().join("libc.so.6"), "libc.so.6")
        .flag("-m32")
        .flag("-nostdlib")
        .build();
    let path = SharedObject::new(&tree::path(root, &format!("{dir}/{file}")), soname)
        .flag("-m32")
        .flag("-nostdlib")
        .flag("-Wl,--no-as-needed")
        .link(&stub)
        .build();
    soname_link(root, dir, file, soname);
    path
}

/// Writes `<root>/etc/ld.so.conf` listing `dirs` (relative to root) and runs
/// `ldconfig -r <root> -c <format>` (`new` or `compat`), returning the path
/// of the `<root>/etc/ld.so.cache` it wrote. Needs root: ldconfig chroots.
pub fn ldconfig(root: &Path, dirs: &[&str], format: &str) -> PathBuf {
    tree::ldconfig(root, dirs, Some(format))
}
