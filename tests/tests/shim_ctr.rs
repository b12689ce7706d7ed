//! containerd 1.6 driving pinc through its own shim, containerd-shim-pinc-v2:
//! a private containerd with the shim and pinc on its PATH runs containers
//! with `ctr run --runtime io.containerd.pinc.v2` (and by absolute path).
//!
//! One #[test]: the scenarios share the daemon and run in order; each
//! scenario's failure is recorded and reported at the end.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use pinc_tests::daemons::{
    describe, docker_save_archive, kill_processes_mentioning, ok, rootfs_tar, run_with_input,
    run_with_timeout, short_tempdir, wait_until, Containerd, Scenarios, CMD_TIMEOUT,
};
use pinc_tests::shim::{
    containerd_with_shim, leftovers, mounts_under, remove_namespace_cgroups, rss_kb, shim_bin,
    shim_pids, shim_root, zombies_of, RUNTIME,
};
use pinc_tests::{require_root, stderr, stdout};

#[path = "shim_ctr/kills.rs"]
mod kills;

use kills::{kill_shim_during_create, kill_shim_under_running_task};

const IMAGE: &str = "docker.io/library/busybox:local";

struct Ctr<'a> {
    d: &'a Containerd,
    ns: String,
}

impl Ctr<'_> {
    fn cmd(&self, args: &[&str]) -> Command {
        self.d.ctr(&self.ns, args)
    }

    fn out(&self, args: &[&str]) -> Output {
        self.d.ctr_out(&self.ns, args)
    }

    fn ok(&self, args: &[&str]) -> String {
        ok(&format!("ctr {args:?}"), &self.out(args))
    }

    fn run_args<'b>(
        runtime: &'b str,
        extra: &[&'b str],
        id: &'b str,
        cmd: &[&'b str],
    ) -> Vec<&'b str> {
        let mut args = vec!["run", "--runtime", runtime];
        args.extend_from_slice(extra);
        args.push(IMAGE);
        args.push(id);
        args.extend_from_slice(cmd);
        args
    }

    /// `ctr run --runtime io.containerd.pinc.v2 <extra> IMAGE id cmd...`
    fn run(&self, extra: &[&str], id: &str, cmd: &[&str]) -> Output {
        self.out(&Self::run_args(RUNTIME, extra, id, cmd))
    }

    /// (pid, status) of a task from `ctr task ls`.
    fn task(&self, id: &str) -> Option<(i64, String)> {
        let out = self.ok(&["task", "ls"]);
        out.lines().skip(1).find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&id)).then(|| {
                (
                    f.get(1).and_then(|p| p.parse().ok()).unwrap_or(-1),
                    f.get(2).map(|s| s.to_string()).unwrap_or_default(),
                )
            })
        })
    }

    fn bundle(&self, id: &str) -> PathBuf {
        self.d
            .dir()
            .join("state/io.containerd.runtime.v2.task")
            .join(&self.ns)
            .join(id)
    }

    /// Kills, deletes the task and the container.
    fn remove(&self, id: &str) {
        let _ = self.out(&["task", "kill", "-s", "SIGKILL", id]);
        let _ = wait_until(Duration::from_secs(10), || {
            self.task(id).is_none_or(|(_, s)| s == "STOPPED")
        });
        let _ = self.out(&["task", "rm", "-f", id]);
        let _ = self.out(&["container", "rm", id]);
    }
}

/// What the scenarios share: the ctr client, its namespace, the shim
/// binary, the image's work dir and the long-running script.
struct Env<'a> {
    c: &'a Ctr<'a>,
    ns: &'a str,
    shim: &'a Path,
    work: &'a tempfile::TempDir,
    script: &'a str,
}

#[test]
fn ctr_runs_containers_through_the_pinc_shim() {
    require_root();
    let started = Instant::now();
    let shim = shim_bin();
    let work = short_tempdir("pinc-shim-img-");
    let layer = rootfs_tar(work.path());
    let archive = docker_save_archive(work.path(), &layer, "busybox:local");

    let mut d = containerd_with_shim();
    let ns = format!("pinc-shim-{}", std::process::id());
    d.use_namespace(&ns);
    eprintln!("containerd up after {:.2?}", started.elapsed());
    let c = Ctr {
        d: &d,
        ns: ns.clone(),
    };
    let archive_s = archive.to_string_lossy().into_owned();
    let imported = c.ok(&["image", "import", &archive_s]);
    assert!(imported.contains(IMAGE), "import: {imported}");

    let script = "trap 'exit 0' TERM; while :; do sleep 1; done";
    let env = Env {
        c: &c,
        ns: &ns,
        shim: &shim,
        work: &work,
        script,
    };
    let mut s = Scenarios::new();

    s.run("by name: stdout, stderr, exit code 7", || by_name(&env));

    s.run("by absolute path: exit code 0", || by_absolute_path(&env));

    s.run("stdin reaches the container, EOF ends it", || {
        stdin_eof(&env)
    });

    s.run("tty: output and exit code", || tty(&env));

    s.run("pinned: pinc.io/cpus=1 gives one CPU", || pinned(&env));

    s.run("SIGKILL gives 137", || sigkill(&env));

    s.run("shared pid namespace: init's children die with it", || {
        shared_pid_namespace(&env)
    });

    s.run(
        "detached: exec, ps, metrics, pause/resume, kill, delete",
        || detached(&env),
    );

    s.run("checkpoint is refused clearly", || checkpoint_refused(&env));

    s.run(
        "one shim per pod: sandbox-id annotation groups containers",
        || shim_per_pod(&env),
    );

    s.run(
        "events: create, start, exec, pause, resume, exit, delete",
        || events(&env),
    );

    s.run("config file: root from --runtime-config-path", || {
        config_file_root(&env)
    });

    // A SIGKILLed shim: containerd sees its connection close, runs the shim
    // binary's `delete` action (pinc's runs `pinc delete --force` in the
    // root the bundle's saved config names) and drops the task. What
    // containerd does with runc's shim in the same spot is the bar.
    s.run("a SIGKILLed shim: the task goes, nothing is left", || {
        killed_shim(&env)
    });

    s.run(
        "a shim SIGKILLed during create: cleaned up each time",
        || killed_shim_during_create(&env),
    );

    s.run(
        "a shim SIGKILLed while pinc create runs a slow hook",
        || killed_shim_during_hook(&env),
    );

    s.run(
        "the delete action: torn or missing state, a valid response",
        || delete_action(&env),
    );

    s.run("afterwards: no shim, no mounts", || no_shim_left(&env));

    s.run(
        "afterwards: pinc's root and the namespace's cgroups go",
        || root_and_cgroups_gone(&env),
    );

    s.finish();
}

/// by name: stdout, stderr, exit code 7.
fn by_name(e: &Env<'_>) {
    let (c, ns) = (e.c, e.ns);
    let out = c.run(
        &["--rm"],
        "named",
        &["sh", "-c", "echo hi; echo oops >&2; exit 7"],
    );
    assert_eq!(stdout(&out), "hi\n", "{}", describe(&out));
    assert!(stderr(&out).contains("oops"), "{}", describe(&out));
    assert_eq!(out.status.code(), Some(7), "{}", describe(&out));
    assert!(
        shim_root(ns).is_dir(),
        "no pinc state root {}",
        shim_root(ns).display()
    );
    assert!(
        !shim_root(ns).join("named").exists(),
        "pinc state left behind"
    );
    let left = c.ok(&["container", "ls", "-q"]);
    assert!(left.trim().is_empty(), "--rm left containers: {left}");
}

/// by absolute path: exit code 0.
fn by_absolute_path(e: &Env<'_>) {
    let (c, shim) = (e.c, e.shim);
    let shim_s = shim.to_string_lossy().into_owned();
    let out = c.out(&Ctr::run_args(
        &shim_s,
        &["--rm"],
        "abs",
        &["echo", "absolute"],
    ));
    assert_eq!(stdout(&out), "absolute\n", "{}", describe(&out));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}

/// stdin reaches the container, EOF ends it.
fn stdin_eof(e: &Env<'_>) {
    let c = e.c;
    let args = Ctr::run_args(RUNTIME, &["--rm"], "stdin", &["sh", "-c", "cat; exit 4"]);
    let out = run_with_input(&mut c.cmd(&args), b"piped line\n", CMD_TIMEOUT);
    assert_eq!(stdout(&out), "piped line\n", "{}", describe(&out));
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
}

/// tty: output and exit code.
fn tty(e: &Env<'_>) {
    let (c, ns) = (e.c, e.ns);
    // ctr -t needs a terminal on its stdin: script(1) provides one.
    let args = Ctr::run_args(
        RUNTIME,
        &["--rm", "-t"],
        "tty",
        &["sh", "-c", "test -t 0 && echo on-a-tty; exit 3"],
    );
    let mut line = vec![
        d_ctr_path(),
        "--address".into(),
        c.d.sock.to_string_lossy().into_owned(),
        "--namespace".into(),
        ns.to_string(),
    ];
    line.extend(args.iter().map(|a| a.to_string()));
    let line: Vec<String> = line
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let out = run_with_timeout(
        Command::new("script").args(["-qefc", &line.join(" "), "/dev/null"]),
        CMD_TIMEOUT,
    );
    assert!(stdout(&out).contains("on-a-tty"), "{}", describe(&out));
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
}

/// pinned: pinc.io/cpus=1 gives one CPU.
fn pinned(e: &Env<'_>) {
    let c = e.c;
    let out = c.run(
        &["--rm", "--annotation", "pinc.io/cpus=1"],
        "pinned",
        &["grep", "Cpus_allowed_list", "/proc/self/status"],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let list = stdout(&out);
    let v = list.split(':').nth(1).unwrap_or("").trim().to_string();
    assert!(
        !v.is_empty() && v.chars().all(|ch| ch.is_ascii_digit()),
        "not one CPU: {list:?}"
    );
}

/// SIGKILL gives 137.
fn sigkill(e: &Env<'_>) {
    let c = e.c;
    let args = Ctr::run_args(RUNTIME, &["--rm"], "killed", &["sleep", "100"]);
    let mut child = c
        .cmd(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ctr run");
    assert!(
        wait_until(Duration::from_secs(20), || c
            .task("killed")
            .is_some_and(|(_, s)| s == "RUNNING")),
        "task never ran"
    );
    c.ok(&["task", "kill", "-s", "SIGKILL", "killed"]);
    let deadline = Instant::now() + CMD_TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait ctr") {
            break st;
        }
        assert!(Instant::now() < deadline, "ctr run did not end");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(137));
}

/// shared pid namespace: init's children die with it.
fn shared_pid_namespace(e: &Env<'_>) {
    let c = e.c;
    // In the host's pid namespace the children outlive init; the
    // shim must end them, or they hold the output open.
    let child = "sleep 7321";
    let cmd = format!("{child} & exec sleep 100");
    let out = c.run(
        &["-d", "--with-ns", "pid:/proc/self/ns/pid"],
        "sharedpid",
        &["sh", "-c", &cmd],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let alive = || {
        Command::new("pgrep")
            .args(["-f", child])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    assert!(
        wait_until(Duration::from_secs(10), alive),
        "child never ran"
    );
    c.ok(&["task", "kill", "-s", "SIGKILL", "sharedpid"]);
    assert!(
        wait_until(Duration::from_secs(20), || c
            .task("sharedpid")
            .is_some_and(|(_, s)| s == "STOPPED")),
        "task never stopped"
    );
    let left = alive();
    c.remove("sharedpid");
    assert!(!left, "{child} outlived the container's init");
}

/// detached: exec, ps, metrics, pause/resume, kill, delete.
fn detached(e: &Env<'_>) {
    let (c, ns, script) = (e.c, e.ns, e.script);
    let out = c.run(&["-d"], "long", &["sh", "-c", script]);
    assert!(out.status.success(), "{}", describe(&out));
    let (pid, status) = c.task("long").expect("task listed");
    assert_eq!(status, "RUNNING");
    let shims = shim_pids(ns);
    assert_eq!(shims.len(), 1, "one shim expected: {shims:?}");
    if let Some(kb) = rss_kb(shims[0]) {
        eprintln!("shim RSS with one running container: {kb} kB");
    }

    let out = c.out(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "long",
        "sh",
        "-c",
        "echo from-exec; echo e >&2; exit 5",
    ]);
    assert_eq!(stdout(&out), "from-exec\n", "{}", describe(&out));
    assert_eq!(out.status.code(), Some(5), "{}", describe(&out));

    let ps = c.ok(&["task", "ps", "long"]);
    assert!(
        ps.lines()
            .any(|l| l.split_whitespace().next() == Some(&pid.to_string())),
        "ps: {ps}"
    );

    let metrics = c.ok(&["task", "metrics", "long"]);
    for key in ["memory.usage_in_bytes", "cpuacct.usage", "pids.current"] {
        assert!(metrics.contains(key), "metrics lack {key}: {metrics}");
    }

    c.ok(&["task", "pause", "long"]);
    assert_eq!(c.task("long").map(|t| t.1).as_deref(), Some("PAUSED"));
    c.ok(&["task", "resume", "long"]);
    assert_eq!(c.task("long").map(|t| t.1).as_deref(), Some("RUNNING"));

    assert!(zombies_of(shims[0]).is_empty(), "zombies under the shim");
    c.ok(&["task", "kill", "long"]);
    assert!(
        wait_until(Duration::from_secs(20), || c
            .task("long")
            .is_some_and(|(_, s)| s == "STOPPED")),
        "SIGTERM did not stop the task"
    );
    let bundle = c.bundle("long");
    assert!(
        !mounts_under(&bundle).is_empty(),
        "rootfs was not mounted under the bundle"
    );
    c.ok(&["task", "rm", "long"]);
    c.ok(&["container", "rm", "long"]);
    assert!(
        mounts_under(&bundle).is_empty(),
        "mounts left: {:?}",
        mounts_under(&bundle)
    );
    assert!(
        wait_until(Duration::from_secs(10), || shim_pids(ns).is_empty()),
        "shim still running: {:?}",
        shim_pids(ns)
    );
    assert!(
        !shim_root(ns).join("long").exists(),
        "pinc state left behind"
    );
}

/// checkpoint is refused clearly.
fn checkpoint_refused(e: &Env<'_>) {
    let (c, script) = (e.c, e.script);
    let out = c.run(&["-d"], "ckpt", &["sh", "-c", script]);
    assert!(out.status.success(), "{}", describe(&out));
    let out = c.out(&["task", "checkpoint", "ckpt"]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        stderr(&out).contains("checkpoint is not supported by pinc"),
        "{}",
        describe(&out)
    );
    c.remove("ckpt");
}

/// one shim per pod: sandbox-id annotation groups containers.
fn shim_per_pod(e: &Env<'_>) {
    let (c, ns, script) = (e.c, e.ns, e.script);
    let pod = ["-d", "--annotation", "io.kubernetes.cri.sandbox-id=pod1"];
    for id in ["pod-a", "pod-b"] {
        let out = c.run(&pod, id, &["sh", "-c", script]);
        assert!(out.status.success(), "{}", describe(&out));
    }
    let out = c.run(&["-d"], "alone", &["sh", "-c", script]);
    assert!(out.status.success(), "{}", describe(&out));
    let shims = shim_pids(ns);
    assert_eq!(
        shims.len(),
        2,
        "pod shim + standalone shim expected: {shims:?}"
    );
    c.remove("pod-a");
    assert_eq!(
        c.task("pod-b").map(|t| t.1).as_deref(),
        Some("RUNNING"),
        "the pod's other container must survive"
    );
    // The shim started in pod-a's bundle, which is gone now: its
    // pinc calls for pod-b must not depend on that cwd.
    let out = c.out(&["task", "exec", "--exec-id", "pe1", "pod-b", "echo", "still"]);
    c.remove("pod-b");
    c.remove("alone");
    assert_eq!(
        stdout(&out),
        "still\n",
        "exec after pod-a went: {}",
        describe(&out)
    );
    assert!(
        !c.ok(&["container", "ls", "-q"]).contains("pod-b"),
        "pod-b was not removed"
    );
}

/// events: create, start, exec, pause, resume, exit, delete.
fn events(e: &Env<'_>) {
    let (c, ns, work, script) = (e.c, e.ns, e.work, e.script);
    // `ctr events` streams every event of the daemon as
    // "<time> <namespace> <topic> <json>"; the shim publishes them
    // through containerd's ttrpc socket.
    let log_path = work.path().join("events.log");
    let log = std::fs::File::create(&log_path).expect("events log");
    let mut events = c
        .cmd(&["events"])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(Stdio::null())
        .spawn()
        .expect("ctr events");
    // Subscribing is asynchronous: tag the image (an event of its
    // own) until `ctr events` shows it, so none of ours is missed.
    let probe = "docker.io/library/probe:events";
    let subscribed = wait_until(Duration::from_secs(20), || {
        let _ = c.out(&["image", "rm", probe]);
        let _ = c.out(&["image", "tag", IMAGE, probe]);
        std::thread::sleep(Duration::from_millis(100));
        std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .contains("/images/create")
    });
    let _ = c.out(&["image", "rm", probe]);
    if !subscribed {
        let _ = events.kill();
        let _ = events.wait();
        panic!("ctr events showed no /images/create within 20s");
    }
    let id = "evented";
    let out = c.run(&["-d"], id, &["sh", "-c", script]);
    let mut steps = vec![describe(&out)];
    if out.status.success() {
        steps.push(describe(&c.out(&[
            "task",
            "exec",
            "--exec-id",
            "ev1",
            id,
            "true",
        ])));
        steps.push(describe(&c.out(&["task", "pause", id])));
        steps.push(describe(&c.out(&["task", "resume", id])));
    }
    c.remove(id);
    let topics = [
        "/tasks/create",
        "/tasks/start",
        "/tasks/exec-added",
        "/tasks/exec-started",
        "/tasks/paused",
        "/tasks/resumed",
        "/tasks/exit",
        "/tasks/delete",
    ];
    let missing = || -> Vec<&str> {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        topics
            .iter()
            .copied()
            .filter(|t| {
                !text.lines().any(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.contains(&ns)
                        && f.iter().any(|w| w == t)
                        && l.contains(&format!("\"container_id\":\"{id}\""))
                        // The init's exit, not only the exec's.
                        && (*t != "/tasks/exit" || l.contains(&format!("\"id\":\"{id}\"")))
                })
            })
            .collect()
    };
    let all = wait_until(Duration::from_secs(10), || missing().is_empty());
    let _ = events.kill();
    let _ = events.wait();
    assert!(
        all,
        "topics missing for {id}: {:?}\nsteps: {steps:?}\nevents:\n{}",
        missing(),
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );
}

/// config file: root from --runtime-config-path.
fn config_file_root(e: &Env<'_>) {
    let (c, ns, work, script) = (e.c, e.ns, e.work, e.script);
    let root = short_tempdir("pinc-shim-root-");
    let cfg = work.path().join("pinc-shim.json");
    let json = format!("{{\"root\": \"{}\"}}", root.path().display());
    std::fs::write(&cfg, json).expect("write shim config");
    let cfg_s = cfg.to_string_lossy().into_owned();
    let id = "configured";
    let out = c.run(
        &["-d", "--runtime-config-path", &cfg_s],
        id,
        &["sh", "-c", script],
    );
    let state = root.path().join(ns).join(id);
    let seen = state.is_dir();
    let default_used = shim_root(ns).join(id).exists();
    c.remove(id);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(seen, "no pinc state at {}", state.display());
    assert!(
        !default_used,
        "the default root was used despite the config"
    );
    assert!(!state.exists(), "pinc state left at {}", state.display());
}

/// a SIGKILLed shim: the task goes, nothing is left.
fn killed_shim(e: &Env<'_>) {
    let (c, ns) = (e.c, e.ns);
    let runc_root = Containerd::runc_root(ns);
    let runc = kill_shim_under_running_task(
        c,
        ("io.containerd.runc.v2", "containerd-shim-runc-v2"),
        &runc_root,
        "shimkill-runc",
    );
    let pinc = kill_shim_under_running_task(
        c,
        (RUNTIME, "containerd-shim-pinc-v2"),
        &shim_root(ns),
        "shimkill-pinc",
    );
    eprintln!(
        "after a SIGKILLed shim `ctr task ls` shows the task as: runc {:?}, pinc {:?} \
         (None: not listed); runc's problems: {:?}",
        runc.0, pinc.0, runc.1
    );
    assert!(pinc.1.is_empty(), "pinc's shim: {:#?}", pinc.1);
    assert_eq!(
        pinc.0, runc.0,
        "ctr task ls shows pinc's task otherwise than runc's"
    );
}

/// a shim SIGKILLed during create: cleaned up each time.
fn killed_shim_during_create(e: &Env<'_>) {
    let c = e.c;
    // A fresh spread of delays on each run (printed with any failure).
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut failures = Vec::new();
    let mut landed_in_create = 0;
    for n in 0..6 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(seed % 150);
        let id = format!("shimcreate-{n}");
        let (created, problems) = kill_shim_during_create(c, &id, &[], None, delay);
        if !created {
            landed_in_create += 1;
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{id} killed {delay:?} after its shim started: {problems:#?}"
            ));
        }
    }
    eprintln!("shim kills that failed the `ctr run`: {landed_in_create} of 6");
    assert!(failures.is_empty(), "{failures:#?}");
}

/// a shim SIGKILLed while pinc create runs a slow hook.
fn killed_shim_during_hook(e: &Env<'_>) {
    let (c, work) = (e.c, e.work);
    // pinc with a createRuntime hook that sleeps: pinc create holds the
    // id lock for a minute. Its shim dies meanwhile; the delete action
    // must still finish within containerd's cleanup timeout (5 s), so
    // that containerd removes the bundle and nothing waits on the hook.
    let marker = format!("pinc-slow-hook-{}", std::process::id());
    let wrapper = work.path().join("pinc-slow-create");
    let hook = format!(
        r#"{{"hooks":{{"createRuntime":[{{"path":"/bin/sleep","args":["{marker}","60"]}}]}},"#
    );
    let script = format!(
        "#!/bin/sh\nfor a; do [ \"$prev\" = --bundle ] && b=$a; prev=$a; done\n\
         [ -n \"$b\" ] && sed -i '1s/^{{/{}/' \"$b/config.json\"\nexec {} \"$@\"\n",
        hook.replace('/', "\\/"),
        pinc_tests::daemons::pinc_abs().display()
    );
    std::fs::write(&wrapper, script).expect("write the pinc wrapper");
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod the pinc wrapper");
    let cfg = work.path().join("pinc-slow.json");
    let json = format!("{{\"binary\": \"{}\"}}", wrapper.display());
    std::fs::write(&cfg, json).expect("write shim config");
    let cfg_s = cfg.to_string_lossy().into_owned();
    let id = "shimslow";
    let (created, mut problems) = kill_shim_during_create(
        c,
        id,
        &["--runtime-config-path", &cfg_s],
        Some(&marker),
        Duration::ZERO,
    );
    let log = std::fs::read_to_string(&c.d.log).unwrap_or_default();
    let tag = format!("id={id} ");
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&tag) && l.contains("failed to clean up after shim disconnected"))
        .collect();
    kill_processes_mentioning(&marker);
    assert!(
        !created,
        "ctr run succeeded although its shim died in create"
    );
    if !failed.is_empty() {
        problems.push(format!("containerd's cleanup failed: {failed:?}"));
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// the delete action: torn or missing state, a valid response.
fn delete_action(e: &Env<'_>) {
    let (ns, shim) = (e.ns, e.shim);
    // containerd runs `<shim> -namespace N -address A -id ID delete` in
    // the bundle after a shim died; the container's state may be torn
    // (a pinc killed while writing it) or never have been written.
    let root = short_tempdir("pinc-shim-torn-");
    let bundle = short_tempdir("pinc-shim-bundle-");
    let json = format!("{{\"root\": \"{}\"}}", root.path().display());
    std::fs::write(bundle.path().join("pinc-shim.json"), json).expect("write shim config");
    let ns_root = root.path().join(ns);
    let torn = ns_root.join("shimtorn");
    std::fs::create_dir_all(&torn).expect("state dir");
    std::fs::write(torn.join("state.json"), b"").expect("empty state.json");
    for id in ["shimtorn", "shimnever"] {
        let out = run_with_timeout(
            Command::new(shim)
                .args([
                    "-namespace",
                    ns,
                    "-address",
                    "/nonexistent",
                    "-id",
                    id,
                    "delete",
                ])
                .current_dir(bundle.path())
                .env("TTRPC_ADDRESS", "/nonexistent"),
            CMD_TIMEOUT,
        );
        assert!(out.status.success(), "{id}: {}", describe(&out));
        // DeleteResponse.exit_status (field 2, varint) = 137 (SIGKILL).
        assert!(
            out.stdout.windows(3).any(|w| w == [0x10, 0x89, 0x01]),
            "{id}: no exit status 137 in the response {:02x?}",
            out.stdout
        );
        assert!(stderr(&out).trim().is_empty(), "{id}: {}", describe(&out));
    }
    let left = leftovers(&ns_root, "shimtorn");
    assert!(left.is_empty(), "the torn container is left: {left:?}");
}

/// afterwards: no shim, no mounts.
fn no_shim_left(e: &Env<'_>) {
    let (c, ns) = (e.c, e.ns);
    assert!(
        wait_until(Duration::from_secs(10), || shim_pids(ns).is_empty()),
        "shims left: {:?}",
        shim_pids(ns)
    );
    let tasks =
        c.d.dir()
            .join("state/io.containerd.runtime.v2.task")
            .join(ns);
    assert!(
        mounts_under(&tasks).is_empty(),
        "mounts: {:?}",
        mounts_under(&tasks)
    );
}

/// afterwards: pinc's root and the namespace's cgroups go.
fn root_and_cgroups_gone(e: &Env<'_>) {
    let ns = e.ns;
    let root = shim_root(ns);
    let entries: Vec<String> = std::fs::read_dir(&root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".pinc")
        .collect();
    assert!(
        entries.is_empty(),
        "containers left in {}: {entries:?}",
        root.display()
    );
    let _ = std::fs::remove_dir_all(&root);
    let left = remove_namespace_cgroups(ns);
    assert!(left.is_empty(), "namespace cgroups in use: {left:?}");
}

/// ctr as script(1) runs it (from PATH, like the harness's `require_bin`).
fn d_ctr_path() -> String {
    "ctr".to_string()
}
