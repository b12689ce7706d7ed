//! Volumes: mount propagation (private, host-to-container, bidirectional),
//! read-only volumes and file volumes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_cri::v1::*;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use pinc_tests::cri_compare::{Ctx, Facts, Suite};
use pinc_tests::daemons::wait_until;

use crate::lifecycle::named;

/// A directory of this run that is a shared mount of its own peer group
/// (bind-mounted on itself, made private, then shared: nothing mounted
/// below it reaches the rest of the host). Drop detaches it with all
/// that was mounted below it.
struct SharedDir {
    path: PathBuf,
}

impl SharedDir {
    fn new(path: PathBuf) -> Self {
        std::fs::create_dir_all(&path).expect("shared dir");
        let none: Option<&str> = None;
        mount(Some(&path), &path, none, MsFlags::MS_BIND, none).expect("bind shared dir");
        let me = Self { path };
        mount(none, &me.path, none, MsFlags::MS_PRIVATE, none).expect("make-private");
        mount(none, &me.path, none, MsFlags::MS_SHARED, none).expect("make-shared");
        me
    }

    fn tmpfs(&self, sub: &str) -> PathBuf {
        let at = self.path.join(sub);
        let none: Option<&str> = None;
        mount(Some("tmpfs"), &at, Some("tmpfs"), MsFlags::empty(), none)
            .unwrap_or_else(|e| panic!("mount tmpfs on {}: {e}", at.display()));
        at
    }
}

impl Drop for SharedDir {
    fn drop(&mut self) {
        // Lazy: detaches the subtree (the tmpfs mounts below it) at once.
        if let Err(e) = umount2(&self.path, MntFlags::MNT_DETACH) {
            eprintln!("cannot unmount {}: {e}", self.path.display());
        }
    }
}

fn volume(host: &Path, at: &str, propagation: MountPropagation, readonly: bool) -> Mount {
    Mount {
        container_path: at.to_string(),
        host_path: host.to_string_lossy().into_owned(),
        readonly,
        propagation: propagation as i32,
        ..Default::default()
    }
}

/// Runs `sh -c script` in the container: (exit code, stdout + stderr).
fn sh(c: &mut Ctx, id: &str, script: &str) -> (i32, String) {
    let (code, out, err) = c.exec(id, &["sh", "-c", script]);
    (code, format!("{out}{err}"))
}

/// The propagation tags of the container's /mnt/vol in its mountinfo,
/// numbers dropped: "" (private), "master" (slave), "shared", ...
fn propagation_of(c: &mut Ctx, id: &str) -> String {
    let (_, info) = sh(c, id, "cat /proc/self/mountinfo");
    let line = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/mnt/vol"))
        .unwrap_or_else(|| panic!("no /mnt/vol in {id}'s mountinfo:\n{info}"));
    let fields: Vec<&str> = line.split(' ').collect();
    let end = fields
        .iter()
        .position(|f| *f == "-")
        .unwrap_or(fields.len());
    let tags: Vec<&str> = fields[6.min(end)..end]
        .iter()
        .map(|t| t.split(':').next().unwrap_or(t))
        .collect();
    tags.join(",")
}

fn stop_pod(c: &mut Ctx, pod: &str) {
    c.d.client
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod.to_string(),
        })
        .unwrap_or_else(|e| panic!("StopPodSandbox: {e}"));
}

fn run_dir(c: &Ctx, what: &str) -> PathBuf {
    c.d.work_dir().join(format!("{what}-{}", c.handler))
}

pub fn scenarios(s: &mut Suite) {
    s.compare("mount-propagation", mount_propagation);
    s.compare("volumes-readonly-and-file", volumes_readonly_and_file);
}

/// Container `name` with `path` at /mnt/vol under `prop`; bidirectional
/// propagation needs a privileged container.
fn with_volume(
    name: &'static str,
    prop: MountPropagation,
    path: PathBuf,
) -> impl FnOnce(&mut ContainerConfig) {
    move |m| {
        named(name)(m);
        m.mounts = vec![volume(&path, "/mnt/vol", prop, false)];
        if prop == MountPropagation::PropagationBidirectional {
            m.linux
                .get_or_insert_with(Default::default)
                .security_context
                .get_or_insert_with(Default::default)
                .privileged = true;
        }
    }
}

fn mount_propagation(c: &mut Ctx<'_>) -> Facts {
    let shared = SharedDir::new(run_dir(c, "shared"));
    for sub in ["from-host", "from-container"] {
        std::fs::create_dir_all(shared.path.join(sub)).expect("mkdir");
    }
    let pod = c.pod(|p| {
        let sc = p.linux.as_mut().and_then(|l| l.security_context.as_mut());
        sc.expect("pod security context").privileged = true;
    });
    let path = shared.path.clone();
    let mut f = Facts::new();
    let private = c.run(
        &pod,
        &["sleep", "3600"],
        with_volume(
            "private",
            MountPropagation::PropagationPrivate,
            path.clone(),
        ),
    );
    let h2c = c.run(
        &pod,
        &["sleep", "3600"],
        with_volume(
            "h2c",
            MountPropagation::PropagationHostToContainer,
            path.clone(),
        ),
    );
    let bidi = c.run(
        &pod,
        &["sleep", "3600"],
        with_volume("bidi", MountPropagation::PropagationBidirectional, path),
    );
    let tags = [&private, &h2c, &bidi].map(|id| propagation_of(c, id));
    // PRIVATE is checked last, so that a failure still shows the rest.
    let mut private_wrong = Vec::new();
    if !tags[0].is_empty() {
        private_wrong.push(format!("its mountinfo tags are {:?}, not none", tags[0]));
    }
    f.set("mountinfo_tags", format!("{tags:?}"));
    // A mount the host makes after the containers started.
    let from_host = shared.tmpfs("from-host");
    std::fs::write(from_host.join("marker"), "host\n").expect("marker");
    let see_host = "cat /mnt/vol/from-host/marker";
    let (p, _) = sh(c, &private, see_host);
    let (h, hout) = sh(c, &h2c, see_host);
    let (b, bout) = sh(c, &bidi, see_host);
    if p == 0 {
        private_wrong.push("it sees the host's new mount".to_string());
    }
    assert_eq!(
        (h, hout.as_str()),
        (0, "host\n"),
        "HOST_TO_CONTAINER sees it"
    );
    assert_eq!((b, bout.as_str()), (0, "host\n"), "BIDIRECTIONAL sees it");
    f.set(
        "host_mount_seen",
        format!("private={} h2c={} bidi={}", p == 0, h == 0, b == 0),
    );
    // A mount the bidirectional container makes reaches the host.
    let (code, out) = sh(
        c,
        &bidi,
        "mount -t tmpfs tmpfs /mnt/vol/from-container && echo ctr > /mnt/vol/from-container/marker",
    );
    assert_eq!(code, 0, "mount inside the bidirectional container: {out}");
    let on_host = shared.path.join("from-container/marker");
    let arrived = wait_until(Duration::from_secs(10), || on_host.exists());
    assert!(
        arrived,
        "the container's mount did not reach {}",
        on_host.display()
    );
    assert_eq!(std::fs::read_to_string(&on_host).expect("marker"), "ctr\n");
    // ...and from the host on to the host-to-container one, not the private.
    let see_ctr = "cat /mnt/vol/from-container/marker";
    let (p2, _) = sh(c, &private, see_ctr);
    let (h2, _) = sh(c, &h2c, see_ctr);
    if p2 == 0 {
        private_wrong.push("it sees the bidirectional container's mount".to_string());
    }
    assert_eq!(
        h2, 0,
        "HOST_TO_CONTAINER misses the bidirectional container's mount"
    );
    f.set(
        "container_mount_seen",
        format!("host={arrived} private={} h2c={}", p2 == 0, h2 == 0),
    );
    // The containers' mount points go before the host's shared dir.
    stop_pod(c, &pod.0);
    assert!(
        private_wrong.is_empty(),
        "PRIVATE volume (rprivate): {private_wrong:?}"
    );
    f
}

fn volumes_readonly_and_file(c: &mut Ctx<'_>) -> Facts {
    let dir = run_dir(c, "vols");
    let (ro, rw) = (dir.join("ro"), dir.join("rw"));
    for d in [&ro, &rw] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    std::fs::write(ro.join("data"), "read me\n").expect("ro data");
    let file = dir.join("file.conf");
    std::fs::write(&file, "key=value\n").expect("file");
    let pod = c.pod(|_| {});
    let mounts = vec![
        volume(&ro, "/mnt/ro", MountPropagation::PropagationPrivate, true),
        volume(&rw, "/mnt/rw", MountPropagation::PropagationPrivate, false),
        volume(
            &file,
            "/etc/pinc-file.conf",
            MountPropagation::PropagationPrivate,
            false,
        ),
    ];
    let id = c.run(&pod, &["sleep", "3600"], move |m| m.mounts = mounts);
    let mut f = Facts::new();
    let (code, out) = sh(c, &id, "cat /mnt/ro/data");
    assert_eq!((code, out.as_str()), (0, "read me\n"));
    let (code, out) = sh(c, &id, "touch /mnt/ro/new");
    assert_ne!(code, 0, "write to a read-only volume succeeded");
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(!ro.join("new").exists());
    f.set(
        "readonly_write",
        format!("{code} {}", out.contains("Read-only file system")),
    );
    let (code, out) = sh(c, &id, "echo written > /mnt/rw/new && cat /mnt/rw/new");
    assert_eq!((code, out.as_str()), (0, "written\n"));
    assert_eq!(
        std::fs::read_to_string(rw.join("new")).expect("rw new"),
        "written\n"
    );
    f.set("readwrite", code);
    // A file volume: the file, not a directory, and writes go through.
    let (code, out) = sh(
        c,
        &id,
        "test -f /etc/pinc-file.conf && cat /etc/pinc-file.conf",
    );
    assert_eq!((code, out.as_str()), (0, "key=value\n"));
    let (code, _) = sh(c, &id, "echo more=1 >> /etc/pinc-file.conf");
    assert_eq!(code, 0);
    let host = std::fs::read_to_string(&file).expect("file");
    assert_eq!(host, "key=value\nmore=1\n");
    f.set("file_volume", format!("{host:?}"));
    f
}
