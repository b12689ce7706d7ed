//! The NVIDIA driver's user-space files (libraries and tools) to mount into a
//! GPU container, chosen by `NVIDIA_DRIVER_CAPABILITIES`.
//!
//! Libraries are found through `<root>/etc/ld.so.cache` (so whatever
//! directory the distribution or installer used), binaries in `<root>/usr/bin`,
//! `/usr/sbin`, `/bin` and `/sbin`. Both are resolved with
//! [`resolve_in_root`], so symlinks never lead out of `root`.
//!
//! A cache entry matches a library prefix when its soname is `<prefix>.so` or
//! starts with `<prefix>.so.`. Per capability:
//!
//! | capability | libraries | binaries |
//! |---|---|---|
//! | `utility` | `libnvidia-ml`, `libnvidia-cfg` | `nvidia-smi`, `nvidia-debugdump`, `nvidia-persistenced` |
//! | `compute` | `libcuda`, `libcudadebugger`, `libnvidia-opencl`, `libnvidia-ptxjitcompiler`, `libnvidia-fatbinaryloader`, `libnvidia-allocator`, `libnvidia-compiler`, `libnvidia-nvvm`, `libnvidia-pkcs11` | `nvidia-cuda-mps-control`, `nvidia-cuda-mps-server` |
//! | `video` | `libvdpau_nvidia`, `libnvidia-encode`, `libnvidia-opticalflow`, `libnvcuvid` | |
//! | `graphics` | `libnvidia-eglcore`, `libnvidia-glcore`, `libnvidia-tls`, `libnvidia-glsi`, `libnvidia-fbc`, `libnvidia-rtcore`, `libnvoptix`, `libGLX_nvidia`, `libEGL_nvidia`, `libGLESv2_nvidia`, `libGLESv1_CM_nvidia`, `libnvidia-glvkspirv`, `libnvidia-gpucomp` | |
//! | `display` | none (the X server modules are not in the ld cache) | |
//! | `ngx` | `libnvidia-ngx` | |
//! | `compat32` | the i386 builds of the libraries selected above (x86-64 hosts) | |
//!
//! Only libraries built for the native arch are taken, plus i386 ones with
//! `compat32`. Unset or empty means `utility,compute`; `all` means everything.

use std::collections::HashSet;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::ldcache::{Arch, LdCache, LdCacheError};
use crate::resolve::{resolve_in_root, ResolveError};

/// Directories searched (in order) for driver binaries, inside the root.
pub const BIN_DIRS: [&str; 4] = ["/usr/bin", "/usr/sbin", "/bin", "/sbin"];

/// Errors choosing driver files.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("unknown NVIDIA driver capability {word:?} (expected compute, utility, video, graphics, display, ngx, compat32 or all)")]
    UnknownCapability { word: String },
    #[error("reading the ld cache for NVIDIA driver libraries")]
    LdCache {
        #[source]
        source: LdCacheError,
    },
    #[error("NVIDIA driver file {}", path.display())]
    Resolve {
        path: PathBuf,
        #[source]
        source: ResolveError,
    },
    #[error("cannot stat NVIDIA driver file {}", host_path.display())]
    Io {
        host_path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("NVIDIA driver library {} resolves to {}, which is not a regular file", path.display(), host_path.display())]
    NotAFile { path: PathBuf, host_path: PathBuf },
}

/// One `NVIDIA_DRIVER_CAPABILITIES` word (other than `all`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    Compute,
    Utility,
    Video,
    Graphics,
    Display,
    Ngx,
    Compat32,
}

impl Capability {
    /// Every capability, in the order files are collected.
    pub const ALL: [Capability; 7] = [
        Capability::Utility,
        Capability::Compute,
        Capability::Video,
        Capability::Graphics,
        Capability::Display,
        Capability::Ngx,
        Capability::Compat32,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Capability::Compute => "compute",
            Capability::Utility => "utility",
            Capability::Video => "video",
            Capability::Graphics => "graphics",
            Capability::Display => "display",
            Capability::Ngx => "ngx",
            Capability::Compat32 => "compat32",
        }
    }

    /// Library name prefixes (see the module docs).
    pub fn library_prefixes(self) -> &'static [&'static str] {
        match self {
            Capability::Utility => &["libnvidia-ml", "libnvidia-cfg"],
            Capability::Compute => &[
                "libcuda",
                "libcudadebugger",
                "libnvidia-opencl",
                "libnvidia-ptxjitcompiler",
                "libnvidia-fatbinaryloader",
                "libnvidia-allocator",
                "libnvidia-compiler",
                "libnvidia-nvvm",
                "libnvidia-pkcs11",
            ],
            Capability::Video => &[
                "libvdpau_nvidia",
                "libnvidia-encode",
                "libnvidia-opticalflow",
                "libnvcuvid",
            ],
            Capability::Graphics => &[
                "libnvidia-eglcore",
                "libnvidia-glcore",
                "libnvidia-tls",
                "libnvidia-glsi",
                "libnvidia-fbc",
                "libnvidia-rtcore",
                "libnvoptix",
                "libGLX_nvidia",
                "libEGL_nvidia",
                "libGLESv2_nvidia",
                "libGLESv1_CM_nvidia",
                "libnvidia-glvkspirv",
                "libnvidia-gpucomp",
            ],
            Capability::Ngx => &["libnvidia-ngx"],
            // Display needs X server modules, which are not in the ld cache;
            // compat32 selects an arch, not libraries.
            Capability::Display | Capability::Compat32 => &[],
        }
    }

    /// Binary names, looked up in [`BIN_DIRS`].
    pub fn binaries(self) -> &'static [&'static str] {
        match self {
            Capability::Utility => &["nvidia-smi", "nvidia-debugdump", "nvidia-persistenced"],
            Capability::Compute => &["nvidia-cuda-mps-control", "nvidia-cuda-mps-server"],
            _ => &[],
        }
    }

    fn from_name(word: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.name() == word)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of capabilities, e.g. parsed from `NVIDIA_DRIVER_CAPABILITIES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Capabilities {
    bits: u8,
}

impl Default for Capabilities {
    /// `utility,compute`, what an unset variable means.
    fn default() -> Self {
        Capabilities::from_iter([Capability::Utility, Capability::Compute])
    }
}

impl FromIterator<Capability> for Capabilities {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        Capabilities {
            bits: iter.into_iter().fold(0, |bits, c| bits | c.bit()),
        }
    }
}

impl Capabilities {
    /// Every capability (`all`).
    pub fn all() -> Capabilities {
        Capabilities::from_iter(Capability::ALL)
    }

    /// Parses a comma-separated list such as `compute,utility` or `all`.
    /// Blank items are ignored; an empty (or blank) value means the default.
    pub fn parse(value: &str) -> Result<Capabilities, DriverError> {
        let mut bits = 0;
        for word in value.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            if word == "all" {
                bits |= Capabilities::all().bits;
                continue;
            }
            let cap =
                Capability::from_name(word).ok_or_else(|| DriverError::UnknownCapability {
                    word: word.to_owned(),
                })?;
            bits |= cap.bit();
        }
        if bits == 0 {
            return Ok(Capabilities::default());
        }
        Ok(Capabilities { bits })
    }

    pub fn contains(self, cap: Capability) -> bool {
        self.bits & cap.bit() != 0
    }

    /// The capabilities in the set, in [`Capability::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL
            .into_iter()
            .filter(move |&c| self.contains(c))
    }
}

impl fmt::Display for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Capability::name).collect();
        f.write_str(&names.join(","))
    }
}

/// A driver file to bind-mount.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DriverFile {
    /// The path as listed in the ld cache or found in a bin dir, e.g.
    /// `/usr/lib/x86_64-linux-gnu/libcuda.so.1`; mount at this path.
    pub container_path: PathBuf,
    /// The real file under `root`, all symlinks resolved inside `root`.
    pub host_path: PathBuf,
}

/// Driver files for a set of capabilities.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriverFiles {
    /// In ld cache order, distinct container paths.
    pub libraries: Vec<DriverFile>,
    /// In capability order.
    pub binaries: Vec<DriverFile>,
}

/// Finds the driver files for `caps` below `root` (normally `/`).
///
/// No ld cache under `root` means no driver libraries (none installed), not
/// an error; a corrupt cache is an error. Cache entries whose file is gone
/// (a stale cache) are skipped, like absent binaries.
pub fn discover_driver(root: &Path, caps: &Capabilities) -> Result<DriverFiles, DriverError> {
    let libraries = match LdCache::for_root(root) {
        Ok(cache) => driver_libraries(root, &cache, *caps)?,
        Err(e) if e.is_missing() => Vec::new(),
        Err(source) => return Err(DriverError::LdCache { source }),
    };
    let binaries = driver_binaries(root, *caps)?;
    Ok(DriverFiles {
        libraries,
        binaries,
    })
}

/// The distinct directories holding the libraries (container paths, in
/// order), e.g. for running `ldconfig` in the container afterwards.
pub fn library_dirs(files: &DriverFiles) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for lib in &files.libraries {
        if let Some(dir) = lib.container_path.parent() {
            if !dirs.iter().any(|d| d == dir) {
                dirs.push(dir.to_path_buf());
            }
        }
    }
    dirs
}

/// True if `soname` is `<prefix>.so` or `<prefix>.so.<anything>`.
fn soname_matches(soname: &str, prefix: &str) -> bool {
    soname
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix(".so"))
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

fn driver_libraries(
    root: &Path,
    cache: &LdCache,
    caps: Capabilities,
) -> Result<Vec<DriverFile>, DriverError> {
    let prefixes: Vec<&str> = caps
        .iter()
        .flat_map(|c| c.library_prefixes().iter().copied())
        .collect();
    let native = Arch::native();
    let compat = native
        .compat32()
        .filter(|_| caps.contains(Capability::Compat32));
    let mut seen = HashSet::new();
    let mut libraries = Vec::new();
    for entry in &cache.entries {
        if entry.arch != native && Some(entry.arch) != compat {
            continue;
        }
        if !prefixes.iter().any(|p| soname_matches(&entry.soname, p)) {
            continue;
        }
        if !seen.insert(entry.path.clone()) {
            continue;
        }
        let host_path = match resolve_in_root(root, &entry.path) {
            Ok(host_path) => host_path,
            // A stale cache must not fail every GPU container.
            Err(e) if e.is_missing() => continue,
            Err(source) => {
                return Err(DriverError::Resolve {
                    path: entry.path.clone(),
                    source,
                })
            }
        };
        let meta = std::fs::symlink_metadata(&host_path).map_err(|source| DriverError::Io {
            host_path: host_path.clone(),
            source,
        })?;
        if !meta.is_file() {
            return Err(DriverError::NotAFile {
                path: entry.path.clone(),
                host_path,
            });
        }
        libraries.push(DriverFile {
            container_path: entry.path.clone(),
            host_path,
        });
    }
    Ok(libraries)
}

fn driver_binaries(root: &Path, caps: Capabilities) -> Result<Vec<DriverFile>, DriverError> {
    let mut binaries = Vec::new();
    for name in caps.iter().flat_map(|c| c.binaries().iter().copied()) {
        for dir in BIN_DIRS {
            let container_path = Path::new(dir).join(name);
            if let Some(host_path) = find_executable(root, &container_path)? {
                binaries.push(DriverFile {
                    container_path,
                    host_path,
                });
                break;
            }
        }
    }
    Ok(binaries)
}

/// The resolved host path of `container_path` if it is an executable regular
/// file, like a `PATH` lookup would accept.
fn find_executable(root: &Path, container_path: &Path) -> Result<Option<PathBuf>, DriverError> {
    let host_path = match resolve_in_root(root, container_path) {
        Ok(host_path) => host_path,
        Err(e) if e.is_missing() => return Ok(None),
        // `/sbin` being a file, say: the binary is simply not there.
        Err(ResolveError::NotADirectory { .. }) => return Ok(None),
        Err(source) => {
            return Err(DriverError::Resolve {
                path: container_path.to_path_buf(),
                source,
            })
        }
    };
    let meta = std::fs::symlink_metadata(&host_path).map_err(|source| DriverError::Io {
        host_path: host_path.clone(),
        source,
    })?;
    if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
        Ok(Some(host_path))
    } else {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{ldconfig, native_lib_dir, require_root, shared_lib, symlink, write};

    const VERSION: &str = "535.104.05";

    fn executable(root: &Path, rel: &str) -> PathBuf {
        let path = write(root, rel, "#!/bin/sh\nexit 0\n");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    /// A driver install under `root` (plus `outside`, a host directory next
    /// to it), with its ld cache built by the real ldconfig.
    fn driver_fixture(root: &Path, outside: &Path) {
        let lib_dir = native_lib_dir();
        for name in [
            "libcuda",
            "libnvidia-ml",
            "libnvidia-ptxjitcompiler",
            "libnvidia-cfg",
            "libnvidia-opencl",
        ] {
            shared_lib(
                root,
                &lib_dir,
                &format!("{name}.so.{VERSION}"),
                &format!("{name}.so.1"),
            );
        }
        shared_lib(root, &lib_dir, "libfoo.so.1.2.3", "libfoo.so.1");
        let mut dirs = vec![lib_dir.clone()];
        #[cfg(target_arch = "x86_64")]
        {
            crate::testutil::shared_lib_i386(
                root,
                "usr/lib/i386-linux-gnu",
                &format!("libcuda.so.{VERSION}"),
                "libcuda.so.1",
            );
            dirs.push("usr/lib/i386-linux-gnu".to_owned());
        }
        let dirs: Vec<&str> = dirs.iter().map(String::as_str).collect();
        ldconfig(root, &dirs, "new");

        // After ldconfig (which chroots and would not list them): libraries
        // replaced by links that would escape the root if followed on the host.
        // This one lands on a decoy inside the root...
        write(root, "etc/passwd", "decoy");
        let cfg = format!("{lib_dir}/libnvidia-cfg.so.{VERSION}");
        std::fs::remove_file(root.join(&cfg)).expect("rm");
        symlink(root, &cfg, "../../../../../../../../../../../../etc/passwd");
        // ...this one at a host file that does not exist inside the root.
        let opencl = format!("{lib_dir}/libnvidia-opencl.so.{VERSION}");
        std::fs::remove_file(root.join(&opencl)).expect("rm");
        let secret = write(outside, "libnvidia-opencl.so.1", "host file");
        symlink(root, &opencl, secret.to_str().expect("utf-8 tempdir"));

        executable(root, "usr/bin/nvidia-smi");
        // Not executable: skipped.
        write(root, "usr/bin/nvidia-debugdump", "");
        executable(root, "sbin/nvidia-cuda-mps-control");
    }

    fn container_paths(files: &[DriverFile]) -> Vec<String> {
        files
            .iter()
            .map(|f| f.container_path.display().to_string())
            .collect()
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    #[test]
    fn discovers_default_capabilities() {
        require_root!();
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        driver_fixture(&root, &dir.path().join("outside"));
        let lib_dir = format!("/{}", native_lib_dir());

        let found = discover_driver(&root, &Capabilities::default()).expect("discover");
        assert_eq!(
            sorted(container_paths(&found.libraries)),
            sorted(vec![
                format!("{lib_dir}/libcuda.so.1"),
                format!("{lib_dir}/libnvidia-cfg.so.1"),
                format!("{lib_dir}/libnvidia-ml.so.1"),
                format!("{lib_dir}/libnvidia-ptxjitcompiler.so.1"),
            ])
        );
        for lib in &found.libraries {
            assert!(lib.host_path.starts_with(&root), "{lib:?} escaped the root");
            assert!(!lib.host_path.is_symlink(), "{lib:?}");
        }
        let cuda = found
            .libraries
            .iter()
            .find(|f| f.container_path.ends_with("libcuda.so.1"))
            .expect("libcuda");
        assert_eq!(
            cuda.host_path,
            root.join(&lib_dir[1..])
                .join(format!("libcuda.so.{VERSION}"))
        );
        // The escaping link resolved inside the root, to the decoy.
        let cfg = found
            .libraries
            .iter()
            .find(|f| f.container_path.ends_with("libnvidia-cfg.so.1"))
            .expect("libnvidia-cfg");
        assert_eq!(cfg.host_path, root.join("etc/passwd"));
        assert_eq!(
            std::fs::read_to_string(&cfg.host_path).expect("read"),
            "decoy"
        );

        assert_eq!(
            found.binaries,
            [
                DriverFile {
                    container_path: PathBuf::from("/usr/bin/nvidia-smi"),
                    host_path: root.join("usr/bin/nvidia-smi"),
                },
                DriverFile {
                    container_path: PathBuf::from("/sbin/nvidia-cuda-mps-control"),
                    host_path: root.join("sbin/nvidia-cuda-mps-control"),
                },
            ]
        );
        assert_eq!(library_dirs(&found), [PathBuf::from(&lib_dir)]);
    }

    #[test]
    fn capabilities_select_files() {
        require_root!();
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        driver_fixture(&root, &dir.path().join("outside"));
        let lib_dir = format!("/{}", native_lib_dir());
        let discover = |caps: &str| {
            let caps = Capabilities::parse(caps).expect("caps");
            discover_driver(&root, &caps).expect("discover")
        };

        let utility = discover("utility");
        assert_eq!(
            sorted(container_paths(&utility.libraries)),
            sorted(vec![
                format!("{lib_dir}/libnvidia-cfg.so.1"),
                format!("{lib_dir}/libnvidia-ml.so.1"),
            ])
        );
        assert_eq!(container_paths(&utility.binaries), ["/usr/bin/nvidia-smi"]);

        let video = discover("video,display");
        assert_eq!(video, DriverFiles::default());

        // Without compat32 the i386 libcuda is left out; with it, it is added.
        let all = discover("all");
        let plain = discover("compute,utility,video,graphics,display,ngx");
        let i386: Vec<_> = all
            .libraries
            .iter()
            .filter(|f| !plain.libraries.contains(f))
            .map(|f| f.container_path.display().to_string())
            .collect();
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(i386, ["/usr/lib/i386-linux-gnu/libcuda.so.1"]);
            let compat = discover("compute,compat32");
            assert!(compat
                .libraries
                .iter()
                .any(|f| f.container_path == Path::new("/usr/lib/i386-linux-gnu/libcuda.so.1")));
            assert_eq!(
                library_dirs(&compat),
                [
                    PathBuf::from(&lib_dir),
                    PathBuf::from("/usr/lib/i386-linux-gnu")
                ]
            );
        }
        #[cfg(not(target_arch = "x86_64"))]
        assert!(i386.is_empty());
        assert!(!all
            .libraries
            .iter()
            .any(|f| f.container_path.to_string_lossy().contains("libfoo")));
    }

    #[test]
    fn no_cache_means_no_libraries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        executable(root, "usr/sbin/nvidia-persistenced");
        // A merged-/usr style link: found through /usr/bin first, once.
        executable(root, "usr/bin/nvidia-smi");
        symlink(root, "bin", "usr/bin");
        let found = discover_driver(root, &Capabilities::parse("utility").expect("caps"))
            .expect("discover");
        assert!(found.libraries.is_empty());
        assert_eq!(
            container_paths(&found.binaries),
            ["/usr/bin/nvidia-smi", "/usr/sbin/nvidia-persistenced"]
        );
        assert!(library_dirs(&found).is_empty());
    }

    #[test]
    fn corrupt_cache_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "etc/ld.so.cache",
            "glibc-ld.so.cache1.1 truncated",
        );
        let err = discover_driver(dir.path(), &Capabilities::default()).expect_err("corrupt");
        assert!(matches!(err, DriverError::LdCache { .. }), "{err:?}");
        let source = std::error::Error::source(&err).expect("source kept");
        assert!(source.to_string().contains("etc/ld.so.cache"), "{source}");
    }

    #[test]
    fn parses_capabilities() {
        let default = Capabilities::default();
        assert_eq!(default.to_string(), "utility,compute");
        for value in ["", "  ", ",", " , "] {
            assert_eq!(
                Capabilities::parse(value).expect("parse"),
                default,
                "{value:?}"
            );
        }
        let caps = Capabilities::parse(" video, compute ,").expect("parse");
        assert!(caps.contains(Capability::Video) && caps.contains(Capability::Compute));
        assert!(!caps.contains(Capability::Utility));
        assert_eq!(caps.to_string(), "compute,video");
        let all = Capabilities::parse("all").expect("parse");
        assert_eq!(all, Capabilities::all());
        assert_eq!(all.iter().count(), Capability::ALL.len());
        assert_eq!(Capabilities::parse("compute,all").expect("parse"), all);

        let err = Capabilities::parse("compute,gaming").expect_err("unknown");
        assert!(
            matches!(&err, DriverError::UnknownCapability { word } if word == "gaming"),
            "{err:?}"
        );
        assert!(err.to_string().contains("\"gaming\""), "{err}");
        assert!(Capabilities::parse("Compute").is_err());
    }

    #[test]
    fn soname_prefix_matching() {
        assert!(soname_matches("libcuda.so", "libcuda"));
        assert!(soname_matches("libcuda.so.1", "libcuda"));
        assert!(soname_matches("libcuda.so.535.104.05", "libcuda"));
        assert!(!soname_matches("libcudadebugger.so.1", "libcuda"));
        assert!(!soname_matches("libcuda.sox", "libcuda"));
        assert!(!soname_matches("libcudart.so.12", "libcuda"));
        assert!(!soname_matches("xlibcuda.so.1", "libcuda"));
    }
}
