//! Operations on a live container beyond the OCI minimum that engines
//! send anyway: pause/resume interplay and `update`.

use std::fs;

use super::lifecycle::{alive, err, host_cgroup_dirs, need_freezer, running, state_pid, R};
use super::{ensure, LifeCase};
use crate::runtime::Harness;

fn pause(h: &Harness, id: &str) -> R {
    let r = err(h.rt(&["pause", id]))?;
    ensure(r.ok(), || format!("pause: {}", r.why()))
}

fn exec_paused(h: &Harness) -> R {
    let m = running(h)?;
    pause(h, &m.id)?;
    let r = err(h.rt(&["exec", &m.id, "true"]))?;
    ensure(!r.ok(), || "exec into a paused container succeeded".into())?;
    ensure(h.status(&m.id)? == "paused", || {
        "a refused exec changed the state".into()
    })
}

fn delete_force_paused(h: &Harness) -> R {
    let m = running(h)?;
    let pid = state_pid(h, &m.id)?;
    let dirs = host_cgroup_dirs(pid);
    pause(h, &m.id)?;
    let r = err(h.rt(&["delete", "--force", &m.id]))?;
    ensure(r.ok(), || {
        format!("delete --force of a paused container: {}", r.why())
    })?;
    ensure(h.state(&m.id).is_err(), || "container still exists".into())?;
    // A frozen task cannot die: the runtime must thaw it, or it and its
    // cgroups stay behind.
    for _ in 0..250 {
        if !alive(pid) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    ensure(!alive(pid), || {
        format!("init {pid} is still alive (frozen?)")
    })?;
    let left: Vec<String> = dirs
        .iter()
        .filter(|d| d.exists())
        .map(|d| d.display().to_string())
        .collect();
    ensure(left.is_empty(), || format!("cgroups left behind: {left:?}"))
}

/// The container's memory limit as the host's cgroup file shows it.
fn host_memory_limit(pid: i64) -> Result<String, String> {
    for d in host_cgroup_dirs(pid) {
        for f in ["memory.limit_in_bytes", "memory.max"] {
            if let Ok(v) = fs::read_to_string(d.join(f)) {
                return Ok(v.trim().to_string());
            }
        }
    }
    Err("no memory limit file in the container's cgroups".into())
}

fn update_stdin(h: &Harness) -> R {
    let m = running(h)?;
    let pid = state_pid(h, &m.id)?;
    let res = m.bundle.dir.join("resources.json");
    err(fs::write(&res, r#"{"memory": {"limit": 100663296}}"#))?;
    let mut cmd = h.cmd(&["update", "--resources", "-", &m.id]);
    cmd.stdin(err(fs::File::open(&res))?);
    let r = err(h.run(cmd))?;
    ensure(r.ok(), || format!("update --resources -: {}", r.why()))?;
    let got = host_memory_limit(pid)?;
    ensure(got == "100663296", || {
        format!("memory limit is {got} after update, want 100663296")
    })
}

fn update_flag(h: &Harness) -> R {
    let m = running(h)?;
    let pid = state_pid(h, &m.id)?;
    let r = err(h.rt(&["update", "--memory", "83886080", &m.id]))?;
    ensure(r.ok(), || format!("update --memory: {}", r.why()))?;
    let got = host_memory_limit(pid)?;
    ensure(got == "83886080", || {
        format!("memory limit is {got} after update, want 83886080")
    })
}

fn need_memory(h: &crate::host::Host) -> Option<String> {
    (!h.v2_only && !h.has_v1("memory")).then(|| "no memory cgroup".to_string())
}

pub fn cases() -> Vec<LifeCase> {
    vec![
        LifeCase {
            name: "exec-paused-fails",
            skip: need_freezer,
            run: exec_paused,
        },
        LifeCase {
            name: "delete-force-paused",
            skip: need_freezer,
            run: delete_force_paused,
        },
        LifeCase {
            name: "update-resources-stdin",
            skip: need_memory,
            run: update_stdin,
        },
        LifeCase {
            name: "update-memory-flag",
            skip: need_memory,
            run: update_flag,
        },
    ]
}
