//! The placement stage: `pinc.io/cpus=…` (or `PINC_CPUS=…`) becomes
//! linux.resources.cpu.cpus/mems and linux.memoryPolicy, planned against the
//! node's topology, what the caller may use, the allocation ledger and the
//! locality of the devices the container was given.

mod hugepages;

use libcontainer::oci_spec::runtime::{
    LinuxCpu, LinuxMemoryPolicy, LinuxResources, MemoryPolicyModeType, Spec,
};
use pinc_cpulist::CpuList;
use pinc_errkind::ErrorKind;
use pinc_request::placement::{self as request, MemMode};
use pinc_topology::planner::{plan, Constraints, Placement};
use pinc_topology::Topology;

use crate::ledger::{Allocation, Ledger};
use crate::node_topology::NodeError;
use crate::pipeline::{Context, DeviceLocality, Facts, HostRoots, Stage, StageError, StageFailure};
use crate::RuntimeRoot;

/// Annotation that records the placement in the final spec (and so in `pinc state`).
pub const PLACEMENT_ANNOTATION: &str = "pinc.io/placement";

/// A valid request this node cannot meet now, besides the planner's own
/// refusals ([`pinc_topology::planner::PlanError`]).
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("the spec pins cpus {cpus}, outside the allowed CPUs {allowed}")]
    PinnedOutside { cpus: String, allowed: String },
    #[error("the spec pins cpus {cpus}, but cores {cores} are held by {holders}")]
    PinnedHeld {
        cpus: String,
        cores: String,
        holders: String,
    },
    #[error("pinc.io/hugepages: this kernel has no {name} pages")]
    NoPageSize { name: String },
    #[error(
        "pinc.io/hugepages: {count} x {name} pages requested, {free} free on NUMA {nodes} \
         (reserve more in /proc/sys/vm/nr_hugepages or /sys/devices/system/node/node*/hugepages)"
    )]
    FewHugepages {
        count: u64,
        name: String,
        free: u64,
        nodes: String,
    },
}

/// How the placement stage fails.
#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Plan(#[from] pinc_topology::planner::PlanError),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error("linux.resources.cpu.cpus {value:?}")]
    SpecCpus {
        value: String,
        #[source]
        source: pinc_cpulist::CpuListError,
    },
}

impl StageFailure for PlacementError {
    fn kind(&self) -> ErrorKind {
        match self {
            PlacementError::Refused(_) | PlacementError::Plan(_) => ErrorKind::PlacementRefused,
            PlacementError::SpecCpus { .. } => ErrorKind::InvalidSpec,
            PlacementError::Node(e) => e.kind(),
            PlacementError::Ledger(_) => ErrorKind::Internal,
        }
    }
}

/// Where the topology comes from: this machine (cached under the runtime
/// root) in production, a fixture in tests.
pub type TopologyLoader = Box<dyn Fn(&RuntimeRoot, &HostRoots) -> Result<Topology, NodeError>>;

pub struct PlacementStage {
    load: TopologyLoader,
}

impl PlacementStage {
    pub fn new(load: TopologyLoader) -> Self {
        Self { load }
    }
}

/// Whole cores around `cpus`.
fn whole_cores(t: &Topology, cpus: &CpuList) -> CpuList {
    t.cores
        .iter()
        .filter(|c| c.pus.iter().any(|p| cpus.contains(*p)))
        .flat_map(|c| c.pus.iter().copied())
        .collect()
}

fn write_placement(spec: &mut Spec, p: &Placement) {
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut resources: LinuxResources = linux.resources().clone().unwrap_or_default();
    let mut cpu: LinuxCpu = resources.cpu().clone().unwrap_or_default();
    if !p.cpus.is_empty() {
        cpu.set_cpus(Some(p.cpus.to_string()));
        cpu.set_mems(Some(p.mems.to_string()));
        resources.set_cpu(Some(cpu));
        linux.set_resources(Some(resources));
    }
    if let Some((mode, nodes)) = &p.mem_policy {
        let mut policy = LinuxMemoryPolicy::default();
        policy.set_mode(match mode {
            MemMode::Bind => MemoryPolicyModeType::MpolBind,
            MemMode::Interleave => MemoryPolicyModeType::MpolInterleave,
            MemMode::Preferred => MemoryPolicyModeType::MpolPreferred,
        });
        policy.set_nodes(Some(nodes.to_string()));
        linux.set_memory_policy(Some(policy));
    }
    spec.set_linux(Some(linux));
    let mut annotations = spec.annotations().clone().unwrap_or_default();
    annotations.insert(
        PLACEMENT_ANNOTATION.to_string(),
        serde_json::json!({"cpus": p.cpus, "mems": p.mems, "numa": p.numa_nodes, "why": p.reasons})
            .to_string(),
    );
    spec.set_annotations(Some(annotations));
}

/// A spec that pins CPUs is validated and reserved, not overridden.
fn validate_pinned(
    topology: &Topology,
    cpus: &CpuList,
    allowed: &CpuList,
    others: &[Allocation],
) -> Result<Placement, Refusal> {
    if !cpus.is_subset(allowed) {
        return Err(Refusal::PinnedOutside {
            cpus: cpus.to_string(),
            allowed: allowed.to_string(),
        });
    }
    let taken: CpuList = others.iter().flat_map(|a| a.cpus.iter()).collect();
    let reserved = whole_cores(topology, cpus);
    let clash = reserved.intersection(&taken);
    if !clash.is_empty() {
        let holders: Vec<&str> = others
            .iter()
            .filter(|a| !a.cpus.intersection(&clash).is_empty())
            .map(|a| a.id.as_str())
            .collect();
        return Err(Refusal::PinnedHeld {
            cpus: cpus.to_string(),
            cores: clash.to_string(),
            holders: holders.join(", "),
        });
    }
    let mems: CpuList = topology
        .cores
        .iter()
        .filter(|c| c.pus.iter().any(|p| cpus.contains(*p)))
        .filter_map(|c| c.numa)
        .collect();
    Ok(Placement {
        cpus: cpus.clone(),
        reserved,
        mems: mems.clone(),
        numa_nodes: mems.iter().collect(),
        mem_policy: None,
        reasons: vec![format!("the spec pins cpus {cpus}: validated and reserved")],
    })
}

/// Plans (or validates `pinned`) under the ledger's lock and records the
/// container's cores there.
fn reserve(
    ctx: &Context<'_>,
    topology: &Topology,
    request: &request::PlacementRequest,
    pinned: Option<&CpuList>,
) -> Result<Placement, PlacementError> {
    let (allowed_cpus, allowed_mems) = crate::node_topology::caller_constraints(ctx.host)?;
    let ledger = Ledger::open(ctx.root)?;
    ledger.update(
        Some(ctx.id),
        |allocations| -> Result<Placement, PlacementError> {
            allocations.retain(|a| a.id != ctx.id);
            let placement = match pinned {
                Some(cpus) => validate_pinned(topology, cpus, &allowed_cpus, allocations)?,
                None => plan(
                    topology,
                    request,
                    &Constraints {
                        allowed_cpus: allowed_cpus.clone(),
                        allowed_mems: allowed_mems.clone(),
                        taken: allocations.iter().flat_map(|a| a.cpus.iter()).collect(),
                    },
                )?,
            };
            allocations.push(Allocation {
                id: ctx.id.to_string(),
                cpus: placement.reserved.clone(),
                mems: placement.mems.clone(),
            });
            Ok(placement)
        },
    )?
}

impl Stage for PlacementStage {
    fn name(&self) -> &'static str {
        "placement"
    }

    fn apply(
        &self,
        spec: &mut Spec,
        ctx: &Context<'_>,
        facts: &mut Facts,
    ) -> Result<(), StageError> {
        let Some(request) = &ctx.request.placement else {
            return Ok(());
        };
        let topology = (self.load)(ctx.root, ctx.host).map_err(PlacementError::Node)?;
        let mut request = request.clone();
        if request.near.is_empty() {
            request.near = near(&facts.device_locality, &topology);
        }
        if request.amount.is_none() {
            // Hugepages only: no CPU placement, no ledger entry.
            hugepages::apply(spec, ctx.host, &topology, &request.hugepages, None)
                .map_err(PlacementError::from)?;
            return Ok(());
        }
        let pinned: Option<CpuList> = crate::spec::pinned_cpus(spec)
            .map(|value| {
                value
                    .parse()
                    .map_err(|source| PlacementError::SpecCpus { value, source })
            })
            .transpose()?;
        let placement = reserve(ctx, &topology, &request, pinned.as_ref())?;
        tracing::info!(target: "pinc", id = ctx.id, cpus = %placement.cpus, mems = %placement.mems, "placed");
        if pinned.is_none() {
            write_placement(spec, &placement);
        }
        hugepages::apply(
            spec,
            ctx.host,
            &topology,
            &request.hugepages,
            Some(&placement.mems),
        )
        .map_err(PlacementError::from)?;
        Ok(())
    }
}

/// The devices the devices stage gave the container, as `near=` selectors:
/// those the topology knows (a device hwloc does not list cannot steer
/// placement, and is not an error).
fn near(locality: &DeviceLocality, topology: &Topology) -> Vec<String> {
    locality
        .0
        .iter()
        .filter(|s| match pinc_topology::devices::resolve(topology, s) {
            Ok(_) => true,
            Err(e) => {
                tracing::debug!(target: "pinc", "device {s} does not steer placement: {e}");
                false
            }
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests;
