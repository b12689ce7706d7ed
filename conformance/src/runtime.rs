//! Driving one runtime binary: commands with a private `--root`, a guard
//! that force-deletes every container it made, and a watchdog so a hung
//! runtime fails its case instead of the whole run.

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::bundle::Bundle;
use crate::host::Host;

/// Longest any single runtime command may take before the harness kills
/// it. A safety net against hangs, not a measurement.
const WATCHDOG: Duration = Duration::from_secs(60);

pub struct Harness {
    pub runtime: PathBuf,
    pub name: String,
    /// The runtime's `--root`: private to this run.
    pub state_root: PathBuf,
    /// Bundles and host-side scratch dirs go here.
    pub work: PathBuf,
    pub probe: PathBuf,
    pub host: Host,
    run_tag: String,
    counter: AtomicU32,
}

/// What a finished command returned.
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// One line for a failure message: the exit and the end of stderr.
    pub fn why(&self) -> String {
        let err = self.stderr.trim();
        let tail: String = err
            .chars()
            .rev()
            .take(300)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("exit {:?}: {}", self.code, tail.replace('\n', " | "))
    }
}

impl Harness {
    pub fn new(
        runtime: &Path,
        base: &Path,
        probe: &Path,
        host: Host,
        index: usize,
    ) -> Result<Self> {
        let name = runtime
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| runtime.display().to_string());
        let dir = base.join(format!("{index}-{name}"));
        let state_root = dir.join("state");
        let work = dir.join("work");
        fs::create_dir_all(&state_root)?;
        fs::create_dir_all(&work)?;
        Ok(Harness {
            runtime: runtime.to_path_buf(),
            name,
            state_root,
            work,
            probe: probe.to_path_buf(),
            host,
            run_tag: format!("cf{}x{index}", std::process::id()),
            counter: AtomicU32::new(0),
        })
    }

    /// A container id unique to this run.
    pub fn new_id(&self) -> String {
        format!(
            "{}-{}",
            self.run_tag,
            self.counter.fetch_add(1, Ordering::SeqCst)
        )
    }

    /// A fresh bundle for one case.
    pub fn bundle(&self) -> Result<Bundle> {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        Bundle::create(self.work.join(format!("b{n}")), &self.probe)
    }

    /// A scratch directory on the host, e.g. for hook output or bind mounts.
    pub fn scratch(&self, what: &str) -> Result<PathBuf> {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let d = self.work.join(format!("{what}{n}"));
        fs::create_dir_all(&d)?;
        Ok(d)
    }

    /// `RUNTIME --root STATE ARGS...`, stdin closed.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.runtime);
        c.arg("--root").arg(&self.state_root).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Runs a command with piped output under the watchdog.
    pub fn run(&self, mut cmd: Command) -> Result<Ran> {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        run_watched(cmd)
    }

    /// Runs `RUNTIME ARGS...` with piped output.
    pub fn rt(&self, args: &[&str]) -> Result<Ran> {
        self.run(self.cmd(args))
    }

    /// `create` must not hold our pipes: the container's init inherits the
    /// runtime's stdio and would keep them open. Output goes to files.
    pub fn create(&self, bundle: &Bundle, id: &str, extra: &[&str]) -> Result<Ran> {
        let bdir = bundle.dir.display().to_string();
        let mut args = vec!["create", "--bundle", bdir.as_str()];
        args.extend_from_slice(extra);
        args.push(id);
        self.run_detached(self.cmd(&args), &bundle.dir, "create")
    }

    /// Runs a command whose children may outlive it, with stdout and
    /// stderr in files under `dir`.
    pub fn run_detached(&self, mut cmd: Command, dir: &Path, tag: &str) -> Result<Ran> {
        let out_p = dir.join(format!("{tag}.out"));
        let err_p = dir.join(format!("{tag}.err"));
        cmd.stdout(fs::File::create(&out_p)?)
            .stderr(fs::File::create(&err_p)?);
        let mut r = run_watched(cmd)?;
        r.stdout = fs::read_to_string(&out_p).unwrap_or_default();
        r.stderr = fs::read_to_string(&err_p).unwrap_or_default();
        Ok(r)
    }

    /// `state ID` parsed, or why it failed.
    pub fn state(&self, id: &str) -> std::result::Result<Value, String> {
        let r = self.rt(&["state", id]).map_err(|e| format!("{e:#}"))?;
        if !r.ok() {
            return Err(format!("state {id}: {}", r.why()));
        }
        serde_json::from_str(&r.stdout).map_err(|e| format!("state {id} is not JSON: {e}"))
    }

    /// The `status` field of `state ID`.
    pub fn status(&self, id: &str) -> std::result::Result<String, String> {
        let s = self.state(id)?;
        s["status"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("state has no status: {s}"))
    }

    /// Polls until `state` reports `want` (bounded: a wait, not a timing).
    pub fn wait_status(&self, id: &str, want: &str) -> std::result::Result<(), String> {
        let mut last = String::new();
        for _ in 0..500 {
            match self.status(id) {
                Ok(s) if s == want => return Ok(()),
                Ok(s) => last = s,
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("status never became {want:?} (last: {last})"))
    }

    /// Registers `id` for force-deletion when the guard drops.
    pub fn guard(&self, id: &str) -> Guard<'_> {
        Guard {
            h: self,
            id: id.to_string(),
        }
    }
}

/// Force-deletes a container (and so its cgroup) when dropped.
pub struct Guard<'h> {
    h: &'h Harness,
    id: String,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let _ = self.h.rt(&["delete", "--force", &self.id]);
    }
}

fn run_watched(mut cmd: Command) -> Result<Ran> {
    let child = cmd
        .spawn()
        .with_context(|| format!("spawning {:?}", cmd.get_program()))?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out: Output = match rx.recv_timeout(WATCHDOG) {
        Ok(r) => r.context("waiting for the runtime")?,
        Err(_) => {
            // The child is ours and still unreaped, so the pid is still its.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = rx.recv_timeout(Duration::from_secs(5));
            return Ok(Ran {
                code: None,
                stdout: String::new(),
                stderr: format!("killed after {}s without finishing", WATCHDOG.as_secs()),
            });
        }
    };
    let code = out
        .status
        .code()
        .or_else(|| out.status.signal().map(|s| 128 + s));
    Ok(Ran {
        code,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Makes `fd` the child's descriptor 3, for `--preserve-fds 1`.
pub fn pass_as_fd3(cmd: &mut Command, fd: std::os::fd::RawFd) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and calls
    // only dup2 and fcntl, which are async-signal-safe; it touches no
    // memory of the parent and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if fd == 3 {
                // dup2 onto itself keeps FD_CLOEXEC: clear it instead.
                if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
