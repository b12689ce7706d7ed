//! Which [`ErrorKind`] each failure is: the one place that decides what a
//! caller (pinc's containerd shim) may rely on. Decided by variant and
//! source type, never by message, so rewording an error changes no kind.

use pinc_errkind::ErrorKind;

use crate::error::Error;
use crate::process::exec::ExecError;
use crate::state::id::IdError;

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } | Error::Reclaimed { .. } => ErrorKind::NotFound,
            Error::IdInUse { .. } => ErrorKind::AlreadyExists,
            Error::WrongState { status, .. } if status == "stopped" => ErrorKind::NotRunning,
            Error::WrongState { .. } | Error::NotStopped { .. } => ErrorKind::WrongState,
            Error::Spec(_) | Error::Bundle(_) => ErrorKind::InvalidSpec,
            Error::Id(e) => match e {
                IdError::Empty | IdError::Dots(_) | IdError::Char { .. } | IdError::TooLong => {
                    ErrorKind::InvalidArgument
                }
            },
            Error::Signal(_) | Error::Resources { .. } => ErrorKind::InvalidArgument,
            Error::Exec(e) => exec_kind(e),
            Error::Pipeline(e) => stage_kind(e.source.as_ref()),
            Error::Unsupported(_) => ErrorKind::Unsupported,
            Error::Root(_)
            | Error::Lock(_)
            | Error::Rootless(_)
            | Error::Ledger(_)
            | Error::DevLinks(_)
            | Error::HookRelay(_)
            | Error::Libcontainer { .. }
            | Error::Io { .. }
            | Error::Sys { .. }
            | Error::Json { .. }
            | Error::Affinity(_)
            | Error::Oom(_)
            | Error::Cgroup(_)
            | Error::CgroupSetup { .. } => ErrorKind::Internal,
        }
    }
}

fn exec_kind(e: &ExecError) -> ErrorKind {
    use crate::process::exec::process::ProcessError as P;
    match e {
        ExecError::Process(p) => match p {
            P::NoCommand | P::RelativeCwd(_) | P::UnknownCapability(_) | P::Affinity(..) => {
                ErrorKind::InvalidArgument
            }
            P::EmptyArgs { .. }
            | P::RelativeFileCwd { .. }
            | P::Read { .. }
            | P::Parse { .. }
            | P::NoContainerProcess => ErrorKind::InvalidSpec,
        },
        ExecError::CgroupPerController(_)
        | ExecError::NoSubCgroup { .. }
        | ExecError::SubCgroupEscapes(_) => ErrorKind::InvalidArgument,
        ExecError::Spec { .. }
        | ExecError::Confine(_)
        | ExecError::Undumpable(_)
        | ExecError::UserNamespace { .. } => ErrorKind::Internal,
    }
}

/// A pipeline stage's error, by its type: a malformed pinc.io request is
/// the spec's fault; a valid one the node cannot meet is a refusal.
fn stage_kind(source: &(dyn std::error::Error + Send + Sync + 'static)) -> ErrorKind {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(source);
    while let Some(e) = cause {
        if e.is::<pinc_topology::request::RequestError>()
            || e.is::<pinc_hooks::selection::SelectionError>()
        {
            return ErrorKind::InvalidSpec;
        }
        if e.is::<pinc_topology::planner::PlanError>() || e.is::<crate::placement::Refusal>() {
            return ErrorKind::PlacementRefused;
        }
        cause = e.source();
    }
    ErrorKind::Internal
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::PipelineError;

    fn stage(source: crate::pipeline::StageError) -> Error {
        Error::Pipeline(PipelineError {
            stage: "placement",
            source,
        })
    }

    #[test]
    fn lifecycle_errors() {
        let id = || "c".to_string();
        assert_eq!(Error::NotFound { id: id() }.kind(), ErrorKind::NotFound);
        assert_eq!(Error::Reclaimed { id: id() }.kind(), ErrorKind::NotFound);
        assert_eq!(Error::IdInUse { id: id() }.kind(), ErrorKind::AlreadyExists);
        let state = |status: &str| Error::WrongState {
            id: id(),
            action: "kill",
            status: status.to_string(),
            hint: "",
        };
        assert_eq!(state("stopped").kind(), ErrorKind::NotRunning);
        assert_eq!(state("created").kind(), ErrorKind::WrongState);
        assert_eq!(state("paused").kind(), ErrorKind::WrongState);
        let live = Error::NotStopped {
            id: id(),
            status: "running".into(),
        };
        assert_eq!(live.kind(), ErrorKind::WrongState);
        assert_eq!(
            Error::Signal("SIGFOO".into()).kind(),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            Error::Id(IdError::Dots("..".into())).kind(),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            Error::Unsupported("checkpoint".into()).kind(),
            ErrorKind::Unsupported
        );
    }

    #[test]
    fn stage_errors_by_type_not_wording() {
        let request = pinc_topology::request::RequestError::CpusAndCores;
        assert_eq!(stage(Box::new(request)).kind(), ErrorKind::InvalidSpec);
        let plan = pinc_topology::planner::PlanError::NoHbm("0-3".into());
        assert_eq!(stage(Box::new(plan)).kind(), ErrorKind::PlacementRefused);
        // A wrapped cause is found through the chain.
        #[derive(Debug, thiserror::Error)]
        #[error("wrapped")]
        struct Wrapped(#[source] pinc_topology::planner::PlanError);
        let wrapped = Wrapped(pinc_topology::planner::PlanError::StrictConflict(
            "x".into(),
        ));
        assert_eq!(stage(Box::new(wrapped)).kind(), ErrorKind::PlacementRefused);
        // Wording that sounds like a refusal is still internal.
        let io = std::io::Error::other("no free cores");
        assert_eq!(stage(Box::new(io)).kind(), ErrorKind::Internal);
    }
}
