//! Per-mount propagation (`rprivate`, `rslave`, `shared`, ...), applied
//! after libcontainer made the mounts.
//!
//! libcontainer 0.7 passes a mount's propagation options in the flags of
//! its bind mount call, where the kernel ignores them (MS_BIND is handled
//! first): every volume kept the rootfs' propagation, so an `rprivate`
//! volume of a Kubernetes pod still received the host's mounts. runc changes
//! the type with a second mount call; pinc does the same once the
//! container's mounts exist, from a child that joins the init's mount
//! namespace (whose root is then the container's root).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::Spec;
use nix::mount::MsFlags;

use crate::error::{Error, Result};

/// The propagation change a mount option asks for.
fn flag(option: &str) -> Option<MsFlags> {
    Some(match option {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// Every propagation change the spec's mounts ask for, in mount order (a
/// mount's options in their order, as runc applies them).
pub fn wanted(spec: &Spec) -> Vec<(PathBuf, MsFlags)> {
    spec.mounts()
        .iter()
        .flatten()
        .flat_map(|m| {
            let dest = m.destination().clone();
            m.options()
                .iter()
                .flatten()
                .filter_map(move |o| flag(o).map(|f| (dest.clone(), f)))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Applies `changes` in the mount namespace of `init_pid`.
pub fn apply(init_pid: i32, changes: &[(PathBuf, MsFlags)]) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let ns_path = PathBuf::from(format!("/proc/{init_pid}/ns/mnt"));
    let ns = std::fs::File::open(&ns_path).map_err(Error::io(
        "failed to open the container's mount namespace",
        &ns_path,
    ))?;
    // Everything the child needs is made before fork: it only makes syscalls.
    let paths: Vec<CString> = changes
        .iter()
        .map(|(p, _)| CString::new(p.as_os_str().as_bytes()).unwrap_or_default())
        .collect();
    let flags: Vec<MsFlags> = changes.iter().map(|(_, f)| *f).collect();
    let (report_read, report_write) = nix::unistd::pipe().map_err(|source| Error::Sys {
        what: "failed to make a pipe for the mount propagation child".into(),
        source,
    })?;
    // SAFETY: the child only calls setns, mount, write and _exit
    // (async-signal-safe syscalls) on data prepared before the fork.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            let code = match in_child(ns.as_fd(), &paths, &flags) {
                Ok(()) => 0,
                Err((index, errno)) => {
                    let mut report = [0u8; 8];
                    report[..4].copy_from_slice(&index.to_ne_bytes());
                    report[4..].copy_from_slice(&(errno as i32).to_ne_bytes());
                    let _ = nix::unistd::write(&report_write, &report);
                    1
                }
            };
            // SAFETY: _exit ends the child without running the parent's
            // destructors or atexit handlers.
            unsafe { libc::_exit(code) }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            drop(report_write);
            let status = nix::sys::wait::waitpid(child, None).map_err(|source| Error::Sys {
                what: "failed to wait for the mount propagation child".into(),
                source,
            })?;
            if status == nix::sys::wait::WaitStatus::Exited(child, 0) {
                return Ok(());
            }
            let mut report = [0u8; 8];
            let got = nix::unistd::read(report_read.as_raw_fd(), &mut report).unwrap_or(0);
            let (index, errno) = if got == 8 {
                let mut i = [0u8; 4];
                let mut e = [0u8; 4];
                i.copy_from_slice(&report[..4]);
                e.copy_from_slice(&report[4..]);
                (u32::from_ne_bytes(i), i32::from_ne_bytes(e))
            } else {
                (u32::MAX, libc::ECHILD)
            };
            let what = match usize::try_from(index).ok().and_then(|i| changes.get(i)) {
                Some((dest, flags)) => format!(
                    "failed to change the propagation of mount {} to {flags:?}",
                    dest.display()
                ),
                None => "failed to enter the container's mount namespace to set mount propagation"
                    .into(),
            };
            Err(Error::Sys {
                what,
                source: nix::Error::from_raw(errno),
            })
        }
        Err(source) => Err(Error::Sys {
            what: "failed to fork for the mount propagation".into(),
            source,
        }),
    }
}

/// The index of the change that failed (u32::MAX: setns) and its errno.
fn in_child(
    ns: std::os::fd::BorrowedFd<'_>,
    paths: &[CString],
    flags: &[MsFlags],
) -> std::result::Result<(), (u32, nix::Error)> {
    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNS).map_err(|e| (u32::MAX, e))?;
    for (i, (path, flag)) in paths.iter().zip(flags).enumerate() {
        nix::mount::mount(
            None::<&Path>,
            path.as_c_str(),
            None::<&Path>,
            *flag,
            None::<&Path>,
        )
        .map_err(|e| (u32::try_from(i).unwrap_or(u32::MAX - 1), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn propagation_options_in_mount_order() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/a", "type": "bind", "source": "/x", "options": ["rbind", "rprivate"]},
                {"destination": "/b", "type": "bind", "source": "/y", "options": ["rbind", "ro", "rslave"]},
                {"destination": "/c", "type": "bind", "source": "/z", "options": ["bind", "shared", "unbindable"]}
            ]
        }))
        .expect("spec");
        assert_eq!(
            wanted(&spec),
            vec![
                (PathBuf::from("/a"), MsFlags::MS_PRIVATE | MsFlags::MS_REC),
                (PathBuf::from("/b"), MsFlags::MS_SLAVE | MsFlags::MS_REC),
                (PathBuf::from("/c"), MsFlags::MS_SHARED),
                (PathBuf::from("/c"), MsFlags::MS_UNBINDABLE),
            ]
        );
    }

    #[test]
    fn nothing_to_do_without_propagation_options() {
        assert!(apply(i32::MAX, &[]).is_ok());
    }
}
