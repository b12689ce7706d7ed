//! Helpers for the containerd shim tests: the shim binary beside pinc, a
//! private containerd whose PATH holds both, and process/mount checks.

use std::fs;
use std::path::{Path, PathBuf};

use crate::daemons::{Containerd, ContainerdOptions};
use crate::procfs;

/// The shim's runtime type (a binary `containerd-shim-pinc-v2` on PATH).
pub const RUNTIME: &str = "io.containerd.pinc.v2";

/// `containerd-shim-pinc-v2`, built beside the pinc under test.
pub fn shim_bin() -> PathBuf {
    let pinc = crate::daemons::pinc_abs();
    let shim = pinc
        .parent()
        .expect("pinc has a folder")
        .join("containerd-shim-pinc-v2");
    assert!(
        shim.is_file(),
        "{} is missing: `cargo build --release -p containerd-shim-pinc-v2` beside pinc",
        shim.display()
    );
    shim
}

/// A private containerd that finds the shim and pinc on its PATH.
pub fn containerd_with_shim() -> Containerd {
    let shim = shim_bin();
    let dir = shim.parent().expect("shim folder").to_path_buf();
    Containerd::start_with(&ContainerdOptions {
        path_prepend: vec![dir],
        ..Default::default()
    })
}

/// The pinc state root the shim uses for `ns`.
pub fn shim_root(ns: &str) -> PathBuf {
    Path::new("/run/containerd/pinc").join(ns)
}

/// Pids of shim processes serving namespace `ns`.
pub fn shim_pids(ns: &str) -> Vec<i32> {
    let needle = format!("-namespace {ns} ");
    procfs::pids()
        .into_iter()
        .filter(|&pid| {
            let c = procfs::cmdline(pid);
            c.contains("containerd-shim-pinc-v2") && c.contains(&needle)
        })
        .collect()
}

/// Zombie children of `parent`.
pub fn zombies_of(parent: i32) -> Vec<i32> {
    procfs::pids()
        .into_iter()
        .filter(|&pid| procfs::stat(pid) == Some(('Z', parent)))
        .collect()
}

/// Mount points at or under `dir` (from /proc/self/mountinfo).
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let d = dir.to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4).map(str::to_owned))
        .filter(|m| m.starts_with(&d))
        .collect()
}

/// RSS in kB of a process (VmRSS).
pub fn rss_kb(pid: i32) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// The serving shim process (`<binary> -namespace <ns> -id <id> ...`, not
/// its `start` or `delete` action) of task `id` in namespace `ns`.
pub fn serving_shim(binary: &str, ns: &str, id: &str) -> Option<i32> {
    let namespace = format!("-namespace {ns} ");
    let task = format!("-id {id} ");
    procfs::pids().into_iter().find(|&pid| {
        let c = procfs::cmdline(pid);
        c.contains(binary)
            && c.contains(&namespace)
            && c.contains(&task)
            && !matches!(c.split_whitespace().last(), Some("start" | "delete"))
    })
}

/// Whether `pid` runs (a zombie or a gone process does not).
pub use crate::procfs::alive;

fn dirs_named(dir: &Path, id: &str, depth: u32, found: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if e.file_name().to_string_lossy().contains(id) {
            found.push(format!("cgroup {}", e.path().display()));
        } else if depth > 0 {
            dirs_named(&e.path(), id, depth - 1, found);
        }
    }
}

/// What of container `id` is left on the node, one line per thing: its
/// state dir in the runtime's state `root`; pinc's journal, staging, exec
/// view and lock entries for it under `root/.pinc`; cgroup dirs named after
/// it in every hierarchy under /sys/fs/cgroup (v1, systemd, unified);
/// processes whose cgroup names it; mounts whose path names it. `id` must
/// be unique enough that no other name contains it.
pub fn leftovers(root: &Path, id: &str) -> Vec<String> {
    let mut found = Vec::new();
    if root.join(id).exists() {
        found.push(format!("state {}", root.join(id).display()));
    }
    for sub in ["journal", "staging", "exec", "locks"] {
        let dir = root.join(".pinc").join(sub);
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // `<id>`, an exec view `<id>.<pid>`, a journal being written `<id>~tmp`.
            let rest = name.strip_prefix(id);
            if rest.is_some_and(|r| r.is_empty() || r.starts_with('.') || r.starts_with('~')) {
                found.push(format!("{sub} {}", dir.join(&name).display()));
            }
        }
    }
    for h in fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        dirs_named(&h.path(), id, 3, &mut found);
    }
    for pid in procfs::pids() {
        let cgroups = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        if cgroups.lines().any(|l| l.contains(id)) && alive(pid) {
            found.push(format!("process {pid} ({})", procfs::cmdline(pid).trim()));
        }
    }
    for l in fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
    {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.get(3).is_some_and(|r| r.contains(id)) || f.get(4).is_some_and(|m| m.contains(id)) {
            found.push(format!("mount {}", f.get(4).unwrap_or(&"?")));
        }
    }
    found
}

/// Pids of processes (other than this one) whose command line holds `needle`.
pub fn pids_mentioning(needle: &str) -> Vec<i32> {
    procfs::other_pids()
        .into_iter()
        .filter(|&pid| procfs::cmdline(pid).contains(needle))
        .collect()
}

/// Removes the parent cgroup containerd makes for namespace `ns` in every
/// hierarchy (`/sys/fs/cgroup/<h>/<ns>`: a task's cgroup is `/<ns>/<id>`
/// and the runtimes remove only the leaf); returns the ones still in use.
pub fn remove_namespace_cgroups(ns: &str) -> Vec<String> {
    let mut left = Vec::new();
    for h in fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let dir = h.path().join(ns);
        if dir.is_dir() {
            if let Err(e) = fs::remove_dir(&dir) {
                left.push(format!("{}: {e}", dir.display()));
            }
        }
    }
    left
}
