//! Mount targets an image controls through symlinks. For each class the
//! image points a path the runtime mounts on (or mounts from) at a host
//! directory, by an absolute link and by a `../..` link. pinc passes if it
//! refuses with one error line or mounts inside the rootfs, and in both
//! cases the host directory and the host's mount table are untouched. A
//! control run without the link shows the scenario itself works.
//!
//! - /proc as a symlink (CVE-2019-16884 class; the newer mount-target races
//!   are the same resolution done at the wrong time)
//! - maskedPaths through a /dev/null that is a symlink (CVE-2025-31133)
//! - bind mount destinations through symlinks (CVE-2021-30465)
//! - /dev/console and /dev/ptmx as symlinks with a console socket
//!   (CVE-2025-52565)

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use pinc_tests::{require_root, stdout, unique_id, Bundle, Pinc};
use serde_json::{json, Value};

use super::{assert_clean_refusal, decoy, host_mounts_under, rootfs, snapshot, use_image_dev};

/// The two ways an image's link reaches a host directory.
fn links_to(host: &Path) -> [String; 2] {
    let rel = host.to_str().expect("utf8").trim_start_matches('/');
    [
        host.display().to_string(),
        format!("../../../../../../../../{rel}"),
    ]
}

/// Replaces `<rootfs>/<name>` with a symlink to `target`.
fn plant_link(bundle: &Bundle, name: &str, target: &str) {
    let path = rootfs(bundle).join(name);
    if path.is_dir() {
        fs::remove_dir_all(&path).expect("rm dir");
    } else {
        let _ = fs::remove_file(&path);
    }
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    symlink(target, &path).expect("symlink");
}

/// Runs `bundle`; returns its stdout, or None when pinc refused cleanly.
/// (The scenarios' scripts end with `true`: a failure is pinc's.)
fn run_or_refuse(pinc: &Pinc, bundle: &Bundle, what: &str) -> Option<String> {
    let id = unique_id("mnt");
    let out = pinc.output(&["run", "-b", bundle.path().to_str().expect("utf8"), &id]);
    let _ = pinc.output(&["delete", "--force", &id]);
    if out.status.success() {
        eprintln!("{what}: ran");
        Some(stdout(&out))
    } else {
        eprintln!("{what}: refused: {}", pinc_tests::stderr(&out).trim_end());
        assert_clean_refusal(what, &out);
        None
    }
}

fn assert_host_untouched(
    host: &Path,
    before: &std::collections::BTreeMap<std::path::PathBuf, String>,
    what: &str,
) {
    assert_eq!(
        &snapshot(host),
        before,
        "{what}: the host directory changed"
    );
    assert!(
        host_mounts_under(host).is_empty(),
        "{what}: a mount landed on the host: {:?}",
        host_mounts_under(host)
    );
}

#[test]
fn proc_as_a_symlink_is_refused_or_mounted_inside() {
    require_root();
    let pinc = Pinc::new();
    let host = decoy("pinc-decoy-proc-");
    let before = snapshot(host.path());
    let script = "stat -f -c %T /proc/; cat /proc/self/comm; true";

    let control = super::writable_bundle(&["sh", "-c", script]);
    let out = run_or_refuse(&pinc, &control, "control").expect("control run refused");
    assert_eq!(out, "proc\ncat\n");

    for target in links_to(host.path()) {
        let what = format!("/proc -> {target}");
        let bundle = super::writable_bundle(&["sh", "-c", script]);
        plant_link(&bundle, "proc", &target);
        // The same path inside the rootfs, for a runtime that resolves
        // the link in the rootfs's scope.
        fs::create_dir_all(rootfs(&bundle).join(host.path().strip_prefix("/").expect("abs")))
            .expect("mkdir");
        if let Some(out) = run_or_refuse(&pinc, &bundle, &what) {
            assert_eq!(out, "proc\ncat\n", "{what}: /proc inside is not procfs");
        }
        assert_host_untouched(host.path(), &before, &what);
    }
    assert!(pinc.leftovers().is_empty(), "{:?}", pinc.leftovers());
}

#[test]
fn masking_through_a_symlinked_dev_null_binds_nothing_else() {
    require_root();
    let pinc = Pinc::new();
    let host = decoy("pinc-decoy-null-");
    let before = snapshot(host.path());
    let script = "cat /secret; echo '|'; stat -c %F:%t:%T /secret; echo written >/dev/null; true";
    let bundle_for = || {
        let bundle = super::writable_bundle(&["sh", "-c", script]);
        use_image_dev(&bundle, false);
        fs::write(rootfs(&bundle).join("secret"), "SECRET\n").expect("secret");
        fs::write(rootfs(&bundle).join("decoy"), "DECOY\n").expect("decoy");
        bundle.edit(|c| {
            c["linux"]["maskedPaths"]
                .as_array_mut()
                .expect("maskedPaths")
                .push(json!("/secret"));
        });
        bundle
    };
    // Nothing in the script reads /decoy: a runtime that points stdio at
    // the link's target would have it copy the file into itself forever.
    let masked = "|\ncharacter special file:1:3\n";

    let control = bundle_for();
    let out = run_or_refuse(&pinc, &control, "control").expect("control run refused");
    assert_eq!(out, masked, "control: /secret masked by the real /dev/null");

    let [abs, rel] = links_to(&host.path().join("keep"));
    for target in ["/decoy".to_string(), abs, rel] {
        let what = format!("/dev/null -> {target}");
        let bundle = bundle_for();
        plant_link(&bundle, "dev/null", &target);
        if let Some(out) = run_or_refuse(&pinc, &bundle, &what) {
            assert_eq!(
                out, masked,
                "{what}: /secret not masked by a real /dev/null"
            );
        }
        assert_eq!(
            fs::read_to_string(rootfs(&bundle).join("decoy")).expect("decoy"),
            "DECOY\n",
            "{what}: the link's target was written to"
        );
        assert_host_untouched(host.path(), &before, &what);
    }
}

#[test]
fn bind_mount_destinations_through_symlinks_stay_in_the_rootfs() {
    require_root();
    let pinc = Pinc::new();
    let host = decoy("pinc-decoy-bind-");
    let before = snapshot(host.path());
    let source = tempfile::tempdir().expect("source");
    fs::write(source.path().join("payload"), "volume\n").expect("payload");
    let bundle_for = |dest: &str| {
        let bundle = super::writable_bundle(&["sh", "-c", &format!("cat {dest}/payload; true")]);
        bundle.edit(|c| {
            c["mounts"].as_array_mut().expect("mounts").push(json!({
                "destination": dest,
                "type": "bind",
                "source": source.path(),
                "options": ["rbind", "rw"],
            }));
        });
        bundle
    };

    let control = bundle_for("/mnt/vol");
    let out = run_or_refuse(&pinc, &control, "control").expect("control run refused");
    assert_eq!(out, "volume\n");

    for target in links_to(host.path()) {
        // A link as the parent of the destination, and as the destination.
        for dest in ["/mnt/vol", "/mnt"] {
            let what = format!("destination {dest}, /mnt -> {target}");
            let bundle = bundle_for(dest);
            plant_link(&bundle, "mnt", &target);
            if let Some(out) = run_or_refuse(&pinc, &bundle, &what) {
                assert_eq!(out, "volume\n", "{what}");
            }
            assert_host_untouched(host.path(), &before, &what);
        }
    }
    assert!(pinc.leftovers().is_empty(), "{:?}", pinc.leftovers());
}

/// A console socket: accepts one connection, takes the pty master pinc
/// sends, and collects what the container writes until it exits.
struct Console {
    path: std::path::PathBuf,
    reader: Option<std::thread::JoinHandle<Vec<u8>>>,
    _dir: tempfile::TempDir,
}

impl Console {
    fn new() -> Self {
        use std::os::fd::{FromRawFd, OwnedFd};
        use std::os::unix::net::UnixListener;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("console.sock");
        let listener = UnixListener::bind(&path).expect("bind console socket");
        let reader = std::thread::spawn(move || {
            let Ok((stream, _)) = listener.accept() else {
                return Vec::new();
            };
            let mut byte = [0u8; 64];
            let mut iov = [std::io::IoSliceMut::new(&mut byte)];
            let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
            let Ok(msg) = nix::sys::socket::recvmsg::<()>(
                std::os::fd::AsRawFd::as_raw_fd(&stream),
                &mut iov,
                Some(&mut space),
                nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC,
            ) else {
                return Vec::new();
            };
            let mut master = None;
            for cmsg in msg.cmsgs().into_iter().flatten() {
                if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = cmsg {
                    // SAFETY: the kernel just installed these descriptors for us.
                    master = fds.first().map(|&fd| unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
            let Some(master) = master else {
                return Vec::new();
            };
            let mut file = fs::File::from(master);
            let mut out = Vec::new();
            // Ends with EIO once the container's side is closed.
            let _ = std::io::Read::read_to_end(&mut file, &mut out);
            out
        });
        Self {
            path,
            reader: Some(reader),
            _dir: dir,
        }
    }

    /// What the container wrote; unblocks the listener if nobody came.
    fn finish(mut self) -> String {
        let reader = self.reader.take().expect("reader");
        if !reader.is_finished() {
            let _ = std::os::unix::net::UnixStream::connect(&self.path);
        }
        String::from_utf8_lossy(&reader.join().expect("console reader")).replace('\r', "")
    }
}

#[test]
fn console_symlinks_do_not_move_the_console_mount() {
    require_root();
    let pinc = Pinc::new();
    let host = decoy("pinc-decoy-console-");
    let before = snapshot(host.path());
    let script = "stat -c %F:%t /dev/console; tty; stat -c %F /decoy; true";
    let bundle_for = || {
        let bundle = super::writable_bundle(&["sh", "-c", script]);
        bundle.edit(|c| c["process"]["terminal"] = Value::Bool(true));
        use_image_dev(&bundle, true);
        fs::write(rootfs(&bundle).join("decoy"), "DECOY\n").expect("decoy");
        bundle
    };
    // Returns the console output, or None on a clean refusal.
    let run = |bundle: &Bundle, what: &str| -> Option<String> {
        let console = Console::new();
        let id = unique_id("tty");
        let out = pinc.output(&[
            "run",
            "-d",
            "--console-socket",
            console.path.to_str().expect("utf8"),
            "-b",
            bundle.path().to_str().expect("utf8"),
            &id,
        ]);
        let text = if out.status.success() {
            eprintln!("{what}: ran");
            Some(console.finish())
        } else {
            eprintln!("{what}: refused: {}", pinc_tests::stderr(&out).trim_end());
            console.finish();
            assert_clean_refusal(what, &out);
            None
        };
        let _ = pinc.output(&["delete", "--force", &id]);
        text
    };
    // /dev/console is a pty slave (major 136) bind-mounted by the runtime.
    let expect_tty = |out: &str, what: &str| {
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines.first().copied(),
            Some("character special file:88"),
            "{what}: {out}"
        );
        assert!(
            lines.get(1).is_some_and(|l| l.starts_with("/dev/pts/")),
            "{what}: {out}"
        );
        assert_eq!(lines.get(2).copied(), Some("regular file"), "{what}: {out}");
    };

    let control = bundle_for();
    let out = run(&control, "control").expect("control run refused");
    expect_tty(&out, "control");

    let [abs, rel] = links_to(&host.path().join("keep"));
    // /dev/pts/ptmx is the image's only without a devpts mount there.
    for name in ["dev/console", "dev/ptmx", "dev/pts/ptmx"] {
        for target in ["/decoy".to_string(), abs.clone(), rel.clone()] {
            let what = format!("/{name} -> {target}");
            let bundle = bundle_for();
            if name == "dev/pts/ptmx" {
                use_image_dev(&bundle, false);
            }
            plant_link(&bundle, name, &target);
            if let Some(out) = run(&bundle, &what) {
                expect_tty(&out, &what);
            }
            assert_eq!(
                fs::read_to_string(rootfs(&bundle).join("decoy")).expect("decoy"),
                "DECOY\n",
                "{what}: the link's target was written to"
            );
            assert_host_untouched(host.path(), &before, &what);
        }
    }
}
