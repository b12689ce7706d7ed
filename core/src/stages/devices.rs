//! The devices stage in pinc's pipeline. The stage itself lives in
//! [`pinc_devices::inject`], where `pinc-hook` runs it too without this
//! crate; here it reads the context's request and hands the chosen devices'
//! locality to placement as a fact.

use libcontainer::oci_spec::runtime::Spec;
use pinc_devices::inject::{DevicesError, DevicesStage};
use pinc_errkind::ErrorKind;

use crate::pipeline::{Context, DeviceLocality, Facts, Stage, StageError, StageFailure};

impl Stage for DevicesStage {
    fn name(&self) -> &'static str {
        "devices"
    }

    fn apply(
        &self,
        spec: &mut Spec,
        ctx: &Context<'_>,
        facts: &mut Facts,
    ) -> Result<(), StageError> {
        let out = self.inject(spec, ctx.request, ctx.rootless())?;
        facts.device_locality = DeviceLocality(out.near.clone());
        if !out.devices.is_empty() || !out.cdi.is_empty() {
            tracing::info!(
                target: "pinc",
                devices = ?out.devices,
                mounts = out.mounts.len(),
                cdi = ?out.cdi,
                "injected devices"
            );
        }
        Ok(())
    }
}

impl StageFailure for DevicesError {
    fn kind(&self) -> ErrorKind {
        match self {
            // The spec names devices this node does not have or may not give.
            DevicesError::Select { .. }
            | DevicesError::Capabilities(_)
            | DevicesError::CdiRootless => ErrorKind::InvalidSpec,
            DevicesError::NotOpenable { .. }
            | DevicesError::NoGpus { .. }
            | DevicesError::OutsideSlurm { .. }
            | DevicesError::Driver(_)
            | DevicesError::Gpu(_)
            | DevicesError::Rdma(_)
            | DevicesError::Cdi(_)
            | DevicesError::SysfsEscape { .. }
            | DevicesError::Resolve { .. } => ErrorKind::Internal,
        }
    }
}
