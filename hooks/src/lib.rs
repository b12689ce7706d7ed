//! Device discovery for pinc's GPU/RDMA injection.
//!
//! Everything reads from a configurable `root` (normally `/`) so tests can use
//! fixture trees: `<root>/proc`, `<root>/sys` and `<root>/dev`.
//!
//! - [`gpu`]: NVIDIA GPUs from `/proc/driver/nvidia/gpus/*/information` (no NVML).
//! - [`rdma`]: RDMA HCAs from `/sys/class/infiniband*` and their `/dev/infiniband` nodes.
//! - [`selection`]: `NVIDIA_VISIBLE_DEVICES`-style requests (`all`, `none`, lists).
//! - [`device`]: device nodes read with `lstat`, refusing symlinks.

pub mod device;
pub mod gpu;
pub mod rdma;
pub mod selection;

pub use device::{DeviceError, DeviceKind, DeviceNode};
pub use gpu::{discover_gpus, Gpu, GpuError, NvidiaDevices};
pub use rdma::{discover_hcas, Hca, RdmaDevices, RdmaError};
pub use selection::{normalize_bus_id, select_gpus, select_hcas, Request, SelectionError};

#[cfg(test)]
pub(crate) mod testutil;
