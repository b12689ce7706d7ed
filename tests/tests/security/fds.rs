//! CVE-2024-21626: a descriptor the runtime leaks into the container (runc
//! leaked a host cgroup directory) becomes a way out when the process's cwd
//! is `/proc/self/fd/N`: the process then starts in a host directory. For
//! every N a leak could have, init and exec must either be refused or start
//! inside the rootfs; and only stdio plus `--preserve-fds` descriptors may
//! reach the process.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;

use pinc_tests::{output_via_files, require_root, stderr, stdout, unique_id, Bundle, Pinc};
use serde_json::Value;

/// Walks `..` from the cwd: reaching the container's `/` means inside; a
/// directory that is its own parent but is not `/` is the host's root.
const WHERE_AM_I: &str = r#"r=$(stat -c %d:%i /)
while [ "$(stat -c %d:%i .)" != "$r" ]; do
  if [ "$(stat -c %d:%i ..)" = "$(stat -c %d:%i .)" ]; then echo OUTSIDE; exit 0; fi
  cd -P .. || { echo OUTSIDE; exit 0; }
done
echo INSIDE"#;

/// The process's open descriptors (the glob's own directory descriptor is
/// closed again by the time `-e` looks).
const LIST_FDS: &str =
    r#"for f in /proc/self/fd/*; do [ -e "$f" ] && printf '%s ' "${f##*/}"; done; echo"#;

/// What a run with cwd `/proc/self/fd/N` did, as a verdict.
fn verdict(what: &str, out: &std::process::Output) -> Option<String> {
    if out.status.success() {
        let text = stdout(out);
        (text.trim() != "INSIDE")
            .then(|| format!("{what}: started with a cwd outside the rootfs: {text}"))
    } else {
        // Refused: fine if pinc said so on one line.
        let err = stderr(out);
        (err.trim_end().lines().count() != 1 || !err.starts_with("pinc: error:"))
            .then(|| format!("{what}: refused without one error line: {err}"))
    }
}

#[test]
fn init_with_a_leaked_fd_as_cwd_stays_inside_the_rootfs() {
    require_root();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["sh", "-c", WHERE_AM_I]);
    let mut bad = Vec::new();
    for n in 3..=10 {
        bundle.edit(|c| c["process"]["cwd"] = Value::String(format!("/proc/self/fd/{n}")));
        let id = unique_id("fdcwd");
        let out = pinc.output(&["run", "-b", bundle.path().to_str().expect("utf8"), &id]);
        bad.extend(verdict(&format!("cwd /proc/self/fd/{n}"), &out));
        let _ = pinc.output(&["delete", "--force", &id]);
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    assert!(pinc.leftovers().is_empty(), "{:?}", pinc.leftovers());
}

#[test]
fn exec_with_a_leaked_fd_as_cwd_stays_inside_the_rootfs() {
    require_root();
    let pinc = Pinc::new();
    let bundle = Bundle::new(&["sleep", "1000"]);
    let id = unique_id("fdexec");
    pinc.ok(&[
        "run",
        "-d",
        "-b",
        bundle.path().to_str().expect("utf8"),
        &id,
    ]);
    let mut bad = Vec::new();
    for n in 3..=10 {
        let cwd = format!("/proc/self/fd/{n}");
        let out = pinc.output(&["exec", "--cwd", &cwd, &id, "sh", "-c", WHERE_AM_I]);
        bad.extend(verdict(&format!("exec --cwd {cwd}"), &out));
    }
    pinc.ok(&["delete", "--force", &id]);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// `pinc <args>` with two extra descriptors open at 3 and 4 (readable
/// files saying "three" and "four"), as a caller preserving them would.
fn with_fds_3_and_4(pinc: &Pinc, args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let three = dir.path().join("three");
    let four = dir.path().join("four");
    fs::write(&three, "three\n").expect("write");
    fs::write(&four, "four\n").expect("write");
    let a = fs::File::open(&three).expect("open");
    let b = fs::File::open(&four).expect("open");
    let (a, b) = (a.as_raw_fd(), b.as_raw_fd());
    let mut cmd = pinc.cmd(args);
    // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and
    // exec; the high copies keep 3 and 4 from overwriting each other.
    unsafe {
        cmd.pre_exec(move || {
            let hi_a = libc::fcntl(a, libc::F_DUPFD, 100);
            let hi_b = libc::fcntl(b, libc::F_DUPFD, 100);
            if hi_a < 0 || hi_b < 0 || libc::dup2(hi_a, 3) < 0 || libc::dup2(hi_b, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    output_via_files(cmd)
}

#[test]
fn only_stdio_and_preserved_fds_reach_init_and_exec() {
    require_root();
    let pinc = Pinc::new();
    let script = format!("{LIST_FDS}; cat /proc/self/fd/3 /proc/self/fd/4 2>/dev/null; true");
    let bundle = Bundle::new(&["sh", "-c", &script]);
    let b = bundle.path().to_str().expect("utf8");

    let out = with_fds_3_and_4(&pinc, &["run", "-b", b, &unique_id("fds")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "0 1 2 \n", "init without --preserve-fds");

    let out = with_fds_3_and_4(
        &pinc,
        &["run", "--preserve-fds", "2", "-b", b, &unique_id("fds")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "0 1 2 3 4 \nthree\nfour\n",
        "init with --preserve-fds 2"
    );

    let sleeper = Bundle::new(&["sleep", "1000"]);
    let id = unique_id("fds");
    pinc.ok(&[
        "run",
        "-d",
        "-b",
        sleeper.path().to_str().expect("utf8"),
        &id,
    ]);
    let out = with_fds_3_and_4(&pinc, &["exec", &id, "sh", "-c", &script]);
    let plain = (out.status.success(), stdout(&out), stderr(&out));
    let out = with_fds_3_and_4(
        &pinc,
        &["exec", "--preserve-fds", "2", &id, "sh", "-c", &script],
    );
    let preserved = (out.status.success(), stdout(&out), stderr(&out));
    pinc.ok(&["delete", "--force", &id]);
    assert!(plain.0, "{}", plain.2);
    assert_eq!(plain.1, "0 1 2 \n", "exec without --preserve-fds");
    assert!(preserved.0, "{}", preserved.2);
    assert_eq!(
        preserved.1, "0 1 2 3 4 \nthree\nfour\n",
        "exec with --preserve-fds 2"
    );
}
