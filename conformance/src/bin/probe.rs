//! The probe runs inside a container and prints, as one JSON object on
//! stdout, what the process sees of its environment: namespaces, mounts,
//! capabilities, limits, ids, cgroups and so on. It judges nothing; the
//! driver compares the report with what the spec and runc say must hold.
//!
//! It is built statically (see conformance/run) so it runs in a busybox
//! root filesystem without a libc, and it never uses NSS.
//!
//! Arguments (all repeatable):
//!   --try NAME|NR  attempt the syscall (one of SYSCALLS) and report its result
//!   --path P       inspect P (kind, readability, writability, fs type)
//!   --sysctl NAME  read /proc/sys/NAME (dots become slashes)

use std::fs;
use std::io::{IsTerminal, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use nix::sys::resource::{getrlimit, Resource};
use nix::unistd::{access, AccessFlags};
use serde_json::{json, Map, Value};

const NAMESPACES: &[&str] = &[
    "cgroup",
    "ipc",
    "mnt",
    "net",
    "pid",
    "pid_for_children",
    "time",
    "time_for_children",
    "user",
    "uts",
];

const RLIMITS: &[(&str, Resource)] = &[
    ("RLIMIT_AS", Resource::RLIMIT_AS),
    ("RLIMIT_CORE", Resource::RLIMIT_CORE),
    ("RLIMIT_CPU", Resource::RLIMIT_CPU),
    ("RLIMIT_DATA", Resource::RLIMIT_DATA),
    ("RLIMIT_FSIZE", Resource::RLIMIT_FSIZE),
    ("RLIMIT_LOCKS", Resource::RLIMIT_LOCKS),
    ("RLIMIT_MEMLOCK", Resource::RLIMIT_MEMLOCK),
    ("RLIMIT_MSGQUEUE", Resource::RLIMIT_MSGQUEUE),
    ("RLIMIT_NICE", Resource::RLIMIT_NICE),
    ("RLIMIT_NOFILE", Resource::RLIMIT_NOFILE),
    ("RLIMIT_NPROC", Resource::RLIMIT_NPROC),
    ("RLIMIT_RSS", Resource::RLIMIT_RSS),
    ("RLIMIT_RTPRIO", Resource::RLIMIT_RTPRIO),
    ("RLIMIT_RTTIME", Resource::RLIMIT_RTTIME),
    ("RLIMIT_SIGPENDING", Resource::RLIMIT_SIGPENDING),
    ("RLIMIT_STACK", Resource::RLIMIT_STACK),
];

/// Status lines the driver looks at.
const STATUS_KEYS: &[&str] = &[
    "CapInh",
    "CapPrm",
    "CapEff",
    "CapBnd",
    "CapAmb",
    "Seccomp",
    "Seccomp_filters",
    "NoNewPrivs",
    "Umask",
    "Cpus_allowed_list",
    "Mems_allowed_list",
    "Uid",
    "Gid",
    "Groups",
];

/// Cgroup files (v1 and v2 layouts) that show the limits a runtime set,
/// relative to /sys/fs/cgroup inside the container.
const CGROUP_FILES: &[&str] = &[
    "memory/memory.limit_in_bytes",
    "memory/memory.oom_control",
    "memory/memory.swappiness",
    "pids/pids.max",
    "cpu/cpu.shares",
    "cpu/cpu.cfs_quota_us",
    "cpu/cpu.cfs_period_us",
    "cpuset/cpuset.cpus",
    "cpuset/cpuset.mems",
    "memory.max",
    "pids.max",
    "cpu.max",
    "cpu.weight",
    "cpuset.cpus",
];

/// Syscalls the probe can attempt on request, with harmless arguments.
const SYSCALLS: &[(&str, libc::c_long)] = &[
    ("getppid", libc::SYS_getppid),
    ("getpgrp", libc::SYS_getpgrp),
    ("sched_yield", libc::SYS_sched_yield),
    ("uname", libc::SYS_uname),
    ("personality", libc::SYS_personality),
];

fn main() {
    let mut tries = Vec::new();
    let mut paths = Vec::new();
    let mut sysctls = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let list = match a.as_str() {
            "--try" => &mut tries,
            "--path" => &mut paths,
            "--sysctl" => &mut sysctls,
            other => {
                eprintln!("probe: unknown argument {other:?}");
                std::process::exit(2);
            }
        };
        match args.next() {
            Some(v) => list.push(v),
            None => {
                eprintln!("probe: {a} needs a value");
                std::process::exit(2);
            }
        }
    }
    // Syscalls first: nothing else the probe does should be able to
    // disturb what the filter lets through.
    let syscalls: Map<String, Value> = tries.iter().map(|n| (n.clone(), try_syscall(n))).collect();
    let report = json!({
        "args": std::env::args().collect::<Vec<_>>(),
        "ids": ids(),
        "status": status(),
        "ns": {"self": namespaces("/proc/self"), "pid1": namespaces("/proc/1")},
        "mounts": mounts(),
        "paths": paths.iter().map(|p| (p.clone(), inspect(p))).collect::<Map<_, _>>(),
        "devices": devices(),
        "rlimits": rlimits(),
        "sysctls": sysctls.iter().map(|s| (s.clone(), sysctl(s))).collect::<Map<_, _>>(),
        "hostname": read_trim("/proc/sys/kernel/hostname"),
        "domainname": read_trim("/proc/sys/kernel/domainname"),
        "cwd": std::env::current_dir().ok().map(|p| p.display().to_string()),
        "env": std::env::vars_os()
            .map(|(k, v)| (k.to_string_lossy().into_owned(), json!(v.to_string_lossy())))
            .collect::<Map<_, _>>(),
        "cgroup": cgroup(),
        "affinity": affinity(),
        "mempolicy": mempolicy(),
        "oom_score_adj": read_trim("/proc/self/oom_score_adj").and_then(|s| s.parse::<i64>().ok()),
        "attr_current": read_trim("/proc/self/attr/current"),
        "tty": [std::io::stdin().is_terminal(), std::io::stdout().is_terminal(), std::io::stderr().is_terminal()],
        "fds": fds(),
        "procs": procs(),
        "net_ifaces": net_ifaces(),
        "syscalls": syscalls,
    });
    println!("{report}");
}

fn read_trim(path: &str) -> Option<String> {
    fs::read_to_string(path)
        .ok()
        .map(|s| s.trim_end().to_string())
}

fn errno_of(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

fn ids() -> Value {
    use nix::unistd;
    json!({
        "pid": unistd::getpid().as_raw(),
        "ppid": unistd::getppid().as_raw(),
        "uid": unistd::getuid().as_raw(),
        "euid": unistd::geteuid().as_raw(),
        "gid": unistd::getgid().as_raw(),
        "egid": unistd::getegid().as_raw(),
        "groups": unistd::getgroups()
            .map(|g| g.iter().map(|g| g.as_raw()).collect::<Vec<_>>())
            .unwrap_or_default(),
        "uid_map": read_trim("/proc/self/uid_map"),
        "gid_map": read_trim("/proc/self/gid_map"),
    })
}

fn status() -> Value {
    let text = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mut out = Map::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(':') {
            if STATUS_KEYS.contains(&k) {
                out.insert(k.to_string(), json!(v.trim()));
            }
        }
    }
    Value::Object(out)
}

fn namespaces(proc_dir: &str) -> Value {
    let mut out = Map::new();
    for ns in NAMESPACES {
        let link = fs::read_link(format!("{proc_dir}/ns/{ns}"))
            .ok()
            .map(|p| p.display().to_string());
        out.insert((*ns).to_string(), json!(link));
    }
    Value::Object(out)
}

/// /proc/self/mountinfo, one object per line (see proc(5) for the fields).
fn mounts() -> Value {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 6 || r.len() < 3 {
            continue;
        }
        out.push(json!({
            "id": l[0],
            "parent": l[1],
            "dev": l[2],
            "root": unescape(l[3]),
            "mount_point": unescape(l[4]),
            "options": l[5].split(',').collect::<Vec<_>>(),
            "optional": &l[6..],
            "fstype": r[0],
            "source": unescape(r[1]),
            "super": r[2].split(',').collect::<Vec<_>>(),
        }));
    }
    Value::Array(out)
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn file_kind(ft: fs::FileType) -> &'static str {
    if ft.is_symlink() {
        "symlink"
    } else if ft.is_dir() {
        "dir"
    } else if ft.is_char_device() {
        "char"
    } else if ft.is_block_device() {
        "block"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_socket() {
        "socket"
    } else {
        "file"
    }
}

/// Major and minor of a device number (the kernel's 64-bit encoding).
fn dev_split(dev: u64) -> (u64, u64) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major, minor)
}

fn inspect(path: &str) -> Value {
    let p = Path::new(path);
    let meta = match fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(e) => return json!({"exists": false, "errno": errno_of(&e)}),
    };
    let mut out = Map::new();
    out.insert("exists".into(), json!(true));
    out.insert("kind".into(), json!(file_kind(meta.file_type())));
    out.insert("mode".into(), json!(meta.mode() & 0o7777));
    if meta.is_dir() {
        match fs::read_dir(p) {
            Ok(rd) => out.insert("entries".into(), json!(rd.count())),
            Err(e) => out.insert("read_errno".into(), json!(errno_of(&e))),
        };
    } else if meta.is_file() || meta.file_type().is_char_device() {
        // Read at most a page: enough to tell "empty" from "has content".
        let mut buf = vec![0u8; 4096];
        match fs::File::open(p).and_then(|mut f| f.read(&mut buf)) {
            Ok(n) => out.insert("read_len".into(), json!(n)),
            Err(e) => out.insert("read_errno".into(), json!(errno_of(&e))),
        };
    }
    if let Ok(st) = nix::sys::statfs::statfs(p) {
        out.insert(
            "fs_magic".into(),
            json!(format!("{:x}", st.filesystem_type().0)),
        );
    }
    // access(2) reports EROFS for a read-only mount without writing anything.
    let w = match access(p, AccessFlags::W_OK) {
        Ok(()) => json!(0),
        Err(e) => json!(e as i32),
    };
    out.insert("access_w".into(), w);
    Value::Object(out)
}

fn devices() -> Value {
    let mut out = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from("/dev")];
    while let Some(dir) = dirs.pop() {
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for entry in rd.flatten() {
            let path = entry.path();
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            let kind = file_kind(meta.file_type());
            let (major, minor) = dev_split(meta.rdev());
            let target = fs::read_link(&path).ok().map(|t| t.display().to_string());
            // One level below /dev is enough (pts, shm, mqueue).
            if kind == "dir" && dir == Path::new("/dev") {
                dirs.push(path.clone());
            }
            out.push(json!({
                "path": path.display().to_string(),
                "kind": kind,
                "major": major,
                "minor": minor,
                "mode": meta.mode() & 0o7777,
                "uid": meta.uid(),
                "gid": meta.gid(),
                "target": target,
            }));
        }
    }
    Value::Array(out)
}

fn rlimits() -> Value {
    let mut out = Map::new();
    for (name, res) in RLIMITS {
        let v = match getrlimit(*res) {
            Ok((soft, hard)) => json!([soft, hard]),
            Err(e) => json!({"errno": e as i32}),
        };
        out.insert((*name).to_string(), v);
    }
    Value::Object(out)
}

fn sysctl(name: &str) -> Value {
    json!(read_trim(&format!("/proc/sys/{}", name.replace('.', "/"))))
}

fn cgroup() -> Value {
    let mut files = Map::new();
    for f in CGROUP_FILES {
        if let Some(v) = read_trim(&format!("/sys/fs/cgroup/{f}")) {
            files.insert((*f).to_string(), json!(v));
        }
    }
    json!({
        "self": read_trim("/proc/self/cgroup"),
        "pid1": read_trim("/proc/1/cgroup"),
        "files": files,
    })
}

fn affinity() -> Value {
    match nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        Ok(set) => {
            let cpus: Vec<usize> = (0..nix::sched::CpuSet::count())
                .filter(|&i| set.is_set(i).unwrap_or(false))
                .collect();
            json!(cpus)
        }
        Err(e) => json!({"errno": e as i32}),
    }
}

fn mempolicy() -> Value {
    let mut mode: libc::c_int = -1;
    let mut mask = [0u64; 16];
    let maxnode = (mask.len() * 64) as libc::c_ulong;
    // SAFETY: get_mempolicy writes one int to `mode` and at most `maxnode`
    // bits to `mask`, both owned here and large enough; addr 0 and flags 0
    // ask for the calling thread's policy.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_get_mempolicy,
            &mut mode as *mut libc::c_int,
            mask.as_mut_ptr(),
            maxnode,
            0usize,
            0usize,
        )
    };
    if rc != 0 {
        return json!({"errno": std::io::Error::last_os_error().raw_os_error()});
    }
    let nodes: Vec<usize> = (0..mask.len() * 64)
        .filter(|&i| mask[i / 64] & (1 << (i % 64)) != 0)
        .collect();
    json!({"mode": mode, "nodes": nodes})
}

fn fds() -> Value {
    let mut found = Vec::new();
    if let Ok(rd) = fs::read_dir("/proc/self/fd") {
        for entry in rd.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Ok(fd) = name.parse::<i32>() {
                let target = fs::read_link(entry.path())
                    .ok()
                    .map(|t| t.display().to_string());
                found.push((fd, target));
            }
        }
    }
    // The directory listing's own descriptor is closed now: drop it.
    let out: Vec<Value> = found
        .into_iter()
        .filter(|(fd, _)| nix::fcntl::fcntl(*fd, nix::fcntl::FcntlArg::F_GETFD).is_ok())
        .map(|(fd, target)| json!({"fd": fd, "target": target}))
        .collect();
    Value::Array(out)
}

/// Pids visible in /proc: in a new pid namespace, only the container's.
fn procs() -> Value {
    let mut pids: Vec<u64> = fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
                .collect()
        })
        .unwrap_or_default();
    pids.sort_unstable();
    json!(pids)
}

/// Interface names from /proc/self/net/dev (two header lines).
fn net_ifaces() -> Value {
    let text = fs::read_to_string("/proc/self/net/dev").unwrap_or_default();
    let names: Vec<&str> = text
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    json!(names)
}

fn try_syscall(name: &str) -> Value {
    // By name or by number, but only the syscalls listed: their arguments
    // are known to be harmless.
    let found = SYSCALLS
        .iter()
        .find(|(n, nr)| *n == name || name.parse::<libc::c_long>().ok() == Some(*nr));
    let Some(&(name, nr)) = found else {
        return json!({"error": "not a syscall the probe knows how to try"});
    };
    let mut uts = std::mem::MaybeUninit::<libc::utsname>::uninit();
    let rc = match name {
        // SAFETY: uname writes one utsname into a buffer of that size.
        "uname" => unsafe { libc::syscall(nr, uts.as_mut_ptr()) },
        // SAFETY: personality(0xffffffff) only queries the persona.
        "personality" => unsafe { libc::syscall(nr, 0xffff_ffffu64) },
        // SAFETY: the remaining syscalls take no arguments and touch no memory.
        _ => unsafe { libc::syscall(nr) },
    };
    let errno = if rc < 0 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
    } else {
        0
    };
    json!({"ret": rc, "errno": errno})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_device_numbers() {
        // /dev/null is 1:3 everywhere.
        assert_eq!(dev_split(0x103), (1, 3));
        // A large minor spills into the high bits.
        assert_eq!(dev_split((0x1200 << 12) | 0x34 | (5 << 8)), (5, 0x1234));
    }

    #[test]
    fn unescapes_mountinfo() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
