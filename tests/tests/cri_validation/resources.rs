//! Resources: cgroup settings at create and by UpdateContainerResources,
//! seen from inside the container (init and exec) and on the host; stats;
//! the OOM killer's reason and exit code; and the cgroup mount of a
//! container in a shared pod PID namespace.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_cri::v1::*;
use pinc_tests::cri_compare::{Ctx, Facts, Suite};
use pinc_tests::daemons::wait_until;

use crate::probe::{get, kv, own_pid_pod, pod_sec, probe, rename};

const MIB: i64 = 1024 * 1024;

/// cgroup v1 files a container sees of itself (controller/file).
const CG_FILES: [&str; 7] = [
    "cpu/cpu.shares",
    "cpu/cpu.cfs_quota_us",
    "cpu/cpu.cfs_period_us",
    "memory/memory.limit_in_bytes",
    "memory/memory.memsw.limit_in_bytes",
    "cpuset/cpuset.cpus",
    "cpuset/cpuset.mems",
];

/// Prints every CG_FILES entry ("none" when absent), the process's
/// oom_score_adj and its CPU affinity.
fn cg_script() -> String {
    format!(
        "for f in {}; do echo $f=$(cat /sys/fs/cgroup/$f 2>/dev/null || echo none); done; \
         echo oom_score_adj=$(cat /proc/$$/oom_score_adj); \
         grep Cpus_allowed_list /proc/$$/status",
        CG_FILES.join(" ")
    )
}

/// The container's resources, created if absent.
fn res(cfg: &mut ContainerConfig) -> &mut LinuxContainerResources {
    cfg.linux
        .get_or_insert_with(Default::default)
        .resources
        .get_or_insert_with(Default::default)
}

/// The host pid of the container's init, from containerd's verbose status.
fn host_pid(c: &mut Ctx, id: &str) -> i32 {
    let r =
        c.d.client
            .container_status(ContainerStatusRequest {
                container_id: id.to_string(),
                verbose: true,
            })
            .unwrap_or_else(|e| panic!("ContainerStatus verbose {id}: {e}"));
    let info = r.info.get("info").expect("verbose status has info");
    let v: serde_json::Value = serde_json::from_str(info).expect("info is JSON");
    let pid = v["pid"].as_i64().unwrap_or(0);
    assert!(pid > 0, "no pid in verbose status: {info}");
    i32::try_from(pid).expect("pid fits i32")
}

/// The host directory of cgroup v1 controller `ctrl` for process `pid`.
fn host_cgroup_dir(pid: i32, ctrl: &str) -> PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/cgroup: {e}"));
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next(), parts.next(), parts.next());
        if let (Some(ctrls), Some(path)) = (ctrls, path) {
            if ctrls.split(',').any(|c| c == ctrl) {
                return PathBuf::from(format!("/sys/fs/cgroup/{ctrls}{path}"));
            }
        }
    }
    panic!("process {pid} is in no {ctrl} cgroup:\n{text}");
}

fn read_or_none(path: &Path) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "none".to_string())
}

/// What the host's cgroup files of the container's init say, keyed as
/// the container's view is (CG_FILES).
fn host_view(c: &mut Ctx, id: &str) -> Vec<(String, String)> {
    let pid = host_pid(c, id);
    CG_FILES
        .iter()
        .map(|f| {
            let (ctrl, file) = f.split_once('/').expect("ctrl/file");
            (
                f.to_string(),
                read_or_none(&host_cgroup_dir(pid, ctrl).join(file)),
            )
        })
        .collect()
}

/// Checks `want` (file or key, value) in the container's view (init and
/// exec, or exec alone once `init` is stale) and on the host; every
/// observed value becomes a fact under `tag`.
fn check_limits(
    c: &mut Ctx,
    p: &crate::probe::Probe,
    with_init: bool,
    tag: &str,
    want: &[(&str, &str)],
    facts: &mut Facts,
) {
    let mut views = vec![("exec", p.exec(c))];
    if with_init {
        views.push(("init", p.init.clone()));
    }
    for (who, out) in views {
        let m = kv(&out);
        for (k, v) in want {
            assert_eq!(get(&m, k, who, &out), *v, "{tag} {who} {k}: {out}");
        }
        for k in CG_FILES
            .iter()
            .copied()
            .chain(["oom_score_adj", "Cpus_allowed_list"])
        {
            facts.set(&format!("{tag}.{who}.{k}"), get(&m, k, who, &out));
        }
    }
    for (k, v) in host_view(c, &p.id) {
        if let Some((_, w)) = want.iter().find(|(f, _)| *f == k) {
            assert_eq!(&v, w, "{tag} host {k}");
        }
        facts.set(&format!("{tag}.host.{k}"), v);
    }
}

/// Whether CPUs 0 and 1 are both in this process's affinity: the update
/// scenario widens the cpuset to `0-1`.
fn cpus_0_and_1_allowed() -> bool {
    nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .is_ok_and(|set| set.is_set(0).unwrap_or(false) && set.is_set(1).unwrap_or(false))
}

pub fn scenarios(s: &mut Suite) {
    if cpus_0_and_1_allowed() {
        s.compare(
            "resources-at-create-and-update",
            resources_at_create_and_update,
        );
    } else {
        // A scenario, not a test function: reported through the same
        // counted line (and refused under PINC_TESTS_NO_SKIP=1).
        pinc_testkit::skipped(
            concat!(module_path!(), "::resources-at-create-and-update"),
            "needs CPUs 0 and 1 in this process's affinity",
        );
    }

    s.compare("resources-stats", resources_stats);

    s.compare("resources-oom-killed", resources_oom_killed);

    s.compare("cgroup-mount-shared-pidns", cgroup_mount_shared_pidns);
}

fn resources_at_create_and_update(c: &mut Ctx<'_>) -> Facts {
    let pod = own_pid_pod(c);
    let p = probe(c, &pod, &cg_script(), |cfg| {
        let r = res(cfg);
        r.cpu_shares = 512;
        r.cpu_period = 100_000;
        r.cpu_quota = 50_000;
        r.memory_limit_in_bytes = 64 * MIB;
        r.cpuset_cpus = "0".to_string();
        r.cpuset_mems = "0".to_string();
        // Raising needs no CAP_SYS_RESOURCE; containerd keeps it.
        r.oom_score_adj = 500;
    });
    let mut facts = Facts::new();
    let mem = (64 * MIB).to_string();
    let want = [
        ("cpu/cpu.shares", "512"),
        ("cpu/cpu.cfs_quota_us", "50000"),
        ("cpu/cpu.cfs_period_us", "100000"),
        ("memory/memory.limit_in_bytes", mem.as_str()),
        ("cpuset/cpuset.cpus", "0"),
        ("cpuset/cpuset.mems", "0"),
        ("oom_score_adj", "500"),
        ("Cpus_allowed_list", "0"),
    ];
    check_limits(c, &p, true, "create", &want, &mut facts);

    let update = LinuxContainerResources {
        cpu_shares: 256,
        cpu_period: 100_000,
        cpu_quota: 20_000,
        memory_limit_in_bytes: 128 * MIB,
        cpuset_cpus: "0-1".to_string(),
        cpuset_mems: "0".to_string(),
        oom_score_adj: 500,
        ..Default::default()
    };
    c.d.client
        .update_container_resources(UpdateContainerResourcesRequest {
            container_id: p.id.clone(),
            linux: Some(update),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("UpdateContainerResources: {e}"));
    let mem = (128 * MIB).to_string();
    let want = [
        ("cpu/cpu.shares", "256"),
        ("cpu/cpu.cfs_quota_us", "20000"),
        ("cpu/cpu.cfs_period_us", "100000"),
        ("memory/memory.limit_in_bytes", mem.as_str()),
        ("cpuset/cpuset.cpus", "0-1"),
        // A new process of the container runs where the cpuset says.
        ("Cpus_allowed_list", "0-1"),
    ];
    check_limits(c, &p, false, "update", &want, &mut facts);
    facts
}

fn resources_stats(c: &mut Ctx<'_>) -> Facts {
    let pod = own_pid_pod(c);
    // Busy, but capped at a fifth of a CPU: the machine is shared.
    let id = c.run(&pod, &["sh", "-c", "while :; do :; done"], |cfg| {
        rename(cfg);
        let r = res(cfg);
        r.cpu_period = 100_000;
        r.cpu_quota = 20_000;
    });
    let stats = |c: &mut Ctx| -> ContainerStats {
        c.d.client
            .container_stats(ContainerStatsRequest {
                container_id: id.clone(),
            })
            .unwrap_or_else(|e| panic!("ContainerStats: {e}"))
            .stats
            .expect("ContainerStats has stats")
    };
    let cpu = |s: &ContainerStats| {
        s.cpu
            .as_ref()
            .and_then(|c| c.usage_core_nano_seconds.as_ref())
            .map(|v| v.value)
    };
    let first = stats(c);
    let before = cpu(&first).expect("cpu usage_core_nano_seconds");
    let mut last = first.clone();
    let grew = wait_until(Duration::from_secs(20), || {
        last = stats(c);
        cpu(&last).unwrap_or(0) > before
    });
    assert!(
        grew,
        "cpu usage did not grow under load: {first:?} then {last:?}"
    );
    let attrs = last.attributes.clone().expect("stats attributes");
    assert_eq!(attrs.id, id, "{attrs:?}");
    let mem = last.memory.expect("memory stats");
    let val = |v: &Option<UInt64Value>| v.as_ref().map(|v| v.value);
    let ws = val(&mem.working_set_bytes);
    assert!(ws.unwrap_or(0) > 0, "working set: {mem:?}");
    let layer = last.writable_layer.clone();
    let listed =
        c.d.client
            .list_container_stats(ListContainerStatsRequest {
                filter: Some(ContainerStatsFilter {
                    pod_sandbox_id: pod.0.clone(),
                    ..Default::default()
                }),
            })
            .unwrap_or_else(|e| panic!("ListContainerStats: {e}"))
            .stats;
    let ids: Vec<String> = listed
        .iter()
        .filter_map(|s| s.attributes.as_ref().map(|a| a.id.clone()))
        .collect();
    assert_eq!(ids, vec![id.clone()], "ListContainerStats of the pod");
    let listed_cpu = listed.first().and_then(cpu);
    assert!(listed_cpu.unwrap_or(0) > 0, "listed cpu: {listed:?}");
    Facts::new()
        .with("cpu_usage_grew", grew)
        .with("cpu_nano_cores_present", {
            let c = last.cpu.as_ref();
            c.and_then(|c| c.usage_nano_cores.as_ref()).is_some()
        })
        .with("attributes_name", attrs.metadata.map(|m| m.name).is_some())
        .with("mem_working_set_positive", ws.unwrap_or(0) > 0)
        .with("mem_usage_positive", val(&mem.usage_bytes).unwrap_or(0) > 0)
        .with("mem_rss_positive", val(&mem.rss_bytes).unwrap_or(0) > 0)
        .with("mem_available_present", val(&mem.available_bytes).is_some())
        .with("mem_page_faults_present", val(&mem.page_faults).is_some())
        .with("writable_layer_present", layer.is_some())
        .with(
            "writable_layer_mountpoint_set",
            layer
                .as_ref()
                .and_then(|l| l.fs_id.as_ref())
                .is_some_and(|f| !f.mountpoint.is_empty()),
        )
        .with(
            "writable_layer_inodes_present",
            layer
                .as_ref()
                .and_then(|l| l.inodes_used.as_ref())
                .is_some(),
        )
        .with("listed", ids.len())
        .with("listed_cpu_positive", listed_cpu.unwrap_or(0) > 0)
}

fn resources_oom_killed(c: &mut Ctx<'_>) -> Facts {
    let pod = own_pid_pod(c);
    let mut facts = Facts::new();
    // tail keeps what it reads of /dev/zero (no newline ever comes)
    // until the memory cgroup's OOM killer ends it: as the init
    // itself (exit 137), and as a child the init outlives (exit 3).
    let cases: [(&str, &[&str], i32); 2] = [
        ("init", &["tail", "/dev/zero"], 137),
        ("child", &["sh", "-c", "tail /dev/zero; exit 3"], 3),
    ];
    for (name, args, code) in cases {
        let id = c.run(&pod, args, |cfg| {
            rename(cfg);
            res(cfg).memory_limit_in_bytes = 32 * MIB;
        });
        let mut st = c.wait_exited(&id, Duration::from_secs(60));
        // containerd records the OOM from the shim's TaskOOM event,
        // which may come just after the exit.
        wait_until(Duration::from_secs(10), || {
            st = c.status(&id);
            st.reason == "OOMKilled"
        });
        assert_eq!(st.exit_code, code, "{name}: {st:?}");
        assert_eq!(st.reason, "OOMKilled", "{name}: {st:?}");
        facts.set(&format!("{name}.exit_code"), st.exit_code);
        facts.set(&format!("{name}.reason"), &st.reason);
    }
    facts
}

fn cgroup_mount_shared_pidns(c: &mut Ctx<'_>) -> Facts {
    // A pod's shared PID namespace whose next pid is no pid of the
    // host: a privileged container moves the namespace's pid counter
    // (ns_last_pid) to a gap of host pids the host allocator has
    // already passed, so it will not fill it soon.
    let pod = c.pod(|p| pod_sec(p).privileged = true);
    let keeper = c.run(&pod, &["sleep", "3600"], |cfg| {
        rename(cfg);
        sec_privileged(cfg);
    });
    let gap = host_pid_gap(64);
    let set = format!("echo {gap} >/proc/sys/kernel/ns_last_pid");
    let (code, out, err) = c.exec(&keeper, &["sh", "-c", &set]);
    assert_eq!(code, 0, "ns_last_pid: {out}{err}");
    let script = "grep NSpid /proc/$$/status; \
                  echo mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)";
    let p = probe(c, &pod, script, |cfg| {
        res(cfg).memory_limit_in_bytes = 64 * MIB;
    });
    let m = kv(&p.init);
    let nspid = get(&m, "NSpid", "init", &p.init);
    let in_ns: i64 = nspid
        .split_whitespace()
        .last()
        .and_then(|v| v.parse().ok())
        .expect("NSpid");
    assert!(
        in_ns > gap && in_ns <= gap + 64,
        "pid {in_ns} in the pod is not in the gap after {gap}"
    );
    let mem = (64 * MIB).to_string();
    assert_eq!(get(&m, "mem", "init", &p.init), mem, "{}", p.init);
    Facts::new()
        .with("started", true)
        .with("pid_in_gap", true)
        .with("own_memory_limit_seen", true)
}

fn sec_privileged(cfg: &mut ContainerConfig) {
    cfg.linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default)
        .privileged = true;
}

/// A host pid `v` with `v+1..=v+n` all unused, as far ahead of the
/// host's pid allocator as can be (just behind it, else from pid_max
/// down), so that the host will not take them in the meantime.
fn host_pid_gap(n: i64) -> i64 {
    let num = |path: &str| -> i64 {
        std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let last = num("/proc/sys/kernel/ns_last_pid");
    let max = num("/proc/sys/kernel/pid_max");
    let used = |p: i64| Path::new(&format!("/proc/{p}")).exists();
    // Low pids are where the allocator starts again after wrapping.
    let behind = (301..last - 2 * n).rev();
    let wrapped = (last + 4 * n..max - n).rev();
    behind
        .chain(wrapped)
        .step_by(8)
        .find(|&v| (v + 1..=v + n).all(|p| !used(p)))
        .unwrap_or_else(|| panic!("no {n} free pids on the host (last pid {last})"))
}
