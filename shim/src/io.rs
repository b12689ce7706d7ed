//! A process's stdio: containerd hands the shim fifo paths; the container
//! gets pipes (or a pty) and threads copy between them and the fifos.
//!
//! Copying (rather than giving the container the fifos) keeps stdin's EOF
//! and CloseIO under the shim's control, and a vanished reader cannot block
//! or kill the container: output is drained and dropped.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::errors::{Error, Result};
use crate::runtime::ProcessStdio;

/// The fifo paths of a Create or Exec request ("" = none).
#[derive(Debug, Clone, Default)]
pub struct Fifos {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// The shim's side of a running process's stdio.
#[derive(Default)]
pub struct ProcessIo {
    /// Where stdin data goes (pipe write end, or the pty master); None once closed.
    stdin: Arc<Mutex<Option<File>>>,
    /// The pty master, kept for ResizePty.
    pub console: Option<File>,
    /// One message per output copier when it finished.
    done: Option<Receiver<()>>,
    copiers: usize,
}

fn pipe() -> Result<(File, File)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(Error::sys("pipe2"))?;
    Ok((File::from(r), File::from(w)))
}

impl ProcessIo {
    /// Pipes for a process without a terminal: returns what pinc hands the
    /// container, and starts the copiers.
    pub fn pipes(fifos: &Fifos) -> Result<(ProcessStdio, Self)> {
        let mut stdio = ProcessStdio::default();
        let mut io = Self::default();
        let (tx, rx) = channel();
        if !fifos.stdin.is_empty() {
            let (r, w) = pipe()?;
            stdio.stdin = Some(r);
            io.stdin = Arc::new(Mutex::new(Some(w)));
            copy_in(fifos.stdin.clone(), io.stdin.clone())?;
        }
        for (path, slot) in [
            (&fifos.stdout, &mut stdio.stdout),
            (&fifos.stderr, &mut stdio.stderr),
        ] {
            if path.is_empty() {
                continue;
            }
            let (r, w) = pipe()?;
            *slot = Some(w);
            copy_out(r, PathBuf::from(path), tx.clone())?;
            io.copiers += 1;
        }
        io.done = Some(rx);
        Ok((stdio, io))
    }

    /// A terminal: copies between the pty master and the fifos.
    pub fn console(master: File, fifos: &Fifos) -> Result<Self> {
        let (tx, rx) = channel();
        let mut io = Self::default();
        if !fifos.stdin.is_empty() {
            let w = master
                .try_clone()
                .map_err(Error::io("failed to dup", "the pty master"))?;
            io.stdin = Arc::new(Mutex::new(Some(w)));
            copy_in(fifos.stdin.clone(), io.stdin.clone())?;
        }
        if !fifos.stdout.is_empty() {
            let r = master
                .try_clone()
                .map_err(Error::io("failed to dup", "the pty master"))?;
            copy_out(r, PathBuf::from(&fifos.stdout), tx)?;
            io.copiers = 1;
        }
        io.console = Some(master);
        io.done = Some(rx);
        Ok(io)
    }

    /// CloseIO: the process sees EOF on stdin (no terminal) once the
    /// copier lets go.
    pub fn close_stdin(&self) {
        let mut w = self.stdin.lock().unwrap_or_else(|p| p.into_inner());
        *w = None;
    }

    /// Waits (bounded) until the output copiers drained the process's
    /// output, so the exit event follows the last byte.
    pub fn wait_output(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        if let Some(rx) = &self.done {
            while self.copiers > 0 {
                let left = deadline.saturating_duration_since(Instant::now());
                if rx.recv_timeout(left).is_err() {
                    tracing::warn!("output of an exited process still open after {timeout:?}");
                    break;
                }
                self.copiers -= 1;
            }
        }
        self.close_stdin();
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<()> {
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(64 * 1024)
        .spawn(f)
        .map(drop)
        .map_err(Error::io("failed to start thread", name))
}

/// fifo → process stdin, until EOF on the fifo or CloseIO.
fn copy_in(fifo: String, dest: Arc<Mutex<Option<File>>>) -> Result<()> {
    spawn("stdin", move || {
        // Blocks until containerd's client opens the write side.
        let mut src = match File::open(&fifo) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!("stdin fifo {fifo}: {e}");
                return;
            }
        };
        let mut buf = [0u8; 8192];
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut guard = dest.lock().unwrap_or_else(|p| p.into_inner());
            let Some(w) = guard.as_mut() else { return };
            if w.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        // EOF from the client: the process's stdin reaches EOF too. A pty
        // master is shared with the output copier: keep it.
        let mut guard = dest.lock().unwrap_or_else(|p| p.into_inner());
        *guard = None;
    })
}

/// process output → fifo; drains and drops output when the fifo's reader left.
fn copy_out(mut src: File, fifo: PathBuf, done: Sender<()>) -> Result<()> {
    spawn("output", move || {
        let mut dest = OpenOptions::new().write(true).open(&fifo).ok();
        let mut buf = [0u8; 8192];
        loop {
            // EIO from a pty master means the terminal's last user closed it.
            let n = match src.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Some(d) = dest.as_mut() {
                if d.write_all(&buf[..n]).is_err() {
                    dest = None;
                }
            }
        }
        let _ = done.send(());
    })
}
