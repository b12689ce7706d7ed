//! PID, IPC and network namespace modes (NamespaceMode POD, CONTAINER,
//! NODE, TARGET), observed from inside: namespace links, which processes
//! a container sees, the pod network's eth0.

use k8s_cri::v1::*;
use pinc_tests::cri_compare::{Ctx, Facts, Suite};

use crate::lifecycle::named;

const POD: i32 = NamespaceMode::Pod as i32;
const CONTAINER: i32 = NamespaceMode::Container as i32;
const NODE: i32 = NamespaceMode::Node as i32;
const TARGET: i32 = NamespaceMode::Target as i32;

fn modes(network: i32, pid: i32, ipc: i32) -> NamespaceOption {
    NamespaceOption {
        network,
        pid,
        ipc,
        ..Default::default()
    }
}

/// A pod with these namespace modes (the kubelet gives its containers the
/// same unless told otherwise).
fn pod_with(c: &mut Ctx, ns: NamespaceOption) -> (String, PodSandboxConfig) {
    c.pod(move |p| {
        let sc = p
            .linux
            .as_mut()
            .and_then(|l| l.security_context.as_mut())
            .expect("pod security context");
        sc.namespace_options = Some(ns);
    })
}

fn container_with(
    c: &mut Ctx,
    pod: &(String, PodSandboxConfig),
    name: &'static str,
    args: &[&str],
    ns: NamespaceOption,
) -> String {
    c.run(pod, args, move |m| {
        named(name)(m);
        m.linux
            .get_or_insert_with(Default::default)
            .security_context
            .get_or_insert_with(Default::default)
            .namespace_options = Some(ns);
    })
}

/// The container's `/proc/self/ns/<kind>` link, e.g. `pid:[4026531836]`.
fn ns(c: &mut Ctx, id: &str, kind: &str) -> String {
    let (code, out, err) = c.exec(id, &["readlink", &format!("/proc/self/ns/{kind}")]);
    assert_eq!(code, 0, "readlink in {id}: {err}");
    out.trim().to_string()
}

/// The host's namespace: the test's own (it started containerd; pid 1 of
/// this machine may be out of reach).
fn host_ns(kind: &str) -> String {
    let p = format!("/proc/self/ns/{kind}");
    std::fs::read_link(&p)
        .unwrap_or_else(|e| panic!("readlink {p}: {e}"))
        .to_string_lossy()
        .into_owned()
}

/// The command line of the container's pid 1, spaces between arguments.
fn pid1(c: &mut Ctx, id: &str) -> String {
    let (_, out, _) = c.exec(id, &["sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline"]);
    out.trim().to_string()
}

fn ps(c: &mut Ctx, id: &str) -> String {
    let (code, out, err) = c.exec(id, &["ps", "-o", "args"]);
    assert_eq!(code, 0, "ps: {err}");
    out
}

/// eth0's IPv4 address inside the container, if it has one.
fn eth0_addr(c: &mut Ctx, id: &str) -> Option<String> {
    let (code, out, _) = c.exec(id, &["ip", "-o", "-4", "addr", "show", "dev", "eth0"]);
    if code != 0 {
        return None;
    }
    let word = out.split_whitespace().skip_while(|w| *w != "inet").nth(1)?;
    Some(word.split('/').next()?.to_string())
}

pub fn scenarios(s: &mut Suite) {
    s.compare("namespaces-pod", |c| {
        let all = modes(POD, POD, POD);
        let pod = pod_with(c, all.clone());
        let a = container_with(c, &pod, "a", &["sleep", "3601"], all.clone());
        let b = container_with(c, &pod, "b", &["sleep", "3602"], all);
        let mut f = Facts::new();
        for kind in ["pid", "ipc", "net"] {
            let (na, nb) = (ns(c, &a, kind), ns(c, &b, kind));
            let host = host_ns(kind);
            assert_eq!(na, nb, "{kind}: the pod's containers share it");
            assert_ne!(na, host, "{kind}: the pod's own, not the host's");
            f.set(&format!("{kind}_shared"), na == nb);
            f.set(&format!("{kind}_host"), na == host);
        }
        // The pod's pid namespace: pause is pid 1, the sibling is seen.
        let first = pid1(c, &a);
        assert_eq!(first, "/pause", "pid 1 of the pod");
        let seen = ps(c, &a);
        let sibling = seen.lines().any(|l| l.trim() == "sleep 3602");
        assert!(sibling, "{seen}");
        f.set("pid1", first);
        f.set("sees_sibling", sibling);
        // The pod network: an eth0 in the run's subnet, the same in both.
        let prefix = c.d.net.prefix.clone();
        let (ip_a, ip_b) = (eth0_addr(c, &a), eth0_addr(c, &b));
        let in_subnet = ip_a.as_deref().is_some_and(|ip| ip.starts_with(&prefix));
        assert!(in_subnet, "eth0 of a: {ip_a:?}, subnet {}", c.d.net.subnet);
        assert_eq!(ip_a, ip_b);
        assert!(c.d.net.bridge_exists(), "bridge {}", c.d.net.bridge);
        let status =
            c.d.client
                .pod_sandbox_status(PodSandboxStatusRequest {
                    pod_sandbox_id: pod.0.clone(),
                    verbose: false,
                })
                .expect("PodSandboxStatus")
                .status
                .expect("status");
        let pod_ip = status.network.map(|n| n.ip).unwrap_or_default();
        let named_ip = Some(&pod_ip) == ip_a.as_ref();
        assert!(named_ip, "PodSandboxStatus names {pod_ip:?}, eth0 {ip_a:?}");
        // Not the address itself: it differs from run to run.
        f.set("eth0_in_subnet", in_subnet);
        f.set("pod_ip_is_eth0", named_ip);
        f
    });
    s.compare("namespaces-container-and-target", |c| {
        let pod = pod_with(c, modes(NODE, CONTAINER, POD));
        let own = modes(NODE, CONTAINER, POD);
        let a = container_with(c, &pod, "a", &["sleep", "3601"], own.clone());
        let b = container_with(c, &pod, "b", &["sleep", "3602"], own);
        let mut target = modes(NODE, TARGET, POD);
        target.target_id = a.clone();
        let t = container_with(c, &pod, "t", &["sleep", "3603"], target);
        let mut f = Facts::new();
        let (pa, pb, pt) = (ns(c, &a, "pid"), ns(c, &b, "pid"), ns(c, &t, "pid"));
        assert_ne!(pa, pb, "CONTAINER: a pid namespace each");
        assert_ne!(pa, host_ns("pid"));
        assert_eq!(pt, pa, "TARGET: the target's pid namespace");
        f.set("pid_shared", pa == pb);
        f.set("target_shares", pt == pa);
        // Its own command is pid 1; the sibling is not seen.
        let first = pid1(c, &a);
        assert_eq!(first, "sleep 3601");
        let seen = ps(c, &a);
        assert!(!seen.contains("sleep 3602"), "{seen}");
        assert!(
            seen.contains("sleep 3603"),
            "the TARGET container is seen: {seen}"
        );
        f.set("pid1", first);
        f.set("sees_target", seen.contains("sleep 3603"));
        // IPC stays the pod's; the network the node's.
        let (ia, ib) = (ns(c, &a, "ipc"), ns(c, &b, "ipc"));
        assert_eq!(ia, ib);
        assert_ne!(ia, host_ns("ipc"));
        let net_host = ns(c, &a, "net") == host_ns("net");
        assert!(net_host, "network NODE is the host's");
        f.set("ipc_shared", ia == ib);
        f.set("net_host", net_host);
        f
    });
    s.compare("namespaces-node", |c| {
        let node = modes(NODE, NODE, NODE);
        let pod = pod_with(c, node.clone());
        let a = container_with(c, &pod, "a", &["sleep", "3601"], node);
        let mut f = Facts::new();
        for kind in ["pid", "ipc", "net"] {
            let same = ns(c, &a, kind) == host_ns(kind);
            assert!(same, "{kind}: NODE is the host's");
            f.set(&format!("{kind}_host"), same);
        }
        // The host's processes are seen under their host pids: this test's.
        let me = std::process::id();
        let comm = std::fs::read_to_string("/proc/self/comm").expect("own comm");
        let (code, seen, _) = c.exec(&a, &["cat", &format!("/proc/{me}/comm")]);
        let sees = code == 0 && seen == comm;
        assert!(sees, "pid {me} from inside: {code} {seen:?}, want {comm:?}");
        f.set("sees_host_process", sees);
        f
    });
}
