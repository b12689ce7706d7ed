//! The error kinds pinc writes into its JSON log: the contract its
//! containerd shim maps to ttrpc codes (pinc-errkind). Each failure is made
//! for real; the kind must not depend on the wording of the message.

use std::fs;
use std::path::Path;

use pinc_tests::{require_root, unique_id, Bundle, Pinc};

/// Runs a pinc command that must fail with a JSON log in `dir`; returns
/// the kind of the error line it logged.
fn kind_of_failure(pinc: &Pinc, dir: &Path, args: &[&str]) -> String {
    let log = dir.join(format!("log-{}.json", unique_id("k")));
    let mut full = vec!["--log", log.to_str().expect("utf8"), "--log-format=json"];
    full.extend_from_slice(args);
    let out = pinc.output(&full);
    assert!(!out.status.success(), "pinc {args:?} succeeded");
    let text = fs::read_to_string(&log).unwrap_or_else(|e| panic!("pinc {args:?}: no log: {e}"));
    let errors: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["level"] == "error")
        .collect();
    assert_eq!(errors.len(), 1, "one error line expected: {text}");
    errors[0]["kind"]
        .as_str()
        .unwrap_or_else(|| panic!("pinc {args:?}: no kind in {}", errors[0]))
        .to_string()
}

#[test]
fn lifecycle_failures_have_their_kind() {
    require_root();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["sleep", "100"]);
    let b = bundle.path().to_str().expect("utf8").to_string();
    let dir = bundle.path();
    let id = unique_id("kinds");

    assert_eq!(kind_of_failure(&pinc, dir, &["state", "nope"]), "not-found");
    assert_eq!(
        kind_of_failure(&pinc, dir, &["kill", "nope", "9"]),
        "not-found"
    );
    assert_eq!(
        kind_of_failure(&pinc, dir, &["state", "a/b"]),
        "invalid-argument"
    );

    pinc.ok(&["create", "--bundle", &b, &id]);
    assert_eq!(
        kind_of_failure(&pinc, dir, &["create", "--bundle", &b, &id]),
        "already-exists"
    );
    assert_eq!(kind_of_failure(&pinc, dir, &["pause", &id]), "wrong-state");
    assert_eq!(
        kind_of_failure(&pinc, dir, &["kill", &id, "SIGFOO"]),
        "invalid-argument"
    );
    pinc.ok(&["start", &id]);
    assert_eq!(kind_of_failure(&pinc, dir, &["start", &id]), "wrong-state");
    assert_eq!(kind_of_failure(&pinc, dir, &["delete", &id]), "wrong-state");
    pinc.ok(&["kill", &id, "KILL"]);
    let stopped = pinc_tests::daemons::wait_until(std::time::Duration::from_secs(10), || {
        pinc.state(&id)["status"] == "stopped"
    });
    assert!(stopped, "{} did not stop", id);
    // What containerd's shims turn into NotFound for a signal.
    assert_eq!(
        kind_of_failure(&pinc, dir, &["kill", &id, "TERM"]),
        "not-running"
    );
    assert_eq!(kind_of_failure(&pinc, dir, &["pause", &id]), "not-running");
    assert_eq!(
        kind_of_failure(&pinc, dir, &["exec", &id, "true"]),
        "not-running"
    );
    pinc.ok(&["delete", &id]);
}

#[test]
fn spec_and_placement_failures_have_their_kind() {
    require_root();
    let pinc = Pinc::new();
    let create = |edit: &dyn Fn(&mut serde_json::Value)| {
        let bundle = Bundle::new(&["true"]);
        bundle.edit(|c| edit(c));
        let b = bundle.path().to_str().expect("utf8").to_string();
        kind_of_failure(
            &pinc,
            bundle.path(),
            &["create", "--bundle", &b, &unique_id("kinds")],
        )
    };
    assert_eq!(
        create(&|c| c["ociVersion"] = "2.0.0".into()),
        "invalid-spec"
    );
    assert_eq!(
        create(&|c| c["process"]["args"] = serde_json::json!([])),
        "invalid-spec"
    );
    // A pinc.io request that cannot be parsed is the spec's fault...
    assert_eq!(
        create(&|c| c["annotations"] = serde_json::json!({"pinc.io/cpus": "many"})),
        "invalid-spec"
    );
    // ...one this node cannot meet is a refusal (2 cores here, far from 4096).
    assert_eq!(
        create(&|c| c["annotations"] = serde_json::json!({"pinc.io/cpus": "4096"})),
        "placement-refused"
    );
    assert!(pinc.leftovers().is_empty(), "{:?}", pinc.leftovers());
}
