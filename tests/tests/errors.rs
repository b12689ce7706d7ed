//! Bad input: one clear error line, non-zero exit, nothing left behind.

use std::fs;

use pinc_tests::{
    cgroup_dirs_named, mounts_mentioning, require_root, stderr, unique_id, Bundle, Pinc,
};

/// Asserts a failed command printed exactly one line naming `needle`.
fn one_line_naming(err: &str, needle: &str) {
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected:\n{err}"
    );
    assert!(err.contains(needle), "error should name {needle:?}: {err}");
}

fn assert_clean(pinc: &Pinc, id: &str) {
    assert!(
        pinc.leftovers().is_empty(),
        "state left: {:?}",
        pinc.leftovers()
    );
    assert!(
        pinc.private_leftovers().is_empty(),
        "private files left: {:?}",
        pinc.private_leftovers()
    );
    assert!(
        cgroup_dirs_named(id).is_empty(),
        "cgroups left: {:?}",
        cgroup_dirs_named(id)
    );
    assert!(
        mounts_mentioning(id).is_empty(),
        "mounts left: {:?}",
        mounts_mentioning(id)
    );
}

#[test]
fn unknown_ids() {
    let pinc = Pinc::new();
    for cmd in [
        "state", "start", "kill", "delete", "pause", "resume", "ps", "events",
    ] {
        let args: Vec<&str> = if cmd == "events" {
            vec![cmd, "--stats", "nope"]
        } else {
            vec![cmd, "nope"]
        };
        let err = pinc.fails(&args);
        one_line_naming(&err, "\"nope\" does not exist");
    }
    let err = pinc.fails(&["exec", "nope", "true"]);
    one_line_naming(&err, "\"nope\" does not exist");
}

#[test]
fn invalid_ids_are_refused_before_anything_is_made() {
    require_root();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["true"]);
    let b = bundle.path().to_str().expect("utf8");
    for bad in ["../escape", "a/b", "..", "with space"] {
        let err = pinc.fails(&["create", "-b", b, bad]);
        one_line_naming(&err, "invalid container id");
        assert_clean(&pinc, bad);
    }
    assert!(!bundle
        .path()
        .parent()
        .expect("parent")
        .join("escape")
        .exists());
}

#[test]
fn malformed_and_unsupported_configs() {
    require_root();
    let pinc = Pinc::new();
    let id = unique_id("bad");

    let bundle = Bundle::new(&["true"]);
    let b = bundle.path().to_str().expect("utf8");
    fs::write(bundle.path().join("config.json"), "{ \"ociVersion\": ").expect("write");
    let err = pinc.fails(&["create", "-b", b, &id]);
    one_line_naming(&err, "malformed");
    assert!(err.contains("config.json"), "{err}");
    assert_clean(&pinc, &id);

    let bundle = Bundle::new(&["true"]);
    let b = bundle.path().to_str().expect("utf8");
    bundle.edit(|c| c["ociVersion"] = "0.9.0".into());
    let err = pinc.fails(&["create", "-b", b, &id]);
    one_line_naming(&err, "0.9.0");
    assert_clean(&pinc, &id);

    let bundle = Bundle::new(&["true"]);
    let b = bundle.path().to_str().expect("utf8");
    bundle.edit(|c| c["root"]["path"] = "no-such-rootfs".into());
    let err = pinc.fails(&["create", "-b", b, &id]);
    one_line_naming(&err, "no-such-rootfs");
    assert_clean(&pinc, &id);

    let err = pinc.fails(&["create", "-b", "/nonexistent/bundle", &id]);
    one_line_naming(&err, "/nonexistent/bundle");
    assert_clean(&pinc, &id);

    let empty = tempfile::tempdir().expect("tempdir");
    let err = pinc.fails(&["create", "-b", empty.path().to_str().expect("utf8"), &id]);
    one_line_naming(&err, "config.json");
    assert_clean(&pinc, &id);
}

#[test]
fn failures_inside_libcontainer_leave_nothing_behind() {
    require_root();
    let pinc = Pinc::new();
    let id = unique_id("late");
    // Passes pinc's checks, fails once libcontainer is creating: no such program.
    let bundle = Bundle::new(&["/no/such/program"]);
    let b = bundle.path().to_str().expect("utf8");
    let pid_file = bundle.path().join("pid");
    let err = pinc.fails(&[
        "create",
        "-b",
        b,
        "--pid-file",
        pid_file.to_str().expect("utf8"),
        &id,
    ]);
    one_line_naming(&err, "/no/such/program");
    assert_clean(&pinc, &id);
    assert!(!pid_file.exists(), "no pid file left");

    // A console socket that does not exist, with a terminal.
    let bundle = Bundle::new(&["true"]);
    bundle.edit(|c| c["process"]["terminal"] = true.into());
    let b = bundle.path().to_str().expect("utf8");
    let err = pinc.fails(&[
        "create",
        "-b",
        b,
        "--console-socket",
        "/nonexistent/sock",
        &id,
    ]);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert_clean(&pinc, &id);
}

#[test]
fn rdma_limits_without_an_rdma_controller_are_refused_before_anything_is_made() {
    require_root();
    let cgroups = fs::read_to_string("/proc/cgroups").expect("/proc/cgroups");
    if cgroups
        .lines()
        .any(|l| l.split_whitespace().next() == Some("rdma"))
    {
        pinc_testkit::skip!("this kernel has an rdma cgroup controller");
    }
    let pinc = Pinc::new();
    let id = unique_id("rdma");
    let bundle = Bundle::new(&["true"]);
    bundle.edit(|c| {
        c["linux"]["resources"]["rdma"] =
            serde_json::json!({"mlx5_0": {"hcaHandles": 2, "hcaObjects": 100}});
    });
    // A placement request too: refused before the pipeline, it never
    // reaches the ledger.
    bundle.add_env("PINC_CPUS=1");
    let b = bundle.path().to_str().expect("utf8");
    let pid_file = bundle.path().join("pid");
    let err = pinc.fails(&[
        "create",
        "-b",
        b,
        "--pid-file",
        pid_file.to_str().expect("utf8"),
        &id,
    ]);
    one_line_naming(&err, "no rdma cgroup controller");
    assert!(err.contains("linux.resources.rdma"), "{err}");
    assert_clean(&pinc, &id);
    assert!(!pid_file.exists(), "no pid file left");
    assert!(
        !pinc
            .root
            .path()
            .join(".pinc/ledger/allocations.json")
            .exists(),
        "the ledger was never touched"
    );
    assert!(
        !std::path::Path::new("/sys/fs/cgroup/unified/pinc")
            .join(&id)
            .exists(),
        "no cgroup2 dir left"
    );

    // `run` goes the same way.
    let err = pinc.fails(&["run", "-b", b, &id]);
    one_line_naming(&err, "no rdma cgroup controller");
    assert_clean(&pinc, &id);
}

#[test]
fn an_id_in_use_is_refused_and_the_first_container_survives() {
    require_root();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["sleep", "30"]);
    let b = bundle.path().to_str().expect("utf8");
    let id = unique_id("dup");
    pinc.ok(&["create", "-b", b, &id]);
    let err = pinc.fails(&["create", "-b", b, &id]);
    one_line_naming(&err, "already in use");
    assert_eq!(pinc.state(&id)["status"], "created");
    pinc.ok(&["delete", "--force", &id]);
    assert_clean(&pinc, &id);
}

#[test]
fn concurrent_creates_of_one_id_are_serialised() {
    require_root();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["sleep", "30"]);
    let b = bundle.path().to_str().expect("utf8").to_string();
    let id = unique_id("race");
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let cmd = pinc.cmd(&["create", "-b", &b, &id]);
            std::thread::spawn(move || pinc_tests::output_via_files(cmd))
        })
        .collect();
    let outputs: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    let ok = outputs.iter().filter(|o| o.status.success()).count();
    assert_eq!(ok, 1, "exactly one create wins");
    for o in outputs.iter().filter(|o| !o.status.success()) {
        one_line_naming(&stderr(o), "already in use");
    }
    assert_eq!(pinc.state(&id)["status"], "created");
    pinc.ok(&["delete", "--force", &id]);
    assert_clean(&pinc, &id);
}

#[test]
fn json_log_records_the_error_for_containerd_and_podman() {
    require_root();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["true"]);
    bundle.edit(|c| c["ociVersion"] = "2.0.0".into());
    let log = bundle.path().join("log.json");
    let id = unique_id("log");
    let out = pinc.output(&[
        "--log",
        log.to_str().expect("utf8"),
        "--log-format=json",
        "create",
        "--bundle",
        bundle.path().to_str().expect("utf8"),
        &id,
    ]);
    assert!(!out.status.success());
    let text = fs::read_to_string(&log).expect("log written");
    let last: serde_json::Value =
        serde_json::from_str(text.lines().last().expect("a line")).expect("json line");
    assert_eq!(last["level"], "error");
    assert!(
        last["msg"].as_str().expect("msg").contains("2.0.0"),
        "{last}"
    );
    assert!(last["time"].as_str().expect("time").contains('T'), "{last}");
}
