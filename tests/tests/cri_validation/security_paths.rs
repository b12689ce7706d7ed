//! Pod sysctls, and the masked and read-only paths of /proc and /sys
//! (containerd's defaults, and the lists of the security context). Every
//! check runs in the init process and in an exec'd one (`probe`).

use k8s_cri::v1::*;
use pinc_tests::cri_compare::{Ctx, Facts, Suite};

use crate::probe::{get, kv, own_pid, probe, sec};

/// The option field ("ro"/"rw") of the last mount at a path, or "none":
/// a shell function for the probe scripts.
const MOUNT_OF: &str = "mnt() { awk -v p=\"$1\" '$2==p{o=$4} \
                        END{print (o==\"\"?\"none\":substr(o,1,2))}' /proc/mounts; }";

/// What the kubelet sends for the default procMount (its
/// securitycontext defaults), masked and read-only.
pub const KUBELET_MASKED: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
pub const KUBELET_READONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn host_sysctl(name: &str) -> String {
    let path = format!("/proc/sys/{}", name.replace('.', "/"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .trim()
        .to_string()
}

pub fn scenarios(s: &mut Suite) {
    s.compare("security-sysctls", security_sysctls);

    s.compare(
        "security-masked-readonly-paths",
        security_masked_readonly_paths,
    );
}

fn security_sysctls(c: &mut Ctx<'_>) -> Facts {
    // IPC sysctls belong to the pod's own IPC namespace: the host's
    // values must not change.
    let host_msgmax = host_sysctl("kernel.msgmax");
    let want_msgmax = if host_msgmax == "12345" {
        "12346"
    } else {
        "12345"
    };
    let pod = c.pod(|p| {
        own_pid(p);
        let l = p.linux.get_or_insert_with(Default::default);
        l.sysctls
            .insert("kernel.shm_rmid_forced".to_string(), "1".to_string());
        l.sysctls
            .insert("kernel.msgmax".to_string(), want_msgmax.to_string());
    });
    let script = "echo rmid=$(cat /proc/sys/kernel/shm_rmid_forced); \
                  echo msgmax=$(cat /proc/sys/kernel/msgmax)";
    let p = probe(c, &pod, script, |_| {});
    let mut facts = Facts::new();
    for (who, out) in p.both(c) {
        let m = kv(&out);
        let g = |k: &str| get(&m, k, who, &out).to_string();
        assert_eq!(g("rmid"), "1", "{who}: {out}");
        assert_eq!(g("msgmax"), want_msgmax, "{who}: {out}");
        facts.set(&format!("{who}.shm_rmid_forced"), g("rmid"));
        facts.set(&format!("{who}.msgmax_as_set"), g("msgmax") == want_msgmax);
    }
    assert_eq!(
        host_sysctl("kernel.msgmax"),
        host_msgmax,
        "host msgmax changed"
    );

    // A net sysctl in the host's network namespace would be the
    // host's: runc refuses it. The value is the host's own, so a
    // runtime that wrongly applies it changes nothing.
    let port = host_sysctl("net.ipv4.ip_unprivileged_port_start");
    let mut config = pod.1.clone();
    if let Some(m) = config.metadata.as_mut() {
        m.name.push_str("-net");
        m.uid.push_str("-net");
    }
    let l = config.linux.get_or_insert_with(Default::default);
    l.sysctls.clear();
    l.sysctls.insert(
        "net.ipv4.ip_unprivileged_port_start".to_string(),
        port.clone(),
    );
    let r = c.d.client.run_pod_sandbox(RunPodSandboxRequest {
        config: Some(config),
        runtime_handler: c.handler.to_string(),
    });
    if let Ok(r) = &r {
        // Not ours to keep: stop and remove it before failing.
        let id = r.pod_sandbox_id.clone();
        let _ = c.d.client.stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: id.clone(),
        });
        let _ =
            c.d.client
                .remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: id });
    }
    assert!(
        r.is_err(),
        "a net sysctl in a host-network pod was accepted"
    );
    assert_eq!(
        host_sysctl("net.ipv4.ip_unprivileged_port_start"),
        port,
        "host sysctl changed"
    );
    facts.set("host_net_sysctl_refused", r.is_err());
    facts
}

fn security_masked_readonly_paths(c: &mut Ctx<'_>) -> Facts {
    let pod = c.pod(own_pid);
    // Masked files are bind mounts of /dev/null (a char device),
    // masked directories read-only tmpfs; read-only paths are ro binds.
    let script = format!(
        "{MOUNT_OF}; \
         for f in kcore keys timer_list sched_debug; do \
           test -c /proc/$f; echo masked_$f=$?; done; \
         test -s /proc/keys; echo keys_nonempty=$?; \
         echo firmware=$(mnt /sys/firmware); echo acpi=$(mnt /proc/acpi); \
         echo scsi=$(mnt /proc/scsi); \
         for p in sys sysrq-trigger irq bus fs; do echo ro_$p=$(mnt /proc/$p); done; \
         echo 1 2>/dev/null >/proc/sys/kernel/shm_rmid_forced; echo sysctl_write=$?; \
         test -c /etc/group; echo masked_group=$?; \
         echo group_bytes=$(cat /etc/group | wc -c); \
         echo tmp=$(mnt /tmp); touch /tmp/w.$$ 2>/dev/null; echo tmp_write=$?"
    );
    let mut facts = Facts::new();
    let keys = [
        "masked_kcore",
        "masked_keys",
        "masked_timer_list",
        "masked_sched_debug",
        "keys_nonempty",
        "firmware",
        "acpi",
        "scsi",
        "ro_sys",
        "ro_sysrq-trigger",
        "ro_irq",
        "ro_bus",
        "ro_fs",
        "sysctl_write",
        "masked_group",
        "group_bytes",
        "tmp",
        "tmp_write",
    ];
    // Without lists (no kubelet to send its defaults) containerd 1.6
    // masks nothing: the lists are the kubelet's to give.
    let p = probe(c, &pod, &script, |_| {});
    for (who, out) in p.both(c) {
        let m = kv(&out);
        let g = |k: &str| get(&m, k, who, &out).to_string();
        assert_ne!(g("masked_keys"), "0", "{who}: {out}");
        assert_eq!(g("ro_sys"), "none", "{who}: {out}");
        for k in keys {
            facts.set(&format!("none.{who}.{k}"), g(k));
        }
    }
    let p = probe(c, &pod, &script, |cfg| {
        let s = sec(cfg);
        s.masked_paths = KUBELET_MASKED.iter().map(|p| p.to_string()).collect();
        s.readonly_paths = KUBELET_READONLY.iter().map(|p| p.to_string()).collect();
    });
    for (who, out) in p.both(c) {
        let m = kv(&out);
        let g = |k: &str| get(&m, k, who, &out).to_string();
        // This kernel has no kcore, sched_debug, scsi, sysrq-trigger:
        // masking what is missing is skipped (facts only).
        for f in ["keys", "timer_list"] {
            assert_eq!(g(&format!("masked_{f}")), "0", "{who}: /proc/{f}: {out}");
        }
        assert_ne!(
            g("keys_nonempty"),
            "0",
            "{who}: /proc/keys reads empty: {out}"
        );
        assert_eq!(g("firmware"), "ro", "{who}: /sys/firmware: {out}");
        assert_eq!(g("acpi"), "ro", "{who}: /proc/acpi: {out}");
        for p in ["sys", "irq", "bus", "fs"] {
            assert_eq!(g(&format!("ro_{p}")), "ro", "{who}: /proc/{p}: {out}");
        }
        assert_ne!(g("sysctl_write"), "0", "{who}: wrote /proc/sys: {out}");
        assert_ne!(g("masked_group"), "0", "{who}: /etc/group masked: {out}");
        assert_eq!(g("tmp_write"), "0", "{who}: {out}");
        for k in keys {
            facts.set(&format!("kubelet.{who}.{k}"), g(k));
        }
    }
    // The security context's own lists replace containerd's defaults.
    let p = probe(c, &pod, &script, |cfg| {
        let s = sec(cfg);
        s.masked_paths = vec!["/etc/group".to_string(), "/proc/keys".to_string()];
        s.readonly_paths = vec!["/tmp".to_string()];
    });
    for (who, out) in p.both(c) {
        let m = kv(&out);
        let g = |k: &str| get(&m, k, who, &out).to_string();
        assert_eq!(g("masked_group"), "0", "{who}: /etc/group: {out}");
        assert_eq!(
            g("group_bytes"),
            "0",
            "{who}: /etc/group reads empty: {out}"
        );
        assert_eq!(g("masked_keys"), "0", "{who}: /proc/keys: {out}");
        assert_ne!(g("masked_timer_list"), "0", "{who}: not in the list: {out}");
        assert_eq!(g("ro_sys"), "none", "{who}: not in the list: {out}");
        assert_eq!(g("tmp"), "ro", "{who}: /tmp read-only: {out}");
        assert_ne!(g("tmp_write"), "0", "{who}: wrote a read-only /tmp: {out}");
        for k in keys {
            facts.set(&format!("explicit.{who}.{k}"), g(k));
        }
    }
    facts
}
