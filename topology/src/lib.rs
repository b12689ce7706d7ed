//! What a node looks like (packages, NUMA nodes, L3 groups, cores, PUs, PCI
//! devices, distances) and where a container should run on it.
//!
//! The model is plain data, loadable from the live machine, an hwloc XML
//! file or a synthetic description, so the planner is tested on real HPC
//! node topologies without the hardware.

pub mod devices;
pub mod error;
pub mod hugepages;
pub mod hwloc;
mod lookup;
pub mod model;
pub mod planner;
pub mod render;
pub mod synthetic;
#[doc(hidden)]
pub mod testdata;

pub use error::TopologyError;
pub use hwloc::{from_xml, live};
pub use model::{
    Core, Device, DeviceKind, Distances, HugepagePool, MemoryKind, NumaNode, Package, Topology,
};
