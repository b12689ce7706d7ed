//! pinc's devices for podman + runc / crun, through hooks.d: the packaged
//! `packaging/hooks.d/pinc-devices.json` (its `hook.path` pointed at the
//! built `pinc-hook`, `PINC_DEVICE_ROOT` at a two-GPU fixture) in a
//! `--hooks-dir` of its own. podman runs `pinc-hook precreate` on the spec
//! before handing it to the runtime; the runtime then creates the GPU nodes,
//! mounts the driver libraries and runs the ld-cache hook (createContainer).
//!
//! crun 1.8 refuses hybrid cgroup hosts whose cgroup2 half has controllers
//! (this machine: hugetlb). As in bench/lifecycle, its podman runs in a
//! private mount namespace where /sys/fs/cgroup/unified is covered by an
//! empty tmpfs; the host's mounts are untouched.
//!
//! The `--ulimit` flags are needed on this machine: podman's default nofile
//! limit is above the hard limit root may set without CAP_SYS_RESOURCE.
//!
//! One #[test]: each scenario's failure is recorded and reported at the end.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pinc_tests::clients::Client;
use pinc_tests::daemons::{
    describe, require_bin, rootfs_tar, run_with_input, run_with_timeout, Podman, Scenarios,
    CMD_TIMEOUT,
};
use pinc_tests::devroot::{self, LIBDIR};
use pinc_tests::{require_root, stderr, stdout};
use serde_json::{json, Value};

const IMAGE: &str = "localhost/busybox:local";

/// NVML's view of `devroot::two_gpus`: index by PCI address, so GPU 0 is
/// the one at 06:00.0, minor 1 (procfs order would say minor 0).
const NVML_GPUS: &str =
    "GPU-aaaa|00000000:06:00.0|1|Tesla V100-SXM2-16GB;GPU-bbbb|00000000:07:00.0|0|Tesla V100-SXM2-16GB";

const UNIFIED: &str = "/sys/fs/cgroup/unified";

/// The packaged hooks.d file, checked and pointed at the binary under test.
fn hooks_json(pinc_hook: &Path, device_root: &Path) -> Value {
    let packaged =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/hooks.d/pinc-devices.json");
    let text = fs::read_to_string(&packaged).expect("read packaging/hooks.d/pinc-devices.json");
    let mut hook: Value = serde_json::from_str(&text).expect("the packaged hooks.d file is JSON");
    assert_eq!(hook["version"], "1.0.0", "{text}");
    assert_eq!(hook["hook"]["path"], "/usr/local/bin/pinc-hook", "{text}");
    assert_eq!(
        hook["hook"]["args"],
        json!(["pinc-hook", "precreate"]),
        "{text}"
    );
    assert_eq!(hook["stages"], json!(["precreate"]), "{text}");
    hook["hook"]["path"] = json!(pinc_hook.to_string_lossy());
    hook["hook"]["env"] = json!([format!("PINC_DEVICE_ROOT={}", device_root.display())]);
    hook
}

/// Whether crun would refuse this host: hybrid, with controllers on cgroup2.
fn crun_refuses_host() -> bool {
    fs::read_to_string(Path::new(UNIFIED).join("cgroup.controllers"))
        .is_ok_and(|c| !c.trim().is_empty())
}

/// `cmd` re-run in a private mount namespace with the cgroup2 half of the
/// hybrid layout hidden (for crun), keeping its environment.
fn hide_unified(cmd: &Command) -> Command {
    let script = format!(
        "umount -l {UNIFIED} && mount -t tmpfs -o size=4m,mode=755 pinc-test-unified {UNIFIED} && exec \"$@\""
    );
    let mut wrapped = Command::new(require_bin("unshare", "util-linux"));
    wrapped
        .args([
            "-m",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            &script,
            "sh",
        ])
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => wrapped.env(k, v),
            None => wrapped.env_remove(k),
        };
    }
    wrapped
}

/// One runtime under podman, with the hooks dir.
struct Setup {
    podman: Podman,
    hooks: PathBuf,
    private_cgroup_view: bool,
}

impl Setup {
    fn new(runtime: &Path, hook: &Value) -> Self {
        assert!(runtime.is_file(), "{} is not installed", runtime.display());
        let podman = Podman::new(runtime);
        let hooks = podman.dir().join("hooks.d");
        fs::create_dir_all(&hooks).expect("hooks dir");
        fs::write(
            hooks.join("pinc-devices.json"),
            serde_json::to_vec_pretty(hook).expect("json"),
        )
        .expect("write the hooks.d file");
        let tar = rootfs_tar(podman.dir());
        podman.ok(&["import", &tar.to_string_lossy(), IMAGE]);
        let used = podman.ok(&["info", "--format", "{{.Host.OCIRuntime.Path}}"]);
        assert_eq!(used.trim(), runtime.to_string_lossy(), "podman's runtime");
        let private_cgroup_view = runtime.ends_with("crun") && crun_refuses_host();
        Self {
            podman,
            hooks,
            private_cgroup_view,
        }
    }

    /// `podman --hooks-dir <hooks> run --network none ... extra...`
    fn run(&self, extra: &[&str]) -> Output {
        let hooks = self.hooks.to_string_lossy();
        let mut args = vec!["--hooks-dir", hooks.as_ref()];
        args.extend_from_slice(self.podman.run_prefix());
        args.extend_from_slice(extra);
        let cmd = self.podman.podman(&args);
        let mut cmd = if self.private_cgroup_view {
            hide_unified(&cmd)
        } else {
            cmd
        };
        run_with_timeout(&mut cmd, CMD_TIMEOUT)
    }
}

/// What a container given NVML's GPU 0 sees.
fn gpu_script() -> String {
    format!(
        "stat -c '%n %t:%T' /dev/nvidia1 /dev/nvidiactl; \
         ls /dev | grep '^nvidia[0-9]'; \
         grep ' {LIBDIR}/libcuda.so.1 ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1; \
         dd if={LIBDIR}/libcuda.so.1 bs=1 skip=1 count=3 2>/dev/null; echo; \
         touch {LIBDIR}/libcuda.so.1 2>&1; \
         grep -q libcuda.so.1 /etc/ld.so.cache && echo 'ld cache lists libcuda.so.1'"
    )
}

fn check_gpu_0(out: &Output) {
    assert!(out.status.success(), "{}", describe(out));
    let text = stdout(out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7, "{}", describe(out));
    assert_eq!(
        lines[..2],
        ["/dev/nvidia1 c3:1", "/dev/nvidiactl c3:ff"],
        "NVML's GPU 0 is the one at 06:00.0, minor 1: {text}"
    );
    assert_eq!(lines[2], "nvidia1", "only GPU 0's node: {text}");
    assert_eq!(lines[3], "ro", "libcuda.so.1 is mounted read-only: {text}");
    assert_eq!(lines[4], "ELF", "the real library is mounted: {text}");
    assert!(lines[5].contains("Read-only file system"), "{text}");
    assert_eq!(
        lines[6], "ld cache lists libcuda.so.1",
        "the ld-cache hook ran: {text}"
    );
}

/// What a container without a request sees (busybox has no ld cache).
const PLAIN_SCRIPT: &str = "echo \"gpu nodes: $(ls /dev | grep -c nvidia)\"; \
     echo \"driver mounts: $(grep -c -e nvidia -e libcuda /proc/mounts)\"; \
     test -e /etc/ld.so.cache && echo 'ld cache' || echo 'no ld cache'";

fn check_plain(out: &Output) {
    assert!(out.status.success(), "{}", describe(out));
    assert_eq!(
        stdout(out),
        "gpu nodes: 0\ndriver mounts: 0\nno ld cache\n",
        "{}",
        describe(out)
    );
}

#[test]
fn podman_hooks_d_gives_runc_and_crun_pinc_devices() {
    require_root();
    let pinc_hook = devroot::pinc_hook_bin();
    let pinc_hook = pinc_hook.canonicalize().unwrap_or(pinc_hook);
    let fixture = devroot::new_root("pinc-hooksd-");
    devroot::two_gpus(fixture.path());
    devroot::driver(fixture.path(), NVML_GPUS);
    let hook = hooks_json(&pinc_hook, fixture.path());
    let script = gpu_script();

    let mut s = Scenarios::new();
    for runtime in ["/usr/bin/runc", "/usr/bin/crun"] {
        let name = Path::new(runtime)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let setup = Setup::new(Path::new(runtime), &hook);

        s.run(&format!("{name}: --annotation pinc.io/gpus=0"), || {
            check_gpu_0(&setup.run(&[
                "--rm",
                "--annotation",
                "pinc.io/gpus=0",
                IMAGE,
                "sh",
                "-c",
                &script,
            ]));
        });

        s.run(&format!("{name}: --env PINC_GPUS=0"), || {
            check_gpu_0(&setup.run(&["--rm", "--env", "PINC_GPUS=0", IMAGE, "sh", "-c", &script]));
        });

        s.run(&format!("{name}: no request, no GPU"), || {
            check_plain(&setup.run(&["--rm", IMAGE, "sh", "-c", PLAIN_SCRIPT]));
        });

        if name == "runc" {
            s.run(
                "runc: the spec of a container without a request is untouched",
                || {
                    let ctr = "plain";
                    check_plain(&setup.run(&["--name", ctr, IMAGE, "sh", "-c", PLAIN_SCRIPT]));
                    let id = setup
                        .podman
                        .ok(&["inspect", "--format", "{{.ID}}", ctr])
                        .trim()
                        .to_string();
                    let config = setup
                        .podman
                        .dir()
                        .join("root/overlay-containers")
                        .join(&id)
                        .join("userdata/config.json");
                    let written = fs::read(&config).expect("podman's config.json");
                    setup.podman.ok(&["rm", ctr]);
                    // podman wrote what the hook returned; fed back, it comes
                    // back byte for byte.
                    let mut again = Command::new(&pinc_hook);
                    again
                        .arg("precreate")
                        .env_clear()
                        .env("PINC_DEVICE_ROOT", fixture.path());
                    let out = run_with_input(&mut again, &written, CMD_TIMEOUT);
                    assert!(out.status.success(), "{}", describe(&out));
                    assert!(
                        out.stdout == written,
                        "pinc-hook precreate changed a spec without requests: {}",
                        describe(&out)
                    );
                },
            );

            s.run("runc: a refused request fails the container", || {
                let out = setup.run(&["--rm", "--annotation", "pinc.io/gpus=7", IMAGE, "true"]);
                assert!(!out.status.success(), "{}", describe(&out));
                assert!(
                    stderr(&out).contains("precreate hook"),
                    "{}",
                    describe(&out)
                );
            });
        }

        s.run(&format!("{name}: no containers left"), || {
            let left = setup.podman.ok(&["ps", "-aq"]);
            assert!(left.trim().is_empty(), "containers left: {left}");
        });
    }
    s.finish();
}
