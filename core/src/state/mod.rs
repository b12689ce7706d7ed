//! State plumbing under the runtime root: the root itself, container ids,
//! per-id locks, pinc's sidecar record, the state.json copy, and crash
//! recovery (journal, reclaim, orphans).

pub mod id;
pub mod lock;
pub mod orphans;
pub mod reclaim;
pub mod root;
pub mod sidecar;
pub mod state_copy;
