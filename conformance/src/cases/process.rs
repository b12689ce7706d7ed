//! Process attributes: namespaces, ids, capabilities, limits, seccomp,
//! environment. Each runs as init, as `exec` with plain arguments (which
//! must inherit config.json's process) and as `exec --process`.

use std::path::Path;

use serde_json::{json, Value};

use super::{at, ensure, no_setup, Ctx, ProcCase, ALL};
use crate::host::Host;

const CAP_NAMES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The /proc/self/status mask for a list of "CAP_X" names.
pub fn cap_mask(names: &[&str]) -> u64 {
    names
        .iter()
        .filter_map(|n| {
            let short = n.trim_start_matches("CAP_");
            CAP_NAMES.iter().position(|c| *c == short)
        })
        .fold(0, |m, bit| m | (1u64 << bit))
}

fn cap_set(r: &Value, field: &str) -> Result<u64, String> {
    let s = at(r, &format!("/status/{field}"))
        .as_str()
        .ok_or_else(|| format!("no {field} in /proc/self/status"))?;
    u64::from_str_radix(s, 16).map_err(|e| format!("{field} {s:?}: {e}"))
}

fn config_caps<'a>(c: &'a Value, set: &str) -> Vec<&'a str> {
    at(c, &format!("/process/capabilities/{set}"))
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Every set in /proc/self/status equals the config's, bit for bit.
fn check_caps(r: &Value, ctx: &Ctx) -> Result<(), String> {
    for (field, set) in [
        ("CapBnd", "bounding"),
        ("CapEff", "effective"),
        ("CapPrm", "permitted"),
        ("CapInh", "inheritable"),
        ("CapAmb", "ambient"),
    ] {
        let want = cap_mask(&config_caps(ctx.config, set));
        let got = cap_set(r, field)?;
        ensure(got == want, || {
            format!("{field} is {got:016x}, config's {set} is {want:016x}")
        })?;
    }
    Ok(())
}

fn check_no_tty(r: &Value, _: &Ctx) -> Result<(), String> {
    let tty = at(r, "/tty");
    ensure(*tty == json!([false, false, false]), || {
        format!("terminal false, but stdio ttys are {tty}")
    })
}

fn set_caps_custom(c: &mut Value, _: &Path) {
    c["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"],
        "effective": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "permitted": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "inheritable": ["CAP_NET_BIND_SERVICE"],
        "ambient": []
    });
}

fn set_caps_ambient(c: &mut Value, _: &Path) {
    let two = json!(["CAP_NET_BIND_SERVICE", "CAP_KILL"]);
    let one = json!(["CAP_NET_BIND_SERVICE"]);
    c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    c["process"]["capabilities"] = json!({
        "bounding": two, "effective": one, "permitted": one,
        "inheritable": one, "ambient": one
    });
}

fn set_caps_none(c: &mut Value, _: &Path) {
    c["process"]["capabilities"] = json!({
        "bounding": [], "effective": [], "permitted": [], "inheritable": [], "ambient": []
    });
}

fn set_rlimits(c: &mut Value, _: &Path) {
    c["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512},
        {"type": "RLIMIT_NPROC", "soft": 1000, "hard": 2000},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
        {"type": "RLIMIT_MSGQUEUE", "soft": 4096, "hard": 8192}
    ]);
}

fn check_rlimits(r: &Value, ctx: &Ctx) -> Result<(), String> {
    for l in at(ctx.config, "/process/rlimits")
        .as_array()
        .into_iter()
        .flatten()
    {
        let ty = l["type"].as_str().unwrap_or("?");
        let want = json!([l["soft"], l["hard"]]);
        let got = at(r, &format!("/rlimits/{ty}"));
        ensure(*got == want, || {
            format!("{ty} is {got}, config says {want}")
        })?;
    }
    Ok(())
}

fn set_nnp_false(c: &mut Value, _: &Path) {
    c["process"]["noNewPrivileges"] = json!(false);
}

fn check_nnp(r: &Value, ctx: &Ctx) -> Result<(), String> {
    let want = if at(ctx.config, "/process/noNewPrivileges").as_bool() == Some(true) {
        "1"
    } else {
        "0"
    };
    let got = at(r, "/status/NoNewPrivs").as_str();
    ensure(got == Some(want), || {
        format!("NoNewPrivs is {got:?}, want {want}")
    })
}

fn set_user(c: &mut Value, _: &Path) {
    c["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [2000, 2001]});
}

fn check_user(r: &Value, ctx: &Ctx) -> Result<(), String> {
    let u = &ctx.config["process"]["user"];
    for (k, want) in [
        ("uid", &u["uid"]),
        ("euid", &u["uid"]),
        ("gid", &u["gid"]),
        ("egid", &u["gid"]),
    ] {
        let got = at(r, &format!("/ids/{k}"));
        ensure(got == want, || format!("{k} is {got}, config says {want}"))?;
    }
    let groups: Vec<i64> = at(r, "/ids/groups")
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    let extra: Vec<i64> = u["additionalGids"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    let gid = u["gid"].as_i64().unwrap_or(-1);
    ensure(extra.iter().all(|g| groups.contains(g)), || {
        format!("groups {groups:?} lack additionalGids {extra:?}")
    })?;
    ensure(
        groups.iter().all(|g| extra.contains(g) || *g == gid),
        || format!("groups {groups:?} hold more than additionalGids {extra:?} and gid {gid}"),
    )
}

fn set_umask(c: &mut Value, _: &Path) {
    c["process"]["user"]["umask"] = json!(0o077);
}

fn check_umask(r: &Value, ctx: &Ctx) -> Result<(), String> {
    // runc's documented default when user.umask is unset is 0022.
    let want = at(ctx.config, "/process/user/umask")
        .as_u64()
        .unwrap_or(0o022);
    let want = format!("{want:04o}");
    let got = at(r, "/status/Umask").as_str();
    ensure(got == Some(want.as_str()), || {
        format!("umask is {got:?}, want {want}")
    })
}

fn set_env(c: &mut Value, _: &Path) {
    c["process"]["env"] = json!([
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "CONFORMANCE_A=one",
        "CONFORMANCE_B=has space=and equals",
        "CONFORMANCE_EMPTY="
    ]);
}

fn check_env(r: &Value, ctx: &Ctx) -> Result<(), String> {
    for kv in at(ctx.config, "/process/env")
        .as_array()
        .into_iter()
        .flatten()
    {
        let Some((k, v)) = kv.as_str().and_then(|s| s.split_once('=')) else {
            continue;
        };
        let got = at(r, &format!("/env/{k}")).as_str();
        ensure(got == Some(v), || {
            format!("env {k} is {got:?}, config says {v:?}")
        })?;
    }
    Ok(())
}

fn check_home(r: &Value, _: &Ctx) -> Result<(), String> {
    // HOME is not in the config: runc sets it from the rootfs's /etc/passwd.
    let got = at(r, "/env/HOME").as_str();
    ensure(got == Some("/root"), || {
        format!("HOME is {got:?}, want /root from /etc/passwd")
    })
}

fn set_cwd(c: &mut Value, _: &Path) {
    c["process"]["cwd"] = json!("/tmp");
}

fn set_cwd_missing(c: &mut Value, _: &Path) {
    c["process"]["cwd"] = json!("/conformance/missing/cwd");
}

fn check_cwd(r: &Value, ctx: &Ctx) -> Result<(), String> {
    let want = &ctx.config["process"]["cwd"];
    let got = at(r, "/cwd");
    ensure(got == want, || format!("cwd is {got}, config says {want}"))
}

fn set_hostname(c: &mut Value, _: &Path) {
    c["hostname"] = json!("conformance-host");
}

fn set_domainname(c: &mut Value, _: &Path) {
    c["domainname"] = json!("conformance.example");
}

fn check_uts(r: &Value, ctx: &Ctx) -> Result<(), String> {
    for k in ["hostname", "domainname"] {
        let want = &ctx.config[k];
        if want.is_null() {
            continue;
        }
        let got = at(r, &format!("/{k}"));
        ensure(got == want, || format!("{k} is {got}, config says {want}"))?;
    }
    Ok(())
}

fn seccomp(errno_ret: Option<u32>) -> Value {
    let mut rule = json!({"names": ["getppid"], "action": "SCMP_ACT_ERRNO"});
    if let Some(e) = errno_ret {
        rule["errnoRet"] = json!(e);
    }
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [rule]
    })
}

fn set_seccomp_errno(c: &mut Value, _: &Path) {
    c["linux"]["seccomp"] = seccomp(Some(33));
}

fn set_seccomp_default_errno(c: &mut Value, _: &Path) {
    c["linux"]["seccomp"] = seccomp(None);
}

fn set_seccomp_nnp_false(c: &mut Value, p: &Path) {
    set_seccomp_errno(c, p);
    c["process"]["noNewPrivileges"] = json!(false);
}

fn seccomp_args(_: &Value) -> Vec<String> {
    ["--try", "getppid", "--try", "getpgrp"]
        .map(String::from)
        .to_vec()
}

fn check_seccomp(r: &Value, ctx: &Ctx) -> Result<(), String> {
    let mode = at(r, "/status/Seccomp").as_str();
    ensure(mode == Some("2"), || {
        format!("Seccomp is {mode:?}, want 2 (filter)")
    })?;
    // The spec's default errno for SCMP_ACT_ERRNO is EPERM.
    let want = at(ctx.config, "/linux/seccomp/syscalls/0/errnoRet")
        .as_i64()
        .unwrap_or(1);
    let blocked = at(r, "/syscalls/getppid");
    ensure(blocked["errno"].as_i64() == Some(want), || {
        format!("getppid returned {blocked}, want errno {want}")
    })?;
    let allowed = at(r, "/syscalls/getpgrp");
    ensure(allowed["errno"].as_i64() == Some(0), || {
        format!("getpgrp (not in the profile) returned {allowed}")
    })
}

fn check_no_seccomp(r: &Value, _: &Ctx) -> Result<(), String> {
    let mode = at(r, "/status/Seccomp").as_str();
    ensure(mode == Some("0"), || {
        format!("Seccomp is {mode:?} without a profile, want 0")
    })
}

fn set_oom(c: &mut Value, _: &Path) {
    c["process"]["oomScoreAdj"] = json!(123);
}

fn check_oom(r: &Value, ctx: &Ctx) -> Result<(), String> {
    let (want, got) = (
        &ctx.config["process"]["oomScoreAdj"],
        at(r, "/oom_score_adj"),
    );
    ensure(got == want, || {
        format!("oom_score_adj is {got}, config says {want}")
    })
}

fn check_fds(r: &Value, _: &Ctx) -> Result<(), String> {
    let fds: Vec<&Value> = at(r, "/fds")
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let extra: Vec<String> = fds
        .iter()
        .filter(|f| f["fd"].as_i64().is_some_and(|n| n > 2))
        .map(|f| format!("{}->{}", f["fd"], f["target"]))
        .collect();
    ensure(extra.is_empty(), || {
        format!("descriptors leaked into the container: {extra:?}")
    })
}

fn set_relative_args(c: &mut Value, _: &Path) {
    c["process"]["env"] = json!(["PATH=/usr/bin:/bin"]);
}

fn check_mempolicy(r: &Value, _: &Ctx) -> Result<(), String> {
    let mode = at(r, "/mempolicy/mode").as_i64();
    ensure(mode == Some(0), || {
        format!("memory policy {} is not MPOL_DEFAULT", at(r, "/mempolicy"))
    })
}

fn no_apparmor(h: &Host) -> Option<String> {
    (!h.apparmor).then(|| "AppArmor is not enabled on this host".to_string())
}

fn no_selinux(h: &Host) -> Option<String> {
    (!h.selinux).then(|| "SELinux is not enabled on this host".to_string())
}

fn set_apparmor(c: &mut Value, _: &Path) {
    c["process"]["apparmorProfile"] = json!("unconfined");
}

fn check_label(r: &Value, _: &Ctx) -> Result<(), String> {
    let got = at(r, "/attr_current").as_str();
    ensure(got.is_some(), || "no /proc/self/attr/current".to_string())
}

fn set_selinux(c: &mut Value, _: &Path) {
    c["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
}

macro_rules! case {
    ($name:expr, $variants:expr, $setup:expr, $check:expr) => {
        ProcCase {
            name: $name,
            variants: $variants,
            skip: $crate::cases::never,
            setup: $setup,
            probe_args: $crate::cases::no_args,
            prefix: &[],
            probe: $crate::bundle::PROBE_IN_CONTAINER,
            check: $check,
        }
    };
}
pub(crate) use case;

pub fn cases() -> Vec<ProcCase> {
    vec![
        case!("terminal-false-no-tty", ALL, no_setup, check_no_tty),
        case!("caps-default", ALL, no_setup, check_caps),
        case!("caps-custom", ALL, set_caps_custom, check_caps),
        case!("caps-ambient-nonroot", ALL, set_caps_ambient, check_caps),
        case!("caps-none", ALL, set_caps_none, check_caps),
        case!("rlimits", ALL, set_rlimits, check_rlimits),
        case!("no-new-privs-true", ALL, no_setup, check_nnp),
        case!("no-new-privs-false", ALL, set_nnp_false, check_nnp),
        case!("user-groups", ALL, set_user, check_user),
        case!("umask-default", ALL, no_setup, check_umask),
        case!("umask-set", ALL, set_umask, check_umask),
        case!("env", ALL, set_env, check_env),
        case!("env-home-from-passwd", ALL, no_setup, check_home),
        case!("cwd", ALL, set_cwd, check_cwd),
        case!("cwd-missing-created", ALL, set_cwd_missing, check_cwd),
        case!("hostname", ALL, set_hostname, check_uts),
        case!("domainname", ALL, set_domainname, check_uts),
        ProcCase {
            probe_args: seccomp_args,
            ..case!("seccomp-errno-ret", ALL, set_seccomp_errno, check_seccomp)
        },
        ProcCase {
            probe_args: seccomp_args,
            ..case!(
                "seccomp-errno-default-eperm",
                ALL,
                set_seccomp_default_errno,
                check_seccomp
            )
        },
        ProcCase {
            probe_args: seccomp_args,
            ..case!(
                "seccomp-nnp-false",
                ALL,
                set_seccomp_nnp_false,
                check_seccomp
            )
        },
        case!("seccomp-none", ALL, no_setup, check_no_seccomp),
        case!("oom-score-adj", ALL, set_oom, check_oom),
        case!("no-leaked-fds", ALL, no_setup, check_fds),
        ProcCase {
            probe: "conformance-probe",
            ..case!("args-path-lookup", ALL, set_relative_args, check_env)
        },
        case!("mempolicy-default", ALL, no_setup, check_mempolicy),
        ProcCase {
            skip: no_apparmor,
            ..case!("apparmor-profile", ALL, set_apparmor, check_label)
        },
        ProcCase {
            skip: no_selinux,
            ..case!("selinux-label", ALL, set_selinux, check_label)
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::DEFAULT_CAPS;

    #[test]
    fn cap_masks_match_the_kernel_numbering() {
        assert_eq!(cap_mask(&["CAP_CHOWN"]), 1);
        assert_eq!(
            cap_mask(&["CAP_KILL", "CAP_NET_BIND_SERVICE"]),
            (1 << 5) | (1 << 10)
        );
        // Docker's default set, as /proc/self/status prints it.
        assert_eq!(cap_mask(DEFAULT_CAPS), 0x00000000a80425fb);
    }
}
