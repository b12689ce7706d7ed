use pinc_core::ops;

use crate::cli::{Delete, Global};

pub fn run(args: &Delete, global: &Global) -> anyhow::Result<i32> {
    ops::delete(&super::root(global), &args.id, args.force)?;
    Ok(0)
}
