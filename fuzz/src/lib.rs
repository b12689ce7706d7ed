//! Helpers shared by the fuzz targets: turning fuzzer bytes into the
//! shapes the parsers take, and checks run on every parsed topology.
//!
//! Inputs are text where the parser reads text, so seeds can be written by
//! hand: `KEY=VALUE` lines for annotations and environments.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use pinc_cpulist::CpuList;
use pinc_request::placement::{Amount, PlacementRequest, Policy};
use pinc_topology::planner::{self, Constraints};
use pinc_topology::Topology;

/// The bytes as text, or `None` for invalid UTF-8 (the parsers take `&str`,
/// and every caller turns bytes into a `String` first).
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// Splits input at the first line that is exactly `--`: the part before it
/// and the part after it (empty when there is none).
pub fn sections(text: &str) -> (&str, &str) {
    if let Some(rest) = text.strip_prefix("--\n") {
        return ("", rest);
    }
    match text.split_once("\n--\n") {
        Some((a, b)) => (a, b),
        None => (text, ""),
    }
}

/// An OCI spec's view of a container's request: `KEY=VALUE` lines whose key
/// holds a `/` (`pinc.io/cpus`, `cdi.k8s.io/gpu`) are annotations, every
/// other line is one process env entry, kept whole (as the spec's
/// `process.env` holds it, `=` or not).
pub fn annotations_and_env(text: &str) -> (HashMap<String, String>, Vec<String>) {
    let mut annotations = HashMap::new();
    let mut env = Vec::new();
    for line in text.lines() {
        match line.split_once('=') {
            Some((k, v)) if k.contains('/') => {
                annotations.insert(k.to_string(), v.to_string());
            }
            _ => env.push(line.to_string()),
        }
    }
    (annotations, env)
}

/// `KEY=VALUE` lines as an environment (a line without `=` is skipped, as a
/// process environment cannot hold one).
pub fn env_pairs(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A scratch directory that lives as long as the fuzzing process.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("pinc-fuzz-")
            .tempdir_in(std::env::var_os("PINC_FUZZ_TMP").unwrap_or_else(|| "/tmp".into()))
            .expect("scratch dir");
        // Kept for the life of the process; AFL restarts targets often, so
        // the run script removes leftovers under PINC_FUZZ_TMP.
        dir.keep()
    })
}

/// What must hold for any topology a loader accepted: it renders, survives
/// the JSON round trip of the topology cache, every PU belongs to exactly
/// one core, and the planner answers (placement or error, no panic) for a
/// few requests.
pub fn check_topology(t: &Topology) {
    let _ = pinc_topology::render::text(t);
    let json = serde_json::to_string(t).expect("a topology serializes");
    let back: Topology = serde_json::from_str(&json).expect("the topology cache reads back");
    assert_eq!(
        &back, t,
        "the topology cache round trip changed the topology"
    );

    let mut seen = std::collections::BTreeSet::new();
    for core in &t.cores {
        for pu in core.pus.iter() {
            assert!(seen.insert(pu), "PU {pu} is in two cores");
        }
    }

    let constraints = Constraints {
        allowed_cpus: t.pus(),
        allowed_mems: None,
        taken: CpuList::new(),
    };
    for (amount, policy, smt) in [
        (Amount::Cpus(1), Policy::Compact, true),
        (Amount::Cores(2), Policy::Spread, false),
        (Amount::Cpus(3), Policy::Strict, true),
    ] {
        let request = PlacementRequest {
            amount: Some(amount),
            smt,
            policy,
            near: Vec::new(),
            mem: None,
            hbm: false,
            hugepages: Vec::new(),
        };
        if let Ok(p) = planner::plan(t, &request, &constraints) {
            for pu in p.cpus.iter() {
                assert!(
                    constraints.allowed_cpus.contains(pu),
                    "placed on PU {pu}, not allowed"
                );
            }
        }
    }
}
