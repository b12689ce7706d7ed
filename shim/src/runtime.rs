//! Runs the `pinc` binary with runc's command lines, as containerd's runc
//! shim runs runc. The container operations (and pinc's HPC pipeline) happen
//! in pinc; a crash there cannot take the shim down.
//!
//! The serving shim's pinc commands die with it (parent-death signal): a
//! `pinc create` left running after a SIGKILLed shim would hold the id lock
//! (a hook may take any time), so the `delete` action's `pinc delete --force`
//! would wait behind it past containerd's cleanup timeout. Killed instead, it
//! leaves a journal that this delete reclaims at once. The `delete` action's
//! own pinc is not tied to it: if containerd gives up on the action, that
//! pinc still finishes the cleanup.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use crate::config::ShimConfig;
use crate::errors::{Error, ErrorKind, Result};
use crate::reaper::Exits;

/// The stdio a `pinc create`/`exec` hands to the container process.
#[derive(Default)]
pub struct ProcessStdio {
    pub stdin: Option<File>,
    pub stdout: Option<File>,
    pub stderr: Option<File>,
}

fn stdio(f: Option<File>) -> Stdio {
    f.map_or_else(Stdio::null, Stdio::from)
}

pub struct Pinc {
    pub binary: PathBuf,
    pub root: PathBuf,
    systemd_cgroup: bool,
    debug: bool,
    exits: Arc<Exits>,
    /// SIGKILL each pinc command if the shim dies (see the module's doc).
    die_with_shim: bool,
}

impl Pinc {
    /// The serving shim's pinc: its commands die with the shim.
    pub fn new(config: &ShimConfig, namespace: &str, exits: Arc<Exits>) -> Self {
        Self {
            binary: config.pinc_binary(),
            root: config.state_root(namespace),
            systemd_cgroup: config.systemd_cgroup,
            debug: config.debug,
            exits,
            die_with_shim: true,
        }
    }

    /// The `delete` action's pinc: its commands outlive the action.
    pub fn for_cleanup(config: &ShimConfig, namespace: &str, exits: Arc<Exits>) -> Self {
        Self {
            die_with_shim: false,
            ..Self::new(config, namespace, exits)
        }
    }

    fn command(&self, bundle: &Path) -> Command {
        let mut cmd = Command::new(&self.binary);
        // Not the shim's own cwd: a pod shim started in its first
        // container's bundle, which goes when that container is deleted,
        // and pinc cannot start in a deleted directory.
        if bundle.is_dir() {
            cmd.current_dir(bundle);
        }
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(bundle.join("log.json"))
            .arg("--log-format")
            .arg("json");
        if self.systemd_cgroup {
            cmd.arg("--systemd-cgroup");
        }
        if self.debug {
            cmd.arg("--debug");
        }
        if self.die_with_shim {
            // getpid() in the parent: the child compares its parent with it.
            let shim = nix::unistd::getpid();
            // SAFETY: runs in the forked child before exec; prctl, getppid
            // and the errno read are async-signal-safe and allocate nothing.
            unsafe {
                cmd.pre_exec(move || die_with(shim));
            }
        }
        cmd
    }

    /// Runs `pinc <args>` and returns its stdout. `io` is the container's
    /// stdio (create, exec); otherwise stdout is captured.
    pub fn run<S: AsRef<OsStr>>(
        &self,
        bundle: &Path,
        args: &[S],
        io: Option<ProcessStdio>,
        input: Option<&[u8]>,
    ) -> Result<Vec<u8>> {
        let mut cmd = self.command(bundle);
        cmd.args(args);
        let capture = io.is_none();
        match io {
            Some(io) => {
                cmd.stdin(stdio(io.stdin))
                    .stdout(stdio(io.stdout))
                    .stderr(stdio(io.stderr));
            }
            None => {
                cmd.stdin(if input.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            }
        }
        let name = args
            .first()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .unwrap_or_default();
        tracing::debug!(binary = %self.binary.display(), command = %name, "running pinc");
        // Only this command's lines count: the log is the bundle's, and an
        // earlier command's error must not stand for a pinc that died silent.
        let log = bundle.join("log.json");
        let log_start = std::fs::metadata(&log).map_or(0, |m| m.len());
        let mut child = cmd.spawn().map_err(|source| Error::Spawn {
            binary: self.binary.clone(),
            source,
        })?;
        let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
        if let (Some(mut w), Some(data)) = (child.stdin.take(), input) {
            // Ignore EPIPE: pinc may fail before reading; its status tells.
            let _ = w.write_all(data);
        }
        let mut out = Vec::new();
        let mut err = Vec::new();
        if capture {
            let err_pipe = child.stderr.take();
            let err_reader = std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut e) = err_pipe {
                    let _ = e.read_to_end(&mut buf);
                }
                buf
            });
            if let Some(mut o) = child.stdout.take() {
                let _ = o.read_to_end(&mut out);
            }
            err = err_reader.join().unwrap_or_default();
        }
        // Never child.wait(): the shim's reaper collects every child.
        drop(child);
        let status = self.exits.wait(pid);
        if status != 0 {
            let (kind, mut message) = last_error(&log, log_start);
            if message.is_empty() {
                message = String::from_utf8_lossy(&err).trim().to_string();
            }
            return Err(Error::Runtime {
                command: name,
                status,
                kind,
                message,
            });
        }
        Ok(out)
    }

    pub fn simple(&self, bundle: &Path, args: &[&str]) -> Result<()> {
        self.run(bundle, args, None, None).map(drop)
    }

    pub fn create(
        &self,
        bundle: &Path,
        id: &str,
        console_socket: Option<&Path>,
        io: ProcessStdio,
    ) -> Result<()> {
        let mut args: Vec<OsString> = vec![
            "create".into(),
            "--bundle".into(),
            bundle.into(),
            "--pid-file".into(),
            bundle.join("init.pid").into(),
        ];
        if let Some(s) = console_socket {
            args.push("--console-socket".into());
            args.push(s.into());
        }
        args.push(id.into());
        self.run(bundle, &args, Some(io), None).map(drop)
    }

    pub fn exec(
        &self,
        bundle: &Path,
        id: &str,
        process_json: &Path,
        pid_file: &Path,
        console_socket: Option<&Path>,
        io: ProcessStdio,
    ) -> Result<()> {
        let mut args: Vec<OsString> = vec![
            "exec".into(),
            "--process".into(),
            process_json.into(),
            "--detach".into(),
            "--pid-file".into(),
            pid_file.into(),
        ];
        if let Some(s) = console_socket {
            args.push("--console-socket".into());
            args.push(s.into());
        }
        args.push(id.into());
        self.run(bundle, &args, Some(io), None).map(drop)
    }

    /// `pinc ps --format json ID`: the container's pids.
    pub fn ps(&self, bundle: &Path, id: &str) -> Result<Vec<u32>> {
        let out = self.run(bundle, &["ps", "--format", "json", id], None, None)?;
        serde_json::from_slice(&out).map_err(|source| Error::Json {
            what: "pinc ps",
            source,
        })
    }

    pub fn update(&self, bundle: &Path, id: &str, resources: &[u8]) -> Result<()> {
        self.run(
            bundle,
            &["update", "--resources", "-", id],
            None,
            Some(resources),
        )
        .map(drop)
    }
}

/// In a child about to exec: SIGKILL when the thread that forked it ends
/// (run() waits for the child in that thread, so: when the shim dies), and
/// fail the spawn if the shim died before the signal was armed.
fn die_with(shim: nix::unistd::Pid) -> std::io::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number; the trailing
    // arguments are unused by this option.
    let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if nix::unistd::getppid() != shim {
        return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
    }
    Ok(())
}

/// The kind and message of the last error line pinc wrote to its JSON log
/// after byte `start`. A line without a kind pinc knows (an older or newer
/// pinc), or no error line at all (pinc was killed), is an internal failure.
pub fn last_error(log: &Path, start: u64) -> (ErrorKind, String) {
    let Ok(bytes) = std::fs::read(log) else {
        return (ErrorKind::Internal, String::new());
    };
    let from = usize::try_from(start)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    String::from_utf8_lossy(&bytes[from..])
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["level"] == "error")
        .map(|v| {
            let kind = v[pinc_errkind::LOG_KEY]
                .as_str()
                .and_then(ErrorKind::from_name)
                .unwrap_or(ErrorKind::Internal);
            (kind, v["msg"].as_str().unwrap_or_default().to_owned())
        })
        .unwrap_or((ErrorKind::Internal, String::new()))
}

/// The pid pinc wrote to a pid file.
pub fn read_pid(path: &Path) -> Result<i32> {
    let text = std::fs::read_to_string(path).map_err(Error::io("failed to read", path))?;
    text.trim()
        .parse()
        .map_err(|_| Error::InvalidArgument(format!("bad pid {text:?} in {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_dies_with_the_thread_that_spawned_it() {
        // run() waits for pinc in the thread that spawned it, so that thread
        // ends only when the shim does; here it ends at once.
        let child = std::thread::spawn(|| {
            let me = nix::unistd::getpid();
            let mut cmd = Command::new("sleep");
            cmd.arg("30");
            // SAFETY: as in Pinc::command.
            unsafe {
                cmd.pre_exec(move || die_with(me));
            }
            cmd.spawn().expect("spawn sleep")
        })
        .join()
        .expect("spawning thread");
        let mut child = child;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let status = loop {
            if let Some(st) = child.try_wait().expect("try_wait") {
                break Some(st);
            }
            if std::time::Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.and_then(|s| s.signal()), Some(libc::SIGKILL));
    }

    #[test]
    fn a_spawn_after_the_parent_changed_fails() {
        let mut cmd = Command::new("true");
        let not_my_parent = nix::unistd::Pid::from_raw(1);
        // SAFETY: as in Pinc::command.
        unsafe {
            cmd.pre_exec(move || die_with(not_my_parent));
        }
        let err = cmd
            .spawn()
            .expect_err("a child whose parent is not the shim");
        assert_eq!(err.raw_os_error(), Some(libc::ESRCH));
    }

    #[test]
    fn last_error_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("log.json");
        assert_eq!(last_error(&log, 0), (ErrorKind::Internal, String::new()));
        std::fs::write(
            &log,
            "{\"level\":\"error\",\"msg\":\"first\",\"kind\":\"invalid-spec\"}\n{\"level\":\"info\",\"msg\":\"x\"}\n{\"level\":\"error\",\"msg\":\"container c does not exist\",\"kind\":\"not-found\"}\n{\"level\":\"debug\",\"msg\":\"y\"}\n",
        )
        .expect("write");
        assert_eq!(
            last_error(&log, 0),
            (
                ErrorKind::NotFound,
                "container c does not exist".to_string()
            )
        );
        // An earlier command's error does not count for a later command.
        let len = std::fs::metadata(&log).expect("stat").len();
        assert_eq!(last_error(&log, len), (ErrorKind::Internal, String::new()));
        // No kind, or one this shim does not know: internal, whatever it says.
        std::fs::write(
            &log,
            "{\"level\":\"error\",\"msg\":\"does not exist\"}\n{\"level\":\"error\",\"msg\":\"m\",\"kind\":\"exploded\"}\n",
        )
        .expect("write");
        assert_eq!(last_error(&log, 0), (ErrorKind::Internal, "m".to_string()));
    }
}
