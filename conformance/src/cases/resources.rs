//! Resources and kernel settings: cgroup limits as the container sees
//! them, CPU affinity, sysctls.

use std::path::Path;

use serde_json::{json, Value};

use super::process::case;
use super::{at, ensure, no_setup, Ctx, ProcCase, Variant, ALL};
use crate::host::Host;

/// A limit file's value: the v1 name on hybrid or v1 hosts, else v2.
fn cg_file<'a>(r: &'a Value, v1: &str, v2: &str) -> Option<&'a str> {
    let files = at(r, "/cgroup/files");
    files
        .get(v1)
        .or_else(|| files.get(v2))
        .and_then(Value::as_str)
}

fn same_cgroup_as_init(r: &Value, ctx: &Ctx) -> Result<(), String> {
    if ctx.variant == Variant::Init {
        return Ok(());
    }
    let (mine, init) = (at(r, "/cgroup/self"), at(r, "/cgroup/pid1"));
    ensure(mine == init, || {
        format!("exec'd process is in cgroups {mine}, init in {init}")
    })
}

fn need(h: &Host, ctrl: &str) -> Option<String> {
    if h.v2_only || h.has_v1(ctrl) {
        None
    } else {
        Some(format!("no {ctrl} cgroup controller mounted on this host"))
    }
}

fn need_memory(h: &Host) -> Option<String> {
    need(h, "memory")
}

fn need_pids(h: &Host) -> Option<String> {
    need(h, "pids")
}

fn need_cpu(h: &Host) -> Option<String> {
    need(h, "cpu")
}

fn need_cpuset_smp(h: &Host) -> Option<String> {
    need(h, "cpuset").or_else(|| (h.cpus.len() < 2).then(|| "needs two CPUs".to_string()))
}

fn need_cpu1(h: &Host) -> Option<String> {
    (!h.cpus.contains(&1) || h.cpus.len() < 2).then(|| "needs CPUs 0 and 1 online".to_string())
}

fn need_oom_control(h: &Host) -> Option<String> {
    (!h.has_v1("memory")).then(|| "memory.oom_control exists in cgroup v1 only".to_string())
}

fn set_memory(c: &mut Value, _: &Path) {
    c["linux"]["resources"] = json!({"memory": {"limit": 67108864}});
}

fn check_memory(r: &Value, ctx: &Ctx) -> Result<(), String> {
    same_cgroup_as_init(r, ctx)?;
    let got = cg_file(r, "memory/memory.limit_in_bytes", "memory.max");
    ensure(got == Some("67108864"), || {
        format!("memory limit reads {got:?}, want 67108864")
    })
}

fn set_pids(c: &mut Value, _: &Path) {
    c["linux"]["resources"] = json!({"pids": {"limit": 123}});
}

fn check_pids(r: &Value, ctx: &Ctx) -> Result<(), String> {
    same_cgroup_as_init(r, ctx)?;
    let got = cg_file(r, "pids/pids.max", "pids.max");
    ensure(got == Some("123"), || {
        format!("pids.max reads {got:?}, want 123")
    })
}

fn set_cpu(c: &mut Value, _: &Path) {
    c["linux"]["resources"] = json!({"cpu": {"shares": 512, "quota": 50000, "period": 100000}});
}

fn check_cpu(r: &Value, ctx: &Ctx) -> Result<(), String> {
    same_cgroup_as_init(r, ctx)?;
    let files = at(r, "/cgroup/files");
    if let Some(max) = files.get("cpu.max").and_then(Value::as_str) {
        return ensure(max == "50000 100000", || format!("cpu.max is {max:?}"));
    }
    for (f, want) in [
        ("cpu/cpu.shares", "512"),
        ("cpu/cpu.cfs_quota_us", "50000"),
        ("cpu/cpu.cfs_period_us", "100000"),
    ] {
        let got = files.get(f).and_then(Value::as_str);
        ensure(got == Some(want), || {
            format!("{f} reads {got:?}, want {want}")
        })?;
    }
    Ok(())
}

fn set_cpuset(c: &mut Value, _: &Path) {
    c["linux"]["resources"] = json!({"cpu": {"cpus": "0", "mems": "0"}});
}

fn check_cpuset(r: &Value, ctx: &Ctx) -> Result<(), String> {
    same_cgroup_as_init(r, ctx)?;
    let got = cg_file(r, "cpuset/cpuset.cpus", "cpuset.cpus");
    ensure(got == Some("0"), || {
        format!("cpuset.cpus reads {got:?}, want 0")
    })?;
    let aff = at(r, "/affinity");
    ensure(*aff == json!([0]), || {
        format!("CPU affinity is {aff}, want [0] (the cpuset)")
    })
}

fn check_affinity_inherited(r: &Value, _: &Ctx) -> Result<(), String> {
    // The runtime ran under `taskset -c 1`: the process inherits that mask.
    let aff = at(r, "/affinity");
    ensure(*aff == json!([1]), || {
        format!("CPU affinity is {aff}, want [1] from the caller")
    })
}

fn set_oom_disable(c: &mut Value, _: &Path) {
    c["linux"]["resources"] = json!({"memory": {"limit": 67108864, "disableOOMKiller": true}});
}

fn check_oom_disable(r: &Value, ctx: &Ctx) -> Result<(), String> {
    same_cgroup_as_init(r, ctx)?;
    let got = cg_file(r, "memory/memory.oom_control", "").unwrap_or("");
    ensure(got.lines().any(|l| l == "oom_kill_disable 1"), || {
        format!("memory.oom_control reads {got:?}, want oom_kill_disable 1")
    })
}

fn check_cgroupns_root(r: &Value, ctx: &Ctx) -> Result<(), String> {
    same_cgroup_as_init(r, ctx)?;
    let text = at(r, "/cgroup/self").as_str().unwrap_or("");
    let bad: Vec<&str> = text.lines().filter(|l| !l.ends_with(":/")).collect();
    ensure(!text.is_empty() && bad.is_empty(), || {
        format!("inside a cgroup namespace every path must be /, got {bad:?}")
    })
}

fn set_sysctl(c: &mut Value, _: &Path) {
    c["linux"]["sysctl"] = json!({
        "kernel.shmmax": "123456789",
        "kernel.msgmax": "4096",
        "net.ipv4.ip_forward": "1"
    });
}

fn sysctl_args(c: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for k in c["linux"]["sysctl"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        out.push("--sysctl".to_string());
        out.push(k.clone());
    }
    out
}

fn check_sysctl(r: &Value, ctx: &Ctx) -> Result<(), String> {
    for (k, want) in ctx.config["linux"]["sysctl"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let got = at(r, "/sysctls").get(k).unwrap_or(&Value::Null);
        ensure(got == want, || {
            format!("sysctl {k} is {got}, config says {want}")
        })?;
    }
    Ok(())
}

/// A char device with no driver behind it: opening it gives ENXIO when
/// the device cgroup lets it through and EPERM when it does not.
fn set_device(c: &mut Value, allow: bool) {
    c["linux"]["devices"] = json!([{"path": "/dev/conformance-dev", "type": "c",
        "major": 240, "minor": 7, "fileMode": 0o666, "uid": 0, "gid": 0}]);
    // Deny-all first in both, as `runc spec` writes it; the allow case adds
    // a rule for this device. (Without any rule see devices-cgroup-default-deny.)
    let mut rules = vec![json!({"allow": false, "access": "rwm"})];
    if allow {
        rules.push(json!({"allow": true, "type": "c", "major": 240, "minor": 7, "access": "rwm"}));
    }
    c["linux"]["resources"] = json!({ "devices": rules });
}

fn set_device_denied(c: &mut Value, _: &Path) {
    set_device(c, false);
}

fn set_device_allowed(c: &mut Value, _: &Path) {
    set_device(c, true);
}

fn device_args(_: &Value) -> Vec<String> {
    vec!["--path".into(), "/dev/conformance-dev".into()]
}

fn check_device_cgroup(r: &Value, ctx: &Ctx) -> Result<(), String> {
    let allowed = ctx.config["linux"]["resources"]["devices"]
        .as_array()
        .is_some_and(|r| r.len() > 1);
    let (want, what) = if allowed {
        (6, "ENXIO (allowed, no driver)")
    } else {
        (1, "EPERM (denied)")
    };
    let got = at(r, "/paths/~1dev~1conformance-dev");
    ensure(got["read_errno"] == want, || {
        format!("opening the device gave {got}, want {what}")
    })
}

fn need_devices(h: &Host) -> Option<String> {
    need(h, "devices")
}

pub fn cases() -> Vec<ProcCase> {
    vec![
        ProcCase {
            skip: need_memory,
            ..case!("cgroup-memory-limit", ALL, set_memory, check_memory)
        },
        ProcCase {
            skip: need_pids,
            ..case!("cgroup-pids-limit", ALL, set_pids, check_pids)
        },
        ProcCase {
            skip: need_cpu,
            ..case!("cgroup-cpu-shares-quota", ALL, set_cpu, check_cpu)
        },
        ProcCase {
            skip: need_cpuset_smp,
            ..case!("cgroup-cpuset-affinity", ALL, set_cpuset, check_cpuset)
        },
        ProcCase {
            skip: need_oom_control,
            ..case!(
                "cgroup-disable-oom-killer",
                ALL,
                set_oom_disable,
                check_oom_disable
            )
        },
        case!("cgroup-namespace-root", ALL, no_setup, check_cgroupns_root),
        ProcCase {
            skip: need_cpu1,
            prefix: &["taskset", "-c", "1"],
            ..case!(
                "cpu-affinity-from-caller",
                ALL,
                no_setup,
                check_affinity_inherited
            )
        },
        ProcCase {
            skip: need_devices,
            probe_args: device_args,
            ..case!(
                "devices-cgroup-deny-unlisted",
                ALL,
                set_device_denied,
                check_device_cgroup
            )
        },
        ProcCase {
            skip: need_devices,
            probe_args: device_args,
            ..case!(
                "devices-cgroup-allow-rule",
                ALL,
                set_device_allowed,
                check_device_cgroup
            )
        },
        ProcCase {
            probe_args: sysctl_args,
            ..case!("sysctl", ALL, set_sysctl, check_sysctl)
        },
    ]
}
