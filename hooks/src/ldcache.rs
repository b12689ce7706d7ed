//! Parser for glibc's `/etc/ld.so.cache`, the list of libraries `ld.so` can
//! find, written by `ldconfig`.
//!
//! Two layouts are accepted:
//!
//! - new (glibc >= 2.32 default): a 48-byte header (`"glibc-ld.so.cache"`,
//!   version `"1.1"`, `u32` entry count, `u32` string table size, a flags byte
//!   holding the byte order, padding, `u32` extension offset, 12 unused bytes)
//!   followed by 24-byte entries `{i32 flags, u32 key, u32 value, u32
//!   osversion, u64 hwcap}`. `key` (the soname) and `value` (the path) are
//!   offsets of NUL-terminated strings, relative to the start of this header.
//! - old+new (`ldconfig -c compat`): a `"ld.so-1.7.0"` header (16 bytes with
//!   its `u32` count) and 12-byte old entries, then, aligned to 8 bytes, the
//!   new layout above. Only the new part is read.
//!
//! Every offset is bounds-checked: a truncated or corrupt file is an error
//! naming it. Caches in the other byte order are refused, as `ld.so` does.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::resolve::{resolve_in_root, ResolveError};

/// Where the cache lives inside a root.
pub const LD_CACHE_PATH: &str = "/etc/ld.so.cache";

const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache";
const NEW_VERSION: &[u8] = b"1.1";
const NEW_HEADER_LEN: u64 = 48;
const NEW_ENTRY_LEN: u64 = 24;
const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
const OLD_HEADER_LEN: u64 = 16;
const OLD_ENTRY_LEN: u64 = 12;

/// Byte order recorded in the new header's flags byte (glibc >= 2.33; older
/// caches leave it 0, meaning "native").
const ENDIAN_MASK: u8 = 3;
const ENDIAN_UNSET: u8 = 0;
const ENDIAN_LITTLE: u8 = 2;
const ENDIAN_BIG: u8 = 3;

/// `FLAG_ELF_LIBC6`: an ELF library linked against glibc.
pub const FLAG_ELF_LIBC6: u32 = 0x0003;
const FLAG_X8664_LIB64: u32 = 0x0300;
const FLAG_AARCH64_LIB64: u32 = 0x0a00;

/// Errors reading an ld cache.
#[derive(Debug, thiserror::Error)]
pub enum LdCacheError {
    #[error("cannot locate {LD_CACHE_PATH} under {}", root.display())]
    Resolve {
        root: PathBuf,
        #[source]
        source: ResolveError,
    },
    #[error("cannot read ld cache {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a glibc ld.so.cache (unknown magic)", path.display())]
    BadMagic { path: PathBuf },
    #[error("{}: old-format (ld.so-1.7.0) cache without a glibc-ld.so.cache section is not supported", path.display())]
    OldFormatOnly { path: PathBuf },
    #[error("{}: unsupported ld cache version {version:?} (expected \"1.1\")", path.display())]
    UnsupportedVersion { path: PathBuf, version: String },
    #[error("{}: ld cache is for another byte order (header flags {flags:#04x})", path.display())]
    ByteOrder { path: PathBuf, flags: u8 },
    #[error("{}: truncated or corrupt ld cache: {what} needs {needed} bytes but the file has {len}", path.display())]
    Truncated {
        path: PathBuf,
        what: &'static str,
        needed: u64,
        len: usize,
    },
    #[error("{}: corrupt ld cache entry {index}: {field} string at offset {offset} is out of bounds or not NUL-terminated", path.display())]
    BadString {
        path: PathBuf,
        index: usize,
        field: &'static str,
        offset: u32,
    },
}

impl LdCacheError {
    /// True if there is no cache file (or no `/etc`) at all.
    pub fn is_missing(&self) -> bool {
        match self {
            LdCacheError::Resolve { source, .. } => source.is_missing(),
            LdCacheError::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            _ => false,
        }
    }
}

/// The ABI a cache entry was built for, from the entry's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// `libc6,x86-64` (flags `0x0303`).
    X86_64,
    /// `libc6,AArch64` (flags `0x0a03`).
    Aarch64,
    /// Plain `libc6` with no architecture bits (flags `0x0003`): i386 on x86
    /// hosts.
    I386,
    /// Anything else, with the entry's full flags.
    Other(u32),
}

impl Arch {
    /// Decodes an entry's flags.
    pub fn from_flags(flags: u32) -> Arch {
        match flags {
            f if f == FLAG_ELF_LIBC6 | FLAG_X8664_LIB64 => Arch::X86_64,
            f if f == FLAG_ELF_LIBC6 | FLAG_AARCH64_LIB64 => Arch::Aarch64,
            FLAG_ELF_LIBC6 => Arch::I386,
            other => Arch::Other(other),
        }
    }

    /// The entry flags this arch stands for.
    pub fn flags(self) -> u32 {
        match self {
            Arch::X86_64 => FLAG_ELF_LIBC6 | FLAG_X8664_LIB64,
            Arch::Aarch64 => FLAG_ELF_LIBC6 | FLAG_AARCH64_LIB64,
            Arch::I386 => FLAG_ELF_LIBC6,
            Arch::Other(flags) => flags,
        }
    }

    /// The arch `ldconfig` records for libraries of the target we were built for.
    pub fn native() -> Arch {
        if cfg!(target_arch = "x86_64") {
            Arch::X86_64
        } else if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else if cfg!(target_arch = "x86") {
            Arch::I386
        } else if cfg!(target_arch = "powerpc64") {
            // FLAG_POWERPC_LIB64
            Arch::Other(FLAG_ELF_LIBC6 | 0x0500)
        } else if cfg!(target_arch = "s390x") {
            // FLAG_S390_LIB64
            Arch::Other(FLAG_ELF_LIBC6 | 0x0400)
        } else if cfg!(target_arch = "riscv64") {
            // FLAG_RISCV_FLOAT_ABI_DOUBLE (lp64d, what distributions ship)
            Arch::Other(FLAG_ELF_LIBC6 | 0x1000)
        } else {
            Arch::Other(FLAG_ELF_LIBC6)
        }
    }

    /// The 32-bit ABI whose libraries run alongside this one, if any (what
    /// NVIDIA's `compat32` capability refers to).
    pub fn compat32(self) -> Option<Arch> {
        match self {
            Arch::X86_64 => Some(Arch::I386),
            _ => None,
        }
    }
}

impl fmt::Display for Arch {
    /// Spelled like `ldconfig -p` does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arch::X86_64 => f.write_str("libc6,x86-64"),
            Arch::Aarch64 => f.write_str("libc6,AArch64"),
            Arch::I386 => f.write_str("libc6"),
            Arch::Other(flags) => write!(f, "flags {flags:#06x}"),
        }
    }
}

/// One library in the cache.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    /// The library's soname, e.g. `libcuda.so.1`. Non-UTF-8 bytes are
    /// replaced (matching only looks at ASCII prefixes; `path` stays exact).
    pub soname: String,
    /// Absolute path inside the cache's root, usually the soname symlink,
    /// e.g. `/usr/lib/x86_64-linux-gnu/libcuda.so.1`.
    pub path: PathBuf,
    pub arch: Arch,
    /// Non-zero for libraries in hardware-capability subdirectories
    /// (e.g. `glibc-hwcaps/x86-64-v3`).
    pub hwcap: u64,
}

/// A parsed ld cache, entries in file order (the order `ld.so` searches).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LdCache {
    pub entries: Vec<Entry>,
}

impl LdCache {
    /// Reads `<root>/etc/ld.so.cache`, resolving symlinks inside `root`.
    pub fn for_root(root: &Path) -> Result<LdCache, LdCacheError> {
        let path = resolve_in_root(root, Path::new(LD_CACHE_PATH)).map_err(|source| {
            LdCacheError::Resolve {
                root: root.to_path_buf(),
                source,
            }
        })?;
        LdCache::read(&path)
    }

    /// Reads and parses the cache file at `path`.
    pub fn read(path: &Path) -> Result<LdCache, LdCacheError> {
        let data = std::fs::read(path).map_err(|source| LdCacheError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        LdCache::parse(path, &data)
    }

    /// Parses cache contents; `path` is only used in errors.
    pub fn parse(path: &Path, data: &[u8]) -> Result<LdCache, LdCacheError> {
        Parser { path, data }.parse()
    }

    /// The first entry for `soname` built for `arch`, i.e. the one `ld.so`
    /// would load.
    pub fn lookup(&self, soname: &str, arch: Arch) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.soname == soname && e.arch == arch)
    }
}

struct Parser<'a> {
    path: &'a Path,
    data: &'a [u8],
}

impl Parser<'_> {
    fn parse(&self) -> Result<LdCache, LdCacheError> {
        let start = self.new_header_start()?;
        self.need(start + NEW_HEADER_LEN, "header")?;
        let version = self.bytes(start + NEW_MAGIC.len() as u64, NEW_VERSION.len(), "header")?;
        if version != NEW_VERSION {
            return Err(LdCacheError::UnsupportedVersion {
                path: self.path.to_path_buf(),
                version: String::from_utf8_lossy(version).into_owned(),
            });
        }
        let nlibs = self.u32_at(start + 20, "header")?;
        let len_strings = self.u32_at(start + 24, "header")?;
        let flags = self
            .bytes(start + 28, 1, "header")?
            .first()
            .copied()
            .unwrap_or(0);
        let native = if cfg!(target_endian = "little") {
            ENDIAN_LITTLE
        } else {
            ENDIAN_BIG
        };
        let endian = flags & ENDIAN_MASK;
        if endian != ENDIAN_UNSET && endian != native {
            return Err(LdCacheError::ByteOrder {
                path: self.path.to_path_buf(),
                flags,
            });
        }
        let entries_start = start + NEW_HEADER_LEN;
        let entries_end = entries_start + u64::from(nlibs) * NEW_ENTRY_LEN;
        self.need(entries_end, "entry table")?;
        self.need(entries_end + u64::from(len_strings), "string table")?;

        // String offsets count from the new header, wherever it starts.
        let strings = self.data.get(to_usize(start)..).unwrap_or_default();
        let mut entries = Vec::with_capacity(nlibs as usize);
        for index in 0..nlibs as usize {
            let at = entries_start + index as u64 * NEW_ENTRY_LEN;
            let flags = self.u32_at(at, "entry table")?;
            let key = self.u32_at(at + 4, "entry table")?;
            let value = self.u32_at(at + 8, "entry table")?;
            let hwcap = self.u64_at(at + 16, "entry table")?;
            let soname = self.cstr(strings, key, index, "soname")?;
            let lib_path = self.cstr(strings, value, index, "path")?;
            entries.push(Entry {
                soname: String::from_utf8_lossy(soname).into_owned(),
                path: PathBuf::from(OsStr::from_bytes(lib_path)),
                arch: Arch::from_flags(flags),
                hwcap,
            });
        }
        Ok(LdCache { entries })
    }

    /// Offset of the new-format header: 0, or after the old-format part.
    fn new_header_start(&self) -> Result<u64, LdCacheError> {
        if self.data.starts_with(NEW_MAGIC) {
            return Ok(0);
        }
        if !self.data.starts_with(OLD_MAGIC) {
            return Err(LdCacheError::BadMagic {
                path: self.path.to_path_buf(),
            });
        }
        let nlibs = self.u32_at(OLD_HEADER_LEN - 4, "old-format header")?;
        let old_end = OLD_HEADER_LEN + u64::from(nlibs) * OLD_ENTRY_LEN;
        // The new header is aligned for its u64 fields.
        let start = old_end.next_multiple_of(8);
        let magic = self.bytes(start, NEW_MAGIC.len(), "old-format entries and new header")?;
        if magic != NEW_MAGIC {
            return Err(LdCacheError::OldFormatOnly {
                path: self.path.to_path_buf(),
            });
        }
        Ok(start)
    }

    fn need(&self, end: u64, what: &'static str) -> Result<(), LdCacheError> {
        if end > self.data.len() as u64 {
            return Err(LdCacheError::Truncated {
                path: self.path.to_path_buf(),
                what,
                needed: end,
                len: self.data.len(),
            });
        }
        Ok(())
    }

    fn bytes(&self, at: u64, len: usize, what: &'static str) -> Result<&[u8], LdCacheError> {
        let end = at + len as u64;
        self.need(end, what)?;
        self.data
            .get(to_usize(at)..to_usize(end))
            .ok_or(LdCacheError::Truncated {
                path: self.path.to_path_buf(),
                what,
                needed: end,
                len: self.data.len(),
            })
    }

    fn u32_at(&self, at: u64, what: &'static str) -> Result<u32, LdCacheError> {
        let mut buf = [0u8; 4];
        buf.copy_from_slice(self.bytes(at, 4, what)?);
        Ok(u32::from_ne_bytes(buf))
    }

    fn u64_at(&self, at: u64, what: &'static str) -> Result<u64, LdCacheError> {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(self.bytes(at, 8, what)?);
        Ok(u64::from_ne_bytes(buf))
    }

    /// The NUL-terminated string at `offset` in `strings` (without the NUL).
    fn cstr<'s>(
        &self,
        strings: &'s [u8],
        offset: u32,
        index: usize,
        field: &'static str,
    ) -> Result<&'s [u8], LdCacheError> {
        strings
            .get(offset as usize..)
            .and_then(|rest| rest.iter().position(|&b| b == 0).map(|nul| &rest[..nul]))
            .ok_or(LdCacheError::BadString {
                path: self.path.to_path_buf(),
                index,
                field,
                offset,
            })
    }
}

/// Offsets were checked against the data length (a usize) before use, so
/// this never saturates for in-bounds values.
fn to_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{ldconfig, native_lib_dir, require_root, shared_lib};

    fn fixture_root(root: &Path) -> Vec<String> {
        let lib_dir = native_lib_dir();
        shared_lib(root, &lib_dir, "libfoo.so.1.2.3", "libfoo.so.1");
        shared_lib(root, &lib_dir, "libbar.so.7", "libbar.so.7");
        let mut dirs = vec![lib_dir];
        #[cfg(target_arch = "x86_64")]
        {
            crate::testutil::shared_lib_i386(
                root,
                "usr/lib/i386-linux-gnu",
                "libfoo.so.1.2.3",
                "libfoo.so.1",
            );
            dirs.push("usr/lib/i386-linux-gnu".to_owned());
        }
        dirs
    }

    fn check_fixture_entries(cache: &LdCache) {
        let lib_dir = format!("/{}", native_lib_dir());
        let native = Arch::native();
        let foo = cache.lookup("libfoo.so.1", native).expect("libfoo");
        assert_eq!(foo.path, Path::new(&lib_dir).join("libfoo.so.1"));
        assert_eq!(foo.hwcap, 0);
        let bar = cache.lookup("libbar.so.7", native).expect("libbar");
        assert_eq!(bar.path, Path::new(&lib_dir).join("libbar.so.7"));
        let mut expected = 2;
        #[cfg(target_arch = "x86_64")]
        {
            let foo32 = cache
                .lookup("libfoo.so.1", Arch::I386)
                .expect("i386 libfoo");
            assert_eq!(foo32.path, Path::new("/usr/lib/i386-linux-gnu/libfoo.so.1"));
            expected += 1;
        }
        assert_eq!(cache.entries.len(), expected, "{cache:#?}");
    }

    #[test]
    fn parses_ldconfig_new_and_compat_formats() {
        require_root!();
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let dirs = fixture_root(root);
        let dirs: Vec<&str> = dirs.iter().map(String::as_str).collect();

        let path = ldconfig(root, &dirs, "new");
        let data = std::fs::read(&path).expect("read cache");
        assert!(data.starts_with(NEW_MAGIC));
        let new = LdCache::for_root(root).expect("parse new format");
        check_fixture_entries(&new);

        let path = ldconfig(root, &dirs, "compat");
        let data = std::fs::read(&path).expect("read cache");
        assert!(data.starts_with(OLD_MAGIC));
        let compat = LdCache::read(&path).expect("parse compat format");
        check_fixture_entries(&compat);
        assert_eq!(new, compat);
    }

    #[test]
    fn host_cache_has_native_libc() {
        let cache = LdCache::for_root(Path::new("/")).expect("parse host /etc/ld.so.cache");
        let libc = cache
            .lookup("libc.so.6", Arch::native())
            .expect("libc.so.6 in the host cache");
        assert!(libc.path.is_absolute(), "{libc:?}");
        assert!(libc.path.ends_with("libc.so.6"), "{libc:?}");
    }

    /// Every proper prefix of a real cache up to the end of its string table
    /// is an error, never a panic; longer prefixes only lose the extension.
    fn check_truncations(path: &Path, data: &[u8], step: usize) {
        let full = LdCache::parse(path, data).expect("full cache parses");
        let mut failures = 0;
        for len in (0..data.len()).step_by(step) {
            match LdCache::parse(path, &data[..len]) {
                Ok(cache) => assert_eq!(cache, full, "prefix of {len} bytes"),
                Err(e) => {
                    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
                    failures += 1;
                }
            }
        }
        assert!(failures > 0);
        assert!(LdCache::parse(path, &[]).is_err());
    }

    #[test]
    fn truncated_caches_are_errors() {
        let host = Path::new("/etc/ld.so.cache");
        let data = std::fs::read(host).expect("read host cache");
        check_truncations(host, &data, 13);
    }

    #[test]
    fn truncated_and_corrupt_ldconfig_caches() {
        require_root!();
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let dirs = fixture_root(root);
        let dirs: Vec<&str> = dirs.iter().map(String::as_str).collect();
        for format in ["new", "compat"] {
            let path = ldconfig(root, &dirs, format);
            let data = std::fs::read(&path).expect("read cache");
            check_truncations(&path, &data, 1);
            // Any single corrupted byte is either harmless or an error.
            for i in 0..data.len() {
                let mut bad = data.clone();
                bad[i] ^= 0xff;
                let _ = LdCache::parse(&path, &bad);
            }
        }
    }

    /// A new-format cache with the given `(flags, soname, path)` entries.
    fn synthetic(entries: &[(u32, &str, &str)]) -> Vec<u8> {
        let strings_start = NEW_HEADER_LEN as usize + entries.len() * NEW_ENTRY_LEN as usize;
        let mut table = Vec::new();
        let mut strings = Vec::new();
        for &(flags, soname, path) in entries {
            let key = (strings_start + strings.len()) as u32;
            strings.extend_from_slice(soname.as_bytes());
            strings.push(0);
            let value = (strings_start + strings.len()) as u32;
            strings.extend_from_slice(path.as_bytes());
            strings.push(0);
            table.extend_from_slice(&flags.to_ne_bytes());
            table.extend_from_slice(&key.to_ne_bytes());
            table.extend_from_slice(&value.to_ne_bytes());
            table.extend_from_slice(&0u32.to_ne_bytes());
            table.extend_from_slice(&0u64.to_ne_bytes());
        }
        let mut data = Vec::new();
        data.extend_from_slice(NEW_MAGIC);
        data.extend_from_slice(NEW_VERSION);
        data.extend_from_slice(&(entries.len() as u32).to_ne_bytes());
        data.extend_from_slice(&(strings.len() as u32).to_ne_bytes());
        data.push(0); // byte order unset
        data.extend_from_slice(&[0; 3 + 4 + 12]);
        data.extend_from_slice(&table);
        data.extend_from_slice(&strings);
        data
    }

    #[test]
    fn arch_flags() {
        let path = Path::new("/x/ld.so.cache");
        let data = synthetic(&[
            (0x0303, "liba.so.1", "/lib64/liba.so.1"),
            (0x0a03, "liba.so.1", "/lib/aarch64/liba.so.1"),
            (0x0003, "liba.so.1", "/lib32/liba.so.1"),
            (0x0903, "liba.so.1", "/lib/armhf/liba.so.1"),
            (0x0001, "libb.so", "/lib/libb.so"),
        ]);
        let cache = LdCache::parse(path, &data).expect("parse");
        let archs: Vec<Arch> = cache.entries.iter().map(|e| e.arch).collect();
        assert_eq!(
            archs,
            [
                Arch::X86_64,
                Arch::Aarch64,
                Arch::I386,
                Arch::Other(0x0903),
                Arch::Other(0x0001)
            ]
        );
        for arch in archs {
            assert_eq!(Arch::from_flags(arch.flags()), arch);
        }
        assert_eq!(
            cache.lookup("liba.so.1", Arch::Aarch64).map(|e| &e.path),
            Some(&PathBuf::from("/lib/aarch64/liba.so.1"))
        );
        assert_eq!(Arch::X86_64.to_string(), "libc6,x86-64");
        assert_eq!(Arch::X86_64.compat32(), Some(Arch::I386));
        assert_eq!(Arch::Aarch64.compat32(), None);
        #[cfg(target_arch = "x86_64")]
        assert_eq!(Arch::native(), Arch::X86_64);
        #[cfg(target_arch = "aarch64")]
        assert_eq!(Arch::native(), Arch::Aarch64);
    }

    #[test]
    fn corrupt_headers_and_strings() {
        let path = Path::new("/x/ld.so.cache");
        let good = synthetic(&[(0x0303, "liba.so.1", "/lib/liba.so.1")]);
        assert_eq!(LdCache::parse(path, &good).expect("parse").entries.len(), 1);
        let parse = |data: &[u8]| LdCache::parse(path, data).expect_err("corrupt");

        let err = parse(b"not a cache at all, but long enough for a header.......");
        assert!(matches!(err, LdCacheError::BadMagic { .. }), "{err:?}");
        assert!(err.to_string().contains("/x/ld.so.cache"), "{err}");

        let mut bad = good.clone();
        bad[17..20].copy_from_slice(b"2.0");
        let err = parse(&bad);
        assert!(
            matches!(&err, LdCacheError::UnsupportedVersion { version, .. } if version == "2.0"),
            "{err:?}"
        );

        let mut bad = good.clone();
        bad[28] = if cfg!(target_endian = "little") {
            ENDIAN_BIG
        } else {
            ENDIAN_LITTLE
        };
        assert!(matches!(parse(&bad), LdCacheError::ByteOrder { .. }));

        // An entry count far beyond the file.
        let mut bad = good.clone();
        bad[20..24].copy_from_slice(&u32::MAX.to_ne_bytes());
        let err = parse(&bad);
        assert!(
            matches!(
                err,
                LdCacheError::Truncated {
                    what: "entry table",
                    ..
                }
            ),
            "{err:?}"
        );

        // A soname offset past the end of the file.
        let mut bad = good.clone();
        bad[52..56].copy_from_slice(&u32::MAX.to_ne_bytes());
        let err = parse(&bad);
        assert!(
            matches!(
                err,
                LdCacheError::BadString {
                    index: 0,
                    field: "soname",
                    ..
                }
            ),
            "{err:?}"
        );

        // A path string that runs to the end of the file without a NUL.
        let mut bad = good.clone();
        bad.pop();
        bad[24..28].copy_from_slice(&0u32.to_ne_bytes());
        let err = parse(&bad);
        assert!(
            matches!(err, LdCacheError::BadString { field: "path", .. }),
            "{err:?}"
        );

        // Old format only: old header, one 12-byte entry, then strings.
        let mut old = OLD_MAGIC.to_vec();
        old.push(0);
        old.extend_from_slice(&1u32.to_ne_bytes());
        old.extend_from_slice(&[0; 12]);
        old.extend_from_slice(b"liba.so.1\0/lib/liba.so.1\0");
        assert!(matches!(parse(&old), LdCacheError::OldFormatOnly { .. }));
        // ...and an old header claiming more entries than the file holds.
        old[12..16].copy_from_slice(&1000u32.to_ne_bytes());
        assert!(matches!(parse(&old), LdCacheError::Truncated { .. }));
    }

    #[test]
    fn missing_cache_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = LdCache::for_root(dir.path()).expect_err("no cache");
        assert!(err.is_missing(), "{err:?}");
        let msg = format!(
            "{err}: {}",
            std::error::Error::source(&err).expect("source")
        );
        assert!(msg.contains("/etc/ld.so.cache"), "{msg}");
        assert!(msg.contains(&dir.path().display().to_string()), "{msg}");

        let missing = dir.path().join("ld.so.cache");
        let err = LdCache::read(&missing).expect_err("no cache");
        assert!(err.is_missing(), "{err:?}");
        assert!(
            err.to_string().contains(&missing.display().to_string()),
            "{err}"
        );

        // A corrupt cache is not "missing".
        crate::testutil::write(dir.path(), "etc/ld.so.cache", "garbage");
        let err = LdCache::for_root(dir.path()).expect_err("corrupt");
        assert!(!err.is_missing(), "{err:?}");
    }
}
