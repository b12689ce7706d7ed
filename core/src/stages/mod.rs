//! pinc's stages over the spec, and the pipelines made of them: [`hpc`]
//! (what the container asked pinc for) and [`finalize`] (what every
//! container needs before libcontainer sees its spec). Both run through
//! the framework in [`crate::pipeline`], which records each stage that
//! changed the spec.
//!
//! A new stage: a module here with a type implementing
//! [`crate::pipeline::Stage`] and its own error enum implementing
//! [`crate::pipeline::StageFailure`]; its keys in [`pinc_request`]; its
//! place in one of the lists below. A stage other binaries run too (as
//! `pinc-hook` runs the devices stage) lives in a crate of its own, with
//! only its `Stage` impl here.

pub mod devices;
pub mod finalize;
pub mod hpc_preset;
pub mod placement;

use crate::pipeline::Pipeline;

/// The HPC pipeline the CLI and the shim both run: the MPI preset, devices
/// (GPUs, HCAs, CDI), then placement (CPUs, memory, hugepages) near them.
pub fn hpc() -> Pipeline {
    Pipeline::noop()
        .with_stage(hpc_preset::HpcPresetStage::from_env())
        .with_stage(pinc_devices::inject::DevicesStage::from_env())
        .with_stage(placement::PlacementStage::new(Box::new(
            crate::node_topology::live_topology,
        )))
}

/// The edits create makes after [`hpc`] (and that `pinc create` makes
/// without it): pinc's default cgroupsPath, the v1 cgroup mounts, the
/// cgroup limits pinc applies itself, the caller's CPU affinity, and the
/// rootless sandbox's adaptation.
pub fn finalize() -> Pipeline {
    Pipeline::noop()
        .with_stage(finalize::CgroupsPath)
        .with_stage(finalize::CgroupMounts)
        .with_stage(finalize::CgroupLimits)
        .with_stage(finalize::KeepAffinity)
        .with_stage(finalize::Sandbox)
}
