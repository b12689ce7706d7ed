//! Namespaces: which ones are new, that exec joins the container's, and
//! what the isolation hides.

use std::path::Path;

use serde_json::{json, Value};

use super::process::case;
use super::{at, ensure, no_setup, Ctx, ProcCase, Variant, ALL};

fn check_namespaces(r: &Value, ctx: &Ctx) -> Result<(), String> {
    let configured: Vec<&str> = at(ctx.config, "/linux/namespaces")
        .as_array()
        .map(|a| a.iter().filter_map(|n| n["type"].as_str()).collect())
        .unwrap_or_default();
    for (spec, proc_name) in [
        ("pid", "pid"),
        ("network", "net"),
        ("ipc", "ipc"),
        ("uts", "uts"),
        ("mount", "mnt"),
        ("cgroup", "cgroup"),
        ("user", "user"),
    ] {
        let mine = at(r, &format!("/ns/self/{proc_name}")).as_str();
        let init = at(r, &format!("/ns/pid1/{proc_name}")).as_str();
        let host = ctx.host.ns.get(proc_name).map(String::as_str);
        let Some(mine) = mine else { continue };
        if configured.contains(&spec) {
            ensure(Some(mine) != host, || {
                format!("{proc_name} namespace is the host's ({mine}) although config asks for a new one")
            })?;
        } else {
            ensure(Some(mine) == host, || {
                format!("{proc_name} namespace {mine} differs from the host's {host:?} although config has none")
            })?;
        }
        ensure(Some(mine) == init, || {
            format!("{proc_name} namespace {mine} differs from the container init's {init:?}")
        })?;
    }
    Ok(())
}

fn check_pid(r: &Value, ctx: &Ctx) -> Result<(), String> {
    let pid = at(r, "/ids/pid").as_i64();
    if ctx.variant == Variant::Init {
        ensure(pid == Some(1), || format!("init's pid is {pid:?}, not 1"))
    } else {
        ensure(pid.is_some_and(|p| p > 1), || {
            format!("exec'd pid is {pid:?}, want > 1")
        })
    }
}

fn check_pid_ns_isolation(r: &Value, _: &Ctx) -> Result<(), String> {
    let me = at(r, "/ids/pid").as_i64().unwrap_or(-1);
    let others: Vec<i64> = at(r, "/procs")
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_i64)
                .filter(|p| *p != 1 && *p != me)
                .collect()
        })
        .unwrap_or_default();
    ensure(others.is_empty(), || {
        format!("processes other than init and the probe are visible: {others:?}")
    })
}

fn check_net_ns_lo_only(r: &Value, _: &Ctx) -> Result<(), String> {
    let ifaces = at(r, "/net_ifaces");
    ensure(*ifaces == json!(["lo"]), || {
        format!("a new network namespace has {ifaces}, want only lo")
    })
}

fn set_userns(c: &mut Value, _: &Path) {
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c["linux"]["uidMappings"] = map.clone();
    c["linux"]["gidMappings"] = map;
    if let Some(ns) = c["linux"]["namespaces"].as_array_mut() {
        ns.push(json!({"type": "user"}));
        ns.retain(|n| n["type"] != "cgroup");
    }
    // A user namespace may not mount v1 cgroup hierarchies; sysfs needs
    // the network namespace's owner, which it is.
    if let Some(m) = c["mounts"].as_array_mut() {
        m.retain(|m| m["type"] != "cgroup");
    }
}

fn check_userns(r: &Value, ctx: &Ctx) -> Result<(), String> {
    check_namespaces(r, ctx)?;
    let map = at(r, "/ids/uid_map").as_str().unwrap_or("");
    let fields: Vec<&str> = map.split_whitespace().collect();
    ensure(fields == ["0", "100000", "65536"], || {
        format!("uid_map is {map:?}")
    })?;
    let uid = at(r, "/ids/uid").as_i64();
    ensure(uid == Some(0), || format!("uid inside is {uid:?}, want 0"))
}

pub fn cases() -> Vec<ProcCase> {
    vec![
        case!("namespaces", ALL, no_setup, check_namespaces),
        case!("pid", ALL, no_setup, check_pid),
        case!(
            "pid-namespace-isolation",
            ALL,
            no_setup,
            check_pid_ns_isolation
        ),
        case!(
            "network-namespace-lo-only",
            ALL,
            no_setup,
            check_net_ns_lo_only
        ),
        case!("user-namespace", ALL, set_userns, check_userns),
    ]
}
