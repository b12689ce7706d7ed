use pinc_core::ops;

use crate::cli::{Global, Kill};

pub fn run(args: &Kill, global: &Global) -> anyhow::Result<i32> {
    ops::kill(&super::root(global), &args.id, &args.signal, args.all)?;
    Ok(0)
}
