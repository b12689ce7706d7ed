//! `pause` and `resume`: freezing and thawing a container (the freezer).

use super::load::{locked, require_cgroups, wrong_state};
use crate::error::{Error, Result};
use crate::RuntimeRoot;

pub fn pause(root: &RuntimeRoot, id: &str) -> Result<()> {
    let (_lock, mut container) = locked(root, id)?;
    require_cgroups(&container, "pause")?;
    if !container.can_pause() {
        return Err(wrong_state(&container, "pause", ""));
    }
    container
        .pause()
        .map_err(Error::lib(format!("failed to pause container {id:?}")))?;
    crate::state::state_copy::keep(&container.root);
    Ok(())
}

pub fn resume(root: &RuntimeRoot, id: &str) -> Result<()> {
    let (_lock, mut container) = locked(root, id)?;
    require_cgroups(&container, "resume")?;
    if !container.can_resume() {
        return Err(wrong_state(&container, "resume", ""));
    }
    container
        .resume()
        .map_err(Error::lib(format!("failed to resume container {id:?}")))?;
    crate::state::state_copy::keep(&container.root);
    Ok(())
}
