//! pinc's container lifecycle: everything the `pinc` CLI and the containerd
//! shim do, as library calls over youki's `libcontainer`.
//!
//! Data flows one way: load the bundle's spec ([`bundle`]), run the HPC
//! [`pipeline`] over it, then hand the final spec to libcontainer
//! ([`create`]). Each pipeline stage is a plain function over the spec.

pub mod bundle;
pub mod cgroup_mount;
pub mod crash;
pub mod create;
pub mod devices;
pub mod devlinks;
pub mod error;
mod error_kind;
pub mod events;
pub mod exec;
pub mod executor;
pub mod features;
pub mod hook_relay;
pub mod hpc_preset;
pub mod id;
pub mod late_hooks;
pub mod ledger;
pub mod list;
pub mod lock;
pub mod normalize;
pub mod ops;
pub mod orphans;
pub mod pipeline;
pub mod placement;
pub mod propagation;
pub mod ps;
pub mod reclaim;
pub mod root;
pub mod rootless;
pub mod run;
pub mod sidecar;
pub mod signal;
pub mod spec_template;
pub mod state_copy;
pub mod subid;
pub mod update;
pub mod validate;

pub use error::Error;
pub use pinc_errkind::ErrorKind;
pub use root::RuntimeRoot;

/// Starts the kernel's cgroup-attach grace period early (see
/// `pinc_cgroup::prewarm`); call first thing in create and run.
pub fn prewarm_cgroup_attach() {
    pinc_cgroup::prewarm::start(std::path::Path::new("/"));
}

/// Re-exported so callers build specs with the exact version libcontainer uses.
pub use libcontainer::oci_spec;
