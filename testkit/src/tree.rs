//! Fixture trees: a temporary directory laid out like the part of a
//! machine a test needs (`/dev`, `/proc`, `/sys`, a driver install).
//!
//! Every helper takes the tree's root and a path inside it (a leading `/`
//! is allowed: `"/dev/nvidia0"` and `"dev/nvidia0"` are the same), creates
//! missing parent directories, returns the host path it made, and panics
//! with the path when it cannot: these are test fixtures.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sys::stat::{makedev, mknod, Mode, SFlag};

/// The host path of `rel` inside the tree at `root`.
pub fn path(root: &Path, rel: &str) -> PathBuf {
    root.join(rel.trim_start_matches('/'))
}

/// Creates the parent directories of `path`.
fn parents(path: &Path) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .unwrap_or_else(|e| panic!("create fixture dirs {}: {e}", parent.display()));
    }
}

/// Sets the permission bits of `path` exactly (mknod and create obey the
/// umask).
pub fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// The directory `<root>/<rel>`, with its parents.
pub fn dir(root: &Path, rel: &str) -> PathBuf {
    let path = path(root, rel);
    fs::create_dir_all(&path)
        .unwrap_or_else(|e| panic!("create fixture dir {}: {e}", path.display()));
    path
}

/// The file `<root>/<rel>` holding `contents`.
pub fn file(root: &Path, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = path(root, rel);
    parents(&path);
    fs::write(&path, contents)
        .unwrap_or_else(|e| panic!("write fixture file {}: {e}", path.display()));
    path
}

/// The file `<root>/<rel>` holding `contents`, with permission bits `mode`
/// (e.g. `0o755` for a stand-in script).
pub fn file_with_mode(root: &Path, rel: &str, contents: impl AsRef<[u8]>, mode: u32) -> PathBuf {
    let path = file(root, rel, contents);
    chmod(&path, mode);
    path
}

/// The symlink `<root>/<rel>` -> `target` (taken as is: relative targets
/// resolve from the link's directory).
pub fn symlink(root: &Path, rel: &str, target: impl AsRef<Path>) -> PathBuf {
    let path = path(root, rel);
    parents(&path);
    std::os::unix::fs::symlink(target.as_ref(), &path).unwrap_or_else(|e| {
        panic!(
            "symlink {} -> {}: {e}",
            path.display(),
            target.as_ref().display()
        )
    });
    path
}

/// A real character device `<root>/<rel>` with number `major:minor` and
/// permission bits exactly `mode`. Needs root (CAP_MKNOD): call
/// [`require_root!`](crate::require_root) first.
pub fn chardev(root: &Path, rel: &str, major: u64, minor: u64, mode: u32) -> PathBuf {
    let path = path(root, rel);
    parents(&path);
    mknod(
        &path,
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(mode),
        makedev(major, minor),
    )
    .unwrap_or_else(|e| {
        panic!(
            "mknod {} ({major}:{minor}): {e} (device nodes need root)",
            path.display()
        )
    });
    chmod(&path, mode);
    path
}

/// Writes `<root>/etc/ld.so.conf` listing `dirs` (paths inside the tree)
/// and runs `ldconfig -r <root>`, with `-c <format>` when given (`new` or
/// `compat`). Returns the path of the `<root>/etc/ld.so.cache` it wrote.
/// Needs root: ldconfig chroots.
pub fn ldconfig(root: &Path, dirs: &[&str], format: Option<&str>) -> PathBuf {
    assert!(
        crate::is_root(),
        "ldconfig -r needs root: call require_root!() first"
    );
    let conf: String = dirs
        .iter()
        .map(|d| format!("/{}\n", d.trim_start_matches('/')))
        .collect();
    file(root, "etc/ld.so.conf", conf);
    let mut cmd = Command::new("ldconfig");
    cmd.arg("-r").arg(root);
    if let Some(format) = format {
        cmd.args(["-c", format]);
    }
    let output = cmd.output().expect("run ldconfig");
    assert!(
        output.status.success(),
        "ldconfig -r {} failed: {}",
        root.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    path(root, "etc/ld.so.cache")
}

/// Where the C source of a [`SharedObject`] comes from.
enum Source {
    /// A file on disk (its `.c` name tells cc the language).
    File(PathBuf),
    /// Text given to cc on stdin.
    Text(Vec<u8>),
}

/// A C shared object compiled with the host's `cc`, with a DT_SONAME:
/// stand-in driver libraries, the fake NVML.
///
/// ```no_run
/// # let out = std::path::Path::new("/tmp/fixture/usr/lib/libcuda.so.1");
/// use pinc_testkit::tree::SharedObject;
/// SharedObject::new(out, "libcuda.so.1").define("N=1").build();
/// ```
pub struct SharedObject {
    out: PathBuf,
    soname: String,
    source: Source,
    flags: Vec<OsString>,
    links: Vec<PathBuf>,
}

/// Any symbol will do for a library that only has to exist and load.
const STAND_IN_SOURCE: &[u8] = b"int pinc_stand_in(void) { return 42; }\n";

impl SharedObject {
    /// The shared object `out` with DT_SONAME `soname`, built from a
    /// one-function stand-in source unless [`Self::file`] or [`Self::text`]
    /// says otherwise.
    pub fn new(out: &Path, soname: &str) -> Self {
        Self {
            out: out.to_path_buf(),
            soname: soname.to_owned(),
            source: Source::Text(STAND_IN_SOURCE.to_vec()),
            flags: Vec::new(),
            links: Vec::new(),
        }
    }

    /// Compiles the C file `source`.
    pub fn file(mut self, source: &Path) -> Self {
        self.source = Source::File(source.to_path_buf());
        self
    }

    /// Compiles `source`, C text.
    pub fn text(mut self, source: impl Into<Vec<u8>>) -> Self {
        self.source = Source::Text(source.into());
        self
    }

    /// Passes `flag` to cc, before the sources (`-m32`, `-std=c11`, ...).
    pub fn flag(mut self, flag: impl Into<OsString>) -> Self {
        self.flags.push(flag.into());
        self
    }

    /// Defines a preprocessor macro: `define("N=1")` passes `-DN=1`.
    pub fn define(self, definition: &str) -> Self {
        self.flag(format!("-D{definition}"))
    }

    /// Links `input` (an object or library) after the source.
    pub fn link(mut self, input: &Path) -> Self {
        self.links.push(input.to_path_buf());
        self
    }

    /// Runs cc; panics with its stderr when it fails. Returns the output
    /// path.
    pub fn build(self) -> PathBuf {
        use std::io::Write;

        parents(&self.out);
        let mut cmd = Command::new("cc");
        cmd.args(["-shared", "-fPIC"])
            .args(&self.flags)
            .arg(format!("-Wl,-soname,{}", self.soname))
            .arg("-o")
            .arg(&self.out);
        let stdin = match self.source {
            Source::File(ref file) => {
                cmd.arg(file);
                None
            }
            Source::Text(ref text) => {
                cmd.args(["-x", "c", "-"]);
                Some(text)
            }
        };
        if !self.links.is_empty() {
            cmd.args(["-x", "none"]).args(&self.links);
        }
        let mut child = cmd
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run cc (a C compiler is needed to build fixture libraries)");
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .expect("cc stdin")
                .write_all(text)
                .expect("write C source to cc");
        }
        let output = child.wait_with_output().expect("wait for cc");
        assert!(
            output.status.success(),
            "cc failed for {}: {}",
            self.out.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_dirs_and_links_land_inside_the_root() {
        let root = std::env::temp_dir().join(format!("pinc-testkit-{}", std::process::id()));
        let f = file(&root, "/proc/driver/x/information", "Model: x\n");
        assert_eq!(f, root.join("proc/driver/x/information"));
        assert_eq!(fs::read_to_string(&f).expect("read"), "Model: x\n");
        let d = dir(&root, "sys/class/infiniband");
        assert!(d.is_dir());
        let l = symlink(&root, "sys/class/infiniband/mlx5_0", "../../x");
        assert_eq!(fs::read_link(&l).expect("readlink"), Path::new("../../x"));
        let s = file_with_mode(&root, "usr/bin/tool", "#!/bin/sh\n", 0o755);
        assert_eq!(
            fs::metadata(&s).expect("stat").permissions().mode() & 0o777,
            0o755
        );
        fs::remove_dir_all(&root).expect("clean up");
    }

    #[test]
    fn device_nodes_have_the_number_and_mode_asked_for() {
        crate::require_root!("mknod");
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let root = std::env::temp_dir().join(format!("pinc-testkit-dev-{}", std::process::id()));
        let node = chardev(&root, "/dev/nvidia3", 195, 3, 0o666);
        let meta = fs::metadata(&node).expect("stat");
        assert!(meta.file_type().is_char_device());
        assert_eq!(meta.rdev(), makedev(195, 3));
        assert_eq!(meta.permissions().mode() & 0o777, 0o666);
        fs::remove_dir_all(&root).expect("clean up");
    }
}
