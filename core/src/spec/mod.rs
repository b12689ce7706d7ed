//! The OCI spec before libcontainer sees it: loading the bundle, checking
//! it, runc-compatible rewrites, `pinc spec`'s template and `pinc features`.

pub mod bundle;
pub mod features;
pub mod normalize;
pub mod spec_template;
pub mod validate;

use libcontainer::oci_spec::runtime::Spec;

/// linux.resources.cpu.cpus: the CPUs the spec pins, as written.
pub fn pinned_cpus(spec: &Spec) -> Option<String> {
    spec.linux()
        .as_ref()?
        .resources()
        .as_ref()?
        .cpu()
        .as_ref()?
        .cpus()
        .clone()
}
