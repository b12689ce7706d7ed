//! TaskOOM on cgroup v1: an eventfd registered for the container's
//! memory.oom_control via cgroup.event_control. A thread per container
//! blocks on it; the kernel also signals it when the cgroup is removed,
//! which ends the thread. (cgroup v2 hosts: not watched yet.)

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use containerd_shim::protos::events::task::TaskOOM;

use crate::service::Inner;

fn oom_kills(dir: &Path) -> Option<u64> {
    std::fs::read_to_string(dir.join("memory.oom_control"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
}

/// Starts watching the memory cgroup of `pid`; failures are logged only.
pub fn watch(inner: &Inner, id: &str, pid: i32) {
    let Some(dir) = crate::stats::memory_cgroup(pid) else {
        return;
    };
    let control = match File::open(dir.join("memory.oom_control")) {
        Ok(f) => f,
        Err(e) => {
            tracing::debug!("no OOM watch for {id}: {e}");
            return;
        }
    };
    // SAFETY: eventfd(2) has no memory arguments; the result is checked.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if fd < 0 {
        tracing::warn!("eventfd: {}", std::io::Error::last_os_error());
        return;
    }
    // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
    let efd = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let registered = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.event_control"))
        .and_then(|mut f| {
            f.write_all(format!("{} {}", efd.as_raw_fd(), control.as_raw_fd()).as_bytes())
        });
    if let Err(e) = registered {
        tracing::warn!("OOM watch for {id}: {e}");
        return;
    }
    let Some(inner) = inner.self_ref() else {
        return;
    };
    let id = id.to_string();
    let mut seen = oom_kills(&dir).unwrap_or(0);
    let spawned = std::thread::Builder::new()
        .name("oom".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let _control = control;
            let mut efd = efd;
            let mut buf = [0u8; 8];
            while efd.read_exact(&mut buf).is_ok() {
                if !dir.exists() {
                    break;
                }
                let now = oom_kills(&dir).unwrap_or(seen + 1);
                if now > seen {
                    seen = now;
                    tracing::info!(container = %id, "OOM");
                    let ev = TaskOOM {
                        container_id: id.clone(),
                        ..Default::default()
                    };
                    inner.publish(
                        containerd_shim::protos::topics::TASK_OOM_EVENT_TOPIC,
                        Box::new(ev),
                    );
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("OOM watch thread: {e}");
    }
}
