//! CVE-2022-29162: `runc exec` gave the exec'd process inheritable
//! capabilities the container's process did not have; a binary with file
//! inheritable capabilities then gained them. runc 1.1.2 fixed exec and
//! dropped inheritable capabilities from `runc spec`.
//!
//! Expected values are runc 1.1.5's, measured on this machine with the same
//! config: exec and `exec --cap` give CapInh = CapAmb = 0; a --process file
//! with inheritable [CAP_KILL] (and ambient KILL, NET_BIND_SERVICE,
//! AUDIT_WRITE) gets CapInh = CapAmb = CAP_KILL (ambient needs inheritable).

use std::fs;

use pinc_tests::{require_root, stderr, stdout, unique_id, Bundle, Pinc};

/// CapInh, CapPrm, CapEff, CapBnd, CapAmb of a process's status, in hex.
fn caps(status: &str) -> Vec<String> {
    status
        .lines()
        .filter(|l| l.starts_with("Cap"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// KILL | NET_BIND_SERVICE | AUDIT_WRITE: the template's three caps.
const THREE: &str = "0000000020000420";

#[test]
fn pinc_spec_sets_no_inheritable_capabilities() {
    require_root();
    let bundle = Bundle::new(&["true"]);
    let config = bundle.config();
    let process_caps = &config["process"]["capabilities"];
    assert!(
        process_caps["inheritable"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "pinc spec sets inheritable capabilities (runc 1.1.2+ does not): {process_caps}"
    );
}

#[test]
fn exec_gets_no_inheritable_or_ambient_capabilities() {
    require_root();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["sleep", "1000"]);
    // As runc spec writes it: ambient listed, no inheritable.
    bundle.edit(|c| {
        let caps = c["process"]["capabilities"]
            .as_object_mut()
            .expect("capabilities");
        caps.remove("inheritable");
        caps.insert(
            "ambient".into(),
            serde_json::json!(["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"]),
        );
    });
    let id = unique_id("caps");
    pinc.ok(&[
        "run",
        "-d",
        "-b",
        bundle.path().to_str().expect("utf8"),
        &id,
    ]);
    let init = caps(&pinc.ok(&["exec", &id, "cat", "/proc/1/status"]));
    let exec = caps(&pinc.ok(&["exec", &id, "cat", "/proc/self/status"]));
    let with_cap = caps(&pinc.ok(&[
        "exec",
        "--cap",
        "CAP_NET_RAW",
        &id,
        "cat",
        "/proc/self/status",
    ]));

    let dir = tempfile::tempdir().expect("tempdir");
    let process = dir.path().join("process.json");
    let mut p = bundle.config()["process"].clone();
    p["args"] = serde_json::json!(["cat", "/proc/self/status"]);
    p["capabilities"]["inheritable"] = serde_json::json!(["CAP_KILL"]);
    fs::write(&process, serde_json::to_vec(&p).expect("json")).expect("process.json");
    let out = pinc.output(&["exec", "--process", process.to_str().expect("utf8"), &id]);
    pinc.ok(&["delete", "--force", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let from_file = caps(&stdout(&out));

    let none = |prm: &str| {
        vec![
            "CapInh: 0000000000000000".to_string(),
            format!("CapPrm: {prm}"),
            format!("CapEff: {prm}"),
            format!("CapBnd: {prm}"),
            "CapAmb: 0000000000000000".to_string(),
        ]
    };
    assert_eq!(init, none(THREE), "the container's process");
    assert_eq!(exec, none(THREE), "pinc exec");
    assert_eq!(
        with_cap,
        none("0000000020002420"),
        "pinc exec --cap CAP_NET_RAW"
    );
    assert_eq!(
        from_file,
        vec![
            "CapInh: 0000000000000020".to_string(),
            format!("CapPrm: {THREE}"),
            format!("CapEff: {THREE}"),
            format!("CapBnd: {THREE}"),
            "CapAmb: 0000000000000020".to_string(),
        ],
        "pinc exec --process with inheritable CAP_KILL (as runc 1.1.5)"
    );
}
