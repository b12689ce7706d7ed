//! cgroup v2 (unified): `io.containerd.cgroups.v2.Metrics` from the files of
//! one cgroup folder. Every reader takes that folder so tests can run on a
//! tempdir tree. A file that is missing (controller not enabled for the
//! cgroup) leaves its part of the message empty rather than failing the call.

use std::path::Path;

use containerd_shim::protos::cgroups_v2::metrics::{
    CPUStat, IOEntry, IOStat, MemoryEvents, MemoryStat, Metrics, PidsStat,
};
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::Message;

use super::{parse_kv, read_kv};
use crate::errors::{Error, Result};

pub const V2_METRICS: &str = "io.containerd.cgroups.v2.Metrics";

/// A single-value file; "max" (no limit) is u64::MAX, as containerd's own
/// cgroup v2 reader reports it.
fn read_u64(path: &Path) -> Option<u64> {
    let t = std::fs::read_to_string(path).ok()?;
    match t.trim() {
        "max" => Some(u64::MAX),
        v => v.parse().ok(),
    }
}

fn cpu(dir: &Path) -> Option<CPUStat> {
    // cpu.stat exists in every cgroup (usage part even without the cpu controller).
    let text = std::fs::read_to_string(dir.join("cpu.stat")).ok()?;
    let s = parse_kv(&text);
    let g = |k: &str| s.get(k).copied().unwrap_or(0);
    let mut c = CPUStat::new();
    c.usage_usec = g("usage_usec");
    c.user_usec = g("user_usec");
    c.system_usec = g("system_usec");
    c.nr_periods = g("nr_periods");
    c.nr_throttled = g("nr_throttled");
    c.throttled_usec = g("throttled_usec");
    c.nr_bursts = g("nr_bursts");
    c.burst_usec = g("burst_usec");
    Some(c)
}

fn memory(dir: &Path) -> Option<MemoryStat> {
    let mut m = MemoryStat::new();
    m.usage = read_u64(&dir.join("memory.current"))?;
    m.usage_limit = read_u64(&dir.join("memory.max")).unwrap_or(u64::MAX);
    m.swap_usage = read_u64(&dir.join("memory.swap.current")).unwrap_or(0);
    m.swap_limit = read_u64(&dir.join("memory.swap.max")).unwrap_or(0);
    // memory.peak / memory.swap.peak: kernel 5.19+ / 6.5+ only.
    m.max_usage = read_u64(&dir.join("memory.peak")).unwrap_or(0);
    m.swap_max_usage = read_u64(&dir.join("memory.swap.peak")).unwrap_or(0);
    let s = read_kv(&dir.join("memory.stat"));
    let g = |k: &str| s.get(k).copied().unwrap_or(0);
    m.anon = g("anon");
    m.file = g("file");
    m.kernel_stack = g("kernel_stack");
    m.slab = g("slab");
    m.sock = g("sock");
    m.shmem = g("shmem");
    m.file_mapped = g("file_mapped");
    m.file_dirty = g("file_dirty");
    m.file_writeback = g("file_writeback");
    m.anon_thp = g("anon_thp");
    m.inactive_anon = g("inactive_anon");
    m.active_anon = g("active_anon");
    m.inactive_file = g("inactive_file");
    m.active_file = g("active_file");
    m.unevictable = g("unevictable");
    m.slab_reclaimable = g("slab_reclaimable");
    m.slab_unreclaimable = g("slab_unreclaimable");
    m.pgfault = g("pgfault");
    m.pgmajfault = g("pgmajfault");
    // Kernels 5.9+ split the refault/activate counters into _anon and _file.
    let either = |k: &str| {
        s.get(k)
            .copied()
            .unwrap_or_else(|| g(&format!("{k}_anon")) + g(&format!("{k}_file")))
    };
    m.workingset_refault = either("workingset_refault");
    m.workingset_activate = either("workingset_activate");
    m.workingset_nodereclaim = g("workingset_nodereclaim");
    m.pgrefill = g("pgrefill");
    m.pgscan = g("pgscan");
    m.pgsteal = g("pgsteal");
    m.pgactivate = g("pgactivate");
    m.pgdeactivate = g("pgdeactivate");
    m.pglazyfree = g("pglazyfree");
    m.pglazyfreed = g("pglazyfreed");
    m.thp_fault_alloc = g("thp_fault_alloc");
    m.thp_collapse_alloc = g("thp_collapse_alloc");
    Some(m)
}

/// The counters of a memory.events text.
pub fn parse_memory_events(text: &str) -> MemoryEvents {
    let s = parse_kv(text);
    let g = |k: &str| s.get(k).copied().unwrap_or(0);
    let mut e = MemoryEvents::new();
    e.low = g("low");
    e.high = g("high");
    e.max = g("max");
    e.oom = g("oom");
    e.oom_kill = g("oom_kill");
    e.oom_group_kill = g("oom_group_kill");
    e
}

pub fn memory_events(dir: &Path) -> Option<MemoryEvents> {
    let text = std::fs::read_to_string(dir.join("memory.events")).ok()?;
    Some(parse_memory_events(&text))
}

fn pids(dir: &Path) -> Option<PidsStat> {
    let mut p = PidsStat::new();
    p.current = read_u64(&dir.join("pids.current"))?;
    p.limit = read_u64(&dir.join("pids.max")).unwrap_or(u64::MAX);
    Some(p)
}

/// io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N" lines.
fn parse_io_stat(text: &str) -> Vec<IOEntry> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (major, minor) = f.next()?.split_once(':')?;
            let mut e = IOEntry::new();
            e.major = major.parse().ok()?;
            e.minor = minor.parse().ok()?;
            for kv in f {
                let Some((k, v)) = kv.split_once('=') else {
                    continue;
                };
                let Ok(v) = v.parse() else {
                    continue;
                };
                match k {
                    "rbytes" => e.rbytes = v,
                    "wbytes" => e.wbytes = v,
                    "rios" => e.rios = v,
                    "wios" => e.wios = v,
                    _ => {}
                }
            }
            Some(e)
        })
        .collect()
}

fn io(dir: &Path) -> Option<IOStat> {
    let text = std::fs::read_to_string(dir.join("io.stat")).ok()?;
    let mut s = IOStat::new();
    s.usage = parse_io_stat(&text);
    Some(s)
}

/// The v2 metrics message of the cgroup folder `dir`.
pub fn read(dir: &Path) -> Metrics {
    let mut m = Metrics::new();
    m.cpu = cpu(dir).into();
    m.memory = memory(dir).into();
    m.memory_events = memory_events(dir).into();
    m.pids = pids(dir).into();
    m.io = io(dir).into();
    m
}

/// v2 metrics of the cgroup folder `dir`, packed for containerd.
pub fn metrics(dir: &Path) -> Result<Any> {
    if !dir.is_dir() {
        // The init left its cgroup (or it is gone): empty metrics would mislead.
        return Err(Error::NotFound(format!("cgroup {}", dir.display())));
    }
    let value = read(dir)
        .write_to_bytes()
        .map_err(|source| Error::Protobuf {
            what: "metrics",
            source,
        })?;
    let mut any = Any::new();
    any.type_url = V2_METRICS.to_string();
    any.value = value;
    Ok(any)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cgroup2 folder as a 6.1 kernel writes it for a container with
    /// memory, pids, io and cpu controllers enabled.
    fn tree(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("pinc-shim-v2-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let files = [
            (
                "cpu.stat",
                "usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\nnr_periods 50\nnr_throttled 3\nthrottled_usec 4200\nnr_bursts 0\nburst_usec 0\n",
            ),
            ("memory.current", "52428800\n"),
            ("memory.max", "max\n"),
            ("memory.swap.current", "4096\n"),
            ("memory.swap.max", "1073741824\n"),
            (
                "memory.stat",
                "anon 31457280\nfile 16777216\nkernel 1048576\nkernel_stack 163840\npagetables 245760\nsec_pagetables 0\npercpu 1440\nsock 8192\nvmalloc 0\nshmem 4096\nfile_mapped 8388608\nfile_dirty 12288\nfile_writeback 0\nswapcached 0\nanon_thp 2097152\nfile_thp 0\nshmem_thp 0\ninactive_anon 29360128\nactive_anon 2101248\ninactive_file 12582912\nactive_file 4194304\nunevictable 0\nslab_reclaimable 409600\nslab_unreclaimable 229376\nslab 638976\nworkingset_refault_anon 5\nworkingset_refault_file 7\nworkingset_activate_anon 1\nworkingset_activate_file 2\nworkingset_restore_anon 0\nworkingset_restore_file 0\nworkingset_nodereclaim 0\npgscan 100\npgsteal 90\npgfault 70561\npgmajfault 12\npgrefill 3\npgactivate 40\npgdeactivate 2\npglazyfree 0\npglazyfreed 0\nthp_fault_alloc 1\nthp_collapse_alloc 0\n",
            ),
            (
                "memory.events",
                "low 0\nhigh 2\nmax 17\noom 1\noom_kill 1\noom_group_kill 0\n",
            ),
            ("pids.current", "7\n"),
            ("pids.max", "4096\n"),
            (
                "io.stat",
                "8:0 rbytes=1048576 wbytes=4096 rios=32 wios=1 dbytes=0 dios=0\n253:1 rbytes=0 wbytes=8192 rios=0 wios=2 dbytes=0 dios=0\n",
            ),
        ];
        for (name, text) in files {
            std::fs::write(dir.join(name), text).expect("write");
        }
        dir
    }

    #[test]
    fn full_tree() {
        let dir = tree("full");
        let m = read(&dir);
        let cpu = m.cpu.as_ref().expect("cpu");
        assert_eq!(
            (cpu.usage_usec, cpu.user_usec, cpu.system_usec),
            (1_234_567, 1_000_000, 234_567)
        );
        assert_eq!(
            (cpu.nr_periods, cpu.nr_throttled, cpu.throttled_usec),
            (50, 3, 4200)
        );
        let mem = m.memory.as_ref().expect("memory");
        assert_eq!(mem.usage, 52_428_800);
        assert_eq!(mem.usage_limit, u64::MAX);
        assert_eq!((mem.swap_usage, mem.swap_limit), (4096, 1_073_741_824));
        assert_eq!(
            (mem.anon, mem.file, mem.slab),
            (31_457_280, 16_777_216, 638_976)
        );
        assert_eq!(
            (mem.kernel_stack, mem.sock, mem.shmem),
            (163_840, 8192, 4096)
        );
        assert_eq!((mem.file_mapped, mem.file_dirty), (8_388_608, 12_288));
        assert_eq!((mem.pgfault, mem.pgmajfault), (70_561, 12));
        assert_eq!(mem.inactive_anon + mem.active_anon, 31_461_376);
        assert_eq!(
            (mem.inactive_file, mem.active_file),
            (12_582_912, 4_194_304)
        );
        // Split counters of newer kernels are summed.
        assert_eq!((mem.workingset_refault, mem.workingset_activate), (12, 3));
        let ev = m.memory_events.as_ref().expect("events");
        assert_eq!((ev.high, ev.max, ev.oom, ev.oom_kill), (2, 17, 1, 1));
        let pids = m.pids.as_ref().expect("pids");
        assert_eq!((pids.current, pids.limit), (7, 4096));
        let io = &m.io.as_ref().expect("io").usage;
        assert_eq!(io.len(), 2);
        assert_eq!(
            (
                io[0].major,
                io[0].minor,
                io[0].rbytes,
                io[0].wbytes,
                io[0].rios,
                io[0].wios
            ),
            (8, 0, 1_048_576, 4096, 32, 1)
        );
        assert_eq!((io[1].major, io[1].minor, io[1].wios), (253, 1, 2));

        let any = metrics(&dir).expect("metrics");
        assert_eq!(any.type_url, "io.containerd.cgroups.v2.Metrics");
        let back = Metrics::parse_from_bytes(&any.value).expect("decode");
        assert_eq!(back, m);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_controllers_leave_parts_empty() {
        let dir = tree("sparse");
        for f in ["memory.current", "pids.current", "io.stat"] {
            std::fs::remove_file(dir.join(f)).expect("rm");
        }
        let m = read(&dir);
        assert!(m.cpu.is_some());
        assert!(m.memory.is_none() && m.pids.is_none() && m.io.is_none());
        let _ = std::fs::remove_dir_all(&dir);
        assert!(metrics(&dir).is_err());
    }

    #[test]
    fn io_stat_odd_lines() {
        let e = parse_io_stat("8:16 rbytes=1 wbytes=x rios=2\ngarbage\n\n");
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].rbytes, e[0].wbytes, e[0].rios), (1, 0, 2));
    }
}
