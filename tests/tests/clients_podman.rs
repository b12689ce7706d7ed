//! Podman 4.3 driving pinc (`podman --runtime /abs/pinc`, through conmon),
//! with a private storage root, run root, tmpdir and containers.conf. The
//! image is a busybox-static root filesystem loaded with `podman import`.
//!
//! Podman passes no `--root` to the runtime, so pinc keeps these containers'
//! state in its default root, /run/pinc (ids are unique 64-hex strings).
//!
//! The `--ulimit` flags (`Client::run_prefix`) are needed on this machine:
//! podman's default nofile limit is above the hard limit root may set
//! without CAP_SYS_RESOURCE.
//!
//! One #[test]: the scenarios run in order; each scenario's failure is
//! recorded and reported at the end. Those Docker has too are written
//! once, in `pinc_tests::clients`. `PINC_SCENARIOS=exec,pause` runs only
//! the scenarios so named (and the setup step that starts the shared
//! container); one that needs an earlier one's effect (rm of the stopped
//! container) needs it selected too.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pinc_tests::clients::{
    exec_not_executable, exec_options, exec_output, exec_tty, inspect, pause_unpause,
    run_missing_binary, run_not_executable, run_stdin, Client,
};
use pinc_tests::daemons::{
    cgroup_dirs_containing, describe, pinc_abs, rootfs_tar, run_with_timeout, wait_until, Podman,
    Scenarios, CMD_TIMEOUT,
};
use pinc_tests::{require_root, stdout};

/// pinc's default state root for root (podman passes no --root).
const PINC_DEFAULT_ROOT: &str = "/run/pinc";

fn pinc_state(pinc: &Path, id: &str) -> serde_json::Value {
    let out = run_with_timeout(
        std::process::Command::new(pinc)
            .arg("--root")
            .arg(PINC_DEFAULT_ROOT)
            .args(["state", id]),
        CMD_TIMEOUT,
    );
    assert!(out.status.success(), "pinc state {id}: {}", describe(&out));
    serde_json::from_slice(&out.stdout).expect("pinc state prints JSON")
}

fn process_alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(") ")
                .map(|(_, rest)| !rest.starts_with('Z'))
                .unwrap_or(true)
        })
        .unwrap_or(false)
}

fn state_dir(id: &str) -> PathBuf {
    Path::new(PINC_DEFAULT_ROOT).join(id)
}

#[test]
fn podman_runs_containers_with_pinc() {
    require_root();
    let started = Instant::now();
    let pinc = pinc_abs();
    let p = Podman::new(&pinc);
    let tar = rootfs_tar(p.dir());
    let tar_s = tar.to_string_lossy().into_owned();
    p.ok(&["import", &tar_s, p.image()]);
    let runtime = p.ok(&["info", "--format", "{{.Host.OCIRuntime.Path}}"]);
    assert_eq!(
        runtime.trim(),
        pinc.to_string_lossy(),
        "podman does not use pinc"
    );

    let mut s = Scenarios::new();
    // Every container id podman created, for the leak check at the end.
    let mut ids: Vec<String> = Vec::new();

    s.run("podman run --rm: output, ulimit and exit code", || {
        run_rm_output(&p)
    });

    s.run("podman run -i --rm: stdin, stdout, stderr", || {
        run_stdin(&p)
    });

    s.run(
        "podman run -t --rm: terminal through --console-socket",
        || run_tty(&p),
    );

    s.run("podman run of a missing binary exits 127", || {
        run_missing_binary(&p)
    });

    s.run("podman run of a non-executable file exits 126", || {
        run_not_executable(&p)
    });

    let script = "echo started; trap 'echo got-term; exit 0' TERM; while :; do sleep 1; done";
    s.setup("podman run -d: running, state visible to pinc", || {
        run_detached(&p, &pinc, script, &mut ids)
    });

    s.run("podman exec: output and exit code", || exec_output(&p));

    s.run("podman exec: -i stdin, -e, -u, -w", || exec_options(&p));

    s.run("podman exec of a missing binary exits 127", || {
        exec_missing_binary(&p)
    });

    s.run("podman exec of a non-executable file exits 126", || {
        exec_not_executable(&p)
    });

    s.run("podman exec -t: terminal through --console-socket", || {
        exec_tty(&p)
    });

    s.run("podman pause / unpause", || pause_unpause(&p));

    s.run("podman stop: SIGTERM reaches the container, fast", || {
        stop_sigterm(&p)
    });

    s.run("podman rm -f of a running container", || {
        rm_force_running(&p, &mut ids)
    });

    s.run("podman rm of the stopped container", || rm_stopped(&p));

    // After podman removed what is left (all of it, when only some
    // scenarios were selected): pinc's state of every container is gone.
    drop(p);
    let leaked: Vec<String> = ids
        .iter()
        .filter(|id| state_dir(id).exists())
        .cloned()
        .collect();
    eprintln!(
        "clients_podman: total {:.2?} (2-core VM)",
        started.elapsed()
    );
    s.finish();
    assert!(
        leaked.is_empty(),
        "pinc state left in {PINC_DEFAULT_ROOT}: {leaked:?}"
    );
}

/// podman run --rm: output, ulimit and exit code.
fn run_rm_output(p: &Podman) {
    let out = p.out(&p.run_args(&["--rm", p.image(), "sh", "-c", "echo hi; ulimit -n; exit 7"]));
    assert_eq!(stdout(&out), "hi\n1024\n", "{}", describe(&out));
    assert_eq!(out.status.code(), Some(7), "{}", describe(&out));
    let left = p.ok(&["ps", "-aq"]);
    assert!(left.trim().is_empty(), "--rm left containers: {left}");
}

/// podman run -t --rm: terminal through --console-socket.
fn run_tty(p: &Podman) {
    let out = p.out(&p.run_args(&[
        "-t",
        "--rm",
        p.image(),
        "sh",
        "-c",
        "tty; echo tty-ok; exit 3",
    ]));
    let text = stdout(&out);
    assert!(text.contains("/dev/pts/"), "no pty: {}", describe(&out));
    assert!(text.contains("tty-ok"), "{}", describe(&out));
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
}

/// podman run -d: running, state visible to pinc.
fn run_detached(p: &Podman, pinc: &Path, script: &str, ids: &mut Vec<String>) {
    let out = p.out(&p.run_args(&["-d", "--name", "long", p.image(), "sh", "-c", script]));
    assert!(out.status.success(), "{}", describe(&out));
    let id = stdout(&out).trim().to_string();
    assert_eq!(id.len(), 64, "podman run -d printed {id:?}");
    ids.push(id.clone());
    assert_eq!(inspect(p, "{{.State.Status}}", "long"), "running");
    let pid: i64 = inspect(p, "{{.State.Pid}}", "long")
        .parse()
        .expect("numeric pid");
    let st = pinc_state(pinc, &id);
    assert_eq!(st["status"], "running", "pinc state: {st}");
    assert_eq!(st["pid"].as_i64(), Some(pid), "pinc state: {st}");
    assert!(
        wait_until(Duration::from_secs(5), || p
            .ok(&["logs", "long"])
            .contains("started")),
        "podman logs never showed the container's output"
    );
}

/// podman exec of a missing binary exits 127.
fn exec_missing_binary(p: &Podman) {
    let out = p.out(&["exec", "long", "/no/such/binary"]);
    assert_eq!(out.status.code(), Some(127), "{}", describe(&out));
    let out = p.out(&["exec", "long", "no-such-command"]);
    assert_eq!(out.status.code(), Some(127), "{}", describe(&out));
    assert_eq!(inspect(p, "{{.State.Status}}", "long"), "running");
}

/// podman stop: SIGTERM reaches the container, fast.
fn stop_sigterm(p: &Podman) {
    let t = Instant::now();
    p.ok(&["stop", "long"]);
    let took = t.elapsed();
    assert!(took < Duration::from_secs(8), "podman stop took {took:?}");
    assert_eq!(inspect(p, "{{.State.Status}}", "long"), "exited");
    assert_eq!(inspect(p, "{{.State.ExitCode}}", "long"), "0");
    assert!(
        p.ok(&["logs", "long"]).contains("got-term"),
        "the TERM trap did not run"
    );
}

/// podman rm -f of a running container.
fn rm_force_running(p: &Podman, ids: &mut Vec<String>) {
    let out = p.out(&p.run_args(&["-d", "--name", "doomed", p.image(), "sleep", "1000"]));
    assert!(out.status.success(), "{}", describe(&out));
    let id = stdout(&out).trim().to_string();
    ids.push(id.clone());
    let pid: i32 = inspect(p, "{{.State.Pid}}", "doomed")
        .parse()
        .expect("numeric pid");
    assert!(process_alive(pid), "init {pid} not running");
    assert!(
        !cgroup_dirs_containing(&id).is_empty(),
        "no cgroup named after {id} while it runs"
    );
    let t = Instant::now();
    p.ok(&["rm", "-f", "-t", "2", "doomed"]);
    let took = t.elapsed();
    assert!(took < Duration::from_secs(8), "podman rm -f took {took:?}");
    assert!(
        !p.out(&["inspect", "doomed"]).status.success(),
        "container still exists"
    );
    assert!(
        wait_until(Duration::from_secs(5), || !process_alive(pid)),
        "container init {pid} still alive after rm -f"
    );
    assert!(
        wait_until(Duration::from_secs(5), || !state_dir(&id).exists()),
        "pinc state of {id} left in {PINC_DEFAULT_ROOT}"
    );
    assert!(
        wait_until(Duration::from_secs(5), || cgroup_dirs_containing(&id)
            .is_empty()),
        "cgroups left after rm -f: {:?}",
        cgroup_dirs_containing(&id)
    );
}

/// podman rm of the stopped container.
fn rm_stopped(p: &Podman) {
    // Stopped by the stop scenario; stopped here when that one was not run.
    if inspect(p, "{{.State.Status}}", "long") != "exited" {
        p.ok(&["stop", "long"]);
    }
    p.ok(&["rm", "long"]);
    let left = p.ok(&["ps", "-aq"]);
    assert!(left.trim().is_empty(), "containers left: {left}");
}
