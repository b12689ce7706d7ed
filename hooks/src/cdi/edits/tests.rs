use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, Spec};

use super::{Applied, Registry};
use crate::cdi::CdiError;
use crate::testutil::{chardev, require_root, symlink, write};

/// A registry of the given spec files, all in one directory.
fn registry(files: &[(&str, &str)]) -> (tempfile::TempDir, Registry) {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        write(dir.path(), &format!("cdi/{name}"), text);
    }
    let registry = Registry::load(&[dir.path().join("cdi")]).expect("load registry");
    (dir, registry)
}

/// A container spec with a process environment and the default mounts.
fn base() -> Spec {
    let mut spec = Spec::default();
    let process = spec.process_mut().as_mut().expect("default process");
    process.set_env(Some(vec![
        "PATH=/bin".to_owned(),
        "A=old".to_owned(),
        "A=dup".to_owned(),
    ]));
    spec
}

fn names(devices: &[&str]) -> Vec<String> {
    devices.iter().map(|d| (*d).to_owned()).collect()
}

fn linux_devices(spec: &Spec) -> Vec<LinuxDevice> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default()
}

fn rules(spec: &Spec) -> Vec<LinuxDeviceCgroup> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.devices().clone())
        .unwrap_or_default()
}

fn rule(spec: &Spec, major: i64, minor: i64) -> Option<LinuxDeviceCgroup> {
    rules(spec)
        .into_iter()
        .find(|r| r.major() == Some(major) && r.minor() == Some(minor))
}

const EDITS_SPEC: &str = r#"{
    "cdiVersion": "0.7.0",
    "kind": "example.com/dev",
    "containerEdits": {
        "env": ["A=spec"],
        "mounts": [{"hostPath": "/usr/lib/libx.so", "containerPath": "/usr/lib/libx.so", "options": ["ro", "nosuid", "bind"]}],
        "hooks": [{"hookName": "createContainer", "path": "/usr/bin/hook", "args": ["hook", "ldcache"]}]
    },
    "devices": [
        {"name": "one", "containerEdits": {
            "env": ["A=new", "B=1"],
            "mounts": [
                {"hostPath": "/opt/data", "containerPath": "/data"},
                {"hostPath": "tmpfs", "containerPath": "/scratch", "type": "tmpfs", "options": ["size=1m"]}
            ],
            "hooks": [
                {"hookName": "prestart", "path": "/bin/pre"},
                {"hookName": "poststop", "path": "/bin/post", "env": ["X=1"], "timeout": 5}
            ],
            "additionalGids": [44, 0, 44],
            "intelRdt": {"closID": "grp", "enableCMT": true}
        }},
        {"name": "two", "containerEdits": {
            "env": ["C=2"],
            "hooks": [{"hookName": "createContainer", "path": "/usr/bin/hook", "args": ["hook", "ldcache"]}],
            "additionalGids": [45]
        }},
        {"name": "fifo", "containerEdits": {
            "deviceNodes": [
                {"path": "/dev/x", "type": "c", "major": 10, "minor": 200, "permissions": "rw", "fileMode": 69206454},
                {"path": "/dev/pipe", "type": "p"}
            ]
        }}
    ]
}"#;

#[test]
#[allow(deprecated)] // prestart
fn applies_env_mounts_hooks_gids_and_rdt() {
    let (_dir, registry) = registry(&[("dev.json", EDITS_SPEC)]);
    let mut spec = base();
    let default_mounts = spec.mounts().clone().unwrap_or_default().len();
    let request = names(&[
        "example.com/dev=one",
        "example.com/dev=two",
        "example.com/dev=one",
    ]);
    let applied = registry
        .apply(&mut spec, &request, Path::new("/"))
        .expect("apply");

    let process = spec.process().as_ref().expect("process");
    assert_eq!(
        process.env().as_deref().unwrap_or_default(),
        ["PATH=/bin", "A=new", "B=1", "C=2"]
    );
    assert_eq!(
        process.user().additional_gids().as_deref(),
        Some(&[44, 45][..])
    );

    let mounts = spec.mounts().clone().unwrap_or_default();
    let added: Vec<_> = mounts[default_mounts..]
        .iter()
        .map(|m| {
            (
                m.destination().display().to_string(),
                m.source().clone().unwrap_or_default().display().to_string(),
                m.typ().clone().unwrap_or_default(),
                m.options().clone().unwrap_or_default().join(","),
            )
        })
        .collect();
    let strings = |a: &str, b: &str, c: &str, d: &str| {
        (a.to_owned(), b.to_owned(), c.to_owned(), d.to_owned())
    };
    assert_eq!(
        added,
        [
            strings(
                "/usr/lib/libx.so",
                "/usr/lib/libx.so",
                "bind",
                "ro,nosuid,bind"
            ),
            strings("/data", "/opt/data", "bind", "bind"),
            strings("/scratch", "tmpfs", "tmpfs", "size=1m"),
        ]
    );

    let hooks = spec.hooks().as_ref().expect("hooks");
    let create = hooks.create_container().clone().unwrap_or_default();
    assert_eq!(
        create.len(),
        1,
        "the same hook from two edits is added once"
    );
    assert_eq!(create[0].path(), Path::new("/usr/bin/hook"));
    assert_eq!(
        create[0].args().as_deref(),
        Some(&["hook".to_owned(), "ldcache".to_owned()][..])
    );
    assert_eq!(hooks.prestart().clone().unwrap_or_default().len(), 1);
    let poststop = hooks.poststop().clone().unwrap_or_default();
    assert_eq!(poststop[0].env().as_deref(), Some(&["X=1".to_owned()][..]));
    assert_eq!(poststop[0].timeout(), Some(5));

    let rdt = spec
        .linux()
        .as_ref()
        .and_then(|l| l.intel_rdt().clone())
        .expect("intelRdt");
    assert_eq!(rdt.clos_id().as_deref(), Some("grp"));
    assert_eq!(rdt.enable_monitoring(), &Some(true));
    assert_eq!(rdt.enable_cmt(), &Some(true));

    assert_eq!(
        applied,
        Applied {
            devices: names(&["example.com/dev=one", "example.com/dev=two"]),
            env: names(&["A", "B", "C"]),
            device_nodes: Vec::new(),
            mounts: ["/usr/lib/libx.so", "/data", "/scratch"]
                .iter()
                .map(PathBuf::from)
                .collect(),
            hooks: names(&[
                "createContainer /usr/bin/hook",
                "prestart /bin/pre",
                "poststop /bin/post"
            ]),
            additional_gids: vec![44, 45],
            intel_rdt: true,
        }
    );
}

#[test]
fn declared_device_nodes_and_cgroup_rules() {
    let (_dir, registry) = registry(&[("dev.json", EDITS_SPEC)]);
    let mut spec = base();
    let request = names(&["example.com/dev=fifo"]);
    let applied = registry
        .apply(&mut spec, &request, Path::new("/nonexistent"))
        .expect("apply");
    assert_eq!(
        applied.device_nodes,
        [PathBuf::from("/dev/x"), PathBuf::from("/dev/pipe")]
    );
    let devices = linux_devices(&spec);
    let x = devices
        .iter()
        .find(|d| d.path() == Path::new("/dev/x"))
        .expect("/dev/x");
    assert_eq!(
        (x.typ(), x.major(), x.minor()),
        (LinuxDeviceType::C, 10, 200)
    );
    // 69206454 is Go's os.ModeDevice|os.ModeCharDevice|0o666.
    assert_eq!(x.file_mode(), Some(0o666));
    assert_eq!((x.uid(), x.gid()), (None, None));
    let pipe = devices
        .iter()
        .find(|d| d.path() == Path::new("/dev/pipe"))
        .expect("pipe");
    assert_eq!(pipe.typ(), LinuxDeviceType::P);
    let r = rule(&spec, 10, 200).expect("rule for /dev/x");
    assert!(r.allow());
    assert_eq!(r.typ(), Some(LinuxDeviceType::C));
    assert_eq!(r.access().as_deref(), Some("rw"));
    assert_eq!(rules(&spec).len(), 1, "no rule for the FIFO");
}

#[test]
fn reapplying_is_harmless() {
    let (_dir, registry) = registry(&[("dev.json", EDITS_SPEC)]);
    let mut spec = base();
    let request = names(&[
        "example.com/dev=one",
        "example.com/dev=two",
        "example.com/dev=fifo",
    ]);
    registry
        .apply(&mut spec, &request, Path::new("/"))
        .expect("first");
    let once = spec.clone();
    let again = registry
        .apply(&mut spec, &request, Path::new("/"))
        .expect("second");
    assert_eq!(spec, once);
    assert!(again.device_nodes.is_empty() && again.mounts.is_empty());
    assert!(again.hooks.is_empty() && again.additional_gids.is_empty());
    assert!(!again.intel_rdt);
}

#[test]
fn device_nodes_read_from_the_host_root() {
    require_root!();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    chardev(&root, "/dev/nvidia0", 195, 0);
    chardev(&root, "/dev/nvidia3", 195, 3);
    symlink(&root, "/dev/link", "nvidia0");
    let (_cdi, registry) = registry(&[(
        "gpu.yaml",
        "
cdiVersion: 0.6.0
kind: nvidia.com/gpu
devices:
  - name: '0'
    containerEdits:
      deviceNodes: [{path: /dev/nvidia0}]
  - name: gpu3
    containerEdits:
      deviceNodes: [{path: /dev/gpu, hostPath: /dev/nvidia3, type: c, major: 195, uid: 1000, permissions: rw}]
  - name: link
    containerEdits:
      deviceNodes: [{path: /dev/link}]
  - name: block
    containerEdits:
      deviceNodes: [{path: /dev/nvidia0, type: b}]
  - name: missing
    containerEdits:
      deviceNodes: [{path: /dev/nvidia9}]
",
    )]);
    let mut spec = base();
    let request = names(&["nvidia.com/gpu=0", "nvidia.com/gpu=gpu3"]);
    let applied = registry.apply(&mut spec, &request, &root).expect("apply");
    assert_eq!(
        applied.device_nodes,
        [PathBuf::from("/dev/nvidia0"), PathBuf::from("/dev/gpu")]
    );
    let devices = linux_devices(&spec);
    let gpu0 = &devices[devices.len() - 2];
    assert_eq!(gpu0.path(), Path::new("/dev/nvidia0"));
    assert_eq!(
        (gpu0.typ(), gpu0.major(), gpu0.minor()),
        (LinuxDeviceType::C, 195, 0)
    );
    assert_eq!(
        (gpu0.file_mode(), gpu0.uid(), gpu0.gid()),
        (Some(0o666), Some(0), Some(0))
    );
    let gpu3 = &devices[devices.len() - 1];
    assert_eq!(gpu3.path(), Path::new("/dev/gpu"));
    assert_eq!(
        (gpu3.major(), gpu3.minor()),
        (195, 3),
        "minor read from the host"
    );
    assert_eq!((gpu3.uid(), gpu3.gid()), (Some(1000), Some(0)));
    assert_eq!(
        rule(&spec, 195, 0)
            .and_then(|r| r.access().clone())
            .as_deref(),
        Some("rwm")
    );
    assert_eq!(
        rule(&spec, 195, 3)
            .and_then(|r| r.access().clone())
            .as_deref(),
        Some("rw")
    );

    let before = spec.clone();
    let err = registry
        .apply(&mut spec, &names(&["nvidia.com/gpu=link"]), &root)
        .expect_err("symlink");
    assert!(
        matches!(&err, CdiError::DeviceNode { source, .. } if !source.is_missing()),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "CDI device nvidia.com/gpu=link: device node /dev/link"
    );
    let err = registry
        .apply(&mut spec, &names(&["nvidia.com/gpu=missing"]), &root)
        .expect_err("missing");
    assert!(
        matches!(&err, CdiError::DeviceNode { source, .. } if source.is_missing()),
        "{err:?}"
    );
    let err = registry
        .apply(&mut spec, &names(&["nvidia.com/gpu=block"]), &root)
        .expect_err("type mismatch");
    assert!(matches!(err, CdiError::TypeMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("is a character device"), "{err}");
    assert_eq!(spec, before, "failed applies change nothing");
}

#[test]
fn conflicting_device_nodes_and_mounts_are_errors() {
    let node = |kind: &str, minor: u32| {
        format!(
            r#"{{"cdiVersion": "0.5.0", "kind": "{kind}", "devices": [{{"name": "1",
                "containerEdits": {{"deviceNodes": [{{"path": "/dev/foo", "type": "c", "major": 1, "minor": {minor}}}]}}}}]}}"#
        )
    };
    let (_dir, registry) = registry(&[
        ("a.json", &node("a.com/x", 1)),
        ("b.json", &node("b.com/y", 2)),
        ("c.json", &node("c.com/z", 1)),
        (
            "m.yaml",
            "cdiVersion: 0.5.0\nkind: m.com/m\ndevices:\n  - name: proc\n    containerEdits:\n      mounts: [{hostPath: /host/proc, containerPath: /proc}]\n",
        ),
    ]);
    let mut spec = base();
    let before = spec.clone();
    let err = registry
        .apply(
            &mut spec,
            &names(&["a.com/x=1", "b.com/y=1"]),
            Path::new("/"),
        )
        .expect_err("conflict");
    assert_eq!(
        err.to_string(),
        "conflicting CDI edits: a.com/x=1 and b.com/y=1 set device node /dev/foo differently"
    );
    assert_eq!(spec, before);

    // The same node from two devices is fine and added once.
    let applied = registry
        .apply(
            &mut spec,
            &names(&["a.com/x=1", "c.com/z=1"]),
            Path::new("/"),
        )
        .expect("same node");
    assert_eq!(applied.device_nodes, [PathBuf::from("/dev/foo")]);

    // Against what the container spec already has.
    let err = registry
        .apply(&mut spec, &names(&["b.com/y=1"]), Path::new("/"))
        .expect_err("conflict with spec");
    assert_eq!(
        err.to_string(),
        "conflicting CDI edits: the container spec and b.com/y=1 set device node /dev/foo differently"
    );
    let err = registry
        .apply(&mut spec, &names(&["m.com/m=proc"]), Path::new("/"))
        .expect_err("mount conflict");
    assert_eq!(
        err.to_string(),
        "conflicting CDI edits: the container spec and m.com/m=proc set mount /proc differently"
    );
}

#[test]
fn unknown_and_malformed_devices() {
    let (_dir, registry) = registry(&[("dev.json", EDITS_SPEC)]);
    let mut spec = base();
    let before = spec.clone();
    let err = registry
        .apply(
            &mut spec,
            &names(&["example.com/dev=one", "example.com/dev=three"]),
            Path::new("/"),
        )
        .expect_err("unknown");
    assert_eq!(
        err.to_string(),
        "unknown CDI device example.com/dev=three (known example.com/dev devices: \
         example.com/dev=fifo, example.com/dev=one, example.com/dev=two)"
    );
    assert_eq!(spec, before, "nothing applied when any request is unknown");
    let err = registry
        .apply(&mut spec, &names(&["amd.com/gpu=0"]), Path::new("/"))
        .expect_err("unknown kind");
    assert_eq!(
        err.to_string(),
        "unknown CDI device amd.com/gpu=0 (no CDI spec defines devices of kind amd.com/gpu)"
    );
    let err = registry
        .apply(&mut spec, &names(&["gpu0"]), Path::new("/"))
        .expect_err("unqualified");
    assert!(
        matches!(
            err,
            CdiError::Name(pinc_request::cdi::NameError::BadName { .. })
        ),
        "{err:?}"
    );
    assert_eq!(
        registry
            .apply(&mut spec, &[], Path::new("/"))
            .expect("nothing"),
        Applied::default()
    );
    assert_eq!(spec, before);
}

#[test]
fn missing_process_section() {
    let (_dir, registry) = registry(&[("dev.json", EDITS_SPEC)]);
    let mut spec = base();
    spec.set_process(None);
    let err = registry
        .apply(&mut spec, &names(&["example.com/dev=two"]), Path::new("/"))
        .expect_err("no process");
    assert!(
        matches!(
            err,
            CdiError::MissingSection {
                section: "process",
                ..
            }
        ),
        "{err:?}"
    );
}
