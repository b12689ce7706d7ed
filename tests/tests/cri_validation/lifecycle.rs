//! Pod and container lifecycle and status.

use std::collections::HashMap;
use std::time::Duration;

use k8s_cri::v1::*;
use pinc_tests::cri_compare::{Ctx, Facts, Suite};
use pinc_tests::daemons::wait_until;
use pinc_tests::procfs::signal_mask;

const EXITED: i32 = ContainerState::ContainerExited as i32;
const RUNNING: i32 = ContainerState::ContainerRunning as i32;
const CREATED: i32 = ContainerState::ContainerCreated as i32;
const READY: i32 = PodSandboxState::SandboxReady as i32;
const NOTREADY: i32 = PodSandboxState::SandboxNotready as i32;

fn stop(c: &mut Ctx, id: &str, timeout: i64) {
    c.d.client
        .stop_container(StopContainerRequest {
            container_id: id.to_string(),
            timeout,
        })
        .unwrap_or_else(|e| panic!("StopContainer {id} (timeout {timeout}): {e}"));
}

fn pod_state(c: &mut Ctx, pod: &str) -> i32 {
    c.d.client
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: pod.to_string(),
            verbose: false,
        })
        .unwrap_or_else(|e| panic!("PodSandboxStatus {pod}: {e}"))
        .status
        .expect("PodSandboxStatus has a status")
        .state
}

/// Ids of the pod's containers in `state` (None: all), sorted.
fn listed(c: &mut Ctx, pod: &str, state: Option<i32>) -> Vec<String> {
    let mut ids: Vec<String> =
        c.d.client
            .list_containers(ListContainersRequest {
                filter: Some(ContainerFilter {
                    pod_sandbox_id: pod.to_string(),
                    state: state.map(|state| ContainerStateValue { state }),
                    ..Default::default()
                }),
            })
            .expect("ListContainers")
            .containers
            .into_iter()
            .map(|c| c.id)
            .collect();
    ids.sort();
    ids
}

/// A config edit naming the container (names are unique in a pod).
pub fn named(n: &'static str) -> impl FnOnce(&mut ContainerConfig) {
    move |m| m.metadata.as_mut().expect("metadata").name = n.into()
}

fn remove(c: &mut Ctx, id: &str) {
    c.d.client
        .remove_container(RemoveContainerRequest {
            container_id: id.to_string(),
        })
        .unwrap_or_else(|e| panic!("RemoveContainer {id}: {e}"));
}

pub fn scenarios(s: &mut Suite) {
    s.compare("exit-code-and-status", exit_code_and_status);
    s.compare("create-start-stop-remove", create_start_stop_remove);
    s.compare(
        "stop-timeout-term-honoured-or-killed",
        stop_timeout_term_honoured_or_killed,
    );
    s.compare("list-filters", list_filters);
    s.compare("restart-in-pod", restart_in_pod);
    s.compare("stop-with-children-then-pod", stop_with_children_then_pod);
    s.compare("running-container-status", running_container_status);
}

fn exit_code_and_status(c: &mut Ctx<'_>) -> Facts {
    let pod = c.pod(|_| {});
    let id = c.run(&pod, &["sh", "-c", "exit 7"], |_| {});
    let st = c.wait_exited(&id, Duration::from_secs(30));
    assert_eq!(st.exit_code, 7, "{st:?}");
    assert_eq!(st.reason, "Error", "{st:?}");
    // Not ordered: containerd stamps started_at when StartContainer returns.
    assert!(st.started_at > 0 && st.finished_at > 0, "{st:?}");
    // Exit 0 is "Completed" (the kubelet shows it as such).
    let ok = c.run(&pod, &["true"], named("ok"));
    let st0 = c.wait_exited(&ok, Duration::from_secs(30));
    assert_eq!(
        (st0.exit_code, st0.reason.as_str()),
        (0, "Completed"),
        "{st0:?}"
    );
    Facts::new()
        .with("state", st.state)
        .with("exit_code", st.exit_code)
        .with("reason", &st.reason)
        .with("ok_exit_code", st0.exit_code)
        .with("ok_reason", &st0.reason)
}

fn create_start_stop_remove(c: &mut Ctx<'_>) -> Facts {
    let pod = c.pod(|_| {});
    let mut f = Facts::new();
    assert_eq!(pod_state(c, &pod.0), READY);
    let id = c
        .create(&pod, &["sleep", "3600"], |_| {})
        .unwrap_or_else(|e| panic!("CreateContainer: {e}"));
    let st = c.status(&id);
    assert_eq!(st.state, CREATED, "{st:?}");
    assert_eq!(st.started_at, 0, "created, not started: {st:?}");
    f.set("created_state", st.state);
    c.start(&id)
        .unwrap_or_else(|e| panic!("StartContainer: {e}"));
    let st = c.status(&id);
    assert_eq!(st.state, RUNNING, "{st:?}");
    f.set("started_state", st.state);
    // sleep is not the pod's pid 1 (pause is): SIGTERM kills it.
    stop(c, &id, 30);
    let st = c.status(&id);
    assert_eq!(
        st.state, EXITED,
        "StopContainer returns once exited: {st:?}"
    );
    assert_eq!((st.exit_code, st.reason.as_str()), (143, "Error"), "{st:?}");
    f.set(
        "stopped",
        format!("{} {} {}", st.state, st.exit_code, st.reason),
    );
    remove(c, &id);
    let gone = c.d.client.container_status(ContainerStatusRequest {
        container_id: id.clone(),
        verbose: false,
    });
    let code = gone.err().map(|e| e.code());
    assert_eq!(code, Some(tonic::Code::NotFound), "status after remove");
    assert!(listed(c, &pod.0, None).is_empty());
    f.set("status_after_remove", format!("{code:?}"));
    // The pod stops: not ready, listed as such.
    c.d.client
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod.0.clone(),
        })
        .expect("StopPodSandbox");
    assert_eq!(pod_state(c, &pod.0), NOTREADY);
    f.set("pod_stopped_state", pod_state(c, &pod.0));
    f
}

fn stop_timeout_term_honoured_or_killed(c: &mut Ctx<'_>) -> Facts {
    let pod = c.pod(|_| {});
    // Exit 143 from the trap proves TERM reached the process (a kill
    // after the timeout would give 137).
    let polite = c.run(
        &pod,
        &[
            "sh",
            "-c",
            "trap 'exit 143' TERM; while true; do sleep 0.1; done",
        ],
        named("polite"),
    );
    // Ignores TERM: only the kill after the 2 s timeout ends it.
    let stubborn = c.run(
        &pod,
        &["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"],
        named("stubborn"),
    );
    // The signal must come after the shells set their traps: wait until
    // each shows TERM caught, or ignored, in its signal masks.
    let term = 1u64 << (libc::SIGTERM - 1);
    for (id, mask) in [(&polite, "SigCgt"), (&stubborn, "SigIgn")] {
        let pid = c.pid(id);
        let set = wait_until(Duration::from_secs(20), || {
            signal_mask(pid, mask).is_some_and(|m| m & term != 0)
        });
        assert!(set, "{id} (pid {pid}) never showed TERM in {mask}");
    }
    stop(c, &polite, 60);
    stop(c, &stubborn, 2);
    let (p, s) = (c.status(&polite), c.status(&stubborn));
    assert_eq!((p.state, p.exit_code), (EXITED, 143), "{p:?}");
    assert_eq!((s.state, s.exit_code), (EXITED, 137), "{s:?}");
    Facts::new()
        .with("term", format!("{} {}", p.exit_code, p.reason))
        .with("ignored_term", format!("{} {}", s.exit_code, s.reason))
}

fn list_filters(c: &mut Ctx<'_>) -> Facts {
    let labels = HashMap::from([("pinc-test".to_string(), c.handler.to_string())]);
    let l = labels.clone();
    let pod = c.pod(move |p| p.labels = l);
    let other = c.pod(|_| {});
    let created = c.create(&pod, &["true"], named("created")).expect("create");
    let running = c.run(&pod, &["sleep", "3600"], named("running"));
    let exited = c.run(&pod, &["true"], named("exited"));
    c.wait_exited(&exited, Duration::from_secs(30));
    assert_eq!(listed(c, &pod.0, Some(CREATED)), vec![created.clone()]);
    assert_eq!(listed(c, &pod.0, Some(RUNNING)), vec![running.clone()]);
    assert_eq!(listed(c, &pod.0, Some(EXITED)), vec![exited.clone()]);
    let mut all = vec![created, running, exited];
    all.sort();
    assert_eq!(listed(c, &pod.0, None), all);
    c.d.client
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: other.0.clone(),
        })
        .expect("StopPodSandbox");
    let pods = |c: &mut Ctx, state: i32, sel: &HashMap<String, String>| -> Vec<String> {
        let mut v: Vec<String> =
            c.d.client
                .list_pod_sandbox(ListPodSandboxRequest {
                    filter: Some(PodSandboxFilter {
                        state: Some(PodSandboxStateValue { state }),
                        label_selector: sel.clone(),
                        ..Default::default()
                    }),
                })
                .expect("ListPodSandbox")
                .items
                .into_iter()
                .map(|p| p.id)
                .filter(|id| *id == pod.0 || *id == other.0)
                .collect();
        v.sort();
        v
    };
    let none = HashMap::new();
    assert_eq!(pods(c, READY, &none), vec![pod.0.clone()]);
    assert_eq!(pods(c, NOTREADY, &none), vec![other.0.clone()]);
    assert_eq!(pods(c, READY, &labels), vec![pod.0.clone()]);
    assert!(pods(c, NOTREADY, &labels).is_empty());
    // Facts: the counts (the ids differ per run).
    Facts::new()
        .with("containers", listed(c, &pod.0, None).len())
        .with("ready_pods", pods(c, READY, &none).len())
        .with("notready_pods", pods(c, NOTREADY, &none).len())
}

fn restart_in_pod(c: &mut Ctx<'_>) -> Facts {
    let pod = c.pod(|_| {});
    let attempt = |a: u32| {
        move |m: &mut ContainerConfig| {
            let md = m.metadata.as_mut().expect("md");
            md.name = "app".into();
            md.attempt = a;
        }
    };
    let first = c.run(&pod, &["sh", "-c", "exit 1"], attempt(0));
    c.wait_exited(&first, Duration::from_secs(30));
    // The kubelet's restart: a new container, same name, next attempt.
    let second = c.run(&pod, &["sleep", "3600"], attempt(1));
    let st = c.status(&second);
    assert_eq!(st.state, RUNNING, "{st:?}");
    let md = st.metadata.clone().expect("metadata");
    assert_eq!((md.name.as_str(), md.attempt), ("app", 1));
    remove(c, &first);
    assert_eq!(listed(c, &pod.0, None), vec![second.clone()]);
    assert_eq!(c.status(&second).state, RUNNING);
    Facts::new()
        .with("second", format!("{} {} {}", st.state, md.name, md.attempt))
        .with("left", listed(c, &pod.0, None).len())
}

fn stop_with_children_then_pod(c: &mut Ctx<'_>) -> Facts {
    // Children in the pod's pid namespace: stopping the container kills
    // them all (the shim kills the cgroup), then the pod stops.
    let pod = c.pod(|_| {});
    let id = c.run(&pod, &["sh", "-c", "sleep 1000 & sleep 1000"], |_| {});
    let (code, ps, _) = c.exec(&id, &["ps", "-o", "args"]);
    assert_eq!(code, 0);
    assert_eq!(ps.matches("sleep 1000").count(), 2, "{ps}");
    stop(c, &id, 2);
    let st = c.status(&id);
    assert_eq!(st.state, EXITED, "{st:?}");
    let stopped = c.d.client.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: pod.0.clone(),
    });
    assert!(stopped.is_ok(), "StopPodSandbox: {stopped:?}");
    assert_eq!(pod_state(c, &pod.0), NOTREADY);
    // RemovePodSandbox comes in the harness cleanup, which fails the
    // scenario if the pod does not go.
    Facts::new()
        .with("sleeps", ps.matches("sleep 1000").count())
        .with(
            "container",
            format!("{} {} {}", st.state, st.exit_code, st.reason),
        )
}

fn running_container_status(c: &mut Ctx<'_>) -> Facts {
    let pod = c.pod(|_| {});
    let id = c.run(&pod, &["sleep", "3600"], |_| {});
    let st = c.status(&id);
    assert_eq!(st.state, ContainerState::ContainerRunning as i32, "{st:?}");
    Facts::new()
        .with("state", st.state)
        .with("reason", &st.reason)
}
