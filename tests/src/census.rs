//! A census of everything pinc can leave on the node for one runtime root:
//! state dirs, private files, cgroups in every hierarchy, mounts, ledger
//! entries, processes and the fds of long-lived processes.
//!
//! Leak checks take one census before and one after and compare them with
//! [`Census::diff`]: zero growth is the requirement, whatever the node already
//! held. Every category is a sorted list of names, so the diff names what
//! leaked, not only how much.
//!
//! The node-wide categories (cgroups, pinc processes) see every pinc on the
//! machine; on a shared machine a [`Scope::id_prefix`] limits them to the
//! containers of one test, so another run's containers are not counted.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// What to count and where the kernel's files are.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The runtime root (`pinc --root`).
    pub root: PathBuf,
    /// Bundles and root filesystems: mounts and processes under them count.
    pub path_prefixes: Vec<PathBuf>,
    /// Long-lived processes whose open fds are listed.
    pub fd_pids: Vec<i32>,
    /// Count only cgroups and pinc processes of containers whose id starts
    /// with this (None: every pinc container on the node).
    pub id_prefix: Option<String>,
    /// Whose zombie children count (default: this process).
    pub parent_pid: i32,
    /// procfs (default `/proc`).
    pub proc: PathBuf,
    /// The cgroup mounts (default `/sys/fs/cgroup`).
    pub cgroup_root: PathBuf,
}

impl Scope {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            path_prefixes: Vec::new(),
            fd_pids: Vec::new(),
            id_prefix: None,
            parent_pid: std::process::id() as i32,
            proc: PathBuf::from("/proc"),
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
        }
    }

    pub fn prefix(mut self, path: &Path) -> Self {
        self.path_prefixes.push(path.to_path_buf());
        self
    }

    pub fn watch_fds(mut self, pid: i32) -> Self {
        self.fd_pids.push(pid);
        self
    }

    pub fn ids(mut self, prefix: &str) -> Self {
        self.id_prefix = Some(prefix.to_string());
        self
    }

    /// Whether a mount point or source path lies under the root or a prefix.
    fn covers(&self, path: &str) -> bool {
        let p = Path::new(path);
        p.starts_with(&self.root) || self.path_prefixes.iter().any(|x| p.starts_with(x))
    }

    fn id_matches(&self, id: &str) -> bool {
        self.id_prefix.as_deref().is_none_or(|p| id.starts_with(p))
    }
}

/// Everything counted, per category; each list sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Census {
    /// Entries of the root other than `.pinc`.
    pub state_dirs: Vec<String>,
    /// `.pinc/staging/*`.
    pub staging: Vec<String>,
    /// `.pinc/exec/*`.
    pub exec_views: Vec<String>,
    /// Every other file under `.pinc`, as `subdir/name` (locks, ledger).
    pub private_files: Vec<String>,
    /// `<hierarchy>/pinc/<id>` (and systemd's `pinc-<id>.scope`) in every
    /// cgroup mount, cgroup2 included.
    pub cgroups: Vec<String>,
    /// `<mount point> <fstype> <source>` of mounts under the root or a
    /// prefix, and every hugetlbfs mount.
    pub mounts: Vec<String>,
    /// `<id> cpus=<list> mems=<list>` per ledger entry.
    pub ledger: Vec<String>,
    /// `cpu<N> <id>` per CPU the ledger holds.
    pub ledger_cpus: Vec<String>,
    /// `<pid> <comm> <cgroup>` of processes in a pinc container's cgroup.
    pub cgroup_procs: Vec<String>,
    /// `<pid> <comm> cwd|root=<path>` of processes under a prefix.
    pub rootfs_procs: Vec<String>,
    /// `<pid> <comm>` of zombie children of [`Scope::parent_pid`].
    pub zombies: Vec<String>,
    /// `<pid> <comm>` of processes named `pinc` or libcontainer's `youki:[…]`.
    pub pinc_procs: Vec<String>,
    /// `<pid>/<fd> <target>` of the watched pids.
    pub fds: Vec<String>,
}

impl Census {
    /// A node-wide census for `root`.
    pub fn take(root: &Path) -> Self {
        Self::take_in(&Scope::new(root))
    }

    pub fn take_in(scope: &Scope) -> Self {
        let private = scope.root.join(".pinc");
        let mut c = Census {
            state_dirs: names(&scope.root)
                .into_iter()
                .filter(|n| n != ".pinc")
                .collect(),
            staging: names(&private.join("staging")),
            exec_views: names(&private.join("exec")),
            private_files: private_files(&private),
            cgroups: cgroups(scope),
            mounts: fs::read_to_string(scope.proc.join("self/mountinfo"))
                .map(|t| mounts(&t, scope))
                .unwrap_or_default(),
            ..Census::default()
        };
        let (ledger, cpus) = ledger(&private.join("ledger/allocations.json"));
        c.ledger = ledger;
        c.ledger_cpus = cpus;
        processes(scope, &mut c);
        c.fds = scope
            .fd_pids
            .iter()
            .flat_map(|pid| fds(&scope.proc, *pid))
            .collect();
        for (_, list) in c.categories_mut() {
            list.sort();
            list.dedup();
        }
        c
    }

    fn categories(&self) -> [(&'static str, &Vec<String>); 13] {
        [
            ("state dirs", &self.state_dirs),
            ("staging dirs", &self.staging),
            ("exec views", &self.exec_views),
            ("private files", &self.private_files),
            ("cgroups", &self.cgroups),
            ("mounts", &self.mounts),
            ("ledger entries", &self.ledger),
            ("ledger cpus", &self.ledger_cpus),
            ("procs in pinc cgroups", &self.cgroup_procs),
            ("procs under rootfs", &self.rootfs_procs),
            ("zombie children", &self.zombies),
            ("pinc processes", &self.pinc_procs),
            ("watched fds", &self.fds),
        ]
    }

    fn categories_mut(&mut self) -> [(&'static str, &mut Vec<String>); 13] {
        [
            ("state dirs", &mut self.state_dirs),
            ("staging dirs", &mut self.staging),
            ("exec views", &mut self.exec_views),
            ("private files", &mut self.private_files),
            ("cgroups", &mut self.cgroups),
            ("mounts", &mut self.mounts),
            ("ledger entries", &mut self.ledger),
            ("ledger cpus", &mut self.ledger_cpus),
            ("procs in pinc cgroups", &mut self.cgroup_procs),
            ("procs under rootfs", &mut self.rootfs_procs),
            ("zombie children", &mut self.zombies),
            ("pinc processes", &mut self.pinc_procs),
            ("watched fds", &mut self.fds),
        ]
    }

    /// What appeared and what disappeared between `self` and `later`.
    pub fn diff(&self, later: &Census) -> CensusDiff {
        let categories = self
            .categories()
            .into_iter()
            .zip(later.categories())
            .map(|((name, before), (_, after))| {
                let b: BTreeSet<&String> = before.iter().collect();
                let a: BTreeSet<&String> = after.iter().collect();
                CategoryDiff {
                    name,
                    appeared: a.difference(&b).map(|s| s.to_string()).collect(),
                    disappeared: b.difference(&a).map(|s| s.to_string()).collect(),
                }
            })
            .collect();
        CensusDiff { categories }
    }

    /// Whether nothing at all is counted.
    pub fn is_empty(&self) -> bool {
        self.categories().iter().all(|(_, l)| l.is_empty())
    }
}

impl fmt::Display for Census {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, list) in self.categories() {
            writeln!(f, "  {name:<22} {}", list.len())?;
        }
        Ok(())
    }
}

/// One category's change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryDiff {
    pub name: &'static str,
    pub appeared: Vec<String>,
    pub disappeared: Vec<String>,
}

/// The change between two censuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CensusDiff {
    pub categories: Vec<CategoryDiff>,
}

/// Files under `.pinc` that pinc keeps for the root's lifetime once first
/// used, not per container: the ledger, its lock and the topology cache.
pub const ROOT_FILES: &[&str] = &["ledger/allocations.json", "ledger/lock", "topology.json"];

impl CensusDiff {
    /// The diff without the appearance of [`ROOT_FILES`]: what a baseline
    /// taken on a fresh root must not be blamed for.
    pub fn leaks(&self) -> CensusDiff {
        let mut d = self.clone();
        for c in d
            .categories
            .iter_mut()
            .filter(|c| c.name == "private files")
        {
            c.appeared.retain(|f| !ROOT_FILES.contains(&f.as_str()));
        }
        d
    }

    /// Whether anything appeared (a leak, if the caller cleaned up).
    pub fn grew(&self) -> bool {
        self.categories.iter().any(|c| !c.appeared.is_empty())
    }

    /// Whether nothing changed at all.
    pub fn is_empty(&self) -> bool {
        self.categories
            .iter()
            .all(|c| c.appeared.is_empty() && c.disappeared.is_empty())
    }

    /// What appeared in the category called `name`.
    pub fn appeared(&self, name: &str) -> &[String] {
        self.categories
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.appeared.as_slice())
            .unwrap_or(&[])
    }
}

/// Names listed per category, at most this many (a leak of thousands would
/// drown the report).
const MAX_NAMES: usize = 20;

impl fmt::Display for CensusDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.categories {
            writeln!(
                f,
                "  {:<22} +{} -{}",
                c.name,
                c.appeared.len(),
                c.disappeared.len()
            )?;
            for n in c.appeared.iter().take(MAX_NAMES) {
                writeln!(f, "      + {n}")?;
            }
            if c.appeared.len() > MAX_NAMES {
                writeln!(f, "      + ... {} more", c.appeared.len() - MAX_NAMES)?;
            }
        }
        Ok(())
    }
}

/// Entry names of a directory (none if it is missing).
fn names(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Files under `.pinc` outside staging and exec, as `subdir/name`.
fn private_files(private: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in fs::read_dir(private).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "staging" || name == "exec" {
            continue;
        }
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(
                names(&entry.path())
                    .into_iter()
                    .map(|n| format!("{name}/{n}")),
            );
        } else {
            out.push(name);
        }
    }
    out
}

/// pinc's container cgroups in every hierarchy under `cgroup_root`.
fn cgroups(scope: &Scope) -> Vec<String> {
    let mut out = Vec::new();
    for entry in fs::read_dir(&scope.cgroup_root)
        .into_iter()
        .flatten()
        .flatten()
    {
        // cpu -> cpu,cpuacct and the like are aliases of a real hierarchy.
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let hier = entry.file_name().to_string_lossy().into_owned();
        let dir = entry.path();
        for id in dir_names(&dir.join("pinc")) {
            if scope.id_matches(&id) {
                out.push(format!("{hier}/pinc/{id}"));
            }
        }
        // The systemd driver's "system.slice:pinc:<id>".
        for unit in dir_names(&dir.join("system.slice")) {
            let id = unit
                .strip_prefix("pinc-")
                .and_then(|u| u.strip_suffix(".scope"));
            if id.is_some_and(|id| scope.id_matches(id)) {
                out.push(format!("{hier}/system.slice/{unit}"));
            }
        }
    }
    out
}

/// Names of the subdirectories of `dir`.
fn dir_names(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// One mount from a mountinfo line.
#[derive(Debug, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_point: String,
    pub fstype: String,
    pub source: String,
}

/// Undoes mountinfo's octal escapes (`\040` is a space).
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                let v = d.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
                out.push(v as u8);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses one /proc/PID/mountinfo line:
/// `id parent maj:min root mountpoint options [optional...] - fstype source super`.
pub fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let (left, right) = line.split_once(" - ")?;
    let mount_point = left.split(' ').nth(4)?;
    let mut right = right.split(' ');
    let fstype = right.next()?;
    let source = right.next()?;
    Some(MountEntry {
        mount_point: unescape(mount_point),
        fstype: unescape(fstype),
        source: unescape(source),
    })
}

/// The mounts of a mountinfo text that the census counts.
fn mounts(text: &str, scope: &Scope) -> Vec<String> {
    text.lines()
        .filter_map(parse_mountinfo_line)
        .filter(|m| {
            m.fstype == "hugetlbfs" || scope.covers(&m.mount_point) || scope.covers(&m.source)
        })
        .map(|m| format!("{} {} {}", m.mount_point, m.fstype, m.source))
        .collect()
}

/// Parses a cgroup-format list ("0-3,8") into its members.
fn cpu_list(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.trim().parse::<u32>().ok()?..=b.trim().parse().ok()?),
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

/// The ledger's entries and the CPUs they hold. An unreadable ledger is one
/// entry saying so: a census must not hide a corrupt file behind "empty".
pub fn ledger(path: &Path) -> (Vec<String>, Vec<String>) {
    let Ok(bytes) = fs::read(path) else {
        return (Vec::new(), Vec::new());
    };
    let Ok(serde_json::Value::Array(entries)) = serde_json::from_slice(&bytes) else {
        return (vec![format!("<unparsable {}>", path.display())], Vec::new());
    };
    let mut list = Vec::new();
    let mut cpus = Vec::new();
    for e in entries {
        let field = |k: &str| e.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_string();
        let id = field("id");
        let held = field("cpus");
        list.push(format!("{id} cpus={held} mems={}", field("mems")));
        match cpu_list(&held) {
            Some(l) => cpus.extend(l.into_iter().map(|c| format!("cpu{c} {id}"))),
            None => cpus.push(format!("cpu? {id}")),
        }
    }
    (list, cpus)
}

/// The container id a /proc/PID/cgroup text places the process in, if pinc's.
pub fn pinc_cgroup_of(cgroup_file: &str) -> Option<(String, String)> {
    for line in cgroup_file.lines() {
        // "N:controllers:/path"; the path may itself contain ':'.
        let path = line.splitn(3, ':').nth(2)?;
        let mut parts = path.split('/').filter(|p| !p.is_empty());
        while let Some(p) = parts.next() {
            if p == "pinc" {
                if let Some(id) = parts.next() {
                    return Some((id.to_string(), path.to_string()));
                }
            }
            if let Some(id) = p
                .strip_prefix("pinc-")
                .and_then(|u| u.strip_suffix(".scope"))
            {
                return Some((id.to_string(), path.to_string()));
            }
        }
    }
    None
}

/// `(comm, state, ppid)` from /proc/PID/stat.
fn stat(proc: &Path, pid: i32) -> Option<(String, char, i32)> {
    let text = fs::read_to_string(proc.join(pid.to_string()).join("stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let mut rest = text.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((comm, state, ppid))
}

fn processes(scope: &Scope, c: &mut Census) {
    let me = std::process::id() as i32;
    let root = scope.root.to_string_lossy().into_owned();
    for entry in fs::read_dir(&scope.proc).into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Some((comm, state, ppid)) = stat(&scope.proc, pid) else {
            continue;
        };
        let dir = entry.path();
        if state == 'Z' && ppid == scope.parent_pid {
            c.zombies.push(format!("{pid} {comm}"));
        }
        // A zombie holds only its pid; it is its adopter's to reap (an
        // orphaned container init goes to the nearest subreaper).
        let dead = matches!(state, 'Z' | 'X');
        if let Some((id, path)) = fs::read_to_string(dir.join("cgroup"))
            .ok()
            .and_then(|t| pinc_cgroup_of(&t))
        {
            if scope.id_matches(&id) && !dead {
                c.cgroup_procs.push(format!("{pid} {comm} {path}"));
            }
        }
        for link in ["cwd", "root"] {
            if let Ok(target) = fs::read_link(dir.join(link)) {
                if target != Path::new("/") && scope.covers(&target.to_string_lossy()) {
                    c.rootfs_procs
                        .push(format!("{pid} {comm} {link}={}", target.display()));
                }
            }
        }
        if pid != me && (comm == "pinc" || comm.starts_with("youki:[")) {
            // Scoped: only those working on this root (its path or an id of
            // ours on their command line).
            let cmdline = fs::read(dir.join("cmdline"))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                .unwrap_or_default();
            let ours = match &scope.id_prefix {
                None => true,
                Some(p) => cmdline.contains(&root) || cmdline.contains(p.as_str()),
            };
            if ours {
                c.pinc_procs.push(format!("{pid} {comm}"));
            }
        }
    }
}

/// `<pid>/<fd> <target>` of every open fd of `pid`.
fn fds(proc: &Path, pid: i32) -> Vec<String> {
    let dir = proc.join(pid.to_string()).join("fd");
    fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let target = fs::read_link(e.path())
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            format!("{pid}/{} {target}", e.file_name().to_string_lossy())
        })
        .collect()
}

#[cfg(test)]
#[path = "census_tests.rs"]
mod tests;
