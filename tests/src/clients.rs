//! The container-engine scenarios Docker and Podman share, written once
//! against [`Client`]: for these, both CLIs take the same words and must
//! give the same answers with pinc as with runc. What only one engine has
//! (docker top, podman's rm of a stopped container, the engines' state
//! roots) stays in its own test file.

use std::process::{Command, Output};

use crate::daemons::{
    describe, ok, run_with_input, run_with_timeout, Dockerd, Podman, CMD_TIMEOUT,
};
use crate::{stderr, stdout};

/// A container engine's CLI, set up to run pinc.
pub trait Client {
    /// "docker" or "podman", for messages.
    fn name(&self) -> &'static str;
    /// The CLI with `args`.
    fn command(&self, args: &[&str]) -> Command;
    /// `run` and the options every container here needs on this machine.
    fn run_prefix(&self) -> &'static [&'static str];
    /// The busybox image the test imported.
    fn image(&self) -> &'static str;

    /// `run_prefix` then `extra`.
    fn run_args<'a>(&self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut v = self.run_prefix().to_vec();
        v.extend_from_slice(extra);
        v
    }

    /// Runs the CLI with the default timeout.
    fn out(&self, args: &[&str]) -> Output {
        run_with_timeout(&mut self.command(args), CMD_TIMEOUT)
    }

    /// Runs the CLI and requires success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        ok(&format!("{} {args:?}", self.name()), &self.out(args))
    }
}

impl Client for Dockerd {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn command(&self, args: &[&str]) -> Command {
        self.docker(args)
    }

    fn run_prefix(&self) -> &'static [&'static str] {
        &["run", "--network", "none", "--runtime=pinc"]
    }

    fn image(&self) -> &'static str {
        "busybox:local"
    }
}

impl Client for Podman {
    fn name(&self) -> &'static str {
        "podman"
    }

    fn command(&self, args: &[&str]) -> Command {
        self.podman(args)
    }

    /// The limits are needed here: podman's default nofile limit is above
    /// the hard limit root may set without CAP_SYS_RESOURCE.
    fn run_prefix(&self) -> &'static [&'static str] {
        &[
            "run",
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ]
    }

    fn image(&self) -> &'static str {
        "localhost/busybox:local"
    }
}

/// `inspect --format fmt name`, trimmed.
pub fn inspect(c: &dyn Client, fmt: &str, name: &str) -> String {
    c.ok(&["inspect", "--format", fmt, name]).trim().to_string()
}

/// run -i --rm: stdin, stdout and stderr.
pub fn run_stdin(c: &dyn Client) {
    let args = c.run_args(&[
        "-i",
        "--rm",
        c.image(),
        "sh",
        "-c",
        "cat; echo to-stderr >&2",
    ]);
    let out = run_with_input(&mut c.command(&args), b"piped line\n", CMD_TIMEOUT);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stdout(&out), "piped line\n", "{}", describe(&out));
    assert!(stderr(&out).contains("to-stderr"), "{}", describe(&out));
}

/// run of a missing binary exits 127.
pub fn run_missing_binary(c: &dyn Client) {
    let out = c.out(&c.run_args(&["--rm", c.image(), "/no/such/binary"]));
    assert_eq!(out.status.code(), Some(127), "{}", describe(&out));
}

/// run of a non-executable file exits 126.
pub fn run_not_executable(c: &dyn Client) {
    let out = c.out(&c.run_args(&["--rm", c.image(), "/etc/passwd"]));
    assert_eq!(out.status.code(), Some(126), "{}", describe(&out));
}

/// exec into `long`: output and exit code.
pub fn exec_output(c: &dyn Client) {
    let out = c.out(&["exec", "long", "sh", "-c", "echo from-exec; exit 3"]);
    assert_eq!(stdout(&out), "from-exec\n", "{}", describe(&out));
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let out = c.out(&["exec", "long", "true"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}

/// exec into `long`: -i stdin, -e, -u, -w.
pub fn exec_options(c: &dyn Client) {
    let out = run_with_input(
        &mut c.command(&["exec", "-i", "long", "cat"]),
        b"via stdin\n",
        CMD_TIMEOUT,
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stdout(&out), "via stdin\n", "{}", describe(&out));
    let out = c.out(&[
        "exec",
        "-e",
        "FOO=bar",
        "-u",
        "65534:65534",
        "-w",
        "/tmp",
        "long",
        "sh",
        "-c",
        "echo $FOO $(id -u):$(id -g) $(pwd)",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stdout(&out), "bar 65534:65534 /tmp\n", "{}", describe(&out));
}

/// exec of a non-executable file exits 126.
pub fn exec_not_executable(c: &dyn Client) {
    let out = c.out(&["exec", "long", "/etc/passwd"]);
    assert_eq!(out.status.code(), Some(126), "{}", describe(&out));
}

/// exec -t: terminal through --console-socket.
pub fn exec_tty(c: &dyn Client) {
    let out = c.out(&["exec", "-t", "long", "sh", "-c", "tty; exit 2"]);
    assert!(stdout(&out).contains("/dev/pts/"), "{}", describe(&out));
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
}

/// pause / unpause of `long`, which still answers after.
pub fn pause_unpause(c: &dyn Client) {
    c.ok(&["pause", "long"]);
    assert_eq!(inspect(c, "{{.State.Status}}", "long"), "paused");
    c.ok(&["unpause", "long"]);
    assert_eq!(inspect(c, "{{.State.Status}}", "long"), "running");
    let out = c.out(&["exec", "long", "echo", "alive"]);
    assert_eq!(stdout(&out), "alive\n", "{}", describe(&out));
}
