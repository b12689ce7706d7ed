//! Case definitions and the runner for process cases, which run the probe
//! as the container's init and as `exec`'d processes.

pub mod cli;
pub mod flags;
pub mod hooks;
pub mod lifecycle;
pub mod mounts;
pub mod namespaces;
pub mod ops;
pub mod process;
pub mod resources;

use std::fs;
use std::path::Path;

use anyhow::Result;
use serde_json::{json, Value};

use crate::bundle::{base_spec, set_args};
use crate::host::Host;
use crate::runtime::Harness;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

/// Which process of the container the probe ran as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// The container's init (`run`).
    Init,
    /// `exec ID probe ARGS`: must inherit config.json's process attributes.
    Exec,
    /// `exec --process process.json ID`.
    ExecProcess,
}

impl Variant {
    pub fn suffix(self) -> &'static str {
        match self {
            Variant::Init => "init",
            Variant::Exec => "exec",
            Variant::ExecProcess => "exec-process",
        }
    }
}

pub const ALL: &[Variant] = &[Variant::Init, Variant::Exec, Variant::ExecProcess];

/// What a check may look at besides the probe's report.
pub struct Ctx<'a> {
    pub variant: Variant,
    pub host: &'a Host,
    pub config: &'a Value,
}

pub type Check = fn(&Value, &Ctx) -> Result<(), String>;

/// A case that runs the probe inside a container configured by `setup`.
pub struct ProcCase {
    pub name: &'static str,
    pub variants: &'static [Variant],
    pub skip: fn(&Host) -> Option<String>,
    /// Edits the config; the Path is a host scratch dir for the case.
    pub setup: fn(&mut Value, &Path),
    pub probe_args: fn(&Value) -> Vec<String>,
    /// Runtime commands run under this prefix (e.g. taskset).
    pub prefix: &'static [&'static str],
    /// How the probe is named in process.args (absolute unless a case
    /// tests PATH lookup).
    pub probe: &'static str,
    pub check: Check,
}

/// A case that drives the runtime's commands itself.
pub struct LifeCase {
    pub name: &'static str,
    pub skip: fn(&Host) -> Option<String>,
    pub run: fn(&Harness) -> Result<(), String>,
}

impl LifeCase {
    pub fn outcome(&self, h: &Harness) -> Outcome {
        if let Some(why) = (self.skip)(&h.host) {
            return Outcome::Skip(why);
        }
        match (self.run)(h) {
            Ok(()) => Outcome::Pass,
            Err(why) => Outcome::Fail(why),
        }
    }
}

pub fn never(_: &Host) -> Option<String> {
    None
}

pub fn no_args(_: &Value) -> Vec<String> {
    Vec::new()
}

pub fn no_setup(_: &mut Value, _: &Path) {}

/// `r.pointer(p)` or null.
pub fn at<'a>(r: &'a Value, ptr: &str) -> &'a Value {
    r.pointer(ptr).unwrap_or(&Value::Null)
}

/// Fails with `msg` unless `cond` holds.
pub fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(msg())
    }
}

/// Every process case, in output order.
pub fn proc_cases() -> Vec<ProcCase> {
    let mut v = namespaces::cases();
    v.extend(process::cases());
    v.extend(mounts::cases());
    v.extend(resources::cases());
    v
}

/// Every lifecycle case, in output order.
pub fn life_cases() -> Vec<LifeCase> {
    let mut v = lifecycle::cases();
    v.extend(flags::cases());
    v.extend(cli::cases());
    v.extend(ops::cases());
    v.extend(hooks::cases());
    v
}

fn parse_report(stdout: &str) -> Result<Value, String> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| {
            format!(
                "the probe printed no report (stdout: {:?})",
                stdout.chars().take(200).collect::<String>()
            )
        })?;
    serde_json::from_str(line).map_err(|e| format!("probe report is not JSON: {e}"))
}

fn with_prefix(h: &Harness, prefix: &[&str], args: &[&str]) -> std::process::Command {
    if prefix.is_empty() {
        return h.cmd(args);
    }
    let mut c = std::process::Command::new(prefix[0]);
    c.args(&prefix[1..])
        .arg(&h.runtime)
        .arg("--root")
        .arg(&h.state_root)
        .args(args)
        .stdin(std::process::Stdio::null());
    c
}

/// Runs one process case in every selected variant.
pub fn run_proc_case(
    h: &Harness,
    case: &ProcCase,
    selected: &dyn Fn(&str) -> bool,
) -> Vec<(String, Outcome)> {
    let variants: Vec<Variant> = case
        .variants
        .iter()
        .copied()
        .filter(|v| selected(&format!("{}/{}", case.name, v.suffix())))
        .collect();
    if variants.is_empty() {
        return Vec::new();
    }
    let name = |v: Variant| format!("{}/{}", case.name, v.suffix());
    if let Some(why) = (case.skip)(&h.host) {
        return variants
            .iter()
            .map(|&v| (name(v), Outcome::Skip(why.clone())))
            .collect();
    }
    let mut out = Vec::new();
    let reports = match collect_reports(h, case, &variants) {
        Ok(r) => r,
        Err(e) => {
            return variants
                .iter()
                .map(|&v| (name(v), Outcome::Fail(format!("harness: {e:#}"))))
                .collect()
        }
    };
    for (v, config, report) in reports {
        let outcome = match report.and_then(|r| {
            let ctx = Ctx {
                variant: v,
                host: &h.host,
                config: &config,
            };
            (case.check)(&r, &ctx)
        }) {
            Ok(()) => Outcome::Pass,
            Err(why) => Outcome::Fail(why),
        };
        out.push((name(v), outcome));
    }
    out
}

type Reports = Vec<(Variant, Value, Result<Value, String>)>;

fn collect_reports(h: &Harness, case: &ProcCase, variants: &[Variant]) -> Result<Reports> {
    let scratch = h.scratch("s")?;
    let mut config = base_spec(&[]);
    (case.setup)(&mut config, &scratch);
    let probe_args = (case.probe_args)(&config);
    let mut probe_cmd: Vec<String> = vec![case.probe.to_string()];
    probe_cmd.extend(probe_args);
    let probe_refs: Vec<&str> = probe_cmd.iter().map(String::as_str).collect();
    let mut out = Vec::new();

    if variants.contains(&Variant::Init) {
        let bundle = h.bundle()?;
        let mut c = config.clone();
        set_args(&mut c, &probe_refs);
        bundle.write_config(&c)?;
        let id = h.new_id();
        let _g = h.guard(&id);
        let bdir = bundle.dir.display().to_string();
        let ran = h.run(with_prefix(
            h,
            case.prefix,
            &["run", "--bundle", &bdir, &id],
        ))?;
        let report = if ran.ok() {
            parse_report(&ran.stdout)
        } else {
            Err(format!("run failed: {}", ran.why()))
        };
        out.push((Variant::Init, c, report));
    }

    let execs: Vec<Variant> = variants
        .iter()
        .copied()
        .filter(|v| *v != Variant::Init)
        .collect();
    if execs.is_empty() {
        return Ok(out);
    }
    let bundle = h.bundle()?;
    let mut c = config.clone();
    set_args(&mut c, &["sleep", "1000"]);
    bundle.write_config(&c)?;
    let id = h.new_id();
    let _g = h.guard(&id);
    let started = start_sleeper(h, &bundle, &id);
    for v in execs {
        let report = match &started {
            Err(e) => Err(e.clone()),
            Ok(()) => exec_probe(h, case, &scratch, &c, &id, v, &probe_refs),
        };
        out.push((v, c.clone(), report));
    }
    Ok(out)
}

fn start_sleeper(h: &Harness, bundle: &crate::bundle::Bundle, id: &str) -> Result<(), String> {
    let r = h.create(bundle, id, &[]).map_err(|e| format!("{e:#}"))?;
    if !r.ok() {
        return Err(format!("create failed: {}", r.why()));
    }
    let r = h.rt(&["start", id]).map_err(|e| format!("{e:#}"))?;
    if !r.ok() {
        return Err(format!("start failed: {}", r.why()));
    }
    Ok(())
}

fn exec_probe(
    h: &Harness,
    case: &ProcCase,
    scratch: &Path,
    config: &Value,
    id: &str,
    v: Variant,
    probe: &[&str],
) -> Result<Value, String> {
    let ran = if v == Variant::Exec {
        let mut args = vec!["exec", id];
        args.extend_from_slice(probe);
        h.run(with_prefix(h, case.prefix, &args))
    } else {
        let mut process = config["process"].clone();
        process["args"] = json!(probe);
        let p = scratch.join("process.json");
        fs::write(&p, process.to_string()).map_err(|e| format!("writing process.json: {e}"))?;
        let ps = p.display().to_string();
        h.run(with_prefix(h, case.prefix, &["exec", "--process", &ps, id]))
    }
    .map_err(|e| format!("{e:#}"))?;
    if !ran.ok() {
        return Err(format!("exec failed: {}", ran.why()));
    }
    parse_report(&ran.stdout)
}
