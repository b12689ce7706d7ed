//! `conformance --runtime PATH [--runtime PATH2 ...] [--filter SUBSTR]
//!              [--gate-against NAME] [--known-gaps FILE] [--probe PATH]`
//!
//! Runs every case through each runtime and prints `PASS|FAIL|SKIP case`
//! lines and a summary per runtime; with several runtimes, a table. With
//! `--gate-against NAME`, exits 1 when a case passes on NAME and fails on
//! another runtime, unless the case is listed in the known-gaps file.
//! Exit 2 means the harness itself could not run.

mod bundle;
mod cases;
mod console;
mod host;
mod report;
mod runtime;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use cases::Outcome;
use report::RuntimeResults;
use runtime::Harness;

struct Args {
    runtimes: Vec<PathBuf>,
    filters: Vec<String>,
    gate: Option<String>,
    known_gaps: Option<PathBuf>,
    probe: Option<PathBuf>,
    list: bool,
}

const USAGE: &str = "usage: conformance --runtime PATH [--runtime PATH ...] [--filter SUBSTR] \
[--gate-against NAME] [--known-gaps FILE] [--probe PATH] [--list]";

fn parse_args() -> Result<Args> {
    let mut a = Args {
        runtimes: Vec::new(),
        filters: Vec::new(),
        gate: None,
        known_gaps: None,
        probe: None,
        list: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        if flag == "--list" {
            a.list = true;
            continue;
        }
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))?,
        };
        match flag.as_str() {
            "--runtime" => a.runtimes.push(PathBuf::from(value)),
            "--filter" => a.filters.push(value),
            "--gate-against" => a.gate = Some(value),
            "--known-gaps" => a.known_gaps = Some(PathBuf::from(value)),
            "--probe" => a.probe = Some(PathBuf::from(value)),
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if a.runtimes.is_empty() && !a.list {
        bail!("no --runtime given\n{USAGE}");
    }
    Ok(a)
}

/// The probe must run in a rootfs without a libc: refuse a dynamic one.
fn check_probe(p: &Path) -> Result<()> {
    let bytes = std::fs::read(p).with_context(|| format!("reading probe {}", p.display()))?;
    if bytes.windows(12).any(|w| w == b"/lib64/ld-li") {
        bail!(
            "probe {} is dynamically linked; build it with conformance/run (static)",
            p.display()
        );
    }
    Ok(())
}

fn default_probe() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the conformance binary")?;
    Ok(exe.with_file_name("probe"))
}

fn selected(filters: &[String], case: &str) -> bool {
    filters.is_empty() || filters.iter().any(|f| case.contains(f.as_str()))
}

fn emit(case: &str, o: &Outcome) {
    println!("{}", report::line(case, o));
    let _ = std::io::stdout().flush();
}

fn run_runtime(h: &Harness, filters: &[String]) -> Vec<(String, Outcome)> {
    let sel = |c: &str| selected(filters, c);
    let mut results = Vec::new();
    if h.name == "crun" && h.host.hybrid {
        // crun 1.8 fails every create on a hybrid host; say so once per case
        // instead of reporting its refusal as ~200 failures.
        let why = "crun refuses hybrid cgroups: run it via conformance/run, which hides /sys/fs/cgroup/unified";
        let all_names = list_names();
        for name in all_names.into_iter().filter(|n| sel(n)) {
            let o = Outcome::Skip(why.to_string());
            emit(&name, &o);
            results.push((name, o));
        }
        return results;
    }
    for case in cases::proc_cases() {
        for (name, o) in cases::run_proc_case(h, &case, &sel) {
            emit(&name, &o);
            results.push((name, o));
        }
    }
    for case in cases::life_cases() {
        if !sel(case.name) {
            continue;
        }
        let o = case.outcome(h);
        emit(case.name, &o);
        results.push((case.name.to_string(), o));
    }
    results
}

fn list_names() -> Vec<String> {
    let mut out = Vec::new();
    for c in cases::proc_cases() {
        for v in c.variants {
            out.push(format!("{}/{}", c.name, v.suffix()));
        }
    }
    out.extend(cases::life_cases().iter().map(|c| c.name.to_string()));
    out
}

fn list_cases() {
    for n in list_names() {
        println!("{n}");
    }
}

fn real_main() -> Result<ExitCode> {
    let args = parse_args()?;
    if args.list {
        list_cases();
        return Ok(ExitCode::SUCCESS);
    }
    if !nix::unistd::geteuid().is_root() {
        bail!("conformance runs real containers and needs root");
    }
    let probe = match &args.probe {
        Some(p) => p.clone(),
        None => default_probe()?,
    };
    check_probe(&probe)?;
    let known = match &args.known_gaps {
        Some(p) => report::read_known_gaps(p)?,
        None => Default::default(),
    };
    for rt in &args.runtimes {
        if !rt.is_file() {
            bail!("runtime {} does not exist", rt.display());
        }
    }
    let host = host::Host::detect();
    let base = std::env::temp_dir().join(format!("pinc-conformance-{}", std::process::id()));
    let mut all = Vec::new();
    for (i, rt) in args.runtimes.iter().enumerate() {
        let h = Harness::new(rt, &base, &probe, host.clone(), i)?;
        println!("== {} ({})", h.name, rt.display());
        let results = run_runtime(&h, &args.filters);
        let rr = RuntimeResults {
            name: h.name.clone(),
            path: rt.display().to_string(),
            results,
        };
        println!("{}", report::summary(&rr));
        all.push(rr);
    }
    let _ = std::fs::remove_dir_all(&base);
    if all.len() > 1 {
        println!("\n{}", report::table(&all));
        for r in &all {
            println!("{:>8}: {}", r.name, report::summary(r));
        }
    }
    let Some(gate_name) = &args.gate else {
        return Ok(ExitCode::SUCCESS);
    };
    let Some(reference) = all
        .iter()
        .find(|r| &r.name == gate_name || &r.path == gate_name)
    else {
        bail!("--gate-against {gate_name}: no such --runtime");
    };
    let others: Vec<&RuntimeResults> = all
        .iter()
        .filter(|r| !std::ptr::eq(*r, reference))
        .collect();
    let g = report::gate(reference, &others, &known);
    for (rt, case) in &g.known {
        println!("GATE known gap: {case} fails on {rt} (listed in known-gaps)");
    }
    for (rt, case) in &g.fixed {
        println!("GATE fixed: {case} passes on {rt}: remove it from known-gaps");
    }
    for (rt, case, why) in &g.regressions {
        println!(
            "GATE regression: {case} passes on {} but fails on {rt}: {why}",
            reference.name
        );
    }
    if g.regressions.is_empty() {
        println!(
            "GATE ok: no case passes on {} and fails elsewhere (known gaps aside)",
            reference.name
        );
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(1))
    }
}

fn main() -> ExitCode {
    match real_main() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("conformance: {e:#}");
            ExitCode::from(2)
        }
    }
}
