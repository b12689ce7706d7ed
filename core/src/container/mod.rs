//! The lifecycle verbs, one module each, over libcontainer's `Container`.

pub mod create;
pub mod events;
pub mod list;
pub mod ps;
pub mod run;
pub mod state;
pub mod update;

pub use state::{delete, kill, load, pause, resume, start, state, status_name, view, StateView};
