//! CVE-2019-5736: a container process gets hold of the runtime's binary
//! through /proc/<pid>/exe of a runtime process that entered the container
//! (the init before it execs, or a `pinc exec` on its way in). Opening it
//! for writing fails while the binary runs (ETXTBSY), so the exploit keeps
//! an O_PATH descriptor and reopens it for writing once the runtime exited.
//! That must fail: pinc runs from a read-only bind mount or a sealed memfd
//! (runtime/src/sealed.rs), and the binary on the host stays as it was.
//!
//! For exec the test holds the `pinc exec` process itself: the process that
//! enters the container is a fork of it and runs the same binary. (runc
//! enters through a separate `runc init` from a memfd, so its host-side
//! `runc exec` is writable but unreachable: this check is pinc's design.)
//!
//! The test plays the attacker from the host side, with the same syscalls
//! (the magic link resolves the same from inside the container), against a
//! private copy of pinc: no other test runs that copy, so ETXTBSY cannot
//! hide a writable binary, and a vulnerable run damages only the copy.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::Hasher;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use pinc_tests::{output_via_files, require_root, unique_id, wait_bounded};

fn digest(path: &Path) -> u64 {
    let mut file = fs::File::open(path).expect("open binary");
    let mut hasher = DefaultHasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).expect("read binary");
        if n == 0 {
            return hasher.finish();
        }
        hasher.write(&buf[..n]);
    }
}

/// O_PATH on the binary a process runs, as the exploit takes it.
fn hold_exe(pid: u32) -> OwnedFd {
    open(
        format!("/proc/{pid}/exe").as_str(),
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(|fd| {
        // SAFETY: open just returned this descriptor; nothing else owns it.
        unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
    })
    .expect("O_PATH /proc/<pid>/exe")
}

/// Reopens a held binary for writing once nothing runs it any more, and
/// writes to it; returns the final error (ETXTBSY only while it runs).
fn try_overwrite(held: &OwnedFd) -> Result<(), Errno> {
    let path = format!("/proc/self/fd/{}", held.as_raw_fd());
    let mut last = Errno::UnknownErrno;
    for _ in 0..200 {
        match fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_APPEND)
            .open(&path)
        {
            Ok(mut f) => {
                return f
                    .write_all(b"overwritten by a container")
                    .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)));
            }
            Err(e) => {
                last = Errno::from_raw(e.raw_os_error().unwrap_or(0));
                if last != Errno::ETXTBSY {
                    return Err(last);
                }
            }
        }
        // Not a timing assertion: the exited runtime's pages take a moment
        // to go, and only ETXTBSY is retried.
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    Err(last)
}

fn pinc(bin: &Path, root: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("--root").arg(root).args(args);
    cmd
}

#[test]
fn runtime_binary_cannot_be_reopened_for_write_from_init_or_exec() {
    require_root();
    let private = tempfile::tempdir().expect("tempdir");
    let bin = private.path().join("pinc");
    fs::copy(pinc_tests::pinc_bin(), &bin).expect("copy pinc");
    let root = private.path().join("state");
    fs::create_dir(&root).expect("state dir");
    let before = digest(&bin);

    // 1. The init, parked in the container before `start`, runs pinc.
    let bundle = super::writable_bundle(&["sleep", "1000"]);
    let b = bundle.path().to_str().expect("utf8");
    let id = unique_id("exe");
    let pid_file = bundle.path().join("init.pid");
    let out = output_via_files(pinc(
        &bin,
        &root,
        &[
            "create",
            "-b",
            b,
            "--pid-file",
            pid_file.to_str().expect("utf8"),
            &id,
        ],
    ));
    assert!(out.status.success(), "create: {}", pinc_tests::stderr(&out));
    let init: u32 = fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    let held_init = hold_exe(init);
    let _ = output_via_files(pinc(&bin, &root, &["delete", "--force", &id]));
    let init_result = try_overwrite(&held_init);

    // 2. A `pinc exec` while its process runs in the container.
    let id = unique_id("exe");
    let out = output_via_files(pinc(&bin, &root, &["run", "-d", "-b", b, &id]));
    assert!(out.status.success(), "run: {}", pinc_tests::stderr(&out));
    let started = super::rootfs(&bundle).join("started");
    let mut exec = pinc(
        &bin,
        &root,
        &["exec", &id, "sh", "-c", "touch /started; read x"],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn pinc exec");
    while !started.exists() {
        assert!(
            exec.try_wait().expect("wait").is_none(),
            "pinc exec ended before its process started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let held_exec = hold_exe(exec.id());
    drop(exec.stdin.take());
    wait_bounded(&mut exec, "pinc exec");
    let _ = output_via_files(pinc(&bin, &root, &["delete", "--force", &id]));
    let exec_result = try_overwrite(&held_exec);

    let after = digest(&bin);
    assert!(
        init_result.is_err() && exec_result.is_err(),
        "the pinc binary was writable through /proc/<pid>/exe: init {init_result:?}, exec {exec_result:?}"
    );
    assert_eq!(before, after, "the pinc binary on the host changed");
}
