//! The human view of a topology, for `pinc topology`. JSON comes from the
//! model's `Serialize`.
//!
//! ```text
//! source: shared/topologies/supermicro-x9drg-2s-e5-gpu-ib.xml
//! 2 packages, 2 NUMA nodes, 16 cores, 32 PUs (SMT 2), 2 L3 groups
//! package 0
//!   numa 0  dram  32.0 GiB  cpus 0-7,16-23
//!     l3 #0  cpus 0-7,16-23  (8 cores)
//! ...
//! devices
//!   gpu    0000:03:00.0  10de:1094  numa 0  cpus 0-7,16-23
//! distances
//!         0    1
//!     0  10   20
//! ```

use std::fmt::Write;

use pinc_cpulist::CpuList;

use crate::model::{DeviceKind, Distances, MemoryKind, NumaNode, Topology};

/// Renders a compact, human-readable description.
pub fn text(t: &Topology) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = write_all(&mut out, t);
    out
}

fn write_all(out: &mut String, t: &Topology) -> std::fmt::Result {
    write_summary(out, t)?;
    write_packages(out, t)?;
    if !t.devices.is_empty() {
        write_devices(out, t)?;
    }
    if let Some(d) = &t.distances {
        write_distances(out, d)?;
    }
    Ok(())
}

/// The source and the counts.
fn write_summary(out: &mut String, t: &Topology) -> std::fmt::Result {
    if !t.source.is_empty() {
        writeln!(out, "source: {}", t.source)?;
    }
    writeln!(
        out,
        "{} package{}, {} NUMA node{}, {} cores, {} PUs (SMT {}), {} L3 group{}",
        t.packages.len(),
        plural(t.packages.len()),
        t.numa_nodes.len(),
        plural(t.numa_nodes.len()),
        t.cores.len(),
        t.pus().len(),
        t.smt(),
        t.l3_groups.len(),
        plural(t.l3_groups.len()),
    )?;
    Ok(())
}

/// Packages with their nodes, L3 groups and cores; then the nodes no
/// package lists.
fn write_packages(out: &mut String, t: &Topology) -> std::fmt::Result {
    let mut shown = CpuList::new();
    for p in &t.packages {
        let pcpus = t.package_cpus(p.os_index);
        writeln!(
            out,
            "package {}  cpus {}",
            p.os_index,
            or_none(&pcpus.to_string())
        )?;
        for &id in &p.numa_nodes {
            let Some(n) = t.numa(id) else { continue };
            if shown.contains(id) {
                writeln!(out, "  numa {id}  (continued)")?;
            } else {
                shown.insert(id);
                numa_line(out, n)?;
            }
            let local = n.cpus.intersection(&pcpus);
            for (i, l3) in t.l3_groups.iter().enumerate() {
                let part = l3.intersection(&local);
                if part.is_empty() || !l3.is_subset(&pcpus) {
                    continue;
                }
                let cores = t.cores.iter().filter(|c| c.l3 == Some(i)).count();
                writeln!(
                    out,
                    "    l3 #{i}  cpus {l3}  ({cores} core{})",
                    plural(cores)
                )?;
            }
            let cores: Vec<_> = t
                .cores
                .iter()
                .filter(|c| c.package == p.os_index && c.numa == Some(id) && c.l3.is_none())
                .collect();
            if !cores.is_empty() {
                let pus: CpuList = cores.iter().flat_map(|c| c.pus.iter().copied()).collect();
                let label = if t.l3_groups.is_empty() {
                    ""
                } else {
                    " outside any L3 group"
                };
                writeln!(
                    out,
                    "    {} core{}{label}: cpus {pus}",
                    cores.len(),
                    plural(cores.len())
                )?;
            }
        }
    }
    for n in t.numa_nodes.iter().filter(|n| !shown.contains(n.os_index)) {
        numa_line(out, n)?;
    }
    Ok(())
}

/// The PCI devices, quiet ones (no OS device) only counted.
fn write_devices(out: &mut String, t: &Topology) -> std::fmt::Result {
    writeln!(out, "devices")?;
    let mut quiet = 0;
    for d in &t.devices {
        if d.kind == DeviceKind::Other && d.names.is_empty() {
            quiet += 1;
            continue;
        }
        let kind = match d.kind {
            DeviceKind::Gpu => "gpu",
            DeviceKind::Hca => "hca",
            DeviceKind::Nic => "nic",
            DeviceKind::Other => "other",
        };
        let numa = if d.numa.is_empty() {
            "?".to_string()
        } else {
            d.numa
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        write!(
            out,
            "  {kind:<5}  {}  {:04x}:{:04x}  numa {numa}  cpus {}",
            d.bus_id,
            d.vendor_id,
            d.device_id,
            if d.cpus.is_empty() {
                "?".to_string()
            } else {
                d.cpus.to_string()
            }
        )?;
        if !d.names.is_empty() {
            write!(out, "  {}", d.names.join(","))?;
        }
        writeln!(out)?;
    }
    if quiet > 0 {
        writeln!(
            out,
            "  (+{quiet} other PCI device{} without OS devices)",
            plural(quiet)
        )?;
    }
    Ok(())
}

/// The distance matrix as a table.
fn write_distances(out: &mut String, d: &Distances) -> std::fmt::Result {
    writeln!(out, "distances")?;
    let width = d
        .values
        .iter()
        .map(|v| v.to_string().len())
        .chain(d.nodes.iter().map(|n| n.to_string().len()))
        .max()
        .unwrap_or(2)
        + 2;
    write!(out, "  {:>width$}", "")?;
    for n in &d.nodes {
        write!(out, "{n:>width$}")?;
    }
    writeln!(out)?;
    for (i, from) in d.nodes.iter().enumerate() {
        write!(out, "  {from:>width$}")?;
        for j in 0..d.nodes.len() {
            match d.values.get(i * d.nodes.len() + j) {
                Some(v) => write!(out, "{v:>width$}")?,
                None => write!(out, "{:>width$}", "?")?,
            }
        }
        writeln!(out)?;
    }
    Ok(())
}

fn numa_line(out: &mut String, n: &NumaNode) -> std::fmt::Result {
    let kind = match n.kind {
        MemoryKind::Dram => "dram",
        MemoryKind::Hbm => "hbm",
        MemoryKind::Gpu => "gpu",
    };
    write!(out, "  numa {}  {kind}  {}", n.os_index, bytes(n.memory))?;
    if n.cpus.is_empty() {
        write!(out, "  no cpus, near {}", or_none(&n.near_cpus.to_string()))?;
    } else {
        write!(out, "  cpus {}", n.cpus)?;
    }
    let pools: Vec<String> = n
        .hugepages
        .iter()
        .filter(|p| p.total > 0)
        .map(|p| format!("{}/{} x {}", p.free, p.total, bytes(p.size_kb * 1024)))
        .collect();
    if !pools.is_empty() {
        write!(out, "  hugepages free {}", pools.join(", "))?;
    }
    writeln!(out)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn or_none(s: &str) -> &str {
    if s.is_empty() {
        "none"
    } else {
        s
    }
}

/// 0 → "? memory", 2 MiB → "2 MiB", 32 GiB → "32.0 GiB".
fn bytes(n: u64) -> String {
    const UNITS: [(&str, u32); 4] = [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)];
    if n == 0 {
        return "? memory".to_string();
    }
    for (unit, shift) in UNITS {
        let scale = 1u64 << shift;
        if n >= scale {
            return if n % scale == 0 {
                format!("{} {unit}", n / scale)
            } else {
                format!("{:.1} {unit}", n as f64 / scale as f64)
            };
        }
    }
    format!("{n} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_synthetic_node() {
        let t = crate::synthetic::build(
            "packages=2 cores_per_numa=4 smt=2 numbering=stride cpuless_numa=hbm:1 \
             gpus=0:1 hcas=1:1 hugepages=16x2M,0x1G",
        )
        .expect("build");
        let s = text(&t);
        assert!(
            s.contains("2 packages, 4 NUMA nodes, 8 cores, 16 PUs (SMT 2), 2 L3 groups"),
            "{s}"
        );
        assert!(
            s.contains("  numa 0  dram  16 GiB  cpus 0-3,8-11  hugepages free 16/16 x 2 MiB"),
            "{s}"
        );
        assert!(
            s.contains("  numa 2  hbm  16 GiB  no cpus, near 0-3,8-11"),
            "{s}"
        );
        assert!(s.contains("    l3 #1  cpus 4-7,12-15  (4 cores)"), "{s}");
        assert!(
            s.contains("  gpu    0000:01:00.0  10de:20b0  numa 0  cpus 0-3,8-11  cuda0,nvml0"),
            "{s}"
        );
        assert!(
            s.contains("  hca    0000:02:00.0  15b3:101b  numa 1"),
            "{s}"
        );
        assert!(s.contains("distances"), "{s}");
        assert!(
            s.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["0", "10", "20", "20", "30"]),
            "{s}"
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(bytes(2 << 20), "2 MiB");
        assert_eq!(bytes(1 << 30), "1 GiB");
        assert_eq!(bytes(49075843072), "45.7 GiB");
        assert_eq!(bytes(0), "? memory");
        assert_eq!(bytes(512), "512 B");
    }
}
