//! Crash safety: pinc SIGKILLed after every step of create, start, exec and
//! delete (`PINC_CRASH_AT`, see core/src/crash.rs), and at random moments,
//! leaves nothing behind once one later command has looked at the root.

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use pinc_tests::census::{Census, Scope};
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

/// What this test's containers hold on the node, against a baseline taken
/// before the first: the shared census (state, private files, cgroups in
/// every hierarchy, mounts, ledger, processes), limited to ids with
/// `prefix` so that other tests running meanwhile do not count.
struct Node {
    scope: Scope,
    baseline: Census,
}

impl Node {
    fn new(pinc: &Pinc, bundle: &Bundle, prefix: &str) -> Self {
        let scope = Scope::new(pinc.root.path())
            .prefix(bundle.path())
            .ids(prefix);
        let baseline = Census::take_in(&scope);
        Self { scope, baseline }
    }

    /// Fails naming what is left, compared with the baseline. A process
    /// SIGKILLed a moment ago may still be exiting: a few retries.
    fn assert_clean(&self, when: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        loop {
            let leaks = self.baseline.diff(&Census::take_in(&self.scope)).leaks();
            if !leaks.grew() {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "left {when}:\n{leaks}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// This process's prefix of `unique_id(name)`.
fn prefix(name: &str) -> String {
    format!("{name}-{}-", std::process::id())
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
fn settle(pinc: &Pinc, node: &Node, id: &str, step: &str) {
    pinc.ok(&["list"]);
    let out = pinc.output(&["state", id]);
    if !out.status.success() {
        assert!(
            stderr(&out).contains("does not exist"),
            "{step}: {}",
            stderr(&out)
        );
        node.assert_clean(&format!("after {step}"));
    }
    pinc.ok(&["delete", "--force", id]);
    node.assert_clean(&format!("after {step} and delete"));
}

#[test]
fn a_kill_after_any_step_leaves_a_whole_container_or_nothing() {
    require_root();
    let pinc = Pinc::new();
    let b = bundle(&["sleep", "60"]);
    let path = b.path().to_str().expect("utf8");
    let node = Node::new(&pinc, &b, &prefix("crash"));
    for step in CREATE {
        let id = unique_id("crash");
        crash(&pinc, step, &["create", "-b", path, &id]);
        // A create that did not finish is no container at all.
        pinc.ok(&["list"]);
        node.assert_clean(&format!("after {step}"));
        assert!(pinc.fails(&["state", &id]).contains("does not exist"));
    }
    for step in START {
        let id = unique_id("crash");
        pinc.ok(&["create", "-b", path, &id]);
        crash(&pinc, step, &["start", &id]);
        settle(&pinc, &node, &id, step);
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
        settle(&pinc, &node, &id, step);
    }
    for step in DELETE {
        let id = unique_id("crash");
        pinc.ok(&["run", "-d", "-b", path, &id]);
        crash(&pinc, step, &["delete", "--force", &id]);
        settle(&pinc, &node, &id, step);
    }
}

/// A torn state.json (written in place by libcontainer) must not make the
/// container impossible to remove.
#[test]
fn delete_force_removes_a_container_whose_state_file_is_torn() {
    require_root();
    let pinc = Pinc::new();
    let b = bundle(&["sleep", "60"]);
    let node = Node::new(&pinc, &b, &prefix("torn"));
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
    node.assert_clean("after delete --force");
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
    let node = Node::new(&pinc, &b, &prefix("rk"));
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    eprintln!("random kills: seed {seed}");
    let mut rng = Rng(seed);
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
        // Every container left must be whole: its state loads.
        let listed: Vec<serde_json::Value> =
            serde_json::from_str(&pinc.ok(&["list", "--format", "json"])).expect("list json");
        for c in &listed {
            let id = c["id"].as_str().expect("id");
            pinc.ok(&["delete", "--force", id]);
        }
        node.assert_clean(&format!("in round {round} (seed {seed})"));
    }
}
