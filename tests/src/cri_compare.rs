//! CRI scenarios run through every handler and compared with runc.
//!
//! A scenario is a function from a [`Ctx`] (one handler, its own pods) to
//! [`Facts`]: what a Kubernetes user would observe (an exit code, a uid, a
//! status reason, a file's content). [`Suite::compare`] runs it through
//! `runc` (containerd's runc shim with runc: the reference), `pinc-runc`
//! (the runc shim with pinc as BinaryName) and `pinc` (pinc's own shim),
//! and fails the scenario where a handler's facts differ from runc's.
//! Scenarios also assert what the facts must be, so a scenario that every
//! handler gets equally wrong still fails.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_cri::v1::*;

use crate::cri::{busybox_container, host_network_pod, CriDaemon, K8S_NS};
use crate::daemons::{log_tail, pinc_abs, wait_until, Containerd, Scenarios};

/// Every handler a scenario runs through; the first is the reference.
pub const HANDLERS: [&str; 3] = ["runc", "pinc-runc", "pinc"];

/// What a scenario observed, by name. Compared as a whole between handlers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Facts(pub BTreeMap<String, String>);

impl Facts {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one fact (builder style).
    pub fn with(mut self, name: &str, value: impl ToString) -> Self {
        self.0.insert(name.to_string(), value.to_string());
        self
    }

    pub fn set(&mut self, name: &str, value: impl ToString) {
        self.0.insert(name.to_string(), value.to_string());
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The facts where `self` (a handler) differs from `reference` (runc).
    fn diff(&self, reference: &Facts) -> String {
        let mut out = String::new();
        let names: std::collections::BTreeSet<&String> =
            self.0.keys().chain(reference.0.keys()).collect();
        for n in names {
            let (a, b) = (reference.0.get(n), self.0.get(n));
            if a != b {
                let _ = write!(out, "\n    {n}: runc {a:?}, this handler {b:?}");
            }
        }
        out
    }
}

/// The pinc-specific cgroup parent of a suite's pods, removed at the end
/// with what a failed test left below it (deepest first; the path carries
/// our pid, so its processes are ours to kill).
pub struct CgroupParent(pub String);

impl CgroupParent {
    pub fn new(tag: &str) -> Self {
        Self(format!("/pinc-{tag}-{}", std::process::id()))
    }
}

impl Drop for CgroupParent {
    fn drop(&mut self) {
        fn remove_tree(dir: &Path) {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                        remove_tree(&e.path());
                    }
                }
            }
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            // rmdir fails while the killed processes are still exiting.
            wait_until(Duration::from_secs(5), || {
                std::fs::remove_dir(dir).is_ok() || !dir.exists()
            });
        }
        for ctrl in [
            "cpu",
            "cpuacct",
            "cpuset",
            "memory",
            "devices",
            "freezer",
            "blkio",
            "pids",
            "systemd",
            "hugetlb",
            "unified",
            "net_cls",
            "net_prio",
            "perf_event",
            "rdma",
        ] {
            let dir = PathBuf::from(format!("/sys/fs/cgroup/{ctrl}{}", self.0));
            if dir.exists() {
                remove_tree(&dir);
            }
        }
    }
}

/// Where pinc's containerd shim must be: beside the pinc binary under test.
pub fn shim_dir() -> PathBuf {
    let pinc = pinc_abs();
    let dir = pinc.parent().expect("pinc has a parent dir").to_path_buf();
    let shim = dir.join("containerd-shim-pinc-v2");
    assert!(
        shim.is_file(),
        "{} is missing: the `pinc` runtime handler needs pinc's containerd shim beside \
         PINC_BIN ({}); build it with `cargo build --release -p containerd-shim-pinc-v2`",
        shim.display(),
        pinc.display()
    );
    dir
}

/// One scenario's outcome under one handler.
struct Outcome {
    scenario: String,
    handler: &'static str,
    result: Result<Facts, String>,
}

/// A private containerd with all handlers, and the outcomes so far.
///
/// Scenarios are selected by name as everywhere else
/// ([`Scenarios`]: `PINC_SCENARIOS=a,b`); the daemon starts with the first
/// selected one, so a suite none of whose scenarios is selected costs nothing.
pub struct Suite {
    // Field order is drop order: the daemon stops before the cgroup parent goes.
    started: Option<(CriDaemon, CgroupParent)>,
    tag: String,
    select: Scenarios,
    outcomes: Vec<Outcome>,
    took: Vec<(String, Duration)>,
}

impl Suite {
    /// `tag` names the suite's cgroup parent (`/pinc-<tag>-<pid>`).
    pub fn start(tag: &str) -> Self {
        Self {
            started: None,
            tag: tag.to_string(),
            select: Scenarios::new(),
            outcomes: Vec::new(),
            took: Vec::new(),
        }
    }

    fn daemon(&mut self) -> (&mut CriDaemon, &CgroupParent) {
        let (d, parent) = self.started.get_or_insert_with(|| {
            let parent = CgroupParent::new(&self.tag);
            (CriDaemon::start(vec![shim_dir()]), parent)
        });
        (d, parent)
    }

    /// Runs `scenario` through every handler (runc first) and records where
    /// a handler panicked or observed other facts than runc.
    pub fn compare(&mut self, name: &str, scenario: impl Fn(&mut Ctx) -> Facts) {
        if !self.select.take(name) {
            return;
        }
        eprintln!("=== scenario: {name}");
        let start = Instant::now();
        for handler in HANDLERS {
            let (d, parent) = self.daemon();
            let parent = parent.0.clone();
            let mut ctx = Ctx {
                d,
                handler,
                scenario: name.to_string(),
                parent,
                pods: Vec::new(),
            };
            let result = catch_unwind(AssertUnwindSafe(|| scenario(&mut ctx))).map_err(|p| {
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".to_string())
            });
            // A pod that does not stop or go is a failure of its own
            // (containerd would retry StopPodSandbox for ever).
            let result = match (result, ctx.cleanup()) {
                (Ok(_), Err(e)) => Err(e),
                (r, _) => r,
            };
            match &result {
                Ok(f) => eprintln!("    {handler}: {:?}", f.0),
                Err(e) => eprintln!("    {handler}: FAILED: {e}"),
            }
            self.outcomes.push(Outcome {
                scenario: name.to_string(),
                handler,
                result,
            });
        }
        self.took.push((name.to_string(), start.elapsed()));
    }

    /// Fails the test with every failing scenario and handler, and checks
    /// that the suite's pods left nothing in pinc's state roots.
    pub fn finish(mut self) {
        let mut failures = Vec::new();
        let scenarios: Vec<String> = self.took.iter().map(|(n, _)| n.clone()).collect();
        for s in &scenarios {
            let of = |h: &str| {
                self.outcomes
                    .iter()
                    .find(|o| &o.scenario == s && o.handler == h)
                    .map(|o| &o.result)
            };
            let reference = of(HANDLERS[0]);
            for h in HANDLERS {
                match (of(h), reference) {
                    (Some(Err(e)), _) => failures.push(format!("{s} [{h}]: {e}")),
                    (Some(Ok(f)), Some(Ok(r))) if f != r => {
                        failures.push(format!("{s} [{h}] differs from runc:{}", f.diff(r)))
                    }
                    _ => {}
                }
            }
        }
        eprintln!(
            "=== summary: {} scenarios x {} handlers",
            scenarios.len(),
            HANDLERS.len()
        );
        for (n, t) in &self.took {
            let failed = failures.iter().any(|f| f.starts_with(&format!("{n} [")));
            eprintln!("  {} {n} ({t:.1?})", if failed { "FAIL" } else { "PASS" });
        }
        for name in self.select.not_selected() {
            eprintln!("  not selected by PINC_SCENARIOS: {name}");
        }
        let Some((d, _parent)) = self.started.as_mut() else {
            // Another test of the binary holds the selected scenarios.
            eprintln!(
                "skipped: PINC_SCENARIOS selects none of {}'s scenarios",
                self.tag
            );
            return;
        };
        for root in [Containerd::runc_root(K8S_NS), d.shim_root.join(K8S_NS)] {
            let left = d.pinc_ids(&root);
            if !left.is_empty() {
                failures.push(format!("containers left in {}: {left:?}", root.display()));
            }
        }
        d.client.remove_everything();
        assert!(
            failures.is_empty(),
            "{} failure(s):\n{}\ncontainerd log:\n{}",
            failures.len(),
            failures.join("\n"),
            log_tail(&d.containerd.log, 40)
        );
    }
}

/// One handler's run of one scenario: the pods it starts are stopped and
/// removed when the scenario ends, passed or not.
pub struct Ctx<'a> {
    pub d: &'a mut CriDaemon,
    pub handler: &'static str,
    scenario: String,
    parent: String,
    pods: Vec<String>,
}

impl Ctx<'_> {
    /// A host-network pod of this handler, with `edit` applied to its config
    /// (namespace modes, sysctls, security context...). Returns the pod id
    /// and the config CreateContainer needs again.
    pub fn pod(&mut self, edit: impl FnOnce(&mut PodSandboxConfig)) -> (String, PodSandboxConfig) {
        let name = format!("{}-{}-{}", self.scenario, self.handler, self.pods.len());
        let mut config = host_network_pod(&name, &[], &self.parent);
        edit(&mut config);
        let id = self
            .d
            .client
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: self.handler.to_string(),
            })
            .unwrap_or_else(|e| {
                panic!(
                    "RunPodSandbox: {e}\n{}",
                    log_tail(&self.d.containerd.log, 20)
                )
            })
            .pod_sandbox_id;
        self.pods.push(id.clone());
        (id, config)
    }

    /// Creates a busybox container running `args` in the pod, with `edit`
    /// applied to its config; returns its id (not started).
    pub fn create(
        &mut self,
        pod: &(String, PodSandboxConfig),
        args: &[&str],
        edit: impl FnOnce(&mut ContainerConfig),
    ) -> Result<String, tonic::Status> {
        let mut config = busybox_container("c", args, &[]);
        edit(&mut config);
        self.d
            .client
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pod.0.clone(),
                config: Some(config),
                sandbox_config: Some(pod.1.clone()),
            })
            .map(|r| r.container_id)
    }

    pub fn start(&mut self, id: &str) -> Result<(), tonic::Status> {
        self.d
            .client
            .start_container(StartContainerRequest {
                container_id: id.to_string(),
            })
            .map(drop)
    }

    /// Creates and starts a container; panics (naming the call) on error.
    pub fn run(
        &mut self,
        pod: &(String, PodSandboxConfig),
        args: &[&str],
        edit: impl FnOnce(&mut ContainerConfig),
    ) -> String {
        let id = self
            .create(pod, args, edit)
            .unwrap_or_else(|e| panic!("CreateContainer: {e}"));
        self.start(&id)
            .unwrap_or_else(|e| panic!("StartContainer {id}: {e}"));
        id
    }

    /// ExecSync: (exit code, stdout, stderr).
    pub fn exec(&mut self, id: &str, cmd: &[&str]) -> (i32, String, String) {
        let r = self
            .d
            .client
            .exec_sync(ExecSyncRequest {
                container_id: id.to_string(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                timeout: 30,
            })
            .unwrap_or_else(|e| panic!("ExecSync {cmd:?}: {e}"));
        (
            r.exit_code,
            String::from_utf8_lossy(&r.stdout).into_owned(),
            String::from_utf8_lossy(&r.stderr).into_owned(),
        )
    }

    pub fn status(&mut self, id: &str) -> ContainerStatus {
        self.d
            .client
            .container_status(ContainerStatusRequest {
                container_id: id.to_string(),
                verbose: false,
            })
            .unwrap_or_else(|e| panic!("ContainerStatus {id}: {e}"))
            .status
            .unwrap_or_else(|| panic!("ContainerStatus {id}: no status"))
    }

    /// The host pid of the container's process, from the verbose status
    /// containerd gives (its `info` entry holds the pid).
    pub fn pid(&mut self, id: &str) -> i32 {
        let r = self
            .d
            .client
            .container_status(ContainerStatusRequest {
                container_id: id.to_string(),
                verbose: true,
            })
            .unwrap_or_else(|e| panic!("ContainerStatus {id} (verbose): {e}"));
        let info = r.info.get("info").map(String::as_str).unwrap_or("{}");
        let info: serde_json::Value = serde_json::from_str(info)
            .unwrap_or_else(|e| panic!("ContainerStatus {id}: info is not JSON ({e}): {info}"));
        info["pid"]
            .as_i64()
            .and_then(|p| i32::try_from(p).ok())
            .filter(|&p| p > 0)
            .unwrap_or_else(|| panic!("ContainerStatus {id}: no pid in {info}"))
    }

    /// Waits (bounded) until the container has exited; returns its status.
    pub fn wait_exited(&mut self, id: &str, timeout: Duration) -> ContainerStatus {
        let deadline = Instant::now() + timeout;
        loop {
            let st = self.status(id);
            if st.state == ContainerState::ContainerExited as i32 {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "container {id} still {:?} after {timeout:?}",
                st.state
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops and removes this run's pods (and so their containers); names
    /// the first pod that would not go.
    fn cleanup(&mut self) -> Result<(), String> {
        let mut first = Ok(());
        for id in self.pods.drain(..) {
            let stopped = self.d.client.stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: id.clone(),
            });
            let removed = self.d.client.remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: id.clone(),
            });
            if let Err(e) = stopped.map(drop).and(removed.map(drop)) {
                eprintln!("    cleanup of pod {id} ({}): {e}", self.handler);
                if first.is_ok() {
                    first = Err(format!("StopPodSandbox/RemovePodSandbox {id}: {e}"));
                }
            }
        }
        first
    }
}
