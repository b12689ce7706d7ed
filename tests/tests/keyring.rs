//! Session keyrings: each container gets its own, `_ses.<id>`, shared by its
//! init and exec'd processes, unless created with --no-new-keyring; never the
//! caller's (a shim's keys must not leak into its containers). Every case runs
//! through runc too, and pinc must see what runc sees.
//!
//! The container processes run as nobody (65534): /proc/keys then lists only
//! the keys a process possesses (through its session keyring) or nobody owns,
//! not root's keys that root may view anyway, so it tells which session
//! keyring the process has.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use pinc_tests::{
    output_via_files, pinc_bin, require_root, stderr, stdout, unique_id, wait_bounded, Bundle,
};
use serde_json::{json, Value};

const NOBODY: &str = "65534:65534";

/// A runtime binary with a private state root.
struct Runtime {
    name: &'static str,
    bin: PathBuf,
    root: tempfile::TempDir,
}

impl Runtime {
    fn new(name: &'static str, bin: PathBuf) -> Self {
        let root = tempfile::Builder::new()
            .prefix(&format!("keyring-{name}-"))
            .tempdir()
            .expect("root dir");
        Self { name, bin, root }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--root").arg(self.root.path()).args(args);
        cmd
    }
}

fn runc_bin() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join("runc"))
        .find(|p| p.is_file());
    on_path
        .or_else(|| Some(PathBuf::from("/usr/sbin/runc")).filter(|p| p.is_file()))
        .expect("these tests compare with runc: install it (/usr/sbin/runc or on PATH)")
}

fn runtimes() -> [Runtime; 2] {
    [
        Runtime::new("runc", runc_bin()),
        Runtime::new("pinc", pinc_bin()),
    ]
}

/// Gives the calling thread (session keyrings are per thread) a new session
/// keyring of its own, as a shim has one, and returns its serial: the
/// runtimes this thread starts inherit it.
fn own_session_keyring(name: &str) -> i64 {
    let cname = std::ffi::CString::new(name).expect("name");
    // SAFETY: KEYCTL_JOIN_SESSION_KEYRING (1) reads a NUL-terminated name
    // that outlives the call.
    let serial = unsafe { libc::syscall(libc::SYS_keyctl, 1, cname.as_ptr()) };
    assert!(
        serial > 0,
        "keyctl(JOIN_SESSION_KEYRING, {name}): {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: KEYCTL_GET_KEYRING_ID (0) of KEY_SPEC_SESSION_KEYRING (-3),
    // without creating one: integer arguments only.
    let session = unsafe { libc::syscall(libc::SYS_keyctl, 0, -3, 0) };
    assert_eq!(session, serial, "the thread's session keyring");
    serial
}

/// The keyrings named `name` in /proc/keys: (serial, "perm uid gid").
fn keyrings_named(proc_keys: &str, name: &str) -> Vec<(String, String)> {
    proc_keys
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 8 && f[7] == "keyring" && f[8].trim_end_matches(':') == name)
                .then(|| (f[0].to_string(), f[4..7].join(" ")))
        })
        .collect()
}

/// What one container showed: its init's and an exec'd process's /proc/keys.
struct Seen {
    init: String,
    exec: String,
}

/// A bundle whose init prints /proc/keys, then END, then sleeps; as nobody,
/// /proc/keys unmasked.
fn bundle(edit: impl FnOnce(&mut Value)) -> Bundle {
    let b = Bundle::new(&["sh", "-c", "cat /proc/keys; echo END; exec sleep 1000"]);
    b.edit(|c| {
        c["process"]["user"] = json!({"uid": 65534, "gid": 65534});
        let masked = c["linux"]["maskedPaths"]
            .as_array_mut()
            .expect("maskedPaths");
        masked.retain(|p| p != "/proc/keys");
        edit(c);
    });
    b
}

/// Deletes the container when dropped, a failed assertion included.
struct Delete<'a>(&'a Runtime, &'a str);

impl Drop for Delete<'_> {
    fn drop(&mut self) {
        let _ = output_via_files(self.0.cmd(&["delete", "--force", self.1]));
    }
}

/// Runs the bundle detached through `rt`, reads what its init printed, then
/// what `exec` as nobody sees; deletes the container.
fn observe(rt: &Runtime, b: &Bundle, id: &str, create_flags: &[&str]) -> Seen {
    let bundle = b.path().to_str().expect("utf-8 bundle path");
    let mut args = vec!["run", "--detach", "--bundle", bundle];
    args.extend_from_slice(create_flags);
    args.push(id);
    let mut run = rt.cmd(&args);
    // The init's stdout is this pipe; read up to its END line, not to EOF
    // (the init keeps the pipe open while it sleeps). Its stderr is a file
    // for the same reason.
    let err = tempfile::NamedTempFile::new().expect("stderr file");
    run.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err.reopen().expect("reopen"));
    let mut child = run.spawn().expect("spawn run");
    let _delete = Delete(rt, id);
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut init = String::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).expect("read init output");
        if n == 0 || line.trim() == "END" {
            break;
        }
        init.push_str(&line);
    }
    let status = wait_bounded(&mut child, &format!("{} run {id}", rt.name));
    assert!(
        status.success(),
        "{} run {id}: {}",
        rt.name,
        std::fs::read_to_string(err.path()).unwrap_or_default()
    );
    let exec = output_via_files(rt.cmd(&["exec", "--user", NOBODY, id, "cat", "/proc/keys"]));
    assert!(
        exec.status.success(),
        "{} exec {id}: {}",
        rt.name,
        stderr(&exec)
    );
    Seen {
        init,
        exec: stdout(&exec),
    }
}

/// The facts compared between runtimes, each also checked for its value.
#[derive(Debug, PartialEq, Eq)]
struct Facts {
    init_own_keyring: bool,
    exec_own_keyring: bool,
    exec_shares_init_keyring: bool,
    /// "perm uid gid" of the init's keyring.
    keyring_mode: Option<String>,
    init_has_callers: bool,
    exec_has_callers: bool,
}

fn facts(seen: &Seen, id: &str, caller: i64) -> Facts {
    let name = format!("_ses.{id}");
    let init_rings = keyrings_named(&seen.init, &name);
    let exec_rings = keyrings_named(&seen.exec, &name);
    let caller_hex = format!("{caller:08x}");
    let has_caller = |keys: &str| keys.lines().any(|l| l.starts_with(&caller_hex));
    Facts {
        init_own_keyring: init_rings.len() == 1,
        exec_own_keyring: exec_rings.len() == 1,
        exec_shares_init_keyring: !init_rings.is_empty() && init_rings == exec_rings,
        keyring_mode: init_rings.first().map(|(_, mode)| mode.clone()),
        init_has_callers: has_caller(&seen.init),
        exec_has_callers: has_caller(&seen.exec),
    }
}

/// Runs the case through runc and pinc; both must show `expected`.
fn check(case: &str, create_flags: &[&str], edit: impl Fn(&mut Value), expected: &Facts) {
    require_root();
    let caller = own_session_keyring(&unique_id("keyring-test-caller"));
    for rt in runtimes() {
        let b = bundle(&edit);
        let id = unique_id(&format!("keyring-{case}-{}", rt.name));
        let seen = observe(&rt, &b, &id, create_flags);
        let got = facts(&seen, &id, caller);
        assert_eq!(
            &got, expected,
            "{case}: {} (caller's session keyring {caller:08x})\ninit /proc/keys:\n{}\nexec /proc/keys:\n{}",
            rt.name, seen.init, seen.exec
        );
    }
}

/// Made by root: the kernel's session keyring permissions (possessor all;
/// owner view, read, link) plus owner search, which runc adds so exec finds
/// it by name.
fn own_keyring() -> Facts {
    Facts {
        init_own_keyring: true,
        exec_own_keyring: true,
        exec_shares_init_keyring: true,
        keyring_mode: Some("3f1b0000 0 0".into()),
        init_has_callers: false,
        exec_has_callers: false,
    }
}

#[test]
fn init_and_exec_get_the_containers_session_keyring() {
    check("default", &[], |_| {}, &own_keyring());
}

#[test]
fn no_new_keyring_keeps_the_callers_for_init_and_exec() {
    check(
        "nonew",
        &["--no-new-keyring"],
        |_| {},
        &Facts {
            init_own_keyring: false,
            exec_own_keyring: false,
            exec_shares_init_keyring: false,
            keyring_mode: None,
            init_has_callers: true,
            exec_has_callers: true,
        },
    );
}

/// runc joins the keyring before it applies the container's seccomp filter:
/// a profile that denies keyctl does not stop it.
#[test]
fn a_seccomp_profile_denying_keyctl_still_gets_the_keyring() {
    check(
        "seccomp",
        &[],
        |c| {
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
            });
        },
        &own_keyring(),
    );
}
