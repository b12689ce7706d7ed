//! Exec'd processes are confined exactly like the container's init: seccomp,
//! no_new_privs, capabilities, rlimits, umask, groups, user namespace,
//! cgroups. Each check compares what `pinc exec` sees with what init sees.

use std::fs;
use std::process::Command;
use std::time::Duration;

use pinc_tests::daemons::poll_every;
use pinc_tests::{cgroup_dirs_named, require_root, stderr, stdout, unique_id, Bundle, Pinc};
use serde_json::{json, Value};

/// Fields of /proc/<pid>/status that must match between init and exec.
const CONFINEMENT: [&str; 7] = [
    "Seccomp:",
    "NoNewPrivs:",
    "CapInh:",
    "CapPrm:",
    "CapEff:",
    "CapBnd:",
    "CapAmb:",
];

fn status_fields(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| CONFINEMENT.iter().any(|f| l.starts_with(f)))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// A container with a seccomp filter that denies chmod, limits, groups and
/// a umask, optionally in its own user namespace.
fn confined_bundle(nnp: Option<bool>, userns: bool) -> Bundle {
    let bundle = Bundle::new(&["sleep", "60"]);
    bundle.edit(|c| {
        let caps = json!(["CAP_KILL", "CAP_CHOWN", "CAP_SETUID", "CAP_SETGID"]);
        c["process"]["capabilities"] = json!({
            "bounding": caps, "effective": caps, "permitted": caps
        });
        c["process"]["user"] = json!({"uid": 0, "gid": 0, "additionalGids": [5, 6], "umask": 23});
        c["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "hard": 1000, "soft": 900},
            {"type": "RLIMIT_NPROC", "hard": 500, "soft": 400}
        ]);
        match nnp {
            Some(v) => c["process"]["noNewPrivileges"] = Value::Bool(v),
            None => {
                c["process"]
                    .as_object_mut()
                    .expect("process")
                    .remove("noNewPrivileges");
            }
        }
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["chmod", "fchmodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        });
        if userns {
            c["linux"]["namespaces"]
                .as_array_mut()
                .expect("namespaces")
                .push(json!({"type": "user"}));
            c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        }
    });
    if userns {
        let status = Command::new("chown")
            .args(["-R", "100000:100000"])
            .arg(bundle.path().join("rootfs"))
            .status()
            .expect("chown");
        assert!(status.success());
    }
    bundle
}

fn start(pinc: &Pinc, bundle: &Bundle, id: &str) {
    pinc.ok(&["run", "-d", "-b", bundle.path().to_str().expect("utf8"), id]);
}

/// What a process sees of its own confinement, printed by a shell.
const SELF_REPORT: &str = "cat /proc/self/status; echo ---; ulimit -n; ulimit -u; umask; id -G; \
     cat /proc/self/uid_map; touch /tmp/f; chmod 600 /tmp/f 2>/dev/null && echo chmod-allowed || echo chmod-denied";

fn check_exec_matches_init(nnp: Option<bool>, userns: bool) {
    require_root();
    let pinc = Pinc::new();
    let bundle = confined_bundle(nnp, userns);
    let id = unique_id("confine");
    start(&pinc, &bundle, &id);
    let init_status = pinc.ok(&["exec", &id, "cat", "/proc/1/status"]);
    let init_uid_map = pinc.ok(&["exec", &id, "cat", "/proc/1/uid_map"]);
    let process = bundle.path().join("process.json");
    fs::write(
        &process,
        json!({"args": ["sh", "-c", SELF_REPORT], "cwd": "/", "env": ["PATH=/bin"],
               "user": {"uid": 0, "gid": 0, "additionalGids": [5, 6]}})
        .to_string(),
    )
    .expect("process.json");
    let cli = pinc.ok(&["exec", &id, "sh", "-c", SELF_REPORT]);
    let file = pinc.ok(&["exec", "--process", process.to_str().expect("utf8"), &id]);
    for (how, out) in [("exec", &cli), ("exec --process", &file)] {
        let (status, rest) = out.split_once("---\n").expect("report");
        assert_eq!(
            status_fields(status),
            status_fields(&init_status),
            "{how} is confined like init (nnp {nnp:?}, userns {userns})"
        );
        let lines: Vec<&str> = rest.lines().collect();
        assert_eq!(lines[0], "900", "{how}: RLIMIT_NOFILE");
        assert_eq!(lines[1], "400", "{how}: RLIMIT_NPROC");
        assert_eq!(lines[2], "0027", "{how}: umask");
        assert_eq!(
            lines[3].split_whitespace().collect::<Vec<_>>(),
            ["0", "5", "6"],
            "{how}: groups"
        );
        assert_eq!(
            lines[4].split_whitespace().collect::<Vec<_>>(),
            init_uid_map.split_whitespace().collect::<Vec<_>>(),
            "{how}: user namespace"
        );
        assert_eq!(lines[5], "chmod-denied", "{how}: seccomp filter");
    }
    assert!(
        init_status.contains("Seccomp:\t2"),
        "init is filtered: {init_status}"
    );
    pinc.ok(&["delete", "--force", &id]);
}

#[test]
fn exec_is_confined_like_init() {
    check_exec_matches_init(None, false);
}

#[test]
fn exec_is_confined_like_init_with_no_new_privileges() {
    check_exec_matches_init(Some(true), false);
}

#[test]
fn exec_joins_the_container_user_namespace() {
    check_exec_matches_init(None, true);
}

#[test]
fn exec_cap_adds_to_the_container_set_but_never_inheritable() {
    require_root();
    let pinc = Pinc::new();
    let bundle = confined_bundle(None, false);
    let id = unique_id("cap");
    start(&pinc, &bundle, &id);
    let out = pinc.ok(&[
        "exec",
        "--cap",
        "CAP_NET_ADMIN",
        &id,
        "cat",
        "/proc/self/status",
    ]);
    let eff = out
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:\t"))
        .expect("CapEff");
    let bits = u64::from_str_radix(eff, 16).expect("hex");
    assert_ne!(bits & (1 << 12), 0, "CAP_NET_ADMIN added: {eff}");
    assert_ne!(bits & (1 << 5), 0, "CAP_KILL kept: {eff}");
    assert_eq!(bits & (1 << 21), 0, "no CAP_SYS_ADMIN left over: {eff}");
    assert!(out.contains("CapInh:\t0000000000000000"), "{out}");
    assert!(out.contains("CapAmb:\t0000000000000000"), "{out}");
    pinc.ok(&["delete", "--force", &id]);
}

#[test]
fn exec_ignore_paused_does_not_lock_out_resume_or_delete() {
    require_root();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["sleep", "60"]);
    let id = unique_id("paused");
    start(&pinc, &bundle, &id);
    pinc.ok(&["pause", &id]);
    let mut exec = pinc.cmd(&["exec", "--ignore-paused", &id, "echo", "ran"]);
    exec.stdout(std::process::Stdio::piped());
    let mut child = exec.spawn().expect("spawn exec");
    // The exec'd process joins the frozen cgroup and stops there, beside
    // init; resume must still get the id lock, and the exec then completes.
    let freezer = cgroup_dirs_named(&id)
        .into_iter()
        .find(|d| d.starts_with("/sys/fs/cgroup/freezer"))
        .expect("the container has a freezer cgroup");
    let procs = freezer.join("cgroup.procs");
    let joined = poll_every(Duration::from_secs(20), Duration::from_millis(20), || {
        fs::read_to_string(&procs).map_or(0, |t| t.lines().count()) >= 2
    });
    assert!(
        joined,
        "the exec'd process never joined {}",
        procs.display()
    );
    assert!(
        child.try_wait().expect("poll exec").is_none(),
        "exec finished while the container was paused"
    );
    let mut resume = pinc.cmd(&["resume", &id]).spawn().expect("spawn resume");
    let mut resumed = None;
    let finished = poll_every(Duration::from_secs(20), Duration::from_millis(50), || {
        resumed = resume.try_wait().expect("wait resume");
        resumed.is_some()
    });
    if !finished {
        let _ = resume.kill();
        panic!("resume hung behind the paused exec");
    }
    let resumed = resumed.expect("resume exited");
    assert!(resumed.success(), "resume succeeded");
    let out = child.wait_with_output().expect("exec output");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "ran\n");
    pinc.ok(&["delete", "--force", &id]);
}

#[test]
fn exec_cgroup_runs_in_a_sub_cgroup() {
    require_root();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["sleep", "60"]);
    let id = unique_id("subcg");
    start(&pinc, &bundle, &id);
    let err = pinc.fails(&["exec", "--cgroup", "sub", &id, "true"]);
    assert!(err.contains("does not exist"), "{err}");
    let err = pinc.fails(&["exec", "--cgroup", "memory:sub", &id, "true"]);
    assert!(err.contains("per-controller"), "{err}");
    // As with runc, the caller makes the sub-cgroup and removes it.
    let subs: Vec<_> = [
        "memory", "cpu", "cpuset", "pids", "devices", "freezer", "blkio", "cpuacct",
    ]
    .iter()
    .map(|c| {
        std::path::Path::new("/sys/fs/cgroup")
            .join(c)
            .join("pinc")
            .join(&id)
    })
    .filter(|d| d.is_dir())
    .map(|d| d.join("sub"))
    .collect();
    assert!(!subs.is_empty(), "the container has v1 cgroups");
    for s in &subs {
        fs::create_dir(s).expect("make sub-cgroup");
        if s.starts_with("/sys/fs/cgroup/cpuset") {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                let v = fs::read_to_string(s.parent().expect("parent").join(f)).expect("read");
                fs::write(s.join(f), v).expect("write cpuset");
            }
        }
    }
    let out = pinc.ok(&["exec", "--cgroup", "sub", &id, "cat", "/proc/self/cgroup"]);
    let memory = out
        .lines()
        .find(|l| l.contains(":memory:"))
        .expect("memory line");
    // The container has its own cgroup namespace: paths are relative to it.
    assert!(memory.ends_with("/sub"), "{out}");
    for s in &subs {
        fs::remove_dir(s).expect("remove sub-cgroup");
    }
    pinc.ok(&["delete", "--force", &id]);
}
