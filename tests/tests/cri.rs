//! Kubernetes' path to pinc: a CRI v1 client (what the kubelet speaks)
//! drives a private containerd 1.6 whose runtime handlers come from the
//! packaged snippet packaging/containerd/config-v2.toml:
//! - `pinc-runc`: containerd's runc shim with BinaryName = pinc;
//! - `pinc`: pinc's own shim, containerd-shim-pinc-v2 (must sit beside
//!   PINC_BIN; the test fails without it).
//!
//! A pod with the annotation `pinc.io/cpus: "1"` must run pinned to one
//! CPU, exec and stats must work, and after removal nothing may be left:
//! no CRI pods or containers, no pinc state, no cgroups.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_cri::v1::*;
use pinc_tests::cri::{busybox_container, host_network_pod, CriDaemon, K8S_NS};
use pinc_tests::cri_compare::{shim_dir, CgroupParent};
use pinc_tests::daemons::{
    cgroup_dirs_containing, log_tail, ok, run_with_timeout, wait_until, Containerd, CMD_TIMEOUT,
};
use pinc_tests::require_root;

/// The CRI plugin always uses namespace k8s.io, so both tests would share
/// the runc shim's state root (and pinc's CPU ledger in it): run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// What one pod's start took.
struct Timing {
    run_pod: Duration,
    create: Duration,
    start: Duration,
}

/// Starts a pod (host network, `pinc.io/cpus: "1"`) with one busybox
/// container through `handler`; returns (pod id, container id, timing).
fn start_pod(
    d: &mut CriDaemon,
    handler: &str,
    name: &str,
    cgroup_parent: &str,
) -> (String, String, Timing) {
    let pod_config = host_network_pod(name, &[("pinc.io/cpus", "1")], cgroup_parent);
    let t0 = Instant::now();
    let pod_id = d
        .client
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod_config.clone()),
            runtime_handler: handler.to_string(),
        })
        .unwrap_or_else(|e| {
            panic!(
                "RunPodSandbox with handler {handler}: {e}\n{}",
                log_tail(&d.containerd.log, 20)
            )
        })
        .pod_sandbox_id;
    let t1 = Instant::now();
    let ctr_config = busybox_container(
        "sleeper",
        &["sleep", "3600"],
        &[("pinc.io/policy", "compact")],
    );
    let ctr_id = d
        .client
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod_id.clone(),
            config: Some(ctr_config),
            sandbox_config: Some(pod_config),
        })
        .unwrap_or_else(|e| panic!("CreateContainer in pod {pod_id}: {e}"))
        .container_id;
    let t2 = Instant::now();
    d.client
        .start_container(StartContainerRequest {
            container_id: ctr_id.clone(),
        })
        .unwrap_or_else(|e| {
            panic!(
                "StartContainer {ctr_id}: {e}\ncontainerd log (shim logs go there):\n{}\nprocesses:\n{}",
                pinc_tests::daemons::log_tail(&d.containerd.log, 60),
                String::from_utf8_lossy(
                    &std::process::Command::new("ps")
                        .args(["-eo", "pid,ppid,stat,wchan:20,args"])
                        .output()
                        .map(|o| o.stdout)
                        .unwrap_or_default()
                )
            )
        });
    let timing = Timing {
        run_pod: t1 - t0,
        create: t2 - t1,
        start: t2.elapsed(),
    };
    (pod_id, ctr_id, timing)
}

/// Stops and removes the container and the pod, checking each call.
fn remove_pod(d: &mut CriDaemon, pod_id: &str, ctr_id: &str) {
    d.client
        .stop_container(StopContainerRequest {
            container_id: ctr_id.to_string(),
            timeout: 10,
        })
        .unwrap_or_else(|e| {
            panic!(
                "StopContainer {ctr_id}: {e}\n{}",
                log_tail(&d.containerd.log, 30)
            )
        });
    let c = &mut d.client;
    c.remove_container(RemoveContainerRequest {
        container_id: ctr_id.to_string(),
    })
    .unwrap_or_else(|e| panic!("RemoveContainer {ctr_id}: {e}"));
    c.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: pod_id.to_string(),
    })
    .unwrap_or_else(|e| panic!("StopPodSandbox {pod_id}: {e}"));
    c.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: pod_id.to_string(),
    })
    .unwrap_or_else(|e| panic!("RemovePodSandbox {pod_id}: {e}"));
}

fn exec(d: &mut CriDaemon, ctr_id: &str, cmd: &[&str]) -> ExecSyncResponse {
    d.client
        .exec_sync(ExecSyncRequest {
            container_id: ctr_id.to_string(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 30,
        })
        .unwrap_or_else(|e| panic!("ExecSync {cmd:?}: {e}"))
}

/// `pinc --root <runc shim root> state <id>`, as JSON.
fn pinc_state(pinc: &Path, root: &Path, id: &str) -> serde_json::Value {
    let out = run_with_timeout(
        Command::new(pinc)
            .arg("--root")
            .arg(root)
            .args(["state", id]),
        CMD_TIMEOUT,
    );
    serde_json::from_str(&ok(&format!("pinc state {id}"), &out)).expect("pinc state JSON")
}

/// pinc ran both pod and container: its state shows the annotations that
/// reached it.
fn check_pinc_state(d: &CriDaemon, pinc_root: &Path, pod_id: &str, ctr_id: &str) {
    let ids = d.pinc_ids(pinc_root);
    assert!(
        ids.iter().any(|i| i == pod_id) && ids.iter().any(|i| i == ctr_id),
        "pinc list does not show pod {pod_id} and container {ctr_id}: {ids:?}"
    );
    // Pod annotations reach the sandbox too, but pinc does not place the
    // pause container: it would hold a core for nothing.
    let pod = pinc_state(&d.pinc, pinc_root, pod_id);
    assert_eq!(pod["annotations"]["pinc.io/cpus"], "1", "{pod}");
    assert!(
        pod["annotations"].get("pinc.io/placement").is_none(),
        "the sandbox was placed: {pod}"
    );
    let st = pinc_state(&d.pinc, pinc_root, ctr_id);
    eprintln!(
        "container placement: {}",
        st["annotations"]["pinc.io/placement"]
    );
    let ann = &st["annotations"];
    assert_eq!(ann["pinc.io/cpus"], "1", "pod annotation lost: {st}");
    assert_eq!(
        ann["pinc.io/policy"], "compact",
        "container annotation lost: {st}"
    );
    assert!(
        ann.get("pinc.io/placement").is_some(),
        "pinc did not place the container: {st}"
    );
}

/// ContainerStats reports some memory or CPU use.
fn check_stats(d: &mut CriDaemon, ctr_id: &str) {
    let stats = d
        .client
        .container_stats(ContainerStatsRequest {
            container_id: ctr_id.to_string(),
        })
        .expect("ContainerStats")
        .stats
        .expect("stats present");
    let mem = stats
        .memory
        .as_ref()
        .and_then(|m| m.working_set_bytes.as_ref().or(m.usage_bytes.as_ref()))
        .map_or(0, |v| v.value);
    let cpu = stats
        .cpu
        .as_ref()
        .and_then(|c| c.usage_core_nano_seconds.as_ref())
        .map_or(0, |v| v.value);
    assert!(mem > 0 || cpu > 0, "no usage in ContainerStats: {stats:?}");
}

/// The whole pod lifecycle through `handler`; `pinc_root` is where that
/// handler's shim keeps pinc's state (inspected with `pinc --root`).
fn pod_lifecycle(d: &mut CriDaemon, handler: &str, pinc_root: &Path, parent: &CgroupParent) {
    let version = d
        .client
        .version(VersionRequest::default())
        .expect("CRI Version");
    assert_eq!(version.runtime_api_version, "v1", "{version:?}");
    assert_eq!(version.runtime_name, "containerd", "{version:?}");

    let (pod_id, ctr_id, t) = start_pod(d, handler, "pinned", &parent.0);
    eprintln!(
        "{handler}: RunPodSandbox {:.0?}, CreateContainer {:.0?}, StartContainer {:.0?}",
        t.run_pod, t.create, t.start
    );

    let status = d
        .client
        .container_status(ContainerStatusRequest {
            container_id: ctr_id.clone(),
            verbose: false,
        })
        .expect("ContainerStatus")
        .status
        .expect("container status");
    assert_eq!(
        status.state,
        ContainerState::ContainerRunning as i32,
        "{status:?}"
    );

    check_pinc_state(d, pinc_root, &pod_id, &ctr_id);

    let out = exec(d, &ctr_id, &["cat", "/proc/self/status"]);
    assert_eq!(out.exit_code, 0, "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let cpus = text
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no Cpus_allowed_list in:\n{text}"));
    assert!(
        !cpus.is_empty() && cpus.chars().all(|c| c.is_ascii_digit()),
        "pod with pinc.io/cpus=1 is not pinned to exactly one CPU: Cpus_allowed_list {cpus:?}"
    );

    let out = exec(d, &ctr_id, &["echo", "hi"]);
    assert_eq!(
        (out.exit_code, out.stdout.as_slice()),
        (0, &b"hi\n"[..]),
        "{out:?}"
    );
    let out = exec(d, &ctr_id, &["sh", "-c", "exit 3"]);
    assert_eq!(out.exit_code, 3, "{out:?}");

    check_stats(d, &ctr_id);

    remove_pod(d, &pod_id, &ctr_id);

    let pods = d.client.pod_ids();
    assert!(pods.is_empty(), "pods left: {pods:?}");
    let ctrs = d.client.container_ids();
    assert!(ctrs.is_empty(), "containers left: {ctrs:?}");
    let left = d.pinc_ids(pinc_root);
    assert!(
        left.is_empty(),
        "pinc state left in the runc root: {left:?}"
    );
    // The runc shim may take a moment to delete the cgroup after exit.
    let clean = wait_until(Duration::from_secs(5), || {
        cgroup_dirs_containing(&pod_id).is_empty() && cgroup_dirs_containing(&ctr_id).is_empty()
    });
    assert!(
        clean,
        "cgroups left: {:?} {:?}",
        cgroup_dirs_containing(&pod_id),
        cgroup_dirs_containing(&ctr_id)
    );
}

/// Handler `pinc-runc`: stock containerd, runc shim, BinaryName = pinc.
#[test]
fn cri_pod_through_runc_shim_with_pinc() {
    require_root();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let parent = CgroupParent::new("cri");
    let mut d = CriDaemon::start(Vec::new());
    pod_lifecycle(&mut d, "pinc-runc", &Containerd::runc_root(K8S_NS), &parent);
}

/// Handler `pinc`: containerd-shim-pinc-v2 (runtime_type io.containerd.pinc.v2).
#[test]
fn cri_pod_through_pinc_shim() {
    require_root();
    let dir = shim_dir();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let parent = CgroupParent::new("cri");
    let mut d = CriDaemon::start(vec![dir]);
    let root = d.shim_root.join(K8S_NS);
    pod_lifecycle(&mut d, "pinc", &root, &parent);
}

/// Pod start latency (RunPodSandbox + CreateContainer + StartContainer):
/// pinc's shim (`pinc`) vs containerd's runc shim execing pinc (`pinc-runc`)
/// vs plain runc (`runc`), interleaved with the order rotating per round so
/// no handler always runs first. One warm-up round is not counted.
/// `$PINC_CRI_LAT_ROUNDS` rounds (default 5). Not part of the suite:
/// `cargo test --release -p pinc-tests --test cri cri_pod_start_latency -- --ignored --nocapture`.
#[test]
#[ignore]
fn cri_pod_start_latency() {
    require_root();
    let dir = shim_dir();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let parent = CgroupParent::new("cri");
    let mut d = CriDaemon::start(vec![dir]);
    let rounds: usize = std::env::var("PINC_CRI_LAT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let handlers = ["pinc", "pinc-runc", "runc"];
    let mut results: HashMap<&str, Vec<Duration>> = HashMap::new();
    for round in 0..=rounds {
        for k in 0..handlers.len() {
            let handler = handlers[(round + k) % handlers.len()];
            let name = format!("lat-{handler}-{round}");
            let (pod, ctr, t) = start_pod(&mut d, handler, &name, &parent.0);
            let warm_up = round == 0;
            if !warm_up {
                results
                    .entry(handler)
                    .or_default()
                    .push(t.run_pod + t.create + t.start);
            }
            eprintln!(
                "{handler} #{round}{}: RunPodSandbox {:.0?} Create {:.0?} Start {:.0?}",
                if warm_up { " (warm-up)" } else { "" },
                t.run_pod,
                t.create,
                t.start
            );
            remove_pod(&mut d, &pod, &ctr);
        }
    }
    let median = |h: &str| {
        let mut v = results.get(h).cloned().unwrap_or_default();
        v.sort();
        v.get(v.len() / 2).copied()
    };
    for h in handlers {
        if let Some(m) = median(h) {
            eprintln!("{h}: median {m:.0?} of {:?}", results[h]);
        }
    }
    for (a, b) in [
        ("pinc", "runc"),
        ("pinc-runc", "runc"),
        ("pinc", "pinc-runc"),
    ] {
        if let (Some(x), Some(y)) = (median(a), median(b)) {
            eprintln!(
                "ratio {a}/{b}: {:.2}",
                x.as_secs_f64() / y.as_secs_f64().max(1e-9)
            );
        }
    }
}
