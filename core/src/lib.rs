//! pinc's container lifecycle: everything the `pinc` CLI and the containerd
//! shim do, as library calls over youki's `libcontainer`.
//!
//! Data flows one way: load the bundle's spec ([`spec::bundle`]), run the
//! HPC [`pipeline`] over it, then hand the final spec to libcontainer
//! ([`container::create`]). Each pipeline stage is a plain function over the spec.
//!
//! Modules by concern:
//! - [`container`]: the lifecycle verbs, one module each;
//!   they return data, the `pinc` binary renders it.
//! - [`state`]: the runtime root, ids, locks, pinc's sidecar record and
//!   crash recovery.
//! - [`spec`]: loading, checking and rewriting the OCI spec.
//! - [`mounts`]: mount work around libcontainer's (propagation, /dev, v1 cgroup).
//! - [`process`]: exec, the executor, signals, hooks pinc runs or relays.
//! - [`rootless`]: the rootless sandbox and subordinate ids.
//! - [`pipeline`]: the stage framework; the request it hands the stages
//!   is read by `pinc_request`.
//! - [`stages`]: the stages (MPI preset, devices, placement, and the
//!   finalize stages every create runs) and the pipelines made of them.
//! - [`node_topology`], [`ledger`], [`cgroup_plan`]: what stages share: the
//!   node's topology, its CPU allocations, the cgroup limits pinc applies.

pub mod cgroup_plan;
pub mod container;
pub mod crash;
pub mod error;
mod error_kind;
pub mod ledger;
pub mod mounts;
pub mod node_topology;
pub mod pipeline;
pub mod process;
pub mod rootless;
pub mod spec;
pub mod stages;
pub mod state;

pub use error::Error;
pub use pinc_errkind::ErrorKind;
pub use state::root::RuntimeRoot;

/// Starts the kernel's cgroup-attach grace period early (see
/// `pinc_cgroup::prewarm`); call first thing in create and run.
pub fn prewarm_cgroup_attach() {
    pinc_cgroup::prewarm::start(std::path::Path::new("/"));
}

/// Re-exported so callers build specs with the exact version libcontainer uses.
pub use libcontainer::oci_spec;
