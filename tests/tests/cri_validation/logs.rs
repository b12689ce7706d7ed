//! The container log file the kubelet reads (pod log_directory + the
//! container's log_path): CRI format `<time> <stream> <tag> <text>`, and
//! ReopenContainerLog after rotation.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_cri::v1::*;
use pinc_tests::cri_compare::{Ctx, Facts, Suite};
use pinc_tests::daemons::wait_until;

use crate::lifecycle::named;

/// One parsed CRI log line.
#[derive(Debug)]
struct Line {
    time: String,
    stream: String,
    tag: String,
    text: String,
}

fn parse(path: &Path) -> Vec<Line> {
    let body = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    body.lines()
        .map(|l| {
            let mut parts = l.splitn(4, ' ');
            let mut next = || parts.next().unwrap_or_default().to_string();
            Line {
                time: next(),
                stream: next(),
                tag: next(),
                text: next(),
            }
        })
        .collect()
}

/// RFC 3339 with nanoseconds, as containerd writes it (no chrono here:
/// the shape is what the kubelet's parser needs).
fn is_rfc3339(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() > 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && (t.ends_with('Z') || t[19..].contains('+') || t[19..].contains('-'))
}

/// A pod whose container logs go to a directory of this run.
fn logging_pod(c: &mut Ctx) -> ((String, PodSandboxConfig), PathBuf) {
    let dir =
        c.d.work_dir()
            .join(format!("logs-{}-{}", c.handler, std::process::id()));
    std::fs::create_dir_all(&dir).expect("log dir");
    let d = dir.to_string_lossy().into_owned();
    (c.pod(move |p| p.log_directory = d), dir)
}

fn with_log(name: &'static str, stdin_tty: bool) -> impl FnOnce(&mut ContainerConfig) {
    move |m| {
        named(name)(m);
        m.log_path = format!("{name}.log");
        m.tty = stdin_tty;
    }
}

pub fn scenarios(s: &mut Suite) {
    s.compare("log-format", log_format);
    s.compare("reopen-log", reopen_log);
}

fn log_format(c: &mut Ctx<'_>) -> Facts {
    let (pod, dir) = logging_pod(c);
    let mut f = Facts::new();
    let id = c.run(
        &pod,
        &[
            "sh",
            "-c",
            "echo out1; echo err1 >&2; echo out2; printf tail",
        ],
        with_log("plain", false),
    );
    c.wait_exited(&id, Duration::from_secs(30));
    let st = c.status(&id);
    assert_eq!(Path::new(&st.log_path), dir.join("plain.log"), "{st:?}");
    let lines = parse(&dir.join("plain.log"));
    for l in &lines {
        assert!(is_rfc3339(&l.time), "{l:?}");
        assert!(l.tag == "F" || l.tag == "P", "{l:?}");
    }
    let of = |stream: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l.stream == stream)
            .map(|l| format!("{} {}", l.tag, l.text))
            .collect()
    };
    let (out, err) = (of("stdout"), of("stderr"));
    assert_eq!(&out[..2], ["F out1", "F out2"], "{lines:?}");
    assert_eq!(err, ["F err1"], "{lines:?}");
    assert_eq!(out.len(), 3, "{lines:?}");
    assert!(out[2].ends_with(" tail"), "{lines:?}");
    f.set("stdout", out.join("|"));
    f.set("stderr", err.join("|"));
    // A tty: one stream (stdout), whatever the process wrote.
    let tty = c.run(
        &pod,
        &["sh", "-c", "echo tty-out; echo tty-err >&2"],
        with_log("tty", true),
    );
    c.wait_exited(&tty, Duration::from_secs(30));
    let lines = parse(&dir.join("tty.log"));
    let streams: Vec<&str> = lines.iter().map(|l| l.stream.as_str()).collect();
    let text: Vec<&str> = lines
        .iter()
        .map(|l| l.text.trim_end_matches('\r'))
        .collect();
    assert!(streams.iter().all(|s| *s == "stdout"), "{lines:?}");
    assert_eq!(text, ["tty-out", "tty-err"], "{lines:?}");
    f.set(
        "tty",
        format!(
            "{streams:?} {:?}",
            lines.iter().map(|l| &l.text).collect::<Vec<_>>()
        ),
    );
    f
}

fn reopen_log(c: &mut Ctx<'_>) -> Facts {
    let (pod, dir) = logging_pod(c);
    let id = c.run(
        &pod,
        &[
            "sh",
            "-c",
            "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.1; done",
        ],
        with_log("loop", false),
    );
    let log = dir.join("loop.log");
    let has_lines = |p: &Path| {
        std::fs::read_to_string(p)
            .map(|s| s.contains(" stdout F line"))
            .unwrap_or(false)
    };
    assert!(
        wait_until(Duration::from_secs(20), || has_lines(&log)),
        "no lines in {}",
        log.display()
    );
    // Rotation, as the kubelet does it: rename, then reopen.
    let rotated = dir.join("loop.log.1");
    std::fs::rename(&log, &rotated).expect("rename log");
    c.d.client
        .reopen_container_log(ReopenContainerLogRequest {
            container_id: id.clone(),
        })
        .unwrap_or_else(|e| panic!("ReopenContainerLog: {e}"));
    let fresh = wait_until(Duration::from_secs(20), || has_lines(&log));
    assert!(fresh, "no new lines in {} after the reopen", log.display());
    let old = parse(&rotated);
    let new = parse(&log);
    assert!(old
        .iter()
        .all(|l| l.stream == "stdout" && l.text.starts_with("line")));
    assert!(new
        .iter()
        .all(|l| l.stream == "stdout" && l.text.starts_with("line")));
    // The new file takes over where the old one ended.
    let n = |l: &Line| {
        l.text
            .trim_start_matches("line")
            .parse::<u64>()
            .unwrap_or(u64::MAX)
    };
    let (last_old, first_new) = (old.last().map(n), new.first().map(n));
    assert!(
        last_old < first_new,
        "old ends {last_old:?}, new starts {first_new:?}"
    );
    // Reopening an exited container's log is an error.
    c.d.client
        .stop_container(StopContainerRequest {
            container_id: id.clone(),
            timeout: 10,
        })
        .expect("StopContainer");
    let after = c.d.client.reopen_container_log(ReopenContainerLogRequest {
        container_id: id.clone(),
    });
    assert!(
        after.is_err(),
        "ReopenContainerLog of a stopped container: {after:?}"
    );
    Facts::new()
        .with("reopened", fresh)
        .with("continues", last_old < first_new)
        .with(
            "stopped_reopen",
            format!("{:?}", after.err().map(|e| e.code())),
        )
}
