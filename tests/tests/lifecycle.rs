//! The container lifecycle through the pinc CLI, with real containers.

use std::fs;

use pinc_tests::daemons::{run_with_timeout, wait_until, CMD_TIMEOUT};
use pinc_tests::{
    cgroup_dirs_named, require_root, stderr, stdout, unique_id, wait_bounded, Bundle, Pinc,
};

#[test]
fn run_prints_output_and_propagates_the_exit_code() {
    require_root();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["sh", "-c", "echo hello from $(hostname); exit 42"]);
    let id = unique_id("run");
    let out = pinc.output(&[
        "run",
        "--bundle",
        bundle.path().to_str().expect("utf8"),
        &id,
    ]);
    assert_eq!(out.status.code(), Some(42), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "hello from pinc\n");
    assert!(
        pinc.leftovers().is_empty(),
        "run leaves no state: {:?}",
        pinc.leftovers()
    );
    assert!(cgroup_dirs_named(&id).is_empty(), "cgroups removed");
}

/// Spawns `pinc run` in the foreground with output into files.
fn spawn_run(pinc: &Pinc, bundle: &Bundle, id: &str) -> std::process::Child {
    pinc.cmd(&["run", "-b", bundle.path().to_str().expect("utf8"), id])
        .stdin(std::process::Stdio::null())
        .stdout(tempfile::tempfile().expect("out"))
        .stderr(tempfile::tempfile().expect("err"))
        .spawn()
        .expect("spawn pinc run")
}

#[test]
fn run_forwards_signals_and_reports_death_by_signal() {
    require_root();
    let pinc = Pinc::new();
    // A pid-1 shell only receives signals it handles: the trap makes TERM count.
    let bundle = Bundle::new(&[
        "sh",
        "-c",
        "trap 'exit 3' TERM; while :; do sleep 0.1; done",
    ]);
    let id = unique_id("fwd");
    let mut child = spawn_run(&pinc, &bundle, &id);
    pinc.wait_for_status(&id, "running");
    // "running" comes before the shell ran `trap`: a TERM sent earlier would
    // be dropped (pid 1 without a handler), and the loop would never end.
    let pid = pinc.state(&id)["pid"].as_i64().expect("init pid");
    let term_caught = pinc_tests::daemons::wait_until(std::time::Duration::from_secs(30), || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("SigCgt:"))
                    .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
            })
            .is_some_and(|caught| caught & (1 << (libc::SIGTERM - 1)) != 0)
    });
    assert!(term_caught, "the container's shell never trapped TERM");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signal pinc run");
    assert_eq!(
        wait_bounded(&mut child, "pinc run").code(),
        Some(3),
        "TERM reached the container"
    );
    assert!(pinc.leftovers().is_empty());

    let id = unique_id("killed");
    let mut child = spawn_run(&pinc, &bundle, &id);
    pinc.wait_for_status(&id, "running");
    pinc.ok(&["kill", &id, "KILL"]);
    assert_eq!(wait_bounded(&mut child, "pinc run").code(), Some(128 + 9));
}

/// (SigBlk, SigIgn) of a /proc/PID/status text.
fn signal_masks(status: &str) -> (u64, u64) {
    let field = |name: &str| {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {status}"));
        let hex = line[name.len()..].trim();
        u64::from_str_radix(hex, 16).unwrap_or_else(|e| panic!("{line}: {e}"))
    };
    (field("SigBlk:"), field("SigIgn:"))
}

/// `pinc args...` from a shell that ignores the signals a CI runner or nohup
/// might: they are inherited across exec unless pinc resets them.
fn output_ignoring_signals(pinc: &Pinc, args: &[&str]) -> std::process::Output {
    let inner = pinc.cmd(args);
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("trap '' HUP INT QUIT TERM USR1 USR2 PIPE; exec \"$@\"")
        .arg("sh")
        .arg(inner.get_program())
        .args(inner.get_args());
    pinc_tests::output_via_files(cmd)
}

#[test]
fn container_processes_start_with_default_signals_whatever_the_caller_ignores() {
    require_root();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["sleep", "60"]);
    let id = unique_id("sigs");
    let path = bundle.path().to_str().expect("utf8");
    let out = output_ignoring_signals(&pinc, &["run", "-d", "-b", path, &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let init = pinc.state(&id)["pid"].as_i64().expect("pid");
    let status = fs::read_to_string(format!("/proc/{init}/status")).expect("init status");
    // Before: SigIgn 0x5207, the caller's ignores plus pinc's own SIGPIPE.
    assert_eq!(signal_masks(&status), (0, 0), "init: {status}");

    let out = output_ignoring_signals(&pinc, &["exec", &id, "cat", "/proc/self/status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        signal_masks(&stdout(&out)),
        (0, 0),
        "exec: {}",
        stdout(&out)
    );
    pinc.ok(&["delete", "--force", &id]);
}

#[test]
fn create_start_state_kill_delete() {
    require_root();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["sleep", "60"]);
    let id = unique_id("life");
    let pid_file = bundle.path().join("init.pid");
    pinc.ok(&[
        "create",
        "--bundle",
        bundle.path().to_str().expect("utf8"),
        "--pid-file",
        pid_file.to_str().expect("utf8"),
        &id,
    ]);
    let state = pinc.state(&id);
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], id.as_str());
    assert_eq!(state["ociVersion"], "1.0.2");
    let bundle_path = bundle.path().canonicalize().expect("canonical");
    assert_eq!(
        state["bundle"],
        bundle_path.to_str().expect("utf8"),
        "state keeps the caller's bundle"
    );
    let pid = state["pid"].as_i64().expect("pid");
    assert_eq!(
        fs::read_to_string(&pid_file).expect("pid file").trim(),
        pid.to_string()
    );
    assert!(
        !cgroup_dirs_named(&id).is_empty(),
        "cgroups exist while the container does"
    );

    pinc.ok(&["start", &id]);
    pinc.wait_for_status(&id, "running");
    let err = pinc.fails(&["start", &id]);
    assert!(
        err.contains("running"),
        "start twice names the state: {err}"
    );

    // runc: "cannot delete container X that is not stopped: running".
    let err = pinc.fails(&["delete", &id]);
    assert!(
        err.contains("that is not stopped: running") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one error line: {err}");

    pinc.ok(&["kill", &id, "KILL"]);
    pinc.wait_for_status(&id, "stopped");
    assert_eq!(pinc.state(&id)["pid"], 0);
    // As runc: containerd's shim sends `kill --all` after init exits, and
    // maps "container not running" to NotFound (tests/tests/cri.rs).
    pinc.ok(&["kill", "--all", &id, "KILL"]);
    let err = pinc.fails(&["kill", &id, "KILL"]);
    assert!(err.contains("container not running"), "{err}");
    pinc.ok(&["delete", &id]);
    assert!(pinc.leftovers().is_empty(), "{:?}", pinc.leftovers());
    assert!(
        pinc.private_leftovers().is_empty(),
        "{:?}",
        pinc.private_leftovers()
    );
    assert!(
        cgroup_dirs_named(&id).is_empty(),
        "cgroups removed: {:?}",
        cgroup_dirs_named(&id)
    );
}

#[test]
fn delete_kills_a_created_container_like_runc() {
    require_root();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["sleep", "60"]);
    let id = unique_id("created");
    pinc.ok(&[
        "create",
        "--bundle",
        bundle.path().to_str().expect("utf8"),
        &id,
    ]);
    let pid = pinc.state(&id)["pid"].as_i64().expect("pid") as i32;
    // Never started: no --force needed (runc 1.1.5 and youki agree).
    let out = pinc.output(&["delete", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "init killed: {stat}"
    );
    assert!(pinc.leftovers().is_empty(), "{:?}", pinc.leftovers());
    assert!(
        pinc.private_leftovers().is_empty(),
        "{:?}",
        pinc.private_leftovers()
    );
    assert!(
        cgroup_dirs_named(&id).is_empty(),
        "{:?}",
        cgroup_dirs_named(&id)
    );
}

/// `memory.oom_control` of the container's own v1 memory cgroup, read inside it.
fn oom_control_inside(disable: Option<bool>) -> String {
    let pinc = Pinc::new();
    let bundle = Bundle::new(&[
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory$(grep :memory: /proc/self/cgroup | cut -d: -f3)/memory.oom_control",
    ]);
    bundle.edit(|c| {
        let mut memory = serde_json::json!({"limit": 268435456});
        if let Some(d) = disable {
            memory["disableOOMKiller"] = serde_json::json!(d);
        }
        c["linux"]["resources"]["memory"] = memory;
    });
    let id = unique_id("oom");
    let out = pinc.output(&[
        "run",
        "--bundle",
        bundle.path().to_str().expect("utf8"),
        &id,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(pinc.leftovers().is_empty(), "{:?}", pinc.leftovers());
    stdout(&out)
}

#[test]
fn disable_oom_killer_reaches_the_v1_memory_cgroup() {
    require_root();
    assert!(
        std::path::Path::new("/sys/fs/cgroup/memory/memory.oom_control").exists(),
        "this test needs a cgroup v1 memory hierarchy at /sys/fs/cgroup/memory"
    );
    let on = oom_control_inside(Some(true));
    assert!(on.contains("oom_kill_disable 1"), "{on}");
    for off in [Some(false), None] {
        let got = oom_control_inside(off);
        assert!(got.contains("oom_kill_disable 0"), "{off:?}: {got}");
    }
}

#[test]
fn kill_and_delete_of_a_container_whose_create_died_do_not_hang() {
    require_root();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["sleep", "60"]);
    let mark = bundle.path().join("hook.pid");
    // The container's init waits for this hook, which outlives the create.
    let script = format!("echo ran > {}; exec /bin/sleep 600", mark.display());
    bundle.edit(|c| {
        c["hooks"] = serde_json::json!({"createContainer": [
            {"path": "/bin/sh", "args": ["sh", "-c", script]}
        ]});
    });
    let id = unique_id("orphan");
    let mut create = pinc
        .cmd(&[
            "create",
            "--bundle",
            bundle.path().to_str().expect("utf8"),
            &id,
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn create");
    assert!(
        wait_until(CMD_TIMEOUT, || fs::read_to_string(&mark)
            .is_ok_and(|s| s.ends_with('\n'))),
        "the hook never ran"
    );
    create.kill().expect("kill create");
    wait_bounded(&mut create, "pinc create");

    // The init, forked before the kill, still holds the id's lock.
    let out = run_with_timeout(&mut pinc.cmd(&["kill", &id, "KILL"]), CMD_TIMEOUT);
    assert!(stderr(&out).contains("left behind"), "{}", stderr(&out));
    let out = run_with_timeout(&mut pinc.cmd(&["delete", "--force", &id]), CMD_TIMEOUT);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(pinc.leftovers().is_empty(), "{:?}", pinc.leftovers());
    assert!(
        pinc.private_leftovers().is_empty(),
        "{:?}",
        pinc.private_leftovers()
    );
    // Removed, so empty: the init and the hook are gone.
    assert!(
        cgroup_dirs_named(&id).is_empty(),
        "{:?}",
        cgroup_dirs_named(&id)
    );
}

#[test]
fn kill_by_number_default_and_all() {
    require_root();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["sh", "-c", "trap 'exit 3' TERM; sleep 60 & wait"]);
    let id = unique_id("kill");
    let b = bundle.path().to_str().expect("utf8");
    pinc.ok(&["run", "--detach", "-b", b, &id]);
    pinc.wait_for_status(&id, "running");
    // Default signal is TERM, which the trap turns into exit 3.
    pinc.ok(&["kill", &id]);
    pinc.wait_for_status(&id, "stopped");
    pinc.ok(&["delete", &id]);

    let id = unique_id("killall");
    pinc.ok(&["run", "--detach", "-b", b, &id]);
    pinc.wait_for_status(&id, "running");
    pinc.ok(&["kill", "--all", &id, "9"]);
    pinc.wait_for_status(&id, "stopped");
    let err = pinc.fails(&["kill", &id, "NOTASIGNAL"]);
    assert!(err.contains("NOTASIGNAL"), "{err}");
    pinc.ok(&["delete", "--force", &id]);
}

#[test]
fn delete_force_kills_and_tolerates_gone_containers() {
    require_root();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["sleep", "60"]);
    let id = unique_id("force");
    pinc.ok(&[
        "run",
        "-d",
        "-b",
        bundle.path().to_str().expect("utf8"),
        &id,
    ]);
    pinc.wait_for_status(&id, "running");
    let pid = pinc.state(&id)["pid"].as_i64().expect("pid") as i32;
    pinc.ok(&["delete", "--force", &id]);
    // Gone, or a zombie waiting for the machine's init to reap it.
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "init killed: {stat}"
    );
    // Slurm deletes at cleanup whatever it started: a gone container is fine with --force.
    let out = pinc.output(&["delete", "--force", &id]);
    assert!(
        out.status.success() && stderr(&out).is_empty(),
        "{}",
        stderr(&out)
    );
    let err = pinc.fails(&["delete", &id]);
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn exec_runs_in_the_container_with_options() {
    require_root();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["sleep", "60"]);
    let id = unique_id("exec");
    pinc.ok(&[
        "run",
        "-d",
        "-b",
        bundle.path().to_str().expect("utf8"),
        &id,
    ]);
    pinc.wait_for_status(&id, "running");

    let out = pinc.output(&["exec", &id, "sh", "-c", "hostname; exit 5"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert_eq!(stdout(&out), "pinc\n");

    let out = pinc.ok(&[
        "exec",
        "--env",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "--user",
        "65534:65534",
        &id,
        "sh",
        "-c",
        "echo $FOO $(pwd) $(id -u):$(id -g)",
    ]);
    assert_eq!(out, "bar /tmp 65534:65534\n");

    // Same pid namespace as init: pid 1 is the container's sleep.
    assert_eq!(pinc.ok(&["exec", &id, "cat", "/proc/1/comm"]), "sleep\n");

    let process = bundle.path().join("process.json");
    fs::write(
        &process,
        r#"{"terminal":false,"args":["sh","-c","echo from process.json; exit 9"],"cwd":"/","env":["PATH=/bin"],"user":{"uid":0,"gid":0}}"#,
    )
    .expect("process.json");
    let out = pinc.output(&["exec", "--process", process.to_str().expect("utf8"), &id]);
    assert_eq!(out.status.code(), Some(9), "{}", stderr(&out));
    assert_eq!(stdout(&out), "from process.json\n");

    let pid_file = bundle.path().join("exec.pid");
    pinc.ok(&[
        "exec",
        "--detach",
        "--pid-file",
        pid_file.to_str().expect("utf8"),
        &id,
        "sleep",
        "30",
    ]);
    let exec_pid: i32 = fs::read_to_string(&pid_file)
        .expect("pid")
        .trim()
        .parse()
        .expect("number");
    let pids: Vec<i64> =
        serde_json::from_str(&pinc.ok(&["ps", "--format", "json", &id])).expect("ps json");
    assert!(
        pids.contains(&(exec_pid as i64)),
        "ps lists the exec'd process: {pids:?}"
    );
    assert!(pinc
        .private_leftovers()
        .iter()
        .all(|p| !p.starts_with("exec/")));

    pinc.ok(&["kill", &id, "KILL"]);
    pinc.wait_for_status(&id, "stopped");
    let err = pinc.fails(&["exec", &id, "true"]);
    assert!(err.contains("stopped"), "{err}");
    pinc.ok(&["delete", &id]);
}

#[test]
fn ps_list_pause_resume_update_events() {
    require_root();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["sleep", "60"]);
    let id = unique_id("ops");
    pinc.ok(&[
        "run",
        "-d",
        "-b",
        bundle.path().to_str().expect("utf8"),
        &id,
    ]);
    pinc.wait_for_status(&id, "running");
    let init = pinc.state(&id)["pid"].as_i64().expect("pid");

    let pids: Vec<i64> =
        serde_json::from_str(&pinc.ok(&["ps", "--format", "json", &id])).expect("json");
    assert_eq!(pids, vec![init]);
    let table = pinc.ok(&["ps", &id]);
    assert!(
        table.lines().next().expect("header").contains("PID"),
        "{table}"
    );
    assert!(
        table.contains(&init.to_string()) && table.lines().count() == 2,
        "{table}"
    );

    let list = pinc.ok(&["list"]);
    assert!(
        list.starts_with("ID") && list.contains(&id) && list.contains("running"),
        "{list}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&pinc.ok(&["list", "--format", "json"])).expect("json");
    assert_eq!(json[0]["id"], id.as_str());
    assert_eq!(pinc.ok(&["list", "-q"]).trim(), id);

    pinc.ok(&["pause", &id]);
    assert_eq!(pinc.state(&id)["status"], "paused");
    let freezer = fs::read_to_string(format!("/sys/fs/cgroup/freezer/pinc/{id}/freezer.state"))
        .expect("freezer");
    assert_eq!(freezer.trim(), "FROZEN");
    pinc.ok(&["resume", &id]);
    assert_eq!(pinc.state(&id)["status"], "running");

    pinc.ok(&["update", "--memory", "67108864", "--pids-limit", "42", &id]);
    let mem = fs::read_to_string(format!(
        "/sys/fs/cgroup/memory/pinc/{id}/memory.limit_in_bytes"
    ))
    .expect("mem");
    assert_eq!(mem.trim(), "67108864");
    let pids_max =
        fs::read_to_string(format!("/sys/fs/cgroup/pids/pinc/{id}/pids.max")).expect("pids");
    assert_eq!(pids_max.trim(), "42");
    let mut child = pinc
        .cmd(&["update", "--resources", "-", &id])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("spawn update");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(br#"{"pids":{"limit":50}}"#).expect("write");
    }
    assert!(wait_bounded(&mut child, "pinc update").success());
    let pids_max =
        fs::read_to_string(format!("/sys/fs/cgroup/pids/pinc/{id}/pids.max")).expect("pids");
    assert_eq!(pids_max.trim(), "50");

    let events: serde_json::Value =
        serde_json::from_str(pinc.ok(&["events", "--stats", &id]).trim()).expect("events");
    assert_eq!(events["type"], "stats");
    assert_eq!(events["id"], id.as_str());
    assert!(
        events["data"]["pids"]["current"]
            .as_u64()
            .expect("pids.current")
            >= 1,
        "{events}"
    );

    pinc.ok(&["delete", "--force", &id]);
    assert!(cgroup_dirs_named(&id).is_empty());
}

#[test]
fn spec_and_features() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pinc = Pinc::new();
    pinc.ok(&["spec", "--bundle", dir.path().to_str().expect("utf8")]);
    let spec: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("config.json")).expect("config"))
            .expect("json");
    assert!(spec["ociVersion"]
        .as_str()
        .expect("version")
        .starts_with("1."));
    let err = pinc.fails(&["spec", "--bundle", dir.path().to_str().expect("utf8")]);
    assert!(err.contains("exists"), "{err}");

    let features: serde_json::Value = serde_json::from_str(&pinc.ok(&["features"])).expect("json");
    assert_eq!(features["ociVersionMin"], "1.0.0");
    assert_eq!(features["linux"]["cgroup"]["v1"], true);
    assert_eq!(
        features["linux"]["selinux"]["enabled"], false,
        "pinc has no SELinux support"
    );
    assert!(features["hooks"]
        .as_array()
        .expect("hooks")
        .iter()
        .any(|h| h == "createRuntime"));
}

#[test]
fn version_flag() {
    let out = Pinc::new().output(&["--version"]);
    assert!(out.status.success());
    assert!(stdout(&out).starts_with("pinc "), "{}", stdout(&out));
}

#[test]
fn processes_entering_a_container_run_pinc_from_a_read_only_view() {
    require_root();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["sleep", "30"]);
    let id = unique_id("cve");
    pinc.ok(&["create", "-b", bundle.path().to_str().expect("utf8"), &id]);
    // The created init is still the pinc image, waiting for `start`.
    let pid = pinc.state(&id)["pid"].as_i64().expect("pid");
    let exe = nix::sys::statvfs::statvfs(format!("/proc/{pid}/exe").as_str()).expect("statvfs exe");
    assert!(
        exe.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY),
        "CVE-2019-5736: the init must not run from a writable pinc binary"
    );
    pinc.ok(&["delete", "--force", &id]);
}
