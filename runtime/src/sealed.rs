//! Keeping the pinc binary safe from containers (CVE-2019-5736): a process
//! of a container that reaches /proc/<pid>/exe of a pinc process must not be
//! able to overwrite pinc on the host. Done only for create, run and exec,
//! the commands whose processes enter a container.
//!
//! pinc re-executes itself through a read-only view of its own binary: a
//! throwaway child makes a read-only bind mount of the binary in a private
//! mount namespace and hands back an O_PATH descriptor, which we execute
//! (writes through /proc/<pid>/exe then fail with EROFS). This costs a fork
//! and two mounts instead of copying the whole binary into a sealed memfd,
//! which stays the fallback where mounts are not allowed.

use std::ffi::CString;
use std::fs::File;
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use anyhow::Context;
use nix::fcntl::{fcntl, open, FcntlArg, OFlag, SealFlag};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use nix::sys::stat::Mode;
use nix::sys::statvfs::{fstatvfs, FsFlags};
use nix::unistd::{access, fork, AccessFlags, ForkResult};

const SEALS: SealFlag = SealFlag::F_SEAL_SEAL
    .union(SealFlag::F_SEAL_SHRINK)
    .union(SealFlag::F_SEAL_GROW)
    .union(SealFlag::F_SEAL_WRITE);

/// True when a container could not write to the binary we run from anyway:
/// a read-only mount, a sealed memfd, or a file this user cannot write.
fn already_safe(exe: &File) -> bool {
    let read_only = fstatvfs(exe).is_ok_and(|s| s.flags().contains(FsFlags::ST_RDONLY));
    let sealed = fcntl(exe.as_raw_fd(), FcntlArg::F_GET_SEALS)
        .is_ok_and(|s| SealFlag::from_bits_truncate(s).contains(SEALS));
    let unwritable =
        !nix::unistd::geteuid().is_root() && access("/proc/self/exe", AccessFlags::W_OK).is_err();
    read_only || sealed || unwritable
}

/// In a forked child: a private mount namespace, the binary bind-mounted
/// read-only onto itself, and an O_PATH descriptor to it sent back.
fn child_read_only_view(sock: &OwnedFd) -> nix::Result<()> {
    let path = std::fs::read_link("/proc/self/exe").map_err(|_| nix::Error::ENOENT)?;
    unshare(CloneFlags::CLONE_NEWNS)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )?;
    mount(
        Some(&path),
        &path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )?;
    mount(
        None::<&str>,
        &path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )?;
    let fd = open(&path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())?;
    let fds = [fd];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(b"x")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )?;
    Ok(())
}

/// An O_PATH descriptor of our binary on a read-only bind mount.
fn read_only_view() -> anyhow::Result<OwnedFd> {
    let (parent, child) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("socketpair")?;
    // SAFETY: pinc is single-threaded here (before logging or libcontainer
    // start threads), so the child may run arbitrary code before exiting.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            drop(parent);
            let code = i32::from(child_read_only_view(&child).is_err());
            // SAFETY: _exit ends the child without running the parent's
            // atexit handlers or flushing its buffers twice.
            unsafe { libc::_exit(code) };
        }
        ForkResult::Parent { child: pid } => {
            drop(child);
            let mut byte = [0u8; 1];
            let mut iov = [std::io::IoSliceMut::new(&mut byte)];
            let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
            let received = recvmsg::<()>(
                parent.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            );
            let _ = nix::sys::wait::waitpid(pid, None);
            let msg = received.context("receiving the read-only view")?;
            for cmsg in msg.cmsgs().context("control messages")? {
                if let ControlMessageOwned::ScmRights(fds) = cmsg {
                    if let Some(&fd) = fds.first() {
                        // SAFETY: the kernel just installed this descriptor for us
                        // and nothing else owns it.
                        return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
                    }
                }
            }
            anyhow::bail!(
                "could not make a read-only view of the pinc binary (needs CAP_SYS_ADMIN)"
            )
        }
    }
}

/// Copies the running binary into a sealed memfd (the slow fallback).
fn sealed_copy(exe: &File) -> anyhow::Result<OwnedFd> {
    let name = CString::new("pinc").context("memfd name")?;
    let memfd = memfd_create(
        &name,
        MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING,
    )
    .context("memfd_create")?;
    let len = exe.metadata().context("stat /proc/self/exe")?.len() as usize;
    let mut copied = 0;
    while copied < len {
        let n = nix::sys::sendfile::sendfile(memfd.as_fd(), exe.as_fd(), None, len - copied)
            .context("copying /proc/self/exe into a memfd")?;
        if n == 0 {
            break;
        }
        copied += n;
    }
    fcntl(memfd.as_raw_fd(), FcntlArg::F_ADD_SEALS(SEALS)).context("sealing the memfd")?;
    Ok(memfd)
}

/// Re-executes from a read-only or sealed copy unless already safe.
pub fn ensure() -> anyhow::Result<()> {
    let exe = File::open("/proc/self/exe").context("open /proc/self/exe")?;
    if already_safe(&exe) {
        return Ok(());
    }
    let fd = match read_only_view() {
        Ok(fd) => fd,
        Err(_) => sealed_copy(&exe)?,
    };
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.into_encoded_bytes()))
        .collect::<Result<_, _>>()
        .context("argument with a NUL byte")?;
    // The re-executed binary's /proc/self/exe no longer names its install
    // folder; keep it for finding pinc-hook beside it.
    let install_path = std::fs::read_link("/proc/self/exe").ok();
    let env: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| k != "PINC_EXE")
        .chain(install_path.map(|p| ("PINC_EXE".into(), p.into_os_string())))
        .map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend(v.into_encoded_bytes());
            CString::new(kv)
        })
        .collect::<Result<_, _>>()
        .context("environment with a NUL byte")?;
    nix::unistd::fexecve(fd.as_raw_fd(), &args, &env).context("re-executing pinc read-only")?;
    Ok(())
}
