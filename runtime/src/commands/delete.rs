use pinc_core::container;

use crate::cli::{Delete, Global};

pub fn run(args: &Delete, global: &Global) -> anyhow::Result<i32> {
    container::delete(&super::root(global), &args.id, args.force)?;
    Ok(0)
}
