//! `create`: bundle -> pipeline -> libcontainer, leaving nothing behind on error.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::process::executor::PincExecutor;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::oci_spec::runtime::{ExecCPUAffinity, Spec};
use libcontainer::syscall::syscall::SyscallType;
use std::error::Error as _;

use pinc_cgroup::mode::{self, cgroup_mounts};
use pinc_cgroup::{affinity, hugetlb, rdma, CgroupMode};
use pinc_cpulist::CpuList;

use crate::error::{Error, Result};
use crate::pipeline::{Context, Pipeline};
use crate::rootless::{self, Mode, RootlessFlag};
use crate::spec::bundle::{self, Bundle};
use crate::state::lock::IdLock;
use crate::state::sidecar::Sidecar;
use crate::{state::id, RuntimeRoot};

/// Everything `create` (and `run`) takes from the command line.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: i32,
    pub no_pivot: bool,
    /// Keep the caller's session keyring instead of `_ses.<id>`.
    pub no_new_keyring: bool,
    pub systemd_cgroup: bool,
    pub rootless: RootlessFlag,
    /// `false` for `run` in the foreground (the caller waits on the container).
    pub detach: bool,
}

/// A created container, as the caller needs it next.
#[derive(Debug)]
pub struct Created {
    pub container: Container,
    pub init_pid: i32,
    pub sidecar: Sidecar,
}

/// The final spec, kept in the container dir when it differs from the bundle's.
pub const FINAL_SPEC: &str = "config.json";

/// Annotation/env that asks for cgroup limits to be enforced or refused.
const REQUIRE_CGROUPS: (&str, &str) = ("pinc.io/require-cgroups", "PINC_REQUIRE_CGROUPS");

/// Reads a boolean request from the spec's annotations, then its process env.
fn requested(spec: &Spec, (annotation, env): (&str, &str)) -> bool {
    let (annotations, env_list) = crate::pipeline::annotations_and_env(spec);
    crate::pipeline::lookup(&annotations, &env_list, annotation, &[env])
        .is_some_and(|(_, v)| matches!(v.trim(), "1" | "true" | "yes" | "on"))
}

/// Gives containers without a cgroupsPath pinc's own default, not libcontainer's
/// ":youki:<id>".
fn default_cgroups_path(spec: &mut Spec, id: &str, systemd: bool) {
    let Some(mut linux) = spec.linux().clone() else {
        return;
    };
    if linux.cgroups_path().is_none() {
        linux.set_cgroups_path(Some(pinc_cgroups_path(id, systemd)));
        spec.set_linux(Some(linux));
    }
}

fn pinc_cgroups_path(id: &str, systemd: bool) -> PathBuf {
    if systemd {
        PathBuf::from(format!("system.slice:pinc:{id}"))
    } else {
        crate::state::reclaim::default_cgroups_path(id)
    }
}

/// Records the affinity in process.execCPUAffinity.final: libcontainer applies
/// it to exec'd processes after they join the container's cgroups (joining a
/// cpuset cgroup would otherwise reset their affinity).
fn keep_affinity_for_exec(spec: &mut Spec, cpus: &CpuList) {
    let Some(mut process) = spec.process().clone() else {
        return;
    };
    if process.exec_cpu_affinity().is_some() {
        return;
    }
    let affinity: Option<ExecCPUAffinity> =
        serde_json::from_value(serde_json::json!({"final": cpus.to_string()})).ok();
    process.set_exec_cpu_affinity(affinity);
    spec.set_process(Some(process));
}

fn spec_cpus(spec: &Spec) -> Option<String> {
    spec.linux()
        .as_ref()?
        .resources()
        .as_ref()?
        .cpu()
        .as_ref()?
        .cpus()
        .clone()
}

/// Creates a container. On any error, no state dir, cgroup, staged spec,
/// pid file or lock file is left behind.
pub fn create(root: &RuntimeRoot, opts: &CreateOptions, pipeline: &Pipeline) -> Result<Created> {
    id::validate(&opts.id)?;
    let Bundle { path: bundle, spec } = bundle::load(&opts.bundle)?;
    crate::spec::validate::spec(&spec, &bundle)?;
    let mode = rootless::decide(opts.rootless);
    // Refuse limits this host cannot enforce before anything exists: the
    // lock, the pipeline's ledger entry, the state dir. (The plan is made
    // again from the final spec, after the pipeline.)
    if !matches!(mode, Mode::Sandbox { .. }) {
        rdma_plan(&spec)?;
    }
    // What dead commands left: an id of a create that died is free again.
    crate::state::reclaim::sweep(root);
    let lock = IdLock::acquire(root, &opts.id)?;
    let dir = root.container_dir(&opts.id);
    if dir.exists() {
        return Err(Error::IdInUse {
            id: opts.id.clone(),
        });
    }
    // Before anything exists: a crash from here on is reclaimed (reclaim.rs).
    let journal = crate::state::reclaim::Journal {
        op: "create".into(),
        cgroups_path: spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().clone())
            .unwrap_or_else(|| pinc_cgroups_path(&opts.id, opts.systemd_cgroup)),
    };
    if let Err(e) = crate::state::reclaim::begin(root, &opts.id, &journal) {
        crate::state::reclaim::end(root, &opts.id);
        lock.remove();
        return Err(e);
    }
    crate::crash::point("create:journaled");
    let pid_file_existed = opts.pid_file.as_ref().is_some_and(|p| p.exists());
    let mut own_cgroups = Vec::new();
    match create_locked(root, opts, pipeline, &bundle, spec, mode, &mut own_cgroups) {
        Ok(created) => {
            crate::crash::point("create:done");
            crate::state::reclaim::end(root, &opts.id);
            Ok(created)
        }
        Err(err) => {
            cleanup(&dir);
            // After cleanup: the container's processes are gone from them.
            for dir in own_cgroups.iter().rev() {
                let _ = fs::remove_dir(dir);
            }
            if let Err(e) = crate::ledger::Ledger::release(root, &opts.id) {
                tracing::warn!(target: "pinc", "failed to release the allocation of {:?}: {e}", opts.id);
            }
            if let (Some(pid_file), false) = (&opts.pid_file, pid_file_existed) {
                let _ = fs::remove_file(pid_file);
            }
            crate::state::reclaim::end(root, &opts.id);
            lock.remove();
            Err(err)
        }
    }
}

/// `own_cgroups` collects the cgroup dirs pinc makes itself (not
/// libcontainer), for `create` to remove if this fails.
fn create_locked(
    root: &RuntimeRoot,
    opts: &CreateOptions,
    pipeline: &Pipeline,
    bundle: &Path,
    spec: Spec,
    mode: Mode,
    own_cgroups: &mut Vec<PathBuf>,
) -> Result<Created> {
    let loaded = spec.clone();
    let ctx = Context {
        id: &opts.id,
        bundle,
        root: root.path(),
        rootless: mode != Mode::Root,
    };
    let mut spec = pipeline.run(spec, &ctx)?;
    crate::crash::point("create:placed");
    crate::spec::normalize::spec(&mut spec);
    crate::spec::normalize::create_cwd(&spec)?;
    let stages_changed = spec != loaded;
    default_cgroups_path(&mut spec, &opts.id, opts.systemd_cgroup);
    // cgroupfs paths only: a systemd unit's dirs are named by systemd.
    if mode == Mode::Root && !opts.systemd_cgroup {
        crate::mounts::cgroup_mount::bind_v1_hierarchies(&mut spec, || {
            crate::mounts::cgroup_mount::HostCgroups::read(Path::new("/proc"))
        });
    }

    let hugetlb = hugetlb_plan(&mut spec)?;
    // The sandbox drops every cgroup limit (see rootless::adapt_spec).
    let rdma = match mode {
        Mode::Sandbox { .. } => None,
        _ => rdma_plan(&spec)?,
    };

    // Keep the caller's affinity unless the spec pins CPUs: joining a cpuset
    // cgroup resets affinity, which would undo Slurm's or mpirun's binding.
    let planned_cpus = spec_cpus(&spec);
    let affinity_target: Option<CpuList> = match &planned_cpus {
        None => Some(affinity::get(0)?),
        Some(cpus) if matches!(mode, Mode::Sandbox { .. }) => cpus.parse().ok(),
        Some(_) => None,
    };
    if let Some(cpus) = &affinity_target {
        keep_affinity_for_exec(&mut spec, cpus);
    }
    let cgroups_path = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());

    // Before the sandbox's user namespace: exec joins the keyring by name
    // from the same namespace and uid (see join_session_keyring).
    if !opts.no_new_keyring {
        crate::process::executor::join_session_keyring(&opts.id, true)?;
    }

    let sandbox = if let Mode::Sandbox { dir } = &mode {
        let (uid, gid) = (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        );
        let require = requested(&spec, REQUIRE_CGROUPS);
        let maps = rootless::adapt_spec(&mut spec, uid, gid, dir, require)?;
        rootless::enter_new(&maps, cgroups_path.as_deref().unwrap_or(Path::new("")))?;
        true
    } else {
        false
    };

    if let Some(root_path) = spec.root().as_ref().map(|r| bundle.join(r.path())) {
        let in_use = || {
            let mine = root_path.canonicalize().ok();
            crate::container::list::list(root)
                .iter()
                .any(|c| c.status != "stopped" && c.rootfs.canonicalize().ok() == mine)
        };
        crate::mounts::devlinks::clear(&spec, &root_path, in_use)?;
    }

    // libcontainer reads <bundle>/config.json; stage the final spec when it
    // differs from the caller's file, and give the state the caller's bundle.
    let mut executor = PincExecutor::default();
    let staged = if spec == loaded {
        None
    } else {
        // Hooks run during create would otherwise see the staging dir.
        crate::process::hook_relay::wrap(&mut spec, bundle)?;
        executor.start_hooks =
            crate::process::hook_relay::take_start_container(&mut spec, &opts.id, bundle);
        let dir = stage_spec(root, &opts.id, &spec)?;
        crate::crash::point("create:staged");
        Some(dir)
    };
    let result = build(
        root,
        opts,
        staged.as_deref().unwrap_or(bundle),
        bundle,
        executor,
    );
    let mut container = match result {
        Ok(c) => {
            crate::crash::point("create:built");
            c
        }
        Err(e) => {
            if let Some(dir) = &staged {
                let _ = fs::remove_dir_all(dir);
            }
            return Err(e);
        }
    };
    if let Some(dir) = &staged {
        // Keep the final spec beside the state: exec reads it (see exec.rs).
        let kept = container.root.join(FINAL_SPEC);
        let moved = fs::rename(dir.join("config.json"), &kept);
        let _ = fs::remove_dir_all(dir);
        moved.map_err(Error::io("failed to keep the final spec", &kept))?;
        container.state.bundle = bundle.to_path_buf();
        container.save().map_err(Error::lib(
            "failed to record the bundle in the container state",
        ))?;
        crate::crash::point("create:kept");
    }
    let init_pid = container
        .pid()
        .map(|p| p.as_raw())
        .ok_or_else(|| Error::Unsupported("libcontainer returned no init pid".into()))?;
    if let Some(cpus) = &affinity_target {
        affinity::set(init_pid, cpus)?;
    }
    match crate::mounts::propagation::apply(init_pid, &crate::mounts::propagation::wanted(&spec)) {
        Ok(()) => {}
        Err(e) if mode == Mode::Root => return Err(e),
        // Without root, joining the init's mount namespace may be refused.
        Err(e) => tracing::warn!(target: "pinc", "mount propagation left as is: {e}"),
    }
    let cgroup_path = cgroups_path.clone().unwrap_or_default();
    let hugetlb_v2 = match &hugetlb {
        Some(plan) => {
            if plan.own_cgroup {
                own_cgroups.push(hugetlb::v2_dir(&plan.mount, &cgroup_path));
            }
            apply_hugetlb(plan, &cgroup_path, init_pid)?
        }
        None => None,
    };
    let rdma_mount = match &rdma {
        Some(plan) => {
            if plan.own_cgroup {
                own_cgroups.push(rdma::cgroup_dir(&plan.mount, &cgroup_path));
            }
            apply_rdma(plan, &cgroup_path, opts.systemd_cgroup, init_pid)?
        }
        None => None,
    };
    // libcontainer never passes disableOOMKiller on to libcgroups.
    if !sandbox && oom_killer_disabled(&spec) {
        pinc_cgroup::oom::disable_v1(Path::new("/"), init_pid)?;
    }
    crate::crash::point("create:applied");
    let sidecar = Sidecar {
        sandbox,
        final_spec: staged.is_some(),
        no_new_keyring: opts.no_new_keyring,
        rootfs: spec.root().as_ref().map(|r| r.path().clone()),
        cgroups_path,
        hugetlb_v2,
        rdma_mount,
        affinity: affinity_target.map(|c| c.to_string()),
        stages: if stages_changed {
            pipeline
                .stage_names()
                .iter()
                .map(|s| s.to_string())
                .collect()
        } else {
            Vec::new()
        },
    };
    sidecar.save(&container.root)?;
    crate::state::state_copy::keep(&container.root);
    Ok(Created {
        container,
        init_pid,
        sidecar,
    })
}

fn oom_killer_disabled(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.memory().as_ref())
        .and_then(|m| m.disable_oom_killer())
        .unwrap_or(false)
}

/// What pinc must do itself for hugepage limits.
struct HugetlbPlan {
    /// The cgroup2 mount holding the hugetlb controller.
    mount: PathBuf,
    limits: Vec<hugetlb::Limit>,
    /// libcontainer runs its v1 manager here (hybrid host): pinc makes the
    /// hugetlb cgroup itself. Otherwise (pure v2) pinc only adds reservations.
    own_cgroup: bool,
}

/// Decides who applies hugepage limits; on hybrid hosts removes them from
/// the spec libcontainer sees (its v1 manager refuses a controller that is
/// not a v1 hierarchy). v1 hosts need nothing: libcgroups writes limits and
/// reservations there.
fn hugetlb_plan(spec: &mut Spec) -> Result<Option<HugetlbPlan>> {
    let Some(mut linux) = spec.linux().clone() else {
        return Ok(None);
    };
    let Some(mut resources) = linux.resources().clone() else {
        return Ok(None);
    };
    let requested = resources.hugepage_limits().clone().unwrap_or_default();
    if requested.is_empty() {
        return Ok(None);
    }
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")
        .map_err(Error::io("failed to read", "/proc/self/mountinfo"))?;
    let mounts = cgroup_mounts(&mountinfo);
    let mount = match hugetlb::locate(Path::new("/"), &mounts) {
        hugetlb::Location::V1 => return Ok(None),
        hugetlb::Location::V2(mount) => mount,
        hugetlb::Location::None => {
            return Err(Error::Unsupported(
                "hugepage limits requested, but this host has no hugetlb cgroup controller".into(),
            ))
        }
    };
    let own_cgroup = mode::detect(&mounts) != CgroupMode::Unified;
    if own_cgroup {
        resources.set_hugepage_limits(None);
        linux.set_resources(Some(resources));
        spec.set_linux(Some(linux));
    }
    let limits = requested
        .iter()
        .map(|l| hugetlb::Limit {
            page_size: l.page_size().clone(),
            bytes: l.limit().max(0) as u64,
        })
        .collect();
    Ok(Some(HugetlbPlan {
        mount,
        limits,
        own_cgroup,
    }))
}

/// Applies hugepage limits with reservations; returns the cgroup2 mount when
/// pinc made the container's hugetlb cgroup (to remove it on delete).
fn apply_hugetlb(plan: &HugetlbPlan, cgroup_path: &Path, init_pid: i32) -> Result<Option<PathBuf>> {
    let unsupported = |e: hugetlb::HugetlbError| {
        Error::Unsupported(format!(
            "hugetlb: {e}: {}",
            e.source().map(|s| s.to_string()).unwrap_or_default()
        ))
    };
    if plan.own_cgroup {
        if let Err(e) = hugetlb::apply_v2(&plan.mount, cgroup_path, &plan.limits, init_pid) {
            let _ = hugetlb::remove_v2(&plan.mount, cgroup_path);
            return Err(unsupported(e));
        }
        Ok(Some(plan.mount.clone()))
    } else {
        hugetlb::write_v2_limits(&hugetlb::v2_dir(&plan.mount, cgroup_path), &plan.limits)
            .map_err(unsupported)?;
        Ok(None)
    }
}

/// What pinc must do itself for RDMA limits (libcgroups ignores them).
struct RdmaPlan {
    /// The v1 rdma hierarchy or the cgroup2 mount holding the controller.
    mount: PathBuf,
    v1: bool,
    limits: Vec<rdma::Limit>,
    /// pinc makes the container's rdma cgroup (a v1 hierarchy, or cgroup2 on
    /// a hybrid host); otherwise libcontainer made it (unified host).
    own_cgroup: bool,
}

/// One line for an rdma error, its cause included (the CLI prints one line).
fn rdma_error(e: rdma::RdmaError) -> Error {
    match e.source() {
        Some(cause) => Error::Unsupported(format!("rdma: {e}: {cause}")),
        None => Error::Unsupported(e.to_string()),
    }
}

/// Checks `linux.resources.rdma` and finds the controller to apply it with;
/// fails when the host has none. `None` when the spec sets no RDMA limit.
fn rdma_plan(spec: &Spec) -> Result<Option<RdmaPlan>> {
    let Some(requested) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.rdma().as_ref())
        .filter(|r| !r.is_empty())
    else {
        return Ok(None);
    };
    // Sorted: rdma.max is written in a stable order.
    let mut hcas: Vec<_> = requested.iter().collect();
    hcas.sort_by(|a, b| a.0.cmp(b.0));
    let limits = hcas
        .into_iter()
        .map(|(hca, r)| rdma::Limit::new(hca, r.hca_handles(), r.hca_objects()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(rdma_error)?;
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")
        .map_err(Error::io("failed to read", "/proc/self/mountinfo"))?;
    let mounts = cgroup_mounts(&mountinfo);
    let (mount, v1) = match rdma::locate(Path::new("/"), &mounts) {
        rdma::Location::V1(mount) => (mount, true),
        rdma::Location::V2(mount) => (mount, false),
        rdma::Location::Missing => return Err(rdma_error(rdma::missing(Path::new("/")))),
    };
    let own_cgroup = v1 || mode::detect(&mounts) != CgroupMode::Unified;
    Ok(Some(RdmaPlan {
        mount,
        v1,
        limits,
        own_cgroup,
    }))
}

/// Applies RDMA limits; returns the mount when pinc made the container's
/// rdma cgroup (to remove it on delete).
fn apply_rdma(
    plan: &RdmaPlan,
    cgroup_path: &Path,
    systemd: bool,
    init_pid: i32,
) -> Result<Option<PathBuf>> {
    if plan.own_cgroup {
        let applied = if plan.v1 {
            rdma::apply_v1(&plan.mount, cgroup_path, &plan.limits, init_pid)
        } else {
            rdma::apply_v2(&plan.mount, cgroup_path, &plan.limits, Some(init_pid))
        };
        if let Err(e) = applied {
            let _ = rdma::remove(&plan.mount, cgroup_path);
            return Err(rdma_error(e));
        }
        return Ok(Some(plan.mount.clone()));
    }
    // Unified host: libcontainer's cgroup, which the systemd driver names
    // after a slice and scope, not after cgroupsPath (as libcgroups decides).
    let path = if systemd && !cgroup_path.is_absolute() {
        rdma::unified_cgroup_of(Path::new("/"), init_pid).map_err(rdma_error)?
    } else {
        cgroup_path.to_path_buf()
    };
    rdma::apply_v2(&plan.mount, &path, &plan.limits, None).map_err(rdma_error)?;
    Ok(None)
}

/// Writes the final spec to a private staging bundle.
fn stage_spec(root: &RuntimeRoot, id: &str, spec: &Spec) -> Result<PathBuf> {
    let dir = root.private_dir("staging")?.join(id);
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .or_else(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Ok(()),
            _ => Err(e),
        })
        .map_err(Error::io("failed to create the staging bundle", &dir))?;
    let path = dir.join("config.json");
    let json = serde_json::to_vec(spec).map_err(|source| Error::Json {
        what: "final spec".into(),
        source,
    })?;
    fs::write(&path, json).map_err(Error::io("failed to write the final spec", &path))?;
    Ok(dir)
}

fn build(
    root: &RuntimeRoot,
    opts: &CreateOptions,
    spec_dir: &Path,
    bundle: &Path,
    executor: PincExecutor,
) -> Result<Container> {
    // Relative mount sources are relative to the bundle, as in runc.
    std::env::set_current_dir(bundle).map_err(Error::io("failed to enter the bundle", bundle))?;
    ContainerBuilder::new(opts.id.clone(), SyscallType::default())
        .with_executor(executor)
        .with_root_path(root.path())
        .map_err(Error::lib("invalid runtime root"))?
        .with_pid_file(opts.pid_file.as_ref())
        .map_err(Error::lib("invalid pid file"))?
        .with_console_socket(opts.console_socket.as_ref())
        .with_preserved_fds(opts.preserve_fds)
        .validate_id()
        .map_err(Error::lib("invalid container id"))?
        .as_init(spec_dir)
        .with_systemd(opts.systemd_cgroup)
        .with_detach(opts.detach)
        .with_no_pivot(opts.no_pivot)
        .build()
        .map_err(Error::lib(format!(
            "failed to create container {:?}",
            opts.id
        )))
}

/// Removes a half-made container: its processes, cgroups and state dir.
pub(crate) fn cleanup(dir: &Path) {
    if !dir.exists() {
        return;
    }
    if let Ok(mut container) = Container::load(dir.to_path_buf()) {
        let _ = container.delete(true);
    }
    let _ = fs::remove_dir_all(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn require_cgroups_reads_annotation_then_env() {
        let mut spec = Spec::default();
        assert!(!requested(&spec, REQUIRE_CGROUPS));
        let mut process = spec.process().clone().expect("process");
        process.set_env(Some(vec![
            "PINC_REQUIRE_CGROUPS=0".into(),
            "PINC_REQUIRE_CGROUPS=1".into(),
        ]));
        spec.set_process(Some(process));
        assert!(requested(&spec, REQUIRE_CGROUPS), "last env entry wins");
        spec.set_annotations(Some(
            [("pinc.io/require-cgroups".to_string(), "false".to_string())].into(),
        ));
        assert!(
            !requested(&spec, REQUIRE_CGROUPS),
            "annotation wins over env"
        );
    }

    fn with_rdma(json: serde_json::Value) -> Spec {
        let mut spec = Spec::default();
        let mut linux = spec.linux().clone().expect("linux");
        let resources =
            serde_json::from_value(serde_json::json!({ "rdma": json })).expect("resources");
        linux.set_resources(Some(resources));
        spec.set_linux(Some(linux));
        spec
    }

    #[test]
    fn rdma_plan_needs_limits_and_plain_hca_names() {
        assert!(rdma_plan(&Spec::default()).expect("no rdma").is_none());
        assert!(rdma_plan(&with_rdma(serde_json::json!({})))
            .expect("empty rdma")
            .is_none());
        // Names are checked before the host is: the same error everywhere.
        let err = rdma_plan(&with_rdma(
            serde_json::json!({"mlx5_0": {"hcaHandles": 1}, "../x": {}}),
        ))
        .err()
        .expect("bad name");
        assert!(
            err.to_string().contains("invalid HCA name \"../x\""),
            "{err}"
        );
    }

    #[test]
    fn default_cgroups_path_is_pincs() {
        let mut spec = Spec::default();
        default_cgroups_path(&mut spec, "c1", false);
        let path = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
        assert_eq!(path, Some(PathBuf::from("/pinc/c1")));
        let mut spec = Spec::default();
        default_cgroups_path(&mut spec, "c1", true);
        let path = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
        assert_eq!(path, Some(PathBuf::from("system.slice:pinc:c1")));
    }
}
