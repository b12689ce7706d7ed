//! cgroup v1: `io.containerd.cgroups.v1.Metrics` from the per-controller
//! hierarchies under /sys/fs/cgroup.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use containerd_shim::protos::cgroups::metrics::{
    BlkIOEntry, BlkIOStat, CPUStat, CPUUsage, MemoryEntry, MemoryStat, Metrics, PidsStat, Throttle,
};
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::{Message, MessageField};

use super::read_kv;
use crate::errors::{Error, Result};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
pub const V1_METRICS: &str = "io.containerd.cgroups.v1.Metrics";

/// controller → folder of the cgroup in that v1 hierarchy, from the text of
/// `/proc/<pid>/cgroup`.
pub fn v1_paths(text: &str) -> HashMap<String, PathBuf> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.is_empty() {
            continue;
        }
        let rel = path.trim_start_matches('/');
        // "cpu,cpuacct" is mounted under that joint name; single names link to it.
        let mount = Path::new(CGROUP_ROOT).join(controllers);
        for c in controllers.split(',') {
            let m = Path::new(CGROUP_ROOT).join(c);
            let base = if m.is_dir() { m } else { mount.clone() };
            out.insert(c.to_string(), base.join(rel));
        }
    }
    out
}

fn read_u64(path: &Path) -> Option<u64> {
    let t = std::fs::read_to_string(path).ok()?;
    let t = t.trim();
    if t == "max" {
        return Some(0);
    }
    t.parse().ok()
}

fn cpu(dir: Option<&PathBuf>, acct: Option<&PathBuf>) -> Option<CPUStat> {
    let acct = acct?;
    let mut usage = CPUUsage::new();
    usage.total = read_u64(&acct.join("cpuacct.usage"))?;
    usage.per_cpu = std::fs::read_to_string(acct.join("cpuacct.usage_percpu"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    // cpuacct.stat counts USER_HZ ticks (100 per second).
    let stat = read_kv(&acct.join("cpuacct.stat"));
    let tick_ns = 10_000_000;
    usage.user = stat.get("user").copied().unwrap_or(0) * tick_ns;
    usage.kernel = stat.get("system").copied().unwrap_or(0) * tick_ns;
    let mut cpu = CPUStat::new();
    cpu.usage = MessageField::some(usage);
    if let Some(dir) = dir {
        let t = read_kv(&dir.join("cpu.stat"));
        let mut throttle = Throttle::new();
        throttle.periods = t.get("nr_periods").copied().unwrap_or(0);
        throttle.throttled_periods = t.get("nr_throttled").copied().unwrap_or(0);
        throttle.throttled_time = t.get("throttled_time").copied().unwrap_or(0);
        cpu.throttling = MessageField::some(throttle);
    }
    Some(cpu)
}

fn entry(dir: &Path, prefix: &str) -> Option<MemoryEntry> {
    let mut e = MemoryEntry::new();
    e.usage = read_u64(&dir.join(format!("{prefix}usage_in_bytes")))?;
    e.limit = read_u64(&dir.join(format!("{prefix}limit_in_bytes"))).unwrap_or(0);
    e.max = read_u64(&dir.join(format!("{prefix}max_usage_in_bytes"))).unwrap_or(0);
    e.failcnt = read_u64(&dir.join(format!("{prefix}failcnt"))).unwrap_or(0);
    Some(e)
}

fn memory(dir: &Path) -> Option<MemoryStat> {
    let mut m = MemoryStat::new();
    m.usage = MessageField::some(entry(dir, "memory.")?);
    if let Some(swap) = entry(dir, "memory.memsw.") {
        m.swap = MessageField::some(swap);
    }
    if let Some(k) = entry(dir, "memory.kmem.") {
        m.kernel = MessageField::some(k);
    }
    let s = read_kv(&dir.join("memory.stat"));
    let g = |k: &str| s.get(k).copied().unwrap_or(0);
    m.cache = g("cache");
    m.rss = g("rss");
    m.rss_huge = g("rss_huge");
    m.mapped_file = g("mapped_file");
    m.dirty = g("dirty");
    m.writeback = g("writeback");
    m.pg_pg_in = g("pgpgin");
    m.pg_pg_out = g("pgpgout");
    m.pg_fault = g("pgfault");
    m.pg_maj_fault = g("pgmajfault");
    m.inactive_anon = g("inactive_anon");
    m.active_anon = g("active_anon");
    m.inactive_file = g("inactive_file");
    m.active_file = g("active_file");
    m.unevictable = g("unevictable");
    m.hierarchical_memory_limit = g("hierarchical_memory_limit");
    m.hierarchical_swap_limit = g("hierarchical_memsw_limit");
    m.total_cache = g("total_cache");
    m.total_rss = g("total_rss");
    m.total_rss_huge = g("total_rss_huge");
    m.total_mapped_file = g("total_mapped_file");
    m.total_dirty = g("total_dirty");
    m.total_writeback = g("total_writeback");
    m.total_pg_pg_in = g("total_pgpgin");
    m.total_pg_pg_out = g("total_pgpgout");
    m.total_pg_fault = g("total_pgfault");
    m.total_pg_maj_fault = g("total_pgmajfault");
    m.total_inactive_anon = g("total_inactive_anon");
    m.total_active_anon = g("total_active_anon");
    m.total_inactive_file = g("total_inactive_file");
    m.total_active_file = g("total_active_file");
    m.total_unevictable = g("total_unevictable");
    Some(m)
}

/// blkio files: "MAJ:MIN Op value" lines (and a "Total" line, skipped).
fn blkio_entries(path: &Path) -> Vec<BlkIOEntry> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dev, op, value) = match f.as_slice() {
                [dev, op, value] => (*dev, (*op).to_string(), value.parse().ok()?),
                [dev, value] => (*dev, String::new(), value.parse().ok()?),
                _ => return None,
            };
            let (major, minor) = dev.split_once(':')?;
            let mut e = BlkIOEntry::new();
            e.major = major.parse().ok()?;
            e.minor = minor.parse().ok()?;
            e.op = op;
            e.value = value;
            Some(e)
        })
        .collect()
}

fn blkio(dir: &Path) -> BlkIOStat {
    let mut b = BlkIOStat::new();
    let f = |name: &str| blkio_entries(&dir.join(name));
    b.io_service_bytes_recursive = f("blkio.throttle.io_service_bytes_recursive");
    b.io_serviced_recursive = f("blkio.throttle.io_serviced_recursive");
    if b.io_service_bytes_recursive.is_empty() {
        b.io_service_bytes_recursive = f("blkio.throttle.io_service_bytes");
        b.io_serviced_recursive = f("blkio.throttle.io_serviced");
    }
    b
}

/// v1 metrics of the cgroups in `paths` (see [`v1_paths`]), packed for containerd.
pub fn metrics(paths: &HashMap<String, PathBuf>) -> Result<Any> {
    let mut m = Metrics::new();
    if let Some(cpu) = cpu(paths.get("cpu"), paths.get("cpuacct")) {
        m.cpu = MessageField::some(cpu);
    }
    if let Some(mem) = paths.get("memory").and_then(|d| memory(d)) {
        m.memory = MessageField::some(mem);
    }
    if let Some(dir) = paths.get("pids") {
        let mut p = PidsStat::new();
        p.current = read_u64(&dir.join("pids.current")).unwrap_or(0);
        p.limit = read_u64(&dir.join("pids.max")).unwrap_or(0);
        m.pids = MessageField::some(p);
    }
    if let Some(dir) = paths.get("blkio") {
        m.blkio = MessageField::some(blkio(dir));
    }
    let value = m.write_to_bytes().map_err(|source| Error::Protobuf {
        what: "metrics",
        source,
    })?;
    let mut any = Any::new();
    any.type_url = V1_METRICS.to_string();
    any.value = value;
    Ok(any)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_lines() {
        let dir = std::env::temp_dir().join(format!("pinc-shim-blk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = dir.join("x");
        std::fs::write(&f, "8:0 Read 4096\n8:0 Write 0\nTotal 4096\n").expect("write");
        let e = blkio_entries(&f);
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].major, e[0].minor, e[0].value), (8, 0, 4096));
        assert_eq!(e[0].op, "Read");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
