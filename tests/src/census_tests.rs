use super::*;

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, text).expect("write");
}

#[test]
fn parses_mountinfo_lines_with_optional_fields_and_escapes() {
    let line = "36 35 98:0 /mnt1 /mnt/my\\040dir rw,noatime master:1 shared:2 - ext3 /dev/root rw";
    assert_eq!(
        parse_mountinfo_line(line),
        Some(MountEntry {
            mount_point: "/mnt/my dir".into(),
            fstype: "ext3".into(),
            source: "/dev/root".into(),
        })
    );
    let bare = "22 1 0:21 / /dev/hugepages rw,relatime - hugetlbfs hugetlbfs rw,pagesize=2M";
    assert_eq!(
        parse_mountinfo_line(bare).map(|m| m.fstype),
        Some("hugetlbfs".into())
    );
    assert_eq!(parse_mountinfo_line("garbage without separator"), None);
    assert_eq!(parse_mountinfo_line("1 2 3:4 / - ext4"), None);
}

#[test]
fn counts_mounts_under_the_root_a_prefix_or_of_hugetlbfs() {
    let scope = Scope::new(Path::new("/run/r")).prefix(Path::new("/tmp/bundle"));
    let text = "\
1 0 8:1 / / rw - ext4 /dev/sda1 rw
2 1 0:5 / /run/r/c1/x rw - tmpfs tmpfs rw
3 1 0:6 / /srv rw - none /tmp/bundle/rootfs rw
4 1 0:7 / /tmp/bundles rw - tmpfs tmpfs rw
5 1 0:8 / /dev/hugepages rw - hugetlbfs hugetlbfs rw
6 1 0:9 / /run/rr rw - tmpfs tmpfs rw";
    assert_eq!(
        mounts(text, &scope),
        vec![
            "/run/r/c1/x tmpfs tmpfs",
            "/srv none /tmp/bundle/rootfs",
            "/dev/hugepages hugetlbfs hugetlbfs",
        ],
        "path prefixes match whole components (/tmp/bundles, /run/rr do not count)"
    );
}

#[test]
fn reads_ledger_entries_and_the_cpus_they_hold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("allocations.json");
    assert_eq!(ledger(&path), (vec![], vec![]), "no ledger, no entries");
    write(
        &path,
        r#"[{"id":"a","cpus":"0-1","mems":"0"},{"id":"b","cpus":"3,5","mems":"0-1"}]"#,
    );
    let (entries, cpus) = ledger(&path);
    assert_eq!(entries, vec!["a cpus=0-1 mems=0", "b cpus=3,5 mems=0-1"]);
    assert_eq!(cpus, vec!["cpu0 a", "cpu1 a", "cpu3 b", "cpu5 b"]);
    write(&path, "");
    let (entries, _) = ledger(&path);
    assert_eq!(entries.len(), 1);
    assert!(entries[0].starts_with("<unparsable"), "{entries:?}");
}

#[test]
fn finds_pinc_cgroups_in_proc_cgroup_files() {
    let v1 = "12:pids:/pinc/c1\n11:cpu,cpuacct:/pinc/c1\n0::/pinc/c1\n";
    assert_eq!(
        pinc_cgroup_of(v1),
        Some(("c1".to_string(), "/pinc/c1".to_string()))
    );
    let systemd = "1:name=systemd:/system.slice/pinc-c2.scope\n";
    assert_eq!(pinc_cgroup_of(systemd).map(|x| x.0), Some("c2".into()));
    let nested = "0::/pinc/c3/sub\n";
    assert_eq!(pinc_cgroup_of(nested).map(|x| x.0), Some("c3".into()));
    assert_eq!(pinc_cgroup_of("0::/user.slice/session-1.scope\n"), None);
    assert_eq!(
        pinc_cgroup_of("0::/pinc\n"),
        None,
        "the parent is no container"
    );
}

/// A fake node: a root with state, private files, cgroup mounts and a procfs.
fn fixture(dir: &Path) -> Scope {
    let root = dir.join("root");
    let rootfs = dir.join("bundle/rootfs");
    let cg = dir.join("cgroup");
    let proc = dir.join("proc");
    write(&root.join("c1/state.json"), "{}");
    write(&root.join(".pinc/staging/c1/config.json"), "{}");
    write(&root.join(".pinc/exec/c1.77/c1/state.json"), "{}");
    write(&root.join(".pinc/locks/c1"), "");
    write(
        &root.join(".pinc/ledger/allocations.json"),
        r#"[{"id":"c1","cpus":"1","mems":"0"}]"#,
    );
    fs::create_dir_all(cg.join("cpu,cpuacct/pinc/c1")).expect("cg");
    fs::create_dir_all(cg.join("cpu,cpuacct/pinc/other-7")).expect("cg");
    fs::create_dir_all(cg.join("unified/pinc/c1")).expect("cg");
    fs::create_dir_all(cg.join("systemd/system.slice/pinc-c1.scope")).expect("cg");
    fs::create_dir_all(cg.join("systemd/system.slice/cron.service")).expect("cg");
    std::os::unix::fs::symlink("cpu,cpuacct", cg.join("cpu")).expect("alias");
    write(
        &proc.join("self/mountinfo"),
        &format!(
            "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n2 1 0:5 / {}/c1/m rw - tmpfs tmpfs rw\n",
            root.display()
        ),
    );
    let me = std::process::id() as i32;
    // 100: a container init; 101: a zombie child of ours; 102: an orphaned
    // libcontainer init of another root; 103: a process inside the rootfs.
    write(&proc.join("100/stat"), "100 (sleep) S 1 100 100");
    write(&proc.join("100/cgroup"), "4:pids:/pinc/c1\n");
    write(&proc.join("101/stat"), &format!("101 (pinc) Z {me} 1 1"));
    write(&proc.join("101/cgroup"), "0::/user.slice\n");
    write(&proc.join("101/cmdline"), "pinc\0--root\0/elsewhere\0");
    write(&proc.join("102/stat"), "102 (youki:[2:INIT]) S 1 1 1");
    write(&proc.join("102/cmdline"), "pinc\0create\0other-7\0");
    write(&proc.join("103/stat"), "103 (sh) S 1 1 1");
    fs::create_dir_all(&rootfs).expect("rootfs");
    std::os::unix::fs::symlink(&rootfs, proc.join("103/cwd")).expect("cwd");
    fs::create_dir_all(proc.join("100/fd")).expect("fd");
    std::os::unix::fs::symlink("/dev/null", proc.join("100/fd/0")).expect("fd");
    std::os::unix::fs::symlink("pipe:[42]", proc.join("100/fd/1")).expect("fd");
    let mut scope = Scope::new(&root).prefix(&dir.join("bundle")).watch_fds(100);
    scope.proc = proc;
    scope.cgroup_root = cg;
    scope
}

#[test]
fn counts_every_category_of_a_fake_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scope = fixture(dir.path());
    let c = Census::take_in(&scope);
    assert_eq!(c.state_dirs, vec!["c1"]);
    assert_eq!(c.staging, vec!["c1"]);
    assert_eq!(c.exec_views, vec!["c1.77"]);
    assert_eq!(c.private_files, vec!["ledger/allocations.json", "locks/c1"]);
    assert_eq!(
        c.cgroups,
        vec![
            "cpu,cpuacct/pinc/c1",
            "cpu,cpuacct/pinc/other-7",
            "systemd/system.slice/pinc-c1.scope",
            "unified/pinc/c1",
        ],
        "the cpu alias is not counted twice"
    );
    assert_eq!(c.mounts.len(), 1, "{:?}", c.mounts);
    assert!(c.mounts[0].ends_with("/c1/m tmpfs tmpfs"), "{:?}", c.mounts);
    assert_eq!(c.ledger, vec!["c1 cpus=1 mems=0"]);
    assert_eq!(c.ledger_cpus, vec!["cpu1 c1"]);
    assert_eq!(c.cgroup_procs, vec!["100 sleep /pinc/c1"]);
    assert_eq!(c.zombies, vec!["101 pinc"]);
    assert_eq!(c.pinc_procs, vec!["101 pinc", "102 youki:[2:INIT]"]);
    assert_eq!(c.rootfs_procs.len(), 1, "{:?}", c.rootfs_procs);
    assert!(c.rootfs_procs[0].starts_with("103 sh cwd="));
    assert_eq!(c.fds, vec!["100/0 /dev/null", "100/1 pipe:[42]"]);

    // Scoped to ids "c1": another run's containers and processes drop out.
    let scoped = Census::take_in(&scope.clone().ids("c1"));
    assert!(!scoped.cgroups.iter().any(|c| c.contains("other-7")));
    assert_eq!(
        scoped.pinc_procs,
        Vec::<String>::new(),
        "neither pinc process names this root or an id of ours"
    );
}

#[test]
fn diff_names_what_appeared_and_what_went() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scope = fixture(dir.path());
    let before = Census::take_in(&scope);
    fs::create_dir_all(scope.root.join(".pinc/staging/c2")).expect("staging");
    fs::remove_dir_all(scope.root.join("c1")).expect("state");
    let after = Census::take_in(&scope);
    let diff = before.diff(&after);
    assert!(diff.grew());
    assert_eq!(diff.appeared("staging dirs"), ["c2"]);
    assert_eq!(diff.appeared("state dirs"), [] as [String; 0]);
    let state = diff
        .categories
        .iter()
        .find(|c| c.name == "state dirs")
        .expect("category");
    assert_eq!(state.disappeared, vec!["c1"]);
    let text = diff.to_string();
    assert!(
        text.contains("staging dirs") && text.contains("+ c2"),
        "{text}"
    );
    assert!(before.diff(&before).is_empty());
    assert!(!before.diff(&before).grew());
    assert!(before.to_string().contains("cgroups"));
    assert!(!before.is_empty());
}

#[test]
fn leaks_ignores_only_the_roots_own_files() {
    let before = Census::default();
    let after = Census {
        private_files: vec![
            "ledger/lock".into(),
            "locks/c9".into(),
            "topology.json".into(),
        ],
        ..Census::default()
    };
    let leaks = before.diff(&after).leaks();
    assert_eq!(leaks.appeared("private files"), ["locks/c9"]);
    assert!(leaks.grew());
}
