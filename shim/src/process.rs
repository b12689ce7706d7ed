//! The processes a shim tracks: each container's init and its execs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use containerd_shim::api::Status;
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;

use containerd_shim::protos::protobuf::Message;
use containerd_shim::protos::shim::oci::ProcessDetails;

use crate::errors::{Error, Result};
use crate::io::{Fifos, ProcessIo};
use crate::runtime::Pinc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Created,
    Running,
    Paused,
    Stopped,
}

impl State {
    pub fn api(self) -> Status {
        match self {
            Self::Created => Status::CREATED,
            Self::Running => Status::RUNNING,
            Self::Paused => Status::PAUSED,
            Self::Stopped => Status::STOPPED,
        }
    }
}

pub struct Process {
    pub pid: i32,
    pub state: State,
    pub exit_status: u32,
    pub exited_at: Option<Timestamp>,
    pub fifos: Fifos,
    /// The shim's side of the stdio; taken out while the exit handler
    /// drains it.
    pub io: Option<ProcessIo>,
    /// An exec's OCI process (JSON), until Start runs it.
    pub spec: Option<Any>,
}

impl Process {
    pub fn new(fifos: Fifos) -> Self {
        Self {
            pid: 0,
            state: State::Created,
            exit_status: 0,
            exited_at: None,
            fifos,
            io: None,
            spec: None,
        }
    }

    pub fn exited(&self) -> bool {
        self.state == State::Stopped
    }

    pub fn set_exited(&mut self, status: i32) {
        self.state = State::Stopped;
        self.exit_status = u32::try_from(status).unwrap_or(255);
        self.exited_at = Some(now());
    }
}

pub struct Container {
    pub id: String,
    pub bundle: PathBuf,
    pub pinc: Arc<Pinc>,
    pub init: Process,
    pub execs: HashMap<String, Process>,
    /// The shim mounted the request's rootfs at `<bundle>/rootfs`.
    pub rootfs_mounted: bool,
    /// Execs started or being started whose TaskExit is not published yet.
    pub running_execs: usize,
    /// The init was reaped: no exec may start any more.
    pub init_reaped: bool,
    /// The init's exit status, held until the running execs' exits are
    /// published (containerd's runc shim publishes the init's exit last).
    pub init_exit: Option<i32>,
}

impl Container {
    /// The init (empty exec id) or an exec.
    pub fn process(&self, exec_id: &str) -> Option<&Process> {
        if exec_id.is_empty() {
            Some(&self.init)
        } else {
            self.execs.get(exec_id)
        }
    }

    pub fn process_mut(&mut self, exec_id: &str) -> Option<&mut Process> {
        if exec_id.is_empty() {
            Some(&mut self.init)
        } else {
            self.execs.get_mut(exec_id)
        }
    }

    /// (pid, exec id) of the execs that have a pid.
    pub fn exec_pids(&self) -> Vec<(i32, String)> {
        self.execs
            .iter()
            .filter(|(_, p)| p.pid > 0)
            .map(|(id, p)| (p.pid, id.clone()))
            .collect()
    }

    /// The exec id ("" for init) of the live process with `pid`.
    pub fn find_pid(&self, pid: i32) -> Option<String> {
        if self.init.pid == pid && !self.init.exited() {
            return Some(String::new());
        }
        self.execs
            .iter()
            .find(|(_, p)| p.pid == pid && !p.exited())
            .map(|(id, _)| id.clone())
    }
}

/// The type URL containerd's runc shim gives ProcessDetails (Go's typeurl
/// names a proto message by its full name, without a host prefix).
const PROCESS_DETAILS_URL: &str = "containerd.runc.v1.ProcessDetails";

/// PidsResponse's info for an exec's pid: containerd.runc.v1.ProcessDetails.
pub fn process_details(exec_id: &str) -> Result<Any> {
    let details = ProcessDetails {
        exec_id: exec_id.to_string(),
        ..Default::default()
    };
    let value = details.write_to_bytes().map_err(|source| Error::Protobuf {
        what: "ProcessDetails",
        source,
    })?;
    Ok(Any {
        type_url: PROCESS_DETAILS_URL.to_string(),
        value,
        ..Default::default()
    })
}

pub fn now() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut t = Timestamp::new();
    t.seconds = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    t.nanos = i32::try_from(d.subsec_nanos()).unwrap_or(0);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_details_as_the_runc_shim_packs_them() {
        let any = process_details("e1").expect("pack");
        assert_eq!(any.type_url, "containerd.runc.v1.ProcessDetails");
        // Field 1 (exec_id), length-delimited: 0x0a, length 2, "e1".
        assert_eq!(any.value, vec![0x0a, 2, b'e', b'1']);
        let back = ProcessDetails::parse_from_bytes(&any.value).expect("parse");
        assert_eq!(back.exec_id, "e1");
    }
}
