//! OCI hooks through the pinc CLI, with real containers: the state each hook
//! reads on stdin, and what a failing poststart or poststop hook does.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use pinc_tests::{cgroup_dirs_named, require_root, stderr, unique_id, Bundle, Pinc};
use serde_json::{json, Value};

/// Every hook kind, in lifecycle order.
const KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// `script KIND OUTDIR [EXIT]`: saves its stdin as OUTDIR/KIND.json and its
/// HOOKVAR as OUTDIR/KIND.env, then exits with EXIT. Hooks get no PATH.
const SCRIPT: &str =
    "#!/bin/sh\n/bin/cat > \"$2/$1.json\"\necho \"$HOOKVAR\" > \"$2/$1.env\"\nexit ${3:-0}\n";

fn write_script(path: &Path) {
    fs::write(path, SCRIPT).expect("hook script");
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn hook(path: &str, kind: &str, out: &str, exit: u8) -> Value {
    json!({
        "path": path,
        "args": ["record", kind, out, exit.to_string()],
        "env": [format!("HOOKVAR=env-of-{kind}")],
        "timeout": 30,
    })
}

/// A bundle whose hooks of every kind record their state; the host-side
/// hooks write to `out`, startContainer (inside the container, after
/// pivot_root) to the rootfs's root.
fn recording_bundle(out: &Path, args: &[&str]) -> Bundle {
    let bundle = Bundle::new(args);
    let host_script = out.join("record.sh");
    write_script(&host_script);
    write_script(&bundle.path().join("rootfs/record.sh"));
    let host = host_script.to_str().expect("utf8").to_string();
    let out = out.to_str().expect("utf8").to_string();
    bundle.edit(|c| {
        c["root"]["readonly"] = json!(false);
        let mut hooks = serde_json::Map::new();
        for kind in KINDS {
            let h = if kind == "startContainer" {
                hook("/record.sh", kind, "/", 0)
            } else {
                hook(&host, kind, &out, 0)
            };
            hooks.insert(kind.to_string(), json!([h]));
        }
        c["hooks"] = Value::Object(hooks);
    });
    bundle
}

fn recorded(dir: &Path, kind: &str) -> (Value, String) {
    let state = fs::read(dir.join(format!("{kind}.json")))
        .unwrap_or_else(|e| panic!("{kind} hook did not run: {e}"));
    let state = serde_json::from_slice(&state)
        .unwrap_or_else(|e| panic!("{kind} hook got no JSON state: {e}"));
    let env = fs::read_to_string(dir.join(format!("{kind}.env"))).unwrap_or_default();
    (state, env.trim().to_string())
}

#[test]
fn every_hook_sees_the_callers_bundle() {
    require_root();
    // Without a pipeline change libcontainer reads the caller's bundle; with
    // one (a CPU request) it reads a staged copy of the final spec.
    for staged in [false, true] {
        let out = tempfile::tempdir().expect("out dir");
        let bundle = recording_bundle(out.path(), &["true"]);
        let pinc = Pinc::new();
        let id = unique_id(if staged { "hooks-staged" } else { "hooks" });
        if staged {
            bundle.edit(|c| c["annotations"] = json!({"pinc.io/cpus": "1"}));
        } else {
            // What pinc would add otherwise: its cgroup path, and the
            // caller's affinity for exec'd processes.
            bundle.edit(|c| {
                c["linux"]["cgroupsPath"] = json!(format!("/pinc/{id}"));
                c["process"]["execCPUAffinity"] = json!({"final": "0"});
                // Every capability set given, as the normaliser would.
                let caps = &mut c["process"]["capabilities"];
                for set in [
                    "bounding",
                    "effective",
                    "permitted",
                    "inheritable",
                    "ambient",
                ] {
                    if caps[set].is_null() {
                        caps[set] = json!([]);
                    }
                }
            });
        }
        let b = bundle.path().to_str().expect("utf8");
        pinc.ok(&["create", "--bundle", b, &id]);
        let state = pinc.state(&id);
        assert_eq!(
            state["pinc"]["finalSpec"], staged,
            "the case under test (staged: {staged}): {state}"
        );
        let want = state["bundle"].as_str().expect("bundle").to_string();
        assert_eq!(
            PathBuf::from(&want),
            bundle.path().canonicalize().expect("canonical")
        );
        pinc.ok(&["start", &id]);
        pinc.wait_for_status(&id, "stopped");
        pinc.ok(&["delete", &id]);
        assert!(pinc.leftovers().is_empty(), "{:?}", pinc.leftovers());
        assert!(
            pinc.private_leftovers().is_empty(),
            "{:?}",
            pinc.private_leftovers()
        );

        for kind in KINDS {
            let dir = if kind == "startContainer" {
                bundle.path().join("rootfs")
            } else {
                out.path().to_path_buf()
            };
            let (got, env) = recorded(&dir, kind);
            assert_eq!(got["id"], id.as_str(), "{kind}: {got}");
            assert_eq!(env, format!("env-of-{kind}"), "{kind} keeps its env");
            assert_eq!(
                got["bundle"],
                want.as_str(),
                "{kind} (staged: {staged}) reads the caller's bundle: {got}"
            );
        }
    }
}

#[test]
fn a_failing_create_hook_still_fails_create_through_the_relay() {
    require_root();
    let out = tempfile::tempdir().expect("out dir");
    let bundle = Bundle::new(&["true"]);
    let script = out.path().join("record.sh");
    write_script(&script);
    let (s, o) = (
        script.to_str().expect("utf8"),
        out.path().to_str().expect("utf8"),
    );
    bundle.edit(|c| {
        c["annotations"] = json!({"pinc.io/cpus": "1"});
        c["hooks"] = json!({"createRuntime": [hook(s, "createRuntime", o, 5)]});
    });
    let pinc = Pinc::new();
    let id = unique_id("hookfail");
    let err = pinc.fails(&[
        "create",
        "--bundle",
        bundle.path().to_str().expect("utf8"),
        &id,
    ]);
    assert!(err.contains(&id), "{err}");
    assert!(
        out.path().join("createRuntime.json").exists(),
        "the hook ran"
    );
    assert!(pinc.leftovers().is_empty(), "{:?}", pinc.leftovers());
    assert!(cgroup_dirs_named(&id).is_empty());
}

#[test]
fn failing_poststart_and_poststop_hooks_warn_and_the_lifecycle_goes_on() {
    require_root();
    let out = tempfile::tempdir().expect("out dir");
    let script = out.path().join("record.sh");
    write_script(&script);
    let (s, o) = (
        script.to_str().expect("utf8"),
        out.path().to_str().expect("utf8"),
    );
    let bundle = Bundle::new(&["sleep", "60"]);
    bundle.edit(|c| {
        c["hooks"] = json!({
            "poststart": [hook(s, "poststart-fails", o, 3), hook(s, "poststart", o, 0)],
            "poststop": [hook(s, "poststop-fails", o, 4), hook(s, "poststop", o, 0)],
        });
    });
    let b = bundle.path().to_str().expect("utf8");
    let pinc = Pinc::new();

    // start succeeds; the failure is one warning; the next hook runs.
    let id = unique_id("poststart");
    pinc.ok(&["create", "--bundle", b, &id]);
    let started = pinc.output(&["start", &id]);
    let err = stderr(&started);
    assert!(started.status.success(), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one warning: {err}");
    assert!(
        err.contains("warning") && err.contains("poststart"),
        "{err}"
    );
    assert_eq!(pinc.state(&id)["status"], "running");
    assert_eq!(recorded(out.path(), "poststart").0["status"], "running");

    // delete succeeds and removes everything; both poststop hooks ran.
    pinc.ok(&["kill", &id, "KILL"]);
    pinc.wait_for_status(&id, "stopped");
    let deleted = pinc.output(&["delete", &id]);
    let err = stderr(&deleted);
    assert!(deleted.status.success(), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one warning: {err}");
    assert!(err.contains("warning") && err.contains("poststop"), "{err}");
    assert_eq!(recorded(out.path(), "poststop").0["id"], id.as_str());
    assert!(pinc.leftovers().is_empty(), "{:?}", pinc.leftovers());
    assert!(
        cgroup_dirs_named(&id).is_empty(),
        "{:?}",
        cgroup_dirs_named(&id)
    );

    // The same through --force on a running container.
    fs::remove_file(out.path().join("poststop.json")).expect("reset");
    let id = unique_id("poststop-force");
    pinc.ok(&["run", "--detach", "--bundle", b, &id]);
    pinc.wait_for_status(&id, "running");
    let deleted = pinc.output(&["delete", "--force", &id]);
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    assert_eq!(recorded(out.path(), "poststop").0["id"], id.as_str());
    assert!(pinc.leftovers().is_empty(), "{:?}", pinc.leftovers());
    assert!(pinc.private_leftovers().is_empty());
    assert!(
        cgroup_dirs_named(&id).is_empty(),
        "{:?}",
        cgroup_dirs_named(&id)
    );
}
