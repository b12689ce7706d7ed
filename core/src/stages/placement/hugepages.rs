//! Hugepage requests: the pages a placed (or unplaced) container asks for,
//! found on its memory nodes or the nearest ones, limited and mounted.

use std::path::PathBuf;

use libcontainer::oci_spec::runtime::{LinuxCpu, LinuxHugepageLimit, LinuxResources, Mount, Spec};
use pinc_cpulist::CpuList;
use pinc_request::placement::Hugepages;
use pinc_topology::Topology;

use super::Refusal;
use crate::pipeline::HostRoots;

/// Hugepage requests: sizes the kernel has, enough free pages on the
/// container's memory nodes (spilling to the nearest nodes that have them),
/// limits in the spec, and hugetlbfs mounted in the container.
pub(super) fn apply(
    spec: &mut Spec,
    host: &HostRoots,
    topology: &Topology,
    requests: &[Hugepages],
    mems: Option<&CpuList>,
) -> Result<(), Refusal> {
    if requests.is_empty() {
        return Ok(());
    }
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut resources: LinuxResources = linux.resources().clone().unwrap_or_default();
    let mut limits = resources.hugepage_limits().clone().unwrap_or_default();
    let mut nodes: Vec<u32> = match mems {
        Some(m) if !m.is_empty() => m.iter().collect(),
        _ => topology.numa_nodes.iter().map(|n| n.os_index).collect(),
    };
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    for (i, h) in requests.iter().enumerate() {
        let name = pinc_cgroup::hugetlb::page_size_name(h.size_kb);
        let sysfs = host.join(&format!(
            "/sys/kernel/mm/hugepages/hugepages-{}kB",
            h.size_kb
        ));
        if !sysfs.exists() {
            return Err(Refusal::NoPageSize { name: name.clone() });
        }
        let free_on = |n: u32| {
            topology
                .numa(n)
                .and_then(|node| node.hugepages.iter().find(|p| p.size_kb == h.size_kb))
                .map_or(0, |p| p.free)
        };
        let mut free: u64 = nodes.iter().map(|&n| free_on(n)).sum();
        // Spill to the nearest nodes that have free pages.
        while free < h.count {
            let next = topology
                .numa_nodes
                .iter()
                .map(|n| n.os_index)
                .filter(|n| !nodes.contains(n) && free_on(*n) > 0)
                .min_by_key(|n| {
                    (
                        nodes
                            .iter()
                            .map(|&m| topology.distance(m, *n))
                            .min()
                            .unwrap_or(u64::MAX),
                        *n,
                    )
                });
            match next {
                Some(n) => {
                    nodes.push(n);
                    free += free_on(n);
                }
                None => {
                    return Err(Refusal::FewHugepages {
                        count: h.count,
                        name: name.clone(),
                        free,
                        nodes: nodes
                            .iter()
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join(","),
                    })
                }
            }
        }
        let mut limit = LinuxHugepageLimit::default();
        limit.set_page_size(name.clone());
        limit.set_limit((h.count * h.size_kb * 1024) as i64);
        limits.retain(|l| l.page_size() != &name);
        limits.push(limit);
        let destination = if i == 0 {
            PathBuf::from("/dev/hugepages")
        } else {
            PathBuf::from(format!("/dev/hugepages-{name}"))
        };
        if !mounts.iter().any(|m| m.destination() == &destination) {
            let mut mount = Mount::default();
            mount.set_destination(destination);
            mount.set_typ(Some("hugetlbfs".into()));
            mount.set_source(Some(PathBuf::from("hugetlbfs")));
            mount.set_options(Some(vec![
                "nosuid".into(),
                "nodev".into(),
                format!("pagesize={}", name.trim_end_matches('B')),
            ]));
            mounts.push(mount);
        }
    }
    resources.set_hugepage_limits(Some(limits));
    if mems.is_some_and(|m| !m.is_empty()) {
        let mut cpu: LinuxCpu = resources.cpu().clone().unwrap_or_default();
        let all: CpuList = nodes.iter().copied().collect();
        cpu.set_mems(Some(all.to_string()));
        resources.set_cpu(Some(cpu));
    }
    linux.set_resources(Some(resources));
    spec.set_linux(Some(linux));
    spec.set_mounts(Some(mounts));
    Ok(())
}
