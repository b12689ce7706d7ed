//! pinc's devices: discovery, selection, CDI, and the devices stage.
//!
//! Everything reads from a configurable `root` (normally `/`) so tests can use
//! fixture trees: `<root>/proc`, `<root>/sys` and `<root>/dev`.
//!
//! - [`gpu`]: NVIDIA GPUs through NVML if configured, else from
//!   `/proc/driver/nvidia/gpus/*/information`.
//! - [`nvml`]: NVML (`libnvidia-ml`) loaded at run time from an explicit path.
//! - [`rdma`]: RDMA HCAs from `/sys/class/infiniband*` and their `/dev/infiniband` nodes.
//! - [`selection`]: which devices a request (`all`, `none`, lists) names.
//! - [`device`]: device nodes read with `lstat`, refusing symlinks.
//! - [`resolve`]: paths resolved inside a root like `chroot` would, never escaping it.
//! - [`ldcache`]: glibc's `/etc/ld.so.cache` parser.
//! - [`driver`]: NVIDIA driver libraries and tools per `NVIDIA_DRIVER_CAPABILITIES`.
//! - [`cdi`]: Container Device Interface specs (`/etc/cdi`, `/var/run/cdi`) applied to OCI specs.
//! - [`inject`]: the devices stage, which gives a container the GPUs, HCAs
//!   and CDI devices its request names (run by pinc and by `pinc-hook`).
//! - [`memlock`]: RLIMIT_MEMLOCK for registered memory (RDMA, the HPC preset).

pub mod cdi;
pub mod device;
pub mod driver;
pub mod gpu;
pub mod inject;
pub mod ldcache;
pub mod memlock;
pub mod nvml;
pub mod rdma;
pub mod resolve;
pub mod selection;

pub use device::{DeviceError, DeviceNode, NodeKind};
pub use driver::{
    discover_driver, library_dirs, Capabilities, Capability, DriverError, DriverFile, DriverFiles,
};
pub use gpu::{discover_gpus, discover_gpus_with, Gpu, GpuError, NvidiaDevices};
pub use ldcache::{Arch, LdCache, LdCacheError};
pub use rdma::{discover_hcas, Hca, HcaError, RdmaDevices};
pub use resolve::{in_root_path, resolve_in_root, ResolveError};
pub use selection::{normalize_bus_id, select_gpus, select_hcas, DeviceSelection, SelectionError};

#[cfg(test)]
pub(crate) mod testutil;
