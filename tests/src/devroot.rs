//! Device roots: fixture trees standing in for a GPU/HCA node's /proc, /sys,
//! /dev and driver install (this machine has none). Device nodes are real
//! (mknod, the drivers' majors/minors); the driver libraries are real shared
//! objects with the right sonames, listed in a real ld cache built by
//! `ldconfig -r`; libnvidia-ml is the test-only NVML stand-in
//! (tests/fixtures/nvml/fake_nvml.c), so NVML discovery runs for real.

use std::path::{Path, PathBuf};

use pinc_testkit::tree::{self, SharedObject};

/// Where the fixture puts the driver's libraries (as on Debian/Ubuntu).
pub const LIBDIR: &str = "/usr/lib/x86_64-linux-gnu";
/// The stand-in driver's version, in the library file names.
pub const DRIVER: &str = "535.104.05";

/// A character device `<root>/<path>` with `mode`.
pub fn node(root: &Path, path: &str, major: u64, minor: u64, mode: u32) {
    tree::chardev(root, path, major, minor, mode);
}

/// A fresh, world-readable fixture root (rootless tests read it too).
pub fn new_root(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("tempdir");
    tree::chmod(dir.path(), 0o755);
    dir
}

/// One GPU as the driver's procfs shows it, with its /dev node.
pub fn gpu(root: &Path, bus: &str, minor: u64, uuid: &str) {
    tree::file(
        root,
        &format!("proc/driver/nvidia/gpus/{bus}/information"),
        format!(
            "Model: \t\t Tesla V100-SXM2-16GB\nIRQ:   \t\t 42\nGPU UUID: \t {uuid}\n\
             Bus Location: \t {bus}\nDevice Minor: \t {minor}\n"
        ),
    );
    node(root, &format!("/dev/nvidia{minor}"), 195, minor, 0o666);
}

/// Two GPUs whose minor order differs from their PCI (NVML) order:
/// 0000:06:00.0 is minor 1, 0000:07:00.0 is minor 0. procfs numbering
/// (by minor) makes GPU 0 the one at 07:00.0; NVML's (by bus) the one at
/// 06:00.0. Plus nvidiactl and nvidia-uvm.
pub fn two_gpus(root: &Path) {
    gpu(root, "0000:06:00.0", 1, "GPU-aaaa");
    gpu(root, "0000:07:00.0", 0, "GPU-bbbb");
    node(root, "/dev/nvidiactl", 195, 255, 0o666);
    node(root, "/dev/nvidia-uvm", 508, 0, 0o666);
}

/// A shared library `<root><LIBDIR>/<name>.so.<DRIVER>` with soname
/// `<name>.so.1`, and the soname symlink, as the driver installs them.
fn library(root: &Path, name: &str, compile: impl FnOnce(&Path, &str) -> SharedObject) {
    let file = format!("{name}.so.{DRIVER}");
    let soname = format!("{name}.so.1");
    compile(&tree::path(root, &format!("{LIBDIR}/{file}")), &soname).build();
    tree::symlink(root, &format!("{LIBDIR}/{soname}"), &file);
}

/// The driver's user-space side: libcuda, libnvidia-ptxjitcompiler,
/// libnvidia-ml (the NVML stand-in reporting `nvml_gpus`, in its
/// FAKE_NVML_GPUS format), nvidia-smi (a script), and the ld cache listing
/// them. A library link pointing out of the root is planted too: it must
/// not be followed.
pub fn driver(root: &Path, nvml_gpus: &str) {
    for name in ["libcuda", "libnvidia-ptxjitcompiler"] {
        library(root, name, SharedObject::new);
    }
    let fake = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/nvml/fake_nvml.c");
    library(root, "libnvidia-ml", |out, soname| {
        SharedObject::new(out, soname)
            .file(&fake)
            .define(&format!("FAKE_NVML_GPUS=\"{nvml_gpus}\""))
    });
    tree::file_with_mode(
        root,
        "usr/bin/nvidia-smi",
        "#!/bin/sh\necho \"NVIDIA-SMI stand-in $*\"\n",
        0o755,
    );
    ldcache(root);
}

/// Rebuilds `<root>/etc/ld.so.cache` for LIBDIR with the host's ldconfig.
pub fn ldcache(root: &Path) {
    tree::ldconfig(root, &[LIBDIR], None);
}

/// Two HCAs (mlx5_0 at 0000:05:00.0, mlx5_1 at 0000:85:00.0), laid out as
/// sysfs does: class entries are symlinks into /sys/devices, each HCA with
/// uverbs and umad nodes, plus rdma_cm and the ABI version files.
pub fn two_hcas(root: &Path) {
    for (i, (hca, bus)) in [("mlx5_0", "0000:05:00.0"), ("mlx5_1", "0000:85:00.0")]
        .iter()
        .enumerate()
    {
        let pci = format!("sys/devices/pci0000:00/{bus}");
        let dev = format!("{pci}/infiniband/{hca}");
        tree::file(root, &format!("{dev}/ports/1/state"), "4: ACTIVE\n");
        tree::file(root, &format!("{pci}/numa_node"), "0\n");
        tree::symlink(root, &format!("{dev}/device"), format!("../../../{bus}"));
        tree::symlink(
            root,
            &format!("sys/class/infiniband/{hca}"),
            format!("../../devices/pci0000:00/{bus}/infiniband/{hca}"),
        );
        for (cls, prefix, minor) in [
            ("infiniband_verbs", "uverbs", 192 + i as u64),
            ("infiniband_mad", "umad", i as u64),
        ] {
            tree::file(
                root,
                &format!("sys/class/{cls}/{prefix}{i}/ibdev"),
                format!("{hca}\n"),
            );
            tree::file(root, &format!("sys/class/{cls}/abi_version"), "6\n");
            node(
                root,
                &format!("/dev/infiniband/{prefix}{i}"),
                231,
                minor,
                0o666,
            );
        }
    }
    node(root, "/dev/infiniband/rdma_cm", 10, 58, 0o666);
}

/// Paths of a fixture, for messages.
pub fn host(root: &Path, path: &str) -> PathBuf {
    tree::path(root, path)
}

/// The `pinc-hook` binary built beside pinc.
pub fn pinc_hook_bin() -> PathBuf {
    let bin = crate::pinc_bin().with_file_name("pinc-hook");
    assert!(
        bin.exists(),
        "{} is missing: cargo build --release -p pinc-hook",
        bin.display()
    );
    bin
}
