//! The command line as real callers send it (see runc's man pages and the
//! shims' command lines): exec's override flags, a process.json that
//! differs from config.json, signal spellings, `--flag=value`, global
//! `--log` flags, and delete of unknown ids.

use std::fs;

use serde_json::{json, Value};

use super::lifecycle::{create, created, err, make, running, Made, R};
use super::process::cap_mask;
use super::{at, ensure, never, LifeCase};
use crate::bundle::{DEFAULT_CAPS, PROBE_IN_CONTAINER};
use crate::runtime::Harness;

fn parse(stdout: &str) -> Result<Value, String> {
    stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| format!("no probe report in {stdout:?}"))
}

/// `exec FLAGS... ID probe` into `m`, parsed.
fn exec_probe(h: &Harness, m: &Made, flags: &[&str]) -> Result<Value, String> {
    let mut args = vec!["exec"];
    args.extend_from_slice(flags);
    args.push(&m.id);
    args.push(PROBE_IN_CONTAINER);
    let r = err(h.rt(&args))?;
    ensure(r.ok(), || format!("exec {flags:?}: {}", r.why()))?;
    parse(&r.stdout)
}

fn exec_user(h: &Harness) -> R {
    let m = running(h)?;
    let r = exec_probe(h, &m, &["--user", "1000:1001"])?;
    let ids = (at(&r, "/ids/uid").as_i64(), at(&r, "/ids/gid").as_i64());
    ensure(ids == (Some(1000), Some(1001)), || {
        format!("exec --user 1000:1001 ran as {ids:?}")
    })
}

fn exec_cwd(h: &Harness) -> R {
    let m = running(h)?;
    let r = exec_probe(h, &m, &["--cwd", "/tmp"])?;
    ensure(r["cwd"] == "/tmp", || {
        format!("exec --cwd /tmp ran in {}", r["cwd"])
    })
}

fn exec_env(h: &Harness) -> R {
    let m = running(h)?;
    let r = exec_probe(h, &m, &["--env", "CONFORMANCE_X=1"])?;
    ensure(at(&r, "/env/CONFORMANCE_X") == "1", || {
        "exec --env var missing".into()
    })?;
    // --env adds to the config's env; it does not replace it.
    ensure(at(&r, "/env/TERM") == "xterm", || {
        format!("config env lost: {}", r["env"])
    })
}

fn exec_cap(h: &Harness) -> R {
    let m = running(h)?;
    let r = exec_probe(h, &m, &["--cap", "CAP_SYS_ADMIN"])?;
    let eff = at(&r, "/status/CapEff").as_str().unwrap_or("");
    let eff = u64::from_str_radix(eff, 16).map_err(|e| format!("CapEff {eff:?}: {e}"))?;
    let want = cap_mask(DEFAULT_CAPS) | cap_mask(&["CAP_SYS_ADMIN"]);
    ensure(eff == want, || {
        format!("exec --cap: CapEff {eff:016x}, want {want:016x}")
    })
}

fn exec_nnp_flag(h: &Harness) -> R {
    let m = created(h, |c| c["process"]["noNewPrivileges"] = json!(false))?;
    super::lifecycle::start(h, &m.id)?;
    let r = exec_probe(h, &m, &["--no-new-privs"])?;
    let nnp = at(&r, "/status/NoNewPrivs");
    ensure(nnp == "1", || {
        format!("exec --no-new-privs: NoNewPrivs {nnp}")
    })
}

fn exec_process_overrides(h: &Harness) -> R {
    let m = running(h)?;
    // A process.json unlike config.json: it, not the config, decides.
    let process = json!({
        "terminal": false,
        "user": {"uid": 1000, "gid": 1000},
        "args": [PROBE_IN_CONTAINER],
        "env": ["PATH=/bin", "CONFORMANCE_P=1"],
        "cwd": "/tmp",
        "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
            "permitted": ["CAP_KILL"], "inheritable": [], "ambient": []},
        "noNewPrivileges": true
    });
    let p = m.bundle.dir.join("other-process.json");
    err(fs::write(&p, process.to_string()))?;
    let ps = p.display().to_string();
    let r = err(h.rt(&["exec", "--process", &ps, &m.id]))?;
    ensure(r.ok(), || format!("exec --process: {}", r.why()))?;
    let rep = parse(&r.stdout)?;
    ensure(at(&rep, "/ids/uid") == 1000, || {
        format!("uid {}", at(&rep, "/ids/uid"))
    })?;
    ensure(rep["cwd"] == "/tmp", || format!("cwd {}", rep["cwd"]))?;
    ensure(at(&rep, "/env/CONFORMANCE_P") == "1", || {
        "process.json env missing".into()
    })?;
    ensure(at(&rep, "/env/TERM").is_null(), || {
        "config.json env leaked into exec --process".into()
    })?;
    let bnd = at(&rep, "/status/CapBnd").as_str().unwrap_or("");
    let want = format!("{:016x}", cap_mask(&["CAP_KILL"]));
    ensure(bnd == want, || {
        format!("CapBnd {bnd}, want {want} from process.json")
    })
}

fn kill_spelling(h: &Harness, sig: &str) -> R {
    let m = running(h)?;
    let r = err(h.rt(&["kill", &m.id, sig]))?;
    ensure(r.ok(), || format!("kill {sig}: {}", r.why()))?;
    h.wait_status(&m.id, "stopped")
}

fn kill_numeric(h: &Harness) -> R {
    kill_spelling(h, "9")
}

fn kill_sig_prefix(h: &Harness) -> R {
    kill_spelling(h, "SIGKILL")
}

fn delete_unknown(h: &Harness) -> R {
    let r = err(h.rt(&["delete", "conformance-no-such-container"]))?;
    ensure(!r.ok(), || "delete of an unknown id succeeded".into())
}

fn delete_force_unknown(h: &Harness) -> R {
    // runc: --force on an id that does not exist is not an error, which
    // lets shims clean up after a create that never finished.
    let r = err(h.rt(&["delete", "--force", "conformance-no-such-container"]))?;
    ensure(r.ok(), || {
        format!("delete --force of an unknown id: {}", r.why())
    })
}

fn equals_form(h: &Harness) -> R {
    let m = make(h, &["sleep", "1000"], |_| {})?;
    let b = format!("--bundle={}", m.bundle.dir.display());
    let pidf = m.bundle.dir.join("eq.pid");
    let p = format!("--pid-file={}", pidf.display());
    let r = err(h.run_detached(h.cmd(&["create", &b, &p, &m.id]), &m.bundle.dir, "create"))?;
    ensure(r.ok(), || {
        format!("create --bundle=B --pid-file=P: {}", r.why())
    })?;
    ensure(pidf.exists(), || "--pid-file=P wrote no file".into())?;
    ensure(h.status(&m.id)? == "created", || "not created".into())
}

fn global_log_flags(h: &Harness) -> R {
    let m = make(h, &["sleep", "1000"], |_| {})?;
    let log = m.bundle.dir.join("log.json").display().to_string();
    let b = m.bundle.dir.display().to_string();
    let mut cmd = std::process::Command::new(&h.runtime);
    cmd.args(["--root"])
        .arg(&h.state_root)
        .args([
            "--log",
            &log,
            "--log-format",
            "json",
            "create",
            "--bundle",
            &b,
            &m.id,
        ])
        .stdin(std::process::Stdio::null());
    let r = err(h.run_detached(cmd, &m.bundle.dir, "create"))?;
    ensure(r.ok(), || {
        format!("create with --log --log-format json: {}", r.why())
    })?;
    create_state_ok(h, &m)
}

fn create_state_ok(h: &Harness, m: &Made) -> R {
    ensure(h.status(&m.id)? == "created", || "not created".into())
}

fn create_then_state(h: &Harness) -> R {
    // The plain form, as a control for the two cases above.
    let m = make(h, &["sleep", "1000"], |_| {})?;
    create(h, &m, &[])?;
    create_state_ok(h, &m)
}

fn devices_default_deny(h: &Harness) -> R {
    // CAP_MKNOD is in the default set, so only the device cgroup stands
    // between the container and a node it makes for a host device.
    let script = "mknod /tmp/cf-dev c 240 7 && cat /tmp/cf-dev; echo status=$?";
    let m = make(h, &["sh", "-c", script], |_| {})?;
    let b = m.bundle.dir.display().to_string();
    let r = err(h.rt(&["run", "--bundle", &b, &m.id]))?;
    let all = format!("{}{}", r.stdout, r.stderr);
    ensure(
        all.contains("status=1") && all.contains("Operation not permitted"),
        || format!("a device node the config never allowed could be opened: {all:?}"),
    )
}

pub fn cases() -> Vec<LifeCase> {
    let c = |name, run| LifeCase {
        name,
        skip: never,
        run,
    };
    vec![
        c("exec-flag-user", exec_user),
        c("exec-flag-cwd", exec_cwd),
        c("exec-flag-env", exec_env),
        c("exec-flag-cap", exec_cap),
        c("exec-flag-no-new-privs", exec_nnp_flag),
        c("exec-process-overrides-config", exec_process_overrides),
        c("kill-numeric-signal", kill_numeric),
        c("kill-sig-prefixed-name", kill_sig_prefix),
        c("delete-unknown-id-fails", delete_unknown),
        c("delete-force-unknown-id-succeeds", delete_force_unknown),
        c("devices-cgroup-default-deny", devices_default_deny),
        c("cli-create-plain", create_then_state),
        c("cli-flag-equals-value", equals_form),
        c("cli-global-log-flags", global_log_flags),
    ]
}
