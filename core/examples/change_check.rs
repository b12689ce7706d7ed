//! What the pipeline runner's change check costs per create: before each
//! stage it clones the spec, after it compares, to record which stages
//! changed the spec (`pinc state`'s `pinc.io/pipeline`).
//!
//!   cargo run --release -p pinc-core --example change_check [-- ROUNDS] [config.json...]
//!
//! Times one clone plus one comparison of each spec (the runc default, a
//! Docker-sized one whose seccomp profile names 350 syscalls, and any given file),
//! and prints that times the number of stages a create runs. Compare the
//! figure with `bench/lifecycle`'s create median.

use std::hint::black_box;
use std::time::Instant;

use pinc_core::oci_spec::runtime::Spec;
use serde_json::{json, Value};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    let rounds: u32 = match args.peek().map(|a| a.parse()) {
        Some(Ok(n)) => {
            args.next();
            n
        }
        _ => 20_000,
    };
    let stages = pinc_core::stages::hpc()
        .then(pinc_core::stages::finalize())
        .stage_names()
        .len();
    let mut specs = vec![
        ("runc spec default".to_string(), Spec::default()),
        ("Docker-sized".to_string(), docker_sized()?),
    ];
    for path in args {
        let text = std::fs::read_to_string(&path)?;
        specs.push((path, serde_json::from_str(&text)?));
    }
    println!("{stages} stages per create, {rounds} rounds per spec");
    for (name, spec) in &specs {
        let per = time_check(spec, rounds);
        println!(
            "{name:<20} clone+compare {:>7.2} us   per create ({stages} stages) {:>7.2} us",
            per * 1e6,
            per * 1e6 * stages as f64
        );
    }
    Ok(())
}

/// Seconds for one clone and one comparison of `spec` (the mean of `rounds`).
fn time_check(spec: &Spec, rounds: u32) -> f64 {
    let start = Instant::now();
    for _ in 0..rounds {
        let before = black_box(spec).clone();
        black_box(black_box(spec) != &before);
    }
    start.elapsed().as_secs_f64() / f64::from(rounds)
}

/// A spec the size of what Docker hands a runtime: 30 env entries, 20
/// mounts, 350 syscall names in 50 seccomp rules, masked and read-only
/// paths.
fn docker_sized() -> anyhow::Result<Spec> {
    let mut v: Value = serde_json::to_value(Spec::default())?;
    v["process"]["env"] = (0..30)
        .map(|i| json!(format!("VAR_{i}=value-{i}")))
        .collect();
    let mounts = v["mounts"]
        .as_array_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    v["mounts"] = mounts
        .into_iter()
        .chain((0..12).map(|i| {
            json!({"destination": format!("/data/{i}"), "type": "bind",
                   "source": format!("/srv/data/{i}"), "options": ["rbind", "ro"]})
        }))
        .collect();
    v["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": (0..50).map(|r| json!({
            "names": (0..7).map(|i| format!("syscall_{r}_{i}")).collect::<Vec<_>>(),
            "action": "SCMP_ACT_ALLOW",
        })).collect::<Vec<_>>(),
    });
    v["linux"]["maskedPaths"] = (0..12)
        .map(|i| json!(format!("/proc/masked/{i}")))
        .collect();
    v["linux"]["readonlyPaths"] = (0..6).map(|i| json!(format!("/proc/ro/{i}"))).collect();
    Ok(serde_json::from_value(v)?)
}
