//! Podman 4.3 driving pinc (`podman --runtime /abs/pinc`, through conmon),
//! with a private storage root, run root, tmpdir and containers.conf. The
//! image is a busybox-static root filesystem loaded with `podman import`.
//!
//! Podman passes no `--root` to the runtime, so pinc keeps these containers'
//! state in its default root, /run/pinc (ids are unique 64-hex strings).
//!
//! The `--ulimit` flags are needed on this machine: podman's default nofile
//! limit is above the hard limit root may set without CAP_SYS_RESOURCE.
//!
//! One #[test]: the scenarios run in order; each scenario's failure is
//! recorded and reported at the end.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pinc_tests::daemons::{
    cgroup_dirs_containing, describe, pinc_abs, rootfs_tar, run_with_input, run_with_timeout,
    wait_until, Podman, Scenarios, CMD_TIMEOUT,
};
use pinc_tests::{require_root, stderr, stdout};

const IMAGE: &str = "localhost/busybox:local";
/// pinc's default state root for root (podman passes no --root).
const PINC_DEFAULT_ROOT: &str = "/run/pinc";

fn run_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "run",
        "--network",
        "none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
    ];
    v.extend_from_slice(extra);
    v
}

fn inspect(p: &Podman, fmt: &str, name: &str) -> String {
    p.ok(&["inspect", "--format", fmt, name]).trim().to_string()
}

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
    p.ok(&["import", &tar_s, IMAGE]);
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
    s.run("podman run -d: running, state visible to pinc", || {
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

    let leaked: Vec<String> = ids
        .iter()
        .filter(|id| state_dir(id).exists())
        .cloned()
        .collect();
    drop(p);
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
    let out = p.out(&run_args(&[
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "echo hi; ulimit -n; exit 7",
    ]));
    assert_eq!(stdout(&out), "hi\n1024\n", "{}", describe(&out));
    assert_eq!(out.status.code(), Some(7), "{}", describe(&out));
    let left = p.ok(&["ps", "-aq"]);
    assert!(left.trim().is_empty(), "--rm left containers: {left}");
}

/// podman run -i --rm: stdin, stdout, stderr.
fn run_stdin(p: &Podman) {
    let out = run_with_input(
        &mut p.podman(&run_args(&[
            "-i",
            "--rm",
            IMAGE,
            "sh",
            "-c",
            "cat; echo to-stderr >&2",
        ])),
        b"piped line\n",
        CMD_TIMEOUT,
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stdout(&out), "piped line\n", "{}", describe(&out));
    assert!(stderr(&out).contains("to-stderr"), "{}", describe(&out));
}

/// podman run -t --rm: terminal through --console-socket.
fn run_tty(p: &Podman) {
    let out = p.out(&run_args(&[
        "-t",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "tty; echo tty-ok; exit 3",
    ]));
    let text = stdout(&out);
    assert!(text.contains("/dev/pts/"), "no pty: {}", describe(&out));
    assert!(text.contains("tty-ok"), "{}", describe(&out));
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
}

/// podman run of a missing binary exits 127.
fn run_missing_binary(p: &Podman) {
    let out = p.out(&run_args(&["--rm", IMAGE, "/no/such/binary"]));
    assert_eq!(out.status.code(), Some(127), "{}", describe(&out));
}

/// podman run of a non-executable file exits 126.
fn run_not_executable(p: &Podman) {
    let out = p.out(&run_args(&["--rm", IMAGE, "/etc/passwd"]));
    assert_eq!(out.status.code(), Some(126), "{}", describe(&out));
}

/// podman run -d: running, state visible to pinc.
fn run_detached(p: &Podman, pinc: &Path, script: &str, ids: &mut Vec<String>) {
    let out = p.out(&run_args(&[
        "-d", "--name", "long", IMAGE, "sh", "-c", script,
    ]));
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

/// podman exec: output and exit code.
fn exec_output(p: &Podman) {
    let out = p.out(&["exec", "long", "sh", "-c", "echo from-exec; exit 5"]);
    assert_eq!(stdout(&out), "from-exec\n", "{}", describe(&out));
    assert_eq!(out.status.code(), Some(5), "{}", describe(&out));
    let out = p.out(&["exec", "long", "true"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}

/// podman exec: -i stdin, -e, -u, -w.
fn exec_options(p: &Podman) {
    let out = run_with_input(
        &mut p.podman(&["exec", "-i", "long", "cat"]),
        b"via stdin\n",
        CMD_TIMEOUT,
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stdout(&out), "via stdin\n", "{}", describe(&out));
    let out = p.out(&[
        "exec",
        "-e",
        "FOO=bar",
        "-u",
        "65534:65534",
        "-w",
        "/tmp",
        "long",
        "sh",
        "-c",
        "echo $FOO $(id -u):$(id -g) $(pwd)",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stdout(&out), "bar 65534:65534 /tmp\n", "{}", describe(&out));
}

/// podman exec of a missing binary exits 127.
fn exec_missing_binary(p: &Podman) {
    let out = p.out(&["exec", "long", "/no/such/binary"]);
    assert_eq!(out.status.code(), Some(127), "{}", describe(&out));
    let out = p.out(&["exec", "long", "no-such-command"]);
    assert_eq!(out.status.code(), Some(127), "{}", describe(&out));
    assert_eq!(inspect(p, "{{.State.Status}}", "long"), "running");
}

/// podman exec of a non-executable file exits 126.
fn exec_not_executable(p: &Podman) {
    let out = p.out(&["exec", "long", "/etc/passwd"]);
    assert_eq!(out.status.code(), Some(126), "{}", describe(&out));
}

/// podman exec -t: terminal through --console-socket.
fn exec_tty(p: &Podman) {
    let out = p.out(&["exec", "-t", "long", "sh", "-c", "tty; exit 2"]);
    assert!(stdout(&out).contains("/dev/pts/"), "{}", describe(&out));
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
}

/// podman pause / unpause.
fn pause_unpause(p: &Podman) {
    p.ok(&["pause", "long"]);
    assert_eq!(inspect(p, "{{.State.Status}}", "long"), "paused");
    p.ok(&["unpause", "long"]);
    assert_eq!(inspect(p, "{{.State.Status}}", "long"), "running");
    let out = p.out(&["exec", "long", "echo", "alive"]);
    assert_eq!(stdout(&out), "alive\n", "{}", describe(&out));
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
    let out = p.out(&run_args(&[
        "-d", "--name", "doomed", IMAGE, "sleep", "1000",
    ]));
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
    p.ok(&["rm", "long"]);
    let left = p.ok(&["ps", "-aq"]);
    assert!(left.trim().is_empty(), "containers left: {left}");
}
