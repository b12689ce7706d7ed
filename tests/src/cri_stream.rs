//! A client of the CRI streaming server (the URLs that Exec and Attach
//! return), speaking WebSocket with the `v4.channel.k8s.io` subprotocol
//! as `kubectl exec` can: every binary message starts with one channel
//! byte (0 stdin, 1 stdout, 2 stderr, 3 error/status JSON, 4 resize).
//!
//! Synchronous (tungstenite over a std TcpStream with a short read
//! timeout), so every read is bounded by a deadline and a hung stream
//! fails the test instead of hanging it.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use tungstenite::client::ClientRequestBuilder;
use tungstenite::http::Uri;
use tungstenite::{Message, WebSocket};

/// The subprotocol: binary channel frames, status JSON on channel 3.
pub const PROTOCOL: &str = "v4.channel.k8s.io";
pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const STATUS: u8 = 3;
pub const RESIZE: u8 = 4;

/// What came back on a stream so far.
#[derive(Debug, Default, Clone)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The metav1.Status sent on channel 3 when the process ended.
    pub status: Option<serde_json::Value>,
    /// The server closed the connection.
    pub closed: bool,
}

impl Output {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// `status` field of the status ("Success", "Failure"), if any came.
    pub fn status_word(&self) -> Option<String> {
        self.status
            .as_ref()
            .and_then(|s| s.get("status"))
            .and_then(|s| s.as_str())
            .map(str::to_string)
    }

    /// `reason` of a failure status ("NonZeroExitCode"...).
    pub fn reason(&self) -> Option<String> {
        self.status
            .as_ref()
            .and_then(|s| s.get("reason"))
            .and_then(|s| s.as_str())
            .map(str::to_string)
    }

    /// The exit code the status tells: 0 for Success, else the message of
    /// the `ExitCode` cause.
    pub fn exit_code(&self) -> Option<i32> {
        let s = self.status.as_ref()?;
        if s.get("status").and_then(|v| v.as_str()) == Some("Success") {
            return Some(0);
        }
        s.pointer("/details/causes")?
            .as_array()?
            .iter()
            .find(|c| c.get("reason").and_then(|r| r.as_str()) == Some("ExitCode"))?
            .get("message")?
            .as_str()?
            .parse()
            .ok()
    }
}

/// One open exec or attach stream.
pub struct Session {
    ws: WebSocket<TcpStream>,
    pub out: Output,
}

impl Session {
    /// Opens `url` (as returned by Exec/Attach: `http://host:port/...`).
    pub fn connect(url: &str) -> Self {
        let rest = url
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("streaming URL is not plain http: {url}"));
        let hostport = rest.split('/').next().unwrap_or(rest);
        let tcp = TcpStream::connect(hostport)
            .unwrap_or_else(|e| panic!("cannot connect to streaming server {hostport}: {e}"));
        // Short reads so that `read_until` can keep its deadline.
        tcp.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        let uri: Uri = format!("ws://{rest}")
            .parse()
            .unwrap_or_else(|e| panic!("bad streaming URL {url}: {e}"));
        let req = ClientRequestBuilder::new(uri).with_sub_protocol(PROTOCOL);
        let (ws, resp) = tungstenite::client(req, tcp)
            .unwrap_or_else(|e| panic!("WebSocket handshake with {url}: {e}"));
        let proto = resp.headers().get("Sec-WebSocket-Protocol");
        assert_eq!(
            proto.and_then(|p| p.to_str().ok()),
            Some(PROTOCOL),
            "server did not agree to {PROTOCOL}"
        );
        Self {
            ws,
            out: Output::default(),
        }
    }

    /// Sends `data` on `channel`.
    pub fn send(&mut self, channel: u8, data: &[u8]) {
        let mut msg = Vec::with_capacity(data.len() + 1);
        msg.push(channel);
        msg.extend_from_slice(data);
        self.ws
            .send(Message::Binary(msg.into()))
            .unwrap_or_else(|e| panic!("send on channel {channel}: {e}"));
    }

    pub fn stdin(&mut self, text: &str) {
        self.send(STDIN, text.as_bytes());
    }

    /// Tells the server the terminal's size (tty streams).
    pub fn resize(&mut self, width: u16, height: u16) {
        let body = serde_json::json!({"Width": width, "Height": height});
        self.send(RESIZE, body.to_string().as_bytes());
    }

    /// Reads until `done(&out)`, the stream closes, or `timeout` passes;
    /// returns whether `done` held.
    pub fn read_until(&mut self, timeout: Duration, done: impl Fn(&Output) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while !done(&self.out) {
            if self.out.closed || Instant::now() >= deadline {
                return false;
            }
            match self.ws.read() {
                Ok(Message::Binary(b)) => self.take(&b),
                Ok(Message::Close(_)) => self.out.closed = true,
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                // EOF or reset: the server is done with us.
                Err(_) => self.out.closed = true,
            }
        }
        true
    }

    /// Reads until the server closes the stream (bounded); returns all.
    pub fn finish(mut self, timeout: Duration) -> Output {
        let closed = self.read_until(timeout, |o| o.closed);
        assert!(
            closed,
            "stream still open after {timeout:?}: {:?}",
            self.out
        );
        self.out
    }

    fn take(&mut self, msg: &[u8]) {
        let Some((&ch, data)) = msg.split_first() else {
            return;
        };
        match ch {
            STDOUT => self.out.stdout.extend_from_slice(data),
            STDERR => self.out.stderr.extend_from_slice(data),
            // The server opens each channel with an empty message.
            STATUS if !data.is_empty() => {
                let v = serde_json::from_slice(data).unwrap_or_else(|e| {
                    panic!(
                        "status is not JSON ({e}): {}",
                        String::from_utf8_lossy(data)
                    )
                });
                self.out.status = Some(v);
            }
            _ => {}
        }
    }
}
