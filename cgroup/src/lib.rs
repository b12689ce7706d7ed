//! cgroup details that youki's libcgroups does not cover: the caller's CPU
//! affinity and cpuset (as `pinc_cpulist::CpuList`s), and whether the caller
//! may write to its own cgroups (delegation), on v1, v2 and hybrid hosts; and the
//! hugetlb reservations and rdma limits libcgroups does not set, and the
//! teardown of a container's cgroups when no state says where they are.
//!
//! Everything that reads cgroupfs or procfs takes a root path so tests can
//! point it at a temporary tree.

pub mod affinity;
pub mod caller;
pub mod delegation;
pub mod hugetlb;
pub mod mode;
pub mod oom;
pub mod prewarm;
pub mod rdma;
pub mod teardown;

pub use affinity::AffinityError;
pub use caller::{CallerCgroups, CallerError};
pub use delegation::Delegation;
pub use mode::CgroupMode;
