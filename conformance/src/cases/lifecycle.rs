//! Lifecycle: state transitions, kill and delete semantics, bad input.

use std::fs;
use std::path::Path;

use serde_json::{json, Value};

use super::{ensure, never, LifeCase};
use crate::bundle::{base_spec, Bundle};
use crate::host::Host;
use crate::runtime::{Guard, Harness};

pub type R = Result<(), String>;

pub fn err<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, String> {
    r.map_err(|e| format!("harness: {e}"))
}

/// A bundle with a config, an id, and a guard that force-deletes it.
pub struct Made<'h> {
    // Declared first so the container goes before its bundle directory.
    _guard: Guard<'h>,
    pub bundle: Bundle,
    pub id: String,
}

pub fn make<'h>(
    h: &'h Harness,
    args: &[&str],
    edit: impl FnOnce(&mut Value),
) -> Result<Made<'h>, String> {
    let bundle = err(h.bundle())?;
    let mut c = base_spec(args);
    edit(&mut c);
    err(bundle.write_config(&c))?;
    let id = h.new_id();
    Ok(Made {
        _guard: h.guard(&id),
        bundle,
        id,
    })
}

pub fn create(h: &Harness, m: &Made, extra: &[&str]) -> R {
    let r = err(h.create(&m.bundle, &m.id, extra))?;
    ensure(r.ok(), || format!("create failed: {}", r.why()))
}

pub fn start(h: &Harness, id: &str) -> R {
    let r = err(h.rt(&["start", id]))?;
    ensure(r.ok(), || format!("start failed: {}", r.why()))
}

/// A created (not started) `sleep` container.
pub fn created<'h>(h: &'h Harness, edit: impl FnOnce(&mut Value)) -> Result<Made<'h>, String> {
    let m = make(h, &["sleep", "1000"], edit)?;
    create(h, &m, &[])?;
    Ok(m)
}

pub fn running(h: &Harness) -> Result<Made<'_>, String> {
    let m = created(h, |_| {})?;
    start(h, &m.id)?;
    Ok(m)
}

pub fn state_pid(h: &Harness, id: &str) -> Result<i64, String> {
    let s = h.state(id)?;
    s["pid"]
        .as_i64()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("state has no pid: {s}"))
}

/// True while the process exists and is not a zombie.
pub fn alive(pid: i64) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn gone(h: &Harness, id: &str) -> R {
    ensure(h.state(id).is_err(), || {
        format!("{id} still has a state after delete")
    })
}

fn canonical(p: &Path) -> String {
    p.canonicalize()
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

fn state_created(h: &Harness) -> R {
    let m = created(h, |c| {
        c["annotations"] = json!({"org.conformance.key": "value"});
    })?;
    let s = h.state(&m.id)?;
    ensure(s["status"] == "created", || {
        format!("status {} after create", s["status"])
    })?;
    ensure(s["id"] == m.id.as_str(), || format!("state id {}", s["id"]))?;
    ensure(s["ociVersion"].is_string(), || {
        format!("no ociVersion in {s}")
    })?;
    let pid = state_pid(h, &m.id)?;
    ensure(alive(pid), || {
        format!("state pid {pid} is not a live process")
    })?;
    let want = canonical(&m.bundle.dir);
    ensure(s["bundle"] == want.as_str(), || {
        format!("state bundle {} want {want}", s["bundle"])
    })?;
    ensure(s["annotations"]["org.conformance.key"] == "value", || {
        format!("annotations missing from state: {}", s["annotations"])
    })
}

fn state_running(h: &Harness) -> R {
    let m = created(h, |_| {})?;
    let before = state_pid(h, &m.id)?;
    start(h, &m.id)?;
    ensure(h.status(&m.id)? == "running", || {
        "status is not running after start".into()
    })?;
    let after = state_pid(h, &m.id)?;
    ensure(before == after, || {
        format!("pid changed from {before} to {after} on start")
    })
}

fn state_stopped(h: &Harness) -> R {
    let m = make(h, &["true"], |_| {})?;
    create(h, &m, &[])?;
    start(h, &m.id)?;
    h.wait_status(&m.id, "stopped")
}

fn state_unknown(h: &Harness) -> R {
    let r = err(h.rt(&["state", "conformance-no-such-container"]))?;
    ensure(!r.ok() && !r.stderr.trim().is_empty(), || {
        format!("state of an unknown id: {} (want an error)", r.why())
    })
}

fn create_duplicate(h: &Harness) -> R {
    let m = created(h, |_| {})?;
    let again = err(h.create(&m.bundle, &m.id, &[]))?;
    ensure(!again.ok(), || {
        "a second create with the same id succeeded".into()
    })?;
    ensure(h.status(&m.id)? == "created", || {
        "the first container was disturbed".into()
    })
}

fn start_twice(h: &Harness) -> R {
    let m = running(h)?;
    let r = err(h.rt(&["start", &m.id]))?;
    ensure(!r.ok(), || "start of a running container succeeded".into())?;
    ensure(h.status(&m.id)? == "running", || {
        "container not running after 2nd start".into()
    })
}

fn start_stopped(h: &Harness) -> R {
    let m = make(h, &["true"], |_| {})?;
    create(h, &m, &[])?;
    start(h, &m.id)?;
    h.wait_status(&m.id, "stopped")?;
    let r = err(h.rt(&["start", &m.id]))?;
    ensure(!r.ok(), || "start of a stopped container succeeded".into())
}

fn kill_created(h: &Harness) -> R {
    let m = created(h, |_| {})?;
    let r = err(h.rt(&["kill", &m.id, "KILL"]))?;
    ensure(r.ok(), || {
        format!("kill of a created container: {}", r.why())
    })?;
    h.wait_status(&m.id, "stopped")
}

fn kill_default_term(h: &Harness) -> R {
    let script = "trap 'exit 0' TERM; while true; do sleep 1; done";
    let m = make(h, &["sh", "-c", script], |_| {})?;
    create(h, &m, &[])?;
    start(h, &m.id)?;
    // Give the shell a moment to install its trap: wait for a child.
    let pid = state_pid(h, &m.id)?;
    for _ in 0..250 {
        if fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .is_ok_and(|c| !c.trim().is_empty())
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let r = err(h.rt(&["kill", &m.id]))?;
    ensure(r.ok(), || {
        format!("kill with the default signal: {}", r.why())
    })?;
    h.wait_status(&m.id, "stopped")
}

fn kill_stopped(h: &Harness) -> R {
    let m = make(h, &["true"], |_| {})?;
    create(h, &m, &[])?;
    start(h, &m.id)?;
    h.wait_status(&m.id, "stopped")?;
    let r = err(h.rt(&["kill", &m.id, "KILL"]))?;
    // runtime-spec: signalling a container that is neither created nor
    // running MUST generate an error and have no effect.
    ensure(!r.ok(), || "kill of a stopped container succeeded".into())?;
    ensure(h.status(&m.id)? == "stopped", || "state changed".into())
}

fn kill_all(h: &Harness) -> R {
    let m = running(h)?;
    let pidf = m.bundle.dir.join("exec.pid");
    let pf = pidf.display().to_string();
    let r = err(h.run_detached(
        h.cmd(&[
            "exec",
            "--detach",
            "--pid-file",
            &pf,
            &m.id,
            "sleep",
            "1000",
        ]),
        &m.bundle.dir,
        "exec",
    ))?;
    ensure(r.ok(), || format!("exec --detach: {}", r.why()))?;
    let epid: i64 = err(fs::read_to_string(&pidf))?
        .trim()
        .parse()
        .map_err(|e| format!("exec pid file: {e}"))?;
    let r = err(h.rt(&["kill", "--all", &m.id, "KILL"]))?;
    ensure(r.ok(), || format!("kill --all: {}", r.why()))?;
    h.wait_status(&m.id, "stopped")?;
    for _ in 0..250 {
        if !alive(epid) {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Err(format!("exec'd process {epid} survived kill --all"))
}

fn delete_created(h: &Harness) -> R {
    let m = created(h, |_| {})?;
    let pid = state_pid(h, &m.id)?;
    let r = err(h.rt(&["delete", &m.id]))?;
    // runc stops and deletes a created container without --force.
    ensure(r.ok(), || {
        format!("delete of a created container: {}", r.why())
    })?;
    gone(h, &m.id)?;
    ensure(!alive(pid), || format!("init {pid} survived delete"))
}

fn delete_running(h: &Harness) -> R {
    let m = running(h)?;
    let r = err(h.rt(&["delete", &m.id]))?;
    ensure(!r.ok(), || {
        "delete without --force removed a running container".into()
    })?;
    ensure(h.status(&m.id)? == "running", || {
        "container not running after refused delete".into()
    })
}

fn delete_force(h: &Harness) -> R {
    let m = running(h)?;
    let pid = state_pid(h, &m.id)?;
    let r = err(h.rt(&["delete", "--force", &m.id]))?;
    ensure(r.ok(), || format!("delete --force: {}", r.why()))?;
    gone(h, &m.id)?;
    ensure(!alive(pid), || {
        format!("init {pid} survived delete --force")
    })
}

fn delete_stopped(h: &Harness) -> R {
    let m = make(h, &["true"], |_| {})?;
    create(h, &m, &[])?;
    start(h, &m.id)?;
    h.wait_status(&m.id, "stopped")?;
    let r = err(h.rt(&["delete", &m.id]))?;
    ensure(r.ok(), || {
        format!("delete of a stopped container: {}", r.why())
    })?;
    gone(h, &m.id)
}

/// The container's v1 (or v2) cgroup directories as the host sees them.
pub fn host_cgroup_dirs(pid: i64) -> Vec<std::path::PathBuf> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        let dir = match ctrls {
            "" => Path::new("/sys/fs/cgroup/unified").join(path.trim_start_matches('/')),
            c if c.starts_with("name=") => continue,
            c => Path::new("/sys/fs/cgroup")
                .join(c.split(',').next().unwrap_or(c))
                .join(path.trim_start_matches('/')),
        };
        if dir.is_dir() && path != "/" {
            out.push(dir);
        }
    }
    out
}

fn delete_removes_cgroup(h: &Harness) -> R {
    let m = running(h)?;
    let dirs = host_cgroup_dirs(state_pid(h, &m.id)?);
    ensure(!dirs.is_empty(), || {
        "found no cgroup directory for the container".into()
    })?;
    let r = err(h.rt(&["delete", "--force", &m.id]))?;
    ensure(r.ok(), || format!("delete --force: {}", r.why()))?;
    let left: Vec<String> = dirs
        .iter()
        .filter(|d| d.exists())
        .map(|d| d.display().to_string())
        .collect();
    ensure(left.is_empty(), || format!("cgroups left behind: {left:?}"))
}

fn cgroups_path(h: &Harness) -> R {
    let path = format!("/conformance-{}", h.new_id());
    let p2 = path.clone();
    let m = created(h, move |c| c["linux"]["cgroupsPath"] = json!(p2))?;
    let pid = state_pid(h, &m.id)?;
    let text = err(fs::read_to_string(format!("/proc/{pid}/cgroup")))?;
    let pids_line = text
        .lines()
        .find(|l| {
            l.split(':')
                .nth(1)
                .is_some_and(|c| c.split(',').any(|x| x == "pids" || x == "memory"))
                || l.starts_with("0::")
        })
        .unwrap_or("");
    ensure(pids_line.ends_with(&path), || {
        format!("cgroupsPath {path} not used: {text:?}")
    })
}

pub fn need_freezer(host: &Host) -> Option<String> {
    (!host.v2_only && !host.has_v1("freezer")).then(|| "no freezer cgroup".to_string())
}

fn pause_resume(h: &Harness) -> R {
    let m = running(h)?;
    let r = err(h.rt(&["pause", &m.id]))?;
    ensure(r.ok(), || format!("pause: {}", r.why()))?;
    ensure(h.status(&m.id)? == "paused", || {
        "status is not paused".into()
    })?;
    let r = err(h.rt(&["resume", &m.id]))?;
    ensure(r.ok(), || format!("resume: {}", r.why()))?;
    ensure(h.status(&m.id)? == "running", || {
        "status is not running after resume".into()
    })
}

/// Bad input: an error, and no container left behind.
fn rejects(h: &Harness, write: impl FnOnce(&Bundle)) -> R {
    let m = make(h, &["sleep", "1000"], |_| {})?;
    write(&m.bundle);
    let r = err(h.create(&m.bundle, &m.id, &[]))?;
    ensure(!r.ok(), || "create succeeded".into())?;
    ensure(!r.stderr.trim().is_empty(), || {
        "create failed without a message".into()
    })?;
    ensure(h.state(&m.id).is_err(), || {
        "a failed create left a container behind".into()
    })
}

fn missing_config(h: &Harness) -> R {
    rejects(h, |b| {
        let _ = fs::remove_file(b.dir.join("config.json"));
    })
}

fn invalid_config(h: &Harness) -> R {
    rejects(h, |b| {
        let _ = fs::write(b.dir.join("config.json"), "{\"ociVersion\": ");
    })
}

fn missing_binary(h: &Harness) -> R {
    rejects(h, |b| {
        let mut c = base_spec(&["/no/such/binary"]);
        c["process"]["cwd"] = json!("/");
        let _ = b.write_config(&c);
    })
}

fn relative_bundle(h: &Harness) -> R {
    let m = make(h, &["sleep", "1000"], |_| {})?;
    let parent = m.bundle.dir.parent().ok_or("bundle has no parent")?;
    let name = m
        .bundle
        .dir
        .file_name()
        .ok_or("bundle has no name")?
        .to_string_lossy()
        .into_owned();
    let mut cmd = h.cmd(&["create", "--bundle", &name, &m.id]);
    cmd.current_dir(parent);
    let r = err(h.run_detached(cmd, &m.bundle.dir, "create"))?;
    ensure(r.ok(), || {
        format!("create with a relative bundle: {}", r.why())
    })?;
    let s = h.state(&m.id)?;
    let want = canonical(&m.bundle.dir);
    ensure(s["bundle"] == want.as_str(), || {
        format!("state bundle {} want absolute {want}", s["bundle"])
    })
}

macro_rules! life {
    ($name:expr, $run:expr) => {
        LifeCase {
            name: $name,
            skip: never,
            run: $run,
        }
    };
}

pub fn cases() -> Vec<LifeCase> {
    vec![
        life!("state-created", state_created),
        life!("state-running", state_running),
        life!("state-stopped", state_stopped),
        life!("state-unknown-id-fails", state_unknown),
        life!("create-duplicate-id-fails", create_duplicate),
        life!("create-relative-bundle", relative_bundle),
        life!("create-missing-config-fails", missing_config),
        life!("create-invalid-config-fails", invalid_config),
        life!("create-missing-binary-fails", missing_binary),
        life!("start-running-fails", start_twice),
        life!("start-stopped-fails", start_stopped),
        life!("kill-created", kill_created),
        life!("kill-default-sigterm", kill_default_term),
        life!("kill-stopped-fails", kill_stopped),
        life!("kill-all", kill_all),
        life!("delete-created", delete_created),
        life!("delete-running-fails", delete_running),
        life!("delete-force-running", delete_force),
        life!("delete-stopped", delete_stopped),
        life!("delete-removes-cgroups", delete_removes_cgroup),
        life!("cgroups-path", cgroups_path),
        LifeCase {
            name: "pause-resume",
            skip: need_freezer,
            run: pause_resume,
        },
    ]
}
