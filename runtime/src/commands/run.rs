use pinc_core::container::run::{run as run_container, RunOptions};
use pinc_core::stages;

use crate::cli::{Global, Run};

pub fn run(args: &Run, global: &Global) -> anyhow::Result<i32> {
    let root = super::root_for_create(global)?;
    let opts = RunOptions {
        create: super::create::options(&args.create, global, args.detach),
        keep: args.keep,
        no_subreaper: args.no_subreaper,
    };
    Ok(run_container(&root, &opts, &stages::hpc())?)
}
