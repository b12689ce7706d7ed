//! Mount targets swapped for symlinks while the runtime mounts (the
//! CVE-2021-30465 race, and the newer mount-target races of its class):
//! a running container owns a volume and keeps replacing a directory on it
//! with a symlink to a host directory, while pinc creates containers that
//! mount through that directory. A runtime that resolves the destination
//! as a path and then mounts on it loses the race some of the time and
//! mounts (or creates the target) on the host; pinc resolves the target in
//! the rootfs and mounts on the descriptor it got. The host directory must
//! be untouched after every round; a round may be refused (one line) or
//! find its volume elsewhere in its own rootfs.
//!
//! A race, so it proves nothing when it passes once: it catches a path-
//! resolving runtime in nearly every run (seen with a sabotaged build).

use std::fs;

use pinc_tests::{require_root, unique_id, Bundle, Pinc};
use serde_json::json;

use super::{assert_clean_refusal, decoy, host_mounts_under, snapshot};

const ROUNDS: usize = 20;

#[test]
fn a_mount_target_swapped_for_a_symlink_stays_in_the_rootfs() {
    require_root();
    let pinc = Pinc::new();
    let host = decoy("pinc-decoy-race-");
    let before = snapshot(host.path());
    let volume = tempfile::tempdir().expect("volume");
    let source = tempfile::tempdir().expect("source");
    fs::write(source.path().join("payload"), "volume\n").expect("payload");

    let h = host.path().display();
    let rel = format!("../../../../../../../..{h}");
    let swap = format!(
        "while :; do rm -rf /vol/t; mkdir /vol/t; rm -rf /vol/t; ln -s {h} /vol/t; \
         rm -f /vol/t; mkdir /vol/t; rm -rf /vol/t; ln -s {rel} /vol/t; rm -f /vol/t; done"
    );
    let attacker = Bundle::new(&["sh", "-c", &swap]);
    let bind = |src: &std::path::Path, dest: &str| json!({"destination": dest, "type": "bind", "source": src, "options": ["rbind", "rw"]});
    attacker.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .expect("mounts")
            .push(bind(volume.path(), "/vol"))
    });
    let attacker_id = unique_id("racer");
    pinc.ok(&[
        "run",
        "-d",
        "-b",
        attacker.path().to_str().expect("utf8"),
        &attacker_id,
    ]);

    let victim = Bundle::new(&["sh", "-c", "cat /data/t/x/payload 2>/dev/null; true"]);
    victim.edit(|c| {
        let mounts = c["mounts"].as_array_mut().expect("mounts");
        mounts.push(bind(volume.path(), "/data"));
        mounts.push(bind(source.path(), "/data/t/x"));
    });
    let mut ran = 0;
    let mut failures = Vec::new();
    for round in 0..ROUNDS {
        let id = unique_id("victim");
        let out = pinc.output(&["run", "-b", victim.path().to_str().expect("utf8"), &id]);
        let _ = pinc.output(&["delete", "--force", &id]);
        if out.status.success() {
            ran += 1;
        } else {
            assert_clean_refusal(&format!("round {round}"), &out);
        }
        if snapshot(host.path()) != before || !host_mounts_under(host.path()).is_empty() {
            failures.push(format!(
                "round {round}: the host directory changed: {:?} {:?}",
                snapshot(host.path()),
                host_mounts_under(host.path())
            ));
        }
    }
    pinc.ok(&["delete", "--force", &attacker_id]);
    eprintln!("{ran} of {ROUNDS} rounds ran, the rest were refused");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(pinc.leftovers().is_empty(), "{:?}", pinc.leftovers());
}
