//! `kill`: signals a container's init, or all of its processes.

use libcontainer::container::{Container, ContainerStatus};

use super::load::{locked, wrong_state};
use crate::error::{Error, Result};
use crate::process::signal;
use crate::state::sidecar::Sidecar;
use crate::RuntimeRoot;

/// Signals a sandboxed container (no cgroup to enumerate): its init, or every
/// process in its pid namespace.
pub(super) fn kill_sandboxed(
    container: &Container,
    sig: nix::sys::signal::Signal,
    all: bool,
) -> Result<()> {
    let init = container.pid().map(|p| p.as_raw()).unwrap_or(0);
    let pids = if all {
        super::ps::pids_by_namespace(init)
    } else {
        vec![init]
    };
    for pid in pids {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).map_err(|source| {
            Error::Sys {
                what: format!(
                    "failed to signal pid {pid} of container {:?}",
                    container.id()
                ),
                source,
            }
        })?;
    }
    Ok(())
}

pub fn kill(root: &RuntimeRoot, id: &str, sig: &str, all: bool) -> Result<()> {
    let sig = signal::parse(sig)?;
    // Without a root there is no container; taking the lock would create the
    // root (as root, in Slurm's cleanup: the user's next job could not use it).
    if !root.path().is_dir() {
        return Err(Error::NotFound { id: id.to_string() });
    }
    let (_lock, mut container) = locked(root, id)?;
    let sandboxed = Sidecar::load(&container.root).sandbox;
    let stopped = container.status() == ContainerStatus::Stopped;
    if all && stopped {
        // Like runc: `kill --all` of a stopped container signals what is
        // left in its cgroup. containerd's shim sends it after init exits
        // when the pid namespace is shared (Kubernetes pods).
        if sandboxed {
            return Ok(());
        }
        return container
            .kill(sig, true)
            .map_err(Error::lib(format!("failed to signal container {id:?}")));
    }
    if !container.can_kill() {
        // runc's wording: containerd's shims turn "container not running"
        // into NotFound, which CRI's StopContainer accepts.
        let hint = if stopped {
            " (container not running)"
        } else {
            ""
        };
        return Err(wrong_state(&container, "kill", hint));
    }
    if sandboxed {
        return kill_sandboxed(&container, sig, all);
    }
    if let Err(e) = container.kill(sig, all) {
        // Init exited between the state check and the signal: say so as
        // for a container found stopped, not as a failure to signal.
        if container.refresh_status().is_ok() && container.status() == ContainerStatus::Stopped {
            return Err(wrong_state(&container, "kill", " (container not running)"));
        }
        return Err(Error::lib(format!("failed to signal container {id:?}"))(e));
    }
    crate::state::state_copy::keep(&container.root);
    Ok(())
}
