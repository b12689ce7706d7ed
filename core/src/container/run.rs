//! `run`: create + start + wait, with the container's exit code as ours.
//! Also the foreground wait shared with `exec`.

use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::create::{create, CreateOptions};
use super::{delete, start};
use crate::error::{Error, Result};
use crate::pipeline::Pipeline;
use crate::RuntimeRoot;

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub create: CreateOptions,
    /// Keep the container's state after it exits.
    pub keep: bool,
    /// Do not become a subreaper for the container's orphans.
    pub no_subreaper: bool,
}

/// Signals a foreground pinc passes on to the container.
const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGALRM,
    Signal::SIGCONT,
];

/// Blocks the forwarded signals and SIGCHLD so `wait_forwarding` can take
/// them synchronously. Call it only after the container's init was forked:
/// a blocked mask would otherwise be inherited across exec.
pub fn block_signals() -> Result<SigSet> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for s in FORWARDED {
        set.add(*s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).map_err(|source| {
        Error::Sys {
            what: "failed to block signals".into(),
            source,
        }
    })?;
    Ok(set)
}

/// Waits for `pid`, forwarding signals to it; returns its exit code
/// (128 + signal when killed), as a shell would.
pub fn wait_forwarding(pid: i32, set: &SigSet) -> Result<i32> {
    let target = Pid::from_raw(pid);
    loop {
        // Reap first: the child may have exited before we started waiting.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p == target => return Ok(code),
                Ok(WaitStatus::Signaled(p, sig, _)) if p == target => return Ok(128 + sig as i32),
                Ok(WaitStatus::StillAlive) | Err(nix::Error::ECHILD) => break,
                Ok(_) => continue,
                Err(nix::Error::EINTR) => continue,
                Err(source) => {
                    return Err(Error::Sys {
                        what: format!("failed to wait for pid {pid}"),
                        source,
                    })
                }
            }
        }
        let sig = set.wait().map_err(|source| Error::Sys {
            what: "failed to wait for signals".into(),
            source,
        })?;
        if sig != Signal::SIGCHLD {
            let _ = kill(target, sig);
        }
    }
}

/// Runs a container to completion (or creates and starts it, detached).
/// Returns the exit code pinc should exit with.
pub fn run(root: &RuntimeRoot, opts: &RunOptions, pipeline: &Pipeline) -> Result<i32> {
    if !opts.create.detach && !opts.no_subreaper {
        // Orphans of the container re-parent to us and get reaped below.
        // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes plain integers and has no
        // memory-safety preconditions.
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        if rc != 0 {
            tracing::warn!(target: "pinc", "failed to become a subreaper; orphans go to init");
        }
    }
    let id = opts.create.id.as_str();
    let created = create(root, &opts.create, pipeline)?;
    let set = block_signals()?;
    if let Err(e) = start::start(root, id) {
        let _ = delete::delete(root, id, true);
        return Err(e);
    }
    if opts.create.detach {
        return Ok(0);
    }
    let code = wait_forwarding(created.init_pid, &set)?;
    if created.sidecar.sandbox {
        crate::rootless::leave_scratch();
    }
    if !opts.keep {
        delete::delete(root, id, true)?;
    }
    Ok(code)
}
