//! CDI: devices described by an admin's spec files (JSON or YAML) requested
//! through `cdi.k8s.io/*` annotations, applied by pinc itself; and specs
//! written by `pinc-hook cdi generate` for the GPUs and HCAs found.

use std::fs;
use std::path::Path;
use std::process::Command;

use pinc_tests::devroot::{self, LIBDIR};
use pinc_tests::{require_root, stderr, stdout, unique_id, Bundle, Pinc};

fn annotate(bundle: &Bundle, key: &str, value: &str) {
    bundle.edit(|c| {
        c["annotations"][key] = serde_json::Value::String(value.to_string());
    });
}

fn run(pinc: &Pinc, bundle: &Bundle, cdi_dirs: &Path, verb: &str) -> std::process::Output {
    let id = unique_id("cdi");
    let mut cmd = pinc.cmd(&[verb, "-b", bundle.path().to_str().expect("utf8"), &id]);
    cmd.env("PINC_CDI_SPEC_DIRS", cdi_dirs);
    pinc_tests::output_via_files(cmd)
}

/// An FPGA-like vendor device: two nodes, a data folder, env and a group.
fn fpga_spec(root: &Path, dir: &Path) {
    devroot::node(root, "/dev/fpga0", 240, 0, 0o666);
    devroot::node(root, "/dev/fpga1", 240, 1, 0o666);
    fs::create_dir_all(root.join("opt/fpga")).expect("mkdir");
    fs::write(root.join("opt/fpga/bitstream"), "bits\n").expect("bitstream");
    let r = root.display();
    fs::write(
        dir.join("vendor-fpga.yaml"),
        format!(
            "cdiVersion: \"0.7.0\"\nkind: vendor.example/fpga\n\
             containerEdits:\n  env: [\"FPGA_RUNTIME=pinc\"]\n\
             devices:\n\
             - name: fpga0\n  containerEdits:\n\
             \x20   deviceNodes:\n    - path: /dev/fpga0\n      hostPath: {r}/dev/fpga0\n      permissions: rw\n\
             \x20   mounts:\n    - hostPath: {r}/opt/fpga\n      containerPath: /opt/fpga\n      options: [ro, bind]\n\
             \x20   env: [\"FPGA_DEVICE=fpga0\"]\n\
             \x20   additionalGids: [4242]\n\
             - name: fpga1\n  containerEdits:\n\
             \x20   deviceNodes:\n    - path: /dev/fpga1\n      hostPath: {r}/dev/fpga1\n"
        ),
    )
    .expect("spec");
}

#[test]
fn a_cdi_device_appears_with_its_edits() {
    require_root();
    let root = devroot::new_root("pinc-cdiroot-");
    let specs = tempfile::tempdir().expect("tempdir");
    fpga_spec(root.path(), specs.path());
    let pinc = Pinc::new();
    let bundle = Bundle::new(&[
        "sh",
        "-c",
        "stat -c '%n %t:%T' /dev/fpga0; ls /dev/fpga1 2>&1; echo $FPGA_RUNTIME $FPGA_DEVICE; \
         cat /opt/fpga/bitstream; id -G; cat /dev/fpga0 2>&1; cat /mnt/fpga1 2>&1; true",
    ]);
    annotate(&bundle, "cdi.k8s.io/fpga", "vendor.example/fpga=fpga0");
    let other = root.path().join("dev/fpga1");
    bundle.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .expect("mounts")
            .push(serde_json::json!({
                "destination": "/mnt/fpga1", "type": "bind", "source": other, "options": ["bind"]
            }));
    });
    let out = run(&pinc, &bundle, specs.path(), "run");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "/dev/fpga0 f0:0", "{text}");
    assert!(
        lines[1].contains("No such file"),
        "fpga1 not requested: {text}"
    );
    assert_eq!(lines[2], "pinc fpga0", "{text}");
    assert_eq!(lines[3], "bits", "{text}");
    assert_eq!(lines[4], "0 4242", "{text}");
    assert!(
        lines[5].contains("No such device or address"),
        "the cgroup lets fpga0 through (no driver here): {text}"
    );
    assert!(
        lines[6].contains("Operation not permitted"),
        "the cgroup denies fpga1: {text}"
    );
}

#[test]
fn bad_cdi_specs_and_unknown_devices_fail_clearly() {
    require_root();
    let root = devroot::new_root("pinc-cdibad-");
    let specs = tempfile::tempdir().expect("tempdir");
    fpga_spec(root.path(), specs.path());
    let pinc = Pinc::new();

    let unknown = Bundle::new(&["true"]);
    annotate(&unknown, "cdi.k8s.io/fpga", "vendor.example/fpga=fpga7");
    let out = run(&pinc, &unknown, specs.path(), "create");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("fpga7") && err.contains("fpga0"), "{err}");

    let bad = specs.path().join("broken.json");
    fs::write(
        &bad,
        "{\"cdiVersion\": \"0.2.0\", \"kind\": \"x.example/y\", \"devices\": []}",
    )
    .expect("bad spec");
    let good = Bundle::new(&["true"]);
    annotate(&good, "cdi.k8s.io/fpga", "vendor.example/fpga=fpga0");
    let out = run(&pinc, &good, specs.path(), "create");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains(bad.to_str().expect("utf8")) && err.contains("0.2.0"),
        "names the file and what is wrong: {err}"
    );
    assert!(pinc.leftovers().is_empty(), "{:?}", pinc.leftovers());
}

#[test]
fn generated_specs_give_gpus_and_hcas() {
    require_root();
    let root = devroot::new_root("pinc-cdigen-");
    devroot::two_gpus(root.path());
    devroot::driver(
        root.path(),
        "GPU-aaaa|00000000:06:00.0|1|Tesla V100;GPU-bbbb|00000000:07:00.0|0|Tesla V100",
    );
    devroot::two_hcas(root.path());
    let specs = tempfile::tempdir().expect("tempdir");
    let out = Command::new(devroot::pinc_hook_bin())
        .args(["cdi", "generate", "--output-dir"])
        .arg(specs.path())
        .env("PINC_DEVICE_ROOT", root.path())
        .output()
        .expect("pinc-hook");
    assert!(out.status.success(), "{}", stderr(&out));
    let written = stdout(&out);
    assert_eq!(written.lines().count(), 2, "{written}");
    let gpu_yaml = fs::read_to_string(specs.path().join("pinc-nvidia-gpu.yaml")).expect("gpu spec");
    assert!(gpu_yaml.contains("kind: nvidia.com/gpu"), "{gpu_yaml}");

    let pinc = Pinc::new();
    let bundle = Bundle::new(&[
        "sh",
        "-c",
        &format!(
            "ls /dev | grep nvidia; ls /dev/infiniband; \
             grep -q libcuda.so.1 /etc/ld.so.cache && echo cached; touch {LIBDIR}/libcuda.so.1 2>&1; true"
        ),
    ]);
    annotate(&bundle, "cdi.k8s.io/gpu", "nvidia.com/gpu=GPU-aaaa");
    annotate(&bundle, "cdi.k8s.io/hca", "pinc.io/rdma=mlx5_1");
    let out = run(&pinc, &bundle, specs.path(), "run");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..6],
        [
            "nvidia-uvm",
            "nvidia1",
            "nvidiactl",
            "rdma_cm",
            "umad1",
            "uverbs1"
        ],
        "{text}"
    );
    assert_eq!(lines[6], "cached", "{text}");
    assert!(lines[7].contains("Read-only file system"), "{text}");
}
