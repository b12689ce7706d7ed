use crate::placement::{Amount, Policy};

use super::*;

fn ann(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn env(entries: &[&str]) -> Vec<String> {
    entries.iter().map(|e| e.to_string()).collect()
}

fn read(a: &[(&str, &str)], e: &[&str]) -> Result<Request, RequestError> {
    Request::from_parts(&ann(a), &env(e))
}

#[test]
fn nothing_asked_is_the_default_request() {
    let r = read(&[("other/key", "x")], &["PATH=/bin", "PINC_UNRELATED=1"]).expect("ok");
    assert_eq!(r, Request::default());
}

#[test]
fn annotations_win_over_env_and_the_last_env_entry_wins() {
    let r = read(
        &[("pinc.io/cpus", "2")],
        &["PINC_CPUS=4", "PINC_POLICY=compact", "PINC_POLICY=spread"],
    )
    .expect("ok");
    let p = r.placement.expect("placement");
    assert_eq!(p.amount, Some(Amount::Cpus(2)));
    assert_eq!(p.policy, Policy::Spread);
    let r = read(&[("pinc.io/hpc", "off")], &["PINC_HPC=on"]).expect("ok");
    assert!(!r.hpc);
}

#[test]
fn every_boolean_key_uses_the_one_parser() {
    for key in ["hpc", "require-cgroups"] {
        let var = format!("PINC_{}", key.to_ascii_uppercase().replace('-', "_"));
        let on = read(&[], &[&format!("{var}=Yes")]).expect("on");
        let off = read(&[(&format!("pinc.io/{key}"), "0")], &[]).expect("off");
        let flag = |r: &Request| {
            if key == "hpc" {
                r.hpc
            } else {
                r.require_cgroups
            }
        };
        assert!(flag(&on) && !flag(&off), "{key}");
        // A typo is refused, naming the variable: it was silently off.
        let err = read(&[], &[&format!("{var}=treu")]).expect_err("typo");
        assert_eq!(
            err.to_string(),
            format!("{var}: invalid value \"treu\": on or off")
        );
    }
}

#[test]
fn gpus_fall_back_to_nvidia_visible_devices_after_pinc_gpus() {
    let r = read(&[], &["NVIDIA_VISIBLE_DEVICES=all"]).expect("ok");
    assert_eq!(r.gpus.expect("gpus").from, "NVIDIA_VISIBLE_DEVICES");
    let r = read(&[], &["NVIDIA_VISIBLE_DEVICES=all", "PINC_GPUS=1"]).expect("ok");
    assert_eq!(r.gpus.expect("gpus").from, "PINC_GPUS");
    // "none" asks for nothing: no device request at all.
    let r = read(&[("pinc.io/gpus", "none")], &["PINC_RDMA=none"]).expect("ok");
    assert!(r.gpus.is_none() && r.rdma.is_none());
}

#[test]
fn a_bad_device_selection_names_its_carrier() {
    let err = read(&[], &["PINC_RDMA=,,"]).expect_err("bad");
    assert!(err.to_string().starts_with("PINC_RDMA"), "{err}");
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn unknown_keys_are_refused_and_written_keys_accepted() {
    let err = read(&[("pinc.io/cpu", "1")], &[]).expect_err("typo");
    let text = err.to_string();
    assert!(text.starts_with("pinc.io/cpu: unknown key"), "{text}");
    // The list of known keys is the table's, not a hand-kept copy.
    for key in known_keys() {
        assert!(text.contains(key), "{key} missing from {text}");
    }
    let r = read(
        &[
            ("pinc.io/placement", "{\"cpus\":\"0\"}"),
            ("pinc.io/device-locality", "0000:3b:00.0"),
        ],
        &[],
    )
    .expect("written keys");
    assert_eq!(r, Request::default());
}

#[test]
fn a_pod_sandbox_reads_only_the_pod_wide_keys() {
    let sandbox = [
        ("io.kubernetes.cri.container-type", "sandbox"),
        ("pinc.io/hpc", "true"),
        ("pinc.io/cpus", "2"),
        ("pinc.io/gpus", "all"),
    ];
    let r = read(&sandbox, &[]).expect("ok");
    assert!(r.pod_sandbox && r.hpc);
    assert!(r.placement.is_none() && r.gpus.is_none());
    let container = [("io.kubernetes.cri.container-type", "container")];
    assert!(!read(&container, &[]).expect("ok").pod_sandbox);
}

#[test]
fn placement_keys_reach_the_planner_crate_with_their_carrier() {
    let err = read(&[], &["PINC_POLICY=tight", "PINC_CPUS=1"]).expect_err("bad");
    assert!(
        err.to_string()
            .starts_with("PINC_POLICY: invalid value \"tight\""),
        "{err}"
    );
    let r = read(&[], &["PINC_HUGEPAGES="]).expect("ok");
    assert!(
        r.placement.is_none(),
        "an empty hugepages value asks for nothing"
    );
}
