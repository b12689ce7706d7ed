use pinc_core::container::delete;

use crate::cli::{Delete, Global};

pub fn run(args: &Delete, global: &Global) -> anyhow::Result<i32> {
    delete::delete(&super::root(global), &args.id, args.force)?;
    Ok(0)
}
