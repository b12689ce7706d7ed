//! ctr with a terminal: a pty this test owns is ctr's stdin, stdout and
//! stderr, so `ctr run -t` forwards its size (at start and on SIGWINCH)
//! through the shim's ResizePty.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use nix::pty::{openpty, Winsize};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn size(rows: u16, cols: u16) -> Winsize {
    Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

pub struct OnPty {
    child: Child,
    master: OwnedFd,
    output: Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl OnPty {
    /// Spawns `cmd` with a fresh pty of `rows` x `cols` as its stdio.
    pub fn spawn(cmd: &mut Command, rows: u16, cols: u16) -> Self {
        let pty = openpty(Some(&size(rows, cols)), None).expect("openpty");
        let slave = File::from(pty.slave);
        let child = cmd
            .stdin(Stdio::from(slave.try_clone().expect("dup")))
            .stdout(Stdio::from(slave.try_clone().expect("dup")))
            .stderr(Stdio::from(slave))
            .spawn()
            .expect("spawn on the pty");
        let mut reader = File::from(pty.master.try_clone().expect("dup master"));
        let (tx, output) = channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once the last slave fd closed (ctr exited).
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            master: pty.master,
            output,
            seen: Vec::new(),
        }
    }

    /// Sets the terminal's size and tells ctr (its SIGWINCH handler resizes
    /// the task's terminal).
    pub fn resize(&self, rows: u16, cols: u16) {
        let ws = size(rows, cols);
        // SAFETY: TIOCSWINSZ reads one Winsize from the pointer, which lives
        // for the call; the fd is a pty master this struct owns.
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        assert_eq!(rc, 0, "TIOCSWINSZ: {}", std::io::Error::last_os_error());
        let pid = i32::try_from(self.child.id()).expect("pid");
        kill(Pid::from_raw(pid), Signal::SIGWINCH).expect("SIGWINCH to ctr");
    }

    /// Waits (bounded) until the output holds `needle`.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if String::from_utf8_lossy(&self.seen).contains(needle) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(bytes) => self.seen.extend(bytes),
                Err(_) => return false,
            }
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }

    /// Waits (bounded) for ctr to end; kills it past the bound.
    pub fn finish(mut self, timeout: Duration) -> Output {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(st) = self.child.try_wait().expect("wait ctr") {
                break st;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                break self.child.wait().expect("wait ctr");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        while let Ok(bytes) = self.output.recv_timeout(Duration::from_millis(200)) {
            self.seen.extend(bytes);
        }
        Output {
            status,
            stdout: self.seen,
            stderr: Vec::new(),
        }
    }
}
