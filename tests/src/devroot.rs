//! Device roots: fixture trees standing in for a GPU/HCA node's /proc, /sys,
//! /dev and driver install (this machine has none). Device nodes are real
//! (mknod, the drivers' majors/minors); the driver libraries are real shared
//! objects with the right sonames, listed in a real ld cache built by
//! `ldconfig -r`; libnvidia-ml is the test-only NVML stand-in
//! (tests/fixtures/nvml/fake_nvml.c), so NVML discovery runs for real.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::sys::stat::{makedev, mknod, Mode, SFlag};

/// Where the fixture puts the driver's libraries (as on Debian/Ubuntu).
pub const LIBDIR: &str = "/usr/lib/x86_64-linux-gnu";
/// The stand-in driver's version, in the library file names.
pub const DRIVER: &str = "535.104.05";

/// A character device `<root>/<path>` with `mode`.
pub fn node(root: &Path, path: &str, major: u64, minor: u64, mode: u32) {
    let p = root.join(path.trim_start_matches('/'));
    fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    mknod(
        &p,
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(mode),
        makedev(major, minor),
    )
    .expect("mknod");
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A fresh, world-readable fixture root (rootless tests read it too).
pub fn new_root(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("tempdir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

/// One GPU as the driver's procfs shows it, with its /dev node.
pub fn gpu(root: &Path, bus: &str, minor: u64, uuid: &str) {
    let d = root.join("proc/driver/nvidia/gpus").join(bus);
    fs::create_dir_all(&d).expect("mkdir");
    fs::write(
        d.join("information"),
        format!(
            "Model: \t\t Tesla V100-SXM2-16GB\nIRQ:   \t\t 42\nGPU UUID: \t {uuid}\n\
             Bus Location: \t {bus}\nDevice Minor: \t {minor}\n"
        ),
    )
    .expect("information");
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

fn cc(args: &[&str]) {
    let out = Command::new("cc").args(args).output().expect("run cc");
    assert!(
        out.status.success(),
        "cc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A shared library `<root><LIBDIR>/<name>.so.<DRIVER>` with soname
/// `<name>.so.1`, and the soname symlink, as the driver installs them.
fn library(root: &Path, name: &str, source: &Path, defines: &[String]) {
    let dir = root.join(LIBDIR.trim_start_matches('/'));
    fs::create_dir_all(&dir).expect("mkdir");
    let file = format!("{name}.so.{DRIVER}");
    let out = dir.join(&file);
    let soname = format!("-Wl,-soname,{name}.so.1");
    let mut args = vec![
        "-shared",
        "-fPIC",
        soname.as_str(),
        "-o",
        out.to_str().expect("utf8"),
        source.to_str().expect("utf8"),
    ];
    args.extend(defines.iter().map(String::as_str));
    cc(&args);
    symlink(&file, dir.join(format!("{name}.so.1"))).expect("soname link");
}

/// The driver's user-space side: libcuda, libnvidia-ptxjitcompiler,
/// libnvidia-ml (the NVML stand-in reporting `nvml_gpus`, in its
/// FAKE_NVML_GPUS format), nvidia-smi (a script), and the ld cache listing
/// them. A library link pointing out of the root is planted too: it must
/// not be followed.
pub fn driver(root: &Path, nvml_gpus: &str) {
    let stub = root.join("stub.c");
    fs::write(&stub, "int pinc_stub(void) { return 42; }\n").expect("stub.c");
    for name in ["libcuda", "libnvidia-ptxjitcompiler"] {
        library(root, name, &stub, &[]);
    }
    let fake = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/nvml/fake_nvml.c");
    library(
        root,
        "libnvidia-ml",
        &fake,
        &[format!("-DFAKE_NVML_GPUS=\"{nvml_gpus}\"")],
    );
    fs::remove_file(&stub).expect("rm stub.c");
    let bin = root.join("usr/bin");
    fs::create_dir_all(&bin).expect("mkdir");
    fs::write(
        bin.join("nvidia-smi"),
        "#!/bin/sh\necho \"NVIDIA-SMI stand-in $*\"\n",
    )
    .expect("nvidia-smi");
    fs::set_permissions(bin.join("nvidia-smi"), fs::Permissions::from_mode(0o755)).expect("chmod");
    ldcache(root);
}

/// Rebuilds `<root>/etc/ld.so.cache` for LIBDIR with the host's ldconfig.
pub fn ldcache(root: &Path) {
    let etc = root.join("etc");
    fs::create_dir_all(&etc).expect("mkdir etc");
    fs::write(etc.join("ld.so.conf"), format!("{LIBDIR}\n")).expect("ld.so.conf");
    let out = Command::new("ldconfig")
        .arg("-r")
        .arg(root)
        .output()
        .expect("run ldconfig");
    assert!(
        out.status.success(),
        "ldconfig -r: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two HCAs (mlx5_0 at 0000:05:00.0, mlx5_1 at 0000:85:00.0), laid out as
/// sysfs does: class entries are symlinks into /sys/devices, each HCA with
/// uverbs and umad nodes, plus rdma_cm and the ABI version files.
pub fn two_hcas(root: &Path) {
    for (i, (hca, bus)) in [("mlx5_0", "0000:05:00.0"), ("mlx5_1", "0000:85:00.0")]
        .iter()
        .enumerate()
    {
        let pci = root.join(format!("sys/devices/pci0000:00/{bus}"));
        let dev = pci.join("infiniband").join(hca);
        fs::create_dir_all(dev.join("ports/1")).expect("mkdir");
        fs::write(dev.join("ports/1/state"), "4: ACTIVE\n").expect("state");
        fs::write(pci.join("numa_node"), "0\n").expect("numa_node");
        symlink(format!("../../../{bus}"), dev.join("device")).expect("device link");
        let class = root.join("sys/class/infiniband");
        fs::create_dir_all(&class).expect("mkdir");
        symlink(
            format!("../../devices/pci0000:00/{bus}/infiniband/{hca}"),
            class.join(hca),
        )
        .expect("class link");
        for (cls, prefix, minor) in [
            ("infiniband_verbs", "uverbs", 192 + i as u64),
            ("infiniband_mad", "umad", i as u64),
        ] {
            let entry = root.join(format!("sys/class/{cls}/{prefix}{i}"));
            fs::create_dir_all(&entry).expect("mkdir");
            fs::write(entry.join("ibdev"), format!("{hca}\n")).expect("ibdev");
            fs::write(root.join(format!("sys/class/{cls}/abi_version")), "6\n").expect("abi");
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
    root.join(path.trim_start_matches('/'))
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
