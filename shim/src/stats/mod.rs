//! Stats: metrics read straight from the container init's cgroups (no process
//! spawned per scrape). Which layout applies is decided per container by what
//! `/proc/<init>/cgroup` shows: any v1 controller hierarchy (a v1 or hybrid
//! host) → `io.containerd.cgroups.v1.Metrics`; only the `0::/path` line (a
//! unified host) → `io.containerd.cgroups.v2.Metrics`.

mod v1;
pub mod v2;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use containerd_shim::protos::protobuf::well_known_types::any::Any;

use crate::errors::{Error, Result};

/// Where the cgroup(s) of a process live.
pub enum Cgroup {
    /// controller → folder in that controller's v1 hierarchy.
    V1(HashMap<String, PathBuf>),
    /// The folder of the process's cgroup in the unified hierarchy.
    V2(PathBuf),
}

/// What the text of `/proc/<pid>/cgroup` says, before any mount is resolved.
#[derive(Debug, PartialEq, Eq)]
enum Layout {
    V1,
    /// The path of the `0::` line (relative to the cgroup2 mount).
    V2(String),
}

fn layout(proc_cgroup: &str) -> Option<Layout> {
    let mut unified = None;
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        // "name=systemd" is a v1 hierarchy without controllers: it alone does not
        // make a host v1 (nothing to read stats from there).
        if controllers
            .split(',')
            .any(|c| !c.is_empty() && !c.starts_with("name="))
        {
            return Some(Layout::V1);
        }
        if id == "0" && controllers.is_empty() {
            unified = Some(path.to_string());
        }
    }
    unified.map(Layout::V2)
}

/// The cgroup2 mount point in a `/proc/self/mountinfo` text; /sys/fs/cgroup if
/// several (a hybrid host also has /sys/fs/cgroup/unified).
fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    let mut found = None;
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        if post.split_whitespace().next() != Some("cgroup2") {
            continue;
        }
        let Some(point) = pre.split_whitespace().nth(4) else {
            continue;
        };
        // mountinfo escapes blanks as \040; cgroup mounts never have any.
        if point == "/sys/fs/cgroup" {
            return Some(PathBuf::from(point));
        }
        found.get_or_insert_with(|| PathBuf::from(point));
    }
    found
}

/// The cgroup(s) `pid` belongs to.
pub fn cgroup_of(pid: i32) -> Result<Cgroup> {
    let file = format!("/proc/{pid}/cgroup");
    let text = std::fs::read_to_string(&file).map_err(Error::io("failed to read", &file))?;
    match layout(&text) {
        Some(Layout::V1) => Ok(Cgroup::V1(v1::v1_paths(&text))),
        Some(Layout::V2(rel)) => {
            let info = "/proc/self/mountinfo";
            let mounts =
                std::fs::read_to_string(info).map_err(Error::io("failed to read", info))?;
            let root = cgroup2_mount(&mounts)
                .ok_or(Error::Unsupported("no cgroup2 mount found for stats"))?;
            Ok(Cgroup::V2(root.join(rel.trim_start_matches('/'))))
        }
        None => Err(Error::Unsupported(
            "the container init is in no known cgroup",
        )),
    }
}

/// Metrics of the cgroup(s) `pid` belongs to, packed for containerd.
pub fn metrics(pid: i32) -> Result<Any> {
    match cgroup_of(pid)? {
        Cgroup::V1(paths) => v1::metrics(&paths),
        Cgroup::V2(dir) => v2::metrics(&dir),
    }
}

/// "key value" lines (memory.stat, cpu.stat, memory.events); bad lines skipped.
fn read_kv(path: &Path) -> HashMap<String, u64> {
    parse_kv(&std::fs::read_to_string(path).unwrap_or_default())
}

fn parse_kv(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "12:memory:/user.slice\n8:pids:/user.slice/x\n1:name=systemd:/user.slice/x\n0::/user.slice/x\n";

    #[test]
    fn layout_hybrid_is_v1() {
        assert_eq!(layout(HYBRID), Some(Layout::V1));
        let p = v1::v1_paths(HYBRID);
        assert!(p.contains_key("memory") && p.contains_key("pids"));
    }

    #[test]
    fn layout_unified_is_v2() {
        assert_eq!(
            layout("0::/kubepods.slice/pinc-abc.scope\n"),
            Some(Layout::V2("/kubepods.slice/pinc-abc.scope".into()))
        );
        // systemd's named hierarchy next to the unified one: still no v1 controller.
        assert_eq!(
            layout("1:name=systemd:/x\n0::/x\n"),
            Some(Layout::V2("/x".into()))
        );
        assert_eq!(layout(""), None);
    }

    #[test]
    fn cgroup2_mount_point() {
        let unified = "31 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
        assert_eq!(
            cgroup2_mount(unified),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        let hybrid = "25 24 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_mount(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(cgroup2_mount("1 0 8:1 / / rw - ext4 /dev/sda1 rw\n"), None);
    }
}
