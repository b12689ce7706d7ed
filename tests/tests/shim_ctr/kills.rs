//! The SIGKILLed-shim scenarios' steps: kill a shim under a running task
//! or during a create, clean up as a client would, take the census.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use pinc_tests::daemons::{describe, wait_until, CMD_TIMEOUT};
use pinc_tests::shim::{
    alive, leftovers, mounts_under, pids_mentioning, serving_shim, shim_root, RUNTIME,
};
use pinc_tests::stderr;

use super::Ctr;

/// Runs a `sleep 600` task with `runtime` (and its shim `binary`), SIGKILLs
/// the shim, waits until containerd notices, then cleans up as a client
/// would and takes the census of `root` (the runtime's state root). Returns
/// what `ctr task ls` showed after the notice (None: not listed) and
/// everything that went wrong.
pub fn kill_shim_under_running_task(
    c: &Ctr,
    (runtime, binary): (&str, &str),
    root: &Path,
    id: &str,
) -> (Option<String>, Vec<String>) {
    let mut problems = Vec::new();
    let out = c.out(&Ctr::run_args(runtime, &["-d"], id, &["sleep", "600"]));
    if !out.status.success() {
        return (None, vec![format!("ctr run: {}", describe(&out))]);
    }
    let bundle = c.bundle(id);
    let (pid, status) = c.task(id).unwrap_or((-1, String::new()));
    if status != "RUNNING" {
        problems.push(format!("task {id} is {status:?} before the kill"));
    }
    let init = i32::try_from(pid).unwrap_or(-1);
    // The census sees the live container, or it could not see a leak.
    let before = leftovers(root, id);
    for kind in ["state ", "cgroup ", "process ", "mount "] {
        if !before.iter().any(|l| l.starts_with(kind)) {
            problems.push(format!(
                "the census found no {kind}of the live task: {before:?}"
            ));
        }
    }
    let Some(shim) = serving_shim(binary, &c.ns, id) else {
        problems.push(format!("no {binary} serves {id}"));
        c.remove(id);
        return (None, problems);
    };
    kill(Pid::from_raw(shim), Signal::SIGKILL).expect("SIGKILL the shim");
    // A task listed RUNNING with a dead shim would be a lie.
    let noticed = wait_until(Duration::from_secs(20), || {
        !alive(shim) && c.task(id).is_none_or(|(_, s)| s != "RUNNING")
    });
    let seen = c.task(id).map(|(_, s)| s);
    if !noticed {
        problems.push(format!("20 s after its shim died, task {id} is {seen:?}"));
    }
    clean_up_after_kill(c, id, seen.is_some(), &mut problems);
    let clean = wait_until(Duration::from_secs(10), || {
        leftovers(root, id).is_empty() && !alive(init)
    });
    if !clean {
        problems.push(format!(
            "left: {:?}; init {init} alive: {}",
            leftovers(root, id),
            alive(init)
        ));
    }
    if bundle.exists() || !mounts_under(&bundle).is_empty() {
        problems.push(format!(
            "bundle {} left, mounts {:?}",
            bundle.display(),
            mounts_under(&bundle)
        ));
    }
    (seen, problems)
}

/// Deletes what containerd still lists of `id` after its shim died, as a
/// client would: a listed task with `task rm -f`; a task no longer listed
/// must be unknown to `task rm` and `task kill` alike; the container record
/// must go with `container rm`.
fn clean_up_after_kill(c: &Ctr, id: &str, listed: bool, problems: &mut Vec<String>) {
    if listed {
        let out = c.out(&["task", "rm", "-f", id]);
        if !out.status.success() {
            problems.push(format!("task rm -f of the listed task: {}", describe(&out)));
        }
    } else {
        for args in [["task", "rm", id], ["task", "kill", id]] {
            let out = c.out(&args);
            if out.status.success() || !stderr(&out).contains("not found") {
                problems.push(format!("{args:?} of a task not listed: {}", describe(&out)));
            }
        }
    }
    let out = c.out(&["container", "rm", id]);
    if !out.status.success() {
        problems.push(format!("container rm: {}", describe(&out)));
    }
    let listed = c.ok(&["container", "ls", "-q"]);
    if listed.lines().any(|l| l.trim() == id) {
        problems.push(format!("container {id} still listed: {listed}"));
    }
}

/// Starts `ctr run -d <extra> IMAGE id sleep 600` through pinc's shim,
/// SIGKILLs the shim `delay` after it appears (and, with `marker`, after a
/// process whose command line holds it runs: a hook of pinc create), then
/// cleans up and takes the census. Returns whether `ctr run` succeeded (the
/// kill came after the create) and everything that went wrong.
pub fn kill_shim_during_create(
    c: &Ctr,
    id: &str,
    extra: &[&str],
    marker: Option<&str>,
    delay: Duration,
) -> (bool, Vec<String>) {
    let mut problems = Vec::new();
    let bundle = c.bundle(id);
    let log_path = c.d.dir().join(format!("{id}.ctr.log"));
    let log = std::fs::File::create(&log_path).expect("ctr log");
    let mut args = vec!["-d"];
    args.extend_from_slice(extra);
    let mut run = c
        .cmd(&Ctr::run_args(RUNTIME, &args, id, &["sleep", "600"]))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log fd"))
        .stderr(log)
        .spawn()
        .expect("ctr run");
    let deadline = Instant::now() + Duration::from_secs(20);
    let shim = loop {
        if let Some(pid) = serving_shim("containerd-shim-pinc-v2", &c.ns, id) {
            break Some(pid);
        }
        if Instant::now() >= deadline || run.try_wait().ok().flatten().is_some() {
            break None;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let hook_ran = marker
        .is_none_or(|m| wait_until(Duration::from_secs(20), || !pids_mentioning(m).is_empty()));
    if !hook_ran {
        problems.push("the slow hook never ran".to_string());
    }
    std::thread::sleep(delay);
    let before = leftovers(&shim_root(&c.ns), id);
    if marker.is_some() && !before.iter().any(|l| l.starts_with("journal ")) {
        problems.push(format!("no create under way at the kill: {before:?}"));
    }
    match shim {
        Some(pid) => kill(Pid::from_raw(pid), Signal::SIGKILL).expect("SIGKILL the shim"),
        None => problems.push("the shim never started".to_string()),
    }
    let deadline = Instant::now() + CMD_TIMEOUT;
    let status = loop {
        if let Some(st) = run.try_wait().expect("wait ctr run") {
            break Some(st);
        }
        if Instant::now() >= deadline {
            let _ = run.kill();
            let _ = run.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let created = status.is_some_and(|s| s.success());
    if status.is_none() {
        problems.push("ctr run did not end after its shim died".to_string());
    }
    let noticed = wait_until(Duration::from_secs(20), || {
        shim.is_none_or(|p| !alive(p)) && c.task(id).is_none_or(|(_, s)| s != "RUNNING")
    });
    let seen = c.task(id).map(|(_, s)| s);
    if !noticed {
        problems.push(format!("20 s after its shim died, task {id} is {seen:?}"));
    }
    clean_up_after_kill(c, id, seen.is_some(), &mut problems);
    let root = shim_root(&c.ns);
    if !wait_until(Duration::from_secs(20), || leftovers(&root, id).is_empty()) {
        problems.push(format!("left: {:?}", leftovers(&root, id)));
    }
    if bundle.exists() || !mounts_under(&bundle).is_empty() {
        problems.push(format!(
            "bundle {} left, mounts {:?}",
            bundle.display(),
            mounts_under(&bundle)
        ));
    }
    if !problems.is_empty() {
        problems.push(format!(
            "ctr run said: {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        ));
    }
    (created, problems)
}
