//! The lifecycle verbs, one module each, over libcontainer's `Container`;
//! `load` holds what they share: loading, locking and common refusals.

pub mod create;
pub mod delete;
pub mod events;
pub mod kill;
pub mod list;
pub mod load;
pub mod pause;
pub mod ps;
pub mod run;
pub mod start;
pub mod state;
pub mod update;
