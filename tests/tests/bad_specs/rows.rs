//! The table of bad and edge-case specs: how each row edits a default
//! bundle, and what pinc must do with it.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::PathBuf;

use serde_json::{json, Value};

/// What a row's edit may need to know about its bundle.
pub struct Ctx {
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
}

pub enum Outcome {
    /// Exit 1 and one error line matching this ("[*]" stands for any index).
    Refused(&'static str),
    /// Exit 0, stdout containing this.
    Runs(&'static str),
}

pub struct Row {
    pub name: &'static str,
    pub edit: fn(&mut Value, &Ctx),
    pub outcome: Outcome,
    /// Words that name the bad field or value: a runtime's refusal is
    /// "clear" when it contains one (the runc comparison).
    pub clues: &'static [&'static str],
    /// Checks on the bundle after the run.
    pub after: fn(&Ctx),
}

fn nothing(_: &Ctx) {}

fn refused(
    name: &'static str,
    pattern: &'static str,
    clues: &'static [&'static str],
    edit: fn(&mut Value, &Ctx),
) -> Row {
    Row {
        name,
        edit,
        outcome: Outcome::Refused(pattern),
        clues,
        after: nothing,
    }
}

fn runs(
    name: &'static str,
    out: &'static str,
    clues: &'static [&'static str],
    edit: fn(&mut Value, &Ctx),
) -> Row {
    Row {
        name,
        edit,
        outcome: Outcome::Runs(out),
        clues,
        after: nothing,
    }
}

impl Row {
    fn after(mut self, f: fn(&Ctx)) -> Self {
        self.after = f;
        self
    }
}

fn args(c: &mut Value, a: &[&str]) {
    c["process"]["args"] = json!(a);
}

fn push(c: &mut Value, pointer: &str, item: Value) {
    let slot = c.pointer_mut(pointer).expect("pointer");
    if slot.is_null() {
        *slot = json!([]);
    }
    slot.as_array_mut().expect("array").push(item);
}

fn mount(c: &mut Value, m: Value) {
    push(c, "/mounts", m);
}

fn hook(c: &mut Value, kind: &str, h: Value) {
    if c["hooks"].is_null() {
        c["hooks"] = json!({});
    }
    if c["hooks"][kind].is_null() {
        c["hooks"][kind] = json!([]);
    }
    push(c, &format!("/hooks/{kind}"), h);
}

fn device(c: &mut Value, d: Value) {
    if c["linux"]["devices"].is_null() {
        c["linux"]["devices"] = json!([]);
    }
    push(c, "/linux/devices", d);
}

fn drop_ns(c: &mut Value, kind: &str) {
    let list = c["linux"]["namespaces"].as_array_mut().expect("namespaces");
    list.retain(|n| n["type"] != kind);
}

fn ns_path(c: &mut Value, kind: &str, path: &str) {
    let list = c["linux"]["namespaces"].as_array_mut().expect("namespaces");
    let ns = list.iter_mut().find(|n| n["type"] == kind).expect("ns");
    ns["path"] = path.into();
}

fn own_ns(kind: &str) -> String {
    format!("/proc/{}/ns/{kind}", std::process::id())
}

fn sysctl(c: &mut Value, key: &str, value: &str) {
    c["linux"]["sysctl"] = json!({ key: value });
}

// A table: one row per bad spec, read and extended row by row.
#[allow(clippy::too_many_lines)]
pub fn rows() -> Vec<Row> {
    vec![
        refused(
            "args_empty",
            "process.args: must not be empty",
            &["args"],
            |c, _| args(c, &[]),
        ),
        refused(
            "args_missing",
            "process.args: must not be empty",
            &["args"],
            |c, _| {
                c["process"]
                    .as_object_mut()
                    .expect("process")
                    .remove("args");
            },
        ),
        refused(
            "args0_empty",
            "process.args[0]: must not be empty",
            &["args", "\"\"", "\\\"\\\""],
            |c, _| args(c, &[""]),
        ),
        refused(
            "cwd_relative",
            "process.cwd: \"tmp\" is not an absolute path",
            &["cwd"],
            |c, _| c["process"]["cwd"] = "tmp".into(),
        ),
        refused(
            "cwd_empty",
            "process.cwd: must not be empty",
            &["cwd"],
            |c, _| c["process"]["cwd"] = "".into(),
        ),
        runs("cwd_missing_is_created", "/made/by/pinc", &[], |c, _| {
            c["process"]["cwd"] = "/made/by/pinc".into();
            args(c, &["pwd"]);
        })
        .after(|ctx| {
            let meta = fs::metadata(ctx.rootfs.join("made/by/pinc")).expect("cwd made");
            assert_eq!(meta.permissions().mode() & 0o777, 0o755, "cwd mode");
        }),
        refused(
            "cwd_through_symlink_out_of_rootfs",
            "process.cwd: cannot create /escape/sub in the rootfs",
            &["cwd", "/escape"],
            |c, ctx| {
                fs::create_dir_all(ctx.bundle.join("outside")).expect("outside");
                symlink(ctx.bundle.join("outside"), ctx.rootfs.join("escape")).expect("symlink");
                c["process"]["cwd"] = "/escape/sub".into();
            },
        )
        .after(|ctx| {
            assert!(
                !ctx.bundle.join("outside/sub").exists(),
                "made outside the rootfs"
            )
        }),
        refused(
            "namespace_duplicate",
            "linux.namespaces[*]: duplicate pid namespace",
            &["duplicate"],
            |c, _| push(c, "/linux/namespaces", json!({"type": "pid"})),
        ),
        refused(
            "namespace_path_missing",
            "linux.namespaces[*].path: /no/such/ns does not exist",
            &["/no/such/ns"],
            |c, _| ns_path(c, "network", "/no/such/ns"),
        ),
        refused(
            "namespace_path_not_a_namespace",
            "linux.namespaces[*].path: /etc/hostname is not a namespace file",
            &["/etc/hostname", "namespaces[", "net namespace"],
            |c, _| ns_path(c, "network", "/etc/hostname"),
        ),
        refused(
            "namespace_path_wrong_type",
            "/ns/ipc has namespace type ipc, expected network",
            &["/ns/ipc", "namespaces[", "net namespace"],
            |c, _| ns_path(c, "network", &own_ns("ipc")),
        ),
        runs("namespace_path_joined", "", &[], |c, _| {
            ns_path(c, "network", &own_ns("net"))
        }),
        refused(
            "namespace_type_unknown",
            "linux.namespaces[*].type: unknown variant `foo`",
            &["foo"],
            |c, _| push(c, "/linux/namespaces", json!({"type": "foo"})),
        ),
        refused(
            "mount_bind_source_missing",
            "mounts[*].source: /no/such/src does not exist",
            &["/no/such/src"],
            |c, _| {
                mount(
                    c,
                    json!({"destination": "/mnt", "type": "bind", "source": "/no/such/src", "options": ["rbind"]}),
                )
            },
        ),
        refused(
            "mount_rbind_option_source_missing",
            "mounts[*].source: /no/such/src does not exist",
            &["/no/such/src"],
            |c, _| {
                mount(
                    c,
                    json!({"destination": "/mnt", "source": "/no/such/src", "options": ["rbind"]}),
                )
            },
        ),
        refused(
            "mount_type_unknown",
            "mounts[*].type: unknown filesystem type \"nosuchfs\"",
            &["nosuchfs", "/mnt"],
            |c, _| {
                mount(
                    c,
                    json!({"destination": "/mnt", "type": "nosuchfs", "source": "none"}),
                )
            },
        ),
        refused(
            "mount_type_missing",
            "mounts[*].type: no type given",
            &["mounts[", "type", "/mnt"],
            |c, _| {
                mount(
                    c,
                    json!({"destination": "/mnt", "source": "tmpfs", "options": ["size=1m"]}),
                )
            },
        ),
        refused(
            "mount_destination_empty",
            "mounts[*].destination: must not be empty",
            &["mounts[", "destination"],
            |c, _| {
                mount(
                    c,
                    json!({"destination": "", "type": "tmpfs", "source": "tmpfs"}),
                )
            },
        ),
        runs("mount_destination_relative", " /mnt ", &[], |c, _| {
            mount(
                c,
                json!({"destination": "mnt", "type": "tmpfs", "source": "tmpfs"}),
            );
            args(c, &["grep", " /mnt ", "/proc/self/mountinfo"]);
        }),
        runs(
            "mount_bind_source_relative_to_bundle",
            "from the bundle",
            &[],
            |c, ctx| {
                fs::create_dir_all(ctx.bundle.join("data")).expect("data");
                fs::write(ctx.bundle.join("data/f"), "from the bundle").expect("f");
                mount(
                    c,
                    json!({"destination": "/data", "source": "data", "options": ["rbind", "ro"]}),
                );
                args(c, &["cat", "/data/f"]);
            },
        ),
        refused(
            "hook_prestart_missing",
            "hooks.prestart[0].path: /no/such/hook does not exist",
            &["/no/such/hook"],
            |c, _| hook(c, "prestart", json!({"path": "/no/such/hook"})),
        ),
        refused(
            "hook_prestart_relative",
            "hooks.prestart[0].path: \"bin/true\" is not an absolute path",
            &["bin/true"],
            |c, _| hook(c, "prestart", json!({"path": "bin/true"})),
        ),
        refused(
            "hook_prestart_not_executable",
            "hooks.prestart[0].path: / … /plain-file is not an executable file",
            &["plain-file"],
            |c, ctx| {
                let f = ctx.bundle.join("plain-file");
                fs::write(&f, "#!/bin/sh\n").expect("hook file");
                fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).expect("chmod");
                hook(c, "prestart", json!({"path": f}));
            },
        ),
        refused(
            "hook_create_runtime_missing",
            "hooks.createRuntime[0].path: /no/such/hook does not exist",
            &["/no/such/hook"],
            |c, _| hook(c, "createRuntime", json!({"path": "/no/such/hook"})),
        ),
        refused(
            "hook_create_container_missing",
            "hooks.createContainer[0].path: /no/such/hook does not exist",
            &["/no/such/hook"],
            |c, _| hook(c, "createContainer", json!({"path": "/no/such/hook"})),
        ),
        refused(
            "hook_poststart_missing",
            "hooks.poststart[0].path: /no/such/hook does not exist",
            &["/no/such/hook"],
            |c, _| hook(c, "poststart", json!({"path": "/no/such/hook"})),
        ),
        refused(
            "hook_start_container_missing_in_rootfs",
            "hooks.startContainer[0].path: /no/such/hook does not exist",
            &["/no/such/hook"],
            |c, _| hook(c, "startContainer", json!({"path": "/no/such/hook"})),
        ),
        refused(
            "hook_timeout_negative",
            "hooks.prestart[0].timeout:",
            &["timeout"],
            |c, _| hook(c, "prestart", json!({"path": "/bin/true", "timeout": -1})),
        ),
        refused(
            "device_type_unknown",
            "linux.devices[0].type: unknown variant `x`",
            &["device type", "devices["],
            |c, _| {
                device(
                    c,
                    json!({"path": "/dev/foo", "type": "x", "major": 1, "minor": 3}),
                )
            },
        ),
        refused(
            "device_type_all",
            "linux.devices[0].type: \"a\" is not a device node type",
            &["device type", "devices["],
            |c, _| {
                device(
                    c,
                    json!({"path": "/dev/foo", "type": "a", "major": 1, "minor": 3}),
                )
            },
        ),
        refused(
            "device_major_negative",
            "linux.devices[0].major: -1 is out of range",
            &["major", "/dev/foo"],
            |c, _| {
                device(
                    c,
                    json!({"path": "/dev/foo", "type": "c", "major": -1, "minor": 3}),
                )
            },
        ),
        refused(
            "device_minor_too_big",
            "linux.devices[0].minor: 3000000 is out of range",
            &["minor", "/dev/foo"],
            |c, _| {
                device(
                    c,
                    json!({"path": "/dev/foo", "type": "c", "major": 1, "minor": 3000000}),
                )
            },
        ),
        runs("device_fifo", "fifo", &[], |c, _| {
            device(c, json!({"path": "/dev/myfifo", "type": "p"}));
            args(c, &["sh", "-c", "test -p /dev/myfifo && echo fifo"]);
        }),
        runs("device_path_relative", "char", &[], |c, _| {
            device(
                c,
                json!({"path": "dev/mynull", "type": "c", "major": 1, "minor": 3}),
            );
            args(c, &["sh", "-c", "test -c /dev/mynull && echo char"]);
        }),
        runs("device_listed_twice_first_wins", "1:3", &[], |c, _| {
            device(
                c,
                json!({"path": "/dev/twice", "type": "c", "major": 1, "minor": 3}),
            );
            device(
                c,
                json!({"path": "/dev/twice", "type": "c", "major": 1, "minor": 5}),
            );
            args(c, &["stat", "-c", "%t:%T", "/dev/twice"]);
        }),
        refused(
            "env_string_too_long",
            "process.env[*]: 140002 bytes is longer than the kernel's limit",
            &["env", "argument"],
            |c, _| {
                push(
                    c,
                    "/process/env",
                    json!(format!("X={}", "a".repeat(140_000))),
                )
            },
        ),
        refused(
            "args_and_env_too_large",
            "process.args + process.env:",
            &["env", "argument"],
            |c, _| {
                for i in 0..30 {
                    push(
                        c,
                        "/process/env",
                        json!(format!("X{i}={}", "a".repeat(100_000))),
                    );
                }
            },
        ),
        refused(
            "env_without_equals",
            "process.env[*]: \"NOEQUALS\" is not KEY=VALUE",
            &["NOEQUALS"],
            |c, _| push(c, "/process/env", json!("NOEQUALS")),
        ),
        refused(
            "rlimit_type_unknown",
            "process.rlimits[*].type: unknown variant `RLIMIT_FOO`",
            &["RLIMIT_FOO"],
            |c, _| {
                push(
                    c,
                    "/process/rlimits",
                    json!({"type": "RLIMIT_FOO", "hard": 1, "soft": 1}),
                )
            },
        ),
        refused(
            "rlimit_soft_above_hard",
            "process.rlimits[0]: soft limit 1024 is above the hard limit 100",
            &["rlimits[", "RLIMIT_NOFILE", "rlimit type"],
            |c, _| {
                c["process"]["rlimits"] =
                    json!([{"type": "RLIMIT_NOFILE", "hard": 100, "soft": 1024}])
            },
        ),
        runs("capability_unknown_is_ignored", "", &[], |c, _| {
            push(c, "/process/capabilities/bounding", json!("CAP_FOO"))
        }),
        refused(
            "hostname_without_uts_namespace",
            "hostname: set, but linux.namespaces has no uts namespace",
            &["hostname"],
            |c, _| {
                drop_ns(c, "uts");
                c["hostname"] = "h".into();
            },
        ),
        runs("domainname_without_uts_namespace", "", &[], |c, _| {
            drop_ns(c, "uts");
            c.as_object_mut().expect("spec").remove("hostname");
            c["domainname"] = "d".into();
        }),
        runs("id_mappings_without_user_namespace", "", &[], |c, _| {
            let maps = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            c["linux"]["uidMappings"] = maps.clone();
            c["linux"]["gidMappings"] = maps;
        }),
        refused(
            "user_namespace_without_mappings",
            "linux.uidMappings: a new user namespace needs at least one mapping",
            &["mappings"],
            |c, _| push(c, "/linux/namespaces", json!({"type": "user"})),
        ),
        runs("user_namespace_with_mappings", "0:0", &[], |c, _| {
            push(c, "/linux/namespaces", json!({"type": "user"}));
            let maps = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            c["linux"]["uidMappings"] = maps.clone();
            c["linux"]["gidMappings"] = maps;
            args(c, &["sh", "-c", "echo $(id -u):$(id -g)"]);
        }),
        refused(
            "sysctl_net_without_network_namespace",
            "linux.sysctl[\"net.ipv4.ip_forward\"]: not allowed in the host's network namespace",
            &["net.ipv4.ip_forward"],
            |c, _| {
                drop_ns(c, "network");
                sysctl(c, "net.ipv4.ip_forward", "1");
            },
        ),
        refused(
            "sysctl_ipc_without_ipc_namespace",
            "linux.sysctl[\"kernel.msgmax\"]: not allowed in the host's ipc namespace",
            &["kernel.msgmax"],
            |c, _| {
                drop_ns(c, "ipc");
                sysctl(c, "kernel.msgmax", "8192");
            },
        ),
        refused(
            "sysctl_not_namespaced",
            "linux.sysctl[\"vm.swappiness\"]: not in a namespace of the container",
            &["vm.swappiness"],
            |c, _| sysctl(c, "vm.swappiness", "10"),
        ),
        runs("sysctl_net_in_its_namespace", "1", &[], |c, _| {
            sysctl(c, "net.ipv4.ip_forward", "1");
            args(c, &["cat", "/proc/sys/net/ipv4/ip_forward"]);
        }),
        refused(
            "oom_score_adj_out_of_range",
            "process.oomScoreAdj: 5000 is out of range",
            &["oomScoreAdj", "oom_score_adj"],
            |c, _| c["process"]["oomScoreAdj"] = 5000.into(),
        ),
        refused(
            "rootfs_propagation_unknown",
            "linux.rootfsPropagation: unknown value \"bogus\"",
            &["rootfsPropagation"],
            |c, _| c["linux"]["rootfsPropagation"] = "bogus".into(),
        ),
        runs("rootfs_propagation_rshared", "", &[], |c, _| {
            c["linux"]["rootfsPropagation"] = "rshared".into()
        }),
        runs("rootfs_propagation_rslave", "", &[], |c, _| {
            c["linux"]["rootfsPropagation"] = "rslave".into()
        }),
        runs("rootfs_propagation_rprivate", "", &[], |c, _| {
            c["linux"]["rootfsPropagation"] = "rprivate".into()
        }),
        refused(
            "seccomp_default_action_unknown",
            "linux.seccomp.defaultAction: unknown variant `SCMP_ACT_FOO`",
            &["SCMP_ACT_FOO"],
            |c, _| c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_FOO"}),
        ),
        refused(
            "seccomp_arch_unknown",
            "linux.seccomp.architectures[0]: unknown variant `SCMP_ARCH_FOO`",
            &["SCMP_ARCH_FOO"],
            |c, _| {
                c["linux"]["seccomp"] =
                    json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_FOO"]})
            },
        ),
        refused(
            "seccomp_syscall_action_unknown",
            "linux.seccomp.syscalls[0].action: unknown variant `SCMP_ACT_FOO`",
            &["SCMP_ACT_FOO"],
            |c, _| {
                c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_FOO"}]})
            },
        ),
        runs(
            "no_new_privileges_false_with_seccomp",
            "NoNewPrivs:\t0",
            &[],
            |c, _| {
                c["process"]["noNewPrivileges"] = false.into();
                c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["swapon"], "action": "SCMP_ACT_ERRNO"}]});
                args(c, &["grep", "NoNewPrivs", "/proc/self/status"]);
            },
        ),
        refused(
            "personality_domain_unknown",
            "linux.personality.domain: unknown variant `LINUX_FOO`",
            &["LINUX_FOO"],
            |c, _| c["linux"]["personality"] = json!({"domain": "LINUX_FOO"}),
        ),
        refused(
            "oci_version_2",
            "unsupported ociVersion \"2.0.0\"",
            &["ociVersion", "2.0.0"],
            |c, _| c["ociVersion"] = "2.0.0".into(),
        ),
        refused(
            "root_path_missing",
            "no-such-rootfs does not exist",
            &["no-such-rootfs"],
            |c, _| c["root"]["path"] = "no-such-rootfs".into(),
        ),
        refused(
            "root_absent",
            "the spec has no \"root\"",
            &["root"],
            |c, _| {
                c.as_object_mut().expect("spec").remove("root");
            },
        ),
        refused(
            "user_uid_not_a_number",
            "process.user.uid: invalid type: string \"abc\"",
            &["uid"],
            |c, _| c["process"]["user"]["uid"] = "abc".into(),
        ),
        refused(
            "selinux_label_without_selinux",
            "process.selinuxLabel: set, but SELinux is not enabled",
            &["selinux"],
            |c, _| {
                c["process"]["selinuxLabel"] = "system_u:system_r:svirt_lxc_net_t:s0:c1,c2".into()
            },
        ),
        refused(
            "apparmor_profile_without_apparmor",
            "process.apparmorProfile: set, but AppArmor is not enabled",
            &["apparmor"],
            |c, _| c["process"]["apparmorProfile"] = "no-such-profile".into(),
        ),
    ]
}
