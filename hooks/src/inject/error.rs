//! How the devices stage refuses a spec.

use std::path::PathBuf;

use crate::selection::SelectionError;

#[derive(Debug, thiserror::Error)]
pub enum DevicesError {
    #[error(
        "rootless: you cannot open {} on the host ({reason}), so pinc will not give it to the container",
        path.display()
    )]
    NotOpenable { path: PathBuf, reason: &'static str },
    #[error("{from}: no NVIDIA GPUs on this node (NVML: {nvml}; {}: none listed)", listing.display())]
    NoGpus {
        from: String,
        nvml: String,
        listing: PathBuf,
    },
    /// A named device this node does not have.
    #[error("{from}")]
    Select {
        from: String,
        #[source]
        source: SelectionError,
    },
    #[error("GPU {index} ({uuid}) is not in this Slurm job's allocation ({var}={value})")]
    OutsideSlurm {
        index: usize,
        uuid: String,
        var: String,
        value: String,
    },
    #[error("NVIDIA_DRIVER_CAPABILITIES")]
    Capabilities(#[source] crate::driver::DriverError),
    #[error(transparent)]
    Driver(crate::driver::DriverError),
    #[error(transparent)]
    Gpu(#[from] crate::GpuError),
    #[error(transparent)]
    Rdma(#[from] crate::rdma::HcaError),
    #[error(transparent)]
    Cdi(#[from] crate::cdi::CdiError),
    #[error("CDI devices are not supported in rootless containers yet")]
    CdiRootless,
    #[error("{} resolves to {}, outside {}", entry.display(), target.display(), sys.display())]
    SysfsEscape {
        entry: PathBuf,
        target: PathBuf,
        sys: PathBuf,
    },
    #[error("failed to resolve {}", path.display())]
    Resolve {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
