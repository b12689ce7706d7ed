//! Crash points, for the crash tests (`tests/tests/crash.rs`): with
//! `PINC_CRASH_AT=<command>:<step>` in its environment, pinc SIGKILLs itself
//! right after that step, as the OOM killer or Slurm's KillWait would. A
//! debugging aid, documented in ARCHITECTURE.md; the variable is read once.
//!
//! The steps, in order, and what each leaves behind is described in
//! ARCHITECTURE.md ("Crash safety").

use std::sync::OnceLock;

/// Dies here when `PINC_CRASH_AT` names `step`.
pub fn point(step: &str) {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    let at = AT.get_or_init(|| std::env::var("PINC_CRASH_AT").ok());
    if at.as_deref() == Some(step) {
        let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGKILL);
    }
}
