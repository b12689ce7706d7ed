//! `pinc topology` and `pinc plan`.

use pinc_core::node_topology;

use crate::cli::{Global, PlanCmd, TopologyCmd};

pub fn topology(args: &TopologyCmd, global: &Global) -> anyhow::Result<i32> {
    let (node, allocations) = node_topology::node(&super::root(global), args.topology.as_deref())?;
    if args.json {
        super::print_json(&serde_json::json!({"topology": node, "allocations": allocations}))?;
    } else {
        print!("{}", pinc_topology::render::text(&node));
        println!(
            "allocations: {}",
            if allocations.is_empty() {
                "none".to_string()
            } else {
                String::new()
            }
        );
        for a in &allocations {
            println!("  {}: cpus {} mems {}", a.id, a.cpus, a.mems);
        }
    }
    Ok(0)
}

pub fn plan(args: &PlanCmd, global: &Global) -> anyhow::Result<i32> {
    let p = node_topology::dry_run(
        &super::root(global),
        args.topology.as_deref(),
        &args.request,
    )?;
    if args.json {
        super::print_json(&p)?;
    } else {
        println!("cpus {}\nmems {}", p.cpus, p.mems);
        if let Some((mode, nodes)) = &p.mem_policy {
            println!("memory policy {mode:?} on {nodes}");
        }
        println!("why:");
        for r in &p.reasons {
            println!("  - {r}");
        }
    }
    Ok(0)
}
