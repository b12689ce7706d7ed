//! The container process's executor: libcontainer's default, with runc's
//! wording when the program is missing or not executable (Docker and Podman
//! pick exit codes 127 and 126 by matching that text), and, for exec'd
//! processes, the container's seccomp filter that libcontainer drops
//! (see `exec::confine`).

use libcontainer::oci_spec::runtime::Spec;
use libcontainer::syscall::syscall::create_syscall;
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};

use crate::process::exec::confine::Confinement;

#[derive(Clone, Default)]
pub struct PincExecutor {
    /// Applied in the container process right before execve.
    pub confinement: Option<Confinement>,
    /// The init's startContainer hooks, run here instead of by libcontainer.
    pub start_hooks: Option<StartHooks>,
}

/// startContainer hooks and the state they get: libcontainer would name its
/// staging dir as the bundle (see `hook_relay`).
#[derive(Clone, Debug)]
pub struct StartHooks {
    pub hooks: Vec<libcontainer::oci_spec::runtime::Hook>,
    pub state: libcontainer::container::State,
}

impl PincExecutor {
    fn confine(c: &Confinement) -> Result<(), ExecutorError> {
        let notify = libcontainer::seccomp::initialize_seccomp(&c.seccomp)
            .map_err(|e| ExecutorError::Execution(Box::new(e)))?;
        if let Some(fd) = notify {
            // confine::plan refuses listener profiles; never keep the fd.
            let _ = nix::unistd::close(fd);
        }
        if let Some(caps) = &c.final_caps {
            libcontainer::capabilities::drop_privileges(caps, &*create_syscall())
                .map_err(|e| ExecutorError::Execution(Box::new(e)))?;
        }
        Ok(())
    }
}

/// runc's message for a failed `validate`, from libcontainer's.
fn runc_wording(program: &str, message: &str) -> String {
    if message.contains("not found in $PATH") {
        if program.contains('/') {
            format!("exec: {program:?}: stat {program}: no such file or directory")
        } else {
            format!("exec: {program:?}: executable file not found in $PATH")
        }
    } else if message.contains("does not have correct permissions") {
        format!("exec: {program:?}: permission denied")
    } else {
        message.to_string()
    }
}

impl Executor for PincExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        default_signals();
        if let Some(h) = &self.start_hooks {
            // As libcontainer does: hooks without an env get the process's.
            let env: std::collections::HashMap<String, String> = std::env::vars().collect();
            // The state's pid is this process's, as runc gives it.
            let pid = Some(nix::unistd::getpid());
            if let Err(err) = libcontainer::hooks::run_hooks(
                Some(&h.hooks),
                Some(&h.state),
                None,
                pid,
                Some(&env),
            ) {
                eprintln!("pinc: a startContainer hook failed: {err}");
                return Err(ExecutorError::Execution(Box::new(err)));
            }
        }
        if let Some(c) = &self.confinement {
            if let Err(err) = Self::confine(c) {
                // The caller sees only the exit status: say why on stderr.
                eprintln!("pinc: failed to confine the exec'd process: {err:?}");
                return Err(err);
            }
        }
        exec_program(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec).map_err(|err| match err {
            ExecutorValidationError::ArgValidationError(message) => {
                let program = spec
                    .process()
                    .as_ref()
                    .and_then(|p| p.args().as_ref())
                    .and_then(|a| a.first())
                    .cloned()
                    .unwrap_or_default();
                ExecutorValidationError::ArgValidationError(runc_wording(&program, &message))
            }
            other => other,
        })
    }
}

/// Gives every signal its default disposition and unblocks all of them.
/// Ignored signals survive execve: without this the container would inherit
/// pinc's own SIGPIPE ignore (Rust's runtime sets it) and whatever its caller
/// ignored (a CI runner's SIGTERM, nohup's SIGHUP), so a pid-1 shell could not
/// even trap them. runc's container processes start with defaults too.
fn default_signals() {
    for signo in 1..=libc::SIGRTMAX() {
        if signo != libc::SIGKILL && signo != libc::SIGSTOP {
            set_default(signo);
        }
    }
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
}

/// keyctl(2) operations and the special keyring id pinc uses.
const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
const KEYCTL_SETPERM: libc::c_long = 5;
const KEYCTL_DESCRIBE: libc::c_long = 6;
/// "user" (owner) may search the keyring: what lets a later `exec`, as the
/// same uid, find the container's keyring by name and join it.
const KEY_USR_SEARCH: u32 = 0x0008_0000;

/// The name of a container's session keyring, as runc names it.
pub fn session_keyring_name(id: &str) -> String {
    format!("_ses.{id}")
}

/// Gives this process (and so every process it forks from now on, the
/// container's included) the session keyring `_ses.<id>`, joining it when it
/// exists, so the container does not share its caller's keys.
///
/// runc joins in the container process before seccomp and before it changes
/// uid; pinc's executor runs after both (libcontainer's order), where a
/// profile denying keyctl or a non-root user would change the outcome. So
/// pinc joins in itself, just before libcontainer forks: its children inherit
/// the session keyring, and pinc exits soon after. `searchable` adds owner
/// search permission, as runc does for the keyring it makes at create (never
/// "other" search, which runc adds in a user namespace: pinc's keyring lives
/// in its own namespace, where that would let any uid join it).
///
/// ENOSYS (no keyring support, or a seccomp filter on pinc) is ignored, as
/// runc ignores it; any other failure fails the start.
pub fn join_session_keyring(id: &str, searchable: bool) -> Result<(), crate::error::Error> {
    let name = session_keyring_name(id);
    let failed = |what: &str, source| crate::error::Error::Sys {
        what: format!("failed to {what} the session keyring {name}"),
        source,
    };
    let serial = match keyctl_join(&name) {
        Ok(serial) => serial,
        Err(nix::errno::Errno::ENOSYS) => return Ok(()),
        Err(e) => return Err(failed("join", e)),
    };
    if searchable {
        let perm = keyctl_perm(serial).map_err(|e| failed("read the permissions of", e))?;
        keyctl_setperm(serial, perm | KEY_USR_SEARCH).map_err(|e| failed("make searchable", e))?;
    }
    Ok(())
}

/// Result of a keyctl call that returns a number.
fn keyctl_result(rc: libc::c_long) -> nix::Result<libc::c_long> {
    if rc < 0 {
        Err(nix::errno::Errno::last())
    } else {
        Ok(rc)
    }
}

fn keyctl_join(name: &str) -> nix::Result<i32> {
    let name = std::ffi::CString::new(name).map_err(|_| nix::errno::Errno::EINVAL)?;
    // SAFETY: `name` is a NUL-terminated string that outlives the call; the
    // kernel only reads it.
    let rc = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    keyctl_result(rc).map(|serial| serial as i32)
}

/// The key's permission mask, from its description
/// ("type;uid;gid;perm;description", perm in hex).
fn keyctl_perm(serial: i32) -> nix::Result<u32> {
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`,
        // which is valid for writes of that length.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                KEYCTL_DESCRIBE,
                serial,
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        // The length needed, NUL included; the buffer is untouched when short.
        let needed = keyctl_result(rc)? as usize;
        if needed > buf.len() {
            buf.resize(needed, 0);
            continue;
        }
        let text = String::from_utf8_lossy(&buf[..needed]);
        return parse_perm(&text).ok_or(nix::errno::Errno::EINVAL);
    }
}

fn parse_perm(description: &str) -> Option<u32> {
    let field = description.split(';').nth(3)?;
    u32::from_str_radix(field, 16).ok()
}

fn keyctl_setperm(serial: i32, perm: u32) -> nix::Result<()> {
    // SAFETY: plain integer arguments; no memory is passed.
    let rc = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_SETPERM, serial, perm) };
    keyctl_result(rc).map(|_| ())
}

/// The kernel's `struct sigaction` on the architectures whose layout is the
/// generic one (handler, flags, restorer, mask).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// SIG_DFL for one signal through the raw syscall: glibc's wrappers refuse
/// the two real-time signals it keeps for itself (32, 33), and a caller may
/// have ignored those too.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn set_default(signo: libc::c_int) {
    let action = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: `action` is a valid kernel sigaction for the size passed (8
    // bytes of mask); SIG_DFL installs no handler, so no code of ours runs in
    // signal context and no restorer is needed; the old action is not read.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signo,
            &action as *const KernelSigaction,
            std::ptr::null_mut::<KernelSigaction>(),
            std::mem::size_of::<u64>(),
        )
    };
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn set_default(signo: libc::c_int) {
    // SAFETY: SIG_DFL installs no handler; glibc's reserved signals fail
    // with EINVAL, which is ignored.
    unsafe { libc::signal(signo, libc::SIG_DFL) };
}

/// execvp of the process's args. On failure the container's stderr gets one
/// line naming the program and the reason (E2BIG for an environment too
/// large, ETXTBSY, ...): the caller would otherwise see only exit status 255.
fn exec_program(spec: &Spec) -> Result<(), ExecutorError> {
    let args = spec
        .process()
        .as_ref()
        .and_then(|p| p.args().as_ref())
        .filter(|a| !a.is_empty())
        .ok_or(ExecutorError::InvalidArg)?;
    let cargs = args
        .iter()
        .map(|a| std::ffi::CString::new(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ExecutorError::InvalidArg)?;
    let Err(errno) = nix::unistd::execvp(&cargs[0], &cargs);
    let reason = match errno {
        nix::errno::Errno::E2BIG => {
            let bytes: usize = std::env::vars_os()
                .map(|(k, v)| k.len() + v.len() + 2)
                .chain(args.iter().map(|a| a.len() + 1))
                .sum();
            format!("argument list too long (args and environment are {bytes} bytes)")
        }
        other => other.desc().to_ascii_lowercase(),
    };
    eprintln!("pinc: exec {:?}: {reason}", args[0]);
    Err(ExecutorError::Execution(Box::new(errno)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `validate` refuses `args` with (as the container's own
    /// validation sees the host's files here), with `PATH=<path>` when given.
    fn refusal(args: &[&str], path: Option<&str>) -> Option<String> {
        let mut spec = Spec::default();
        let mut process = spec.process().clone().expect("default process");
        process.set_args(Some(args.iter().map(|a| a.to_string()).collect()));
        process.set_env(path.map(|p| vec![format!("PATH={p}")]));
        spec.set_process(Some(process));
        match PincExecutor::default().validate(&spec) {
            Ok(()) => None,
            Err(ExecutorValidationError::ArgValidationError(message)) => Some(message),
            Err(other) => panic!("{args:?}: {other}"),
        }
    }

    /// Through libcontainer's real validation, not copies of its messages:
    /// the assertions are on runc's wording, which pinc produces and Docker
    /// and Podman match on. A libcontainer rewording fails here, not there.
    #[test]
    fn matches_what_docker_and_podman_look_for() {
        assert_eq!(refusal(&["sh"], Some("/usr/bin:/bin")), None);
        assert_eq!(
            refusal(&["/no/such"], Some("/usr/bin:/bin")).as_deref(),
            Some("exec: \"/no/such\": stat /no/such: no such file or directory")
        );
        assert_eq!(
            refusal(&["nosuch"], Some("/usr/bin:/bin")).as_deref(),
            Some("exec: \"nosuch\": executable file not found in $PATH")
        );
        assert_eq!(
            refusal(&["/etc/passwd"], Some("/usr/bin:/bin")).as_deref(),
            Some("exec: \"/etc/passwd\": permission denied")
        );
        // Any other refusal (here: no PATH at all) is passed on as it is.
        let no_path = refusal(&["sh"], None).expect("refused without PATH");
        assert!(!no_path.starts_with("exec: "), "{no_path}");
        assert_eq!(
            runc_wording("x", "some other refusal"),
            "some other refusal"
        );
    }

    #[test]
    fn reads_the_permissions_of_a_description() {
        assert_eq!(
            parse_perm("keyring;0;0;3f130000;_ses.c1\0"),
            Some(0x3f13_0000)
        );
        assert_eq!(parse_perm("keyring;0;0;3f130000;a;b"), Some(0x3f13_0000));
        assert_eq!(parse_perm("keyring;0;0"), None);
        assert_eq!(parse_perm("keyring;0;0;zz;x"), None);
    }
}
