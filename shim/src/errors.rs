//! The shim's error type and its ONE mapping to ttrpc status codes.

use std::path::PathBuf;

use containerd_shim::protos::ttrpc::{self, Code};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Sys {
        what: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("failed to run {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("pinc {command} failed ({status}): {message}")]
    Runtime {
        command: String,
        status: i32,
        message: String,
    },
    #[error("invalid JSON from {what}: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid protobuf in {what}: {source}")]
    Protobuf {
        what: &'static str,
        #[source]
        source: containerd_shim::protos::protobuf::Error,
    },
    #[error("{what}: {source}")]
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
            Self::Runtime { message, .. } => runtime_code(message),
            Self::Io { source, .. } | Self::Spawn { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Code::NOT_FOUND
            }
            _ => Code::INTERNAL,
        }
    }
}

/// pinc's own messages tell a missing or existing container apart.
fn runtime_code(message: &str) -> Code {
    let m = message.to_ascii_lowercase();
    if m.contains("does not exist") || m.contains("not found") || m.contains("no such") {
        Code::NOT_FOUND
    } else if m.contains("already exists") {
        Code::ALREADY_EXISTS
    } else if m.contains("not supported") || m.contains("unsupported") {
        Code::UNIMPLEMENTED
    } else {
        Code::INTERNAL
    }
}

impl From<Error> for ttrpc::Error {
    fn from(e: Error) -> Self {
        let code = e.code();
        // The full chain: the top message alone often hides the cause.
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            let text = s.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = s.source();
        }
        ttrpc::Error::RpcStatus(ttrpc::get_status(code, message))
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
        let r = Error::Runtime {
            command: "state".into(),
            status: 1,
            message: "container x does not exist".into(),
        };
        assert_eq!(code_of(r), Code::NOT_FOUND);
    }
}
