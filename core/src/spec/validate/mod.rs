//! Cheap checks of a spec before anything is made, so a bad spec fails with
//! one line naming the JSON field (`mounts[3].source`, `process.args`)
//! instead of a nameless error from deep inside libcontainer.
//!
//! runc 1.1.5 is the reference: what it refuses, pinc refuses here; what it
//! accepts, pinc accepts (or [`crate::spec::normalize`] makes acceptable to
//! libcontainer). Checks only stat and read small host files, under a root
//! path so tests can fake the host.

mod hooks;
pub(crate) mod inroot;
mod linux;
mod mounts;
mod namespaces;
mod process;

use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::{Process, Spec};

/// What is wrong with a spec; every message starts with the JSON path.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{field}: must not be empty")]
    Empty { field: String },
    #[error("{field}: {value:?} is not an absolute path")]
    NotAbsolute { field: String, value: PathBuf },
    #[error("{field}: {path} does not exist")]
    Missing {
        field: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{field}: cannot use {path}")]
    Unusable {
        field: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{field}: {path} is not an executable file")]
    NotExecutable { field: String, path: PathBuf },
    #[error("{field}: duplicate {kind} namespace (already in linux.namespaces[{first}])")]
    DuplicateNamespace {
        field: String,
        kind: String,
        first: usize,
    },
    #[error("{field}: {path} is not a namespace file")]
    NotNamespace { field: String, path: PathBuf },
    #[error("{field}: {path} has namespace type {found}, expected {kind}")]
    NamespaceKind {
        field: String,
        path: PathBuf,
        kind: String,
        found: &'static str,
    },
    #[error("{field}: unknown filesystem type {fstype:?} (not in /proc/filesystems, and not a bind mount)")]
    UnknownFilesystem { field: String, fstype: String },
    #[error("{field}: no type given, and the options ask for no bind mount")]
    NoMountType { field: String },
    #[error("{field}: {value:?} is not a device node type (expected c, b, u or p)")]
    DeviceType { field: String, value: String },
    #[error("{field}: {value} is out of range for a device number (0..={max})")]
    DeviceNumber { field: String, value: i64, max: i64 },
    #[error("{field}: {len} bytes is longer than the kernel's limit for one argument or env string ({max} bytes)")]
    StringTooLong {
        field: String,
        len: usize,
        max: usize,
    },
    #[error("process.args + process.env: {total} bytes exceed the kernel's limit for execve (ARG_MAX {max} bytes)")]
    ArgsTooLarge { total: usize, max: usize },
    #[error("{field}: {value:?} is not KEY=VALUE")]
    EnvFormat { field: String, value: String },
    #[error("{field}: soft limit {soft} is above the hard limit {hard}")]
    Rlimit { field: String, soft: u64, hard: u64 },
    #[error("{field}: {value} is out of range ({min}..={max})")]
    OutOfRange {
        field: String,
        value: i64,
        min: i64,
        max: i64,
    },
    #[error("{field}: set, but linux.namespaces has no {namespace} namespace")]
    NeedsNamespace {
        field: String,
        namespace: &'static str,
    },
    #[error("{field}: a new user namespace needs at least one mapping")]
    NeedsMappings { field: String },
    #[error("{field}: {reason}")]
    Sysctl { field: String, reason: &'static str },
    #[error("{field}: unknown value {value:?} (expected {expected})")]
    UnknownValue {
        field: String,
        value: String,
        expected: &'static str,
    },
    #[error("{field}: timeout must be a positive number of seconds, not {value}")]
    HookTimeout { field: String, value: i64 },
    #[error("{field}: set, but {lsm} is not enabled on this host")]
    LsmDisabled { field: String, lsm: &'static str },
    #[error("process.cwd: cannot create {path} in the rootfs")]
    CreateCwd {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Checks a container's spec (loaded by [`crate::spec::bundle::load`]: root.path is
/// absolute) against this host.
pub fn spec(spec: &Spec, bundle: &Path) -> Result<(), SpecError> {
    spec_on(spec, bundle, Path::new("/"))
}

/// Checks a process (the container's, or an exec's --process file).
pub fn process(process: &Process) -> Result<(), SpecError> {
    process::check(process, Path::new("/"))
}

/// [`spec`] with the host's /proc and /sys read under `host`.
pub fn spec_on(spec: &Spec, bundle: &Path, host: &Path) -> Result<(), SpecError> {
    if let Some(p) = spec.process() {
        process::check(p, host)?;
    }
    let rootfs = spec.root().as_ref().map(|r| bundle.join(r.path()));
    mounts::check(spec, bundle, host)?;
    if let Some(linux) = spec.linux() {
        namespaces::check(spec, linux, nix::unistd::geteuid().is_root())?;
        linux::check(linux)?;
    }
    hooks::check(spec, rootfs.as_deref())?;
    Ok(())
}

/// `list[i].field` (or `list[i]` for an empty field).
fn at(list: &str, i: usize, field: &str) -> String {
    if field.is_empty() {
        format!("{list}[{i}]")
    } else {
        format!("{list}[{i}].{field}")
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use libcontainer::oci_spec::runtime::Spec;

    /// A spec from JSON merged over a minimal valid one.
    pub fn spec(json: serde_json::Value) -> Spec {
        let mut base = serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "/"},
            "process": {"cwd": "/", "args": ["true"], "user": {"uid": 0, "gid": 0},
                        "env": ["PATH=/bin"]},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"},
                                      {"type": "ipc"}, {"type": "network"}]}
        });
        merge(&mut base, json);
        serde_json::from_value(base).expect("test spec")
    }

    fn merge(base: &mut serde_json::Value, over: serde_json::Value) {
        match (base, over) {
            (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
                for (k, v) in o {
                    merge(b.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (b, o) => *b = o,
        }
    }
}
