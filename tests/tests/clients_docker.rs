//! Docker Engine 20.10 driving pinc: a private dockerd (own socket,
//! data-root, exec-root, containerd namespaces) on a private containerd, with
//! pinc registered by `--add-runtime pinc=<path>`. Docker runs pinc through
//! containerd's io.containerd.runc.v2 shim with BinaryName=<pinc>.
//!
//! One #[test]: the daemons are heavy, so the scenarios share them and run in
//! order; each scenario's failure is recorded and reported at the end.
//! Those Podman has too are written once, in `pinc_tests::clients`.
//! `PINC_SCENARIOS=exec,pause` runs only the scenarios so named (and the
//! setup step that starts the shared container); a scenario that needs an
//! earlier one's effect (start of a stopped container) needs it selected too.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pinc_tests::clients::{
    exec_not_executable, exec_options, exec_output, exec_tty, inspect, pause_unpause,
    run_missing_binary, run_not_executable, run_stdin, Client,
};
use pinc_tests::daemons::{cgroup_dirs_containing, pinc_abs, CMD_TIMEOUT};
use pinc_tests::daemons::{describe, rootfs_tar, short_tempdir, wait_until, Dockerd, Scenarios};
use pinc_tests::{require_root, stderr, stdout};

/// The state root docker gave pinc (`--root`): the directory under the
/// exec-root that holds pinc's private `.pinc` directory. Its existence
/// proves pinc (not runc) ran the containers.
fn pinc_state_root(exec_root: &Path) -> Option<PathBuf> {
    fn walk(dir: &Path, depth: u32) -> Option<PathBuf> {
        if dir.join(".pinc").is_dir() {
            return Some(dir.to_path_buf());
        }
        if depth == 0 {
            return None;
        }
        for e in fs::read_dir(dir).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                if let Some(found) = walk(&p, depth - 1) {
                    return Some(found);
                }
            }
        }
        None
    }
    walk(exec_root, 3)
}

/// `pinc --root <root> state <id>` as JSON.
fn pinc_state(pinc: &Path, root: &Path, id: &str) -> serde_json::Value {
    let out = pinc_tests::daemons::run_with_timeout(
        std::process::Command::new(pinc)
            .arg("--root")
            .arg(root)
            .args(["state", id]),
        CMD_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "pinc state {id} failed: {}",
        describe(&out)
    );
    serde_json::from_slice(&out.stdout).expect("pinc state prints JSON")
}

fn process_alive(pid: i32) -> bool {
    // A zombie no longer counts: its container is gone.
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(") ")
                .map(|(_, rest)| !rest.starts_with('Z'))
                .unwrap_or(true)
        })
        .unwrap_or(false)
}

#[test]
fn docker_engine_runs_containers_with_pinc() {
    require_root();
    let started = Instant::now();
    let pinc = pinc_abs();
    let work = short_tempdir("pinc-docker-img-");
    let tar = rootfs_tar(work.path());

    let mut d = Dockerd::start(&pinc);
    eprintln!("dockerd up after {:.2?}", started.elapsed());
    let runtimes = d.ok(&["info", "--format", "{{json .Runtimes}}"]);
    assert!(
        runtimes.contains("pinc"),
        "dockerd does not list runtime pinc: {runtimes}"
    );
    let tar_s = tar.to_string_lossy().into_owned();
    d.ok(&["import", &tar_s, d.image()]);

    let mut s = Scenarios::new();

    s.run("docker run --rm: output and exit code", || {
        run_rm_output(&d)
    });

    s.run("docker run -i --rm: stdin, stdout and stderr", || {
        run_stdin(&d)
    });

    s.run(
        "docker run -t --rm: terminal through --console-socket",
        || run_tty(&d),
    );

    s.run("docker run of a missing binary exits 127", || {
        run_missing_binary(&d)
    });

    s.run("docker run of a non-executable file exits 126", || {
        run_not_executable(&d)
    });

    s.run(
        "docker run: --user, --workdir, -e, --hostname, --read-only",
        || run_options(&d),
    );

    s.run(
        "docker run --memory/--pids-limit, then docker update",
        || resources_and_update(&d),
    );

    // A long-running container shared by the next scenarios.
    let script = "echo started; trap 'echo got-term; exit 0' TERM; while :; do sleep 1; done";
    let mut long_id = String::new();
    s.setup("docker run -d: running, state visible to pinc", || {
        run_detached(&d, &pinc, script, &mut long_id)
    });

    s.run("docker exec: output and exit code", || exec_output(&d));

    s.run("docker exec: -i stdin, -e, -u, -w", || exec_options(&d));

    s.run(
        "docker exec of a missing binary fails (126, as with runc)",
        || exec_missing_binary(&d),
    );

    s.run("docker exec of a non-executable file exits 126", || {
        exec_not_executable(&d)
    });

    s.run("docker exec -t: terminal through --console-socket", || {
        exec_tty(&d)
    });

    s.run("docker top: lists the container's processes", || top(&d));

    s.run("docker pause / unpause", || pause_unpause(&d));

    s.run("docker stop: SIGTERM reaches the container, fast", || {
        stop_sigterm(&d, &long_id)
    });

    s.run("docker start of a stopped container", || start_stopped(&d));

    s.run("docker stop -t 1: escalates to SIGKILL", || {
        stop_escalates(&d)
    });

    s.run("docker rm -f of a running container", || {
        rm_force_running(&d)
    });

    s.run("engine shutdown stops running containers", || {
        engine_shutdown(&mut d)
    });

    drop(d);
    eprintln!(
        "clients_docker: total {:.2?} (2-core VM)",
        started.elapsed()
    );
    s.finish();
}

/// docker run --rm: output and exit code.
fn run_rm_output(d: &Dockerd) {
    let out = d.out(&d.run_args(&["--rm", d.image(), "sh", "-c", "echo hi; exit 7"]));
    assert_eq!(stdout(&out), "hi\n", "{}", describe(&out));
    assert_eq!(out.status.code(), Some(7), "{}", describe(&out));
    assert!(
        pinc_state_root(&d.exec_root).is_some(),
        "no pinc state root (.pinc) under {}: was pinc used?",
        d.exec_root.display()
    );
    let left = d.ok(&["ps", "-aq"]);
    assert!(left.trim().is_empty(), "--rm left containers: {left}");
}

/// docker run -t --rm: terminal through --console-socket.
fn run_tty(d: &Dockerd) {
    let out = d.out(&d.run_args(&[
        "-t",
        "--rm",
        d.image(),
        "sh",
        "-c",
        "tty; echo tty-ok; exit 3",
    ]));
    let text = stdout(&out);
    assert!(text.contains("/dev/pts/"), "no pty: {}", describe(&out));
    assert!(text.contains("tty-ok\r\n"), "{}", describe(&out));
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
}

/// docker run: --user, --workdir, -e, --hostname, --read-only.
fn run_options(d: &Dockerd) {
    let out = d.out(&d.run_args(&[
        "--rm",
        "--user",
        "65534:65534",
        "--workdir",
        "/tmp",
        "-e",
        "GREETING=hello there",
        "--hostname",
        "pinc-host",
        "--read-only",
        d.image(),
        "sh",
        "-c",
        concat!(
            "id -u; id -g; pwd; echo \"$GREETING\"; hostname; ",
            "touch /x 2>/dev/null && echo writable || echo read-only"
        ),
    ]));
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        stdout(&out),
        "65534\n65534\n/tmp\nhello there\npinc-host\nread-only\n",
        "{}",
        describe(&out)
    );
}

/// docker run --memory/--pids-limit, then docker update.
fn resources_and_update(d: &Dockerd) {
    let id = d
        .ok(&d.run_args(&[
            "-d",
            "--name",
            "limited",
            "--memory",
            "64m",
            "--pids-limit",
            "100",
            d.image(),
            "sleep",
            "1000",
        ]))
        .trim()
        .to_string();
    // cgroupfs driver, cgroup v1: /sys/fs/cgroup/<ctrl>/docker/<id>.
    assert!(
        Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists(),
        "this scenario expects cgroup v1 memory and pids hierarchies (hybrid, as on CI)"
    );
    let mem = Path::new("/sys/fs/cgroup/memory/docker")
        .join(&id)
        .join("memory.limit_in_bytes");
    let pids = Path::new("/sys/fs/cgroup/pids/docker")
        .join(&id)
        .join("pids.max");
    let read = |p: &Path| {
        fs::read_to_string(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .trim()
            .to_string()
    };
    assert_eq!(read(&mem), (64u64 << 20).to_string());
    assert_eq!(read(&pids), "100");
    d.ok(&[
        "update",
        "--memory",
        "128m",
        "--memory-swap",
        "256m",
        "--pids-limit",
        "200",
        "limited",
    ]);
    assert_eq!(read(&mem), (128u64 << 20).to_string());
    assert_eq!(read(&pids), "200");
    d.ok(&["rm", "-f", "limited"]);
    assert!(
        wait_until(Duration::from_secs(5), || cgroup_dirs_containing(&id)
            .is_empty()),
        "cgroups left after rm -f: {:?}",
        cgroup_dirs_containing(&id)
    );
}

/// docker run -d: running, state visible to pinc.
fn run_detached(d: &Dockerd, pinc: &Path, script: &str, long_id: &mut String) {
    let out = d.out(&d.run_args(&["-d", "--name", "long", d.image(), "sh", "-c", script]));
    assert!(out.status.success(), "{}", describe(&out));
    *long_id = stdout(&out).trim().to_string();
    assert_eq!(long_id.len(), 64, "docker run -d printed {long_id:?}");
    assert_eq!(inspect(d, "{{.State.Running}}", "long"), "true");
    let pid: i32 = inspect(d, "{{.State.Pid}}", "long")
        .parse()
        .expect("numeric pid");
    assert!(pid > 0 && process_alive(pid), "init pid {pid} not alive");
    let root = pinc_state_root(&d.exec_root).expect("pinc state root");
    let st = pinc_state(pinc, &root, long_id);
    assert_eq!(st["status"], "running", "pinc state: {st}");
    assert_eq!(st["pid"].as_i64(), Some(i64::from(pid)), "pinc state: {st}");
    assert!(
        wait_until(Duration::from_secs(5), || d
            .ok(&["logs", "long"])
            .contains("started")),
        "docker logs never showed the container's output"
    );
}

/// docker exec of a missing binary fails (126, as with runc).
fn exec_missing_binary(d: &Dockerd) {
    // Docker 20.10 reports every failed exec start as 126 (runc too).
    for cmd in ["/no/such/binary", "no-such-command"] {
        let out = d.out(&["exec", "long", cmd]);
        assert_eq!(out.status.code(), Some(126), "{}", describe(&out));
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(text.contains(cmd), "error does not name {cmd}: {text}");
    }
    // The container must be unaffected.
    assert_eq!(inspect(d, "{{.State.Running}}", "long"), "true");
}

/// docker top: lists the container's processes.
fn top(d: &Dockerd) {
    let pid = inspect(d, "{{.State.Pid}}", "long");
    let out = d.ok(&["top", "long"]);
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    assert!(
        header.contains("PID") && header.contains("CMD"),
        "header: {out}"
    );
    let rows: Vec<&str> = lines.collect();
    assert!(
        rows.iter()
            .any(|r| r.split_whitespace().nth(1) == Some(pid.as_str()) && r.contains("trap")),
        "init pid {pid} (sh -c ...trap...) not listed:\n{out}"
    );
    assert!(
        rows.iter().all(|r| !r.contains("dockerd")),
        "docker top lists host processes:\n{out}"
    );
}

/// docker stop: SIGTERM reaches the container, fast.
fn stop_sigterm(d: &Dockerd, long_id: &str) {
    let t = Instant::now();
    d.ok(&["stop", "long"]);
    let took = t.elapsed();
    // Default grace is 10s: a container that never saw SIGTERM takes >10s.
    assert!(took < Duration::from_secs(8), "docker stop took {took:?}");
    assert_eq!(inspect(d, "{{.State.Running}}", "long"), "false");
    assert_eq!(inspect(d, "{{.State.ExitCode}}", "long"), "0");
    assert!(
        d.ok(&["logs", "long"]).contains("got-term"),
        "the TERM trap did not run"
    );
    let root = pinc_state_root(&d.exec_root).expect("pinc state root");
    assert!(
        wait_until(Duration::from_secs(5), || !root.join(long_id).exists()),
        "pinc state of {long_id} still in {} after stop",
        root.display()
    );
}

/// docker start of a stopped container.
fn start_stopped(d: &Dockerd) {
    // Stopped by the stop scenario; stopped here when that one was not run.
    if inspect(d, "{{.State.Running}}", "long") == "true" {
        d.ok(&["stop", "long"]);
    }
    assert_eq!(inspect(d, "{{.State.Running}}", "long"), "false");
    d.ok(&["start", "long"]);
    assert_eq!(inspect(d, "{{.State.Running}}", "long"), "true");
    let out = d.out(&["exec", "long", "echo", "again"]);
    assert_eq!(stdout(&out), "again\n", "{}", describe(&out));
}

/// docker stop -t 1: escalates to SIGKILL.
fn stop_escalates(d: &Dockerd) {
    d.ok(&d.run_args(&["-d", "--name", "stubborn", d.image(), "sleep", "1000"]));
    let t = Instant::now();
    d.ok(&["stop", "-t", "1", "stubborn"]);
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "docker stop -t 1 took {took:?}"
    );
    assert_eq!(inspect(d, "{{.State.Running}}", "stubborn"), "false");
    assert_eq!(inspect(d, "{{.State.ExitCode}}", "stubborn"), "137");
}

/// docker rm -f of a running container.
fn rm_force_running(d: &Dockerd) {
    let id = d
        .ok(&d.run_args(&["-d", "--name", "doomed", d.image(), "sleep", "1000"]))
        .trim()
        .to_string();
    let pid: i32 = inspect(d, "{{.State.Pid}}", "doomed")
        .parse()
        .expect("numeric pid");
    assert!(process_alive(pid));
    assert!(
        !cgroup_dirs_containing(&id).is_empty(),
        "no cgroup named after {id} while it runs"
    );
    let t = Instant::now();
    d.ok(&["rm", "-f", "doomed"]);
    let took = t.elapsed();
    assert!(took < Duration::from_secs(8), "docker rm -f took {took:?}");
    let out = d.out(&["inspect", "doomed"]);
    assert!(
        !out.status.success(),
        "container still exists: {}",
        describe(&out)
    );
    assert!(
        wait_until(Duration::from_secs(5), || !process_alive(pid)),
        "container init {pid} still alive after rm -f"
    );
    let root = pinc_state_root(&d.exec_root).expect("pinc state root");
    assert!(
        wait_until(Duration::from_secs(5), || !root.join(&id).exists()),
        "pinc state of {id} left in {}",
        root.display()
    );
    assert!(
        wait_until(Duration::from_secs(5), || cgroup_dirs_containing(&id)
            .is_empty()),
        "cgroups left after rm -f: {:?}",
        cgroup_dirs_containing(&id)
    );
}

/// engine shutdown stops running containers.
fn engine_shutdown(d: &mut Dockerd) {
    // Whatever the scenarios before left (those that were selected).
    let left = d.ok(&["ps", "-aq"]);
    let left: Vec<&str> = left.split_whitespace().collect();
    if !left.is_empty() {
        d.ok(&[&["rm", "-f"][..], &left].concat());
    }
    // dockerd stops running containers on SIGTERM: TERM, and KILL after
    // the container's stop timeout.
    let last = d
        .ok(&d.run_args(&[
            "-d",
            "--stop-timeout",
            "1",
            "--name",
            "last",
            d.image(),
            "sleep",
            "1000",
        ]))
        .trim()
        .to_string();
    let pid: i32 = inspect(d, "{{.State.Pid}}", "last")
        .parse()
        .expect("numeric pid");
    let root = pinc_state_root(&d.exec_root).expect("pinc state root");
    let t = Instant::now();
    d.shutdown();
    let took = t.elapsed();
    eprintln!("dockerd stopped in {took:.2?}");
    assert!(!d.running(), "dockerd still running");
    assert!(took < Duration::from_secs(15), "shutdown took {took:?}");
    assert!(
        wait_until(Duration::from_secs(5), || !process_alive(pid)),
        "container init {pid} survived the engine shutdown"
    );
    assert!(
        wait_until(Duration::from_secs(5), || !root.join(&last).exists()),
        "pinc state of {last} left after the engine shutdown"
    );
    let left: Vec<String> = fs::read_dir(&root)
        .map(|it| {
            it.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != ".pinc")
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "pinc state left after shutdown: {left:?}");
}
