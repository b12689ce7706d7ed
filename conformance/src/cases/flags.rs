//! The flags callers rely on: --pid-file, --console-socket, --preserve-fds,
//! run --detach, and the exit codes of run and exec.

use std::fs;
use std::os::fd::AsRawFd;

use serde_json::{json, Value};

use super::lifecycle::{create, err, make, running, start, state_pid, R};
use super::{ensure, never, LifeCase};
use crate::bundle::PROBE_IN_CONTAINER;
use crate::console::{fd_target, read_until, ConsoleSocket};
use crate::runtime::{pass_as_fd3, Harness};

fn pid_file(h: &Harness) -> R {
    let m = make(h, &["sleep", "1000"], |_| {})?;
    let p = m.bundle.dir.join("init.pid");
    create(h, &m, &["--pid-file", &p.display().to_string()])?;
    let text = err(fs::read_to_string(&p))?;
    let want = state_pid(h, &m.id)?;
    ensure(text.trim() == want.to_string(), || {
        format!("pid file says {text:?}, state pid {want}")
    })
}

fn exec_pid_file(h: &Harness) -> R {
    let m = running(h)?;
    let pidf = m.bundle.dir.join("exec.pid");
    let pf = pidf.display().to_string();
    let r = err(h.run_detached(
        h.cmd(&[
            "exec",
            "--detach",
            "--pid-file",
            &pf,
            &m.id,
            "sleep",
            "1000",
        ]),
        &m.bundle.dir,
        "exec",
    ))?;
    ensure(r.ok(), || format!("exec --detach: {}", r.why()))?;
    let epid = err(fs::read_to_string(&pidf))?;
    let epid = epid.trim();
    let init = state_pid(h, &m.id)?;
    let ns = |p: &str| fs::read_link(format!("/proc/{p}/ns/pid")).ok();
    ensure(
        ns(epid).is_some() && ns(epid) == ns(&init.to_string()),
        || format!("exec pid {epid} is not in the container's pid namespace"),
    )
}

fn run_exit_code(h: &Harness) -> R {
    let m = make(h, &["sh", "-c", "exit 7"], |_| {})?;
    let b = m.bundle.dir.display().to_string();
    let r = err(h.rt(&["run", "--bundle", &b, &m.id]))?;
    ensure(r.code == Some(7), || {
        format!("run returned {:?}, the process exited 7", r.code)
    })
}

fn run_detach(h: &Harness) -> R {
    let m = make(h, &["sleep", "1000"], |_| {})?;
    let b = m.bundle.dir.display().to_string();
    let r = err(h.run_detached(
        h.cmd(&["run", "--detach", "--bundle", &b, &m.id]),
        &m.bundle.dir,
        "run",
    ))?;
    ensure(r.ok(), || format!("run --detach: {}", r.why()))?;
    ensure(h.status(&m.id)? == "running", || {
        "not running after run --detach".into()
    })
}

fn exec_exit_code(h: &Harness) -> R {
    let m = running(h)?;
    let r = err(h.rt(&["exec", &m.id, "sh", "-c", "exit 5"]))?;
    ensure(r.code == Some(5), || {
        format!("exec returned {:?}, the process exited 5", r.code)
    })
}

fn exec_stopped(h: &Harness) -> R {
    let m = make(h, &["true"], |_| {})?;
    create(h, &m, &[])?;
    start(h, &m.id)?;
    h.wait_status(&m.id, "stopped")?;
    let r = err(h.rt(&["exec", &m.id, "true"]))?;
    ensure(!r.ok(), || "exec into a stopped container succeeded".into())
}

fn console_socket(h: &Harness) -> R {
    let script = "tty; test -c /dev/console && echo console-ok";
    let m = make(h, &["sh", "-c", script], |c| {
        c["process"]["terminal"] = json!(true)
    })?;
    let sock = ConsoleSocket::bind(&m.bundle.dir.join("console.sock"))?;
    create(
        h,
        &m,
        &["--console-socket", &sock.path.display().to_string()],
    )?;
    let master = sock.receive()?;
    let t = fd_target(&master);
    ensure(t.ends_with("ptmx"), || {
        format!("received fd is {t:?}, not a pty master")
    })?;
    start(h, &m.id)?;
    let out = read_until(master, "console-ok");
    ensure(
        out.contains("/dev/pts/") && out.contains("console-ok"),
        || format!("terminal output {out:?}: want a /dev/pts tty and /dev/console"),
    )
}

fn exec_console_socket(h: &Harness) -> R {
    let m = running(h)?;
    let sock = ConsoleSocket::bind(&m.bundle.dir.join("exec.sock"))?;
    let s = sock.path.display().to_string();
    let r = err(h.run_detached(
        h.cmd(&[
            "exec",
            "--detach",
            "--tty",
            "--console-socket",
            &s,
            &m.id,
            "sh",
            "-c",
            "tty; echo exec-ok",
        ]),
        &m.bundle.dir,
        "exec",
    ))?;
    ensure(r.ok(), || {
        format!("exec --tty --console-socket: {}", r.why())
    })?;
    let master = sock.receive()?;
    let out = read_until(master, "exec-ok");
    ensure(out.contains("/dev/pts/") && out.contains("exec-ok"), || {
        format!("exec terminal output {out:?}")
    })
}

fn fd3_seen(stdout: &str, marker: &str) -> R {
    let report: Value = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| format!("no probe report in {stdout:?}"))?;
    let fds = report["fds"].as_array().cloned().unwrap_or_default();
    let fd3 = fds.iter().find(|f| f["fd"] == 3);
    ensure(
        fd3.is_some_and(|f| f["target"].as_str().is_some_and(|t| t.contains(marker))),
        || format!("fd 3 is not the preserved file: {fds:?}"),
    )
}

fn preserve_fds(h: &Harness) -> R {
    let m = make(h, &[PROBE_IN_CONTAINER], |_| {})?;
    let file = err(fs::File::create(m.bundle.dir.join("preserved-marker")))?;
    let b = m.bundle.dir.display().to_string();
    let mut cmd = h.cmd(&["run", "--preserve-fds", "1", "--bundle", &b, &m.id]);
    pass_as_fd3(&mut cmd, file.as_raw_fd());
    let r = err(h.run(cmd))?;
    ensure(r.ok(), || format!("run --preserve-fds 1: {}", r.why()))?;
    fd3_seen(&r.stdout, "preserved-marker")
}

fn exec_preserve_fds(h: &Harness) -> R {
    let m = running(h)?;
    let file = err(fs::File::create(m.bundle.dir.join("exec-preserved-marker")))?;
    let mut cmd = h.cmd(&["exec", "--preserve-fds", "1", &m.id, PROBE_IN_CONTAINER]);
    pass_as_fd3(&mut cmd, file.as_raw_fd());
    let r = err(h.run(cmd))?;
    ensure(r.ok(), || format!("exec --preserve-fds 1: {}", r.why()))?;
    fd3_seen(&r.stdout, "exec-preserved-marker")
}

pub fn cases() -> Vec<LifeCase> {
    let c = |name, run| LifeCase {
        name,
        skip: never,
        run,
    };
    vec![
        c("pid-file", pid_file),
        c("exec-pid-file", exec_pid_file),
        c("run-exit-code", run_exit_code),
        c("run-detach", run_detach),
        c("exec-exit-code", exec_exit_code),
        c("exec-stopped-fails", exec_stopped),
        c("console-socket", console_socket),
        c("exec-console-socket", exec_console_socket),
        c("preserve-fds", preserve_fds),
        c("exec-preserve-fds", exec_preserve_fds),
    ]
}
