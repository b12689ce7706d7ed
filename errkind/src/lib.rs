//! The contract between `pinc` and the programs that run it: a stable kind
//! for each failure, written as `"kind"` into the final error line of
//! pinc's JSON log (`--log FILE --log-format json`). pinc's containerd
//! shim turns kinds into ttrpc codes; it never reads the message, so the
//! wording of an error can change without changing what containerd sees.
//!
//! Kinds are only ever added. A reader that meets a kind it does not know
//! (a newer pinc) or no kind (an older one, or a pinc that died before it
//! could log) treats the failure as [`ErrorKind::Internal`].

use std::fmt;

/// The key of the kind in pinc's JSON log lines.
pub const LOG_KEY: &str = "kind";

/// Why a pinc command failed, as its callers need to tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// No container has that id (or it was reclaimed after a crash).
    NotFound,
    /// The id is taken.
    AlreadyExists,
    /// The container (or process) has already exited: a signal has nothing
    /// left to reach.
    NotRunning,
    /// The container is in a state that does not allow the action (start a
    /// running container, delete a live one without --force, pause a
    /// created one).
    WrongState,
    /// The bundle, its config.json, a process file or a pinc.io request in
    /// the spec is invalid.
    InvalidSpec,
    /// A command-line argument is invalid (id, signal, resources, --cgroup).
    InvalidArgument,
    /// The placement request is valid but cannot be met on this node now
    /// (no free cores, no NUMA node large enough, devices not near).
    PlacementRefused,
    /// pinc does not do this (checkpoint, an unsupported spec feature).
    Unsupported,
    /// Anything else: a system call, cgroup or libcontainer failure.
    Internal,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::NotFound,
        ErrorKind::AlreadyExists,
        ErrorKind::NotRunning,
        ErrorKind::WrongState,
        ErrorKind::InvalidSpec,
        ErrorKind::InvalidArgument,
        ErrorKind::PlacementRefused,
        ErrorKind::Unsupported,
        ErrorKind::Internal,
    ];

    /// The kind's name in the log, as serde writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not-found",
            ErrorKind::AlreadyExists => "already-exists",
            ErrorKind::NotRunning => "not-running",
            ErrorKind::WrongState => "wrong-state",
            ErrorKind::InvalidSpec => "invalid-spec",
            ErrorKind::InvalidArgument => "invalid-argument",
            ErrorKind::PlacementRefused => "placement-refused",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Internal => "internal",
        }
    }

    /// The kind a log line names; `None` for a name this version does not know.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_what_serde_writes_and_read_back() {
        for k in ErrorKind::ALL {
            let json = serde_json::to_string(&k).expect("serialize");
            assert_eq!(json, format!("\"{}\"", k.as_str()));
            assert_eq!(ErrorKind::from_name(k.as_str()), Some(k));
            let back: ErrorKind = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, k);
        }
        assert_eq!(ErrorKind::from_name("exploded"), None);
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorKind::ALL.len());
    }
}
