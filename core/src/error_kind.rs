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
            // The kinds these had as strings, kept so that no caller sees
            // a change.
            Error::Interval(_)
            | Error::ConfigExists { .. }
            | Error::NoCgroups { .. }
            | Error::NoInitPid
            | Error::Hugetlb(_)
            | Error::Rdma(_) => ErrorKind::Unsupported,
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
        let select = pinc_devices::inject::DevicesError::CdiRootless;
        assert_eq!(stage(select.into()).kind(), ErrorKind::InvalidSpec);
        // A malformed request fails before any stage, as the spec's fault.
        let request = crate::pipeline::Request::from_parts(
            &[("pinc.io/hpc".to_string(), "treu".to_string())].into(),
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

    #[test]
    fn former_unsupported_strings_keep_their_kind() {
        use crate::container::events::IntervalError;
        use std::path::PathBuf;
        let io = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let path = || PathBuf::from("/sys/fs/cgroup/c");
        for e in [
            Error::Interval(IntervalError::Invalid("5h".into())),
            Error::Interval(IntervalError::NotPositive),
            Error::ConfigExists {
                path: "/b/config.json".into(),
            },
            Error::NoCgroups {
                id: "c".into(),
                action: "pause",
            },
            Error::NoInitPid,
            Error::Hugetlb(pinc_cgroup::hugetlb::HugetlbError::Remove {
                path: path(),
                source: io(),
            }),
            Error::Rdma(pinc_cgroup::rdma::RdmaError::Missing),
            Error::Rdma(pinc_cgroup::rdma::RdmaError::Remove {
                path: path(),
                source: io(),
            }),
        ] {
            assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
        }
    }

    #[test]
    fn messages_are_the_former_strings() {
        use crate::container::events::IntervalError;
        let cases: [(Error, &str); 5] = [
            (
                Error::Interval(IntervalError::Invalid("5h".into())),
                "invalid interval \"5h\"",
            ),
            (
                Error::Interval(IntervalError::NotPositive),
                "the interval must be positive",
            ),
            (
                Error::ConfigExists {
                    path: "/b/config.json".into(),
                },
                "/b/config.json exists; remove it first",
            ),
            (
                Error::NoCgroups {
                    id: "c".into(),
                    action: "read stats of",
                },
                "cannot read stats of container \"c\": it runs rootless without delegated cgroups",
            ),
            (Error::NoInitPid, "libcontainer returned no init pid"),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
        }
        // A cgroup error names its cause once: as its source, which pinc's
        // one-line printer appends, not again in its own message.
        let e = Error::Hugetlb(pinc_cgroup::hugetlb::HugetlbError::Remove {
            path: "/sys/fs/cgroup/c".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        });
        assert_eq!(e.to_string(), "failed to remove /sys/fs/cgroup/c");
        let cause = std::error::Error::source(&e).map(|c| c.to_string());
        assert_eq!(cause.as_deref(), Some("permission denied"));
    }
}
