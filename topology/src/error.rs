//! Errors from loading a topology (hwloc, sysfs, synthetic descriptions).

use std::path::PathBuf;

use hwlocality::errors::{FlagsError, HybridError, RawHwlocError};
use hwlocality::topology::builder::{BuildFlags, StringInputError, TypeFilterError};

/// Everything that can go wrong while building a [`crate::Topology`].
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// hwloc refused the XML file's contents.
    #[error("hwloc rejected {} as an XML topology", path.display())]
    XmlInput {
        path: PathBuf,
        #[source]
        source: StringInputError,
    },

    /// libhwloc died on the XML file (it trusts its XML: truncated tags or
    /// missing root attributes crash hwloc 2.9's parser).
    #[error("hwloc crashed reading {} (signal {signal}): not a valid hwloc XML export", path.display())]
    XmlCrash { path: PathBuf, signal: i32 },

    /// The child process that reads the XML first could not be run.
    #[error("cannot check {} in a child process", path.display())]
    XmlProbe {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// hwloc refused a type filter (a programming error, kept as an error).
    #[error("hwloc refused the type filter while loading {what}")]
    TypeFilter {
        what: String,
        #[source]
        source: HybridError<TypeFilterError>,
    },

    /// hwloc refused a build flag.
    #[error("hwloc refused the build flags while loading {what}")]
    BuildFlags {
        what: String,
        #[source]
        source: HybridError<FlagsError<BuildFlags>>,
    },

    /// `hwloc_topology_load` failed.
    #[error("hwloc failed to load the topology of {what}")]
    Load {
        what: String,
        #[source]
        source: RawHwlocError,
    },

    /// The topology holds something the model cannot express.
    #[error("unexpected topology in {what}: {reason}")]
    Unexpected { what: String, reason: String },

    /// A sysfs file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A sysfs file held something other than a number.
    #[error("{} holds {value:?}, not a number", path.display())]
    Number {
        path: PathBuf,
        value: String,
        #[source]
        source: std::num::ParseIntError,
    },

    /// A sysfs file held a malformed CPU list.
    #[error("{} holds a malformed CPU list", path.display())]
    CpuList {
        path: PathBuf,
        #[source]
        source: pinc_cpulist::CpuListError,
    },

    /// A synthetic description is malformed or out of bounds.
    #[error("synthetic topology {description:?}: {reason}")]
    Synthetic { description: String, reason: String },
}
