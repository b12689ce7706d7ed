//! `srun --container` with pinc as Slurm's OCI runtime (Slurm 22.05), on a
//! private one-node cluster, with the packaged oci.conf files.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use pinc_tests::daemons::{pinc_abs, Scenarios};
use pinc_tests::slurm::{packaged_oci_conf, Slurm};
use pinc_tests::{make_rootfs, output_via_files, require_root, stderr, stdout, Bundle};

const USER: &str = pinc_tests::ROOTLESS_USER;

fn describe(out: &Output) -> String {
    format!(
        "status {}; stdout {:?}; stderr {:?}",
        out.status,
        stdout(out),
        stderr(out)
    )
}

/// `pinc --root <root> list -q`: the ids of containers left in `root`.
fn containers_in(root: &Path) -> Vec<String> {
    if !root.exists() {
        return Vec::new();
    }
    let mut cmd = Command::new(pinc_abs());
    cmd.arg("--root").arg(root).args(["list", "-q"]);
    let out = output_via_files(cmd);
    assert!(out.status.success(), "pinc list: {}", describe(&out));
    stdout(&out)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// After a step: Slurm's cleanup (Query, Kill, Delete) left no container
/// state in `root` and no process of the step alive.
fn assert_clean(slurm: &Slurm, root: &Path) {
    let left = containers_in(root);
    assert!(
        left.is_empty(),
        "containers left in {}: {left:?}",
        root.display()
    );
    let ok = pinc_tests::daemons::wait_until(Duration::from_secs(10), || {
        slurm.stray_processes().is_empty()
    });
    assert!(ok, "stray processes: {:?}", slurm.stray_processes());
}

/// The CPU list a `grep Cpus_allowed_list` line shows.
fn allowed(text: &str, tag: &str) -> String {
    text.lines()
        .find(|l| l.starts_with(tag))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_else(|| panic!("no {tag} line in {text:?}"))
        .to_string()
}

/// The CPU mask task/affinity gave the last step in `log`, from its line
/// `_lllp_generate_cpu_bind jobid [N]: mask_cpu,one_thread, 0x1`.
fn step_cpu_mask(log: &str) -> u64 {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("_lllp_generate_cpu_bind jobid"))
        .unwrap_or_else(|| panic!("no cpu binding in slurmd.log:\n{log}"));
    let hex = line.rsplit(' ').next().unwrap_or_default();
    u64::from_str_radix(hex.trim_start_matches("0x"), 16)
        .unwrap_or_else(|_| panic!("cannot parse the mask in {line:?}"))
}

/// The scenarios every job owner runs: output, exit code, placement and a
/// refused over-request, each followed by the cleanup check.
/// `user` is `None` for root, else the user and the directory srun runs in.
fn job_scenarios(
    s: &mut Scenarios,
    slurm: &Slurm,
    user: Option<(&str, &Path)>,
    bundle: &Path,
    over: &Path,
    root: &Path,
) {
    let who = user.map_or("root", |(name, _)| name);
    let srun = |args: &[&str]| match user {
        None => slurm.srun(args),
        Some((name, dir)) => slurm.srun_as(name, dir, args),
    };
    let spawn = |args: &[&str]| slurm.spawn_srun(user, args);
    let b = format!("--container={}", bundle.display());
    s.run(&format!("{who}: output arrives"), || {
        let out = srun(&[&b, "sh", "-c", "echo hello from $(hostname); id -u"]);
        assert!(out.status.success(), "{}\n{}", describe(&out), slurm.logs());
        assert!(stdout(&out).contains("hello from "), "{}", describe(&out));
        assert_clean(slurm, root);
    });
    s.run(&format!("{who}: exit code propagates"), || {
        let out = srun(&[&b, "sh", "-c", "echo bye; exit 3"]);
        assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
        assert!(stdout(&out).contains("bye"), "{}", describe(&out));
        assert_clean(slurm, root);
    });
    s.run(&format!("{who}: one CPU step"), || {
        let before = slurm.slurmd_log().len();
        let out = srun(&[
            "-c1",
            "--cpu-bind=cores",
            &b,
            "sh",
            "-c",
            "grep Cpus_allowed_list /proc/self/status",
        ]);
        assert!(out.status.success(), "{}", describe(&out));
        let inside = allowed(&stdout(&out), "Cpus_allowed_list:");
        let cpu: u32 = inside
            .parse()
            .unwrap_or_else(|_| panic!("exactly one CPU, got {inside:?}"));
        // task/affinity logs the step's binding mask: the container must
        // be bound to exactly it.
        let log = slurm.slurmd_log();
        let mask = step_cpu_mask(&log[before.min(log.len())..]);
        assert_eq!(mask, 1 << cpu, "the step's CPUs are the container's");
        assert_clean(slurm, root);
    });
    s.run(&format!("{who}: scancel of a running step"), || {
        let before = slurm.slurmd_log().len();
        let mut child = spawn(&[&b, "sleep", "300"]);
        let running = pinc_tests::daemons::wait_until(Duration::from_secs(30), || {
            !containers_in(root).is_empty()
        });
        let mut cancel = slurm.client("scancel");
        cancel.args(["-u", who]);
        let out = output_via_files(cancel);
        let exited = pinc_tests::daemons::wait_until(Duration::from_secs(60), || {
            matches!(child.try_wait(), Ok(Some(_)))
        });
        if !exited {
            let _ = child.kill();
        }
        let _ = child.wait();
        assert!(running, "the container never ran:\n{}", slurm.logs());
        assert!(out.status.success(), "scancel: {}", describe(&out));
        assert!(exited, "srun did not end after scancel:\n{}", slurm.logs());
        // Init (pid 1 in its namespace) ignores SIGTERM: the step ends at
        // the SIGKILL after KillWait, then Slurm cleans up.
        let gone = pinc_tests::daemons::wait_until(Duration::from_secs(60), || {
            containers_in(root).is_empty()
        });
        let log = slurm.slurmd_log();
        assert!(
            gone,
            "containers left: {:?}\nslurmd.log:\n{}",
            containers_in(root),
            &log[before.min(log.len())..]
        );
        assert_clean(slurm, root);
    });
    s.run(
        &format!("{who}: PINC_CPUS=2 in a 1-CPU step is refused"),
        || {
            let before = slurm.slurmd_log().len();
            let out = srun(&[
                "-c1",
                "--cpu-bind=cores",
                &format!("--container={}", over.display()),
                "true",
            ]);
            assert!(!out.status.success(), "{}", describe(&out));
            let log = slurm.slurmd_log();
            let surfaced = format!("{}\n{}", stderr(&out), &log[before.min(log.len())..]);
            // Slurm passes the runtime's stderr through to srun.
            assert!(
                surfaced.contains("no free cores: 2 CPUs needed")
                    && surfaced.contains("within the allowed CPUs"),
                "pinc's error reaches neither srun nor slurmd.log: {}\nslurmd.log:\n{}",
                describe(&out),
                &log[before.min(log.len())..]
            );
            assert_clean(slurm, root);
        },
    );
}

#[test]
fn srun_container_as_root_with_the_root_oci_conf() {
    require_root();
    let state = tempfile::Builder::new()
        .prefix("pinc-slurm-root-")
        .tempdir()
        .expect("state dir");
    let root = state.path().join("pinc");
    let slurm = Slurm::start(&packaged_oci_conf("oci.conf", &pinc_abs(), &root));
    let bundle = Bundle::new(&["true"]);
    let over = Bundle::new(&["true"]);
    over.add_env("PINC_CPUS=2");
    let mut s = Scenarios::new();
    job_scenarios(&mut s, &slurm, None, bundle.path(), over.path(), &root);
    s.finish();
}

/// A bundle the user owns, from `pinc spec --rootless` run as the user.
fn user_bundle(home: &Path, name: &str, uid: u32, gid: u32, env: &[&str]) -> PathBuf {
    let bundle = home.join(name);
    make_rootfs(&bundle.join("rootfs"));
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", USER, "--"])
        .arg(pinc_abs())
        .args(["spec", "--rootless", "--bundle"])
        .arg(&bundle);
    // spec writes config.json: the bundle dir must be the user's first.
    nix::unistd::chown(&bundle, Some(uid.into()), Some(gid.into())).expect("chown");
    let out = output_via_files(cmd);
    assert!(out.status.success(), "spec --rootless: {}", describe(&out));
    let path = bundle.join("config.json");
    let mut c: serde_json::Value =
        serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
    c["process"]["terminal"] = false.into();
    for kv in env {
        c["process"]["env"]
            .as_array_mut()
            .expect("env")
            .push((*kv).into());
    }
    fs::write(&path, serde_json::to_vec_pretty(&c).expect("json")).expect("write");
    chown_tree(&bundle, uid, gid);
    bundle
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    let out = Command::new("chown")
        .args(["-R", "-h", &format!("{uid}:{gid}")])
        .arg(path)
        .output()
        .expect("chown");
    assert!(out.status.success(), "chown -R: {}", describe(&out));
}

#[test]
fn srun_container_as_a_user_and_as_root_with_the_rootless_oci_conf() {
    require_root();
    let (uid, gid) = pinc_tests::ensure_rootless_user();
    let home = tempfile::Builder::new()
        .prefix("pinc-slurm-user-")
        .tempdir()
        .expect("tempdir");
    fs::set_permissions(home.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    // /run/pinc-slurm as the packaged file wants it: world-writable, sticky.
    let state = home.path().join("run");
    fs::create_dir(&state).expect("state dir");
    fs::set_permissions(&state, fs::Permissions::from_mode(0o1777)).expect("chmod 1777");
    let slurm = Slurm::start(&packaged_oci_conf("oci.conf.rootless", &pinc_abs(), &state));
    let work = home.path().join("work");
    fs::create_dir(&work).expect("work dir");
    let bundle = user_bundle(&work, "bundle", uid, gid, &[]);
    let over = user_bundle(&work, "over", uid, gid, &["PINC_CPUS=2"]);
    chown_tree(&work, uid, gid);

    let mut s = Scenarios::new();
    job_scenarios(
        &mut s,
        &slurm,
        Some((USER, &work)),
        &bundle,
        &over,
        &state.join(USER),
    );
    s.run("root's cleanup does not create a user's state dir", || {
        // Slurm runs Kill and Delete as root, also for a step whose
        // runtime never ran: the user's root must not appear, root-owned.
        let missing = state.join("nobody-yet");
        for args in [
            &["kill", "-a", "vm.x.1.0.0", "KILL"][..],
            &["delete", "--force", "vm.x.1.0.0"],
            &["state", "vm.x.1.0.0"],
        ] {
            let mut cmd = Command::new(pinc_abs());
            cmd.arg(format!("--root={}", missing.display())).args(args);
            output_via_files(cmd);
            assert!(
                !missing.exists(),
                "pinc {args:?} created {}",
                missing.display()
            );
        }
    });
    s.run("the user's state dir stays the user's", || {
        let meta = fs::metadata(state.join(USER)).expect("user state dir");
        assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), uid);
        let out = Command::new("find")
            .arg(state.join(USER))
            .args(["-not", "-user", USER])
            .output()
            .expect("find");
        assert_eq!(stdout(&out), "", "files root left in the user's state");
    });
    // Root jobs through the same file: state in <state>/root.
    let root_bundle = Bundle::new(&["true"]);
    let root_over = Bundle::new(&["true"]);
    root_over.add_env("PINC_CPUS=2");
    job_scenarios(
        &mut s,
        &slurm,
        None,
        root_bundle.path(),
        root_over.path(),
        &state.join("root"),
    );
    s.finish();
}
