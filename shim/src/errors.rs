//! The shim's error type and its ONE mapping to ttrpc status codes.

use std::path::PathBuf;

use containerd_shim::protos::ttrpc::{self, Code};
pub use pinc_errkind::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}")]
    Sys {
        what: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("failed to run {binary}")]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A pinc command failed; `kind` is what pinc's log said it was.
    #[error("pinc {command} failed ({status}): {message}")]
    Runtime {
        command: String,
        status: i32,
        kind: ErrorKind,
        message: String,
    },
    #[error("invalid JSON from {what}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid protobuf in {what}")]
    Protobuf {
        what: &'static str,
        #[source]
        source: containerd_shim::protos::protobuf::Error,
    },
    #[error("{what}")]
    Shim {
        what: &'static str,
        #[source]
        source: containerd_shim::Error,
    },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Unsupported(&'static str),
    #[error("{0}")]
    FailedPrecondition(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// `map_err(Error::io("failed to open", path))`
    pub fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { what, path, source }
    }

    pub fn sys(what: &'static str) -> impl FnOnce(nix::Error) -> Self {
        move |source| Self::Sys { what, source }
    }

    fn code(&self) -> Code {
        match self {
            Self::NotFound(_) => Code::NOT_FOUND,
            Self::AlreadyExists(_) => Code::ALREADY_EXISTS,
            Self::InvalidArgument(_) | Self::Json { .. } | Self::Protobuf { .. } => {
                Code::INVALID_ARGUMENT
            }
            Self::Unsupported(_) => Code::UNIMPLEMENTED,
            Self::FailedPrecondition(_) => Code::FAILED_PRECONDITION,
            Self::Runtime { command, kind, .. } => runtime_code(command, *kind),
            // A missing file of the shim's own (an exec's pid file when the
            // exec failed) says nothing about the container: not NotFound,
            // which containerd would take for "already gone".
            _ => Code::INTERNAL,
        }
    }
}

/// The one mapping of pinc's error kinds to ttrpc codes, chosen as
/// containerd's runc shim reports the same failures of runc: containerd
/// ignores NotFound where the goal is already met (a kill of a process that
/// has exited, the delete of a container that is gone).
fn runtime_code(command: &str, kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::NotFound => Code::NOT_FOUND,
        ErrorKind::AlreadyExists => Code::ALREADY_EXISTS,
        // runc's shim: "process already finished" is NotFound for a
        // signal; for anything else a stopped container is a precondition.
        ErrorKind::NotRunning if command == "kill" => Code::NOT_FOUND,
        ErrorKind::NotRunning | ErrorKind::WrongState => Code::FAILED_PRECONDITION,
        ErrorKind::InvalidSpec | ErrorKind::InvalidArgument => Code::INVALID_ARGUMENT,
        ErrorKind::PlacementRefused => Code::RESOURCE_EXHAUSTED,
        ErrorKind::Unsupported => Code::UNIMPLEMENTED,
        ErrorKind::Internal => Code::INTERNAL,
    }
}

impl Error {
    /// The message and its causes on one line, as containerd and the log
    /// show it: each variant names only its own step, never its source.
    pub fn one_line(&self) -> String {
        let mut line = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            let text = s.to_string();
            // Errors of other crates may repeat their own cause.
            if !text.is_empty() && !line.contains(&text) {
                line.push_str(": ");
                line.push_str(&text);
            }
            source = s.source();
        }
        line
    }
}

impl From<Error> for ttrpc::Error {
    fn from(e: Error) -> Self {
        ttrpc::Error::RpcStatus(ttrpc::get_status(e.code(), e.one_line()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(e: Error) -> Code {
        match ttrpc::Error::from(e) {
            ttrpc::Error::RpcStatus(s) => s.code(),
            other => panic!("not a status: {other:?}"),
        }
    }

    #[test]
    fn a_cause_is_named_once() {
        let e = Error::io("failed to open", "/b/exec.pid")(std::io::Error::from(
            std::io::ErrorKind::NotFound,
        ));
        assert_eq!(e.to_string(), "failed to open /b/exec.pid");
        assert_eq!(e.one_line(), "failed to open /b/exec.pid: entity not found");
        let e = Error::sys("bad control message")(nix::Error::EBADF);
        assert_eq!(e.one_line(), "bad control message: EBADF: Bad file number");
        match ttrpc::Error::from(e) {
            ttrpc::Error::RpcStatus(s) => {
                assert_eq!(s.message, "bad control message: EBADF: Bad file number")
            }
            other => panic!("not a status: {other:?}"),
        }
    }

    #[test]
    fn codes() {
        assert_eq!(code_of(Error::NotFound("x".into())), Code::NOT_FOUND);
        assert_eq!(
            code_of(Error::AlreadyExists("x".into())),
            Code::ALREADY_EXISTS
        );
        assert_eq!(
            code_of(Error::InvalidArgument("x".into())),
            Code::INVALID_ARGUMENT
        );
        assert_eq!(code_of(Error::Unsupported("no")), Code::UNIMPLEMENTED);
        let missing = Error::io("failed to read", "/b/exec.pid")(std::io::Error::from(
            std::io::ErrorKind::NotFound,
        ));
        assert_eq!(code_of(missing), Code::INTERNAL);
        let runtime = |command: &str, kind| Error::Runtime {
            command: command.into(),
            status: 1,
            kind,
            // The message plays no part: it says the opposite on purpose.
            message: "container c does not exist".into(),
        };
        for (command, kind, code) in [
            ("state", ErrorKind::NotFound, Code::NOT_FOUND),
            ("create", ErrorKind::AlreadyExists, Code::ALREADY_EXISTS),
            ("kill", ErrorKind::NotRunning, Code::NOT_FOUND),
            ("pause", ErrorKind::NotRunning, Code::FAILED_PRECONDITION),
            ("create", ErrorKind::InvalidSpec, Code::INVALID_ARGUMENT),
            (
                "create",
                ErrorKind::PlacementRefused,
                Code::RESOURCE_EXHAUSTED,
            ),
            ("delete", ErrorKind::Internal, Code::INTERNAL),
        ] {
            assert_eq!(code_of(runtime(command, kind)), code, "{command} {kind}");
        }
    }
}
