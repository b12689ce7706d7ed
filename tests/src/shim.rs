//! Helpers for the containerd shim tests: the shim binary beside pinc, a
//! private containerd whose PATH holds both, and process/mount checks.

use std::fs;
use std::path::{Path, PathBuf};

use crate::daemons::{Containerd, ContainerdOptions};

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

fn cmdline(pid: &str) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// Pids of shim processes serving namespace `ns`.
pub fn shim_pids(ns: &str) -> Vec<i32> {
    let needle = format!("-namespace {ns} ");
    fs::read_dir("/proc")
        .map(|it| {
            it.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
                .filter(|pid| {
                    let c = cmdline(&pid.to_string());
                    c.contains("containerd-shim-pinc-v2") && c.contains(&needle)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// (state, ppid) of a process from /proc/<pid>/stat.
fn stat(pid: i32) -> Option<(char, i32)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Zombie children of `parent`.
pub fn zombies_of(parent: i32) -> Vec<i32> {
    fs::read_dir("/proc")
        .map(|it| {
            it.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
                .filter(|&pid| stat(pid) == Some(('Z', parent)))
                .collect()
        })
        .unwrap_or_default()
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
