//! RDMA HCAs on a fixture device root: the chosen HCA's nodes, a
//! /sys/class view that shows only it, and the memlock limit.
//!
//! The container's /sys is the fixture's sys folder (bind-mounted in place
//! of sysfs), so the masks are checked against a tree that has HCAs.

use pinc_tests::devroot;
use pinc_tests::{require_root, stderr, stdout, unique_id, Bundle, Pinc};

#[test]
fn only_the_chosen_hca_is_visible() {
    require_root();
    let root = devroot::new_root("pinc-hcanode-");
    devroot::two_hcas(root.path());
    let pinc = Pinc::new();
    let bundle = Bundle::new(&[
        "sh",
        "-c",
        "ls /sys/class/infiniband; ls /sys/class/infiniband_verbs; ls /sys/class/infiniband_mad; \
         cat /sys/class/infiniband/mlx5_1/ports/1/state; ls /dev/infiniband; ulimit -l; \
         touch /sys/class/infiniband/mlx5_1/x 2>&1; true",
    ]);
    bundle.add_env("PINC_RDMA=mlx5_1");
    let sys = root.path().join("sys");
    // The spec mounts cgroupfs under /sys: the fixture needs its mount point.
    std::fs::create_dir_all(sys.join("fs/cgroup")).expect("mkdir");
    bundle.edit(|c| {
        let mounts = c["mounts"].as_array_mut().expect("mounts");
        let m = mounts
            .iter_mut()
            .find(|m| m["destination"] == "/sys")
            .expect("a /sys mount");
        *m = serde_json::json!({
            "destination": "/sys", "type": "bind", "source": sys, "options": ["rbind", "ro"]
        });
    });
    let mut cmd = pinc.cmd(&[
        "run",
        "-b",
        bundle.path().to_str().expect("utf8"),
        &unique_id("hca"),
    ]);
    cmd.env("PINC_DEVICE_ROOT", root.path());
    let out = pinc_tests::output_via_files(cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..9],
        [
            "mlx5_1",
            "abi_version",
            "uverbs1",
            "abi_version",
            "umad1",
            "4: ACTIVE",
            "rdma_cm",
            "umad1",
            "uverbs1",
        ],
        "{text}"
    );
    // Root here lacks CAP_SYS_RESOURCE and its hard memlock limit is finite:
    // the container gets that limit, and pinc says why.
    let hard_kib = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_MEMLOCK)
        .expect("getrlimit")
        .1
        / 1024;
    assert_eq!(lines[9], hard_kib.to_string(), "{text}");
    assert!(lines[10].contains("Read-only file system"), "{text}");
    let err = stderr(&out);
    assert!(err.contains("RLIMIT_MEMLOCK stays at"), "{err}");
}
