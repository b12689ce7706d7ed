//! Exits and the order of the events about them, as containerd's runc shim
//! keeps it: a process's TaskExit follows its TaskStart or TaskExecStarted
//! (an exit that comes while Start runs is held until the start event is
//! out), and a container's init exit is the last exit published for it
//! (held until the exits of its running execs are out).
//!
//! TaskExit does not wait for the process's output: like the runc shim,
//! the shim drains it (bounded) when the process is deleted, so a child
//! that holds the output open cannot hold the exit.

use std::time::Duration;

use containerd_shim::protos::events::task::TaskExit;
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::topics::TASK_EXIT_EVENT_TOPIC;

use crate::errors::{Error, Result};
use crate::io::ProcessIo;
use crate::process::Container;
use crate::service::{shares_pid_namespace, Inner};

/// How long a deleted process's output may take to drain (the runc shim's
/// bound at delete).
pub const DRAIN: Duration = Duration::from_secs(2);

/// A TaskExit ready to go out.
struct Exit {
    container: String,
    id: String,
    pid: i32,
    code: i32,
    at: Option<Timestamp>,
}

impl Exit {
    fn event(self) -> TaskExit {
        TaskExit {
            container_id: self.container,
            id: self.id,
            pid: u32::try_from(self.pid).unwrap_or(0),
            exit_status: u32::try_from(self.code).unwrap_or(255),
            exited_at: self.at.into(),
            ..Default::default()
        }
    }
}

/// Marks the init stopped and returns its TaskExit.
fn init_stopped(c: &mut Container, code: i32) -> Exit {
    c.init.set_exited(code);
    Exit {
        container: c.id.clone(),
        id: c.id.clone(),
        pid: c.init.pid,
        code,
        at: c.init.exited_at.clone(),
    }
}

/// One exec's TaskExit is out: the init's held exit goes when it was the
/// last running exec.
fn exec_ended(c: &mut Container) -> Option<Exit> {
    c.running_execs = c.running_execs.saturating_sub(1);
    if c.running_execs > 0 || c.init.exited() {
        return None;
    }
    let code = c.init_exit.take()?;
    Some(init_stopped(c, code))
}

impl Inner {
    fn publish_exit(&self, exit: Exit) {
        tracing::info!(container = %exit.container, id = %exit.id, pid = exit.pid,
            code = exit.code, "process exited");
        self.publish(TASK_EXIT_EVENT_TOPIC, Box::new(exit.event()));
        self.cond.notify_all();
    }

    /// A container process exited: record it, wake Wait callers, publish
    /// TaskExit (or hold it, see the module's doc).
    pub fn process_exited(&self, pid: i32, code: i32) {
        let found = self.lock().iter_mut().find_map(|(cid, c)| {
            let exec_id = c.find_pid(pid)?;
            if exec_id.is_empty() {
                c.init_reaped = true;
            }
            Some((cid.clone(), exec_id, c.pinc.clone(), c.bundle.clone()))
        });
        let Some((cid, exec_id, pinc, bundle)) = found else {
            tracing::debug!(pid, code, "exit of a process no container owns");
            return;
        };
        if !exec_id.is_empty() {
            let exit = self.with(&cid, |c| {
                let p = c
                    .execs
                    .get_mut(&exec_id)
                    .ok_or_else(|| Error::NotFound(format!("exec {exec_id}")))?;
                p.set_exited(code);
                Ok(Exit {
                    container: cid.clone(),
                    id: exec_id.clone(),
                    pid,
                    code,
                    at: p.exited_at.clone(),
                })
            });
            let Ok(exit) = exit else { return };
            self.publish_exit(exit);
            self.exec_done(&cid);
            return;
        }
        if shares_pid_namespace(&bundle) {
            // Without a pid namespace of its own the container's other
            // processes outlive init and keep its output open: end them
            // now, as containerd's runc shim does.
            let killed = pinc.simple(&bundle, &["kill", "--all", &cid, "9"]);
            if let Err(e) = killed {
                tracing::warn!(container = %cid, "failed to kill what init left: {}", e.one_line());
            }
        }
        let exit = self.with(&cid, |c| {
            if c.running_execs > 0 {
                c.init_exit = Some(code);
                return Ok(None);
            }
            Ok(Some(init_stopped(c, code)))
        });
        if let Ok(Some(exit)) = exit {
            self.publish_exit(exit);
        }
    }

    /// An exec that counted as running ended (its TaskExit is out, or its
    /// start failed): publishes the init's held exit after the last one.
    pub fn exec_done(&self, cid: &str) {
        if let Ok(Some(exit)) = self.with(cid, |c| Ok(exec_ended(c))) {
            self.publish_exit(exit);
        }
    }

    /// Counts an exec about to start as running; refused once the init
    /// was reaped (the runc shim's "init process is not running").
    pub fn exec_starting(&self, cid: &str) -> Result<()> {
        self.with(cid, |c| {
            if c.init_reaped {
                return Err(Error::FailedPrecondition(format!(
                    "container {cid} init process is not running"
                )));
            }
            c.running_execs += 1;
            Ok(())
        })
    }
}

/// Drains (bounded) a deleted process's output and closes its stdio.
pub fn finish_io(io: Option<ProcessIo>) {
    if let Some(io) = io {
        io.finish(DRAIN);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;
    use std::sync::Arc;

    use super::*;
    use crate::config::ShimConfig;
    use crate::io::Fifos;
    use crate::process::{Process, State};
    use crate::reaper::Exits;
    use crate::runtime::Pinc;

    fn container() -> Container {
        let pinc = Pinc::new(&ShimConfig::default(), "ns", Arc::new(Exits::default()));
        let mut init = Process::new(Fifos::default());
        init.pid = 100;
        init.state = State::Running;
        Container {
            id: "c".into(),
            bundle: PathBuf::from("/nonexistent"),
            pinc: Arc::new(pinc),
            init,
            execs: HashMap::new(),
            rootfs_mounted: false,
            running_execs: 0,
            init_reaped: false,
            init_exit: None,
        }
    }

    #[test]
    fn the_init_exit_waits_for_the_last_exec() {
        let mut c = container();
        c.running_execs = 2;
        c.init_reaped = true;
        c.init_exit = Some(137);
        assert!(exec_ended(&mut c).is_none(), "one exec still runs");
        assert!(!c.init.exited());
        let exit = exec_ended(&mut c).expect("the init's exit after the last exec");
        assert_eq!((exit.id.as_str(), exit.pid, exit.code), ("c", 100, 137));
        assert!(c.init.exited());
        assert_eq!(c.init.exit_status, 137);
        assert!(exec_ended(&mut c).is_none(), "published once");
    }

    #[test]
    fn an_exec_ending_without_a_held_init_exit_publishes_nothing() {
        let mut c = container();
        c.running_execs = 1;
        assert!(exec_ended(&mut c).is_none());
        assert_eq!(c.running_execs, 0);
        assert!(!c.init.exited());
        assert!(exec_ended(&mut c).is_none(), "no underflow");
        assert_eq!(c.running_execs, 0);
    }
}
