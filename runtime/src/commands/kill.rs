use pinc_core::container::kill;

use crate::cli::{Global, Kill};

pub fn run(args: &Kill, global: &Global) -> anyhow::Result<i32> {
    kill::kill(&super::root(global), &args.id, &args.signal, args.all)?;
    Ok(0)
}
