//! containerd 1.6 driving pinc through `ctr`: a private containerd (own
//! root, state and sockets) runs pinc via the io.containerd.runc.v2 shim with
//! `--runc-binary <pinc>`. The image is a hand-built `docker save` archive
//! of a busybox-static root filesystem, loaded with `ctr image import`.
//!
//! One #[test]: the scenarios share the daemon and run in order; each
//! scenario's failure is recorded and reported at the end.

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use pinc_tests::daemons::{
    cgroup_dirs_containing, describe, docker_save_archive, ok, pinc_abs, rootfs_tar,
    run_with_timeout, short_tempdir, wait_until, Containerd, Scenarios, CMD_TIMEOUT,
};
use pinc_tests::{require_root, stderr, stdout};

const IMAGE: &str = "docker.io/library/busybox:local";

struct Ctr<'a> {
    d: &'a Containerd,
    ns: String,
    pinc: String,
}

impl Ctr<'_> {
    fn out(&self, args: &[&str]) -> Output {
        self.d.ctr_out(&self.ns, args)
    }

    fn ok(&self, args: &[&str]) -> String {
        ok(&format!("ctr {args:?}"), &self.out(args))
    }

    /// `ctr run --runtime io.containerd.runc.v2 --runc-binary <pinc> <extra> IMAGE id cmd...`
    fn run(&self, extra: &[&str], id: &str, cmd: &[&str]) -> Output {
        let mut args = vec![
            "run",
            "--runtime",
            "io.containerd.runc.v2",
            "--runc-binary",
            self.pinc.as_str(),
        ];
        args.extend_from_slice(extra);
        args.push(IMAGE);
        args.push(id);
        args.extend_from_slice(cmd);
        self.out(&args)
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
}

fn pinc_state(pinc: &Path, root: &Path, id: &str) -> serde_json::Value {
    let out = run_with_timeout(
        std::process::Command::new(pinc)
            .arg("--root")
            .arg(root)
            .args(["state", id]),
        CMD_TIMEOUT,
    );
    assert!(out.status.success(), "pinc state {id}: {}", describe(&out));
    serde_json::from_slice(&out.stdout).expect("pinc state prints JSON")
}

#[test]
fn containerd_ctr_runs_containers_with_pinc() {
    require_root();
    let started = Instant::now();
    let pinc = pinc_abs();
    let work = short_tempdir("pinc-ctr-img-");
    let layer = rootfs_tar(work.path());
    let archive = docker_save_archive(work.path(), &layer, "busybox:local");

    let mut d = Containerd::start();
    let ns = format!("pinc-ctr-{}", std::process::id());
    d.use_namespace(&ns);
    eprintln!("containerd up after {:.2?}", started.elapsed());
    let c = Ctr {
        d: &d,
        ns: ns.clone(),
        pinc: pinc.to_string_lossy().into_owned(),
    };
    let runc_root = Containerd::runc_root(&ns);

    let archive_s = archive.to_string_lossy().into_owned();
    let imported = c.ok(&["image", "import", &archive_s]);
    assert!(
        imported.contains(IMAGE),
        "import did not name {IMAGE}: {imported}"
    );
    let images = c.ok(&["image", "ls", "-q"]);
    assert!(images.lines().any(|l| l == IMAGE), "image list: {images}");

    let mut s = Scenarios::new();

    s.run("ctr run --rm: output and exit code", || {
        run_rm_output(&c, &runc_root)
    });

    s.run("ctr run --rm: stderr and exit code 0", || run_rm_stderr(&c));

    let script = "trap 'exit 0' TERM; while :; do sleep 1; done";
    // The container the task scenarios below work on.
    s.setup("ctr run -d: running, state visible to pinc", || {
        run_detached(&c, &pinc, &runc_root, script)
    });

    s.run("ctr task exec: output and exit code", || task_exec(&c));

    s.run("ctr task ps: lists the container's processes", || {
        task_ps(&c)
    });

    s.run("ctr task pause / resume", || pause_resume(&c));

    s.run("ctr task kill (SIGTERM) + rm", || {
        kill_term_rm(&c, &runc_root)
    });

    s.run("ctr task kill -s SIGKILL of a running task", || {
        kill_sigkill(&c)
    });

    let leftovers: Vec<String> = fs::read_dir(&runc_root)
        .map(|it| {
            it.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != ".pinc")
                .collect()
        })
        .unwrap_or_default();
    drop(c);
    drop(d);
    eprintln!(
        "clients_containerd: total {:.2?} (2-core VM)",
        started.elapsed()
    );
    s.finish();
    assert!(
        leftovers.is_empty(),
        "pinc state left in {}: {leftovers:?}",
        runc_root.display()
    );
}

/// ctr run --rm: output and exit code.
fn run_rm_output(c: &Ctr<'_>, runc_root: &Path) {
    let out = c.run(&["--rm"], "once", &["sh", "-c", "echo hi; exit 7"]);
    assert_eq!(stdout(&out), "hi\n", "{}", describe(&out));
    assert_eq!(out.status.code(), Some(7), "{}", describe(&out));
    assert!(
        runc_root.join(".pinc").is_dir(),
        "no pinc private dir in {}: was pinc used?",
        runc_root.display()
    );
    assert!(
        !runc_root.join("once").exists(),
        "pinc state of `once` left behind"
    );
    let left = c.ok(&["container", "ls", "-q"]);
    assert!(left.trim().is_empty(), "--rm left containers: {left}");
}

/// ctr run --rm: stderr and exit code 0.
fn run_rm_stderr(c: &Ctr<'_>) {
    let out = c.run(&["--rm"], "quiet", &["sh", "-c", "echo oops >&2; true"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stdout(&out), "", "{}", describe(&out));
    assert!(stderr(&out).contains("oops"), "{}", describe(&out));
}

/// ctr run -d: running, state visible to pinc.
fn run_detached(c: &Ctr<'_>, pinc: &Path, runc_root: &Path, script: &str) {
    let out = c.run(&["-d"], "long", &["sh", "-c", script]);
    assert!(out.status.success(), "{}", describe(&out));
    let (pid, status) = c.task("long").expect("task `long` listed");
    assert_eq!(status, "RUNNING");
    let st = pinc_state(pinc, runc_root, "long");
    assert_eq!(st["status"], "running", "pinc state: {st}");
    assert_eq!(st["pid"].as_i64(), Some(pid), "pinc state: {st}");
}

/// ctr task exec: output and exit code.
fn task_exec(c: &Ctr<'_>) {
    let out = c.out(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "long",
        "sh",
        "-c",
        "echo from-exec; exit 4",
    ]);
    assert_eq!(stdout(&out), "from-exec\n", "{}", describe(&out));
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    let out = c.out(&[
        "task",
        "exec",
        "--exec-id",
        "e2",
        "--cwd",
        "/tmp",
        "long",
        "pwd",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stdout(&out), "/tmp\n", "{}", describe(&out));
}

/// ctr task ps: lists the container's processes.
fn task_ps(c: &Ctr<'_>) {
    let (pid, _) = c.task("long").expect("task `long` listed");
    let out = c.ok(&["task", "ps", "long"]);
    let pids: Vec<i64> = out
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(pids.contains(&pid), "init {pid} missing from:\n{out}");
    // sh plus its current `sleep 1`, nothing from the host.
    assert!(
        !pids.is_empty() && pids.len() <= 3,
        "unexpected process list:\n{out}"
    );
}

/// ctr task pause / resume.
fn pause_resume(c: &Ctr<'_>) {
    c.ok(&["task", "pause", "long"]);
    assert_eq!(c.task("long").map(|t| t.1).as_deref(), Some("PAUSED"));
    c.ok(&["task", "resume", "long"]);
    assert_eq!(c.task("long").map(|t| t.1).as_deref(), Some("RUNNING"));
}

/// ctr task kill (SIGTERM) + rm.
fn kill_term_rm(c: &Ctr<'_>, runc_root: &Path) {
    let t = Instant::now();
    c.ok(&["task", "kill", "long"]);
    assert!(
        wait_until(Duration::from_secs(8), || c
            .task("long")
            .map(|t| t.1 == "STOPPED")
            .unwrap_or(false)),
        "task did not stop after SIGTERM"
    );
    eprintln!("stopped {:.2?} after SIGTERM", t.elapsed());
    let out = c.out(&["task", "rm", "long"]);
    assert!(out.status.success(), "{}", describe(&out));
    // ctr warns about a non-zero exit status; the trap exits 0.
    assert!(
        !stderr(&out).contains("non-zero"),
        "unexpected exit status: {}",
        describe(&out)
    );
    c.ok(&["container", "rm", "long"]);
    assert!(
        !runc_root.join("long").exists(),
        "pinc state of `long` left in {}",
        runc_root.display()
    );
}

/// ctr task kill -s SIGKILL of a running task.
fn kill_sigkill(c: &Ctr<'_>) {
    let out = c.run(&["-d"], "doomed", &["sleep", "1000"]);
    assert!(out.status.success(), "{}", describe(&out));
    let cg = Path::new("/sys/fs/cgroup/memory")
        .join(&c.ns)
        .join("doomed");
    assert!(cg.is_dir(), "no cgroup {} while it runs", cg.display());
    c.ok(&["task", "kill", "-s", "SIGKILL", "doomed"]);
    assert!(
        wait_until(Duration::from_secs(8), || c
            .task("doomed")
            .map(|t| t.1 == "STOPPED")
            .unwrap_or(false)),
        "task did not stop after SIGKILL"
    );
    let out = c.out(&["task", "rm", "doomed"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(stderr(&out).contains("137"), "{}", describe(&out));
    c.ok(&["container", "rm", "doomed"]);
    // containerd puts the cgroup at /<namespace>/<id>.
    let leaked: Vec<_> = cgroup_dirs_containing(&c.ns)
        .into_iter()
        .map(|p| p.join("doomed"))
        .filter(|p| p.exists())
        .collect();
    assert!(leaked.is_empty(), "cgroups left after rm: {leaked:?}");
}
