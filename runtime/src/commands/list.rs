use pinc_core::container::list;
use pinc_core::container::state::StateView;

use crate::cli::{Format, Global, List};

pub fn run(args: &List, global: &Global) -> anyhow::Result<i32> {
    let states = list::list(&super::root(global));
    match (args.quiet, args.format) {
        (true, _) => states.iter().for_each(|s| println!("{}", s.id)),
        (false, Format::Json) => println!("{}", serde_json::to_string(&states)?),
        (false, Format::Table) => print!("{}", table(&states)),
    }
    Ok(0)
}

/// runc's table: ID, PID, STATUS, BUNDLE, CREATED, OWNER.
pub fn table(states: &[StateView]) -> String {
    let rows: Vec<[String; 6]> = std::iter::once([
        "ID".to_string(),
        "PID".to_string(),
        "STATUS".to_string(),
        "BUNDLE".to_string(),
        "CREATED".to_string(),
        "OWNER".to_string(),
    ])
    .chain(states.iter().map(|s| {
        [
            s.id.clone(),
            s.pid.to_string(),
            s.status.clone(),
            s.bundle.display().to_string(),
            s.created.clone(),
            s.owner.clone(),
        ]
    }))
    .collect();
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            let cells: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            cells.join("   ").trim_end().to_string() + "\n"
        })
        .collect()
}
