//! The devices stage: GPUs (`pinc.io/gpus`, `PINC_GPUS`, or for
//! compatibility `NVIDIA_VISIBLE_DEVICES`), RDMA HCAs (`pinc.io/rdma`,
//! `PINC_RDMA`) and CDI devices (`cdi.k8s.io/*` annotations) become device
//! nodes, cgroup rules, mounts and hooks in the spec. Only devices that
//! discovery found, or that an admin's CDI spec describes, can be named:
//! nothing in a container's spec can point pinc at an arbitrary host path.
//!
//! Discovery reads procfs, sysfs, /dev and the ld cache under a root: "/"
//! normally, or the runtime's own `PINC_DEVICE_ROOT` (a fixture tree, for
//! tests on machines without GPUs or HCAs). The caller's environment (not
//! the container's) also supplies the Slurm allocation and the memlock limit.
//!
//! The chosen devices' PCI addresses ([`Injected::near`]) are what the
//! placement stage, which runs next, places the container near.
//!
//! pinc runs this as a stage of its pipeline; `pinc-hook precreate` runs it
//! for runc and crun through podman's hooks.d.

mod edits;
mod error;
mod gpus;
mod rdma;
mod slurm;

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use pinc_request::Request;

use crate::cdi;
use crate::memlock::Memlock;

pub use error::DevicesError;
pub use gpus::nvml_library;
pub use slurm::SlurmGpus;

pub struct DevicesStage {
    /// Where procfs, sysfs, /dev and the ld cache are read from.
    root: PathBuf,
    /// CDI spec folders, lowest priority first.
    cdi_dirs: Vec<PathBuf>,
    /// The `pinc-hook` binary, for the ld-cache hook (`PINC_HOOK`; else
    /// looked up when needed).
    hook: Option<PathBuf>,
    /// The caller's Slurm GPU allocation, if any.
    slurm: Option<SlurmGpus>,
    /// The caller's memlock limit (read when an HCA is injected, if unset).
    memlock: Option<Memlock>,
}

/// What the stage added, for logs and the placement stage.
#[derive(Debug, Default)]
pub struct Injected {
    pub devices: Vec<PathBuf>,
    pub mounts: Vec<PathBuf>,
    pub gpus: Vec<String>,
    pub hcas: Vec<String>,
    pub cdi: Vec<String>,
    /// PCI addresses (or names) of the chosen GPUs and HCAs.
    pub near: Vec<String>,
}

impl DevicesStage {
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            cdi_dirs: cdi::default_dirs(),
            hook: None,
            slurm: None,
            memlock: None,
        }
    }

    /// The `pinc-hook` binary, if installed.
    fn hook(&self) -> Option<PathBuf> {
        self.hook.clone().or_else(find_hook)
    }

    fn memlock(&self) -> Memlock {
        self.memlock.unwrap_or_else(Memlock::of_caller)
    }

    /// Configured from the runtime's own environment: `PINC_DEVICE_ROOT`
    /// (else "/"), `PINC_CDI_SPEC_DIRS` (colon-separated, else /etc/cdi and
    /// /var/run/cdi), `PINC_HOOK` (else `pinc-hook` beside this binary or on
    /// PATH), the Slurm job's GPUs and the memlock limit.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let mut stage =
            Self::new(var("PINC_DEVICE_ROOT").map_or_else(|| PathBuf::from("/"), PathBuf::from));
        if let Some(dirs) = var("PINC_CDI_SPEC_DIRS") {
            stage.cdi_dirs = std::env::split_paths(&dirs).collect();
        }
        // Only cheap reads here: this runs for every create.
        stage.hook = var("PINC_HOOK").map(PathBuf::from);
        stage.slurm = SlurmGpus::from_env(var);
        stage
    }

    /// Gives the container the devices `request` asks for, and reports
    /// what it added.
    pub fn inject(
        &self,
        spec: &mut Spec,
        request: &Request,
        rootless: bool,
    ) -> Result<Injected, DevicesError> {
        let mut out = Injected::default();
        if let Some(ask) = &request.gpus {
            let env = spec
                .process()
                .as_ref()
                .and_then(|p| p.env().clone())
                .unwrap_or_default();
            gpus::inject(
                self,
                spec,
                &ask.from,
                &ask.selection,
                &env,
                rootless,
                &mut out,
            )?;
        }
        if let Some(ask) = &request.rdma {
            rdma::inject(self, spec, &ask.from, &ask.selection, rootless, &mut out)?;
        }
        if !request.cdi.is_empty() {
            if rootless {
                return Err(DevicesError::CdiRootless);
            }
            let registry = cdi::Registry::load(&self.cdi_dirs)?;
            // CDI specs name real host paths: no device root applies.
            let applied = registry.apply(spec, &request.cdi, Path::new("/"))?;
            tracing::debug!(target: "pinc", ?applied, "CDI edits");
            out.cdi = request.cdi.clone();
        }
        Ok(out)
    }
}

/// `pinc-hook` installed beside the pinc binary, else on PATH.
fn find_hook() -> Option<PathBuf> {
    // PINC_EXE: where pinc was installed, set when it re-executed itself
    // from a sealed copy (whose /proc/self/exe says nothing useful).
    let exe = std::env::var_os("PINC_EXE")
        .map(PathBuf::from)
        .or_else(|| std::fs::read_link("/proc/self/exe").ok());
    let beside = exe.and_then(|exe| exe.parent().map(|d| d.join("pinc-hook")));
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("pinc-hook"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    beside
        .into_iter()
        .chain(on_path)
        .find(|p: &PathBuf| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_ok() && path.is_file()
}
