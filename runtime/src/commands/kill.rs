use pinc_core::container;

use crate::cli::{Global, Kill};

pub fn run(args: &Kill, global: &Global) -> anyhow::Result<i32> {
    container::kill(&super::root(global), &args.id, &args.signal, args.all)?;
    Ok(0)
}
