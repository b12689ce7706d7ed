//! Container Device Interface (CDI) support: pinc reads vendor CDI specs and
//! applies the edits of the requested devices to the container's OCI spec
//! itself, since the low-level runtimes (runc, crun, youki) have none.
//!
//! - [`spec`]: the spec file model (cdiVersion 0.5.0 to 0.8.0), parsing and validation.
//! - [`registry`]: every spec file of a list of directories, later directories winning.
//! - [`edits`]: applying the edits of requested devices to an OCI spec.
//!
//! Devices are named fully qualified, `vendor.com/class=name`, and requested
//! through `cdi.k8s.io/*` annotations (see `pinc_request::cdi`).

use std::path::PathBuf;

pub use pinc_request::cdi::{
    parse_qualified_name, requested_devices, NameError, ANNOTATION_PREFIX,
};

use crate::device::DeviceError;

pub mod edits;
pub mod registry;
pub mod spec;

pub use edits::Applied;
pub use registry::{default_dirs, Registry};
pub use spec::{
    parse_spec, read_spec, CdiDevice, CdiDeviceNode, CdiHook, CdiIntelRdt, CdiMount, CdiSpec,
    ContainerEdits,
};

/// Errors reading CDI specs, parsing requests and applying edits.
#[derive(Debug, thiserror::Error)]
pub enum CdiError {
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    // The parser's message is the whole point here, so it is part of the
    // message (on one line) as well as the source.
    #[error("CDI spec {}: {}", path.display(), one_line(source))]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("CDI spec {}: {}", path.display(), one_line(source))]
    Yaml {
        path: PathBuf,
        #[source]
        source: serde_norway::Error,
    },
    #[error("CDI spec {}: unsupported cdiVersion {version} (pinc reads 0.5.0 to 0.8.0)", path.display())]
    UnsupportedVersion { path: PathBuf, version: String },
    #[error("CDI spec {}: {field}: {reason}", path.display())]
    Invalid {
        path: PathBuf,
        field: String,
        reason: String,
    },
    #[error("CDI device {device} is defined by both {} and {} (same directory)", first.display(), second.display())]
    Duplicate {
        device: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("unknown CDI device {device} ({})", known_list(kind, known))]
    UnknownDevice {
        device: String,
        kind: String,
        known: Vec<String>,
    },
    #[error("CDI device {device}: device node {path}")]
    DeviceNode {
        device: String,
        path: String,
        #[source]
        source: DeviceError,
    },
    #[error("CDI device {device}: device node {path} is declared type {declared:?} but the host node {} is a {found} device", host.display())]
    TypeMismatch {
        device: String,
        path: String,
        host: PathBuf,
        declared: String,
        found: &'static str,
    },
    /// `what` is e.g. `device node /dev/nvidia0`.
    #[error("conflicting CDI edits: {first} and {second} set {what} differently")]
    Conflict {
        what: String,
        first: String,
        second: String,
    },
    #[error("CDI device {device} edits the container's {section}, but the OCI spec has no {section} section")]
    MissingSection {
        device: String,
        section: &'static str,
    },
}

fn one_line(e: &dyn std::fmt::Display) -> String {
    e.to_string().replace('\n', " ")
}

fn known_list(kind: &str, known: &[String]) -> String {
    if known.is_empty() {
        format!("no CDI spec defines devices of kind {kind}")
    } else {
        format!("known {kind} devices: {}", known.join(", "))
    }
}
