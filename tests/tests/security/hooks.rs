//! CVE-2025-23266 class: a runtime hook that inherits the container's
//! environment runs the image's LD_PRELOAD with the runtime's privileges
//! (NVIDIA's createContainer hook loaded a library from the rootfs). pinc's
//! own ld-cache hook (`pinc-hook ldconfig`, added by the devices stage for
//! GPU driver libraries) must run with a clean environment and never load
//! anything from the rootfs: here the container's environment preloads a
//! library from the rootfs, by absolute path, relative to the cwd and by
//! name through LD_LIBRARY_PATH, that leaves a marker on the host if any
//! process loads it. The ld cache is refreshed (the hook did run) and the
//! marker is absent.

use std::fs;
use std::process::Command;

use pinc_tests::devroot;
use pinc_tests::{output_via_files, require_root, stderr, stdout, unique_id, Pinc};

const NVML_GPUS: &str = "GPU-aaaa|00000000:06:00.0|1|Tesla V100-SXM2-16GB";

#[test]
fn ld_cache_hook_ignores_the_images_ld_preload() {
    require_root();
    let node = devroot::new_root("pinc-evilnode-");
    devroot::gpu(node.path(), "0000:06:00.0", 1, "GPU-aaaa");
    devroot::node(node.path(), "/dev/nvidiactl", 195, 255, 0o666);
    devroot::driver(node.path(), NVML_GPUS);

    let marks = tempfile::tempdir().expect("marker dir");
    let marker = marks.path().join("loaded");
    let bundle = super::writable_bundle(&[
        "sh",
        "-c",
        "grep -q libcuda.so.1 /etc/ld.so.cache && echo cache refreshed",
    ]);
    let rootfs = super::rootfs(&bundle);
    let src = marks.path().join("evil.c");
    fs::write(
        &src,
        format!(
            "#include <fcntl.h>\n#include <unistd.h>\n\
             __attribute__((constructor)) static void evil(void) {{\n\
               int fd = open(\"{}\", O_WRONLY | O_CREAT | O_APPEND, 0644);\n\
               char comm[64] = {{0}}; int c = open(\"/proc/self/comm\", O_RDONLY);\n\
               if (c >= 0) {{ read(c, comm, sizeof comm - 1); close(c); }}\n\
               if (fd >= 0) {{ write(fd, comm, sizeof comm - 1); close(fd); }}\n\
             }}\n",
            marker.display()
        ),
    )
    .expect("evil.c");
    let so = rootfs.join("evil.so");
    let out = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&so)
        .arg(&src)
        .output()
        .expect("cc");
    assert!(out.status.success(), "cc: {}", stderr(&out));
    // The library does what it says when a process does preload it.
    let probe = Command::new("/bin/true")
        .env("LD_PRELOAD", &so)
        .status()
        .expect("run /bin/true");
    assert!(probe.success());
    assert!(marker.exists(), "the marker library does not work");
    fs::remove_file(&marker).expect("rm marker");

    let rootfs_str = rootfs.to_str().expect("utf8");
    bundle.add_env("PINC_GPUS=0");
    bundle.add_env(&format!(
        "LD_PRELOAD={rootfs_str}/evil.so ./evil.so evil.so"
    ));
    bundle.add_env(&format!("LD_LIBRARY_PATH={rootfs_str}:."));
    bundle.add_env(&format!("LD_AUDIT={rootfs_str}/evil.so"));

    let pinc = Pinc::new();
    let id = unique_id("evil");
    let mut cmd = pinc.cmd(&["run", "-b", bundle.path().to_str().expect("utf8"), &id]);
    cmd.env("PINC_DEVICE_ROOT", node.path());
    let out = output_via_files(cmd);
    let _ = pinc.output(&["delete", "--force", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "cache refreshed\n", "{}", stderr(&out));
    assert!(
        !marker.exists(),
        "a process loaded the image's LD_PRELOAD library: {}",
        fs::read_to_string(&marker)
            .unwrap_or_default()
            .replace('\0', "")
    );
}

/// CDI hooks run with the environment the admin's spec gives them, never
/// the container's. libcontainer starts a startContainer hook that has no
/// `env` with the container's process env (runc gives it none), so a hook
/// binary mounted in from the host would run the image's LD_PRELOAD with
/// the runtime's capabilities. Each hook here records its environment.
#[test]
fn cdi_hooks_do_not_inherit_the_containers_environment() {
    require_root();
    let specs = tempfile::tempdir().expect("tempdir");
    let bundle = super::writable_bundle(&["true"]);
    let rootfs = super::rootfs(&bundle);
    let create_env = rootfs.join("create-env");
    fs::write(
        specs.path().join("hooked.yaml"),
        format!(
            "cdiVersion: \"0.6.0\"\nkind: vendor.example/hooked\n\
             devices:\n\
             - name: dev0\n  containerEdits:\n    hooks:\n\
             \x20   - hookName: startContainer\n      path: /bin/sh\n      args: [sh, -c, \"env > /start-env\"]\n\
             \x20   - hookName: createContainer\n      path: /bin/sh\n      args: [sh, -c, \"env > {}\"]\n",
            create_env.display()
        ),
    )
    .expect("spec");
    bundle.edit(|c| {
        c["annotations"]["cdi.k8s.io/hooked"] = "vendor.example/hooked=dev0".into();
    });
    bundle.add_env("LD_PRELOAD=/evil.so");
    bundle.add_env("IMAGE_SECRET=from-the-image");

    let pinc = Pinc::new();
    let id = unique_id("cdihook");
    let mut cmd = pinc.cmd(&["run", "-b", bundle.path().to_str().expect("utf8"), &id]);
    cmd.env("PINC_CDI_SPEC_DIRS", specs.path());
    let out = output_via_files(cmd);
    let _ = pinc.output(&["delete", "--force", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    for (stage, file) in [
        ("startContainer", rootfs.join("start-env")),
        ("createContainer", create_env),
    ] {
        let env = fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("the {stage} hook did not run ({e})"));
        assert!(
            !env.contains("LD_PRELOAD") && !env.contains("IMAGE_SECRET"),
            "the {stage} hook got the container's environment:\n{env}"
        );
    }
}

/// The same for hooks in config.json: a runtime-side or createContainer
/// hook without `env` gets an empty environment, not the container's
/// process env. runc 1.1.5 fails this (its createContainer hooks inherit
/// runc init's environment, which is the container's by then: the hole
/// NVIDIAScape used). startContainer is left out: it runs the container's
/// own binary inside the container, and libcontainer, like runc, gives it
/// the container's env.
#[test]
fn config_hooks_without_env_get_an_empty_environment() {
    require_root();
    let bundle = super::writable_bundle(&["true"]);
    let rootfs = super::rootfs(&bundle);
    let stages = ["createRuntime", "createContainer", "prestart", "poststart"];
    let file = |stage: &str| rootfs.join(format!("{stage}-env"));
    bundle.edit(|c| {
        for stage in stages {
            let script = format!("env > {}", file(stage).display());
            c["hooks"][stage] =
                serde_json::json!([{"path": "/bin/sh", "args": ["sh", "-c", script]}]);
        }
    });
    bundle.add_env("LD_PRELOAD=/evil.so");
    bundle.add_env("IMAGE_SECRET=from-the-image");

    let pinc = Pinc::new();
    let id = unique_id("cfghook");
    let out = pinc.output(&["run", "-b", bundle.path().to_str().expect("utf8"), &id]);
    let _ = pinc.output(&["delete", "--force", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    for stage in stages {
        let env = fs::read_to_string(file(stage))
            .unwrap_or_else(|e| panic!("the {stage} hook did not run ({e})"));
        assert!(
            !env.contains("LD_PRELOAD") && !env.contains("IMAGE_SECRET"),
            "the {stage} hook got the container's environment:\n{env}"
        );
    }
}

/// The ld-cache hook runs before pivot_root with the container's /proc
/// mounted in the rootfs, where /proc/1/root is the host's `/` (the init
/// has not pivoted yet): ldconfig's chroot does not stop magic links. An
/// image whose ld.so.conf names /proc/1/root/<host dir> must not get
/// ldconfig to write soname links into that host directory.
#[test]
fn ld_cache_hook_cannot_reach_the_host_through_proc() {
    require_root();
    let node = devroot::new_root("pinc-ldnode-");
    devroot::gpu(node.path(), "0000:06:00.0", 1, "GPU-aaaa");
    devroot::node(node.path(), "/dev/nvidiactl", 195, 255, 0o666);
    devroot::driver(node.path(), NVML_GPUS);

    let host = super::decoy("pinc-decoy-ld-");
    let src = host.path().join("foo.c");
    fs::write(&src, "int foo(void) { return 1; }\n").expect("foo.c");
    let out = Command::new("cc")
        .args(["-shared", "-fPIC", "-Wl,-soname,libfoo.so.1", "-o"])
        .arg(host.path().join("libfoo.so.1.2"))
        .arg(&src)
        .output()
        .expect("cc");
    assert!(out.status.success(), "cc: {}", stderr(&out));
    let before = super::snapshot(host.path());

    let bundle = super::writable_bundle(&[
        "sh",
        "-c",
        "grep -q libcuda.so.1 /etc/ld.so.cache && echo cache refreshed",
    ]);
    let etc = super::rootfs(&bundle).join("etc");
    fs::write(
        etc.join("ld.so.conf"),
        format!("/proc/1/root{}\n", host.path().display()),
    )
    .expect("ld.so.conf");
    bundle.add_env("PINC_GPUS=0");

    let pinc = Pinc::new();
    let id = unique_id("ldproc");
    let mut cmd = pinc.cmd(&["run", "-b", bundle.path().to_str().expect("utf8"), &id]);
    cmd.env("PINC_DEVICE_ROOT", node.path());
    let out = output_via_files(cmd);
    let _ = pinc.output(&["delete", "--force", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "cache refreshed\n", "{}", stderr(&out));
    assert_eq!(
        super::snapshot(host.path()),
        before,
        "ldconfig wrote into a host directory through /proc/1/root"
    );
}

/// The image's whole /etc as a link through /proc/1/root: ldconfig would
/// write the host directory's ld.so.cache. Refusing the container is fine.
#[test]
fn ld_cache_hook_cannot_write_a_host_cache_through_an_etc_link() {
    require_root();
    let node = devroot::new_root("pinc-ldnode-");
    devroot::gpu(node.path(), "0000:06:00.0", 1, "GPU-aaaa");
    devroot::node(node.path(), "/dev/nvidiactl", 195, 255, 0o666);
    devroot::driver(node.path(), NVML_GPUS);
    let host = super::decoy("pinc-decoy-ldetc-");
    let pinc = Pinc::new();
    let host_etc = host.path().join("etc");
    fs::create_dir(&host_etc).expect("mkdir");
    fs::write(host_etc.join("ld.so.conf"), "/usr/lib\n").expect("ld.so.conf");
    let before = super::snapshot(host.path());
    let bundle = super::writable_bundle(&["true"]);
    let etc = super::rootfs(&bundle).join("etc");
    fs::remove_dir_all(&etc).expect("rm etc");
    // Relative, so it resolves through the container's /proc from the
    // hook's view too (the hook checks /etc before running ldconfig).
    std::os::unix::fs::symlink(format!("proc/1/root{}", host_etc.display()), &etc)
        .expect("symlink");
    bundle.add_env("PINC_GPUS=0");
    let id = unique_id("ldproc");
    let mut cmd = pinc.cmd(&["run", "-b", bundle.path().to_str().expect("utf8"), &id]);
    cmd.env("PINC_DEVICE_ROOT", node.path());
    let out = output_via_files(cmd);
    let _ = pinc.output(&["delete", "--force", &id]);
    assert_eq!(
        super::snapshot(host.path()),
        before,
        "ldconfig wrote a host ld cache through an /etc link to /proc/1/root ({})",
        stderr(&out)
    );
}
