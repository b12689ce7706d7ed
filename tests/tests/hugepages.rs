//! Hugepages for real: pages reserved on this machine, a limit with
//! reservations, hugetlbfs in the container, ENOMEM (not SIGBUS) beyond it.

use std::fs;
use std::path::Path;
use std::process::Command;

use pinc_tests::{require_root, stderr, stdout, unique_id, Bundle, Pinc};

const NR: &str = "/proc/sys/vm/nr_hugepages";

/// Reserves 2 MiB pages for the test and gives the old count back after.
/// Tests holding one run one at a time: nr_hugepages is machine-wide.
struct Reserve {
    before: String,
    _serial: std::sync::MutexGuard<'static, ()>,
}

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Reserve {
    fn pages(n: u64) -> Self {
        let serial = SERIAL
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let before = fs::read_to_string(NR).expect("nr_hugepages");
        let want: u64 = before.trim().parse::<u64>().expect("number") + n;
        fs::write(NR, want.to_string()).expect("reserve hugepages");
        let got: u64 = fs::read_to_string(NR)
            .expect("read")
            .trim()
            .parse()
            .expect("number");
        assert!(
            got >= want,
            "the kernel gave {got} of {want} hugepages (memory too fragmented?)"
        );
        Self {
            before,
            _serial: serial,
        }
    }
}

impl Drop for Reserve {
    fn drop(&mut self) {
        let _ = fs::write(NR, self.before.trim());
    }
}

/// Builds the mapper statically into the bundle's rootfs.
fn hugemap(bundle: &Bundle) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/hugemap.c");
    let out = bundle.path().join("rootfs/bin/hugemap");
    let status = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("cc (apt-get install build-essential)");
    assert!(status.success(), "compiling hugemap.c failed");
}

#[test]
fn a_hugepage_request_limits_with_reservations_and_mounts_hugetlbfs() {
    require_root();
    let _reserve = Reserve::pages(8);
    let pinc = Pinc::new();
    let bundle = Bundle::new(&[
        "sh",
        "-c",
        "grep -c ' /dev/hugepages hugetlbfs ' /proc/mounts; hugemap 4; hugemap 5; echo done",
    ]);
    hugemap(&bundle);
    bundle.add_env("PINC_HUGEPAGES=2M:4");
    let id = unique_id("huge");
    let out = pinc.output(&["run", "-b", bundle.path().to_str().expect("utf8"), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0], "1",
        "hugetlbfs is mounted at /dev/hugepages: {text}"
    );
    assert_eq!(lines[1], "mapped 4", "within the limit: {text}");
    assert_eq!(
        lines[2], "mmap 5: Cannot allocate memory",
        "beyond it, ENOMEM at mmap: {text}"
    );
    assert_eq!(lines[3], "done");
    // Nothing left in the cgroup2 hierarchy pinc made for hugetlb.
    assert!(!Path::new(&format!("/sys/fs/cgroup/unified/pinc/{id}")).exists());
    assert!(pinc.leftovers().is_empty());
}

#[test]
fn the_limit_is_in_the_containers_hugetlb_cgroup() {
    require_root();
    let _reserve = Reserve::pages(4);
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["sleep", "30"]);
    bundle.add_env("PINC_HUGEPAGES=2M:3");
    let id = unique_id("hugecg");
    pinc.ok(&["create", "-b", bundle.path().to_str().expect("utf8"), &id]);
    let pid = pinc.state(&id)["pid"].as_i64().expect("pid");
    let cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    // Wherever hugetlb lives (a v1 hierarchy or cgroup2), the file says 3 pages.
    let (dir, file) = if cgroup.lines().any(|l| l.contains(":hugetlb:")) {
        let path = cgroup
            .lines()
            .find_map(|l| l.split_once(":hugetlb:").map(|(_, p)| p.to_string()))
            .expect("path");
        (
            format!("/sys/fs/cgroup/hugetlb{path}"),
            "hugetlb.2MB.rsvd.limit_in_bytes",
        )
    } else {
        let path = cgroup
            .lines()
            .find_map(|l| l.strip_prefix("0::").map(str::to_string))
            .expect("v2 path");
        let base = if Path::new("/sys/fs/cgroup/unified").exists() {
            "/sys/fs/cgroup/unified"
        } else {
            "/sys/fs/cgroup"
        };
        (format!("{base}{path}"), "hugetlb.2MB.rsvd.max")
    };
    let limit = fs::read_to_string(Path::new(&dir).join(file)).expect("rsvd limit file");
    assert_eq!(
        limit.trim(),
        (3u64 * 2 * 1024 * 1024).to_string(),
        "{dir}/{file}"
    );
    pinc.ok(&["delete", "--force", &id]);
    assert!(!Path::new(&dir).exists(), "{dir} removed on delete");
}

#[test]
fn too_many_pages_or_an_unknown_size_fail_before_anything_exists() {
    require_root();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["true"]);
    bundle.add_env("PINC_HUGEPAGES=2M:100000");
    let err = pinc.fails(&[
        "create",
        "-b",
        bundle.path().to_str().expect("utf8"),
        &unique_id("hugebig"),
    ]);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("100000 x 2MB pages requested"), "{err}");
    assert!(pinc.leftovers().is_empty());

    let bundle = Bundle::new(&["true"]);
    bundle.add_env("PINC_HUGEPAGES=16M:1");
    let err = pinc.fails(&[
        "create",
        "-b",
        bundle.path().to_str().expect("utf8"),
        &unique_id("hugesize"),
    ]);
    assert!(err.contains("no 16MB pages"), "{err}");
    assert!(pinc.leftovers().is_empty());
}
