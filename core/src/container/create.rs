//! `create`: bundle -> pipeline -> libcontainer, leaving nothing behind on error.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::oci_spec::runtime::Spec;
use libcontainer::syscall::syscall::SyscallType;
use pinc_cgroup::{affinity, hugetlb, rdma};

use crate::cgroup_plan;
use crate::error::{Error, Result};
use crate::pipeline::{Context, Facts, HostRoots, Outcome, Pipeline, PipelineError, Request};
use crate::process::executor::PincExecutor;
use crate::rootless::{self, Mode, RootlessFlag};
use crate::spec::bundle::{self, Bundle};
use crate::stages::finalize::default_cgroups_path;
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

/// What [`create_locked`] works from.
struct Input<'a> {
    root: &'a RuntimeRoot,
    opts: &'a CreateOptions,
    pipeline: &'a Pipeline,
    /// The caller's bundle (canonical) and its spec.
    bundle: &'a Path,
    spec: Spec,
    request: Request,
    mode: Mode,
    host: HostRoots,
}

impl Input<'_> {
    fn ctx(&self) -> Context<'_> {
        Context {
            id: &self.opts.id,
            bundle: self.bundle,
            root: self.root,
            mode: &self.mode,
            systemd_cgroup: self.opts.systemd_cgroup,
            request: &self.request,
            host: &self.host,
        }
    }
}

/// Creates a container. On any error, no state dir, cgroup, staged spec,
/// pid file or lock file is left behind.
pub fn create(root: &RuntimeRoot, opts: &CreateOptions, pipeline: &Pipeline) -> Result<Created> {
    id::validate(&opts.id)?;
    let Bundle { path: bundle, spec } = bundle::load(&opts.bundle)?;
    crate::spec::validate::spec(&spec, &bundle)?;
    let request = Request::read(&spec).map_err(PipelineError::from)?;
    let mode = rootless::decide(opts.rootless);
    let host = HostRoots::host();
    // Refuse limits this host cannot enforce before anything exists: the
    // lock, the pipeline's ledger entry, the state dir. (The plan is made
    // again from the final spec, after the pipeline.)
    if !matches!(mode, Mode::Sandbox { .. }) {
        cgroup_plan::rdma_plan(&spec, &host)?;
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
            .unwrap_or_else(|| default_cgroups_path(&opts.id, opts.systemd_cgroup)),
    };
    if let Err(e) = crate::state::reclaim::begin(root, &opts.id, &journal) {
        crate::state::reclaim::end(root, &opts.id);
        lock.remove();
        return Err(e);
    }
    crate::crash::point("create:journaled");
    let pid_file_existed = opts.pid_file.as_ref().is_some_and(|p| p.exists());
    let mut own_cgroups = Vec::new();
    let input = Input {
        root,
        opts,
        pipeline,
        bundle: &bundle,
        spec,
        request,
        mode,
        host,
    };
    match create_locked(&input, &mut own_cgroups) {
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

/// The final spec: the caller's pipeline, normalisation, then the stages
/// every container gets; with the facts they left and the stages that
/// changed the spec.
fn final_spec(input: &Input<'_>) -> Result<Outcome> {
    let ctx = input.ctx();
    let hpc = input.pipeline.run(input.spec.clone(), &ctx)?;
    crate::crash::point("create:placed");
    let mut spec = hpc.spec;
    crate::spec::normalize::spec(&mut spec);
    crate::spec::normalize::create_cwd(&spec)?;
    let mut finalized = crate::stages::finalize().run(spec, &ctx)?;
    let mut changed_by = hpc.changed_by;
    changed_by.append(&mut finalized.changed_by);
    finalized.changed_by = changed_by;
    Ok(finalized)
}

/// Stages the final spec when it differs from the caller's file (libcontainer
/// reads <bundle>/config.json) and builds the container from it; the state
/// gets the caller's bundle. Returns the container and whether the spec
/// was staged.
fn build_container(input: &Input<'_>, spec: &mut Spec) -> Result<(Container, bool)> {
    let (root, opts, bundle) = (input.root, input.opts, input.bundle);
    let mut executor = PincExecutor::default();
    let staged = if *spec == input.spec {
        None
    } else {
        // Hooks run during create would otherwise see the staging dir.
        crate::process::hook_relay::wrap(spec, bundle)?;
        executor.start_hooks =
            crate::process::hook_relay::take_start_container(spec, &opts.id, bundle);
        let dir = stage_spec(root, &opts.id, spec)?;
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
    Ok((container, staged.is_some()))
}

/// What pinc applies itself once the init exists, and the mounts where it
/// made cgroups of its own (hugetlb, rdma), for the sidecar.
struct Applied {
    hugetlb_v2: Option<PathBuf>,
    rdma_mount: Option<PathBuf>,
}

fn apply_after_init(
    input: &Input<'_>,
    spec: &Spec,
    facts: &Facts,
    init_pid: i32,
    own_cgroups: &mut Vec<PathBuf>,
) -> Result<Applied> {
    if let Some(cpus) = &facts.keep_affinity {
        affinity::set(init_pid, cpus)?;
    }
    match crate::mounts::propagation::apply(init_pid, &crate::mounts::propagation::wanted(spec)) {
        Ok(()) => {}
        Err(e) if input.mode == Mode::Root => return Err(e),
        // Without root, joining the init's mount namespace may be refused.
        Err(e) => tracing::warn!(target: "pinc", "mount propagation left as is: {e}"),
    }
    let cgroup_path = cgroups_path(spec).unwrap_or_default();
    let hugetlb_v2 = match &facts.hugetlb {
        Some(plan) => {
            if plan.own_cgroup {
                own_cgroups.push(hugetlb::v2_dir(&plan.mount, &cgroup_path));
            }
            cgroup_plan::apply_hugetlb(plan, &cgroup_path, init_pid)?
        }
        None => None,
    };
    let rdma_mount = match &facts.rdma {
        Some(plan) => {
            if plan.own_cgroup {
                own_cgroups.push(rdma::cgroup_dir(&plan.mount, &cgroup_path));
            }
            let systemd = input.opts.systemd_cgroup;
            cgroup_plan::apply_rdma(plan, &input.host, &cgroup_path, systemd, init_pid)?
        }
        None => None,
    };
    // libcontainer never passes disableOOMKiller on to libcgroups.
    if facts.id_maps.is_none() && oom_killer_disabled(spec) {
        pinc_cgroup::oom::disable_v1(&input.host.fs, init_pid)?;
    }
    Ok(Applied {
        hugetlb_v2,
        rdma_mount,
    })
}

fn cgroups_path(spec: &Spec) -> Option<PathBuf> {
    spec.linux().as_ref().and_then(|l| l.cgroups_path().clone())
}

/// `own_cgroups` collects the cgroup dirs pinc makes itself (not
/// libcontainer), for `create` to remove if this fails.
fn create_locked(input: &Input<'_>, own_cgroups: &mut Vec<PathBuf>) -> Result<Created> {
    let opts = input.opts;
    let Outcome {
        mut spec,
        facts,
        changed_by,
    } = final_spec(input)?;
    // Before the sandbox's user namespace: exec joins the keyring by name
    // from the same namespace and uid (see join_session_keyring).
    if !opts.no_new_keyring {
        crate::process::executor::join_session_keyring(&opts.id, true)?;
    }
    if let Some(maps) = &facts.id_maps {
        let path = cgroups_path(&spec).unwrap_or_default();
        rootless::enter_new(maps, &path)?;
    }
    if let Some(root_path) = spec.root().as_ref().map(|r| input.bundle.join(r.path())) {
        let in_use = || {
            let mine = root_path.canonicalize().ok();
            crate::container::list::list(input.root)
                .iter()
                .any(|c| c.status != "stopped" && c.rootfs.canonicalize().ok() == mine)
        };
        crate::mounts::devlinks::clear(&spec, &root_path, in_use)?;
    }
    let (container, staged) = build_container(input, &mut spec)?;
    let init_pid = container
        .pid()
        .map(|p| p.as_raw())
        .ok_or(Error::NoInitPid)?;
    let applied = apply_after_init(input, &spec, &facts, init_pid, own_cgroups)?;
    crate::crash::point("create:applied");
    let sidecar = Sidecar {
        sandbox: facts.id_maps.is_some(),
        final_spec: staged,
        no_new_keyring: opts.no_new_keyring,
        rootfs: spec.root().as_ref().map(|r| r.path().clone()),
        cgroups_path: cgroups_path(&spec),
        hugetlb_v2: applied.hugetlb_v2,
        rdma_mount: applied.rdma_mount,
        affinity: facts.keep_affinity.map(|c| c.to_string()),
        stages: changed_by.iter().map(|s| s.to_string()).collect(),
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
