//! One small adapter per subcommand: parse options into a library call.

pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod hook_relay;
pub mod kill;
pub mod list;
pub mod placement;
pub mod ps;
pub mod run;
pub mod simple;
pub mod spec;
pub mod update;

use pinc_core::rootless::RootlessFlag;
use pinc_core::RuntimeRoot;

use crate::cli::{Global, Rootless};

/// The runtime root for commands that create state.
pub fn root_for_create(global: &Global) -> anyhow::Result<RuntimeRoot> {
    Ok(RuntimeRoot::open(&root_path(global))?)
}

/// The runtime root for commands that only read or act on existing state.
pub fn root(global: &Global) -> RuntimeRoot {
    RuntimeRoot::existing(&root_path(global))
}

fn root_path(global: &Global) -> std::path::PathBuf {
    match &global.root {
        Some(p) => p.clone(),
        None => pinc_core::state::root::default_path(
            nix::unistd::geteuid().as_raw(),
            std::env::var("XDG_RUNTIME_DIR").ok().as_deref(),
        ),
    }
}

pub fn rootless(global: &Global) -> RootlessFlag {
    match global.rootless {
        Rootless::True => RootlessFlag::True,
        Rootless::False => RootlessFlag::False,
        Rootless::Auto => RootlessFlag::Auto,
    }
}

/// Prints JSON to stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
