//! Rootless containers where the caller's cgroups are not delegated (a login
//! node on cgroup v1): pinc's "sandbox".
//!
//! libcontainer always moves the container into cgroups, which fails with
//! EACCES when nothing is delegated. runc skips cgroups there; pinc gets the
//! same result without forking libcontainer: before creating, pinc enters a
//! user namespace of its own (the caller's uid mapped to 0) with a private
//! mount namespace where a scratch tmpfs covers /sys/fs/cgroup. libcontainer's
//! cgroup bookkeeping then lands in that tmpfs and limits nothing; the spec's
//! cgroup limits are dropped with one warning (or refused, if the caller
//! asked for them to be enforced). The container shares that user namespace,
//! so the spec's own user namespace and id mappings are folded into it.

pub mod subid;

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::{LinuxNamespaceType, Spec};
use nix::mount::{mount, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use pinc_cgroup::mode::{cgroup_mounts, CgroupMount};
use pinc_cgroup::{CallerCgroups, Delegation};

/// Errors entering or preparing the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum RootlessError {
    #[error("rootless: failed to create a user and mount namespace")]
    Unshare(#[source] nix::Error),
    #[error("rootless: failed to join the container's user namespace {path}")]
    Join {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("rootless: failed to enter the container's user namespace {path}")]
    Setns {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("rootless: failed to write {path}")]
    Map {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("rootless: failed to mount a scratch cgroupfs on /sys/fs/cgroup")]
    Mount(#[source] nix::Error),
    #[error(
        "rootless: the spec maps ids that are not yours: container root must be your ids \
         ({uid}:{gid}), and further ids must come from your /etc/subuid and /etc/subgid ranges \
         (as `pinc spec --rootless` writes them)"
    )]
    ForeignIds { uid: u32, gid: u32 },
    #[error(
        "rootless: process.user {uid}:{gid} is not mapped in this rootless container \
         (mapped: uids {uids}, gids {gids})"
    )]
    UnmappedUser {
        uid: u32,
        gid: u32,
        uids: String,
        gids: String,
    },
    #[error(transparent)]
    Subid(#[from] subid::SubidError),
    #[error("rootless: cgroups are not delegated to uid {uid} ({dir} is not writable), so these limits cannot be enforced: {limits}")]
    LimitsRequired {
        uid: u32,
        dir: PathBuf,
        limits: String,
    },
}

/// How `--rootless` was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RootlessFlag {
    #[default]
    Auto,
    True,
    False,
}

/// How a container will be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Real root: libcontainer as is.
    Root,
    /// Unprivileged, with writable (delegated) cgroups: libcontainer as is.
    Delegated,
    /// Unprivileged without delegation: pinc's sandbox; `dir` is the first
    /// cgroup directory found not writable.
    Sandbox { dir: PathBuf },
}

/// Decides the mode for the calling process.
pub fn decide(flag: RootlessFlag) -> Mode {
    let unprivileged = !nix::unistd::geteuid().is_root();
    let rootless = match flag {
        RootlessFlag::False => false,
        RootlessFlag::True => true,
        RootlessFlag::Auto => unprivileged,
    };
    if !rootless || !unprivileged {
        return Mode::Root;
    }
    let delegation = CallerCgroups::read(Path::new("/"))
        .map(|c| Delegation::check(&c))
        .ok();
    match delegation {
        Some(d) if d.is_delegated() => Mode::Delegated,
        Some(d) => Mode::Sandbox {
            dir: d.not_writable.into_iter().next().unwrap_or_default(),
        },
        None => Mode::Sandbox {
            dir: PathBuf::from("/sys/fs/cgroup"),
        },
    }
}

/// Folds the spec into the sandbox: drops the user namespace (the sandbox is
/// one) after checking its mappings are the caller's own ids, and drops
/// cgroup limits that cannot be enforced (warning once, or failing when
/// `require_limits`).
pub fn adapt_spec(
    spec: &mut Spec,
    uid: u32,
    gid: u32,
    dir: &Path,
    require_limits: bool,
) -> Result<IdMaps, RootlessError> {
    let Some(mut linux) = spec.linux().clone() else {
        return Ok(IdMaps::own(uid, gid));
    };
    let subids = subid::for_user(Path::new("/"), uid, gid);
    let convert = |maps: &Option<Vec<libcontainer::oci_spec::runtime::LinuxIdMapping>>,
                   own: u32| {
        match maps.as_deref() {
            None | Some([]) => subid::maps(own, None),
            Some(maps) => maps
                .iter()
                .map(|m| subid::IdMap {
                    container: m.container_id(),
                    host: m.host_id(),
                    size: m.size(),
                })
                .collect(),
        }
    };
    let maps = IdMaps {
        uid: convert(linux.uid_mappings(), uid),
        gid: convert(linux.gid_mappings(), gid),
    };
    if !subid::allowed(&maps.uid, uid, subids.map(|s| s.0))
        || !subid::allowed(&maps.gid, gid, subids.map(|s| s.1))
    {
        return Err(RootlessError::ForeignIds { uid, gid });
    }
    if let Some(user) = spec.process().as_ref().map(|p| p.user()) {
        let mapped = |maps: &[subid::IdMap], id: u32| {
            maps.iter().any(|m| {
                id >= m.container && u64::from(id) < u64::from(m.container) + u64::from(m.size)
            })
        };
        if !mapped(&maps.uid, user.uid()) || !mapped(&maps.gid, user.gid()) {
            return Err(RootlessError::UnmappedUser {
                uid: user.uid(),
                gid: user.gid(),
                uids: describe_maps(&maps.uid),
                gids: describe_maps(&maps.gid),
            });
        }
    }
    if let Some(namespaces) = linux.namespaces().clone() {
        linux.set_namespaces(Some(
            namespaces
                .into_iter()
                .filter(|n| n.typ() != LinuxNamespaceType::User)
                .collect(),
        ));
    }
    linux.set_uid_mappings(None).set_gid_mappings(None);

    if let Some(resources) = linux.resources().clone() {
        let limits = describe_limits(&resources);
        if !limits.is_empty() {
            if require_limits {
                return Err(RootlessError::LimitsRequired {
                    uid,
                    dir: dir.to_path_buf(),
                    limits: limits.join(", "),
                });
            }
            tracing::warn!(
                target: "pinc",
                "rootless: cgroups are not delegated to uid {uid} ({} is not writable); not enforcing: {}",
                dir.display(),
                limits.join(", ")
            );
        }
        linux.set_resources(None);
    }
    // No cgroup namespace without real cgroups: the container would see the scratch tree.
    if let Some(namespaces) = linux.namespaces().clone() {
        linux.set_namespaces(Some(
            namespaces
                .into_iter()
                .filter(|n| n.typ() != LinuxNamespaceType::Cgroup)
                .collect(),
        ));
    }
    spec.set_linux(Some(linux));
    if let Some(mounts) = spec.mounts().clone() {
        spec.set_mounts(Some(
            mounts
                .into_iter()
                .filter(|m| !matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2" | "hugetlbfs")))
                .collect(),
        ));
    }
    Ok(maps)
}

/// The id maps of a sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMaps {
    pub uid: Vec<subid::IdMap>,
    pub gid: Vec<subid::IdMap>,
}

impl IdMaps {
    /// Only the caller's own ids, as root.
    pub fn own(uid: u32, gid: u32) -> Self {
        Self {
            uid: subid::maps(uid, None),
            gid: subid::maps(gid, None),
        }
    }
}

fn describe_maps(maps: &[subid::IdMap]) -> String {
    maps.iter()
        .map(|m| match m.size {
            1 => m.container.to_string(),
            n => format!(
                "{}-{}",
                m.container,
                u64::from(m.container) + u64::from(n) - 1
            ),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The cgroup limits a resources section asks for, in words.
fn describe_limits(r: &libcontainer::oci_spec::runtime::LinuxResources) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(m) = r.memory() {
        if m.limit().is_some() || m.reservation().is_some() || m.swap().is_some() {
            out.push("memory".to_string());
        }
    }
    if let Some(c) = r.cpu() {
        if c.shares().is_some() || c.quota().is_some() || c.period().is_some() {
            out.push("cpu shares/quota".to_string());
        }
        if c.cpus().is_some() {
            out.push("cpuset.cpus (kept as affinity)".to_string());
        }
        if c.mems().is_some() {
            out.push("cpuset.mems".to_string());
        }
    }
    if r.pids().is_some() {
        out.push("pids".to_string());
    }
    if r.block_io().is_some() {
        out.push("blkio".to_string());
    }
    if r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()) {
        out.push("hugetlb".to_string());
    }
    if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
        out.push("rdma".to_string());
    }
    out
}

fn write_file(path: &str, text: &str) -> Result<(), RootlessError> {
    fs::write(path, text).map_err(|source| RootlessError::Map {
        path: PathBuf::from(path),
        source,
    })
}

/// Covers /sys/fs/cgroup with a tmpfs so libcontainer's cgroup writes land
/// there, pre-made with the files its v1 manager opens for the container's
/// `cgroups_path` (cgroup.procs everywhere, cpuset.cpus/mems on the way down).
fn scratch_cgroupfs(cgroups_path: &Path) -> Result<(), RootlessError> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let v1: Vec<CgroupMount> = cgroup_mounts(&mountinfo)
        .into_iter()
        .filter(|m| m.controllers.is_some() && m.mount_point.starts_with("/sys/fs/cgroup"))
        .collect();
    let host = |f: &str| {
        fs::read_to_string(Path::new("/sys/fs/cgroup/cpuset").join(f)).unwrap_or_default()
    };
    let (cpus, mems) = (host("cpuset.cpus"), host("cpuset.mems"));
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(RootlessError::Mount)?;
    mount(
        Some("pinc-scratch-cgroup"),
        "/sys/fs/cgroup",
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=755,size=1m"),
    )
    .map_err(RootlessError::Mount)?;
    let relative = cgroups_path.strip_prefix("/").unwrap_or(cgroups_path);
    for m in &v1 {
        let leaf = m.mount_point.join(relative);
        let scratch = |path: &Path, text: &str| {
            fs::write(path, text).map_err(|source| RootlessError::Map {
                path: path.to_path_buf(),
                source,
            })
        };
        fs::create_dir_all(&leaf).map_err(|source| RootlessError::Map {
            path: leaf.clone(),
            source,
        })?;
        scratch(&leaf.join("cgroup.procs"), "")?;
        let is_cpuset = m
            .controllers
            .as_ref()
            .is_some_and(|c| c.iter().any(|c| c == "cpuset"));
        if is_cpuset {
            let mut dir = m.mount_point.clone();
            for part in std::iter::once(None).chain(relative.components().map(Some)) {
                if let Some(part) = part {
                    dir.push(part);
                }
                scratch(&dir.join("cpuset.cpus"), &cpus)?;
                scratch(&dir.join("cpuset.mems"), &mems)?;
            }
        }
    }
    Ok(())
}

/// Enters a new sandbox (for create/run). Must be called single-threaded.
pub fn enter_new(maps: &IdMaps, cgroups_path: &Path) -> Result<(), RootlessError> {
    if maps.uid.len() == 1 && maps.gid.len() == 1 {
        // Only our own ids: no helper needed.
        unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS)
            .map_err(RootlessError::Unshare)?;
        write_file("/proc/self/setgroups", "deny")?;
        write_file("/proc/self/uid_map", &format!("0 {} 1", maps.uid[0].host))?;
        write_file("/proc/self/gid_map", &format!("0 {} 1", maps.gid[0].host))?;
    } else {
        let writer = subid::MapWriter::spawn(&maps.uid, &maps.gid)?;
        unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS)
            .map_err(RootlessError::Unshare)?;
        writer.finish()?;
    }
    scratch_cgroupfs(cgroups_path)
}

/// Uncovers the host's /sys/fs/cgroup again, so that deleting a container from
/// inside the sandbox finds no scratch cgroups to remove.
pub fn leave_scratch() {
    let _ = nix::mount::umount2("/sys/fs/cgroup", nix::mount::MntFlags::MNT_DETACH);
}

/// Joins the sandbox of a running container (for exec and update): its user
/// namespace, then a fresh private mount namespace with the scratch cgroupfs.
pub fn join(init_pid: i32, cgroups_path: &Path) -> Result<(), RootlessError> {
    let path = PathBuf::from(format!("/proc/{init_pid}/ns/user"));
    let file = File::open(&path).map_err(|source| RootlessError::Join {
        path: path.clone(),
        source,
    })?;
    setns(&file, CloneFlags::CLONE_NEWUSER)
        .map_err(|source| RootlessError::Setns { path, source })?;
    unshare(CloneFlags::CLONE_NEWNS).map_err(RootlessError::Unshare)?;
    scratch_cgroupfs(cgroups_path)
}

#[cfg(test)]
mod tests {
    use libcontainer::oci_spec::runtime::{
        LinuxIdMappingBuilder, LinuxMemoryBuilder, LinuxResourcesBuilder,
    };

    use super::*;

    fn rootless_spec(uid: u32) -> Spec {
        let mut spec = Spec::rootless(uid, uid);
        let mut linux = spec.linux().clone().expect("linux");
        linux.set_resources(Some(
            LinuxResourcesBuilder::default()
                .memory(
                    LinuxMemoryBuilder::default()
                        .limit(1 << 20)
                        .build()
                        .expect("mem"),
                )
                .build()
                .expect("res"),
        ));
        spec.set_linux(Some(linux));
        spec
    }

    #[test]
    fn folds_user_namespace_and_drops_limits() {
        let mut spec = rootless_spec(1000);
        adapt_spec(&mut spec, 1000, 1000, Path::new("/x"), false).expect("adapt");
        let linux = spec.linux().as_ref().expect("linux");
        let ns = linux.namespaces().as_ref().expect("ns");
        assert!(ns.iter().all(|n| n.typ() != LinuxNamespaceType::User));
        assert!(linux.uid_mappings().is_none());
        assert!(linux.resources().is_none());
        let mounts = spec.mounts().as_ref().expect("mounts");
        assert!(mounts.iter().all(|m| m.typ().as_deref() != Some("cgroup")));
    }

    #[test]
    fn refuses_limits_when_required() {
        let mut spec = rootless_spec(1000);
        let err = adapt_spec(
            &mut spec,
            1000,
            1000,
            Path::new("/sys/fs/cgroup/memory"),
            true,
        )
        .expect_err("required");
        let msg = err.to_string();
        assert!(
            msg.contains("memory") && msg.contains("/sys/fs/cgroup/memory"),
            "{msg}"
        );
    }

    #[test]
    fn rdma_limits_are_named_when_dropped_or_refused() {
        let mut spec = Spec::rootless(1000, 1000);
        let mut linux = spec.linux().clone().expect("linux");
        let rdma: libcontainer::oci_spec::runtime::LinuxRdma =
            serde_json::from_str(r#"{"hcaHandles": 2}"#).expect("rdma");
        linux.set_resources(Some(
            LinuxResourcesBuilder::default()
                .rdma(
                    [("mlx5_0".to_string(), rdma)]
                        .into_iter()
                        .collect::<std::collections::HashMap<_, _>>(),
                )
                .build()
                .expect("res"),
        ));
        spec.set_linux(Some(linux));
        let err =
            adapt_spec(&mut spec.clone(), 1000, 1000, Path::new("/x"), true).expect_err("required");
        assert!(err.to_string().ends_with("rdma"), "{err}");
        adapt_spec(&mut spec, 1000, 1000, Path::new("/x"), false).expect("dropped");
        assert!(spec.linux().as_ref().expect("linux").resources().is_none());
    }

    #[test]
    fn refuses_foreign_mappings() {
        let mut spec = rootless_spec(1000);
        let mut linux = spec.linux().clone().expect("linux");
        linux.set_uid_mappings(Some(vec![LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(2000u32)
            .size(65536u32)
            .build()
            .expect("map")]));
        spec.set_linux(Some(linux));
        let err = adapt_spec(&mut spec, 1000, 1000, Path::new("/x"), false).expect_err("foreign");
        assert!(
            err.to_string().contains("maps ids that are not yours"),
            "{err}"
        );
    }
}
