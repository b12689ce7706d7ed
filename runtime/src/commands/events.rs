use std::io::Write;

use pinc_core::container::events;

use crate::cli::{Events, Global};

pub fn run(args: &Events, global: &Global) -> anyhow::Result<i32> {
    let interval = events::parse_interval(&args.interval)?;
    let mut out = std::io::stdout().lock();
    events::events(
        &super::root(global),
        &args.id,
        interval,
        args.stats,
        |event| {
            writeln!(out, "{event}")?;
            out.flush()
        },
    )?;
    Ok(0)
}
