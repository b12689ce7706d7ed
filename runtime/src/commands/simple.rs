//! Commands that take only an id.

use pinc_core::container;

use crate::cli::{Global, Id};

pub fn start(args: &Id, global: &Global) -> anyhow::Result<i32> {
    container::start::start(&super::root(global), &args.id)?;
    Ok(0)
}

pub fn state(args: &Id, global: &Global) -> anyhow::Result<i32> {
    super::print_json(&container::state::state(&super::root(global), &args.id)?)?;
    Ok(0)
}

pub fn pause(args: &Id, global: &Global) -> anyhow::Result<i32> {
    container::pause::pause(&super::root(global), &args.id)?;
    Ok(0)
}

pub fn resume(args: &Id, global: &Global) -> anyhow::Result<i32> {
    container::pause::resume(&super::root(global), &args.id)?;
    Ok(0)
}

pub fn features() -> anyhow::Result<i32> {
    super::print_json(&pinc_core::spec::features::features())?;
    Ok(0)
}
