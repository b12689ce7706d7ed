//! Logging as runc does it: `--log FILE` with `--log-format text|json`, where
//! json is one `{"level","msg","time"}` object per line (containerd and podman
//! read the last error from it). Without `--log`, only pinc's own warnings
//! reach stderr, so a failure prints exactly one error line.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

use pinc_core::ErrorKind;

use crate::cli::LogFormat;

enum Sink {
    File(Mutex<File>),
    Stderr,
}

struct RuncLayer {
    sink: Sink,
    json: bool,
    max: Level,
    /// Without a log file, keep stderr for pinc's own messages.
    pinc_only: bool,
}

#[derive(Default)]
struct Message {
    msg: String,
    fields: String,
}

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.msg, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

impl RuncLayer {
    fn write_line(&self, level: &Level, msg: &str) {
        let line = if self.json {
            format!(
                "{}\n",
                serde_json::json!({"level": level_name(level), "msg": msg, "time": now()})
            )
        } else {
            match self.sink {
                Sink::File(_) => format!(
                    "time=\"{}\" level={} msg={msg:?}\n",
                    now(),
                    level_name(level)
                ),
                Sink::Stderr => format!("pinc: {}: {msg}\n", level_name(level)),
            }
        };
        match &self.sink {
            Sink::File(file) => {
                if let Ok(mut f) = file.lock() {
                    let _ = f.write_all(line.as_bytes());
                }
            }
            Sink::Stderr => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
        }
    }
}

impl<S: Subscriber> Layer<S> for RuncLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() > self.max {
            return;
        }
        if self.pinc_only && !meta.target().starts_with("pinc") {
            return;
        }
        let mut m = Message::default();
        event.record(&mut m);
        let msg = if self.max >= Level::DEBUG {
            format!("{}{}", m.msg, m.fields)
        } else {
            m.msg
        };
        self.write_line(meta.level(), &msg);
    }
}

/// The configured logger; also used for the final error line.
pub struct Logger {
    layer_json: bool,
    file: Option<Mutex<File>>,
}

impl Logger {
    /// Records the error that ends the command in the log file (stderr gets
    /// it from `main`), with its kind: callers such as pinc's shim act on
    /// the kind, never on the message.
    pub fn error(&self, msg: &str, kind: ErrorKind) {
        if let Some(file) = &self.file {
            let line = if self.layer_json {
                format!(
                    "{}\n",
                    serde_json::Value::Object(serde_json::Map::from_iter([
                        ("level".to_string(), "error".into()),
                        ("msg".to_string(), msg.into()),
                        (pinc_errkind::LOG_KEY.to_string(), kind.as_str().into()),
                        ("time".to_string(), now().into()),
                    ]))
                )
            } else {
                format!(
                    "time=\"{}\" level=error msg={msg:?} {}={kind}\n",
                    now(),
                    pinc_errkind::LOG_KEY
                )
            };
            if let Ok(mut f) = file.lock() {
                let _ = f.write_all(line.as_bytes());
            }
        }
    }
}

fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Installs the global subscriber.
pub fn init(log: Option<&Path>, format: LogFormat, debug: bool) -> anyhow::Result<Logger> {
    let json = format == LogFormat::Json;
    let file = log
        .map(|p| open(p).map_err(|e| anyhow::anyhow!("cannot open log file {}: {e}", p.display())))
        .transpose()?;
    let (sink, max, pinc_only) = match &file {
        Some(f) => (
            Sink::File(Mutex::new(f.try_clone()?)),
            if debug { Level::DEBUG } else { Level::INFO },
            false,
        ),
        None if debug => (Sink::Stderr, Level::DEBUG, false),
        None => (Sink::Stderr, Level::WARN, true),
    };
    let layer = RuncLayer {
        sink,
        json: json && file.is_some(),
        max,
        pinc_only,
    };
    tracing_subscriber::registry().with(layer).init();
    Ok(Logger {
        layer_json: json,
        file: file.map(Mutex::new),
    })
}
