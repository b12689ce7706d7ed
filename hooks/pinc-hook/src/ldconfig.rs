//! The ld-cache hook: after the driver's libraries are bind-mounted into the
//! rootfs, the container's /etc/ld.so.cache must list them, or `dlopen`
//! ("libcuda.so.1") fails in any folder outside the default search path.
//!
//! Runs the host's ldconfig chrooted into the rootfs (`-r`), so the image
//! needs no ldconfig of its own (busybox or distroless images have none).
//! As a createContainer hook it already runs in the container's mount
//! namespace, before pivot_root; as prestart/createRuntime (runc, crun) it
//! runs in the runtime's, and joins the container's mount namespace first.
//!
//! runc runs createContainer hooks from its init process, already inside
//! the container's pid namespace but with the host's /proc still mounted:
//! the state's pid is then runc init's own pid in that namespace (1), and
//! `/proc/1` is the host's init. Such a pid is never looked up.
//!
//! Nothing of the container's reaches ldconfig but the files it reads
//! inside its chroot: it runs with an empty environment (an image's
//! LD_PRELOAD, GCONV_PATH or LOCPATH must never reach a privileged
//! process, CVE-2025-23266) from `/`, with no stdin. And no procfs: before
//! pivot_root the container's /proc is already mounted in the rootfs, and
//! its /proc/1/root is the host's `/` (the init has not pivoted yet), a
//! magic link that ldconfig's chroot does not stop. An image's ld.so.conf
//! naming /proc/1/root/usr/lib would have ldconfig rewrite soname links on
//! the host, so ldconfig runs in a private mount namespace of the hook's
//! with every procfs under the rootfs unmounted. The runtime starts
//! this hook with the hook's own env only, but runtimes differ (youki
//! passes the container's env to startContainer hooks).

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

const LDCONFIG: [&str; 3] = [
    "/sbin/ldconfig.real",
    "/sbin/ldconfig",
    "/usr/sbin/ldconfig",
];

pub fn run(folders: &[PathBuf]) -> anyhow::Result<()> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading the container state from stdin")?;
    let state: serde_json::Value =
        serde_json::from_str(&text).context("parsing the container state on stdin")?;
    let bundle = state["bundle"]
        .as_str()
        .map(PathBuf::from)
        .context("the container state has no bundle")?;
    let pid = state["pid"].as_i64().filter(|p| *p > 0);
    let rootfs = rootfs(&bundle)?;
    // In a pid namespace /proc does not show, we run inside the container
    // (runc's createContainer): already in its mount namespace.
    if let Some(pid) = pid.filter(|_| proc_shows_our_pid_namespace()) {
        join_mount_namespace(pid)?;
    }
    hide_proc_under(&rootfs)?;
    let ldconfig = LDCONFIG
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .context("no ldconfig on the host (looked for /sbin/ldconfig.real, /sbin/ldconfig, /usr/sbin/ldconfig)")?;
    let etc = rootfs.join("etc");
    if !etc.is_dir() {
        std::fs::create_dir_all(&etc).with_context(|| format!("creating {}", etc.display()))?;
    }
    let mut cmd = Command::new(ldconfig);
    isolate(&mut cmd);
    cmd.arg("-r").arg(&rootfs);
    if !etc.join("ld.so.conf").exists() && rootfs.join("dev/null").exists() {
        // No config in the image: only the given folders (and the trusted
        // /lib, /usr/lib), without a warning about the missing file.
        cmd.arg("-f").arg("/dev/null");
    }
    for folder in folders {
        if !folder.is_absolute() {
            bail!("--folder {}: not an absolute path", folder.display());
        }
        cmd.arg(folder);
    }
    let out = cmd
        .output()
        .with_context(|| format!("running {}", ldconfig.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if read_only(&etc) {
            // A read-only image keeps its cache; libraries then load only
            // from default folders. Not worth failing the container over.
            eprintln!(
                "pinc-hook: {} is read-only; the container's ld cache is not refreshed",
                etc.display()
            );
            return Ok(());
        }
        bail!(
            "{} -r {} failed: {}",
            ldconfig.display(),
            rootfs.display(),
            stderr.trim()
        );
    }
    Ok(())
}

/// Moves this process into a private copy of its mount namespace and
/// detaches every procfs mounted at or under `rootfs` there (the
/// container's own namespace keeps them).
fn hide_proc_under(rootfs: &Path) -> anyhow::Result<()> {
    let rootfs = rootfs
        .canonicalize()
        .with_context(|| format!("resolving {}", rootfs.display()))?;
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .context("a private mount namespace for ldconfig")?;
    // Private first, or the unmounts would propagate to the container.
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("making the hook's mounts private")?;
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    let mut procs = proc_mounts_under(&mountinfo, &rootfs);
    // Deepest first; a detached parent takes its children along anyway.
    procs.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    for target in procs {
        match nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(e).with_context(|| format!("unmounting {}", target.display())),
        }
    }
    Ok(())
}

/// procfs mount points at or under `root` in a mountinfo text.
fn proc_mounts_under(mountinfo: &str, root: &Path) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split(' ').next()?;
            let point = PathBuf::from(unescape(left.split(' ').nth(4)?));
            (fstype == "proc" && point.starts_with(root)).then_some(point)
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(field: &str) -> String {
    let mut out = Vec::with_capacity(field.len());
    let bytes = field.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a privileged child of the hook gets: no environment, `/` as cwd,
/// no stdin.
fn isolate(cmd: &mut Command) {
    cmd.env_clear()
        .current_dir("/")
        .stdin(std::process::Stdio::null());
}

/// The rootfs from the bundle's config.json (`root.path`, relative to the bundle).
fn rootfs(bundle: &Path) -> anyhow::Result<PathBuf> {
    let config = bundle.join("config.json");
    let text = std::fs::read_to_string(&config)
        .with_context(|| format!("reading {}", config.display()))?;
    let spec: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", config.display()))?;
    let root = spec["root"]["path"]
        .as_str()
        .with_context(|| format!("{}: no root.path", config.display()))?;
    Ok(bundle.join(root))
}

/// Whether /proc is mounted for our own pid namespace, i.e. whether a pid
/// from our namespace (the state's) names the same process in /proc.
fn proc_shows_our_pid_namespace() -> bool {
    std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str().and_then(|s| s.parse::<u32>().ok()))
        == Some(std::process::id())
}

/// Joins the container's mount namespace unless already in it.
fn join_mount_namespace(pid: i64) -> anyhow::Result<()> {
    let theirs = format!("/proc/{pid}/ns/mnt");
    let ours = std::fs::metadata("/proc/self/ns/mnt").context("stat /proc/self/ns/mnt")?;
    let target = std::fs::metadata(&theirs).with_context(|| format!("stat {theirs}"))?;
    if ours.ino() == target.ino() && ours.dev() == target.dev() {
        return Ok(());
    }
    let ns = File::open(&theirs).with_context(|| format!("open {theirs}"))?;
    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNS)
        .with_context(|| format!("joining the mount namespace {theirs}"))?;
    Ok(())
}

fn read_only(path: &Path) -> bool {
    nix::sys::statvfs::statvfs(path)
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn finds_procfs_mounts_under_the_rootfs() {
        let info = "\
22 1 0:21 / /proc rw,nosuid - proc proc rw
90 80 0:50 / /b/rootfs/proc rw - proc proc rw
91 80 0:51 / /b/rootfs/dev rw - tmpfs tmpfs rw
92 80 0:52 / /b/rootfs/host\\040proc rw - proc proc rw
93 80 0:53 / /b/rootfs2/proc rw - proc proc rw
";
        assert_eq!(
            proc_mounts_under(info, Path::new("/b/rootfs")),
            vec![
                PathBuf::from("/b/rootfs/proc"),
                PathBuf::from("/b/rootfs/host proc")
            ]
        );
    }

    #[test]
    fn ldconfig_runs_with_no_environment_from_root() {
        let dir = std::env::temp_dir().join(format!("pinc-hook-isolate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let probe = dir.join("probe");
        std::fs::write(&probe, "#!/bin/sh\n/usr/bin/env; pwd; cat\n").expect("probe");
        std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let mut cmd = Command::new(&probe);
        cmd.current_dir(&dir)
            .env("LD_PRELOAD", "/evil.so")
            .env("GCONV_PATH", "/evil");
        isolate(&mut cmd);
        let out = cmd.output().expect("run probe");
        std::fs::remove_dir_all(&dir).expect("rm");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(
            !text.contains("LD_PRELOAD") && !text.contains("GCONV_PATH"),
            "environment leaked into the child: {text}"
        );
        assert_eq!(text.lines().last(), Some("/"), "cwd: {text}");
    }
}
