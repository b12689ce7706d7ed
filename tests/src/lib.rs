//! Shared harness for pinc's integration tests: real containers from a
//! busybox-static root filesystem, run through the real `pinc` binary.
//!
//! The tests need root and a built binary (`cargo build --release -p pinc`,
//! or set PINC_BIN). They fail with a clear message when either is missing.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

pub mod census;
pub mod clients;
pub mod cri;
pub mod cri_compare;
pub mod cri_stream;
pub mod daemons;
pub mod devroot;
pub mod procfs;
pub mod shim;
pub mod slurm;

/// The pinc binary under test.
pub fn pinc_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("PINC_BIN") {
        return PathBuf::from(p);
    }
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    for profile in ["release", "debug"] {
        let p = target.join(profile).join("pinc");
        if p.exists() {
            return p.canonicalize().unwrap_or(p);
        }
    }
    panic!("no pinc binary: run `cargo build --release -p pinc` first or set PINC_BIN");
}

/// Integration tests run real containers: they need root, and fail (rather
/// than skip, see `pinc_testkit::skip!`) without it.
pub fn require_root() {
    start_watchdog();
    assert!(
        pinc_testkit::is_root(),
        "this test runs real containers and needs root (run the suite as root, e.g. `sudo -E cargo test -p pinc-tests`)"
    );
}

/// How long one integration-test binary may run before it aborts itself.
const BINARY_LIMIT: std::time::Duration = std::time::Duration::from_secs(20 * 60);

/// Ends this test binary, naming it, once it has run past [`BINARY_LIMIT`]
/// (or `PINC_TEST_BINARY_LIMIT` seconds): a hang the per-command timeouts
/// miss must fail the suite with its name, not eat CI's whole budget.
fn start_watchdog() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let limit = std::env::var("PINC_TEST_BINARY_LIMIT")
            .ok()
            .and_then(|s| s.parse().ok())
            .map(std::time::Duration::from_secs)
            .unwrap_or(BINARY_LIMIT);
        std::thread::spawn(move || {
            std::thread::sleep(limit);
            let exe = std::env::args().next().unwrap_or_default();
            eprintln!("{exe}: still running after {limit:?}; a test hangs, aborting");
            std::process::exit(101);
        });
    });
}

/// A unique container id for this process.
pub fn unique_id(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Fills `dir` with a busybox-static root filesystem.
pub fn make_rootfs(dir: &Path) {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.exists(),
        "/bin/busybox is missing: apt-get install busybox-static"
    );
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "root", "dev/shm"] {
        fs::create_dir_all(dir.join(d)).expect("rootfs dir");
    }
    fs::copy(busybox, dir.join("bin/busybox")).expect("copy busybox");
    let list = Command::new(busybox)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            let _ = symlink("busybox", dir.join("bin").join(applet));
        }
    }
    fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
    )
    .expect("passwd");
    fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").expect("group");
}

/// An OCI bundle in a temporary directory.
pub struct Bundle {
    pub dir: tempfile::TempDir,
}

impl Bundle {
    /// A bundle whose process runs `args`, from `pinc spec` (or `--rootless`).
    pub fn new(args: &[&str]) -> Self {
        Self::with_spec(args, false)
    }

    pub fn with_spec(args: &[&str], rootless: bool) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("pinc-bundle-")
            .tempdir_in(std::env::temp_dir())
            .expect("bundle dir");
        make_rootfs(&dir.path().join("rootfs"));
        let mut cmd = Command::new(pinc_bin());
        cmd.arg("spec").arg("--bundle").arg(dir.path());
        if rootless {
            cmd.arg("--rootless");
        }
        let out = cmd.output().expect("pinc spec");
        assert!(
            out.status.success(),
            "pinc spec failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bundle = Self { dir };
        bundle.edit(|c| {
            c["process"]["terminal"] = Value::Bool(false);
            c["process"]["args"] = args.iter().map(|a| Value::String(a.to_string())).collect();
        });
        bundle
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config(&self) -> Value {
        serde_json::from_slice(&fs::read(self.path().join("config.json")).expect("read config"))
            .expect("parse config")
    }

    /// Edits config.json in place.
    pub fn edit(&self, f: impl FnOnce(&mut Value)) {
        let mut c = self.config();
        f(&mut c);
        fs::write(
            self.path().join("config.json"),
            serde_json::to_vec_pretty(&c).expect("json"),
        )
        .expect("write config");
    }

    /// Sets process.env entries (appended; later entries win).
    pub fn add_env(&self, kv: &str) {
        self.edit(|c| {
            c["process"]["env"]
                .as_array_mut()
                .expect("env array")
                .push(Value::String(kv.to_string()));
        });
    }
}

/// A pinc state root in a temporary directory.
pub struct Pinc {
    pub root: tempfile::TempDir,
}

/// A failing test must not leak containers: delete whatever is left.
impl Drop for Pinc {
    fn drop(&mut self) {
        let ids = fs::read_dir(self.root.path())
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.path().join("state.json").is_file())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        for id in ids {
            let _ = output_via_files(self.cmd(&["delete", "--force", &id]));
        }
    }
}

impl Default for Pinc {
    fn default() -> Self {
        Self::new()
    }
}

impl Pinc {
    pub fn new() -> Self {
        Self {
            root: tempfile::Builder::new()
                .prefix("pinc-root-")
                .tempdir()
                .expect("root dir"),
        }
    }

    /// `pinc --root <root> args...`
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(pinc_bin());
        cmd.arg("--root").arg(self.root.path()).args(args);
        cmd
    }

    /// Runs pinc with stdout/stderr in files, not pipes: a detached container
    /// inherits them, and a pipe would stay open until the container exits.
    pub fn output(&self, args: &[&str]) -> Output {
        output_via_files(self.cmd(args))
    }

    /// Runs pinc and requires success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "pinc {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs pinc and requires failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            !out.status.success(),
            "pinc {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Polls `pinc state` until container `id` has status `want`
    /// (`"absent"` when pinc has no state for it); panics naming the last
    /// status seen after 10 s.
    pub fn wait_for_status(&self, id: &str, want: &str) {
        let mut last = String::new();
        let reached = daemons::poll_every(
            std::time::Duration::from_secs(10),
            std::time::Duration::from_millis(20),
            || {
                let out = self.output(&["state", id]);
                last = serde_json::from_slice::<Value>(&out.stdout)
                    .map(|s| s["status"].as_str().unwrap_or_default().to_string())
                    .unwrap_or_else(|_| "absent".to_string());
                last == want
            },
        );
        assert!(reached, "{id} stayed {last}, wanted {want}");
    }

    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).expect("state json")
    }

    /// Entries in the root other than pinc's private dir.
    pub fn leftovers(&self) -> Vec<String> {
        fs::read_dir(self.root.path())
            .expect("read root")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != ".pinc")
            .collect()
    }

    /// Files left in pinc's private dirs (locks, staging, exec views).
    pub fn private_leftovers(&self) -> Vec<String> {
        let private = self.root.path().join(".pinc");
        let mut out = Vec::new();
        for sub in ["locks", "staging", "exec", "journal"] {
            if let Ok(entries) = fs::read_dir(private.join(sub)) {
                out.extend(
                    entries
                        .flatten()
                        .map(|e| format!("{sub}/{}", e.file_name().to_string_lossy())),
                );
            }
        }
        out
    }
}

/// cgroup v1 directories named like a container id (leak check).
pub fn cgroup_dirs_named(id: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    // Ids that are not one plain path component cannot name a cgroup dir;
    // look for their last component instead ("../escape" -> "escape").
    let id = id.rsplit('/').next().unwrap_or(id);
    if id.is_empty() || id == "." || id == ".." {
        return found;
    }
    for ctrl in [
        "cpu", "cpuset", "memory", "pids", "devices", "freezer", "blkio", "cpuacct",
    ] {
        let base = Path::new("/sys/fs/cgroup").join(ctrl);
        for candidate in [
            base.join("pinc").join(id),
            base.join(id),
            base.join(format!(":youki:{id}")),
        ] {
            if candidate.exists() {
                found.push(candidate);
            }
        }
    }
    found
}

/// Mount points whose path mentions `needle` (leak check).
pub fn mounts_mentioning(needle: &str) -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// Runs `cmd` with stdout and stderr captured through temporary files.
pub fn output_via_files(mut cmd: Command) -> Output {
    let out = tempfile::tempfile().expect("stdout file");
    let err = tempfile::tempfile().expect("stderr file");
    cmd.stdin(std::process::Stdio::null())
        .stdout(out.try_clone().expect("clone"))
        .stderr(err.try_clone().expect("clone"));
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {desc}: {e}"));
    let status = wait_bounded(&mut child, &desc);
    let read = |mut f: fs::File| {
        use std::io::{Read, Seek};
        let mut buf = Vec::new();
        f.rewind().expect("rewind");
        f.read_to_end(&mut buf).expect("read");
        buf
    };
    Output {
        status,
        stdout: read(out),
        stderr: read(err),
    }
}

/// Waits for a child at most [`daemons::CMD_TIMEOUT`]; kills it and panics
/// naming it when it takes longer, so a hung command fails its test instead
/// of stalling the whole suite.
pub fn wait_bounded(child: &mut std::process::Child, desc: &str) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + daemons::CMD_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{desc} did not finish within {:?} (killed)",
                    daemons::CMD_TIMEOUT
                );
            }
            Err(e) => panic!("waiting for {desc}: {e}"),
        }
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The unprivileged user the rootless tests run as.
pub const ROOTLESS_USER: &str = "pinc-rootless";

/// Creates [`ROOTLESS_USER`] once (Debian's useradd also gives it
/// /etc/subuid and /etc/subgid ranges); returns its uid and gid.
pub fn ensure_rootless_user() -> (u32, u32) {
    // Tests of one binary run in parallel, and two concurrent useradds of
    // the same name on a fresh machine can both succeed, the second
    // replacing the first's uid: a test would then chown its files to a
    // uid the user no longer has.
    static USERADD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = USERADD.lock().unwrap_or_else(|e| e.into_inner());
    let id = |flag: &str| {
        Command::new("id")
            .args([flag, ROOTLESS_USER])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<u32>()
                    .ok()
            })
    };
    if id("-u").is_none() {
        let status = Command::new("useradd")
            .args(["--create-home", "--shell", "/bin/sh", ROOTLESS_USER])
            .status()
            .expect("useradd (package passwd)");
        assert!(
            status.success() || id("-u").is_some(),
            "useradd {ROOTLESS_USER} failed"
        );
    }
    (id("-u").expect("uid"), id("-g").expect("gid"))
}
