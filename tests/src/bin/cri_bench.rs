//! CRI benchmark driver for bench/shim: stop latency of a container whose
//! init has a child, and pod churn, through a private containerd's CRI for
//! the handlers `pinc` (pinc's shim), `pinc-runc` (runc's shim execing pinc)
//! and `runc` (the reference). Prints the raw samples as JSON on stdout
//! (bench/shim computes and prints the statistics); progress goes to stderr.
//!
//! Built in the dev profile on purpose: the release profile aborts on panic,
//! and the daemon's cleanup (its `Drop`) must run on every exit path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use k8s_cri::v1::*;
use pinc_tests::cri::{busybox_container, host_network_pod, CriClient, CriDaemon};
use pinc_tests::cri_compare::{shim_dir, CgroupParent};
use pinc_tests::daemons::log_tail;
use serde_json::{json, Value};

const USAGE: &str = "\
usage: cri_bench [--rounds N] [--pods P] [-j J] [--churn-repeat R] [--smoke]
                 [--only stop|churn]

  Stop latency: N counted rounds (default 10) after one warm-up round, each
  round one pod per handler, the order rotating. Churn: P pods (default 50),
  J at a time (default 4), per handler, R times (default 1).
  --smoke is --rounds 3 --pods 8. pinc is $PINC_BIN; its shim must be beside it.
  Exit status: 0 when nothing failed.";

/// Handlers, in the order of the first round.
const HANDLERS: [&str; 3] = ["pinc", "pinc-runc", "runc"];
/// Init with a child: the shim must end the child when init exits (the
/// container shares the pod's pid namespace, so nothing else would).
const MULTI: [&str; 3] = ["sh", "-c", "sleep 1000 & sleep 1000"];
/// StopContainer's grace period, as the kubelet's default is 30 s; the
/// processes here die of SIGTERM at once, so it is never used up.
const STOP_TIMEOUT_S: i64 = 10;
/// Exit status of a process ended by SIGTERM (128 + 15).
const SIGTERM_EXIT: i32 = 143;
/// How long the container's processes may take to show up or to go.
const SETTLE: Duration = Duration::from_secs(5);

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn check_interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

struct Args {
    rounds: usize,
    pods: usize,
    parallel: usize,
    churn_repeat: usize,
    stop: bool,
    churn: bool,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        rounds: 10,
        pods: 50,
        parallel: 4,
        churn_repeat: 1,
        stop: true,
        churn: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut count = |name: &str| -> Result<usize> {
            it.next()
                .with_context(|| format!("{name} needs a value (see --help)"))?
                .parse()
                .with_context(|| format!("{name} takes a count"))
        };
        match arg.as_str() {
            "--rounds" => a.rounds = count("--rounds")?,
            "--pods" => a.pods = count("--pods")?,
            "-j" => a.parallel = count("-j")?,
            "--churn-repeat" => a.churn_repeat = count("--churn-repeat")?,
            "--smoke" => {
                a.rounds = 3;
                a.pods = 8;
            }
            "--only" => match it.next().as_deref() {
                Some("stop") => a.churn = false,
                Some("churn") => a.stop = false,
                other => bail!("--only takes stop or churn, not {other:?}"),
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (see --help)"),
        }
    }
    if a.rounds == 0 || a.pods == 0 || a.parallel == 0 || a.churn_repeat == 0 {
        bail!("counts must be at least 1");
    }
    Ok(a)
}

/// The gRPC status as an error naming the call.
fn call<T>(what: &str, r: std::result::Result<T, tonic::Status>) -> Result<T> {
    r.map_err(|s| anyhow::anyhow!("{what}: {:?}: {}", s.code(), s.message()))
}

struct Pod {
    id: String,
    config: PodSandboxConfig,
}

fn run_pod(c: &mut CriClient, handler: &str, name: &str, parent: &str) -> Result<Pod> {
    let config = host_network_pod(name, &[], parent);
    let id = call(
        "RunPodSandbox",
        c.run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.to_string(),
        }),
    )?
    .pod_sandbox_id;
    Ok(Pod { id, config })
}

fn create_start(c: &mut CriClient, pod: &Pod) -> Result<String> {
    let id = call(
        "CreateContainer",
        c.create_container(CreateContainerRequest {
            pod_sandbox_id: pod.id.clone(),
            config: Some(busybox_container("multi", &MULTI, &[])),
            sandbox_config: Some(pod.config.clone()),
        }),
    )?
    .container_id;
    call(
        "StartContainer",
        c.start_container(StartContainerRequest {
            container_id: id.clone(),
        }),
    )?;
    Ok(id)
}

fn stop_container(c: &mut CriClient, id: &str) -> Result<()> {
    call(
        "StopContainer",
        c.stop_container(StopContainerRequest {
            container_id: id.to_string(),
            timeout: STOP_TIMEOUT_S,
        }),
    )
    .map(drop)
}

fn stop_pod(c: &mut CriClient, id: &str) -> Result<()> {
    call(
        "StopPodSandbox",
        c.stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: id.to_string(),
        }),
    )
    .map(drop)
}

fn remove_pod(c: &mut CriClient, id: &str) -> Result<()> {
    call(
        "RemovePodSandbox",
        c.remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: id.to_string(),
        }),
    )
    .map(drop)
}

/// After a failure: the pod goes anyway (best effort), so the next one
/// starts from a clean node.
fn discard_pod(c: &mut CriClient, id: &str) {
    let _ = stop_pod(c, id);
    let _ = remove_pod(c, id);
}

/// The container's cgroup in the pids hierarchy (cgroupfs driver: the pod's
/// cgroup parent joined with the container id, for every handler).
fn container_cgroup(parent: &str, id: &str) -> PathBuf {
    PathBuf::from(format!("/sys/fs/cgroup/pids{parent}/{id}"))
}

fn cgroup_pids(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Polls (bounded) until `f` holds; false on timeout.
fn settle(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + SETTLE;
    while !f() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// One stop-latency sample: StopContainer of a running init with a child,
/// then StopPodSandbox.
struct StopSample {
    stop_container: Duration,
    stop_pod: Duration,
    exit_code: i32,
}

fn stop_round(d: &mut CriDaemon, parent: &str, handler: &str, name: &str) -> Result<StopSample> {
    check_interrupted()?;
    let pod = run_pod(&mut d.client, handler, name, parent)?;
    let res = stop_pod_round(&mut d.client, parent, &pod);
    if res.is_err() {
        discard_pod(&mut d.client, &pod.id);
    }
    res.with_context(|| log_tail(&d.containerd.log, 15))
}

fn stop_pod_round(c: &mut CriClient, parent: &str, pod: &Pod) -> Result<StopSample> {
    let id = create_start(c, pod)?;
    let cgroup = container_cgroup(parent, &id);
    // Init and its child both running: the case under test.
    if !settle(|| cgroup_pids(&cgroup).len() == 2) {
        bail!(
            "{}: expected init and its child, found pids {:?}",
            cgroup.display(),
            cgroup_pids(&cgroup)
        );
    }
    let t0 = Instant::now();
    stop_container(c, &id)?;
    let stop_container_t = t0.elapsed();
    // The child must be gone with init (the cgroup may be gone too).
    if !settle(|| cgroup_pids(&cgroup).is_empty()) {
        bail!(
            "StopContainer returned but {} still holds {:?}",
            cgroup.display(),
            cgroup_pids(&cgroup)
        );
    }
    let status = call(
        "ContainerStatus",
        c.container_status(ContainerStatusRequest {
            container_id: id.clone(),
            verbose: false,
        }),
    )?
    .status
    .context("ContainerStatus without a status")?;
    if status.state != ContainerState::ContainerExited as i32 {
        bail!("after StopContainer the state is {:?}", status.state);
    }
    // SIGTERM ended it, not the SIGKILL after the grace period: the
    // latency is the shim's, not the timeout's.
    if status.exit_code != SIGTERM_EXIT {
        bail!(
            "exit code {} after StopContainer, expected {SIGTERM_EXIT}",
            status.exit_code
        );
    }
    let t1 = Instant::now();
    stop_pod(c, &pod.id)?;
    let stop_pod_t = t1.elapsed();
    remove_pod(c, &pod.id)?;
    Ok(StopSample {
        stop_container: stop_container_t,
        stop_pod: stop_pod_t,
        exit_code: status.exit_code,
    })
}

/// Stop latency: rounds 0 (warm-up, dropped) to `rounds`, one pod per
/// handler each, the order rotating so no handler always goes first.
fn stop_bench(d: &mut CriDaemon, parent: &str, rounds: usize) -> (Value, usize) {
    let mut samples: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let mut errors: Vec<String> = Vec::new();
    for round in 0..=rounds {
        for k in 0..HANDLERS.len() {
            let handler = HANDLERS[(round + k) % HANDLERS.len()];
            let name = format!("stop-{handler}-{round}");
            match stop_round(d, parent, handler, &name) {
                Ok(s) => {
                    eprintln!(
                        "stop {handler} #{round}{}: StopContainer {:.1?}, StopPodSandbox {:.1?}",
                        if round == 0 { " (warm-up)" } else { "" },
                        s.stop_container,
                        s.stop_pod
                    );
                    if round > 0 {
                        samples.entry(handler).or_default().push(json!({
                            "stop_container_ns": s.stop_container.as_nanos() as u64,
                            "stop_pod_ns": s.stop_pod.as_nanos() as u64,
                            "exit_code": s.exit_code,
                        }));
                    }
                }
                Err(e) => {
                    eprintln!("stop {handler} #{round}: FAILED: {e:#}");
                    errors.push(format!("{handler} #{round}: {e:#}"));
                }
            }
            if INTERRUPTED.load(Ordering::SeqCst) {
                errors.push("interrupted".into());
                return (json!({"samples": samples, "errors": errors}), errors.len());
            }
        }
    }
    let failures = errors.len();
    (
        json!({"rounds": rounds, "warmup": 1, "timeout_s": STOP_TIMEOUT_S,
               "samples": samples, "errors": errors}),
        failures,
    )
}

/// One churned pod: the whole lifecycle a kubelet drives.
fn churn_pod(c: &mut CriClient, handler: &str, name: &str, parent: &str) -> Result<()> {
    check_interrupted()?;
    let pod = run_pod(c, handler, name, parent)?;
    let res = (|| {
        let id = create_start(c, &pod)?;
        stop_container(c, &id)?;
        stop_pod(c, &pod.id)?;
        remove_pod(c, &pod.id)
    })();
    if res.is_err() {
        discard_pod(c, &pod.id);
    }
    res
}

/// `pods` pods through `handler`, `parallel` at a time, each worker with
/// its own connection (the client is synchronous).
fn churn_run(d: &mut CriDaemon, parent: &str, handler: &str, tag: &str, a: &Args) -> Value {
    let next = AtomicUsize::new(0);
    let pod_ns = Mutex::new(Vec::new());
    let errors = Mutex::new(Vec::new());
    let sock = d.containerd.sock.clone();
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..a.parallel {
            s.spawn(|| {
                let mut c = CriClient::connect(&sock);
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    // Interrupted: the pods not yet begun are not failures.
                    if i >= a.pods || INTERRUPTED.load(Ordering::SeqCst) {
                        break;
                    }
                    let name = format!("churn-{handler}-{tag}-{i}");
                    let t = Instant::now();
                    match churn_pod(&mut c, handler, &name, parent) {
                        Ok(()) => pod_ns
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(t.elapsed().as_nanos() as u64),
                        Err(e) => errors
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(format!("{name}: {e:#}")),
                    }
                }
            });
        }
    });
    let wall = t0.elapsed();
    let mut errors = errors.into_inner().unwrap_or_else(|p| p.into_inner());
    // Every pod must be gone: one still listed is a failure too.
    match call(
        "ListPodSandbox",
        d.client.list_pod_sandbox(ListPodSandboxRequest::default()),
    ) {
        Ok(r) if r.items.is_empty() => {}
        Ok(r) => {
            for p in r.items {
                errors.push(format!("pod {} still listed after the churn", p.id));
                discard_pod(&mut d.client, &p.id);
            }
        }
        Err(e) => errors.push(format!("{e:#}")),
    }
    let pod_ns = pod_ns.into_inner().unwrap_or_else(|p| p.into_inner());
    eprintln!(
        "churn {handler} {tag}: {} of {} pods, {} at a time, {wall:.2?} ({:.2} pods/s), {} failure(s)",
        pod_ns.len(),
        a.pods,
        a.parallel,
        pod_ns.len() as f64 / wall.as_secs_f64().max(1e-9),
        errors.len()
    );
    for e in &errors {
        eprintln!("  {e}");
    }
    json!({"wall_ns": wall.as_nanos() as u64, "ok": pod_ns.len(),
           "pod_ns": pod_ns, "failures": errors.len(), "errors": errors})
}

fn churn_bench(d: &mut CriDaemon, parent: &str, a: &Args) -> (Value, usize) {
    let mut runs: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let mut failures = 0;
    for rep in 0..a.churn_repeat {
        for k in 0..HANDLERS.len() {
            let handler = HANDLERS[(rep + k) % HANDLERS.len()];
            let run = churn_run(d, parent, handler, &rep.to_string(), a);
            failures += run["failures"].as_u64().unwrap_or(1) as usize;
            runs.entry(handler).or_default().push(run);
            if INTERRUPTED.load(Ordering::SeqCst) {
                return (json!({"runs": runs, "interrupted": true}), failures + 1);
            }
        }
    }
    (
        json!({"pods": a.pods, "parallel": a.parallel, "repeat": a.churn_repeat,
               "timeout_s": STOP_TIMEOUT_S, "runs": runs}),
        failures,
    )
}

fn main() -> std::process::ExitCode {
    match bench_main() {
        Ok(0) => std::process::ExitCode::SUCCESS,
        Ok(n) => {
            eprintln!("cri_bench: {n} failure(s)");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("cri_bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn bench_main() -> Result<usize> {
    let a = parse_args()?;
    if !nix::unistd::geteuid().is_root() {
        bail!("cri_bench runs real pods and needs root");
    }
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
    let dir = shim_dir();
    // Declared before the daemon, so dropped after it: the pods' cgroups
    // are ours (the path has our pid) and go once containerd has stopped.
    let parent = CgroupParent::new("crib");
    let t0 = Instant::now();
    let mut d = CriDaemon::start(vec![dir]);
    eprintln!("containerd with CRI up in {:.1?}", t0.elapsed());
    let mut out = json!({
        "handlers": HANDLERS,
        "command": MULTI,
        "pinc": d.pinc,
        "cgroup_parent": parent.0,
    });
    let mut failures = 0;
    if a.stop {
        let (v, f) = stop_bench(&mut d, &parent.0, a.rounds);
        out["stop"] = v;
        failures += f;
    }
    if a.churn && !INTERRUPTED.load(Ordering::SeqCst) {
        let (v, f) = churn_bench(&mut d, &parent.0, &a);
        out["churn"] = v;
        failures += f;
    }
    out["failures"] = json!(failures);
    println!("{out}");
    Ok(failures)
}
