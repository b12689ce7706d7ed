use pinc_core::container::list;

use crate::cli::{Format, Global, List};

pub fn run(args: &List, global: &Global) -> anyhow::Result<i32> {
    let states = list::list(&super::root(global));
    match (args.quiet, args.format) {
        (true, _) => states.iter().for_each(|s| println!("{}", s.id)),
        (false, Format::Json) => println!("{}", serde_json::to_string(&states)?),
        (false, Format::Table) => print!("{}", list::table(&states)),
    }
    Ok(0)
}
