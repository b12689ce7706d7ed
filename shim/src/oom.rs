//! TaskOOM. cgroup v1: an eventfd registered for the container's
//! memory.oom_control via cgroup.event_control. A thread per container
//! blocks on it; the kernel also signals it when the cgroup is removed
//! (the directory is gone by then), which ends the thread.
//!
//! cgroup v2: inotify IN_MODIFY on the cgroup's memory.events (the kernel
//! notifies on every counter change) and cgroup.events (to see the cgroup
//! empty out and end the thread); TaskOOM when oom or oom_kill grew. The v2
//! watcher is not exercised by tests: this project's hosts are hybrid (v1
//! controllers), where it never runs; only its counter logic is unit-tested.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use containerd_shim::protos::cgroups_v2::metrics::MemoryEvents;
use containerd_shim::protos::events::task::TaskOOM;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use crate::service::Inner;
use crate::stats::{self, v2, Cgroup};

fn publish(inner: &Inner, id: &str) {
    tracing::info!(container = %id, "OOM");
    let ev = TaskOOM {
        container_id: id.to_string(),
        ..Default::default()
    };
    inner.publish(
        containerd_shim::protos::topics::TASK_OOM_EVENT_TOPIC,
        Box::new(ev),
    );
}

/// Starts watching the memory cgroup of `pid`; failures are logged only.
pub fn watch(inner: &Inner, id: &str, pid: i32) {
    match stats::cgroup_of(pid) {
        Ok(Cgroup::V1(mut paths)) => {
            if let Some(dir) = paths.remove("memory") {
                watch_v1(inner, id, dir);
            }
        }
        Ok(Cgroup::V2(dir)) => watch_v2(inner, id, dir),
        Err(e) => tracing::debug!("no OOM watch for {id}: {}", e.one_line()),
    }
}

fn watch_v1(inner: &Inner, id: &str, dir: PathBuf) {
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
    let spawned = std::thread::Builder::new()
        .name("oom".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let _control = control;
            let mut efd = efd;
            let mut buf = [0u8; 8];
            // One event per OOM, as containerd's runc shim publishes them.
            // The kernel signals before the OOM killer runs, so the
            // oom_kill counter may not have moved yet: it cannot tell.
            while efd.read_exact(&mut buf).is_ok() {
                if !dir.exists() {
                    break;
                }
                publish(&inner, &id);
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("OOM watch thread: {e}");
    }
}

/// Whether memory.events moved from `seen` to `now` by an OOM: the `oom`
/// counter (limit hit, OOM killer invoked) or `oom_kill` (a process killed).
fn oom_grew(seen: &MemoryEvents, now: &MemoryEvents) -> bool {
    now.oom > seen.oom || now.oom_kill > seen.oom_kill
}

/// Whether a cgroup.events text says no process is left in the cgroup.
fn emptied(cgroup_events: &str) -> bool {
    cgroup_events.lines().any(|l| l.trim() == "populated 0")
}

fn watch_v2(inner: &Inner, id: &str, dir: PathBuf) {
    let events = dir.join("memory.events");
    let Some(mut seen) = v2::memory_events(&dir) else {
        tracing::debug!("no OOM watch for {id}: no {}", events.display());
        return;
    };
    let added = Inotify::init(InitFlags::IN_CLOEXEC).and_then(|fd| {
        fd.add_watch(&events, AddWatchFlags::IN_MODIFY)?;
        fd.add_watch(&dir.join("cgroup.events"), AddWatchFlags::IN_MODIFY)?;
        Ok(fd)
    });
    let fd = match added {
        Ok(fd) => fd,
        Err(e) => {
            tracing::warn!("OOM watch for {id}: inotify: {e}");
            return;
        }
    };
    let Some(inner) = inner.self_ref() else {
        return;
    };
    let id = id.to_string();
    let spawned = std::thread::Builder::new()
        .name("oom".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            // Blocks until one of the two files changes; an error (or IN_IGNORED
            // after the cgroup's removal) ends the watch.
            while let Ok(batch) = fd.read_events() {
                if batch
                    .iter()
                    .any(|e| e.mask.contains(AddWatchFlags::IN_IGNORED))
                {
                    break;
                }
                let Some(now) = v2::memory_events(&dir) else {
                    break;
                };
                if oom_grew(&seen, &now) {
                    publish(&inner, &id);
                }
                seen = now;
                let populated = std::fs::read_to_string(dir.join("cgroup.events"));
                if populated.map_or(true, |t| emptied(&t)) {
                    break;
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("OOM watch thread: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_counters() {
        let before = v2::parse_memory_events("low 0\nhigh 0\nmax 3\noom 0\noom_kill 0\n");
        let max_only = v2::parse_memory_events("low 0\nhigh 0\nmax 9\noom 0\noom_kill 0\n");
        assert!(
            !oom_grew(&before, &max_only),
            "max alone is reclaim, not OOM"
        );
        let oom = v2::parse_memory_events("low 0\nhigh 0\nmax 9\noom 1\noom_kill 0\n");
        assert!(oom_grew(&before, &oom));
        let kill = v2::parse_memory_events("low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n");
        assert!(oom_grew(&oom, &kill));
        assert!(!oom_grew(&kill, &kill));
        // A file without the counters (garbage, or an old kernel) never fires.
        assert!(!oom_grew(&before, &v2::parse_memory_events("garbage\n")));
    }

    #[test]
    fn cgroup_events() {
        assert!(emptied("populated 0\nfrozen 0\n"));
        assert!(!emptied("populated 1\nfrozen 0\n"));
    }
}
