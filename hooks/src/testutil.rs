//! Fixture helpers for unit tests.

use std::path::{Path, PathBuf};

use nix::sys::stat::{makedev, mknod, Mode, SFlag};

/// Whether this process may create device nodes and run `ldconfig -r`.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Returns early from a test that needs root (real device nodes via
/// mknod, or `ldconfig -r`), printing one `SKIPPED <test>: <reason>` line
/// to stderr, so a non-root `cargo test -p pinc-hooks` runs the rest.
macro_rules! require_root {
    () => {
        if !$crate::testutil::is_root() {
            eprintln!(
                "SKIPPED {}: needs root (mknod device nodes / ldconfig -r)",
                std::thread::current().name().unwrap_or("?")
            );
            return;
        }
    };
}
pub(crate) use require_root;

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

/// Source of every stand-in shared library: any symbol will do.
const STAND_IN_SOURCE: &[u8] = b"int pinc_stand_in(void) { return 42; }\n";

/// Compiles the stand-in source into the shared library `out` with DT_SONAME
/// `soname`, passing `flags` to `cc` and linking `inputs` after the source.
fn cc_shared(out: &Path, soname: &str, flags: &[&str], inputs: &[&Path]) {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let parent = out.parent().expect("library path has a parent");
    std::fs::create_dir_all(parent).expect("create fixture dirs");
    let mut cmd = Command::new("cc");
    cmd.args(["-shared", "-fPIC"])
        .args(flags)
        .arg(format!("-Wl,-soname,{soname}"))
        .arg("-o")
        .arg(out)
        .args(["-x", "c", "-"]);
    if !inputs.is_empty() {
        cmd.args(["-x", "none"]).args(inputs);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cc (a C compiler is needed to build stand-in libraries)");
    child
        .stdin
        .take()
        .expect("cc stdin")
        .write_all(STAND_IN_SOURCE)
        .expect("write C source to cc");
    let output = child.wait_with_output().expect("wait for cc");
    assert!(
        output.status.success(),
        "cc failed for {}: {}",
        out.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The multiarch-style library directory (relative) for the build target,
/// e.g. `usr/lib/x86_64-linux-gnu`. The name only matters to the tests:
/// ldconfig takes the arch from the ELF header.
pub fn native_lib_dir() -> String {
    format!("usr/lib/{}-linux-gnu", std::env::consts::ARCH)
}

/// Compiles a stand-in shared library `<root>/<dir>/<file>` for the build
/// target with DT_SONAME `soname`, and the soname symlink
/// `<dir>/<soname> -> <file>` when the names differ, as a driver install has.
pub fn shared_lib(root: &Path, dir: &str, file: &str, soname: &str) -> PathBuf {
    let dir_path = root.join(dir.trim_start_matches('/'));
    let path = dir_path.join(file);
    cc_shared(&path, soname, &[], &[]);
    if file != soname {
        std::os::unix::fs::symlink(file, dir_path.join(soname)).expect("create soname symlink");
    }
    path
}

/// Like [`shared_lib`], for i386 (`cc -m32`). Linked with `-nostdlib` so no
/// 32-bit libc is needed, but against a stub `libc.so.6`: ldconfig only tags
/// a library `libc6` (rather than plain ELF) when it needs `libc.so.6`.
#[cfg(target_arch = "x86_64")]
pub fn shared_lib_i386(root: &Path, dir: &str, file: &str, soname: &str) -> PathBuf {
    let stub_dir = tempfile::tempdir().expect("tempdir");
    let stub = stub_dir.path().join("libc.so.6");
    cc_shared(&stub, "libc.so.6", &["-m32", "-nostdlib"], &[]);
    let dir_path = root.join(dir.trim_start_matches('/'));
    let path = dir_path.join(file);
    cc_shared(
        &path,
        soname,
        &["-m32", "-nostdlib", "-Wl,--no-as-needed"],
        &[&stub],
    );
    if file != soname {
        std::os::unix::fs::symlink(file, dir_path.join(soname)).expect("create soname symlink");
    }
    path
}

/// Writes `<root>/etc/ld.so.conf` listing `dirs` (relative to root) and runs
/// `ldconfig -r <root> -c <format>` (`new` or `compat`), returning the path
/// of the `<root>/etc/ld.so.cache` it wrote. Needs root: ldconfig chroots.
pub fn ldconfig(root: &Path, dirs: &[&str], format: &str) -> PathBuf {
    assert!(
        is_root(),
        "ldconfig -r needs root: call require_root!() first"
    );
    let conf: String = dirs
        .iter()
        .map(|d| format!("/{}\n", d.trim_start_matches('/')))
        .collect();
    write(root, "etc/ld.so.conf", &conf);
    let output = std::process::Command::new("ldconfig")
        .arg("-r")
        .arg(root)
        .args(["-c", format])
        .output()
        .expect("run ldconfig");
    assert!(
        output.status.success(),
        "ldconfig -r {} failed: {}",
        root.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    root.join("etc/ld.so.cache")
}
