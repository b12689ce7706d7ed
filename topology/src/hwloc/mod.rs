//! Loading a [`Topology`] with hwloc (through `hwlocality`), from an XML
//! export or from the live machine.
//!
//! Everything is converted to OS indexes. A few hwloc habits the model
//! smooths over:
//!
//! - hwloc gives every NUMA node a cpuset, CPU-less ones included (their
//!   cpuset is their locality). The model wants each PU in exactly one
//!   node's `cpus`, so each PU is given to the first node covering it in
//!   this order: plain DRAM nodes (no subtype, or "DRAM") before the rest
//!   (MCDRAM, HBM, GPU memory...), then hwloc's order. A node that ends up
//!   with no PU is CPU-less and gets its parent's cpuset as `near_cpus`.
//!   On the live machine the kernel's `node<N>/cpulist` decides instead.
//! - L3Cache objects of subtype "MemorySideCache" (how hwloc 2.0 XML
//!   stores KNL's MCDRAM cache) are not L3 groups.
//! - I/O objects are kept (`TypeFilter::KeepAll`); hwloc's default drops
//!   GPUs and NICs even from XML.
//! - A device's locality is its first non-I/O ancestor. When that is the
//!   machine itself on a multi-node box, the locality is unknown and
//!   `numa`/`cpus` stay empty. `numa` is the ancestor's nodeset, so it
//!   includes CPU-less nodes there (MCDRAM, GPU memory).
//! - The live topology includes PUs outside the caller's cpuset
//!   (`INCLUDE_DISALLOWED`): what the caller may use is the cgroup code's
//!   business, not the topology's.

mod convert;
mod devices;

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::path::Path;
use std::sync::Mutex;

use hwlocality::bitmap::SpecializedBitmapRef;
use hwlocality::object::attributes::ObjectAttributes;
use hwlocality::object::types::ObjectType;
use hwlocality::object::TopologyObject;
use hwlocality::topology::builder::{BuildFlags, TopologyBuilder, TypeFilter};
use hwlocality::Topology as HwTopology;
use pinc_cpulist::CpuList;

use crate::error::TopologyError;
use crate::model::{HugepagePool, MemoryKind, Topology};

use convert::convert;

/// The largest CPU/node index the model (and Linux) can hold.
const MAX_INDEX: usize = 8191;

/// hwloc's loaders touch process-wide state (thread binding while
/// discovering, the XML parser's globals): one load at a time.
static LOAD: Mutex<()> = Mutex::new(());

/// Loads an hwloc XML export (`lstopo --of xml`).
///
/// The file is read here rather than by hwloc: hwlocality panics on any
/// errno but EINVAL from `hwloc_topology_set_xml` (a missing file is ENOENT).
pub fn from_xml(path: impl AsRef<Path>) -> Result<Topology, TopologyError> {
    let path = path.as_ref();
    let what = path.display().to_string();
    let xml = std::fs::read_to_string(path).map_err(|source| TopologyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let source = |b: TopologyBuilder| {
        b.from_xml(&xml).map_err(|source| TopologyError::XmlInput {
            path: path.to_path_buf(),
            source,
        })
    };
    let hw = {
        let _guard = LOAD.lock().unwrap_or_else(|e| e.into_inner());
        probe(path, || build(&what, source).is_ok())?;
        build(&what, source)?
    };
    convert(&hw, what, None)
}

/// Runs `load` (an hwloc XML import) in a forked child first and reports
/// how the child ended: libhwloc trusts its XML (fuzzing found hwloc 2.9's
/// parser segfaulting on a 28-byte truncated file), and a bad file must
/// fail with an error, not kill pinc. The caller holds [`LOAD`], so no
/// other thread is inside hwloc when the child is forked.
fn probe(path: &Path, load: impl FnOnce() -> bool) -> Result<(), TopologyError> {
    let failed = |source| TopologyError::XmlProbe {
        path: path.to_path_buf(),
        source,
    };
    // SAFETY: the child only runs hwloc's loader on memory it inherited,
    // then leaves with _exit; it never returns into the caller.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(failed(std::io::Error::last_os_error()));
    }
    if pid == 0 {
        let code = if load() { 0 } else { 1 };
        // SAFETY: ends the child at once, without the parent's atexit
        // handlers or buffered output.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    loop {
        // SAFETY: waits for the child forked above; `status` is a valid
        // out pointer.
        if unsafe { libc::waitpid(pid, &mut status, 0) } == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(failed(e));
        }
    }
    if libc::WIFSIGNALED(status) {
        return Err(TopologyError::XmlCrash {
            path: path.to_path_buf(),
            signal: libc::WTERMSIG(status),
        });
    }
    Ok(())
}

/// Loads this machine's topology, with hugepages from sysfs.
pub fn live() -> Result<Topology, TopologyError> {
    let what = "this machine".to_string();
    let hw = load(&what, |b| {
        b.with_flags(BuildFlags::INCLUDE_DISALLOWED)
            .map_err(|source| TopologyError::BuildFlags {
                what: what.clone(),
                source,
            })
    })?;
    let root = Path::new("/");
    let nodes: Vec<u32> = hw
        .objects_with_type(ObjectType::NUMANode)
        .filter_map(|n| n.os_index())
        .filter_map(|i| u32::try_from(i).ok())
        .collect();
    let kernel_cpus = sysfs_node_cpus(root, &nodes)?;
    let mut topology = convert(&hw, "live".to_string(), kernel_cpus.as_ref())?;
    crate::hugepages::read(root, &mut topology)?;
    Ok(topology)
}

/// Sets up a builder (I/O objects kept), lets `source` pick the input, and
/// loads, all under the process-wide lock.
fn load(
    what: &str,
    source: impl FnOnce(TopologyBuilder) -> Result<TopologyBuilder, TopologyError>,
) -> Result<HwTopology, TopologyError> {
    // A poisoned lock only means another load panicked; the guard protects
    // no data of ours.
    let _guard = LOAD.lock().unwrap_or_else(|e| e.into_inner());
    build(what, source)
}

/// [`load`] without the lock, for callers that hold it.
fn build(
    what: &str,
    source: impl FnOnce(TopologyBuilder) -> Result<TopologyBuilder, TopologyError>,
) -> Result<HwTopology, TopologyError> {
    let builder = TopologyBuilder::new()
        .with_io_type_filter(TypeFilter::KeepAll)
        .map_err(|source| TopologyError::TypeFilter {
            what: what.to_string(),
            source,
        })?;
    source(builder)?
        .build()
        .map_err(|source| TopologyError::Load {
            what: what.to_string(),
            source,
        })
}

/// The kernel's CPU list of each NUMA node, when sysfs has them all.
fn sysfs_node_cpus(
    root: &Path,
    nodes: &[u32],
) -> Result<Option<BTreeMap<u32, CpuList>>, TopologyError> {
    let mut map = BTreeMap::new();
    for &node in nodes {
        let path = root.join(format!("sys/devices/system/node/node{node}/cpulist"));
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(TopologyError::Read { path, source }),
        };
        let cpus = text
            .parse::<CpuList>()
            .map_err(|source| TopologyError::CpuList {
                path: path.clone(),
                source,
            })?;
        map.insert(node, cpus);
    }
    Ok(Some(map))
}

fn index(i: usize, what: &str) -> Result<u32, TopologyError> {
    u32::try_from(i)
        .ok()
        .filter(|&i| i as usize <= MAX_INDEX)
        .ok_or_else(|| TopologyError::Unexpected {
            what: what.to_string(),
            reason: format!("index {i} is larger than {MAX_INDEX}"),
        })
}

/// A hwloc bitmap as a list of OS indexes (finite part only).
fn list(set: &impl SpecializedBitmapRef) -> CpuList {
    set.as_bitmap_ref()
        .iter_set()
        .map(usize::from)
        .take_while(|&i| i <= MAX_INDEX)
        .filter_map(|i| u32::try_from(i).ok())
        .collect()
}

fn cpus_of(obj: &TopologyObject) -> CpuList {
    obj.cpuset().map(|s| list(&s)).unwrap_or_default()
}

fn nodes_of(obj: &TopologyObject) -> CpuList {
    obj.nodeset().map(|s| list(&s)).unwrap_or_default()
}

fn text(s: Option<&CStr>) -> Option<String> {
    s.map(|s| s.to_string_lossy().into_owned())
}

/// The memory kind from hwloc's NUMA node subtype.
pub(crate) fn memory_kind(subtype: Option<&str>) -> MemoryKind {
    match subtype.map(str::to_ascii_lowercase).as_deref() {
        Some("mcdram" | "hbm") => MemoryKind::Hbm,
        Some("gpumemory") => MemoryKind::Gpu,
        _ => MemoryKind::Dram,
    }
}

/// The hugepage pools hwloc records for a NUMA node: all page types but the
/// first, which is the normal page (hwloc sorts them by size and puts the
/// base page first; it is at most 64 KiB on every Linux architecture).
/// XML carries only the total, so `free` is the total.
fn page_type_pools(node: &TopologyObject) -> Vec<HugepagePool> {
    let Some(ObjectAttributes::NUMANode(attrs)) = node.attributes() else {
        return Vec::new();
    };
    let types = attrs.page_types();
    types
        .iter()
        .enumerate()
        .filter(|(i, t)| !(*i == 0 && t.size().get() <= 64 * 1024))
        .map(|(_, t)| HugepagePool {
            size_kb: t.size().get() / 1024,
            total: t.count(),
            free: t.count(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use hwlocality::object::types::OSDeviceType;

    use super::devices::{classify, is_rdma_name};
    use super::*;
    use crate::model::DeviceKind;

    #[test]
    fn classifies_devices() {
        let none: Vec<(String, Option<String>, Option<OSDeviceType>)> = Vec::new();
        let os = |n: &str, s: Option<&str>, t: Option<OSDeviceType>| {
            vec![(n.to_string(), s.map(str::to_string), t)]
        };
        assert_eq!(classify(0x0302, 0x10de, &none), DeviceKind::Gpu);
        // A BMC's VGA is not a GPU.
        assert_eq!(classify(0x0300, 0x1a03, &none), DeviceKind::Other);
        assert_eq!(classify(0x0300, 0x10de, &none), DeviceKind::Gpu);
        assert_eq!(
            classify(0x0300, 0x1002, &os("opencl0d1", Some("OpenCL"), None)),
            DeviceKind::Gpu
        );
        assert_eq!(classify(0x0207, 0x15b3, &none), DeviceKind::Hca);
        assert_eq!(classify(0x0c06, 0x15b3, &none), DeviceKind::Hca);
        assert_eq!(
            classify(0x0200, 0x15b3, &os("mlx5_0", None, None)),
            DeviceKind::Hca
        );
        assert_eq!(
            classify(
                0x0200,
                0x8086,
                &os("eth0", None, Some(OSDeviceType::Network))
            ),
            DeviceKind::Nic
        );
        assert_eq!(
            classify(0x0b40, 0x1bcf, &os("ve0", Some("VectorEngine"), None)),
            DeviceKind::Other
        );
        assert_eq!(classify(0x0108, 0x144d, &none), DeviceKind::Other);
    }

    #[test]
    fn rdma_names() {
        assert!(is_rdma_name("mlx5_0"));
        assert!(is_rdma_name("mlx4_12"));
        assert!(is_rdma_name("hfi1_0"));
        assert!(!is_rdma_name("mlx"));
        assert!(!is_rdma_name("mlx5"));
        assert!(!is_rdma_name("eth0"));
    }

    #[test]
    fn memory_kinds() {
        assert_eq!(memory_kind(None), MemoryKind::Dram);
        assert_eq!(memory_kind(Some("DRAM")), MemoryKind::Dram);
        assert_eq!(memory_kind(Some("MCDRAM")), MemoryKind::Hbm);
        assert_eq!(memory_kind(Some("HBM")), MemoryKind::Hbm);
        assert_eq!(memory_kind(Some("GPUMemory")), MemoryKind::Gpu);
    }

    #[test]
    fn kernel_node_cpus_from_sysfs() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let node = |n: u32, cpus: &str| {
            let dir = tmp.path().join(format!("sys/devices/system/node/node{n}"));
            std::fs::create_dir_all(&dir).expect("mkdir");
            std::fs::write(dir.join("cpulist"), cpus).expect("write");
        };
        node(0, "0-3,8-11\n");
        node(7, "\n");
        let map = sysfs_node_cpus(tmp.path(), &[0, 7])
            .expect("read")
            .expect("all nodes present");
        assert_eq!(map[&0].to_string(), "0-3,8-11");
        assert!(map[&7].is_empty());
        // A node without sysfs: fall back to hwloc's view.
        assert!(sysfs_node_cpus(tmp.path(), &[0, 1])
            .expect("read")
            .is_none());
        node(2, "zero");
        let err = sysfs_node_cpus(tmp.path(), &[2]).expect_err("garbage");
        assert!(err.to_string().contains("node2/cpulist"), "{err}");
    }

    #[test]
    fn missing_xml_names_the_path() {
        let err = from_xml("/nonexistent/topology.xml").expect_err("no such file");
        assert!(
            err.to_string().contains("/nonexistent/topology.xml"),
            "{err}"
        );
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn xml_that_crashes_hwloc_is_an_error() {
        // Found by fuzzing (fuzz/ target `hwloc_xml`): hwloc 2.9's XML
        // parser segfaults on this truncated file.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.xml");
        std::fs::write(&path, "<?xml \n<topologyversion=\"0.0").expect("write");
        let err = from_xml(&path).expect_err("crashing XML");
        let msg = err.to_string();
        assert!(msg.contains("bad.xml"), "{msg}");
        // Other hwloc versions may refuse it cleanly instead.
        assert!(
            matches!(
                err,
                TopologyError::XmlCrash { .. } | TopologyError::Load { .. }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn bad_xml_names_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, body) in [
            ("garbage.xml", "this is not xml"),
            ("empty.xml", ""),
            ("other.xml", "<?xml version=\"1.0\"?><html><body/></html>"),
            ("nul.xml", "<topology>\0</topology>"),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, body).expect("write");
            let err = from_xml(&path).expect_err(name);
            assert!(err.to_string().contains(name), "{err}");
            assert!(std::error::Error::source(&err).is_some(), "{name}");
        }
    }
}
