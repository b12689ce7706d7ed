//! The census sees a real placed container (state dir, cgroups in every
//! hierarchy, ledger entry, its processes) and nothing of it once deleted.

use pinc_tests::census::{Census, Scope};
use pinc_tests::{cgroup_dirs_named, require_root, unique_id, Bundle, Pinc};

#[test]
fn census_sees_a_placed_container_and_is_back_to_baseline_after_delete() {
    require_root();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["sleep", "60"]);
    bundle.add_env("PINC_CPUS=1");
    let id = unique_id("census");
    let scope = Scope::new(pinc.root.path())
        .prefix(bundle.path())
        .ids(&id)
        .watch_fds(std::process::id() as i32);
    let before = Census::take_in(&scope);

    let b = bundle.path().to_str().expect("utf8");
    pinc.ok(&["create", "-b", b, &id]);
    pinc.ok(&["start", &id]);
    let during = Census::take_in(&scope);
    let grown = before.diff(&during);
    assert_eq!(
        grown.appeared("state dirs"),
        std::slice::from_ref(&id),
        "{grown}"
    );
    assert_eq!(grown.appeared("ledger entries").len(), 1, "{grown}");
    assert!(
        grown.appeared("ledger entries")[0].starts_with(&format!("{id} cpus=")),
        "{grown}"
    );
    assert!(!grown.appeared("ledger cpus").is_empty(), "{grown}");
    let harness_view = cgroup_dirs_named(&id);
    assert!(!harness_view.is_empty(), "the container has v1 cgroups");
    for dir in &harness_view {
        let rel = dir
            .strip_prefix("/sys/fs/cgroup")
            .expect("under /sys/fs/cgroup")
            .display()
            .to_string();
        assert!(
            grown.appeared("cgroups").contains(&rel),
            "{rel} not in the census:\n{grown}"
        );
    }
    for ctrl in ["cpuset", "memory", "pids"] {
        let want = format!("{ctrl}/pinc/{id}");
        assert!(
            grown.appeared("cgroups").contains(&want),
            "{want} not in the census:\n{grown}"
        );
    }
    assert!(
        grown
            .appeared("procs in pinc cgroups")
            .iter()
            .any(|p| p.contains(" sleep ")),
        "the container's sleep is counted:\n{grown}"
    );
    assert!(!during.is_empty());

    pinc.ok(&["delete", "--force", &id]);
    let after = Census::take_in(&scope);
    // The ledger, its lock and the topology cache stay with the root.
    let diff = before.diff(&after).leaks();
    for c in &diff.categories {
        assert!(c.appeared.is_empty(), "{} left behind:\n{diff}", c.name);
    }
    assert!(!diff.grew());
    assert!(after.ledger.is_empty(), "{:?}", after.ledger);
}
