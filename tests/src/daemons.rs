//! Real clients for pinc: a private containerd, a private dockerd on top of
//! it, and podman with a private storage root. Everything lives in temporary
//! directories; `Drop` stops the daemons (SIGTERM, then SIGKILL), kills the
//! helper processes they left (shims, conmon: found by the temporary path in
//! their command line, and killed by pid), unmounts what they mounted there
//! and removes the directories, so a failing test leaves nothing running.
//!
//! Nothing here creates a network: dockerd runs with `--bridge=none
//! --iptables=false`, containers with `--network none`.

use std::fs;
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;

use crate::{make_rootfs, pinc_bin};

/// How long one client command may take before the test gives up on it.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(90);

/// Finds `name` on PATH (plus the sbin directories) or panics naming the
/// Debian package that provides it.
pub fn require_bin(name: &str, apt_package: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs = path
        .split(':')
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("`{name}` is not installed: apt-get install -y {apt_package}");
}

/// The Docker 20.10 client from Debian's docker.io package. A newer client
/// may sit earlier on PATH (e.g. /usr/local/bin/docker); the engine under
/// test is 20.10, so its own client is preferred.
pub fn docker_client() -> PathBuf {
    let debian = Path::new("/usr/bin/docker");
    if debian.is_file() {
        return debian.to_path_buf();
    }
    require_bin("docker", "docker.io")
}

/// The pinc binary as an absolute path (clients exec it from elsewhere).
pub fn pinc_abs() -> PathBuf {
    let p = pinc_bin();
    let p = p.canonicalize().unwrap_or(p);
    assert!(
        p.is_absolute() && p.is_file(),
        "pinc binary {} is not an absolute path to a file",
        p.display()
    );
    p
}

/// A temporary directory under /tmp with a short name: unix socket paths
/// beneath it must stay under 108 bytes.
pub fn short_tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .expect("create a temporary directory in /tmp")
}

/// Runs `cmd` with a deadline, capturing stdout and stderr. Panics (after
/// killing the child) if it does not finish in time.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {desc}: {e}"));
    collect(&mut child, &desc, timeout)
}

/// Like [`run_with_timeout`], feeding `input` on stdin.
pub fn run_with_input(cmd: &mut Command, input: &[u8], timeout: Duration) -> Output {
    use std::io::Write;
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {desc}: {e}"));
    let mut stdin = child.stdin.take().expect("child stdin");
    let data = input.to_vec();
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&data);
        // Dropping stdin closes it: the client sees EOF.
    });
    let out = collect(&mut child, &desc, timeout);
    let _ = writer.join();
    out
}

fn collect(child: &mut Child, desc: &str, timeout: Duration) -> Output {
    let mut so = child.stdout.take().expect("child stdout");
    let mut se = child.stderr.take().expect("child stderr");
    let t_out = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = so.read_to_end(&mut buf);
        buf
    });
    let t_err = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = se.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status: ExitStatus = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{desc} did not finish within {timeout:?} (killed)");
            }
            Err(e) => panic!("waiting for {desc}: {e}"),
        }
    };
    let stdout = t_out.join().unwrap_or_default();
    let stderr = t_err.join().unwrap_or_default();
    Output {
        status,
        stdout,
        stderr,
    }
}

/// One line describing an output, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status {}; stdout {:?}; stderr {:?}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Requires success; returns stdout.
pub fn ok(what: &str, out: &Output) -> String {
    assert!(out.status.success(), "{what} failed: {}", describe(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `f` every `interval` until it returns true (then true) or
/// `timeout` passes (then false). The tests' one way to wait for a state:
/// a fixed sleep is either too short on a loaded machine or wasted time.
pub fn poll_every(timeout: Duration, interval: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(interval);
    }
}

/// [`poll_every`] 100 ms, for checks that spawn a client or read a daemon.
pub fn wait_until(timeout: Duration, f: impl FnMut() -> bool) -> bool {
    poll_every(timeout, Duration::from_millis(100), f)
}

/// The last `n` lines of a log file (for panic messages).
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Sends SIGKILL, by pid, to every process whose command line contains
/// `needle` (a unique temporary path: only processes this test started).
pub fn kill_processes_mentioning(needle: &str) -> Vec<i32> {
    let mut killed = Vec::new();
    for pid in crate::procfs::other_pids() {
        if crate::procfs::cmdline(pid).contains(needle) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            killed.push(pid);
        }
    }
    killed
}

/// Unmounts (lazily, deepest first) every mount point under `dir`.
pub fn unmount_under(dir: &Path) {
    let prefix = dir.to_string_lossy().into_owned();
    let mut points: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| p.replace("\\040", " "))
        .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    points.dedup();
    for p in points {
        let _ = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Stops a daemon: SIGTERM, up to `grace` to exit, then SIGKILL.
fn stop_child(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let pid = Pid::from_raw(child.id() as i32);
    let _ = kill(pid, Signal::SIGTERM);
    let exited = wait_until(grace, || matches!(child.try_wait(), Ok(Some(_))));
    if !exited {
        eprintln!("daemon {pid} ignored SIGTERM for {grace:?}: SIGKILL");
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// A busybox-static root filesystem packed as `<dir>/rootfs.tar`.
pub fn rootfs_tar(dir: &Path) -> PathBuf {
    let tar = require_bin("tar", "tar");
    let rootfs = dir.join("rootfs");
    make_rootfs(&rootfs);
    let out_path = dir.join("rootfs.tar");
    let out = run_with_timeout(
        Command::new(tar)
            .arg("--numeric-owner")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&out_path)
            .arg("."),
        CMD_TIMEOUT,
    );
    ok("tar of the rootfs", &out);
    out_path
}

fn sha256_hex(path: &Path) -> String {
    let sha = require_bin("sha256sum", "coreutils");
    let out = run_with_timeout(Command::new(sha).arg(path), CMD_TIMEOUT);
    let text = ok("sha256sum", &out);
    text.split_whitespace()
        .next()
        .expect("sha256sum output")
        .to_string()
}

/// Builds a `docker save`-style archive (manifest.json, config, one layer)
/// for `layer_tar` under the name `repo_tag`, as `<dir>/image.tar`.
pub fn docker_save_archive(dir: &Path, layer_tar: &Path, repo_tag: &str) -> PathBuf {
    image_archive(dir, layer_tar, repo_tag, &["sh"])
}

/// [`docker_save_archive`] with the image's default command.
pub fn image_archive(dir: &Path, layer_tar: &Path, repo_tag: &str, cmd: &[&str]) -> PathBuf {
    let tar = require_bin("tar", "tar");
    let img = dir.join("image");
    let layer_hex = sha256_hex(layer_tar);
    fs::create_dir_all(img.join(&layer_hex)).expect("layer dir");
    fs::copy(layer_tar, img.join(&layer_hex).join("layer.tar")).expect("copy layer");
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": cmd,
        },
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_hex}")]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "pinc tests"}],
    });
    let config_tmp = img.join("config.tmp");
    fs::write(
        &config_tmp,
        serde_json::to_vec(&config).expect("config json"),
    )
    .expect("config");
    let config_name = format!("{}.json", sha256_hex(&config_tmp));
    fs::rename(&config_tmp, img.join(&config_name)).expect("rename config");
    let manifest = json!([{
        "Config": config_name,
        "RepoTags": [repo_tag],
        "Layers": [format!("{layer_hex}/layer.tar")],
    }]);
    fs::write(
        img.join("manifest.json"),
        serde_json::to_vec(&manifest).expect("manifest json"),
    )
    .expect("manifest");
    let archive = dir.join("image.tar");
    let out = run_with_timeout(
        Command::new(tar)
            .arg("--numeric-owner")
            .arg("-C")
            .arg(&img)
            .arg("-cf")
            .arg(&archive)
            .arg("."),
        CMD_TIMEOUT,
    );
    ok("tar of the image archive", &out);
    archive
}

/// Collects the outcome of named scenarios, so one failure does not hide the
/// others; [`Scenarios::finish`] fails the test if any failed.
///
/// `PINC_SCENARIOS=a,b` runs only the scenarios whose names contain `a` or
/// `b` (and every [`Scenarios::setup`] step, which later scenarios rely on);
/// the others are listed as not selected.
#[derive(Default)]
pub struct Scenarios {
    results: Vec<(String, Result<Duration, String>)>,
    filter: Option<Vec<String>>,
    not_selected: Vec<String>,
    /// Scenarios run because they were selected (setup steps not counted).
    selected_ran: usize,
}

impl Scenarios {
    pub fn new() -> Self {
        Self::with_filter(std::env::var("PINC_SCENARIOS").ok().as_deref())
    }

    /// `filter`: comma-separated name fragments; `None` or empty: all.
    pub fn with_filter(filter: Option<&str>) -> Self {
        let filter = filter
            .map(|f| {
                f.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .filter(|f| !f.is_empty());
        Self {
            filter,
            ..Self::default()
        }
    }

    /// Whether `name` is among the scenarios asked for.
    pub fn selected(&self, name: &str) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|f| f.iter().any(|part| name.contains(part.as_str())))
    }

    /// Whether to run `name`; one that is not selected is listed as such
    /// by [`Scenarios::finish`] (or [`Scenarios::not_selected`]).
    pub fn take(&mut self, name: &str) -> bool {
        let selected = self.selected(name);
        if selected {
            self.selected_ran += 1;
        } else {
            self.not_selected.push(name.to_string());
        }
        selected
    }

    /// The scenarios [`Scenarios::take`] turned down, in order.
    pub fn not_selected(&self) -> &[String] {
        &self.not_selected
    }

    /// Runs one scenario, catching its panic, if it is selected.
    pub fn run(&mut self, name: &str, f: impl FnOnce()) {
        if self.take(name) {
            self.run_always(name, f);
        }
    }

    /// A step later scenarios need (a shared container, say): it runs
    /// whatever `PINC_SCENARIOS` selects.
    pub fn setup(&mut self, name: &str, f: impl FnOnce()) {
        self.run_always(name, f);
    }

    fn run_always(&mut self, name: &str, f: impl FnOnce()) {
        eprintln!("=== scenario: {name}");
        let start = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(f));
        let took = start.elapsed();
        let outcome = match result {
            Ok(()) => {
                eprintln!("=== PASS {name} ({took:.2?})");
                Ok(took)
            }
            Err(payload) => {
                let msg = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".to_string());
                eprintln!("=== FAIL {name} ({took:.2?}): {msg}");
                Err(msg)
            }
        };
        self.results.push((name.to_string(), outcome));
    }

    /// Prints a summary and panics if any scenario failed, or if
    /// `PINC_SCENARIOS` selected none.
    pub fn finish(self) {
        let failed: Vec<String> = self
            .results
            .iter()
            .filter_map(|(n, r)| r.as_ref().err().map(|e| format!("{n}: {e}")))
            .collect();
        eprintln!("=== summary");
        for (name, r) in &self.results {
            match r {
                Ok(t) => eprintln!("  PASS {name} ({t:.2?})"),
                Err(_) => eprintln!("  FAIL {name}"),
            }
        }
        for name in &self.not_selected {
            eprintln!("  not selected by PINC_SCENARIOS: {name}");
        }
        if let Some(filter) = &self.filter {
            assert!(
                self.selected_ran > 0,
                "PINC_SCENARIOS={} selects none of these scenarios",
                filter.join(",")
            );
        }
        assert!(
            failed.is_empty(),
            "{} of {} scenarios failed:\n{}",
            failed.len(),
            self.results.len(),
            failed.join("\n")
        );
    }
}

/// What a private containerd gets beyond the base config.
#[derive(Debug, Default, Clone)]
pub struct ContainerdOptions {
    /// Keep the CRI plugin (its config goes in `extra_config`).
    pub cri: bool,
    /// TOML appended to the config.
    pub extra_config: String,
    /// Folders put in front of containerd's PATH.
    pub path_prepend: Vec<PathBuf>,
}

/// A private containerd 1.6: own root, state, gRPC and ttrpc sockets, no
/// CRI plugin unless asked. Containers it runs through `io.containerd.runc.v2` keep
/// their runtime state in `/run/containerd/runc/<namespace>`; use a unique
/// namespace (recorded by [`Containerd::use_namespace`]) so that path is
/// ours alone.
pub struct Containerd {
    child: Child,
    pub sock: PathBuf,
    pub log: PathBuf,
    /// Namespaces used through this daemon; cleaned up on drop.
    namespaces: Vec<String>,
    ctr: PathBuf,
    dir: tempfile::TempDir,
}

impl Containerd {
    pub fn start() -> Self {
        Self::start_with(&ContainerdOptions::default())
    }

    /// A private containerd with extra config (TOML appended to the base
    /// config, e.g. a CRI plugin section: then `cri` is not disabled) and
    /// extra folders in front of its PATH (where it finds shims by name).
    pub fn start_with(opts: &ContainerdOptions) -> Self {
        let bin = require_bin("containerd", "containerd");
        let ctr = require_bin("ctr", "containerd");
        require_bin("containerd-shim-runc-v2", "containerd");
        let dir = short_tempdir("pinc-ctd-");
        let d = dir.path();
        let sock = d.join("c.sock");
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
{disabled}

[grpc]
  address = "{sock}"

[ttrpc]
  address = "{sock}.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
{extra}
"#,
            disabled = if opts.cri {
                ""
            } else {
                r#"disabled_plugins = ["io.containerd.grpc.v1.cri"]"#
            },
            extra = opts.extra_config,
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = sock.display(),
            opt = d.join("opt").display(),
        );
        let config_path = d.join("config.toml");
        fs::write(&config_path, config).expect("containerd config");
        let log = d.join("containerd.log");
        let log_file = fs::File::create(&log).expect("containerd log");
        let path = std::env::var_os("PATH").unwrap_or_default();
        let path = std::env::join_paths(
            opts.path_prepend
                .iter()
                .cloned()
                .chain(std::env::split_paths(&path)),
        )
        .expect("PATH");
        let child = Command::new(bin)
            .arg("--config")
            .arg(&config_path)
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log fd"))
            .stderr(log_file)
            .spawn()
            .expect("spawn containerd");
        let mut this = Self {
            child,
            sock,
            log,
            namespaces: Vec::new(),
            ctr,
            dir,
        };
        let up = wait_until(Duration::from_secs(30), || {
            if let Ok(Some(status)) = this.child.try_wait() {
                panic!(
                    "containerd exited ({status}) during start-up:\n{}",
                    log_tail(&this.log, 30)
                );
            }
            this.sock.exists()
                && run_with_timeout(
                    Command::new(&this.ctr)
                        .arg("--address")
                        .arg(&this.sock)
                        .arg("version"),
                    Duration::from_secs(10),
                )
                .status
                .success()
        });
        assert!(
            up,
            "containerd did not answer within 30s:\n{}",
            log_tail(&this.log, 30)
        );
        this
    }

    /// The temporary directory holding everything of this daemon.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Records a namespace this daemon's clients use (for cleanup).
    pub fn use_namespace(&mut self, ns: &str) {
        if !self.namespaces.iter().any(|n| n == ns) {
            self.namespaces.push(ns.to_string());
        }
    }

    /// `ctr --address <sock> --namespace <ns> args...`
    pub fn ctr(&self, ns: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.ctr);
        cmd.arg("--address")
            .arg(&self.sock)
            .arg("--namespace")
            .arg(ns)
            .args(args);
        cmd
    }

    /// Runs ctr with the default timeout.
    pub fn ctr_out(&self, ns: &str, args: &[&str]) -> Output {
        run_with_timeout(&mut self.ctr(ns, args), CMD_TIMEOUT)
    }

    /// The runc-compatible state root the runc v2 shim uses for `ns`.
    pub fn runc_root(ns: &str) -> PathBuf {
        Path::new("/run/containerd/runc").join(ns)
    }

    fn cleanup_namespace(&self, ns: &str) {
        let quick = Duration::from_secs(20);
        let tasks = run_with_timeout(&mut self.ctr(ns, &["task", "ls", "-q"]), quick);
        for id in String::from_utf8_lossy(&tasks.stdout).split_whitespace() {
            let _ = run_with_timeout(
                &mut self.ctr(ns, &["task", "kill", "-a", "-s", "SIGKILL", id]),
                quick,
            );
            let _ = run_with_timeout(&mut self.ctr(ns, &["task", "rm", "-f", id]), quick);
        }
        let containers = run_with_timeout(&mut self.ctr(ns, &["container", "ls", "-q"]), quick);
        for id in String::from_utf8_lossy(&containers.stdout).split_whitespace() {
            let _ = run_with_timeout(&mut self.ctr(ns, &["container", "rm", id]), quick);
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            for ns in self.namespaces.clone() {
                self.cleanup_namespace(&ns);
            }
        }
        stop_child(&mut self.child, Duration::from_secs(15));
        // Shims outlive containerd; theirs carry our socket path.
        let killed = kill_processes_mentioning(&self.dir.path().to_string_lossy());
        if !killed.is_empty() {
            eprintln!("killed leftover containerd helpers: {killed:?}");
        }
        unmount_under(self.dir.path());
        for ns in &self.namespaces {
            let root = Self::runc_root(ns);
            // Only pinc's private directory may remain; a container's state
            // dir means something leaked, so keep it for inspection.
            let only_private = fs::read_dir(&root)
                .map(|it| it.flatten().all(|e| e.file_name() == ".pinc"))
                .unwrap_or(false);
            if only_private {
                let _ = fs::remove_dir_all(&root);
            } else if root.exists() {
                eprintln!("leaving {} (it holds container state)", root.display());
            }
        }
    }
}

/// A private Docker 20.10 engine on a private containerd, with pinc
/// registered as runtime `pinc`.
pub struct Dockerd {
    child: Child,
    pub sock: PathBuf,
    pub log: PathBuf,
    pub exec_root: PathBuf,
    pub namespace: String,
    client: PathBuf,
    config_dir: PathBuf,
    // Fields drop in order, after `Drop::drop`: containerd (which the
    // engine's containers ran on) stops before the directories go.
    pub containerd: Containerd,
    dir: tempfile::TempDir,
}

impl Dockerd {
    pub fn start(pinc: &Path) -> Self {
        let bin = require_bin("dockerd", "docker.io");
        let client = docker_client();
        let mut containerd = Containerd::start();
        let namespace = format!("pinc-docker-{}", std::process::id());
        containerd.use_namespace(&namespace);
        containerd.use_namespace(&format!("{namespace}-plugins"));
        let dir = short_tempdir("pinc-dockerd-");
        let d = dir.path();
        let sock = d.join("docker.sock");
        let exec_root = d.join("exec");
        let config_dir = d.join("client");
        fs::create_dir_all(&config_dir).expect("client config dir");
        // An empty daemon.json: /etc/docker/daemon.json must not leak in.
        fs::write(d.join("daemon.json"), "{}").expect("daemon.json");
        let log = d.join("dockerd.log");
        let log_file = fs::File::create(&log).expect("dockerd log");
        let child = Command::new(bin)
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .arg("--config-file")
            .arg(d.join("daemon.json"))
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(&exec_root)
            .arg("--pidfile")
            .arg(d.join("dockerd.pid"))
            .arg("--containerd")
            .arg(&containerd.sock)
            .arg("--containerd-namespace")
            .arg(&namespace)
            .arg("--containerd-plugins-namespace")
            .arg(format!("{namespace}-plugins"))
            .arg("--bridge=none")
            .arg("--iptables=false")
            .arg("--ip6tables=false")
            .arg("--ip-forward=false")
            .arg("--ip-masq=false")
            .arg("--add-runtime")
            .arg(format!("pinc={}", pinc.display()))
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log fd"))
            .stderr(log_file)
            .spawn()
            .expect("spawn dockerd");
        let mut this = Self {
            child,
            sock,
            log,
            exec_root,
            namespace,
            client,
            config_dir,
            containerd,
            dir,
        };
        let up = wait_until(Duration::from_secs(60), || {
            if let Ok(Some(status)) = this.child.try_wait() {
                panic!(
                    "dockerd exited ({status}) during start-up:\n{}",
                    log_tail(&this.log, 30)
                );
            }
            this.sock.exists()
                && run_with_timeout(
                    &mut this.docker(&["version", "--format", "{{.Server.Version}}"]),
                    Duration::from_secs(10),
                )
                .status
                .success()
        });
        assert!(
            up,
            "dockerd did not answer within 60s:\n{}",
            log_tail(&this.log, 30)
        );
        this
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `docker -H unix://<sock> args...` with a private client config.
    pub fn docker(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.client);
        cmd.arg("-H")
            .arg(format!("unix://{}", self.sock.display()))
            .args(args)
            .env("DOCKER_CONFIG", &self.config_dir)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT");
        cmd
    }

    /// Runs docker with the default timeout.
    pub fn out(&self, args: &[&str]) -> Output {
        run_with_timeout(&mut self.docker(args), CMD_TIMEOUT)
    }

    /// Runs docker and requires success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        ok(&format!("docker {args:?}"), &self.out(args))
    }

    /// Stops the engine gracefully (SIGTERM: dockerd stops its running
    /// containers, each within its stop timeout), SIGKILL after 30s.
    pub fn shutdown(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(30));
    }

    /// True while the dockerd process runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if self.running() {
            // Best effort after a failed test: remove what is left first.
            let quick = Duration::from_secs(30);
            let ids = run_with_timeout(&mut self.docker(&["ps", "-aq"]), quick);
            for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
                let _ = run_with_timeout(&mut self.docker(&["rm", "-f", id]), quick);
            }
        }
        self.shutdown();
        let killed = kill_processes_mentioning(&self.dir.path().to_string_lossy());
        if !killed.is_empty() {
            eprintln!("killed leftover dockerd helpers: {killed:?}");
        }
        unmount_under(self.dir.path());
        // self.containerd drops next (after this fn), then the directories.
    }
}

/// Podman 4.3 with a private storage root, run root, tmpdir and config
/// (CONTAINERS_CONF / CONTAINERS_STORAGE_CONF), so the machine's podman
/// state is untouched. Podman does not pass `--root` to the runtime: pinc
/// keeps these containers' state in its default root, /run/pinc.
pub struct Podman {
    bin: PathBuf,
    pinc: PathBuf,
    dir: tempfile::TempDir,
}

impl Podman {
    pub fn new(pinc: &Path) -> Self {
        let bin = require_bin("podman", "podman");
        require_bin("conmon", "conmon");
        let dir = short_tempdir("pinc-podman-");
        let d = dir.path();
        for sub in ["root", "runroot", "tmp", "net"] {
            fs::create_dir_all(d.join(sub)).expect("podman dir");
        }
        fs::write(
            d.join("containers.conf"),
            format!(
                "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\
                 events_logfile_path = \"{}\"\ntmp_dir = \"{}\"\n\n\
                 [network]\nnetwork_config_dir = \"{}\"\n",
                d.join("events.log").display(),
                d.join("tmp").display(),
                d.join("net").display(),
            ),
        )
        .expect("containers.conf");
        fs::write(
            d.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"overlay\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
                d.join("root").display(),
                d.join("runroot").display(),
            ),
        )
        .expect("storage.conf");
        Self {
            bin,
            pinc: pinc.to_path_buf(),
            dir,
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `podman --root .. --runroot .. --tmpdir .. --runtime <pinc> args...`
    pub fn podman(&self, args: &[&str]) -> Command {
        let d = self.dir.path();
        let mut cmd = Command::new(&self.bin);
        cmd.env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"))
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("runroot"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .arg("--runtime")
            .arg(&self.pinc)
            .args(args);
        cmd
    }

    pub fn out(&self, args: &[&str]) -> Output {
        run_with_timeout(&mut self.podman(args), CMD_TIMEOUT)
    }

    pub fn ok(&self, args: &[&str]) -> String {
        ok(&format!("podman {args:?}"), &self.out(args))
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = run_with_timeout(
            &mut self.podman(&["rm", "--all", "--force", "--time", "0"]),
            Duration::from_secs(60),
        );
        // conmon and `podman container cleanup` carry our paths.
        let killed = kill_processes_mentioning(&self.dir.path().to_string_lossy());
        if !killed.is_empty() {
            eprintln!("killed leftover podman helpers: {killed:?}");
        }
        unmount_under(self.dir.path());
    }
}

/// cgroup v1 directories (up to three levels deep, in every mounted
/// controller) whose name contains `id`: a leak check after a container is
/// removed, wherever the client put its cgroup (`docker/<id>`,
/// `libpod_parent/libpod-<id>`, `<namespace>/<id>`, ...).
pub fn cgroup_dirs_containing(id: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, id: &str, depth: u32, found: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            if e.file_name().to_string_lossy().contains(id) {
                found.push(p);
            } else if depth > 0 {
                walk(&p, id, depth - 1, found);
            }
        }
    }
    let mut found = Vec::new();
    for ctrl in [
        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd",
        "unified",
    ] {
        walk(&Path::new("/sys/fs/cgroup").join(ctrl), id, 2, &mut found);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scenario_filter_selects_by_name_fragment_and_setup_always_runs() {
        let mut s = Scenarios::with_filter(Some("exec, pause"));
        let mut ran = Vec::new();
        s.setup("run -d: the shared container", || ran.push("setup"));
        s.run("run --rm: output", || ran.push("run"));
        s.run("exec: output", || ran.push("exec"));
        s.run("pause / unpause", || ran.push("pause"));
        assert_eq!(ran, ["setup", "exec", "pause"]);
        assert_eq!(s.not_selected, ["run --rm: output"]);
        s.finish();
        let all = Scenarios::with_filter(Some(" , "));
        assert!(all.selected("anything"), "an empty filter selects all");
    }

    #[test]
    #[should_panic(expected = "selects none")]
    fn a_filter_that_selects_nothing_fails_rather_than_passing_empty() {
        let mut s = Scenarios::with_filter(Some("no-such-scenario"));
        s.setup("setup", || {});
        s.run("exec: output", || {});
        s.finish();
    }

    #[test]
    #[should_panic(expected = "1 of 2 scenarios failed")]
    fn a_failed_scenario_fails_the_test_after_the_others_ran() {
        let mut s = Scenarios::with_filter(None);
        s.run("fails", || panic!("boom"));
        let mut later = false;
        s.run("runs anyway", || later = true);
        assert!(later);
        s.finish();
    }
}
