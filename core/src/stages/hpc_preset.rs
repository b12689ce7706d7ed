//! The MPI-friendly preset (`pinc.io/hpc=true` / `PINC_HPC=1`): an MPI
//! job's ranks, one container each, must reach each other the way ranks in
//! plain processes do.
//!
//! - host network namespace (the fabric, TCP wire-up, the PMIx server);
//! - host IPC namespace and the host's /dev/shm (shared-memory transports
//!   between ranks on one node: vader/sm, CMA, XPMEM rendezvous);
//! - RLIMIT_MEMLOCK unlimited where the caller may raise it (registered
//!   memory), else the caller's hard limit with one warning;
//! - the launcher's PMI/PMIx/MPI variables from pinc's own environment
//!   (`mpirun ... pinc run` gives each rank its own), and the PMIx server's
//!   rendezvous folders bind-mounted at their paths.

use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::{LinuxNamespaceType, Mount, Spec};

use crate::pipeline::{Context, Facts, Stage, StageError};
use pinc_devices::memlock::{self, Memlock};

/// Environment passed through from the launcher, by prefix.
const PASSED_PREFIXES: [&str; 9] = [
    "PMI_", "PMIX_", "OMPI_", "PRTE_", "I_MPI_", "HYDRA_", "HYDI_", "MPICH_", "MV2_",
];

/// PMIx variables naming the server's rendezvous folders.
const PMIX_DIRS: [&str; 2] = ["PMIX_SERVER_TMPDIR", "PMIX_SYSTEM_TMPDIR"];

pub struct HpcPresetStage {
    /// The launcher's environment; `None`: pinc's own, read only when the
    /// preset is asked for (this stage runs on every create).
    env: Option<Vec<(String, String)>>,
    memlock: Option<Memlock>,
}

impl HpcPresetStage {
    pub fn from_env() -> Self {
        Self {
            env: None,
            memlock: None,
        }
    }

    /// A stage over a given launcher environment and memlock limit (tests).
    pub fn new(env: Vec<(String, String)>, memlock: Memlock) -> Self {
        Self {
            env: Some(env),
            memlock: Some(memlock),
        }
    }
}

impl Stage for HpcPresetStage {
    fn name(&self) -> &'static str {
        "hpc-preset"
    }

    fn apply(&self, spec: &mut Spec, ctx: &Context<'_>, _: &mut Facts) -> Result<(), StageError> {
        if !ctx.request.hpc {
            return Ok(());
        }
        host_namespaces(spec);
        host_shm(spec);
        memlock::apply(spec, self.memlock.unwrap_or_else(Memlock::of_caller));
        let env = self
            .env
            .clone()
            .unwrap_or_else(|| std::env::vars().collect());
        pass_environment(spec, &env);
        pmix_dirs(spec, &env);
        tracing::info!(target: "pinc", "hpc preset: host network and IPC, host /dev/shm, memlock, PMI environment");
        Ok(())
    }
}

fn host_namespaces(spec: &mut Spec) {
    let Some(mut linux) = spec.linux().clone() else {
        return;
    };
    if let Some(namespaces) = linux.namespaces().clone() {
        linux.set_namespaces(Some(
            namespaces
                .into_iter()
                .filter(|n| {
                    !matches!(
                        n.typ(),
                        LinuxNamespaceType::Network | LinuxNamespaceType::Ipc
                    )
                })
                .collect(),
        ));
    }
    spec.set_linux(Some(linux));
}

fn bind(source: &Path, dest: &Path, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(dest.to_path_buf())
        .set_typ(Some("bind".to_string()))
        .set_source(Some(source.to_path_buf()))
        .set_options(Some(options.iter().map(|o| o.to_string()).collect()));
    m
}

/// The host's /dev/shm in place of the container's private tmpfs.
fn host_shm(spec: &mut Spec) {
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    let shm = bind(
        Path::new("/dev/shm"),
        Path::new("/dev/shm"),
        &["rbind", "nosuid", "nodev"],
    );
    match mounts
        .iter_mut()
        .find(|m| m.destination() == Path::new("/dev/shm"))
    {
        Some(m) => *m = shm,
        None => mounts.push(shm),
    }
    spec.set_mounts(Some(mounts));
}

/// The launcher's MPI variables, unless the spec sets the same name.
fn pass_environment(spec: &mut Spec, launcher: &[(String, String)]) {
    let Some(mut process) = spec.process().clone() else {
        return;
    };
    let mut env = process.env().clone().unwrap_or_default();
    let set = |env: &[String], k: &str| {
        env.iter()
            .any(|kv| kv.split_once('=').is_some_and(|(name, _)| name == k))
    };
    for (k, v) in launcher {
        if PASSED_PREFIXES.iter().any(|p| k.starts_with(p)) && !set(&env, k) {
            env.push(format!("{k}={v}"));
        }
    }
    process.set_env(Some(env));
    spec.set_process(Some(process));
}

/// The PMIx server's folders (its sockets), at the same paths.
fn pmix_dirs(spec: &mut Spec, launcher: &[(String, String)]) {
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    for var in PMIX_DIRS {
        let Some(dir) = launcher
            .iter()
            .find(|(k, _)| k == var)
            .map(|(_, v)| PathBuf::from(v))
        else {
            continue;
        };
        if !dir.is_absolute() || !dir.is_dir() || mounts.iter().any(|m| m.destination() == &dir) {
            continue;
        }
        mounts.push(bind(&dir, &dir, &["rbind", "nosuid", "nodev"]));
    }
    spec.set_mounts(Some(mounts));
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn spec_with(annotation: Option<&str>) -> Spec {
        let mut spec = Spec::default();
        if let Some(v) = annotation {
            spec.set_annotations(Some(HashMap::from([(
                "pinc.io/hpc".to_string(),
                v.to_string(),
            )])));
        }
        spec
    }

    impl HpcPresetStage {
        fn apply_to(&self, spec: &mut Spec) -> Result<(), StageError> {
            crate::pipeline::testing::TestRun::default()
                .scratch(self, spec)
                .map(|_| ())
        }
    }

    fn stage(env: &[(&str, &str)]) -> HpcPresetStage {
        HpcPresetStage::new(
            env.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            Memlock {
                hard: u64::MAX,
                may_raise: true,
            },
        )
    }

    fn namespaces(spec: &Spec) -> Vec<LinuxNamespaceType> {
        spec.linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default()
            .iter()
            .map(|n| n.typ())
            .collect()
    }

    #[test]
    fn the_preset_shares_network_ipc_and_shm_and_passes_pmi() {
        let mut spec = spec_with(Some("true"));
        let pmix = tempfile::tempdir().expect("tempdir");
        let pmix_dir = pmix.path().to_str().expect("utf8").to_string();
        stage(&[
            ("PMIX_RANK", "3"),
            ("OMPI_COMM_WORLD_SIZE", "4"),
            ("HOME", "/root"),
            ("PMIX_SERVER_TMPDIR", &pmix_dir),
        ])
        .apply_to(&mut spec)
        .expect("apply");
        let ns = namespaces(&spec);
        assert!(!ns.contains(&LinuxNamespaceType::Network), "{ns:?}");
        assert!(!ns.contains(&LinuxNamespaceType::Ipc), "{ns:?}");
        assert!(ns.contains(&LinuxNamespaceType::Pid), "others stay: {ns:?}");
        let mounts = spec.mounts().clone().expect("mounts");
        let shm = mounts
            .iter()
            .find(|m| m.destination() == Path::new("/dev/shm"))
            .expect("/dev/shm");
        assert_eq!(shm.source().as_deref(), Some(Path::new("/dev/shm")));
        assert!(mounts.iter().any(|m| m.destination() == pmix.path()));
        let env = spec
            .process()
            .as_ref()
            .and_then(|p| p.env().clone())
            .expect("env");
        assert!(env.contains(&"PMIX_RANK=3".to_string()), "{env:?}");
        assert!(env.contains(&"OMPI_COMM_WORLD_SIZE=4".to_string()));
        assert!(
            !env.iter().any(|e| e.starts_with("HOME=/root")),
            "only MPI variables"
        );
    }

    #[test]
    fn without_the_preset_nothing_changes() {
        for annotation in [None, Some("false")] {
            let mut spec = spec_with(annotation);
            let before = spec.clone();
            stage(&[("PMIX_RANK", "3")])
                .apply_to(&mut spec)
                .expect("apply");
            assert_eq!(spec, before);
        }
    }

    #[test]
    fn a_bad_value_is_refused_before_any_stage() {
        let err = crate::pipeline::Request::read(&spec_with(Some("maybe"))).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "pinc.io/hpc: invalid value \"maybe\": on or off"
        );
    }

    #[test]
    fn the_spec_env_wins() {
        let mut spec = spec_with(Some("1"));
        let mut process = spec.process().clone().expect("process");
        process.set_env(Some(vec!["PMIX_RANK=9".to_string()]));
        spec.set_process(Some(process));
        stage(&[("PMIX_RANK", "3")])
            .apply_to(&mut spec)
            .expect("apply");
        let env = spec
            .process()
            .as_ref()
            .and_then(|p| p.env().clone())
            .expect("env");
        assert_eq!(env, ["PMIX_RANK=9"]);
    }
}
