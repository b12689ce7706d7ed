//! The pinc shim against containerd's runc shim, scenario by scenario: the
//! same steps run through `io.containerd.runc.v2` (runc) and
//! `io.containerd.pinc.v2`, and what containerd's clients see must match:
//! the events of each container (order and fields, from `ctr events`), the
//! exec a pid belongs to (`ctr task ps`), a terminal's size after
//! ResizePty, cgroup limits after Update, an exec whose child holds its
//! output. Each scenario also checks the expected values themselves.

use std::process::Command;
use std::time::Duration;

use pinc_tests::daemons::{
    describe, docker_save_archive, ok, rootfs_tar, short_tempdir, wait_until, Containerd,
    Scenarios, CMD_TIMEOUT,
};
use pinc_tests::shim::{containerd_with_shim, RUNTIME};
use pinc_tests::{require_root, stdout};

#[path = "shim_events/events.rs"]
mod events;
#[path = "shim_events/pty.rs"]
mod pty;
#[path = "shim_events/ttrpc.rs"]
mod ttrpc;

use events::{normalize, EventLog};

const IMAGE: &str = "docker.io/library/busybox:local";
/// (name used in container ids, runtime type); runc's shim is the reference.
const RUNTIMES: [(&str, &str); 2] = [("runc", "io.containerd.runc.v2"), ("pinc", RUNTIME)];
const LOOP: &str = "trap 'exit 0' TERM; while :; do sleep 1; done";
/// Containers that exit at once, per runtime: enough for a race to show.
const EARLY: usize = 20;

struct Ctr<'a> {
    d: &'a Containerd,
    ns: String,
}

impl Ctr<'_> {
    fn out(&self, args: &[&str]) -> std::process::Output {
        self.d.ctr_out(&self.ns, args)
    }

    fn ok(&self, args: &[&str]) -> String {
        ok(&format!("ctr {args:?}"), &self.out(args))
    }

    fn run(&self, runtime: &str, extra: &[&str], id: &str, cmd: &[&str]) -> std::process::Output {
        let mut args = vec!["run", "--runtime", runtime];
        args.extend_from_slice(extra);
        args.push(IMAGE);
        args.push(id);
        args.extend_from_slice(cmd);
        self.out(&args)
    }

    fn status(&self, id: &str) -> Option<String> {
        self.ok(&["task", "ls"]).lines().skip(1).find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&id)).then(|| f.get(2).map(|s| s.to_string()).unwrap_or_default())
        })
    }

    fn remove(&self, id: &str) {
        let _ = self.out(&["task", "kill", "-s", "SIGKILL", id]);
        let _ = wait_until(Duration::from_secs(10), || {
            self.status(id).is_none_or(|s| s == "STOPPED")
        });
        let _ = self.out(&["task", "rm", "-f", id]);
        let _ = self.out(&["container", "rm", id]);
    }

    fn bundle(&self, id: &str) -> std::path::PathBuf {
        self.d
            .dir()
            .join("state/io.containerd.runtime.v2.task")
            .join(&self.ns)
            .join(id)
    }
}

/// The normalized events of `id`, once its TaskDelete arrived.
fn events_of(log: &EventLog, id: &str) -> Vec<String> {
    let done = log.wait_for(id, "/tasks/delete");
    let evs = log.of(id);
    assert!(done, "no /tasks/delete for {id}; its events: {evs:#?}");
    normalize(id, &evs)
}

fn pgrep(pattern: &str) -> bool {
    Command::new("pgrep")
        .args(["-f", pattern])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The memory and cpu cgroup v1 files of `pid`'s cgroup.
fn cgroup_values(pid: &str) -> Vec<(String, String)> {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let path_of = |controller: &str| {
        cgroups.lines().find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, names, path) = (f.next()?, f.next()?, f.next()?);
            names
                .split(',')
                .any(|n| n == controller)
                .then(|| (names.to_string(), path.to_string()))
        })
    };
    let mut values = Vec::new();
    for (controller, file) in [
        ("memory", "memory.limit_in_bytes"),
        ("cpu", "cpu.cfs_quota_us"),
        ("cpu", "cpu.cfs_period_us"),
    ] {
        let value = path_of(controller)
            .map(|(names, path)| format!("/sys/fs/cgroup/{names}{path}/{file}"))
            .and_then(|f| std::fs::read_to_string(f).ok())
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| "<missing>".into());
        values.push((file.to_string(), value));
    }
    values
}

#[test]
fn the_pinc_shim_matches_the_runc_shim() {
    require_root();
    let work = short_tempdir("pinc-shimev-");
    let layer = rootfs_tar(work.path());
    let archive = docker_save_archive(work.path(), &layer, "busybox:local");
    let mut d = containerd_with_shim();
    let ns = format!("pinc-shimev-{}", std::process::id());
    d.use_namespace(&ns);
    let c = Ctr {
        d: &d,
        ns: ns.clone(),
    };
    let imported = c.ok(&["image", "import", &archive.to_string_lossy()]);
    assert!(imported.contains(IMAGE), "import: {imported}");
    let log = EventLog::start(&d, &ns, work.path(), IMAGE);
    let mut s = Scenarios::new();

    s.run(
        "containers that exit at once: create, start, exit, delete",
        || quick_exit_events(&c, &log),
    );

    s.run(
        "a long container: execs, ps, pause, resume, kill, delete",
        || long_container_events(&c, &log),
    );

    s.run("OOM: TaskOOM, then exit 137", || oom_events(&c, &log));

    s.run("ResizePty: the terminal takes the client's size", || {
        resize_pty(&c)
    });

    s.run("Update: memory and cpu limits reach the cgroup", || {
        update_limits(&c)
    });

    s.finish();
}

/// containers that exit at once: create, start, exit, delete.
fn quick_exit_events(c: &Ctr<'_>, log: &EventLog) {
    let mut seen = Vec::new();
    for (name, runtime) in RUNTIMES {
        let mut lines = Vec::new();
        for i in 0..EARLY {
            let id = format!("{name}-true-{i}");
            let out = c.run(runtime, &["--rm"], &id, &["true"]);
            assert_eq!(out.status.code(), Some(0), "{id}: {}", describe(&out));
            lines.push((id.clone(), events_of(log, &id)));
        }
        seen.push(lines);
    }
    let reference = &seen[0][0].1;
    let expected = [
        "/tasks/create",
        "/tasks/start",
        "/tasks/exit",
        "/tasks/delete",
    ];
    let ref_topics: Vec<&str> = reference
        .iter()
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(ref_topics, expected, "runc's events: {reference:#?}");
    assert!(reference[2].contains("pid=<init>"), "{reference:#?}");
    let differ: Vec<String> = seen
        .iter()
        .flatten()
        .filter(|(_, l)| l != reference)
        .map(|(id, l)| format!("{id}: {l:#?}"))
        .collect();
    assert!(
        differ.is_empty(),
        "runc's events {reference:#?}\ndiffer in:\n{}",
        differ.join("\n")
    );
}

/// a long container: execs, ps, pause, resume, kill, delete.
fn long_container_events(c: &Ctr<'_>, log: &EventLog) {
    let mut seen = Vec::new();
    for (name, runtime) in RUNTIMES {
        let id = format!("{name}-long");
        let marker = format!("sleep 47{}", if name == "runc" { 11 } else { 12 });
        let steps = long_container(c, log, runtime, &id, &marker);
        c.remove(&id);
        let lines = events_of(log, &id);
        seen.push((id, lines, steps));
        let _ = Command::new("pkill").args(["-f", &marker]).status();
    }
    let (runc, pinc) = (&seen[0], &seen[1]);
    let want: Vec<&str> = vec![
        "/tasks/create",
        "/tasks/start",
        "/tasks/exec-added",
        "/tasks/exec-started",
        "/tasks/exit",
        "/tasks/exec-added",
        "/tasks/exec-started",
        "/tasks/paused",
        "/tasks/resumed",
        "/tasks/exec-added",
        "/tasks/exec-started",
        "/tasks/exit",
        "/tasks/exit",
        "/tasks/exit",
        "/tasks/delete",
    ];
    let runc_topics: Vec<&str> = runc
        .1
        .iter()
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(runc_topics, want, "runc: {:#?}", runc.1);
    // The exec still running when the init died exits first.
    assert!(
        runc.1[12].contains("id=ps1") && runc.1[12].contains("exit_status=137"),
        "{:#?}",
        runc.1
    );
    assert!(
        runc.1[13].contains("id=<c>") && runc.1[13].contains("pid=<init>"),
        "{:#?}",
        runc.1
    );
    assert_eq!(runc.2, pinc.2, "what the clients saw (runc, pinc)");
    assert_eq!(runc.1, pinc.1, "events of {} and {}", runc.0, pinc.0);
}

/// OOM: TaskOOM, then exit 137.
fn oom_events(c: &Ctr<'_>, log: &EventLog) {
    let mut seen = Vec::new();
    for (name, runtime) in RUNTIMES {
        let id = format!("{name}-oom");
        let out = c.run(
            runtime,
            &["--rm", "--memory-limit", "33554432"],
            &id,
            &["sh", "-c", "x=aaaaaaaa; while :; do x=$x$x; done"],
        );
        assert_eq!(out.status.code(), Some(137), "{id}: {}", describe(&out));
        seen.push(events_of(log, &id));
    }
    let ts: Vec<&str> = seen[0]
        .iter()
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    assert!(ts.contains(&"/tasks/oom"), "runc: {:#?}", seen[0]);
    assert_eq!(seen[0], seen[1], "events (runc, pinc)");
}

/// ResizePty: the terminal takes the client's size.
fn resize_pty(c: &Ctr<'_>) {
    let mut seen = Vec::new();
    for (name, runtime) in RUNTIMES {
        seen.push(resize(c, runtime, &format!("{name}-tty")));
    }
    assert_eq!(seen[0], ("size-one", "size-two", Some(0)), "runc");
    assert_eq!(seen[1], seen[0], "pinc vs runc");
}

/// Update: memory and cpu limits reach the cgroup.
fn update_limits(c: &Ctr<'_>) {
    let mut seen = Vec::new();
    for (name, runtime) in RUNTIMES {
        let id = format!("{name}-upd");
        let out = c.run(runtime, &["-d"], &id, &["sh", "-c", LOOP]);
        assert!(out.status.success(), "{}", describe(&out));
        let pid = c
            .ok(&["task", "ls"])
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.first() == Some(&id.as_str())).then(|| f.get(1).map(|p| p.to_string()))
            })
            .flatten()
            .expect("pid");
        let socket = ttrpc::shim_socket(&c.bundle(&id));
        let json = r#"{"memory":{"limit":33554432},"cpu":{"quota":50000,"period":100000}}"#;
        let updated = ttrpc::call(&socket, "Update", &ttrpc::update_request(&id, json));
        let values = cgroup_values(&pid);
        c.remove(&id);
        seen.push((updated.map(drop), values));
    }
    let want = vec![
        ("memory.limit_in_bytes".to_string(), "33554432".to_string()),
        ("cpu.cfs_quota_us".to_string(), "50000".to_string()),
        ("cpu.cfs_period_us".to_string(), "100000".to_string()),
    ];
    assert_eq!(seen[0], (Ok(()), want), "runc");
    assert_eq!(seen[1], seen[0], "pinc vs runc");
}

/// What the clients saw in the long scenario (compared across runtimes).
#[derive(Debug, PartialEq)]
struct Seen {
    exec_status: Option<i32>,
    ps: Vec<String>,
    background: (String, Option<i32>, bool),
}

fn long_container(c: &Ctr, log: &EventLog, runtime: &str, id: &str, marker: &str) -> Seen {
    let out = c.run(runtime, &["-d"], id, &["sh", "-c", LOOP]);
    assert!(out.status.success(), "{}", describe(&out));
    let out = c.out(&["task", "exec", "--exec-id", "x1", id, "sh", "-c", "exit 3"]);
    let exec_status = out.status.code();
    c.ok(&[
        "task",
        "exec",
        "-d",
        "--exec-id",
        "ps1",
        id,
        "sleep",
        "1000",
    ]);
    assert!(log.wait_for(id, "/tasks/exec-started"), "no exec-started");
    let ps = pids(c, log, id);
    c.ok(&["task", "pause", id]);
    c.ok(&["task", "resume", id]);
    // A child of the exec keeps its output open: the exec's client still
    // ends (the shims bound the drain), the child lives on.
    let script = format!("{marker} & echo out");
    let out = c.out(&["task", "exec", "--exec-id", "bg", id, "sh", "-c", &script]);
    let background = (stdout(&out), out.status.code(), pgrep(marker));
    c.ok(&["task", "kill", id]);
    let stopped = wait_until(CMD_TIMEOUT, || c.status(id).as_deref() == Some("STOPPED"));
    assert!(stopped, "{id} did not stop on SIGTERM");
    let seen = Seen {
        exec_status,
        ps,
        background,
    };
    assert_eq!(seen.exec_status, Some(3), "{seen:?}");
    assert_eq!(
        seen.background,
        ("out\n".to_string(), Some(0), true),
        "{seen:?}"
    );
    seen
}

/// `ctr task ps` with pids named: `<init>`, `<exec:ps1>`; other pids (the
/// loop's short sleeps) only by their info.
fn pids(c: &Ctr, log: &EventLog, id: &str) -> Vec<String> {
    let evs = log.of(id);
    let pid_of = |topic: &str, exec: &str| {
        evs.iter()
            .find(|e| e.topic == topic && e.body["exec_id"].as_str().unwrap_or("") == exec)
            .and_then(|e| e.body["pid"].as_u64())
            .unwrap_or(0)
    };
    let (init, exec) = (
        pid_of("/tasks/start", ""),
        pid_of("/tasks/exec-started", "ps1"),
    );
    let text = c.ok(&["task", "ps", id]);
    let mut lines: Vec<String> = text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (pid, info) = l.trim().split_once(char::is_whitespace)?;
            let pid: u64 = pid.parse().ok()?;
            let name = if pid == init {
                "<init>"
            } else if pid == exec {
                "<exec:ps1>"
            } else {
                "<other>"
            };
            Some(format!("{name} {}", info.trim()))
        })
        .collect();
    lines.sort();
    lines.dedup();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<exec:ps1> ") && l.contains("ExecID:ps1")),
        "ps of {id}: {text}\nnamed: {lines:?}"
    );
    assert!(
        lines.contains(&"<init> -".to_string()),
        "ps of {id}: {text}"
    );
    lines
}

/// `ctr run -t` on a 40x123 pty; once the container saw that size, the
/// pty becomes 30x100. Returns what the container printed and the status.
fn resize(c: &Ctr, runtime: &str, id: &str) -> (&'static str, &'static str, Option<i32>) {
    let script = "until [ \"$(stty size)\" = '40 123' ]; do sleep 0.1; done; echo size-one; \
                  until [ \"$(stty size)\" = '30 100' ]; do sleep 0.1; done; echo size-two";
    let mut cmd = c.d.ctr(
        &c.ns,
        &[
            "run",
            "-t",
            "--rm",
            "--runtime",
            runtime,
            IMAGE,
            id,
            "sh",
            "-c",
            script,
        ],
    );
    let mut p = pty::OnPty::spawn(&mut cmd, 40, 123);
    let one = p.wait_for("size-one", Duration::from_secs(60));
    // ctr installs its SIGWINCH handler after the first resize: repeat.
    let mut two = false;
    for _ in 0..60 {
        if !one {
            break;
        }
        p.resize(30, 100);
        if p.wait_for("size-two", Duration::from_secs(1)) {
            two = true;
            break;
        }
    }
    let text = p.text();
    let out = p.finish(CMD_TIMEOUT);
    if !(one && two) {
        c.remove(id);
    }
    eprintln!("{id} printed {text:?}");
    (
        if one { "size-one" } else { "no size-one" },
        if two { "size-two" } else { "no size-two" },
        out.status.code(),
    )
}
