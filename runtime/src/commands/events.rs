use pinc_core::container::events;

use crate::cli::{Events, Global};

pub fn run(args: &Events, global: &Global) -> anyhow::Result<i32> {
    let interval = events::parse_interval(&args.interval)?;
    events::events(&super::root(global), &args.id, interval, args.stats)?;
    Ok(0)
}
