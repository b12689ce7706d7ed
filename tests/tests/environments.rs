//! Where pinc runs: under a caller's CPU binding, and as an unprivileged user
//! on a host whose cgroups are not delegated (this machine's cgroup v1).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use pinc_tests::{
    output_via_files, pinc_bin, require_root, stderr, stdout, unique_id, Bundle, Pinc,
};

fn allowed_list(output: &str, key: &str) -> String {
    output
        .lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("no {key} in {output}"))
}

#[test]
fn the_container_keeps_the_callers_cpu_affinity() {
    require_root();
    // The CPUs this process may use (its affinity), not the machine's.
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if ncpu < 2 {
        pinc_testkit::skip!("needs two allowed CPUs to tell a binding from none, has {ncpu}");
    }
    let last = (ncpu - 1).to_string();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["grep", "Cpus_allowed_list", "/proc/self/status"]);
    let b = bundle.path().to_str().expect("utf8");

    let mut cmd = Command::new("taskset");
    cmd.args(["-c", &last])
        .arg(pinc_bin())
        .arg("--root")
        .arg(pinc.root.path())
        .args(["run", "-b", b, &unique_id("aff")]);
    let out = output_via_files(cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        allowed_list(&stdout(&out), "Cpus_allowed_list:"),
        last,
        "Slurm-style binding kept"
    );

    // Unbound caller: all CPUs, as the host allows.
    let out = pinc.output(&["run", "-b", b, &unique_id("aff")]);
    assert_eq!(
        allowed_list(&stdout(&out), "Cpus_allowed_list:"),
        format!("0-{last}")
    );

    // A spec that pins CPUs wins over the caller's affinity.
    bundle.edit(|c| c["linux"]["resources"]["cpu"] = serde_json::json!({"cpus": "0"}));
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", &last])
        .arg(pinc_bin())
        .arg("--root")
        .arg(pinc.root.path())
        .args(["run", "-b", b, &unique_id("aff")]);
    let out = output_via_files(cmd);
    assert_eq!(
        allowed_list(&stdout(&out), "Cpus_allowed_list:"),
        "0",
        "{}",
        stderr(&out)
    );

    // exec'd processes run where the container runs.
    bundle.edit(|c| {
        c["process"]["args"] = serde_json::json!(["sleep", "30"]);
        c["linux"]["resources"]["cpu"] = serde_json::Value::Null;
    });
    let id = unique_id("affexec");
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", &last])
        .arg(pinc_bin())
        .arg("--root")
        .arg(pinc.root.path())
        .args(["run", "-d", "-b", b, &id]);
    assert!(output_via_files(cmd).status.success());
    let out = pinc.ok(&[
        "exec",
        &id,
        "grep",
        "Cpus_allowed_list",
        "/proc/self/status",
    ]);
    assert_eq!(allowed_list(&out, "Cpus_allowed_list:"), last);
    pinc.ok(&["delete", "--force", &id]);
}

const USER: &str = pinc_tests::ROOTLESS_USER;

/// Runs pinc as the unprivileged user with its own XDG_RUNTIME_DIR.
fn as_user(runtime_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    as_user_with(runtime_dir, &[], args)
}

/// [`as_user`] with extra environment for pinc itself.
fn as_user_with(
    runtime_dir: &std::path::Path,
    env: &[(&str, &std::path::Path)],
    args: &[&str],
) -> std::process::Output {
    let mut cmd = Command::new("runuser");
    cmd.args([
        "-u",
        USER,
        "--",
        "env",
        "-i",
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
    ])
    .arg(format!("XDG_RUNTIME_DIR={}", runtime_dir.display()))
    .arg(format!("HOME=/home/{USER}"))
    .args(env.iter().map(|(k, v)| format!("{k}={}", v.display())))
    .arg(pinc_bin())
    .args(args);
    output_via_files(cmd)
}

/// A detached container through its life as the user: list, exec, ps,
/// pause (refused without delegation), delete.
fn detached_as_user(runtime_dir: &std::path::Path, b: &str) {
    let id = unique_id("rld");
    let out = as_user(runtime_dir, &["run", "--detach", "--bundle", b, &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = as_user(runtime_dir, &["list"]);
    assert!(
        stdout(&out).contains(&id) && stdout(&out).contains("running"),
        "{}",
        stdout(&out)
    );
    let out = as_user(runtime_dir, &["exec", &id, "sh", "-c", "id -u; exit 6"]);
    assert_eq!(out.status.code(), Some(6), "exec: {}", stderr(&out));
    assert_eq!(stdout(&out), "0\n");
    let out = as_user(runtime_dir, &["ps", "--format", "json", &id]);
    let pids: Vec<i64> = serde_json::from_str(&stdout(&out)).expect("ps json");
    assert_eq!(pids.len(), 1, "{pids:?}");
    let out = as_user(runtime_dir, &["pause", &id]);
    assert!(
        !out.status.success() && stderr(&out).contains("delegated"),
        "{}",
        stderr(&out)
    );
    let out = as_user(runtime_dir, &["delete", "--force", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = as_user(runtime_dir, &["list", "-q"]);
    assert_eq!(stdout(&out), "");
}

#[test]
fn rootless_on_a_login_node_without_delegation() {
    require_root();
    let (uid, gid) = pinc_tests::ensure_rootless_user();
    // Everything the user touches lives in a directory the user owns.
    let home = tempfile::Builder::new()
        .prefix("pinc-rootless-")
        .tempdir()
        .expect("tempdir");
    fs::set_permissions(home.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let chown = |p: &std::path::Path| {
        nix::unistd::chown(p, Some(uid.into()), Some(gid.into())).expect("chown")
    };
    let runtime_dir = home.path().join("run");
    let bundle = home.path().join("bundle");
    fs::create_dir_all(&runtime_dir).expect("run dir");
    fs::create_dir_all(&bundle).expect("bundle");
    fs::set_permissions(&runtime_dir, fs::Permissions::from_mode(0o700)).expect("chmod");
    chown(&runtime_dir);
    chown(&bundle);
    pinc_tests::make_rootfs(&bundle.join("rootfs"));
    let b = bundle.to_str().expect("utf8");

    let out = as_user(&runtime_dir, &["spec", "--rootless", "--bundle", b]);
    assert!(out.status.success(), "spec --rootless: {}", stderr(&out));
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let path = bundle.join("config.json");
        let mut c: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
        f(&mut c);
        fs::write(&path, serde_json::to_vec(&c).expect("json")).expect("write");
    };
    edit(&|c| {
        c["process"]["terminal"] = false.into();
        c["process"]["args"] = serde_json::json!([
            "sh",
            "-c",
            "echo uid=$(id -u) in $(hostname); cat /proc/self/uid_map; exit 4"
        ]);
    });

    let id = unique_id("rl");
    let out = as_user(&runtime_dir, &["run", "--bundle", b, &id]);
    assert_eq!(out.status.code(), Some(4), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("uid=0 in pinc\n"), "{text}");
    let map: Vec<&str> = text
        .lines()
        .nth(1)
        .expect("uid_map line")
        .split_whitespace()
        .collect();
    assert_eq!(
        map,
        vec!["0", &uid.to_string(), "1"],
        "container root is the user"
    );
    assert!(
        stderr(&out).is_empty(),
        "no limits asked, no warning: {}",
        stderr(&out)
    );
    let state_dir = runtime_dir.join("pinc");
    assert!(state_dir.is_dir(), "state under $XDG_RUNTIME_DIR/pinc");

    // Detached: list, exec, ps, kill, delete as the user.
    edit(&|c| c["process"]["args"] = serde_json::json!(["sleep", "60"]));
    detached_as_user(&runtime_dir, b);

    // A memory limit cannot be enforced: one warning, the container still runs.
    edit(&|c| {
        c["process"]["args"] = serde_json::json!(["true"]);
        c["linux"]["resources"] = serde_json::json!({"memory": {"limit": 67108864}});
    });
    let out = as_user(&runtime_dir, &["run", "--bundle", b, &unique_id("rlw")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "exactly one warning: {err}");
    assert!(
        err.contains("warning") && err.contains("memory") && err.contains("not delegated"),
        "{err}"
    );

    // ... unless the user asked for limits to be enforced.
    edit(&|c| {
        c["annotations"] = serde_json::json!({"pinc.io/require-cgroups": "true"});
    });
    let id = unique_id("rlr");
    let out = as_user(&runtime_dir, &["run", "--bundle", b, &id]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("memory") && err.contains("cannot be enforced"),
        "{err}"
    );
    let leftovers: Vec<_> = fs::read_dir(&state_dir)
        .expect("state dir")
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != ".pinc")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn rootless_gets_only_devices_it_can_open() {
    require_root();
    let (uid, gid) = pinc_tests::ensure_rootless_user();
    let home = tempfile::Builder::new()
        .prefix("pinc-rldev-")
        .tempdir()
        .expect("tempdir");
    fs::set_permissions(home.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let runtime_dir = home.path().join("run");
    let bundle = home.path().join("bundle");
    for d in [&runtime_dir, &bundle] {
        fs::create_dir_all(d).expect("mkdir");
        nix::unistd::chown(d.as_path(), Some(uid.into()), Some(gid.into())).expect("chown");
    }
    fs::set_permissions(&runtime_dir, fs::Permissions::from_mode(0o700)).expect("chmod");
    pinc_tests::make_rootfs(&bundle.join("rootfs"));
    let b = bundle.to_str().expect("utf8");
    let devroot = pinc_tests::devroot::new_root("pinc-rldevroot-");
    pinc_tests::devroot::two_gpus(devroot.path());
    // GPU 1 (minor 1): only root may open it on the host.
    let private = devroot.path().join("dev/nvidia1");
    fs::set_permissions(&private, fs::Permissions::from_mode(0o600)).expect("chmod");
    let env = [("PINC_DEVICE_ROOT", devroot.path())];

    let out = as_user(&runtime_dir, &["spec", "--rootless", "--bundle", b]);
    assert!(out.status.success(), "spec --rootless: {}", stderr(&out));
    let edit = |gpus: &str| {
        let path = bundle.join("config.json");
        let mut c: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
        c["process"]["terminal"] = false.into();
        c["process"]["args"] = serde_json::json!([
            "sh",
            "-c",
            "ls /dev | grep nvidia; cat /dev/nvidia0 2>&1; true"
        ]);
        c["process"]["env"] = serde_json::json!(["PATH=/bin", format!("PINC_GPUS={gpus}")]);
        fs::write(&path, serde_json::to_vec(&c).expect("json")).expect("write");
    };

    edit("all");
    let out = as_user_with(
        &runtime_dir,
        &env,
        &["run", "--bundle", b, &unique_id("rlgpu")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "nvidia-uvm\nnvidia0\nnvidiactl\ncat: can't open '/dev/nvidia0': No such device or address\n",
        "all = the GPUs the user can open, bind-mounted (the fixture node opens; no driver)"
    );

    edit("1");
    let id = unique_id("rlgpu1");
    let out = as_user_with(&runtime_dir, &env, &["run", "--bundle", b, &id]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot open") && err.contains(private.to_str().expect("utf8")),
        "{err}"
    );
    let out = as_user(&runtime_dir, &["list", "-q"]);
    assert_eq!(stdout(&out), "", "nothing left behind");
}

/// The user's /etc/subuid and /etc/subgid ranges (Debian's useradd adds
/// them), or adds one.
fn ensure_subids() -> (u32, u32) {
    let find = |file: &str| {
        fs::read_to_string(file).ok().and_then(|t| {
            t.lines().find_map(|l| {
                let mut p = l.split(':');
                (p.next() == Some(USER))
                    .then(|| p.next().and_then(|s| s.parse::<u32>().ok()))
                    .flatten()
            })
        })
    };
    if find("/etc/subuid").is_none() || find("/etc/subgid").is_none() {
        let status = Command::new("usermod")
            .args([
                "--add-subuids",
                "300000-365535",
                "--add-subgids",
                "300000-365535",
                USER,
            ])
            .status()
            .expect("usermod");
        assert!(status.success(), "usermod --add-subuids failed");
    }
    (
        find("/etc/subuid").expect("subuid range"),
        find("/etc/subgid").expect("subgid range"),
    )
}

#[test]
fn rootless_with_subordinate_ids() {
    require_root();
    let (uid, gid) = pinc_tests::ensure_rootless_user();
    let (subuid, _subgid) = ensure_subids();
    let home = tempfile::Builder::new()
        .prefix("pinc-rlsub-")
        .tempdir()
        .expect("tempdir");
    fs::set_permissions(home.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let runtime_dir = home.path().join("run");
    let bundle = home.path().join("bundle");
    for d in [&runtime_dir, &bundle] {
        fs::create_dir_all(d).expect("mkdir");
        nix::unistd::chown(d.as_path(), Some(uid.into()), Some(gid.into())).expect("chown");
    }
    fs::set_permissions(&runtime_dir, fs::Permissions::from_mode(0o700)).expect("chmod");
    pinc_tests::make_rootfs(&bundle.join("rootfs"));
    let out = Command::new("chown")
        .args(["-R", &format!("{uid}:{gid}")])
        .arg(bundle.join("rootfs"))
        .status()
        .expect("chown");
    assert!(out.success());
    let b = bundle.to_str().expect("utf8");
    let out = as_user(&runtime_dir, &["spec", "--rootless", "--bundle", b]);
    assert!(out.status.success(), "spec --rootless: {}", stderr(&out));
    let edit = |user: (u32, u32), script: &str| {
        let path = bundle.join("config.json");
        let mut c: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
        c["process"]["terminal"] = false.into();
        c["process"]["user"] = serde_json::json!({"uid": user.0, "gid": user.1});
        c["root"]["readonly"] = false.into();
        c["process"]["args"] = serde_json::json!(["sh", "-c", script]);
        fs::write(&path, serde_json::to_vec(&c).expect("json")).expect("write");
        c
    };

    let c = edit((0, 0), "cat /proc/self/uid_map");
    assert_eq!(
        c["linux"]["uidMappings"].as_array().map(Vec::len),
        Some(2),
        "pinc spec --rootless maps the subordinate range: {}",
        c["linux"]["uidMappings"]
    );
    let out = as_user(&runtime_dir, &["run", "--bundle", b, &unique_id("rlsub")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let maps: Vec<Vec<&str>> = text
        .lines()
        .take(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        maps,
        [
            vec!["0", &uid.to_string(), "1"],
            vec!["1", &subuid.to_string(), "65535"]
        ],
        "{text}"
    );

    // A user other than root runs, and owns what it writes.
    fs::set_permissions(
        bundle.join("rootfs/tmp"),
        fs::Permissions::from_mode(0o1777),
    )
    .expect("chmod");
    edit(
        (1000, 1000),
        "id -u; id -g; touch /tmp/f && stat -c %u:%g /tmp/f",
    );
    let out = as_user(&runtime_dir, &["run", "--bundle", b, &unique_id("rlsub")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1000\n1000\n1000:1000\n");
    use std::os::unix::fs::MetadataExt;
    let owner = fs::metadata(bundle.join("rootfs/tmp/f")).expect("stat");
    assert_eq!(
        owner.uid(),
        subuid + 999,
        "container uid 1000 is subuid+999 on the host"
    );
}
