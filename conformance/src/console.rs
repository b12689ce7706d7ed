//! The receiving end of `--console-socket`: the runtime connects to a unix
//! socket and sends the pty master as SCM_RIGHTS ancillary data.

use std::fs;
use std::io::{IoSliceMut, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

pub struct ConsoleSocket {
    listener: UnixListener,
    pub path: PathBuf,
}

impl ConsoleSocket {
    pub fn bind(path: &Path) -> Result<ConsoleSocket, String> {
        let listener =
            UnixListener::bind(path).map_err(|e| format!("binding {}: {e}", path.display()))?;
        // The runtime connects while `create`/`exec` runs, before we call
        // accept: the connection waits in the backlog. Non-blocking so a
        // runtime that never connects fails the case instead of hanging.
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("console socket: {e}"))?;
        Ok(ConsoleSocket {
            listener,
            path: path.to_path_buf(),
        })
    }

    /// Takes the one pending connection and the descriptor it carries.
    pub fn receive(&self) -> Result<OwnedFd, String> {
        let (stream, _) = self
            .listener
            .accept()
            .map_err(|e| format!("the runtime never connected to the console socket: {e}"))?;
        stream
            .set_nonblocking(false)
            .map_err(|e| format!("console stream: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| format!("console stream: {e}"))?;
        let mut buf = [0u8; 256];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 4]);
        let msg = recvmsg::<nix::sys::socket::UnixAddr>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(|e| format!("recvmsg on the console socket: {e}"))?;
        let mut fds = Vec::new();
        for c in msg.cmsgs().map_err(|e| format!("control messages: {e}"))? {
            if let ControlMessageOwned::ScmRights(v) = c {
                fds.extend(v);
            }
        }
        let mut owned: Vec<OwnedFd> = fds
            .into_iter()
            // SAFETY: the kernel installed these descriptors in our table
            // for this message; nothing else refers to them yet, so each
            // gets exactly one owner here.
            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
            .collect();
        if owned.len() != 1 {
            return Err(format!("expected one descriptor, got {}", owned.len()));
        }
        owned.pop().ok_or_else(|| "no descriptor".to_string())
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// What the descriptor refers to, per /proc/self/fd.
pub fn fd_target(fd: &OwnedFd) -> String {
    fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Reads the pty master until `want` shows up or the other side closes
/// (EIO once every slave is closed). A reader thread does the blocking
/// reads; it ends when the container's side closes, at the latest when the
/// case's guard deletes the container.
pub fn read_until(master: OwnedFd, want: &str) -> String {
    let mut f = fs::File::from(master);
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        while let Ok(n) = f.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut out = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !out.contains(want) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => out.push_str(&String::from_utf8_lossy(&chunk)),
            Err(_) => break,
        }
    }
    out
}
