//! Re-executing from a sealed in-memory copy of the binary, so a container
//! that reaches /proc/<pid>/exe of a pinc process cannot overwrite pinc on the
//! host (CVE-2019-5736). Done only for create, run and exec: the commands whose
//! processes enter a container.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use anyhow::Context;
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};

const SEALS: SealFlag = SealFlag::F_SEAL_SEAL
    .union(SealFlag::F_SEAL_SHRINK)
    .union(SealFlag::F_SEAL_GROW)
    .union(SealFlag::F_SEAL_WRITE);

/// True when this process already runs from a sealed memfd.
fn is_sealed(exe: &File) -> bool {
    fcntl(exe.as_raw_fd(), FcntlArg::F_GET_SEALS)
        .map(|s| SealFlag::from_bits_truncate(s).contains(SEALS))
        .unwrap_or(false)
}

/// Copies the running binary into a sealed memfd.
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
        // The kernel copies page-cache pages; no user-space buffer needed.
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

/// Re-executes from a sealed copy unless already running from one.
pub fn ensure() -> anyhow::Result<()> {
    let exe = File::open("/proc/self/exe").context("open /proc/self/exe")?;
    if is_sealed(&exe) {
        return Ok(());
    }
    let memfd = sealed_copy(&exe)?;
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.into_encoded_bytes()))
        .collect::<Result<_, _>>()
        .context("argument with a NUL byte")?;
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend(v.into_encoded_bytes());
            CString::new(kv)
        })
        .collect::<Result<_, _>>()
        .context("environment with a NUL byte")?;
    nix::unistd::fexecve(memfd.as_raw_fd(), &args, &env)
        .context("re-executing from a sealed copy")?;
    Ok(())
}
