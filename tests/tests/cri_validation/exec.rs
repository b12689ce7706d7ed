//! ExecSync, and streaming Exec and Attach through containerd's streaming
//! server (WebSocket, `pinc_tests::cri_stream`), with and without a tty.

use std::time::Duration;

use k8s_cri::v1::*;
use pinc_tests::cri_compare::{Ctx, Facts, Suite};
use pinc_tests::cri_stream::{Output, Session};
use pinc_tests::daemons::wait_until;

use crate::lifecycle::named;

const STREAM_TIMEOUT: Duration = Duration::from_secs(30);

fn exec_sync(
    c: &mut Ctx,
    id: &str,
    cmd: &[&str],
    timeout: i64,
) -> Result<ExecSyncResponse, tonic::Status> {
    c.d.client.exec_sync(ExecSyncRequest {
        container_id: id.to_string(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        timeout,
    })
}

/// Opens a streaming exec of `cmd`; `tty` excludes stderr, as the kubelet
/// requires.
fn exec_stream(c: &mut Ctx, id: &str, cmd: &[&str], stdin: bool, tty: bool) -> Session {
    let url =
        c.d.client
            .exec(ExecRequest {
                container_id: id.to_string(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                tty,
                stdin,
                stdout: true,
                stderr: !tty,
            })
            .unwrap_or_else(|e| panic!("Exec {cmd:?}: {e}"))
            .url;
    Session::connect(&url)
}

fn attach(c: &mut Ctx, id: &str, tty: bool) -> Session {
    let url =
        c.d.client
            .attach(AttachRequest {
                container_id: id.to_string(),
                stdin: true,
                tty,
                stdout: true,
                stderr: !tty,
            })
            .unwrap_or_else(|e| panic!("Attach {id}: {e}"))
            .url;
    Session::connect(&url)
}

/// A stream's outcome as a fact: status word, reason, exit code.
fn ending(o: &Output) -> String {
    format!("{:?} {:?} {:?}", o.status_word(), o.reason(), o.exit_code())
}

fn has_sleep(c: &mut Ctx, id: &str) -> bool {
    let (_, ps, _) = c.exec(id, &["ps", "-o", "args"]);
    ps.lines().any(|l| l.trim() == "sleep 30")
}

pub fn scenarios(s: &mut Suite) {
    s.compare("exec-sync", exec_sync_scenario);
    s.compare("exec-sync-missing-binary", exec_sync_missing_binary);
    s.compare("exec-stream", exec_stream_scenario);
    s.compare("attach", attach_scenario);
}

fn exec_sync_scenario(c: &mut Ctx<'_>) -> Facts {
    let pod = c.pod(|_| {});
    let id = c.run(&pod, &["sleep", "3600"], |_| {});
    let mut f = Facts::new();
    let (code, out, err) = c.exec(&id, &["sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!((code, out.as_str(), err.as_str()), (3, "out\n", "err\n"));
    f.set("exit3", format!("{code} {out:?} {err:?}"));
    let (code, out, err) = c.exec(&id, &["true"]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    f.set("true", code);
    // The timeout is honoured: containerd kills the process and the
    // call fails (critest expects an error).
    let timed = exec_sync(c, &id, &["sleep", "30"], 2);
    let outcome = match &timed {
        Ok(r) => format!("exit {}", r.exit_code),
        Err(e) => format!("error {:?}", e.code()),
    };
    assert!(
        timed.is_err(),
        "a 2 s timeout on sleep 30 returned {timed:?}"
    );
    f.set("timeout", outcome);
    let gone = wait_until(Duration::from_secs(20), || !has_sleep(c, &id));
    assert!(gone, "the timed-out exec's sleep 30 still runs");
    f.set("timed_out_process_gone", gone);
    f
}

fn exec_sync_missing_binary(c: &mut Ctx<'_>) -> Facts {
    let pod = c.pod(|_| {});
    let id = c.run(&pod, &["sleep", "3600"], |_| {});
    let mut f = Facts::new();
    // A binary that is not there: an error or exit code, not success.
    let missing = match exec_sync(c, &id, &["/no/such/binary"], 30) {
        Ok(r) => format!("exit {}", r.exit_code),
        Err(e) => format!("error {:?}", e.code()),
    };
    assert!(missing != "exit 0", "{missing}");
    f.set("missing_binary", missing);
    // The failed exec leaves the container as it was.
    let (code, _, _) = c.exec(&id, &["true"]);
    assert_eq!(code, 0);
    f.set("container_after", c.status(&id).state);
    f
}

fn exec_stream_scenario(c: &mut Ctx<'_>) -> Facts {
    let pod = c.pod(|_| {});
    let id = c.run(&pod, &["sleep", "3600"], |_| {});
    let mut f = Facts::new();
    // No tty: stdout and stderr apart, a non-zero exit as a Failure
    // status with reason NonZeroExitCode and an ExitCode cause.
    let s = exec_stream(
        c,
        &id,
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
        false,
        false,
    );
    let o = s.finish(STREAM_TIMEOUT);
    assert_eq!(
        (o.stdout().as_str(), o.stderr().as_str()),
        ("out\n", "err\n"),
        "{o:?}"
    );
    assert_eq!(o.status_word().as_deref(), Some("Failure"), "{o:?}");
    assert_eq!(o.reason().as_deref(), Some("NonZeroExitCode"), "{o:?}");
    assert_eq!(o.exit_code(), Some(3), "{o:?}");
    f.set(
        "no_tty",
        format!("{:?} {:?} {}", o.stdout(), o.stderr(), ending(&o)),
    );
    let o = exec_stream(c, &id, &["true"], false, false).finish(STREAM_TIMEOUT);
    assert_eq!(o.status_word().as_deref(), Some("Success"), "{o:?}");
    f.set("success", ending(&o));
    // Stdin reaches the process.
    let mut s = exec_stream(c, &id, &["head", "-n", "1"], true, false);
    s.stdin("hello stdin\n");
    let o = s.finish(STREAM_TIMEOUT);
    assert_eq!(o.stdout(), "hello stdin\n", "{o:?}");
    assert_eq!(o.exit_code(), Some(0), "{o:?}");
    f.set("stdin", format!("{:?} {}", o.stdout(), ending(&o)));
    // A tty: stderr comes through the one stream, lines end in CRLF.
    // The process stays until its output has come (containerd 1.6 can
    // lose a tty exec's output when the process ends at once, with
    // runc too), then reads its stdin to end.
    let mut s = exec_stream(
        c,
        &id,
        &["sh", "-c", "tty; echo err >&2; read x"],
        true,
        true,
    );
    let came = s.read_until(STREAM_TIMEOUT, |o| o.stdout().contains("\r\nerr\r\n"));
    s.stdin("\n");
    let o = s.finish(STREAM_TIMEOUT);
    // The tty echoes the newline sent to `read`.
    let text = o.stdout();
    assert!(
        came && text.starts_with("/dev/pts/") && text.contains("\r\nerr\r\n"),
        "{o:?}"
    );
    assert!(o.stderr.is_empty(), "{o:?}");
    assert_eq!(o.exit_code(), Some(0), "{o:?}");
    f.set(
        "tty",
        format!(
            "{:?} {}",
            text.replace(|ch: char| ch.is_ascii_digit(), "N"),
            ending(&o)
        ),
    );
    // An interactive shell on a tty, resized: `stty size` follows the
    // resize message (applied asynchronously, so asked until it shows).
    let mut s = exec_stream(c, &id, &["sh"], true, true);
    s.resize(111, 33);
    let mut seen = false;
    for _ in 0..20 {
        s.stdin("stty size\n");
        if s.read_until(Duration::from_millis(500), |o| {
            o.stdout().contains("33 111")
        }) {
            seen = true;
            break;
        }
    }
    assert!(seen, "stty size never showed the resize: {:?}", s.out);
    s.stdin("exit 4\n");
    let o = s.finish(STREAM_TIMEOUT);
    assert_eq!(o.exit_code(), Some(4), "{o:?}");
    f.set("tty_resize", seen);
    f.set("tty_exit", ending(&o));
    f
}

fn attach_scenario(c: &mut Ctx<'_>) -> Facts {
    let pod = c.pod(|_| {});
    let mut f = Facts::new();
    // An interactive shell on the container's tty.
    let tty = c.run(&pod, &["sh"], |m| {
        named("tty")(m);
        m.stdin = true;
        m.tty = true;
    });
    let mut s = attach(c, &tty, true);
    s.stdin("echo hi-$((1+2))\n");
    let hi = s.read_until(STREAM_TIMEOUT, |o| o.stdout().contains("hi-3\r\n"));
    assert!(hi, "no echo through the attached tty: {:?}", s.out);
    s.stdin("tty\n");
    let pts = s.read_until(STREAM_TIMEOUT, |o| o.stdout().contains("/dev/pts/"));
    assert!(pts, "tty did not name a pty: {:?}", s.out);
    assert!(s.out.stderr.is_empty(), "{:?}", s.out);
    s.stdin("exit 4\n");
    let o = s.finish(STREAM_TIMEOUT);
    let st = c.wait_exited(&tty, STREAM_TIMEOUT);
    assert_eq!(st.exit_code, 4, "{st:?}");
    f.set("tty", format!("{hi} {pts} exit {}", st.exit_code));
    f.set("tty_stream_end", ending(&o));
    // No tty: a shell reading stdin, its stdout and stderr apart.
    let plain = c.run(&pod, &["sh"], |m| {
        named("plain")(m);
        m.stdin = true;
    });
    let mut s = attach(c, &plain, false);
    s.stdin("echo out; echo err >&2\n");
    let both = s.read_until(STREAM_TIMEOUT, |o| {
        o.stdout() == "out\n" && o.stderr() == "err\n"
    });
    assert!(both, "attached stdout/stderr: {:?}", s.out);
    s.stdin("exit 5\n");
    let o = s.finish(STREAM_TIMEOUT);
    let st = c.wait_exited(&plain, STREAM_TIMEOUT);
    assert_eq!(st.exit_code, 5, "{st:?}");
    f.set(
        "plain",
        format!("{:?} {:?} exit {}", o.stdout(), o.stderr(), st.exit_code),
    );
    f.set("plain_stream_end", ending(&o));
    f
}
