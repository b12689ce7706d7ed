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
    /// Dropping it (with the ProcessIo) ends the output copiers that still
    /// run: a process's children may hold its output open forever.
    _cancel: Option<File>,
}

fn dup(f: &File) -> Result<File> {
    f.try_clone().map_err(Error::io("failed to dup", "a pipe"))
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
        let (cancel, cancel_w) = pipe()?;
        io._cancel = Some(cancel_w);
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
            copy_out(r, PathBuf::from(path), tx.clone(), dup(&cancel)?)?;
            io.copiers += 1;
        }
        io.done = Some(rx);
        Ok((stdio, io))
    }

    /// A terminal: copies between the pty master and the fifos.
    pub fn console(master: File, fifos: &Fifos) -> Result<Self> {
        let (tx, rx) = channel();
        let mut io = Self::default();
        let (cancel, cancel_w) = pipe()?;
        io._cancel = Some(cancel_w);
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
            copy_out(r, PathBuf::from(&fifos.stdout), tx, cancel)?;
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
    /// output, then ends the copiers still running and closes stdin: the
    /// client's fifos reach EOF even if a child of the process still holds
    /// the output (containerd's runc shim bounds this wait at delete too).
    pub fn finish(mut self, timeout: Duration) {
        self.wait_output(timeout);
    }

    fn wait_output(&mut self, timeout: Duration) {
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

/// Blocks until `src` can be read (data, EOF or an error) or `cancel`
/// became readable (its write end closed); true for `src`.
fn readable(src: &File, cancel: &File) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    loop {
        let mut fds = [
            PollFd::new(src.as_fd(), PollFlags::POLLIN),
            PollFd::new(cancel.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return true,
            Ok(_) => {
                let cancelled = fds[1].revents().is_some_and(|r| !r.is_empty());
                return !cancelled;
            }
        }
    }
}

/// process output → fifo; drains and drops output when the fifo's reader
/// left; stops when `cancel`'s write end closes.
fn copy_out(mut src: File, fifo: PathBuf, done: Sender<()>, cancel: File) -> Result<()> {
    spawn("output", move || {
        let mut dest = OpenOptions::new().write(true).open(&fifo).ok();
        let mut buf = [0u8; 8192];
        loop {
            if !readable(&src, &cancel) {
                break;
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::OpenOptionsExt;

    /// A child of the process that keeps the output open must not keep the
    /// client's fifo open past `finish`.
    #[test]
    fn finish_ends_a_copier_whose_output_stays_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("stdout");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        // The client's end, opened first so the copier's open does not block.
        let mut client = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .expect("open the fifo");
        let fifos = Fifos {
            stdout: fifo.to_string_lossy().into_owned(),
            ..Default::default()
        };
        let (mut stdio, io) = ProcessIo::pipes(&fifos).expect("pipes");
        let mut held = stdio.stdout.take().expect("the process's stdout");
        held.write_all(b"last words\n").expect("write");
        use std::os::fd::AsRawFd;
        nix::fcntl::fcntl(
            client.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
        )
        .expect("blocking reads");
        // Until the copier opened its end, reads see EOF: retry those.
        let mut line = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while line.len() < 11 && Instant::now() < deadline {
            let mut buf = [0u8; 11];
            match client
                .read(&mut buf[..11 - line.len()])
                .expect("read the fifo")
            {
                0 => std::thread::sleep(Duration::from_millis(10)),
                n => line.extend_from_slice(&buf[..n]),
            }
        }
        assert_eq!(line, b"last words\n");
        io.finish(Duration::from_millis(200));
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut rest = Vec::new();
            let _ = tx.send(client.read_to_end(&mut rest).map(|_| rest));
        });
        let rest = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the fifo never reached EOF")
            .expect("read the fifo");
        assert!(rest.is_empty(), "{rest:?}");
        drop(held);
    }
}
