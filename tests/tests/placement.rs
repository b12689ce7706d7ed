//! Placement for real: containers on this machine get the planned CPUs,
//! never a core another placed container holds, and the ledger stays exact
//! under concurrent creates.

use std::collections::BTreeSet;
use std::process::Command;

use pinc_tests::{
    output_via_files, pinc_bin, require_root, stderr, stdout, unique_id, Bundle, Pinc,
};

fn field(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("no {key} in {text:?}"))
}

fn cpus_of(list: &str) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.parse::<u32>().expect("n")..=b.parse::<u32>().expect("n")),
            None => {
                out.insert(part.parse::<u32>().expect("n"));
            }
        }
    }
    out
}

fn allocations(pinc: &Pinc) -> Vec<serde_json::Value> {
    let json: serde_json::Value =
        serde_json::from_str(&pinc.ok(&["topology", "--json"])).expect("json");
    json["allocations"].as_array().expect("allocations").clone()
}

fn ncpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

#[test]
fn pinc_cpus_pins_the_container_and_state_explains_it() {
    require_root();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&[
        "sh",
        "-c",
        "grep -E 'Cpus_allowed_list|Mems_allowed_list' /proc/self/status; sleep 30",
    ]);
    bundle.add_env("PINC_CPUS=1");
    let id = unique_id("place");
    let plan: serde_json::Value =
        serde_json::from_str(&pinc.ok(&["plan", "--json", "cpus=1"])).expect("plan json");
    let planned = plan["cpus"].as_str().expect("cpus").to_string();

    let log = bundle.path().join("out");
    let mut cmd = pinc.cmd(&[
        "run",
        "-d",
        "-b",
        bundle.path().to_str().expect("utf8"),
        &id,
    ]);
    cmd.stdout(std::fs::File::create(&log).expect("log"));
    assert!(cmd.status().expect("run").success());
    // The detached container prints both lines and then sleeps on.
    let mut seen = String::new();
    let printed = pinc_tests::daemons::poll_every(
        std::time::Duration::from_secs(10),
        std::time::Duration::from_millis(20),
        || {
            seen = std::fs::read_to_string(&log).unwrap_or_default();
            seen.contains("Mems_allowed_list:")
        },
    );
    assert!(printed, "the container printed its status: {seen:?}");
    assert_eq!(
        field(&seen, "Cpus_allowed_list:"),
        planned,
        "the container runs where pinc plan said"
    );
    assert_eq!(
        field(&seen, "Mems_allowed_list:"),
        plan["mems"].as_str().expect("mems")
    );

    let state = pinc.state(&id);
    let placement: serde_json::Value = serde_json::from_str(
        state["annotations"]["pinc.io/placement"]
            .as_str()
            .expect("placement annotation"),
    )
    .expect("placement json");
    assert_eq!(placement["cpus"], planned.as_str());
    assert!(!placement["why"].as_array().expect("why").is_empty());
    assert_eq!(allocations(&pinc).len(), 1);
    pinc.ok(&["delete", "--force", &id]);
    assert!(allocations(&pinc).is_empty(), "released on delete");
}

#[test]
fn placed_containers_never_share_a_core_and_exhaustion_is_clear() {
    require_root();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["sleep", "30"]);
    bundle.add_env("PINC_CPUS=1");
    let b = bundle.path().to_str().expect("utf8");
    let mut seen = BTreeSet::new();
    let mut ids = Vec::new();
    for _ in 0..ncpus() {
        let id = unique_id("excl");
        pinc.ok(&["create", "-b", b, &id]);
        let cpus: serde_json::Value = serde_json::from_str(
            pinc.state(&id)["annotations"]["pinc.io/placement"]
                .as_str()
                .expect("placement"),
        )
        .expect("json");
        for c in cpus_of(cpus["cpus"].as_str().expect("cpus")) {
            assert!(seen.insert(c), "CPU {c} given twice");
        }
        ids.push(id);
    }
    let id = unique_id("full");
    let err = pinc.fails(&["create", "-b", b, &id]);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("no free cores"), "{err}");
    assert!(
        !pinc.root.path().join(&id).exists(),
        "nothing left by the refused create"
    );
    for id in &ids {
        pinc.ok(&["delete", "--force", id]);
    }
    assert!(allocations(&pinc).is_empty());
}

#[test]
fn fifty_concurrent_creates_get_disjoint_cores_or_a_clear_error() {
    require_root();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["sleep", "60"]);
    bundle.add_env("PINC_CPUS=1");
    let b = bundle.path().to_str().expect("utf8").to_string();
    let ids: Vec<String> = (0..50)
        .map(|i| format!("{}-{i}", unique_id("conc")))
        .collect();
    let handles: Vec<_> = ids
        .iter()
        .map(|id| {
            let cmd = pinc.cmd(&["create", "-b", &b, id]);
            std::thread::spawn(move || output_via_files(cmd))
        })
        .collect();
    let outputs: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    let created: Vec<&String> = ids
        .iter()
        .zip(&outputs)
        .filter(|(_, o)| o.status.success())
        .map(|(i, _)| i)
        .collect();
    for o in outputs.iter().filter(|o| !o.status.success()) {
        let err = stderr(o);
        assert!(
            err.contains("no free cores"),
            "only exhaustion may fail: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
    assert_eq!(
        created.len(),
        ncpus(),
        "one container per core on this machine"
    );
    let mut seen = BTreeSet::new();
    for id in &created {
        let p: serde_json::Value = serde_json::from_str(
            pinc.state(id)["annotations"]["pinc.io/placement"]
                .as_str()
                .expect("p"),
        )
        .expect("json");
        for c in cpus_of(p["cpus"].as_str().expect("cpus")) {
            assert!(seen.insert(c), "CPU {c} given twice");
        }
    }
    assert_eq!(allocations(&pinc).len(), created.len());
    for id in &created {
        pinc.ok(&["delete", "--force", id]);
    }
    assert!(
        allocations(&pinc).is_empty(),
        "the ledger is empty after deleting all"
    );
    assert!(pinc.leftovers().is_empty(), "{:?}", pinc.leftovers());
    assert!(
        pinc.private_leftovers()
            .iter()
            .all(|p| !p.starts_with("locks/") && !p.starts_with("staging/")),
        "{:?}",
        pinc.private_leftovers()
    );
}

#[test]
fn allocations_of_vanished_containers_are_reclaimed() {
    require_root();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["sleep", "60"]);
    bundle.add_env(&format!("PINC_CPUS={}", ncpus()));
    let b = bundle.path().to_str().expect("utf8");
    let id = unique_id("crash");
    pinc.ok(&["create", "-b", b, &id]);
    let pid = pinc.state(&id)["pid"].as_i64().expect("pid") as i32;
    // A crash: the init dies and the state dir is removed behind pinc's back.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    std::fs::remove_dir_all(pinc.root.path().join(&id)).expect("rm state");
    let id2 = unique_id("after");
    pinc.ok(&["create", "-b", b, &id2]);
    let ids: Vec<String> = allocations(&pinc)
        .iter()
        .map(|a| a["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(
        ids,
        vec![id2.clone()],
        "the vanished container's cores were reclaimed"
    );
    pinc.ok(&["delete", "--force", &id2]);
    for ctrl in [
        "cpu", "cpuset", "memory", "pids", "freezer", "devices", "blkio", "cpuacct",
    ] {
        let _ = std::fs::remove_dir(format!("/sys/fs/cgroup/{ctrl}/pinc/{id}"));
    }
}

#[test]
fn placement_stays_inside_the_callers_cpus() {
    require_root();
    let last = (ncpus() - 1).to_string();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["grep", "Cpus_allowed_list", "/proc/self/status"]);
    bundle.add_env("PINC_CPUS=1");
    let taskset = |args: &[&str]| {
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", &last])
            .arg(pinc_bin())
            .arg("--root")
            .arg(pinc.root.path())
            .args(args);
        output_via_files(cmd)
    };
    let out = taskset(&[
        "run",
        "-b",
        bundle.path().to_str().expect("utf8"),
        &unique_id("inside"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(field(&stdout(&out), "Cpus_allowed_list:"), last);

    bundle.edit(|c| {
        let env = c["process"]["env"].as_array_mut().expect("env");
        env.retain(|e| !e.as_str().unwrap_or("").starts_with("PINC_CPUS"));
        env.push("PINC_CPUS=2".into());
    });
    let out = taskset(&[
        "run",
        "-b",
        bundle.path().to_str().expect("utf8"),
        &unique_id("wider"),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("no free cores") && err.contains(&format!("allowed CPUs {last}")),
        "{err}"
    );
}

#[test]
fn bad_requests_fail_before_anything_exists() {
    require_root();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["true"]);
    bundle.add_env("PINC_CPUS=lots");
    let id = unique_id("badreq");
    let err = pinc.fails(&["create", "-b", bundle.path().to_str().expect("utf8"), &id]);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("PINC_CPUS") && err.contains("lots"), "{err}");
    assert!(pinc.leftovers().is_empty());

    let bundle = Bundle::new(&["true"]);
    bundle.edit(|c| {
        c["annotations"] = serde_json::json!({"pinc.io/cpus": "1", "pinc.io/policy": "tight"})
    });
    let err = pinc.fails(&["create", "-b", bundle.path().to_str().expect("utf8"), &id]);
    assert!(
        err.contains("pinc.io/policy") && err.contains("compact, spread or strict"),
        "{err}"
    );
    assert!(pinc.leftovers().is_empty());
}

#[test]
fn a_memory_policy_request_reaches_the_process() {
    require_root();
    let pinc = Pinc::new();
    // numa_maps shows the policy of each mapping: "interleave:0" for the heap.
    let bundle = Bundle::new(&[
        "sh",
        "-c",
        "grep -m1 -o -E '(interleave|bind|prefer[a-z]*):[0-9,-]+' /proc/self/numa_maps",
    ]);
    bundle.add_env("PINC_CPUS=1");
    bundle.add_env("PINC_MEM=interleave");
    let out = pinc.output(&[
        "run",
        "-b",
        bundle.path().to_str().expect("utf8"),
        &unique_id("mpol"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "interleave:0");
}
