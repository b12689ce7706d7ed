//! Processes pinc starts in or for a container: `exec`, the executor that
//! turns the spec's process into an execve, signals, and the hooks pinc runs
//! or relays itself.

pub mod exec;
pub mod executor;
pub mod hook_relay;
pub mod late_hooks;
pub mod signal;
