//! The ttrpc task service (task API v2): each call runs `pinc` and keeps
//! the state containerd asks about.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use containerd_shim::api::{
    CheckpointTaskRequest, CloseIORequest, ConnectRequest, ConnectResponse, CreateTaskRequest,
    CreateTaskResponse, DeleteRequest, DeleteResponse, Empty, ExecProcessRequest, KillRequest,
    PauseRequest, PidsRequest, PidsResponse, ResizePtyRequest, ResumeRequest, ShutdownRequest,
    StartRequest, StartResponse, StateRequest, StateResponse, StatsRequest, StatsResponse,
    UpdateTaskRequest, WaitRequest, WaitResponse,
};
use containerd_shim::event::Event;
use containerd_shim::protos::api::ProcessInfo;
use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskIO, TaskPaused, TaskResumed,
    TaskStart,
};
use containerd_shim::protos::protobuf::MessageField;
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::{Context, ExitSignal, Task, TtrpcContext, TtrpcResult};

use crate::config::ShimConfig;
use crate::console::{self, ConsoleSocket};
use crate::errors::{Error, Result};
use crate::io::{Fifos, ProcessIo};
use crate::process::{process_details, Container, Process, State};
use crate::reaper::Exits;
use crate::runtime::{read_pid, Pinc, ProcessStdio};
use crate::{lifecycle, mounts, oom, stats};

/// Whether the bundle's container joins a pid namespace it does not own
/// (the pod's or the host's): no pid entry, or one with a path.
pub(crate) fn shares_pid_namespace(bundle: &Path) -> bool {
    let Ok(bytes) = std::fs::read(bundle.join("config.json")) else {
        return false;
    };
    let Ok(spec) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return false;
    };
    let namespaces = spec["linux"]["namespaces"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    !namespaces
        .iter()
        .any(|n| n["type"] == "pid" && n["path"].as_str().is_none_or(|p| p.is_empty()))
}

pub struct Inner {
    pub namespace: String,
    pub exits: Arc<Exits>,
    publisher: Mutex<RemotePublisher>,
    exit_signal: Arc<ExitSignal>,
    containers: Mutex<HashMap<String, Container>>,
    /// Signalled when a process is marked exited (Wait callers).
    pub(crate) cond: Condvar,
    me: Mutex<std::sync::Weak<Inner>>,
}

#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

impl Service {
    pub fn new(
        namespace: String,
        publisher: RemotePublisher,
        exit_signal: Arc<ExitSignal>,
    ) -> Result<Self> {
        let inner = Arc::new(Inner {
            namespace,
            exits: Arc::new(Exits::default()),
            publisher: Mutex::new(publisher),
            exit_signal,
            containers: Mutex::new(HashMap::new()),
            cond: Condvar::new(),
            me: Mutex::new(std::sync::Weak::new()),
        });
        let weak = Arc::downgrade(&inner);
        *inner.me.lock().unwrap_or_else(|p| p.into_inner()) = weak.clone();
        crate::reaper::start(inner.exits.clone(), move |pid, code| {
            if let Some(inner) = weak.upgrade() {
                inner.process_exited(pid, code);
            }
        })?;
        Ok(Self { inner })
    }
}

impl Inner {
    /// A strong reference to this service's state (for watcher threads).
    pub fn self_ref(&self) -> Option<Arc<Inner>> {
        self.me.lock().unwrap_or_else(|p| p.into_inner()).upgrade()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, HashMap<String, Container>> {
        self.containers.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn publish(&self, topic: &str, event: Box<dyn Event>) {
        let publisher = self.publisher.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = publisher.publish(Context::default(), topic, &self.namespace, event) {
            tracing::warn!("failed to publish {topic}: {e}");
        }
    }

    pub(crate) fn with<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut Container) -> Result<T>,
    ) -> Result<T> {
        let mut all = self.lock();
        let c = all
            .get_mut(id)
            .ok_or_else(|| Error::NotFound(format!("container {id}")))?;
        f(c)
    }

    fn with_process<T>(
        &self,
        id: &str,
        exec_id: &str,
        f: impl FnOnce(&mut Process) -> Result<T>,
    ) -> Result<T> {
        self.with(id, |c| {
            let p = c
                .process_mut(exec_id)
                .ok_or_else(|| Error::NotFound(format!("process {exec_id} of {id}")))?;
            f(p)
        })
    }

    /// Records the pid of a started process and catches an exit that came first.
    fn watch(&self, pid: i32) {
        if let Some(code) = self.exits.watch(pid) {
            self.process_exited(pid, code);
        }
    }

    fn create(&self, req: &CreateTaskRequest) -> Result<CreateTaskResponse> {
        if self.lock().contains_key(&req.id) {
            return Err(Error::AlreadyExists(format!("container {}", req.id)));
        }
        let bundle = PathBuf::from(&req.bundle);
        let config = ShimConfig::from_options(req.options.as_ref())?;
        config.save(&bundle)?;
        let pinc = Arc::new(Pinc::new(&config, &self.namespace, self.exits.clone()));
        let fifos = Fifos {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let mounted = mounts::mount_rootfs(&bundle, &req.rootfs)?;
        let created = start_process(&fifos, |stdio, socket| {
            pinc.create(&bundle, &req.id, socket, stdio)
        })
        .and_then(|io| Ok((io, read_pid(&bundle.join("init.pid"))?)));
        let (io, pid) = match created {
            Ok(v) => v,
            Err(e) => {
                let _ = pinc.simple(&bundle, &["delete", "--force", &req.id]);
                if mounted {
                    mounts::unmount_rootfs(&bundle);
                }
                return Err(e);
            }
        };
        let mut init = Process::new(fifos.clone());
        init.pid = pid;
        init.io = Some(io);
        self.lock().insert(
            req.id.clone(),
            Container {
                id: req.id.clone(),
                bundle: bundle.clone(),
                pinc,
                init,
                execs: HashMap::new(),
                rootfs_mounted: mounted,
                running_execs: 0,
                init_reaped: false,
                init_exit: None,
            },
        );
        oom::watch(self, &req.id, pid);
        let ev = TaskCreate {
            container_id: req.id.clone(),
            bundle: req.bundle.clone(),
            rootfs: req.rootfs.clone(),
            io: MessageField::some(TaskIO {
                stdin: fifos.stdin,
                stdout: fifos.stdout,
                stderr: fifos.stderr,
                terminal: fifos.terminal,
                ..Default::default()
            }),
            pid: u32::try_from(pid).unwrap_or(0),
            ..Default::default()
        };
        self.publish(
            containerd_shim::protos::topics::TASK_CREATE_EVENT_TOPIC,
            Box::new(ev),
        );
        // Only now: an early exit (killed before start) follows TaskCreate.
        self.watch(pid);
        Ok(CreateTaskResponse {
            pid: u32::try_from(pid).unwrap_or(0),
            ..Default::default()
        })
    }

    fn start(&self, req: &StartRequest) -> Result<StartResponse> {
        let (pinc, bundle) = self.with(&req.id, |c| Ok((c.pinc.clone(), c.bundle.clone())))?;
        let pid = if req.exec_id.is_empty() {
            let pid = self.with(&req.id, |c| Ok(c.init.pid))?;
            // A process that exits at once must not have its TaskExit out
            // before TaskStart: its exit waits until TaskStart is published.
            let held = self.exits.hold(pid);
            let started = pinc.simple(&bundle, &["start", &req.id]).and_then(|()| {
                self.with(&req.id, |c| {
                    if c.init.state == State::Created {
                        c.init.state = State::Running;
                    }
                    Ok(())
                })
            });
            if started.is_ok() {
                let ev = TaskStart {
                    container_id: req.id.clone(),
                    pid: u32::try_from(pid).unwrap_or(0),
                    ..Default::default()
                };
                self.publish(
                    containerd_shim::protos::topics::TASK_START_EVENT_TOPIC,
                    Box::new(ev),
                );
            }
            if held {
                self.watch(pid);
            }
            started?;
            pid
        } else {
            self.start_exec(&pinc, &bundle, req)?
        };
        Ok(StartResponse {
            pid: u32::try_from(pid).unwrap_or(0),
            ..Default::default()
        })
    }

    fn start_exec(&self, pinc: &Pinc, bundle: &Path, req: &StartRequest) -> Result<i32> {
        let (fifos, spec) = self.with_process(&req.id, &req.exec_id, |p| {
            if p.state != State::Created {
                return Err(Error::FailedPrecondition(format!(
                    "exec {} was already started",
                    req.exec_id
                )));
            }
            Ok((p.fifos.clone(), p.spec.take()))
        })?;
        let spec =
            spec.ok_or_else(|| Error::InvalidArgument("exec without a process spec".into()))?;
        self.exec_starting(&req.id)?;
        let started = self.run_exec(pinc, bundle, req, &fifos, &spec);
        if started.is_err() {
            self.exec_done(&req.id);
        }
        let pid = started?;
        let ev = TaskExecStarted {
            container_id: req.id.clone(),
            exec_id: req.exec_id.clone(),
            pid: u32::try_from(pid).unwrap_or(0),
            ..Default::default()
        };
        self.publish(
            containerd_shim::protos::topics::TASK_EXEC_STARTED_EVENT_TOPIC,
            Box::new(ev),
        );
        // Only now: an exit that came first follows TaskExecStarted.
        self.watch(pid);
        Ok(pid)
    }

    /// `pinc exec` of a created exec; returns its pid.
    fn run_exec(
        &self,
        pinc: &Pinc,
        bundle: &Path,
        req: &StartRequest,
        fifos: &Fifos,
        spec: &containerd_shim::protos::protobuf::well_known_types::any::Any,
    ) -> Result<i32> {
        let process_json = bundle.join(format!("exec-{}.json", req.exec_id));
        let pid_file = bundle.join(format!("{}.pid", req.exec_id));
        std::fs::write(&process_json, &spec.value)
            .map_err(Error::io("failed to write", &process_json))?;
        let started = start_process(fifos, |stdio, socket| {
            pinc.exec(bundle, &req.id, &process_json, &pid_file, socket, stdio)
        });
        let _ = std::fs::remove_file(&process_json);
        let io = started?;
        let pid = read_pid(&pid_file)?;
        self.with_process(&req.id, &req.exec_id, |p| {
            p.pid = pid;
            p.state = State::Running;
            p.io = Some(io);
            Ok(())
        })?;
        Ok(pid)
    }

    fn delete(&self, req: &DeleteRequest) -> Result<DeleteResponse> {
        if !req.exec_id.is_empty() {
            let mut p = self.with(&req.id, |c| {
                match c.execs.get(&req.exec_id) {
                    None => return Err(Error::NotFound(format!("exec {}", req.exec_id))),
                    Some(p) if !p.exited() && p.state != State::Created => {
                        return Err(Error::FailedPrecondition(format!(
                            "exec {} is still running",
                            req.exec_id
                        )))
                    }
                    Some(_) => {}
                }
                c.execs
                    .remove(&req.exec_id)
                    .ok_or_else(|| Error::NotFound(format!("exec {}", req.exec_id)))
            })?;
            lifecycle::finish_io(p.io.take());
            let _ = std::fs::remove_file(
                self.with(&req.id, |c| Ok(c.bundle.clone()))?
                    .join(format!("{}.pid", req.exec_id)),
            );
            return Ok(DeleteResponse {
                pid: u32::try_from(p.pid).unwrap_or(0),
                exit_status: p.exit_status,
                exited_at: p.exited_at.into(),
                ..Default::default()
            });
        }
        let (pinc, bundle) = self.with(&req.id, |c| Ok((c.pinc.clone(), c.bundle.clone())))?;
        if let Err(e) = pinc.simple(&bundle, &["delete", "--force", &req.id]) {
            if !gone(&e) {
                return Err(e);
            }
        }
        let mut c = self
            .lock()
            .remove(&req.id)
            .ok_or_else(|| Error::NotFound(format!("container {}", req.id)))?;
        // After `pinc delete`: no process of the container is left to write.
        lifecycle::finish_io(c.init.io.take());
        if c.rootfs_mounted {
            mounts::unmount_rootfs(&c.bundle);
        }
        let pid = u32::try_from(c.init.pid).unwrap_or(0);
        // No `id`: containerd's runc shim leaves it empty for the init.
        let ev = TaskDelete {
            container_id: c.id.clone(),
            pid,
            exit_status: c.init.exit_status,
            exited_at: c.init.exited_at.clone().into(),
            ..Default::default()
        };
        self.publish(
            containerd_shim::protos::topics::TASK_DELETE_EVENT_TOPIC,
            Box::new(ev),
        );
        Ok(DeleteResponse {
            pid,
            exit_status: c.init.exit_status,
            exited_at: c.init.exited_at.into(),
            ..Default::default()
        })
    }

    fn kill(&self, req: &KillRequest) -> Result<()> {
        let (pinc, bundle, pid, exited) = self.with(&req.id, |c| {
            let p = c
                .process(&req.exec_id)
                .ok_or_else(|| Error::NotFound(format!("exec {}", req.exec_id)))?;
            Ok((c.pinc.clone(), c.bundle.clone(), p.pid, p.exited()))
        })?;
        if exited && !req.all {
            return Err(Error::NotFound("process already finished".into()));
        }
        if req.exec_id.is_empty() {
            let sig = req.signal.to_string();
            let mut args = vec!["kill"];
            if req.all {
                args.push("--all");
            }
            args.push(&req.id);
            args.push(&sig);
            return pinc.simple(&bundle, &args);
        }
        // An exec that never started has no pid: kill(0) would signal the
        // shim's own process group, and with it every container it serves.
        if pid <= 0 {
            return Err(Error::FailedPrecondition(format!(
                "process {} not created",
                req.exec_id
            )));
        }
        let sig = nix::sys::signal::Signal::try_from(i32::try_from(req.signal).unwrap_or(-1))
            .map_err(|_| Error::InvalidArgument(format!("signal {}", req.signal)))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig)
            .map_err(Error::sys("failed to signal the exec process"))
    }

    fn wait(&self, req: &WaitRequest) -> Result<WaitResponse> {
        let mut all = self.lock();
        loop {
            let p = all
                .get(&req.id)
                .and_then(|c| c.process(&req.exec_id))
                .ok_or_else(|| Error::NotFound(format!("process {} {}", req.id, req.exec_id)))?;
            if p.exited() {
                return Ok(WaitResponse {
                    exit_status: p.exit_status,
                    exited_at: p.exited_at.clone().into(),
                    ..Default::default()
                });
            }
            all = self.cond.wait(all).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn state(&self, req: &StateRequest) -> Result<StateResponse> {
        self.with(&req.id, |c| {
            let p = c
                .process(&req.exec_id)
                .ok_or_else(|| Error::NotFound(format!("exec {}", req.exec_id)))?;
            Ok(StateResponse {
                id: if req.exec_id.is_empty() {
                    req.id.clone()
                } else {
                    req.exec_id.clone()
                },
                bundle: c.bundle.to_string_lossy().into_owned(),
                pid: u32::try_from(p.pid).unwrap_or(0),
                status: p.state.api().into(),
                stdin: p.fifos.stdin.clone(),
                stdout: p.fifos.stdout.clone(),
                stderr: p.fifos.stderr.clone(),
                terminal: p.fifos.terminal,
                exit_status: p.exit_status,
                exited_at: p.exited_at.clone().into(),
                exec_id: req.exec_id.clone(),
                ..Default::default()
            })
        })
    }

    fn exec(&self, req: &ExecProcessRequest) -> Result<()> {
        self.with(&req.id, |c| {
            if c.init.exited() {
                return Err(Error::FailedPrecondition(format!(
                    "container {} is stopped",
                    req.id
                )));
            }
            if c.execs.contains_key(&req.exec_id) {
                return Err(Error::AlreadyExists(format!("exec {}", req.exec_id)));
            }
            let mut p = Process::new(Fifos {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
            });
            p.spec = req.spec.clone().into_option();
            c.execs.insert(req.exec_id.clone(), p);
            Ok(())
        })?;
        let ev = TaskExecAdded {
            container_id: req.id.clone(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        };
        self.publish(
            containerd_shim::protos::topics::TASK_EXEC_ADDED_EVENT_TOPIC,
            Box::new(ev),
        );
        Ok(())
    }

    fn pause_resume(&self, id: &str, pause: bool) -> Result<()> {
        let (pinc, bundle) = self.with(id, |c| Ok((c.pinc.clone(), c.bundle.clone())))?;
        pinc.simple(&bundle, &[if pause { "pause" } else { "resume" }, id])?;
        self.with(id, |c| {
            if !c.init.exited() {
                c.init.state = if pause { State::Paused } else { State::Running };
            }
            Ok(())
        })?;
        if pause {
            let ev = TaskPaused {
                container_id: id.to_string(),
                ..Default::default()
            };
            self.publish(
                containerd_shim::protos::topics::TASK_PAUSED_EVENT_TOPIC,
                Box::new(ev),
            );
        } else {
            let ev = TaskResumed {
                container_id: id.to_string(),
                ..Default::default()
            };
            self.publish(
                containerd_shim::protos::topics::TASK_RESUMED_EVENT_TOPIC,
                Box::new(ev),
            );
        }
        Ok(())
    }
}

/// pinc said the container does not exist (it is gone already).
pub fn gone(e: &Error) -> bool {
    matches!(
        e,
        Error::Runtime {
            kind: crate::errors::ErrorKind::NotFound,
            ..
        }
    )
}

/// Runs `pinc create`/`exec` with pipes, or with a console socket for a
/// terminal; returns the shim's side of the process's stdio.
fn start_process(
    fifos: &Fifos,
    run: impl FnOnce(ProcessStdio, Option<&std::path::Path>) -> Result<()>,
) -> Result<ProcessIo> {
    if fifos.terminal {
        let socket = ConsoleSocket::new()?;
        run(ProcessStdio::default(), Some(socket.path()))?;
        let master = socket.receive()?;
        ProcessIo::console(master, fifos)
    } else {
        let (stdio, io) = ProcessIo::pipes(fifos)?;
        run(stdio, None)?;
        Ok(io)
    }
}

impl Task for Service {
    fn create(&self, _: &TtrpcContext, req: CreateTaskRequest) -> TtrpcResult<CreateTaskResponse> {
        tracing::info!(id = %req.id, bundle = %req.bundle, "create");
        Ok(self.inner.create(&req)?)
    }

    fn start(&self, _: &TtrpcContext, req: StartRequest) -> TtrpcResult<StartResponse> {
        Ok(self.inner.start(&req)?)
    }

    fn delete(&self, _: &TtrpcContext, req: DeleteRequest) -> TtrpcResult<DeleteResponse> {
        Ok(self.inner.delete(&req)?)
    }

    fn kill(&self, _: &TtrpcContext, req: KillRequest) -> TtrpcResult<Empty> {
        self.inner.kill(&req)?;
        Ok(Empty::new())
    }

    fn wait(&self, _: &TtrpcContext, req: WaitRequest) -> TtrpcResult<WaitResponse> {
        Ok(self.inner.wait(&req)?)
    }

    fn state(&self, _: &TtrpcContext, req: StateRequest) -> TtrpcResult<StateResponse> {
        Ok(self.inner.state(&req)?)
    }

    fn exec(&self, _: &TtrpcContext, req: ExecProcessRequest) -> TtrpcResult<Empty> {
        self.inner.exec(&req)?;
        Ok(Empty::new())
    }

    fn resize_pty(&self, _: &TtrpcContext, req: ResizePtyRequest) -> TtrpcResult<Empty> {
        let console = self.inner.with_process(&req.id, &req.exec_id, |p| {
            p.io.as_ref()
                .and_then(|io| io.console.as_ref())
                .map(|f| {
                    f.try_clone()
                        .map_err(Error::io("failed to dup", "the pty master"))
                })
                .transpose()
        })?;
        if let Some(master) = console {
            console::resize(&master, req.width, req.height)?;
        }
        Ok(Empty::new())
    }

    fn close_io(&self, _: &TtrpcContext, req: CloseIORequest) -> TtrpcResult<Empty> {
        if req.stdin {
            self.inner.with_process(&req.id, &req.exec_id, |p| {
                if let Some(io) = &p.io {
                    io.close_stdin();
                }
                Ok(())
            })?;
        }
        Ok(Empty::new())
    }

    fn pids(&self, _: &TtrpcContext, req: PidsRequest) -> TtrpcResult<PidsResponse> {
        let (pinc, bundle, execs) = self.inner.with(&req.id, |c| {
            Ok((c.pinc.clone(), c.bundle.clone(), c.exec_pids()))
        })?;
        let pids = pinc.ps(&bundle, &req.id)?;
        let processes = pids
            .into_iter()
            .map(|pid| {
                // An exec's pid names its exec, as the runc shim does.
                let info = execs
                    .iter()
                    .find(|(p, _)| u32::try_from(*p).is_ok_and(|p| p == pid))
                    .map(|(_, exec_id)| process_details(exec_id))
                    .transpose()?;
                Ok(ProcessInfo {
                    pid,
                    info: info.into(),
                    ..Default::default()
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(PidsResponse {
            processes,
            ..Default::default()
        })
    }

    fn stats(&self, _: &TtrpcContext, req: StatsRequest) -> TtrpcResult<StatsResponse> {
        let pid = self.inner.with(&req.id, |c| {
            if c.init.exited() {
                return Err(Error::FailedPrecondition(format!(
                    "container {} is stopped",
                    req.id
                )));
            }
            Ok(c.init.pid)
        })?;
        Ok(StatsResponse {
            stats: MessageField::some(stats::metrics(pid)?),
            ..Default::default()
        })
    }

    fn update(&self, _: &TtrpcContext, req: UpdateTaskRequest) -> TtrpcResult<Empty> {
        let (pinc, bundle) = self
            .inner
            .with(&req.id, |c| Ok((c.pinc.clone(), c.bundle.clone())))?;
        let resources = req
            .resources
            .as_ref()
            .map(|a| a.value.clone())
            .ok_or_else(|| Error::InvalidArgument("update without resources".into()))?;
        pinc.update(&bundle, &req.id, &resources)?;
        Ok(Empty::new())
    }

    fn pause(&self, _: &TtrpcContext, req: PauseRequest) -> TtrpcResult<Empty> {
        self.inner.pause_resume(&req.id, true)?;
        Ok(Empty::new())
    }

    fn resume(&self, _: &TtrpcContext, req: ResumeRequest) -> TtrpcResult<Empty> {
        self.inner.pause_resume(&req.id, false)?;
        Ok(Empty::new())
    }

    fn checkpoint(&self, _: &TtrpcContext, _: CheckpointTaskRequest) -> TtrpcResult<Empty> {
        Err(Error::Unsupported("checkpoint is not supported by pinc").into())
    }

    fn connect(&self, _: &TtrpcContext, req: ConnectRequest) -> TtrpcResult<ConnectResponse> {
        let task_pid = self.inner.with(&req.id, |c| Ok(c.init.pid)).unwrap_or(0);
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid: u32::try_from(task_pid).unwrap_or(0),
            ..Default::default()
        })
    }

    fn shutdown(&self, _: &TtrpcContext, _: ShutdownRequest) -> TtrpcResult<Empty> {
        if self.inner.lock().is_empty() {
            tracing::info!("no container left: shutting down");
            self.inner.exit_signal.signal();
        }
        Ok(Empty::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle_with(namespaces: serde_json::Value) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = serde_json::json!({"linux": {"namespaces": namespaces}});
        std::fs::write(dir.path().join("config.json"), spec.to_string()).expect("write");
        dir
    }

    #[test]
    fn pid_namespace_sharing_is_read_from_the_bundle() {
        let own = bundle_with(serde_json::json!([{"type": "pid"}, {"type": "mount"}]));
        assert!(!shares_pid_namespace(own.path()));
        let pod = bundle_with(serde_json::json!([{"type": "pid", "path": "/proc/42/ns/pid"}]));
        assert!(shares_pid_namespace(pod.path()));
        let host = bundle_with(serde_json::json!([{"type": "mount"}]));
        assert!(shares_pid_namespace(host.path()));
        let none = tempfile::tempdir().expect("tempdir");
        assert!(
            !shares_pid_namespace(none.path()),
            "no spec: leave it alone"
        );
    }
}
