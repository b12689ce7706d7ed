//! GPUs with the driver's user space, on a fixture device root: NVML
//! discovery through the stand-in libnvidia-ml, driver libraries found in the
//! root's ld cache and mounted read-only, the ld-cache hook, driver
//! capabilities, and a caller's Slurm allocation.

use pinc_tests::devroot::{self, LIBDIR};
use pinc_tests::{require_root, stderr, stdout, unique_id, Bundle, Pinc};

/// NVML's view of `devroot::two_gpus`: index by PCI address.
const NVML_GPUS: &str =
    "GPU-aaaa|00000000:06:00.0|1|Tesla V100-SXM2-16GB;GPU-bbbb|00000000:07:00.0|0|Tesla V100-SXM2-16GB";

fn gpu_node() -> tempfile::TempDir {
    let root = devroot::new_root("pinc-gpunode-");
    devroot::two_gpus(root.path());
    devroot::driver(root.path(), NVML_GPUS);
    root
}

fn run(
    pinc: &Pinc,
    root: &std::path::Path,
    bundle: &Bundle,
    env: &[(&str, &str)],
) -> std::process::Output {
    let id = unique_id("gpu");
    let mut cmd = pinc.cmd(&["run", "-b", bundle.path().to_str().expect("utf8"), &id]);
    cmd.env("PINC_DEVICE_ROOT", root);
    for (k, v) in env {
        cmd.env(k, v);
    }
    pinc_tests::output_via_files(cmd)
}

#[test]
fn nvml_gpu_with_read_only_driver_libraries_and_ld_cache() {
    require_root();
    let root = gpu_node();
    let pinc = Pinc::new();
    let script = format!(
        "stat -c '%n %t:%T' /dev/nvidia1 /dev/nvidiactl /dev/nvidia-uvm; \
         ls /dev/nvidia0 2>&1; \
         ls {LIBDIR}; \
         dd if={LIBDIR}/libcuda.so.1 bs=1 skip=1 count=3 2>/dev/null; echo; \
         touch {LIBDIR}/libcuda.so.1 2>&1; \
         grep -q libcuda.so.1 /etc/ld.so.cache && echo 'ld cache lists libcuda.so.1'; \
         nvidia-smi -L"
    );
    let bundle = Bundle::new(&["sh", "-c", &script]);
    bundle.add_env("PINC_GPUS=0");
    let out = run(&pinc, root.path(), &bundle, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "/dev/nvidia1 c3:1",
            "/dev/nvidiactl c3:ff",
            "/dev/nvidia-uvm 1fc:0"
        ],
        "NVML's GPU 0 is the one at 06:00.0, minor 1: {text}"
    );
    assert!(
        lines[3].contains("No such file"),
        "GPU minor 0 not given: {text}"
    );
    assert_eq!(
        lines[4..7],
        [
            "libcuda.so.1",
            "libnvidia-ml.so.1",
            "libnvidia-ptxjitcompiler.so.1"
        ],
        "compute+utility libraries by soname: {text}"
    );
    assert_eq!(lines[7], "ELF", "the real library is mounted: {text}");
    assert!(lines[8].contains("Read-only file system"), "{text}");
    assert_eq!(lines[9], "ld cache lists libcuda.so.1", "{text}");
    assert_eq!(lines[10], "NVIDIA-SMI stand-in -L", "{text}");
    assert_eq!(lines.len(), 11, "{text}");
}

#[test]
fn driver_capabilities_choose_the_files() {
    require_root();
    let root = gpu_node();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["sh", "-c", &format!("ls {LIBDIR}; ls /usr/bin")]);
    bundle.add_env("PINC_GPUS=all");
    bundle.add_env("NVIDIA_DRIVER_CAPABILITIES=utility");
    let out = run(&pinc, root.path(), &bundle, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "libnvidia-ml.so.1\nnvidia-smi\n");

    let bad = Bundle::new(&["true"]);
    bad.add_env("PINC_GPUS=all");
    bad.add_env("NVIDIA_DRIVER_CAPABILITIES=compute,warp-drive");
    let out = run(&pinc, root.path(), &bad, &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("NVIDIA_DRIVER_CAPABILITIES") && err.contains("warp-drive"),
        "{err}"
    );
    assert!(pinc.leftovers().is_empty());
}

#[test]
fn a_slurm_job_gets_only_its_own_gpus() {
    require_root();
    // procfs only (no driver): GPU index = minor order.
    let root = devroot::new_root("pinc-slurmgpu-");
    devroot::two_gpus(root.path());
    let pinc = Pinc::new();
    let slurm = [("SLURM_JOB_ID", "4242"), ("SLURM_STEP_GPUS", "1")];

    let all = Bundle::new(&["sh", "-c", "ls /dev | grep '^nvidia[0-9]'"]);
    all.add_env("PINC_GPUS=all");
    let out = run(&pinc, root.path(), &all, &slurm);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "nvidia1\n", "all = the job's GPUs");

    let other = Bundle::new(&["true"]);
    other.add_env("PINC_GPUS=0");
    let out = run(&pinc, root.path(), &other, &slurm);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("GPU 0 (GPU-bbbb) is not in this Slurm job's allocation (SLURM_STEP_GPUS=1)"),
        "{err}"
    );
    assert!(pinc.leftovers().is_empty());

    // Outside a job the same request is fine.
    let out = run(&pinc, root.path(), &other, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// On a node with a real NVIDIA GPU and driver: `nvidia-smi -L` inside a
/// container that asked for all GPUs. The busybox image has no glibc, so
/// the host's is bind-mounted read-only for the driver's tools.
#[test]
#[ignore = "needs a real NVIDIA GPU and driver: cargo test --release -p pinc-tests --test gpus -- --ignored"]
fn real_gpu_nvidia_smi_inside() {
    require_root();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["nvidia-smi", "-L"]);
    bundle.add_env("PINC_GPUS=all");
    bundle.add_env("PATH=/usr/bin:/bin");
    bundle.edit(|c| {
        let mounts = c["mounts"].as_array_mut().expect("mounts");
        for dir in ["/lib", "/lib64", "/usr/lib"] {
            if std::path::Path::new(dir).exists() {
                mounts.push(serde_json::json!({
                    "destination": dir, "type": "bind", "source": dir, "options": ["rbind", "ro"]
                }));
            }
        }
    });
    let id = unique_id("realgpu");
    let out = pinc_tests::output_via_files(pinc.cmd(&[
        "run",
        "-b",
        bundle.path().to_str().expect("utf8"),
        &id,
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("GPU 0: "), "{}", stdout(&out));
}
