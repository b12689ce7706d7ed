//! The console socket: `pinc create/exec --console-socket S` sends the pty
//! master over S (SCM_RIGHTS); ResizePty sets the master's window size.

use std::fs::File;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

use crate::errors::{Error, Result};

/// A listening console socket in a private temporary folder.
pub struct ConsoleSocket {
    dir: PathBuf,
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    pub fn new() -> Result<Self> {
        // Short path: sun_path holds 108 bytes.
        let base = std::env::temp_dir();
        let mut n = 0u32;
        let dir = loop {
            let d = base.join(format!("pinc-pty{}-{n}", std::process::id()));
            match std::fs::create_dir(&d) {
                Ok(()) => break d,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 10_000 => n += 1,
                Err(e) => return Err(Error::io("failed to create", d)(e)),
            }
        };
        let path = dir.join("pty.sock");
        let listener = UnixListener::bind(&path).map_err(Error::io("failed to bind", &path))?;
        Ok(Self {
            dir,
            path,
            listener,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pty master pinc sent (call after pinc returned successfully).
    pub fn receive(&self) -> Result<File> {
        self.listener
            .set_nonblocking(true)
            .map_err(Error::io("failed to configure", &self.path))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let stream = loop {
            match self.listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() > deadline {
                        return Err(Error::io("no connection on", &self.path)(e));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(Error::io("failed to accept on", &self.path)(e)),
            }
        };
        stream
            .set_nonblocking(false)
            .map_err(Error::io("failed to configure", &self.path))?;
        let mut buf = [0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(Error::sys("failed to receive the pty master"))?;
        for cmsg in msg.cmsgs().map_err(Error::sys("bad control message"))? {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                if let Some(&fd) = fds.first() {
                    // SAFETY: the kernel just installed `fd` in this process
                    // (SCM_RIGHTS); nothing else owns it.
                    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                    for &extra in &fds[1..] {
                        // SAFETY: likewise freshly received and unowned.
                        drop(unsafe { OwnedFd::from_raw_fd(extra) });
                    }
                    return Ok(File::from(owned));
                }
            }
        }
        Err(Error::InvalidArgument(
            "the console socket message carried no file descriptor".into(),
        ))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// ResizePty: TIOCSWINSZ on the master.
pub fn resize(master: &File, width: u32, height: u32) -> Result<()> {
    let ws = libc::winsize {
        ws_row: u16::try_from(height).unwrap_or(u16::MAX),
        ws_col: u16::try_from(width).unwrap_or(u16::MAX),
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer, which is valid
    // for the call; the fd is an open pty master owned by `master`.
    let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if rc < 0 {
        return Err(Error::io("failed to resize", "the pty")(
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}
