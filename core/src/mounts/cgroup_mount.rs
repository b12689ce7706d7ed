//! The `cgroup` mount of a container that joins another's pid namespace on
//! a cgroup v1 (or hybrid) host, made as bind mounts.
//!
//! libcontainer 0.7 mounts v1 hierarchies by reading `/proc/<ppid>/cgroup`
//! from the init, falling back to its own pid when getppid() is 0. In a
//! joined pid namespace (a Kubernetes pod's) both are pids of that
//! namespace looked up in the host's /proc: the create fails ("failed to
//! mount cgroup v1: procfs failed") whenever no host process has that
//! number, and reads a stranger's cgroups when one does. runc reads the
//! init's own `/proc/self/cgroup`. pinc replaces such a mount with what
//! runc's gives: a tmpfs holding, per hierarchy, a bind of the cgroup the
//! init will be in (the container's, for the controllers libcgroups joins;
//! else the caller's, which the init inherits), aliases such as `cpu` for
//! `cpu,cpuacct` included.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::{LinuxNamespaceType, Mount, MountBuilder, Spec};

/// The v1 controllers libcgroups' v1 manager moves a container into.
const JOINED: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "hugetlb",
    "pids",
    "perf_event",
    "memory",
    "blkio",
    "net_prio",
    "net_cls",
    "freezer",
];

/// One v1 hierarchy as the host mounts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Its folder's name below the cgroup root (`cpu,cpuacct`, `systemd`).
    pub name: String,
    pub mount_point: PathBuf,
    /// The controllers, with `name=` entries as mountinfo lists them.
    pub controllers: Vec<String>,
    /// The caller's cgroup in it (from /proc/self/cgroup).
    pub caller: String,
}

/// The host's v1 cgroup layout, as the bind mounts need it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostCgroups {
    pub hierarchies: Vec<Hierarchy>,
    /// Symlinks in the cgroup root naming a hierarchy: (`cpu`, `cpu,cpuacct`).
    pub aliases: Vec<(String, String)>,
}

impl HostCgroups {
    /// Reads `<proc>/self/mountinfo`, `<proc>/self/cgroup` and the symlinks
    /// beside the v1 mount points (`proc` is `/proc` outside tests).
    pub fn read(proc: &Path) -> Self {
        let mountinfo = std::fs::read_to_string(proc.join("self/mountinfo")).unwrap_or_default();
        let own = std::fs::read_to_string(proc.join("self/cgroup")).unwrap_or_default();
        // hierarchy's controller list (as /proc/self/cgroup writes it) → path
        let caller: HashMap<&str, &str> = own
            .lines()
            .filter_map(|l| {
                let mut parts = l.splitn(3, ':');
                let _id = parts.next()?;
                Some((parts.next()?, parts.next()?))
            })
            .collect();
        let mut host = HostCgroups::default();
        let mut parents: Vec<PathBuf> = Vec::new();
        for m in pinc_cgroup::mode::cgroup_mounts(&mountinfo) {
            let Some(controllers) = m.controllers else {
                continue;
            };
            let Some(name) = m.mount_point.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let key = controllers.join(",");
            host.hierarchies.push(Hierarchy {
                name: name.to_string(),
                caller: caller.get(key.as_str()).unwrap_or(&"/").to_string(),
                mount_point: m.mount_point.clone(),
                controllers,
            });
            if let Some(parent) = m.mount_point.parent() {
                if !parents.iter().any(|p| p == parent) {
                    parents.push(parent.to_path_buf());
                }
            }
        }
        for parent in parents {
            let Ok(entries) = std::fs::read_dir(&parent) else {
                continue;
            };
            for e in entries.flatten() {
                let Ok(target) = std::fs::read_link(e.path()) else {
                    continue;
                };
                let alias = e.file_name().to_string_lossy().into_owned();
                let target = target.to_string_lossy().into_owned();
                if host.hierarchies.iter().any(|h| h.name == target) {
                    host.aliases.push((alias, target));
                }
            }
        }
        host.aliases.sort();
        host
    }
}

/// Whether libcontainer would look the init up in the wrong pid namespace:
/// the spec joins an existing one.
fn joins_pid_namespace(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == LinuxNamespaceType::Pid && n.path().is_some())
        })
}

/// Replaces the spec's `cgroup` mount by a tmpfs and bind mounts when the
/// container joins a pid namespace on a host with v1 hierarchies. Needs the
/// spec's final (cgroupfs) cgroupsPath; returns whether it changed the spec.
/// `host` is read only for such a spec: most creates never need it.
pub fn bind_v1_hierarchies(spec: &mut Spec, host: impl FnOnce() -> HostCgroups) -> bool {
    if !joins_pid_namespace(spec) {
        return false;
    }
    let host = host();
    if host.hierarchies.is_empty() {
        return false;
    }
    let Some(cgroups_path) = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone()) else {
        return false;
    };
    let relative = cgroups_path
        .strip_prefix("/")
        .unwrap_or(&cgroups_path)
        .to_path_buf();
    let Some(mut mounts) = spec.mounts().clone() else {
        return false;
    };
    let Some(at) = mounts
        .iter()
        .position(|m| m.typ().as_deref() == Some("cgroup"))
    else {
        return false;
    };
    let cgroup = mounts.remove(at);
    let dest = cgroup.destination().clone();
    let ro = cgroup
        .options()
        .as_ref()
        .is_some_and(|o| o.iter().any(|x| x == "ro"));
    let mut replacement = vec![tmpfs(&dest)];
    let source_of = |h: &Hierarchy| -> PathBuf {
        if h.controllers.iter().any(|c| JOINED.contains(&c.as_str())) {
            h.mount_point.join(&relative)
        } else {
            match h.caller.trim_start_matches('/') {
                "" => h.mount_point.clone(),
                caller => h.mount_point.join(caller),
            }
        }
    };
    for h in &host.hierarchies {
        replacement.push(bind(&source_of(h), &dest.join(&h.name), ro));
    }
    for (alias, target) in &host.aliases {
        if let Some(h) = host.hierarchies.iter().find(|h| &h.name == target) {
            replacement.push(bind(&source_of(h), &dest.join(alias), ro));
        }
    }
    // Where the cgroup mount was: later mounts may sit below it.
    mounts.splice(at..at, replacement);
    spec.set_mounts(Some(mounts));
    true
}

fn options(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn tmpfs(dest: &Path) -> Mount {
    let mut m = Mount::default();
    m.set_destination(dest.to_path_buf());
    m.set_typ(Some("tmpfs".into()));
    m.set_source(Some("tmpfs".into()));
    m.set_options(Some(options(&["nosuid", "noexec", "nodev", "mode=755"])));
    m
}

fn bind(source: &Path, dest: &Path, ro: bool) -> Mount {
    let mut opts = options(&["bind", "nosuid", "noexec", "nodev"]);
    if ro {
        opts.push("ro".into());
    }
    MountBuilder::default()
        .destination(dest.to_path_buf())
        .typ("bind")
        .source(source.to_path_buf())
        .options(opts)
        .build()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostCgroups {
        let h = |name: &str, controllers: &[&str], caller: &str| Hierarchy {
            name: name.into(),
            mount_point: PathBuf::from("/sys/fs/cgroup").join(name),
            controllers: controllers.iter().map(|c| c.to_string()).collect(),
            caller: caller.into(),
        };
        HostCgroups {
            hierarchies: vec![
                h(
                    "systemd",
                    &["name=systemd"],
                    "/system.slice/containerd.service",
                ),
                h("cpu,cpuacct", &["cpu", "cpuacct"], "/"),
                h("memory", &["memory"], "/"),
                h("rdma", &["rdma"], "/"),
            ],
            aliases: vec![("cpu".into(), "cpu,cpuacct".into())],
        }
    }

    fn spec(pid_path: Option<&str>) -> Spec {
        let ns = match pid_path {
            Some(p) => serde_json::json!([{"type": "pid", "path": p}, {"type": "mount"}]),
            None => serde_json::json!([{"type": "pid"}, {"type": "mount"}]),
        };
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                 "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
                {"destination": "/dev/shm", "type": "bind", "source": "/run/shm", "options": ["rbind"]}
            ],
            "linux": {"namespaces": ns, "cgroupsPath": "/kubepods/pod1/c1"}
        }))
        .expect("spec")
    }

    fn described(spec: &Spec) -> Vec<String> {
        spec.mounts()
            .as_ref()
            .expect("mounts")
            .iter()
            .map(|m| {
                format!(
                    "{} {} {} {}",
                    m.destination().display(),
                    m.typ().as_deref().unwrap_or(""),
                    m.source()
                        .as_ref()
                        .map(|s| s.display().to_string())
                        .unwrap_or_default(),
                    m.options()
                        .as_ref()
                        .map(|o| o.join(","))
                        .unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn a_joined_pid_namespace_gets_binds_of_the_cgroups_the_init_is_in() {
        let mut s = spec(Some("/proc/42/ns/pid"));
        assert!(bind_v1_hierarchies(&mut s, host));
        assert_eq!(
            described(&s),
            vec![
                "/proc proc proc ",
                "/sys/fs/cgroup tmpfs tmpfs nosuid,noexec,nodev,mode=755",
                "/sys/fs/cgroup/systemd bind /sys/fs/cgroup/systemd/system.slice/containerd.service bind,nosuid,noexec,nodev,ro",
                "/sys/fs/cgroup/cpu,cpuacct bind /sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/c1 bind,nosuid,noexec,nodev,ro",
                "/sys/fs/cgroup/memory bind /sys/fs/cgroup/memory/kubepods/pod1/c1 bind,nosuid,noexec,nodev,ro",
                "/sys/fs/cgroup/rdma bind /sys/fs/cgroup/rdma bind,nosuid,noexec,nodev,ro",
                "/sys/fs/cgroup/cpu bind /sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/c1 bind,nosuid,noexec,nodev,ro",
                "/dev/shm bind /run/shm rbind",
            ]
        );
    }

    #[test]
    fn left_alone_with_its_own_pid_namespace_or_no_v1_hierarchy() {
        let mut own = spec(None);
        let before = own.clone();
        assert!(!bind_v1_hierarchies(&mut own, host));
        assert_eq!(own, before);
        let mut unified = spec(Some("/proc/42/ns/pid"));
        let before = unified.clone();
        assert!(!bind_v1_hierarchies(&mut unified, HostCgroups::default));
        assert_eq!(unified, before);
    }

    #[test]
    fn a_writable_cgroup_mount_gives_writable_binds() {
        let mut s = spec(Some("/proc/42/ns/pid"));
        let mut mounts = s.mounts().clone().expect("mounts");
        mounts[1].set_options(Some(options(&["nosuid", "noexec", "nodev"])));
        s.set_mounts(Some(mounts));
        assert!(bind_v1_hierarchies(&mut s, host));
        assert!(described(&s)[2].ends_with("bind,nosuid,noexec,nodev"));
    }

    #[test]
    fn reads_the_host_layout_from_a_proc_tree() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cg = dir.path().join("cgroup");
        std::fs::create_dir_all(cg.join("cpu,cpuacct")).expect("mkdir");
        std::fs::create_dir_all(cg.join("memory")).expect("mkdir");
        std::os::unix::fs::symlink("cpu,cpuacct", cg.join("cpu")).expect("symlink");
        std::os::unix::fs::symlink("cpu,cpuacct", cg.join("cpuacct")).expect("symlink");
        let proc = dir.path().join("proc");
        std::fs::create_dir_all(proc.join("self")).expect("mkdir");
        let mp = |n: &str| cg.join(n).display().to_string();
        std::fs::write(
            proc.join("self/mountinfo"),
            format!(
                "30 25 0:26 / {} rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n\
                 31 25 0:27 / {} rw,nosuid - cgroup cgroup rw,memory\n\
                 32 25 0:28 / {} rw - cgroup2 cgroup2 rw\n",
                mp("cpu,cpuacct"),
                mp("memory"),
                mp("unified")
            ),
        )
        .expect("mountinfo");
        std::fs::write(
            proc.join("self/cgroup"),
            "4:memory:/user.slice\n3:cpu,cpuacct:/\n0::/user.slice\n",
        )
        .expect("cgroup");
        let host = HostCgroups::read(&proc);
        let names: Vec<(&str, &str)> = host
            .hierarchies
            .iter()
            .map(|h| (h.name.as_str(), h.caller.as_str()))
            .collect();
        assert_eq!(names, vec![("cpu,cpuacct", "/"), ("memory", "/user.slice")]);
        assert_eq!(
            host.aliases,
            vec![
                ("cpu".to_string(), "cpu,cpuacct".to_string()),
                ("cpuacct".to_string(), "cpu,cpuacct".to_string())
            ]
        );
    }
}
