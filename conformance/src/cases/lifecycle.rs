//! Lifecycle: state transitions, kill and delete semantics, runtime flags.

use super::LifeCase;

pub fn cases() -> Vec<LifeCase> {
    Vec::new()
}
