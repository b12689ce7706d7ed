//! `start`: runs a created container's process, then its poststart hooks.

use super::load::{locked, wrong_state};
use crate::error::{Error, Result};
use crate::process::late_hooks::{self, Kind};
use crate::RuntimeRoot;

pub fn start(root: &RuntimeRoot, id: &str) -> Result<()> {
    let (_lock, mut container) = locked(root, id)?;
    crate::crash::point("start:locked");
    if !container.can_start() {
        return Err(wrong_state(&container, "start", ""));
    }
    // poststart hooks run after the start, and a failure is a warning (see
    // late_hooks). runc 1.1.5 runs them during `create` instead and fails
    // the create; pinc follows the runtime-spec.
    let poststart = late_hooks::take(&container.root, Kind::Poststart)?;
    if let Err(e) = container.start() {
        poststart.restore(&container.root);
        return Err(Error::lib(format!("failed to start container {id:?}"))(e));
    }
    crate::crash::point("start:started");
    crate::state::state_copy::keep(&container.root);
    poststart.run(&container.state, Some(&container.root));
    Ok(())
}
