//! containerd-shim-pinc-v2: a containerd shim v2 (task API v2) that runs
//! containers with the `pinc` binary, as containerd-shim-runc-v2 runs runc.

mod config;
mod console;
mod errors;
mod io;
mod lifecycle;
mod mounts;
mod oom;
mod process;
mod reaper;
mod runtime;
mod service;
mod shim;
mod stats;

fn main() -> anyhow::Result<()> {
    // Parses containerd's flags (-namespace, -id, -address, start|delete),
    // sets up the log fifo, the subreaper and the ttrpc server.
    containerd_shim::run::<shim::PincShim>("io.containerd.pinc.v2", None);
    Ok(())
}
