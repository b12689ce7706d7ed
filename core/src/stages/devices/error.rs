//! How the devices stage refuses a spec.

use std::path::PathBuf;

use pinc_devices::selection::SelectionError;
use pinc_errkind::ErrorKind;

use crate::pipeline::StageFailure;

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
    Capabilities(#[source] pinc_devices::driver::DriverError),
    #[error(transparent)]
    Driver(pinc_devices::driver::DriverError),
    #[error(transparent)]
    Gpu(#[from] pinc_devices::GpuError),
    #[error(transparent)]
    Rdma(#[from] pinc_devices::rdma::HcaError),
    #[error(transparent)]
    Cdi(#[from] pinc_devices::cdi::CdiError),
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

impl StageFailure for DevicesError {
    fn kind(&self) -> ErrorKind {
        match self {
            // The spec names devices this node does not have or may not give.
            DevicesError::Select { .. }
            | DevicesError::Capabilities(_)
            | DevicesError::CdiRootless => ErrorKind::InvalidSpec,
            DevicesError::NotOpenable { .. }
            | DevicesError::NoGpus { .. }
            | DevicesError::OutsideSlurm { .. }
            | DevicesError::Driver(_)
            | DevicesError::Gpu(_)
            | DevicesError::Rdma(_)
            | DevicesError::Cdi(_)
            | DevicesError::SysfsEscape { .. }
            | DevicesError::Resolve { .. } => ErrorKind::Internal,
        }
    }
}
