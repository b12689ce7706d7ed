//! The stages every create runs after the HPC ones: what the spec needs
//! before libcontainer sees it, whatever the container asked for.

use std::path::PathBuf;

use libcontainer::oci_spec::runtime::{ExecCPUAffinity, Spec};
use pinc_cgroup::affinity;
use pinc_cpulist::CpuList;
use pinc_errkind::ErrorKind;

use crate::cgroup_plan::{self, PlanError};
use crate::mounts::cgroup_mount;
use crate::pipeline::{Context, Facts, Stage, StageError, StageFailure};
use crate::rootless::{self, Mode, RootlessError};

/// How a finalize stage fails.
#[derive(Debug, thiserror::Error)]
pub enum FinalizeError {
    #[error(transparent)]
    Limits(#[from] PlanError),
    #[error(transparent)]
    Affinity(#[from] affinity::AffinityError),
    #[error(transparent)]
    Rootless(#[from] RootlessError),
}

impl StageFailure for FinalizeError {
    fn kind(&self) -> ErrorKind {
        match self {
            FinalizeError::Limits(e) => e.kind(),
            FinalizeError::Affinity(_) | FinalizeError::Rootless(_) => ErrorKind::Internal,
        }
    }
}

/// pinc's cgroupsPath for a container whose spec names none.
pub fn default_cgroups_path(id: &str, systemd: bool) -> PathBuf {
    if systemd {
        PathBuf::from(format!("system.slice:pinc:{id}"))
    } else {
        crate::state::reclaim::default_cgroups_path(id)
    }
}

/// Gives containers without a cgroupsPath pinc's own default, not
/// libcontainer's ":youki:<id>".
pub struct CgroupsPath;

impl Stage for CgroupsPath {
    fn name(&self) -> &'static str {
        "cgroups-path"
    }

    fn apply(&self, spec: &mut Spec, ctx: &Context<'_>, _: &mut Facts) -> Result<(), StageError> {
        let Some(mut linux) = spec.linux().clone() else {
            return Ok(());
        };
        if linux.cgroups_path().is_none() {
            linux.set_cgroups_path(Some(default_cgroups_path(ctx.id, ctx.systemd_cgroup)));
            spec.set_linux(Some(linux));
        }
        Ok(())
    }
}

/// The host's v1 hierarchies bind-mounted for a container that shares the
/// host's PID namespace (see [`cgroup_mount::bind_v1_hierarchies`]).
pub struct CgroupMounts;

impl Stage for CgroupMounts {
    fn name(&self) -> &'static str {
        "cgroup-mounts"
    }

    fn apply(&self, spec: &mut Spec, ctx: &Context<'_>, _: &mut Facts) -> Result<(), StageError> {
        // cgroupfs paths only: a systemd unit's dirs are named by systemd.
        if *ctx.mode == Mode::Root && !ctx.systemd_cgroup {
            cgroup_mount::bind_v1_hierarchies(spec, || {
                cgroup_mount::HostCgroups::read(&ctx.host.join("/proc"))
            });
        }
        Ok(())
    }
}

/// Plans the hugetlb and RDMA limits pinc applies itself, refusing those
/// this host cannot enforce (the sandbox drops every cgroup limit, see
/// [`rootless::adapt_spec`]).
pub struct CgroupLimits;

impl Stage for CgroupLimits {
    fn name(&self) -> &'static str {
        "cgroup-limits"
    }

    fn apply(
        &self,
        spec: &mut Spec,
        ctx: &Context<'_>,
        facts: &mut Facts,
    ) -> Result<(), StageError> {
        facts.hugetlb = cgroup_plan::hugetlb_plan(spec, ctx.host).map_err(FinalizeError::from)?;
        if !matches!(ctx.mode, Mode::Sandbox { .. }) {
            facts.rdma = cgroup_plan::rdma_plan(spec, ctx.host).map_err(FinalizeError::from)?;
        }
        Ok(())
    }
}

/// Keeps the caller's affinity unless the spec pins CPUs: joining a cpuset
/// cgroup resets affinity, which would undo Slurm's or mpirun's binding.
/// Create sets it on the init; exec'd processes get it from
/// process.execCPUAffinity.final, which libcontainer applies after they
/// join the container's cgroups.
pub struct KeepAffinity;

impl Stage for KeepAffinity {
    fn name(&self) -> &'static str {
        "keep-affinity"
    }

    fn apply(
        &self,
        spec: &mut Spec,
        ctx: &Context<'_>,
        facts: &mut Facts,
    ) -> Result<(), StageError> {
        let cpus: Option<CpuList> = match crate::spec::pinned_cpus(spec) {
            None => Some(affinity::get(0).map_err(FinalizeError::from)?),
            Some(cpus) if matches!(ctx.mode, Mode::Sandbox { .. }) => cpus.parse().ok(),
            Some(_) => None,
        };
        if let Some(cpus) = &cpus {
            keep_for_exec(spec, cpus);
        }
        facts.keep_affinity = cpus;
        Ok(())
    }
}

fn keep_for_exec(spec: &mut Spec, cpus: &CpuList) {
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

/// Rootless without delegated cgroups: the spec adapted to pinc's sandbox
/// (its user namespace mapping for create to enter).
pub struct Sandbox;

impl Stage for Sandbox {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn apply(
        &self,
        spec: &mut Spec,
        ctx: &Context<'_>,
        facts: &mut Facts,
    ) -> Result<(), StageError> {
        let Mode::Sandbox { dir } = ctx.mode else {
            return Ok(());
        };
        let (uid, gid) = (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        );
        let maps = rootless::adapt_spec(spec, uid, gid, dir, ctx.request.require_cgroups)
            .map_err(FinalizeError::from)?;
        facts.id_maps = Some(maps);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testing::TestRun;

    fn run(stage: &dyn Stage, spec: &mut Spec, mode: &Mode, systemd: bool) -> Facts {
        let run = TestRun {
            id: "c1",
            mode: mode.clone(),
            systemd_cgroup: systemd,
            ..Default::default()
        };
        run.scratch(stage, spec).expect("apply")
    }

    fn cgroups_path(spec: &Spec) -> Option<PathBuf> {
        spec.linux().as_ref().and_then(|l| l.cgroups_path().clone())
    }

    #[test]
    fn a_missing_cgroups_path_gets_pincs_and_a_given_one_stays() {
        let mut spec = Spec::default();
        run(&CgroupsPath, &mut spec, &Mode::Root, false);
        assert_eq!(cgroups_path(&spec), Some(default_cgroups_path("c1", false)));
        let mut spec = Spec::default();
        run(&CgroupsPath, &mut spec, &Mode::Root, true);
        assert_eq!(
            cgroups_path(&spec),
            Some(PathBuf::from("system.slice:pinc:c1"))
        );
        let mut spec = Spec::default();
        let mut linux = spec.linux().clone().expect("linux");
        linux.set_cgroups_path(Some("/mine".into()));
        spec.set_linux(Some(linux));
        run(&CgroupsPath, &mut spec, &Mode::Root, false);
        assert_eq!(cgroups_path(&spec), Some(PathBuf::from("/mine")));
    }

    fn exec_affinity(spec: &Spec) -> Option<String> {
        let value = serde_json::to_value(spec.process().as_ref()?.exec_cpu_affinity()).ok()?;
        value["final"].as_str().map(str::to_string)
    }

    #[test]
    fn the_callers_affinity_is_kept_unless_the_spec_pins_cpus() {
        let mine = affinity::get(0).expect("affinity");
        let mut spec = Spec::default();
        let facts = run(&KeepAffinity, &mut spec, &Mode::Root, false);
        assert_eq!(facts.keep_affinity.as_ref(), Some(&mine));
        assert_eq!(exec_affinity(&spec), Some(mine.to_string()));

        let mut pinned = Spec::default();
        let mut linux = pinned.linux().clone().expect("linux");
        let mut resources = linux.resources().clone().unwrap_or_default();
        let mut cpu = resources.cpu().clone().unwrap_or_default();
        cpu.set_cpus(Some("0".into()));
        resources.set_cpu(Some(cpu));
        linux.set_resources(Some(resources));
        pinned.set_linux(Some(linux));
        let before = pinned.clone();
        let facts = run(&KeepAffinity, &mut pinned, &Mode::Root, false);
        assert!(facts.keep_affinity.is_none());
        assert_eq!(pinned, before, "the cpuset decides");
        // The sandbox has no cpuset cgroup: the pinned CPUs become affinity.
        let sandbox = Mode::Sandbox { dir: "/x".into() };
        let facts = run(&KeepAffinity, &mut pinned, &sandbox, false);
        assert_eq!(
            facts.keep_affinity.map(|c| c.to_string()).as_deref(),
            Some("0")
        );
    }

    #[test]
    fn a_spec_without_cgroup_limits_plans_none() {
        let mut spec = Spec::default();
        let facts = run(&CgroupLimits, &mut spec, &Mode::Root, false);
        assert!(facts.hugetlb.is_none() && facts.rdma.is_none());
    }

    #[test]
    fn the_sandbox_stage_leaves_other_modes_alone() {
        let mut spec = Spec::default();
        let before = spec.clone();
        let facts = run(&Sandbox, &mut spec, &Mode::Delegated, false);
        assert_eq!(spec, before);
        assert!(facts.id_maps.is_none());
    }
}
