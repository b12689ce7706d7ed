//! Hooks: the order they run in, the state JSON each one reads on stdin,
//! their environment, and what a failing hook does to the lifecycle.
//!
//! Each hook appends its name to `order` and saves its stdin and env in a
//! host directory. createContainer runs in the container's namespaces
//! before pivot_root, so host paths still resolve; startContainer runs
//! after it, so it uses the container's /bin/sh and a bind mount of that
//! directory at /hookout.

use std::fs;
use std::path::Path;

use serde_json::{json, Value};

use super::lifecycle::{alive, create, err, make, start, state_pid, Made, R};
use super::{ensure, never, LifeCase};
use crate::runtime::Harness;

const IN_CONTAINER: &str = "/hookout";

fn hook(name: &str, dir: &str, extra: &str) -> Value {
    let script = format!(
        "echo {name} >> {dir}/order; cat > {dir}/{name}.json; env > {dir}/{name}.env{extra}"
    );
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", script],
        "env": [format!("CONFORMANCE_HOOK={name}"), "PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
    })
}

/// Adds every hook kind, each recording into `out`. `fail` names a kind
/// whose hook exits 1 after recording.
fn add_hooks(c: &mut Value, out: &Path, fail: Option<&str>) {
    let host = out.display().to_string();
    let mut hooks = serde_json::Map::new();
    for kind in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        let dir = if kind == "startContainer" {
            IN_CONTAINER
        } else {
            host.as_str()
        };
        let extra = if fail == Some(kind) { "; exit 1" } else { "" };
        hooks.insert(kind.to_string(), json!([hook(kind, dir, extra)]));
    }
    c["hooks"] = Value::Object(hooks);
    if let Some(m) = c["mounts"].as_array_mut() {
        m.push(json!({"destination": IN_CONTAINER, "type": "bind", "source": host, "options": ["rbind", "rw"]}));
    }
}

fn order(out: &Path) -> Vec<String> {
    fs::read_to_string(out.join("order"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

fn hooked<'h>(
    h: &'h Harness,
    fail: Option<&str>,
) -> Result<(Made<'h>, std::path::PathBuf), String> {
    let out = err(h.scratch("hooks"))?;
    let o2 = out.clone();
    let m = make(h, &["sleep", "1000"], move |c| add_hooks(c, &o2, fail))?;
    Ok((m, out))
}

/// Starts a hooked container, waits until its init runs `sleep`, and
/// returns the init's pid. The
/// startContainer hook runs in the container just before that exec, and
/// `start` may return first (runc's does): a delete right after start
/// could kill the hook mid-write, on any runtime, when the host is slow.
fn start_hooked(h: &Harness, m: &Made<'_>) -> Result<i64, String> {
    let pid = state_pid(h, &m.id)?;
    start(h, &m.id)?;
    for _ in 0..500 {
        let argv = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if argv == b"sleep\x001000\x00" {
            return Ok(pid);
        }
        ensure(alive(pid), || {
            format!("init {pid} ended before it ran sleep")
        })?;
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Err(format!("init {pid} did not run sleep within 10 s of start"))
}

fn pos(order: &[String], name: &str) -> Result<usize, String> {
    order
        .iter()
        .position(|n| n == name)
        .ok_or_else(|| format!("{name} hook did not run (ran: {order:?})"))
}

fn hooks_order(h: &Harness) -> R {
    let (m, out) = hooked(h, None)?;
    create(h, &m, &[])?;
    start_hooked(h, &m)?;
    let r = err(h.rt(&["delete", "--force", &m.id]))?;
    ensure(r.ok(), || format!("delete --force: {}", r.why()))?;
    let o = order(&out);
    let p = |n| pos(&o, n);
    // runtime-spec: createRuntime, createContainer, startContainer,
    // poststart, poststop in that order; prestart before pivot_root, i.e.
    // before createContainer finishes the create step.
    let seq = [
        p("createRuntime")?,
        p("createContainer")?,
        p("startContainer")?,
        p("poststart")?,
        p("poststop")?,
    ];
    ensure(seq.windows(2).all(|w| w[0] < w[1]), || {
        format!("hooks ran in order {o:?}")
    })?;
    ensure(p("prestart")? < p("createContainer")?, || {
        format!("prestart ran after createContainer: {o:?}")
    })?;
    ensure(o.len() == 6, || format!("hooks ran more than once: {o:?}"))
}

/// Which part of the state JSON a case checks, so one runtime quirk does
/// not hide the others.
#[derive(Clone, Copy, PartialEq)]
enum Field {
    Id,
    Bundle,
    Status,
    Pid,
}

fn hooks_state(h: &Harness, field: Field) -> R {
    let (m, out) = hooked(h, None)?;
    create(h, &m, &[])?;
    let pid = start_hooked(h, &m)?;
    let r = err(h.rt(&["delete", "--force", &m.id]))?;
    ensure(r.ok(), || format!("delete --force: {}", r.why()))?;
    let bundle = m
        .bundle
        .dir
        .canonicalize()
        .unwrap_or(m.bundle.dir.clone())
        .display()
        .to_string();
    for (kind, status) in [
        ("prestart", "creating"),
        ("createRuntime", "creating"),
        ("createContainer", "creating"),
        ("startContainer", "created"),
        ("poststart", "running"),
        ("poststop", "stopped"),
    ] {
        let text = fs::read_to_string(out.join(format!("{kind}.json")))
            .map_err(|e| format!("{kind} wrote no state: {e}"))?;
        let s: Value = serde_json::from_str(&text)
            .map_err(|e| format!("{kind} state is not JSON ({e}): {text:?}"))?;
        match field {
            Field::Id => {
                ensure(s["id"] == m.id.as_str(), || {
                    format!("{kind}: id {}", s["id"])
                })?;
                ensure(s["ociVersion"].is_string(), || {
                    format!("{kind}: no ociVersion")
                })?;
            }
            Field::Bundle => {
                ensure(s["bundle"] == bundle.as_str(), || {
                    format!("{kind}: bundle {} want {bundle}", s["bundle"])
                })?;
            }
            Field::Status => {
                ensure(s["status"] == status, || {
                    format!("{kind}: status {} want {status}", s["status"])
                })?;
            }
            // runtime-spec: pid as seen by the host; poststop has no process.
            Field::Pid if kind != "poststop" => {
                ensure(s["pid"] == pid, || {
                    format!("{kind}: pid {} want the init's host pid {pid}", s["pid"])
                })?;
            }
            Field::Pid => {}
        }
    }
    Ok(())
}

fn hooks_state_id(h: &Harness) -> R {
    hooks_state(h, Field::Id)
}

fn hooks_state_bundle(h: &Harness) -> R {
    hooks_state(h, Field::Bundle)
}

fn hooks_state_status(h: &Harness) -> R {
    hooks_state(h, Field::Status)
}

fn hooks_state_pid(h: &Harness) -> R {
    hooks_state(h, Field::Pid)
}

fn hooks_env(h: &Harness) -> R {
    let (m, out) = hooked(h, None)?;
    create(h, &m, &[])?;
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let env = fs::read_to_string(out.join(format!("{kind}.env")))
            .map_err(|e| format!("{kind} wrote no env: {e}"))?;
        let want = format!("CONFORMANCE_HOOK={kind}");
        ensure(env.lines().any(|l| l == want), || {
            format!("{kind} env lacks {want}: {env:?}")
        })?;
        // The hook gets its configured env, not the runtime's own.
        ensure(
            !env.lines().any(|l| l.starts_with("CONFORMANCE_LEAK=")),
            || format!("{kind} inherited the caller's env"),
        )?;
    }
    Ok(())
}

/// A failing create-time hook: create fails and leaves nothing behind.
fn failing_create_hook(h: &Harness, kind: &str) -> R {
    let (m, _out) = hooked(h, Some(kind))?;
    let r = err(h.create(&m.bundle, &m.id, &[]))?;
    ensure(!r.ok(), || {
        format!("create succeeded although the {kind} hook failed")
    })?;
    let left = h.state(&m.id);
    if let Ok(s) = &left {
        let pid = s["pid"].as_i64().unwrap_or(0);
        ensure(pid <= 0 || !alive(pid), || {
            format!("{kind} failed but init {pid} still runs")
        })?;
    }
    ensure(left.is_err(), || {
        format!("a failed create ({kind}) left a container behind")
    })
}

fn prestart_fails(h: &Harness) -> R {
    failing_create_hook(h, "prestart")
}

fn create_runtime_fails(h: &Harness) -> R {
    failing_create_hook(h, "createRuntime")
}

fn create_container_fails(h: &Harness) -> R {
    failing_create_hook(h, "createContainer")
}

fn poststop_fails(h: &Harness) -> R {
    let (m, out) = hooked(h, Some("poststop"))?;
    create(h, &m, &[])?;
    start_hooked(h, &m)?;
    let r = err(h.rt(&["delete", "--force", &m.id]))?;
    // runtime-spec: a failing poststop hook is logged; the lifecycle goes on.
    ensure(order(&out).iter().any(|n| n == "poststop"), || {
        "poststop hook did not run".into()
    })?;
    ensure(r.ok(), || {
        format!("delete failed because poststop failed: {}", r.why())
    })?;
    ensure(h.state(&m.id).is_err(), || {
        "container still exists after delete".into()
    })
}

fn hook_env_not_leaked(h: &Harness) -> R {
    // Run create with a variable in the runtime's own environment.
    let (m, out) = hooked(h, None)?;
    let b = m.bundle.dir.display().to_string();
    let mut cmd = h.cmd(&["create", "--bundle", &b, &m.id]);
    cmd.env("CONFORMANCE_LEAK", "1");
    let r = err(h.run_detached(cmd, &m.bundle.dir, "create"))?;
    ensure(r.ok(), || format!("create failed: {}", r.why()))?;
    let env = fs::read_to_string(out.join("createRuntime.env")).unwrap_or_default();
    ensure(!env.contains("CONFORMANCE_LEAK="), || {
        "the hook inherited the runtime's environment".into()
    })
}

pub fn cases() -> Vec<LifeCase> {
    let c = |name, run| LifeCase {
        name,
        skip: never,
        run,
    };
    vec![
        c("hooks-order", hooks_order),
        c("hooks-state-id", hooks_state_id),
        c("hooks-state-bundle", hooks_state_bundle),
        c("hooks-state-status", hooks_state_status),
        c("hooks-state-pid", hooks_state_pid),
        c("hooks-env", hooks_env),
        c("hooks-env-only-configured", hook_env_not_leaked),
        c("hooks-prestart-failure-aborts-create", prestart_fails),
        c(
            "hooks-createruntime-failure-aborts-create",
            create_runtime_fails,
        ),
        c(
            "hooks-createcontainer-failure-aborts-create",
            create_container_fails,
        ),
        c("hooks-poststop-failure-delete-succeeds", poststop_fails),
    ]
}
