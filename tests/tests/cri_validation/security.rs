//! Security context: users and groups, read-only rootfs, privileged,
//! capabilities, no_new_privs and seccomp. Every check runs in the
//! container's init process and in an exec'd process (`probe`). Sysctls
//! and masked/read-only paths are in `security_paths`.

use k8s_cri::v1::security_profile::ProfileType;
use k8s_cri::v1::*;
use pinc_tests::cri_compare::{Ctx, Facts, Suite};

use crate::probe::{get, kv, own_pid, own_pid_pod, pod_sec, probe, sec};
use crate::security_paths::{KUBELET_MASKED, KUBELET_READONLY};

/// The capabilities containerd gives a container by default (its
/// defaultUnixCaps), as bit numbers.
const DEFAULT_CAPS: [u32; 14] = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31];
const CAP_CHOWN: u32 = 0;
const CAP_NET_BIND_SERVICE: u32 = 10;
const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
const CAP_SYS_ADMIN: u32 = 21;

/// A capability case: name, added, dropped, the expected sets (None: the
/// host's bounding set).
type CapCase = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    Option<u64>,
);

fn mask(bits: &[u32]) -> u64 {
    bits.iter().fold(0, |m, b| m | (1u64 << b))
}

fn hex(m: u64) -> String {
    format!("{m:016x}")
}

/// The capability bounding set of this test (and so of containerd, which
/// it started): what "all capabilities" can be here (root lacks
/// CAP_SYS_RESOURCE on this machine).
fn host_bounding_set() -> String {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    kv(&status)
        .get("CapBnd")
        .cloned()
        .expect("CapBnd in /proc/self/status")
}

/// Credentials and the status of the process itself ($$ is the init
/// shell, or the exec'd one).
const IDS: &str = "echo uid=$(id -u); echo gid=$(id -g); echo groups=$(id -G); \
                   cat /proc/$$/status";

/// `id -G` as a sorted list, so group order does not matter.
fn groups(s: &str) -> String {
    let mut g: Vec<u32> = s
        .split_whitespace()
        .map(|x| x.parse().unwrap_or_else(|_| panic!("bad group {x:?}")))
        .collect();
    g.sort_unstable();
    g.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

pub fn scenarios(s: &mut Suite) {
    s.compare("security-user-group", security_user_group);

    s.compare("security-readonly-rootfs", security_readonly_rootfs);

    s.compare("security-privileged", security_privileged);

    s.compare("security-capabilities", security_capabilities);

    s.compare("security-no-new-privs", security_no_new_privs);

    s.compare("security-seccomp", security_seccomp);

    s.compare("security-session-keyring", security_session_keyring);
}

fn security_user_group(c: &mut Ctx<'_>) -> Facts {
    let pod = own_pid_pod(c);
    let mut facts = Facts::new();
    let script = format!("{IDS}; f=/out/f.$$; : >$f; echo owner=$(stat -c %u:%g $f)");
    let p = probe(c, &pod, &script, |cfg| {
        let s = sec(cfg);
        s.run_as_user = Some(Int64Value { value: 1000 });
        s.run_as_group = Some(Int64Value { value: 2000 });
        s.supplemental_groups = vec![3000, 4000];
    });
    for (who, out) in p.both(c) {
        let m = kv(&out);
        let g = |k: &str| get(&m, k, who, &out).to_string();
        assert_eq!(g("uid"), "1000", "{who}: {out}");
        assert_eq!(g("gid"), "2000", "{who}: {out}");
        assert_eq!(groups(&g("groups")), "2000,3000,4000", "{who}: {out}");
        assert_eq!(g("owner"), "1000:2000", "{who}: files a user makes");
        // A non-root user keeps no capability, but the bounding set.
        assert_eq!(g("CapEff"), hex(0), "{who}: {out}");
        assert_eq!(g("CapPrm"), hex(0), "{who}: {out}");
        assert_eq!(g("CapBnd"), hex(mask(&DEFAULT_CAPS)), "{who}: {out}");
        for k in [
            "uid", "gid", "owner", "CapEff", "CapPrm", "CapBnd", "CapAmb",
        ] {
            facts.set(&format!("{who}.{k}"), g(k));
        }
        facts.set(&format!("{who}.groups"), groups(&g("groups")));
    }
    // The image's /etc/passwd has nobody (65534:65534).
    let p = probe(c, &pod, IDS, |cfg| {
        sec(cfg).run_as_username = "nobody".to_string();
    });
    for (who, out) in p.both(c) {
        let m = kv(&out);
        let g = |k: &str| get(&m, k, who, &out).to_string();
        assert_eq!(g("uid"), "65534", "{who}: {out}");
        assert_eq!(g("gid"), "65534", "{who}: {out}");
        facts.set(&format!("{who}.username.uid"), g("uid"));
        facts.set(&format!("{who}.username.gid"), g("gid"));
        facts.set(&format!("{who}.username.groups"), groups(&g("groups")));
    }
    facts
}

fn security_readonly_rootfs(c: &mut Ctx<'_>) -> Facts {
    let pod = own_pid_pod(c);
    let script = "touch /w.$$ 2>/dev/null; echo root=$?; \
                  touch /out/w.$$; echo out=$?; \
                  touch /tmp/w.$$ 2>/dev/null; echo tmp=$?; \
                  touch /dev/shm/w.$$ 2>/dev/null; echo shm=$?";
    let p = probe(c, &pod, script, |cfg| sec(cfg).readonly_rootfs = true);
    let mut facts = Facts::new();
    for (who, out) in p.both(c) {
        let m = kv(&out);
        let g = |k: &str| get(&m, k, who, &out).to_string();
        assert_ne!(g("root"), "0", "{who}: wrote to a read-only rootfs: {out}");
        assert_eq!(g("out"), "0", "{who}: a volume stays writable: {out}");
        assert_eq!(
            g("shm"),
            "0",
            "{who}: the pod's /dev/shm stays writable: {out}"
        );
        for k in ["root", "out", "tmp", "shm"] {
            facts.set(&format!("{who}.write_{k}_ok"), g(k) == "0");
        }
    }
    facts
}

fn security_privileged(c: &mut Ctx<'_>) -> Facts {
    let pod = c.pod(|p| {
        own_pid(p);
        pod_sec(p).privileged = true;
    });
    // Mounts need CAP_SYS_ADMIN and no seccomp; the mount is the
    // container's own and goes again.
    let script = "cat /proc/$$/status; \
                  test -e /dev/kmsg; echo kmsg=$?; \
                  d=/tmp/m.$$; mkdir -p $d; mount -t tmpfs t $d; echo mount=$?; umount $d; \
                  test -c /proc/keys; echo keys_masked=$?; \
                  awk '$2==\"/proc/sys\"{o=$4} END{print \"procsys=\" (o==\"\"?\"none\":substr(o,1,2))}' \
                  /proc/mounts";
    let p = probe(c, &pod, script, |cfg| {
        let s = sec(cfg);
        s.privileged = true;
        // What the kubelet sends; a privileged container gets none.
        s.masked_paths = KUBELET_MASKED.iter().map(|p| p.to_string()).collect();
        s.readonly_paths = KUBELET_READONLY.iter().map(|p| p.to_string()).collect();
        // Asked for, but a privileged container has no seccomp filter.
        s.seccomp = Some(SecurityProfile {
            profile_type: ProfileType::RuntimeDefault as i32,
            localhost_ref: String::new(),
        });
    });
    let all = host_bounding_set();
    let mut facts = Facts::new();
    for (who, out) in p.both(c) {
        let m = kv(&out);
        let g = |k: &str| get(&m, k, who, &out).to_string();
        assert_eq!(g("CapEff"), all, "{who}: all capabilities: {out}");
        assert_eq!(g("CapBnd"), all, "{who}: {out}");
        assert_eq!(g("Seccomp"), "0", "{who}: {out}");
        assert_eq!(g("kmsg"), "0", "{who}: host devices: {out}");
        assert_eq!(g("mount"), "0", "{who}: can mount: {out}");
        assert_ne!(g("keys_masked"), "0", "{who}: nothing masked: {out}");
        assert_eq!(g("procsys"), "none", "{who}: no read-only /proc/sys: {out}");
        facts.set(&format!("{who}.all_caps"), g("CapEff") == all);
        for k in [
            "Seccomp",
            "kmsg",
            "mount",
            "keys_masked",
            "procsys",
            "NoNewPrivs",
        ] {
            facts.set(&format!("{who}.{k}"), g(k));
        }
    }
    facts
}

fn security_capabilities(c: &mut Ctx<'_>) -> Facts {
    let pod = own_pid_pod(c);
    let script = "cat /proc/$$/status; f=/out/c.$$; : >$f; \
                  chown 1 $f 2>/dev/null; echo chown=$?";
    let mut facts = Facts::new();
    let default = mask(&DEFAULT_CAPS);
    let cases: [CapCase; 4] = [
        ("default", &[], &[], Some(default)),
        (
            "add-drop",
            &["SYS_ADMIN", "NET_ADMIN"],
            &["NET_RAW", "CHOWN"],
            Some(
                (default | mask(&[CAP_SYS_ADMIN, CAP_NET_ADMIN]))
                    & !mask(&[CAP_NET_RAW, CAP_CHOWN]),
            ),
        ),
        (
            "drop-all",
            &["NET_BIND_SERVICE"],
            &["ALL"],
            Some(mask(&[CAP_NET_BIND_SERVICE])),
        ),
        ("add-all", &["ALL"], &[], None),
    ];
    for (name, add, drop, want) in cases {
        let p = probe(c, &pod, script, |cfg| {
            sec(cfg).capabilities = Some(Capability {
                add_capabilities: add.iter().map(|s| s.to_string()).collect(),
                drop_capabilities: drop.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            });
        });
        let want = want.map(hex).unwrap_or_else(host_bounding_set);
        let chown_ok = u64::from_str_radix(&want, 16).expect("hex") & 1 == 1;
        for (who, out) in p.both(c) {
            let m = kv(&out);
            let g = |k: &str| get(&m, k, who, &out).to_string();
            for k in ["CapEff", "CapPrm", "CapBnd"] {
                assert_eq!(g(k), want, "{name} {who} {k}: {out}");
            }
            assert_eq!(g("CapAmb"), hex(0), "{name} {who}: {out}");
            assert_eq!(g("chown") == "0", chown_ok, "{name} {who}: chown: {out}");
            for k in ["CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb", "chown"] {
                let v = if k == "CapEff" && name == "add-all" {
                    // Host specific: only whether it is the full set.
                    (g(k) == want).to_string()
                } else {
                    g(k)
                };
                facts.set(&format!("{name}.{who}.{k}"), v);
            }
        }
    }
    facts
}

fn security_no_new_privs(c: &mut Ctx<'_>) -> Facts {
    let pod = own_pid_pod(c);
    let mut facts = Facts::new();
    for (nnp, want) in [(false, "0"), (true, "1")] {
        let p = probe(c, &pod, "cat /proc/$$/status", |cfg| {
            sec(cfg).no_new_privs = nnp;
        });
        for (who, out) in p.both(c) {
            let m = kv(&out);
            let v = get(&m, "NoNewPrivs", who, &out);
            assert_eq!(v, want, "no_new_privs={nnp} {who}: {out}");
            facts.set(&format!("nnp_{nnp}.{who}"), v);
        }
    }
    facts
}

fn security_seccomp(c: &mut Ctx<'_>) -> Facts {
    let pod = own_pid_pod(c);
    // A profile that refuses mkdir (EPERM) and allows everything else.
    let profile = c.d.work_dir().join(format!("seccomp-{}.json", c.handler));
    let body = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{
            "names": ["mkdir", "mkdirat"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": 1
        }]
    });
    std::fs::write(&profile, body.to_string()).expect("write seccomp profile");
    // unshare(CLONE_NEWUSER) needs no capability, but containerd's
    // default profile allows unshare only with CAP_SYS_ADMIN.
    let script = "cat /proc/$$/status; \
                  unshare -U true 2>/dev/null; echo unshare=$?; \
                  e=$(mkdir /tmp/d.$$ 2>&1); echo mkdir=$?; \
                  case $e in *'not permitted'*) echo mkdir_eperm=yes;; \
                  *) echo mkdir_eperm=no;; esac; \
                  echo alive=$(echo yes)";
    let profiles = [
        ("none", None),
        ("unconfined", Some((ProfileType::Unconfined, String::new()))),
        (
            "runtime-default",
            Some((ProfileType::RuntimeDefault, String::new())),
        ),
        (
            "localhost",
            Some((ProfileType::Localhost, profile.display().to_string())),
        ),
    ];
    let mut facts = Facts::new();
    for (name, prof) in profiles {
        let p = probe(c, &pod, script, |cfg| {
            sec(cfg).seccomp = prof.map(|(t, r)| SecurityProfile {
                profile_type: t as i32,
                localhost_ref: r,
            });
        });
        // containerd 1.6 leaves a container without a profile unconfined.
        let (mode, unshare, mkdir) = match name {
            "none" | "unconfined" => ("0", true, true),
            "runtime-default" => ("2", false, true),
            _ => ("2", true, false),
        };
        for (who, out) in p.both(c) {
            let m = kv(&out);
            let g = |k: &str| get(&m, k, who, &out).to_string();
            assert_eq!(g("Seccomp"), mode, "{name} {who}: {out}");
            assert_eq!(g("unshare") == "0", unshare, "{name} {who}: {out}");
            assert_eq!(g("mkdir") == "0", mkdir, "{name} {who}: {out}");
            if !mkdir {
                assert_eq!(g("mkdir_eperm"), "yes", "{name} {who}: EPERM: {out}");
            }
            assert_eq!(g("alive"), "yes", "{name} {who}: {out}");
            for k in ["Seccomp", "unshare", "mkdir", "mkdir_eperm", "NoNewPrivs"] {
                facts.set(&format!("{name}.{who}.{k}"), g(k));
            }
        }
    }
    facts
}

fn security_session_keyring(c: &mut Ctx<'_>) -> Facts {
    // runc gives each container process a session keyring of its own
    // ("_ses.<container id>", not --no-new-keyring), so containers do
    // not share the keys of the shim that started them.
    let pod = own_pid_pod(c);
    let p = probe(c, &pod, "cat /proc/keys", |_| {});
    let name = format!("_ses.{}:", p.id);
    let mut facts = Facts::new();
    for (who, out) in p.both(c) {
        let own = out.lines().any(|l| l.contains(&name));
        assert!(
            own,
            "{who}: no session keyring {name} in /proc/keys:\n{out}"
        );
        facts.set(&format!("{who}.own_session_keyring"), own);
    }
    facts
}
