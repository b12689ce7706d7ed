//! Hooks: order and the state each one receives.

use super::LifeCase;

pub fn cases() -> Vec<LifeCase> {
    Vec::new()
}
