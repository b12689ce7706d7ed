//! Exit statuses of the shim's children.
//!
//! The shim is the child subreaper (containerd-shim sets PR_SET_CHILD_SUBREAPER
//! and its SIGCHLD thread reaps every child with waitpid(-1), reporting
//! `128+signal` for a signalled one). This module subscribes to those reports
//! and keeps each exit until its owner claims it: a `pinc` invocation the shim
//! is waiting for, or a container process (init or exec) whose pid may be
//! learned only after it already exited.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use containerd_shim::monitor::{monitor_subscribe, Subject, Topic};

use crate::errors::{Error, Result};

/// Unclaimed exits older than this belong to nobody (e.g. an orphan that
/// re-parented to the shim) and are dropped.
const STALE: Duration = Duration::from_secs(120);

#[derive(Default)]
struct Table {
    exits: HashMap<i32, (i32, Instant)>,
    /// Container processes whose exit goes to the service's handler.
    watched: HashSet<i32>,
    /// Container processes whose exit waits in `exits` until `watch` (a
    /// start is under way): kept however old.
    held: HashSet<i32>,
}

/// Unclaimed exits, shared by the reaping thread and the waiters.
#[derive(Default)]
pub struct Exits {
    table: Mutex<Table>,
    cond: Condvar,
}

impl Exits {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends future exits of `pid` to the handler, or returns the exit
    /// already recorded (the process ended before its pid was known).
    pub fn watch(&self, pid: i32) -> Option<i32> {
        let mut t = self.lock();
        t.held.remove(&pid);
        match t.exits.remove(&pid) {
            Some((code, _)) => Some(code),
            None => {
                t.watched.insert(pid);
                None
            }
        }
    }

    /// Stops sending exits of the watched `pid` to the handler until the
    /// next `watch`, which returns an exit that came meanwhile. False when
    /// `pid` was not watched (its exit was dispatched already).
    pub fn hold(&self, pid: i32) -> bool {
        let mut t = self.lock();
        if !t.watched.remove(&pid) {
            return false;
        }
        t.held.insert(pid);
        true
    }

    /// Records an exit; true when the pid is watched (the caller dispatches it).
    fn record(&self, pid: i32, code: i32) -> bool {
        let mut t = self.lock();
        if t.watched.remove(&pid) {
            return true;
        }
        let now = Instant::now();
        let Table { exits, held, .. } = &mut *t;
        exits.retain(|pid, (_, at)| held.contains(pid) || now.duration_since(*at) < STALE);
        t.exits.insert(pid, (code, now));
        self.cond.notify_all();
        false
    }

    /// Blocks until `pid` (a child the caller spawned) exits.
    pub fn wait(&self, pid: i32) -> i32 {
        let mut t = self.lock();
        loop {
            if let Some((code, _)) = t.exits.remove(&pid) {
                return code;
            }
            t = self.cond.wait(t).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Starts the thread that receives every reaped child. Exits of watched pids
/// (container processes) go to `on_exit`; the others wait in `exits`.
pub fn start<F>(exits: Arc<Exits>, on_exit: F) -> Result<()>
where
    F: Fn(i32, i32) + Send + Sync + 'static,
{
    let on_exit = Arc::new(on_exit);
    let sub = monitor_subscribe(Topic::Pid).map_err(|source| Error::Shim {
        what: "failed to subscribe to child exits",
        source,
    })?;
    std::thread::Builder::new()
        .name("exits".into())
        .spawn(move || {
            for ev in sub.rx.iter() {
                if let Subject::Pid(pid) = ev.subject {
                    tracing::debug!(pid, code = ev.exit_code, "child exited");
                    if exits.record(pid, ev.exit_code) {
                        // The handler drains output and publishes to
                        // containerd, which may block; the exits of pinc
                        // invocations that requests wait for must not
                        // queue behind it.
                        let on_exit = Arc::clone(&on_exit);
                        let code = ev.exit_code;
                        let spawned = std::thread::Builder::new()
                            .name("exit".into())
                            .spawn(move || on_exit(pid, code));
                        if let Err(e) = spawned {
                            tracing::error!(pid, "cannot start an exit handler: {e}");
                        }
                    }
                }
            }
        })
        .map_err(Error::io("failed to start thread", "exits"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_exit_waits_for_watch() {
        let exits = Exits::default();
        assert_eq!(exits.watch(10), None);
        assert!(exits.record(10, 0), "watched: dispatched");
        assert_eq!(exits.watch(11), None);
        assert!(exits.hold(11));
        assert!(!exits.record(11, 3), "held: kept, not dispatched");
        assert_eq!(exits.watch(11), Some(3));
        assert!(!exits.hold(12), "never watched");
        assert_eq!(exits.watch(13), None);
        assert!(exits.hold(13));
        assert_eq!(exits.watch(13), None, "no exit while held");
        assert!(exits.record(13, 1), "watched again: dispatched");
    }

    #[test]
    fn held_exits_outlive_the_stale_bound() {
        let exits = Exits::default();
        assert_eq!(exits.watch(20), None);
        assert!(exits.hold(20));
        assert!(!exits.record(20, 9));
        {
            let mut t = exits.lock();
            let old = Instant::now().checked_sub(STALE * 2).expect("clock");
            for (_, at) in t.exits.values_mut() {
                *at = old;
            }
        }
        assert!(!exits.record(21, 0), "a stranger's exit prunes the stale");
        assert_eq!(exits.watch(20), Some(9));
        assert_eq!(exits.watch(21), Some(0));
    }
}
