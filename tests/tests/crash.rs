//! Crash safety: pinc SIGKILLed after every step of create, start, exec and
//! delete (`PINC_CRASH_AT`, see core/src/crash.rs), and at random moments,
//! leaves nothing behind once one later command has looked at the root.

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use pinc_tests::{output_via_files, require_root, stderr, unique_id, wait_bounded, Bundle, Pinc};

/// Every crash point, in the order the commands pass them.
const CREATE: &[&str] = &[
    "create:journaled",
    "create:placed",
    "create:staged",
    "create:built",
    "create:kept",
    "create:applied",
    "create:done",
];
const START: &[&str] = &["start:locked", "start:started"];
const EXEC: &[&str] = &["exec:view", "exec:built"];
const DELETE: &[&str] = &[
    "delete:locked",
    "delete:journaled",
    "delete:deleted",
    "delete:cgroups",
    "delete:released",
];

/// A placed container (a ledger entry) with a hugepage limit (on this
/// hybrid host, a cgroup2 hugetlb dir pinc makes itself) and a staged spec.
fn bundle(args: &[&str]) -> Bundle {
    let bundle = Bundle::new(args);
    bundle.add_env("PINC_CPUS=1");
    bundle.edit(|c| {
        c["linux"]["resources"]["hugepageLimits"] =
            serde_json::json!([{"pageSize": "2MB", "limit": 2097152}]);
    });
    bundle
}

/// Everything of `ids` (and of the root) found on the node.
fn census(pinc: &Pinc, ids: &[String]) -> Vec<String> {
    let mut found: Vec<String> = pinc.leftovers();
    found.extend(pinc.private_leftovers());
    let ledger = pinc.root.path().join(".pinc/ledger/allocations.json");
    if let Ok(text) = fs::read_to_string(&ledger) {
        let entries: Vec<serde_json::Value> = serde_json::from_str(&text).expect("ledger json");
        found.extend(entries.iter().map(|e| format!("ledger entry {e}")));
    }
    for id in ids {
        for hierarchy in fs::read_dir("/sys/fs/cgroup").expect("cgroupfs").flatten() {
            let dir = hierarchy.path().join("pinc").join(id);
            if dir.exists() {
                found.push(dir.display().to_string());
            }
        }
        found.extend(pinc_tests::mounts_mentioning(id));
    }
    found.extend(pinc_tests::mounts_mentioning(
        pinc.root.path().to_str().expect("utf8"),
    ));
    found.extend(forked_processes(ids, pinc.root.path()));
    found
}

/// Live processes libcontainer forked for a container that never exec'd,
/// or that run with our root in their command line.
fn forked_processes(ids: &[String], root: &Path) -> Vec<String> {
    let root = root.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for e in fs::read_dir("/proc").expect("proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'));
        if zombie || pid == std::process::id() as i32 {
            continue;
        }
        let comm = fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        let cgroups = fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
        let args = fs::read(e.path().join("cmdline")).unwrap_or_default();
        let args = String::from_utf8_lossy(&args).replace('\0', " ");
        let in_ours = ids
            .iter()
            .any(|id| cgroups.contains(&format!("/pinc/{id}\n")));
        // Forked before it joined the cgroup: it still holds our files.
        let holds_ours = comm.starts_with("youki:[")
            && fs::read_dir(e.path().join("fd"))
                .into_iter()
                .flatten()
                .flatten()
                .any(|fd| fs::read_link(fd.path()).is_ok_and(|t| t.starts_with(&root)));
        if in_ours || holds_ours || args.contains(&root) {
            found.push(format!("pid {pid} {} ({})", comm.trim(), args.trim()));
        }
    }
    found
}

/// pinc with `PINC_CRASH_AT=step`; asserts that it died there.
fn crash(pinc: &Pinc, step: &str, args: &[&str]) {
    let mut cmd = pinc.cmd(args);
    cmd.env("PINC_CRASH_AT", step);
    let out = output_via_files(cmd);
    assert_eq!(
        out.status.signal(),
        Some(9),
        "pinc {args:?} did not die at {step}: {} {}",
        out.status,
        stderr(&out)
    );
}

/// After a crash and one command that looks (`list`): the container is
/// either whole (its state loads) or entirely gone; `delete --force` then
/// leaves nothing.
fn settle(pinc: &Pinc, id: &str, step: &str) {
    let ids = [id.to_string()];
    pinc.ok(&["list"]);
    let out = pinc.output(&["state", id]);
    if !out.status.success() {
        assert!(
            stderr(&out).contains("does not exist"),
            "{step}: {}",
            stderr(&out)
        );
        assert_eq!(census(pinc, &ids), Vec::<String>::new(), "after {step}");
    }
    pinc.ok(&["delete", "--force", id]);
    assert_eq!(
        census(pinc, &ids),
        Vec::<String>::new(),
        "after {step} and delete"
    );
}

#[test]
fn a_kill_after_any_step_leaves_a_whole_container_or_nothing() {
    require_root();
    let pinc = Pinc::new();
    let b = bundle(&["sleep", "60"]);
    let path = b.path().to_str().expect("utf8");
    assert_eq!(census(&pinc, &[]), Vec::<String>::new(), "baseline");
    for step in CREATE {
        let id = unique_id("crash");
        crash(&pinc, step, &["create", "-b", path, &id]);
        // A create that did not finish is no container at all.
        pinc.ok(&["list"]);
        let ids = [id.clone()];
        assert_eq!(census(&pinc, &ids), Vec::<String>::new(), "after {step}");
        assert!(pinc.fails(&["state", &id]).contains("does not exist"));
    }
    for step in START {
        let id = unique_id("crash");
        pinc.ok(&["create", "-b", path, &id]);
        crash(&pinc, step, &["start", &id]);
        settle(&pinc, &id, step);
    }
    for step in EXEC {
        let id = unique_id("crash");
        pinc.ok(&["run", "-d", "-b", path, &id]);
        crash(&pinc, step, &["exec", &id, "sleep", "30"]);
        pinc.ok(&["list"]);
        assert_eq!(pinc.state(&id)["status"], "running", "{step}");
        let views = pinc.private_leftovers();
        assert!(
            !views.iter().any(|v| v.starts_with("exec/")),
            "{step}: {views:?}"
        );
        settle(&pinc, &id, step);
    }
    for step in DELETE {
        let id = unique_id("crash");
        pinc.ok(&["run", "-d", "-b", path, &id]);
        crash(&pinc, step, &["delete", "--force", &id]);
        settle(&pinc, &id, step);
    }
}

/// A torn state.json (written in place by libcontainer) must not make the
/// container impossible to remove.
#[test]
fn delete_force_removes_a_container_whose_state_file_is_torn() {
    require_root();
    let pinc = Pinc::new();
    let b = bundle(&["sleep", "60"]);
    let id = unique_id("torn");
    pinc.ok(&["run", "-d", "-b", b.path().to_str().expect("utf8"), &id]);
    let init = pinc.state(&id)["pid"].as_i64().expect("pid");
    let state = pinc.root.path().join(&id).join("state.json");
    fs::write(&state, "").expect("tear");
    // Restored from pinc's last whole copy, the status read off the init.
    assert_eq!(pinc.state(&id)["status"], "running");
    assert_eq!(pinc.state(&id)["pid"].as_i64(), Some(init));
    // With no copy either, delete --force still removes everything.
    fs::write(&state, "{").expect("tear");
    fs::remove_file(pinc.root.path().join(&id).join("pinc-state.json")).expect("rm copy");
    let err = pinc.fails(&["delete", &id]);
    assert!(err.contains(&id), "{err}");
    pinc.ok(&["delete", "--force", &id]);
    assert_eq!(census(&pinc, &[id]), Vec::<String>::new());
    assert!(
        !Path::new(&format!("/proc/{init}")).exists()
            || fs::read_to_string(format!("/proc/{init}/stat")).is_ok_and(|s| s.contains(") Z")),
        "the container's init was killed"
    );
}

/// xorshift64: a reproducible random sequence (the seed is printed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Runs `args`, SIGKILLed after `delay` if it has not finished by then.
fn kill_after(pinc: &Pinc, args: &[&str], delay: Duration) {
    let mut child = pinc
        .cmd(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn pinc");
    std::thread::sleep(delay);
    let _ = child.kill();
    wait_bounded(&mut child, "pinc");
}

#[test]
fn two_hundred_random_kills_leave_a_clean_node_after_one_reclaim() {
    require_root();
    let pinc = Pinc::new();
    let b = bundle(&["sleep", "60"]);
    let path = b.path().to_str().expect("utf8");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    eprintln!("random kills: seed {seed}");
    let mut rng = Rng(seed);
    let mut ids = Vec::new();
    for round in 0..200 {
        let id = unique_id("rk");
        let delay = Duration::from_micros(rng.next() % 30_000);
        match round % 4 {
            0 | 1 => kill_after(&pinc, &["create", "-b", path, &id], delay),
            2 => {
                pinc.ok(&["run", "-d", "-b", path, &id]);
                kill_after(&pinc, &["exec", &id, "sleep", "30"], delay);
            }
            _ => {
                pinc.ok(&["run", "-d", "-b", path, &id]);
                kill_after(&pinc, &["delete", "--force", &id], delay);
            }
        }
        ids.push(id);
        // Every container left must be whole: its state loads.
        let listed: Vec<serde_json::Value> =
            serde_json::from_str(&pinc.ok(&["list", "--format", "json"])).expect("list json");
        for c in &listed {
            let id = c["id"].as_str().expect("id");
            pinc.ok(&["delete", "--force", id]);
        }
        let found = census(&pinc, &ids);
        assert_eq!(found, Vec::<String>::new(), "round {round} (seed {seed})");
    }
}
