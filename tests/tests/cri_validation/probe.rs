//! Probes: a shell script run once as a container's init process and once
//! through ExecSync in the same container, so every check sees both kinds
//! of process (a runtime may set up the init and exec'd processes through
//! different code paths).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use k8s_cri::v1::*;
use pinc_tests::cri_compare::Ctx;
use pinc_tests::daemons::wait_until;

/// A running container whose init ran `script` into /out/init (a host
/// directory), then went on sleeping so the script can be exec'd too.
pub struct Probe {
    pub id: String,
    pub script: String,
    /// What the script printed (stdout and stderr) as the init process.
    pub init: String,
    _dir: tempfile::TempDir,
}

impl Probe {
    /// The script's output as init and as an exec'd process, labelled.
    pub fn both(&self, c: &mut Ctx) -> [(&'static str, String); 2] {
        [("init", self.init.clone()), ("exec", self.exec(c))]
    }

    /// Runs the script again through ExecSync; stdout and stderr together.
    pub fn exec(&self, c: &mut Ctx) -> String {
        let wrapped = format!("{{ {}\n}} 2>&1", self.script);
        let (code, out, err) = c.exec(&self.id, &["sh", "-c", &wrapped]);
        assert_eq!(code, 0, "exec of the probe script failed: {out}{err}");
        out
    }
}

/// A host directory, writable by any user, mounted at /out.
pub fn out_dir(c: &Ctx) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("out-")
        .tempdir_in(c.d.work_dir())
        .expect("probe out dir");
    // The container may run as another user than root.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
        .expect("chmod out dir");
    dir
}

pub fn out_mount(dir: &Path) -> Mount {
    Mount {
        container_path: "/out".to_string(),
        host_path: dir.display().to_string(),
        ..Default::default()
    }
}

/// Gives the container a name of its own: a pod holds several probes, and
/// containerd reserves names per pod.
pub fn rename(cfg: &mut ContainerConfig) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    cfg.metadata.get_or_insert_with(Default::default).name = format!("c{n}");
}

/// Starts a probe container in `pod` (with `edit` applied to its config)
/// and waits until its init has run `script`.
pub fn probe(
    c: &mut Ctx,
    pod: &(String, PodSandboxConfig),
    script: &str,
    edit: impl FnOnce(&mut ContainerConfig),
) -> Probe {
    let dir = out_dir(c);
    let path = dir.path().to_path_buf();
    // The braces keep the script's commands in the init shell itself, so
    // /proc/$$ is the init process.
    let init_cmd = format!("{{ {script}\n}} >/out/init 2>&1; : >/out/done; exec sleep 3600");
    let id = c.run(pod, &["sh", "-c", &init_cmd], |cfg| {
        rename(cfg);
        // As the kubelet does: the pod's namespace modes in every container
        // (containerd takes the container's own, POD when absent).
        sec(cfg).namespace_options = pod
            .1
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.clone());
        cfg.mounts.push(out_mount(&path));
        edit(cfg);
    });
    let done = path.join("done");
    if !wait_until(Duration::from_secs(30), || done.exists()) {
        let st = c.status(&id);
        panic!(
            "probe init did not finish: {st:?}\n{}",
            std::fs::read_to_string(path.join("init")).unwrap_or_default()
        );
    }
    let init = std::fs::read_to_string(path.join("init")).expect("probe init output");
    Probe {
        id,
        script: script.to_string(),
        init,
        _dir: dir,
    }
}

/// `key=value` and `Key:\tvalue` lines (the script's own and those of
/// /proc/<pid>/status) by key; later lines win.
pub fn kv(text: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let at = match (line.find('='), line.find(':')) {
            (Some(e), Some(c)) => e.min(c),
            (Some(e), None) => e,
            (None, Some(c)) => c,
            (None, None) => continue,
        };
        let (k, v) = line.split_at(at);
        m.insert(k.trim().to_string(), v[1..].trim().to_string());
    }
    m
}

/// The value of `key` in `m`; panics naming the probe output if missing.
pub fn get<'a>(m: &'a BTreeMap<String, String>, key: &str, who: &str, out: &str) -> &'a str {
    m.get(key)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("{who}: no {key} in probe output:\n{out}"))
}

/// The container's security context, created if absent.
pub fn sec(cfg: &mut ContainerConfig) -> &mut LinuxContainerSecurityContext {
    cfg.linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default)
}

/// The pod's security context (host_network_pod always has one).
pub fn pod_sec(p: &mut PodSandboxConfig) -> &mut LinuxSandboxSecurityContext {
    p.linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default)
}

/// Each container its own PID namespace, the kubelet's default
/// (shareProcessNamespace: false). Probes use it: in a shared pod PID
/// namespace pinc fails to start a container whose pid there is no pid
/// of the host (see the resources scenario `cgroup-mount-shared-pidns`).
pub fn own_pid(p: &mut PodSandboxConfig) {
    pod_sec(p)
        .namespace_options
        .get_or_insert_with(Default::default)
        .pid = NamespaceMode::Container as i32;
}

/// A pod (see [`own_pid`]) of this handler.
pub fn own_pid_pod(c: &mut Ctx) -> (String, PodSandboxConfig) {
    c.pod(own_pid)
}
