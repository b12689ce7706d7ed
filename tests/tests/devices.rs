//! GPU and RDMA device injection on a fixture device tree (this machine has
//! neither): real device nodes made with mknod, the driver's procfs/sysfs
//! layout, and a real container that gets exactly the devices it asked for.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use pinc_tests::{require_root, stderr, stdout, unique_id, Bundle, Pinc};

fn node(root: &Path, path: &str, major: u64, minor: u64) {
    pinc_tests::devroot::node(root, path, major, minor, 0o666);
}

/// Two GPUs (minors 0 and 1) and one HCA, as the NVIDIA and RDMA drivers lay them out.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("pinc-devroot-")
        .tempdir()
        .expect("tempdir");
    let root = dir.path();
    for (bus, minor, uuid) in [
        ("0000:06:00.0", 0, "GPU-aaaa"),
        ("0000:07:00.0", 1, "GPU-bbbb"),
    ] {
        let d = root.join("proc/driver/nvidia/gpus").join(bus);
        fs::create_dir_all(&d).expect("mkdir");
        fs::write(
            d.join("information"),
            format!("Model: \t\t Tesla V100\nIRQ:   \t\t 42\nGPU UUID: \t {uuid}\nBus Location: \t {bus}\nDevice Minor: \t {minor}\n"),
        )
        .expect("information");
        node(root, &format!("/dev/nvidia{minor}"), 195, minor);
    }
    node(root, "/dev/nvidiactl", 195, 255);
    let ib = root.join("sys/class/infiniband/mlx5_0");
    let pci = root.join("sys/devices/pci0000:00/0000:05:00.0");
    fs::create_dir_all(&ib).expect("mkdir");
    fs::create_dir_all(&pci).expect("mkdir");
    fs::write(pci.join("numa_node"), "0\n").expect("numa");
    symlink(&pci, ib.join("device")).expect("symlink");
    let verbs = root.join("sys/class/infiniband_verbs/uverbs0");
    fs::create_dir_all(&verbs).expect("mkdir");
    fs::write(verbs.join("ibdev"), "mlx5_0\n").expect("ibdev");
    node(root, "/dev/infiniband/uverbs0", 231, 192);
    node(root, "/dev/infiniband/rdma_cm", 10, 58);
    dir
}

/// Runs pinc with the fixture as its device root.
fn run_on(pinc: &Pinc, devroot: &tempfile::TempDir, args: &[&str]) -> std::process::Output {
    let mut cmd = pinc.cmd(args);
    cmd.env("PINC_DEVICE_ROOT", devroot.path());
    pinc_tests::output_via_files(cmd)
}

#[test]
fn a_requested_gpu_appears_and_others_are_denied() {
    require_root();
    let devroot = fixture();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&[
        "sh",
        "-c",
        "stat -c '%n %t:%T' /dev/nvidia0 /dev/nvidiactl; ls /dev/nvidia1 2>&1; \
         cat /dev/nvidia0 2>&1; cat /mnt/nvidia1 2>&1; true",
    ]);
    bundle.add_env("PINC_GPUS=0");
    // The GPU it was not given, bind-mounted in: the device cgroup must refuse it.
    let other = devroot.path().join("dev/nvidia1");
    bundle.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .expect("mounts")
            .push(serde_json::json!({
                "destination": "/mnt/nvidia1", "type": "bind", "source": other, "options": ["bind"]
            }));
    });
    let out = run_on(
        &pinc,
        &devroot,
        &[
            "run",
            "-b",
            bundle.path().to_str().expect("utf8"),
            &unique_id("gpu"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "/dev/nvidia0 c3:0", "{text}");
    assert_eq!(lines[1], "/dev/nvidiactl c3:ff", "{text}");
    assert!(
        lines[2].contains("No such file"),
        "GPU 1 not injected: {text}"
    );
    assert!(
        lines[3].contains("No such device or address"),
        "the cgroup lets GPU 0 through (no driver here): {text}"
    );
    assert!(
        lines[4].contains("Operation not permitted"),
        "the cgroup denies GPU 1: {text}"
    );
}

#[test]
fn rdma_and_nvidia_visible_devices() {
    require_root();
    let devroot = fixture();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&[
        "sh",
        "-c",
        "ls /dev/infiniband; ls /dev | grep -c nvidia; true",
    ]);
    bundle.add_env("PINC_RDMA=mlx5_0");
    bundle.add_env("NVIDIA_VISIBLE_DEVICES=none");
    let out = run_on(
        &pinc,
        &devroot,
        &[
            "run",
            "-b",
            bundle.path().to_str().expect("utf8"),
            &unique_id("rdma"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "rdma_cm\nuverbs0\n0\n",
        "HCA nodes, no GPU (NVIDIA_VISIBLE_DEVICES=none)"
    );
}

#[test]
fn unknown_devices_fail_before_anything_exists() {
    require_root();
    let devroot = fixture();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["true"]);
    bundle.add_env("PINC_GPUS=GPU-cccc");
    let id = unique_id("nogpu");
    let out = run_on(
        &pinc,
        &devroot,
        &["create", "-b", bundle.path().to_str().expect("utf8"), &id],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("GPU-cccc") && err.contains("GPU-aaaa"),
        "names the selector and what exists: {err}"
    );
    assert!(pinc.leftovers().is_empty());
}
