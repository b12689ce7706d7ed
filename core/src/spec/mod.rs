//! The OCI spec before libcontainer sees it: loading the bundle, checking
//! it, runc-compatible rewrites, `pinc spec`'s template and `pinc features`.

pub mod bundle;
pub mod features;
pub mod normalize;
pub mod spec_template;
pub mod validate;
