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
            Error::Pipeline(e) => e.kind(),
            Error::CgroupPlan(e) => e.kind(),
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

#[cfg(test)]
mod tests {
    use super::*;
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
    fn stage_errors_keep_the_kind_their_stage_gave() {
        use crate::pipeline::{PipelineError, StageError};
        let stage = |e: StageError| {
            Error::Pipeline(PipelineError::Stage {
                stage: "placement",
                kind: e.kind(),
                source: Box::new(std::io::Error::other(e.to_string())),
            })
        };
        let plan = crate::stages::placement::PlacementError::Plan(
            pinc_topology::planner::PlanError::NoHbm("0-3".into()),
        );
        assert_eq!(stage(plan.into()).kind(), ErrorKind::PlacementRefused);
        let refused = crate::stages::placement::Refusal::NoPageSize { name: "1GB".into() };
        let refused = crate::stages::placement::PlacementError::Refused(refused);
        assert_eq!(stage(refused.into()).kind(), ErrorKind::PlacementRefused);
        let select = crate::stages::devices::DevicesError::CdiRootless;
        assert_eq!(stage(select.into()).kind(), ErrorKind::InvalidSpec);
        // A malformed request fails before any stage, as the spec's fault.
        let request = crate::pipeline::Request::from_parts(
            &[("pinc.io/hpc".to_string(), "ture".to_string())].into(),
            &[],
        )
        .expect_err("typo");
        assert_eq!(
            Error::Pipeline(request.into()).kind(),
            ErrorKind::InvalidSpec
        );
        let limits = crate::cgroup_plan::PlanError::NoHugetlb;
        assert_eq!(Error::CgroupPlan(limits).kind(), ErrorKind::Unsupported);
    }
}
