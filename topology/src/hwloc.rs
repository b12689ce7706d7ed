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

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::path::Path;
use std::sync::Mutex;

use hwlocality::bitmap::SpecializedBitmapRef;
use hwlocality::object::attributes::ObjectAttributes;
use hwlocality::object::distance::DistancesKind;
use hwlocality::object::types::{OSDeviceType, ObjectType};
use hwlocality::object::TopologyObject;
use hwlocality::topology::builder::{BuildFlags, TopologyBuilder, TypeFilter};
use hwlocality::Topology as HwTopology;
use pinc_cpulist::CpuList;

use crate::error::TopologyError;
use crate::model::{
    Core, Device, DeviceKind, Distances, HugepagePool, MemoryKind, NumaNode, Package, Topology,
};

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

struct RawNode {
    os_index: u32,
    memory: u64,
    kind: MemoryKind,
    plain_dram: bool,
    hw_cpus: CpuList,
    parent_cpus: CpuList,
    hugepages: Vec<HugepagePool>,
}

fn convert(
    hw: &HwTopology,
    source: String,
    kernel_cpus: Option<&BTreeMap<u32, CpuList>>,
) -> Result<Topology, TopologyError> {
    let what = source.as_str();

    // PUs.
    let mut all_pus = CpuList::new();
    for pu in hw.objects_with_type(ObjectType::PU) {
        let os = pu.os_index().ok_or_else(|| TopologyError::Unexpected {
            what: what.to_string(),
            reason: "a PU has no OS index".to_string(),
        })?;
        all_pus.insert(index(os, what)?);
    }

    // NUMA nodes, in hwloc's (logical) order.
    let mut raw_nodes = Vec::new();
    for node in hw.objects_with_type(ObjectType::NUMANode) {
        let os_index = index(node.os_index().unwrap_or(node.logical_index()), what)?;
        let subtype = text(node.subtype());
        let memory = match node.attributes() {
            Some(ObjectAttributes::NUMANode(a)) => a.local_memory().map_or(0, |m| m.get()),
            _ => 0,
        };
        let hw_cpus = cpus_of(node).intersection(&all_pus);
        let parent_cpus = node
            .parent()
            .map(cpus_of)
            .unwrap_or_default()
            .intersection(&all_pus);
        raw_nodes.push(RawNode {
            os_index,
            memory,
            kind: memory_kind(subtype.as_deref()),
            plain_dram: subtype
                .as_deref()
                .is_none_or(|s| s.eq_ignore_ascii_case("dram")),
            hw_cpus,
            parent_cpus,
            hugepages: page_type_pools(node),
        });
    }

    // Which node owns each PU.
    let mut owned: BTreeMap<u32, CpuList> = BTreeMap::new();
    match kernel_cpus {
        Some(map) => {
            for n in &raw_nodes {
                let cpus = map
                    .get(&n.os_index)
                    .map(|c| c.intersection(&all_pus))
                    .unwrap_or_default();
                owned.insert(n.os_index, cpus);
            }
        }
        None => {
            let mut order: Vec<&RawNode> = raw_nodes.iter().collect();
            // Stable: plain DRAM first, hwloc order otherwise.
            order.sort_by_key(|n| !n.plain_dram);
            for n in &raw_nodes {
                owned.insert(n.os_index, CpuList::new());
            }
            for pu in all_pus.iter() {
                if let Some(n) = order.iter().find(|n| n.hw_cpus.contains(pu)) {
                    if let Some(set) = owned.get_mut(&n.os_index) {
                        set.insert(pu);
                    }
                }
            }
        }
    }

    let mut numa_nodes: Vec<NumaNode> = raw_nodes
        .into_iter()
        .map(|n| {
            let cpus = owned.get(&n.os_index).cloned().unwrap_or_default();
            let near_cpus = if cpus.is_empty() {
                if n.parent_cpus.is_empty() {
                    n.hw_cpus
                } else {
                    n.parent_cpus
                }
            } else {
                CpuList::new()
            };
            NumaNode {
                os_index: n.os_index,
                memory: n.memory,
                kind: n.kind,
                cpus,
                near_cpus,
                hugepages: n.hugepages,
            }
        })
        .collect();
    numa_nodes.sort_by_key(|n| n.os_index);
    let numa_of_pu = |pu: u32| {
        numa_nodes
            .iter()
            .find(|n| n.cpus.contains(pu))
            .map(|n| n.os_index)
    };

    // Packages: (os index, cpus).
    let mut package_sets: Vec<(u32, CpuList)> = Vec::new();
    for p in hw.objects_with_type(ObjectType::Package) {
        let os = index(p.os_index().unwrap_or(p.logical_index()), what)?;
        package_sets.push((os, cpus_of(p).intersection(&all_pus)));
    }
    if package_sets.is_empty() {
        package_sets.push((0, all_pus.clone()));
    }
    let packages = package_sets
        .iter()
        .map(|(os, cpus)| Package {
            os_index: *os,
            numa_nodes: numa_nodes
                .iter()
                .filter(|n| {
                    let local = if n.cpus.is_empty() {
                        &n.near_cpus
                    } else {
                        &n.cpus
                    };
                    !local.intersection(cpus).is_empty()
                })
                .map(|n| n.os_index)
                .collect(),
        })
        .collect();
    let package_of_pu = |pu: u32| {
        package_sets
            .iter()
            .find(|(_, cpus)| cpus.contains(pu))
            .map(|(os, _)| *os)
    };

    // L3 groups. hwloc 2.0 XML (KNL in hybrid mode) stores the MCDRAM
    // cache as an L3Cache of subtype "MemorySideCache": not a CPU cache.
    let l3_groups: Vec<CpuList> = hw
        .objects_with_type(ObjectType::L3Cache)
        .filter(|c| text(c.subtype()).is_none_or(|s| !s.eq_ignore_ascii_case("MemorySideCache")))
        .map(|c| cpus_of(c).intersection(&all_pus))
        .filter(|c| !c.is_empty())
        .collect();

    // Cores, then PUs hwloc put in no core.
    let mut core_sets: Vec<(Option<u32>, CpuList)> = Vec::new();
    for c in hw.objects_with_type(ObjectType::Core) {
        let pus = cpus_of(c).intersection(&all_pus);
        if pus.is_empty() {
            continue;
        }
        let os = c.os_index().map(|i| index(i, what)).transpose()?;
        core_sets.push((os, pus));
    }
    for pu in all_pus.iter() {
        if !core_sets.iter().any(|(_, pus)| pus.contains(pu)) {
            core_sets.push((None, std::iter::once(pu).collect()));
        }
    }
    let mut cores = Vec::with_capacity(core_sets.len());
    for (i, (os_index, pus)) in core_sets.into_iter().enumerate() {
        let Some(first) = pus.iter().next() else {
            continue;
        };
        cores.push(Core {
            index: i,
            os_index,
            package: package_of_pu(first).unwrap_or(0),
            numa: numa_of_pu(first),
            l3: l3_groups.iter().position(|l3| l3.contains(first)),
            pus: pus.iter().collect(),
        });
    }

    let devices = devices(hw, &numa_nodes, &all_pus);
    let distances = distances(hw, what)?;

    Ok(Topology {
        source,
        packages,
        numa_nodes,
        l3_groups,
        cores,
        devices,
        distances,
    })
}

/// OS device names whose presence makes a PCI device a GPU.
fn is_gpu_osdev(name: &str, subtype: Option<&str>) -> bool {
    let sub = subtype.map(str::to_ascii_lowercase);
    matches!(
        sub.as_deref(),
        Some("cuda" | "nvml" | "opencl" | "rsmi" | "levelzero")
    ) || ["cuda", "nvml", "opencl", "rsmi", "ze"]
        .iter()
        .any(|p| name.strip_prefix(p).is_some_and(starts_with_digit))
}

fn starts_with_digit(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_digit())
}

/// `mlx5_0`, `mlx4_1`, `hfi1_0`, `qib0`, `bnxt_re0`, `irdma0`...: RDMA device names.
fn is_rdma_name(name: &str) -> bool {
    if let Some(rest) = name.strip_prefix("mlx") {
        return rest.split_once('_').is_some_and(|(gen, n)| {
            gen.chars().all(|c| c.is_ascii_digit()) && starts_with_digit(n)
        });
    }
    name.strip_prefix("hfi").is_some_and(starts_with_digit)
        || name.strip_prefix("qib").is_some_and(starts_with_digit)
}

/// Classifies a PCI device from its class and OS devices.
///
/// VGA controllers (class 0x0300) count as GPUs only with compute OS
/// devices or from NVIDIA: servers' BMC VGA chips (ASPEED, Matrox, ATI
/// ES1000) are not GPUs. 3D and other display controllers always are.
pub(crate) fn classify(
    class_id: u16,
    vendor_id: u16,
    osdevs: &[(String, Option<String>, Option<OSDeviceType>)],
) -> DeviceKind {
    let gpu_osdev = osdevs
        .iter()
        .any(|(name, sub, _)| is_gpu_osdev(name, sub.as_deref()));
    let rdma = osdevs
        .iter()
        .any(|(name, _, ty)| *ty == Some(OSDeviceType::OpenFabrics) || is_rdma_name(name));
    match class_id {
        0x0302 | 0x0380 => DeviceKind::Gpu,
        0x0300 if gpu_osdev || vendor_id == 0x10de => DeviceKind::Gpu,
        _ if gpu_osdev => DeviceKind::Gpu,
        // InfiniBand (network class 0x0207, and serial-bus class 0x0c06 that
        // older ConnectX cards report), or any card with an RDMA device.
        0x0207 | 0x0c06 => DeviceKind::Hca,
        _ if rdma => DeviceKind::Hca,
        0x0200..=0x02ff => DeviceKind::Nic,
        _ => DeviceKind::Other,
    }
}

fn devices(hw: &HwTopology, numa_nodes: &[NumaNode], all_pus: &CpuList) -> Vec<Device> {
    let known: CpuList = numa_nodes.iter().map(|n| n.os_index).collect();
    let mut out = Vec::new();
    for dev in hw.pci_devices() {
        let Some(ObjectAttributes::PCIDevice(pci)) = dev.attributes() else {
            continue;
        };
        let bus_id = format!(
            "{:04x}:{:02x}:{:02x}.{:x}",
            pci.domain(),
            pci.bus_id(),
            pci.bus_device(),
            pci.function()
        );
        let osdevs: Vec<(String, Option<String>, Option<OSDeviceType>)> = dev
            .io_children()
            .filter(|c| c.object_type() == ObjectType::OSDevice)
            .filter_map(|c| {
                let name = text(c.name())?;
                let ty = match c.attributes() {
                    Some(ObjectAttributes::OSDevice(a)) => Some(a.device_type()),
                    _ => None,
                };
                Some((name, text(c.subtype()), ty))
            })
            .collect();
        let kind = classify(pci.class_id(), pci.vendor_id(), &osdevs);
        let (numa, cpus) = match dev.first_non_io_ancestor() {
            // Hanging off the machine on a multi-node box: unknown.
            Some(anc) if anc.parent().is_none() && numa_nodes.len() > 1 => {
                (Vec::new(), CpuList::new())
            }
            Some(anc) => (
                nodes_of(anc).intersection(&known).iter().collect(),
                cpus_of(anc).intersection(all_pus),
            ),
            None => (Vec::new(), CpuList::new()),
        };
        out.push(Device {
            bus_id,
            kind,
            vendor_id: pci.vendor_id(),
            device_id: pci.device_id(),
            names: osdevs.into_iter().map(|(name, _, _)| name).collect(),
            numa,
            cpus,
        });
    }
    out
}

/// The NUMA latency matrix, rows and columns in OS-index order.
fn distances(hw: &HwTopology, what: &str) -> Result<Option<Distances>, TopologyError> {
    let all = hw
        .distances_with_type(None, ObjectType::NUMANode)
        .map_err(|source| TopologyError::Load {
            what: what.to_string(),
            source,
        })?;
    let chosen = all
        .iter()
        .find(|d| d.name().is_some_and(|n| n.to_bytes() == b"NUMALatency"))
        .or_else(|| {
            all.iter()
                .find(|d| d.kind().contains(DistancesKind::MEANS_LATENCY))
        })
        .or_else(|| all.first());
    let Some(d) = chosen else {
        return Ok(None);
    };
    let mut ids = Vec::with_capacity(d.num_objects());
    for obj in d.objects() {
        let Some(obj) = obj else {
            return Ok(None);
        };
        ids.push(index(obj.os_index().unwrap_or(obj.logical_index()), what)?);
    }
    let n = ids.len();
    let raw = d.distances();
    if raw.len() != n * n {
        return Err(TopologyError::Unexpected {
            what: what.to_string(),
            reason: format!("a {n}-node distance matrix has {} values", raw.len()),
        });
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| ids[i]);
    let nodes: Vec<u32> = order.iter().map(|&i| ids[i]).collect();
    let mut values = Vec::with_capacity(n * n);
    for &i in &order {
        for &j in &order {
            values.push(raw[i * n + j]);
        }
    }
    Ok(Some(Distances { nodes, values }))
}

#[cfg(test)]
mod tests {
    use super::*;

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
