//! Mount work pinc does around libcontainer's: per-mount propagation, the
//! v1 `cgroup` mount of shared-pid containers, and /dev entries.

pub mod cgroup_mount;
pub mod devlinks;
pub mod propagation;
