use pinc_core::container::ps;

use crate::cli::{Format, Global, Ps};

pub fn run(args: &Ps, global: &Global) -> anyhow::Result<i32> {
    let pids = ps::pids(&super::root(global), &args.id)?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string(&pids)?),
        Format::Table => print!("{}", ps::table(&pids, &args.ps_args)?),
    }
    Ok(0)
}
