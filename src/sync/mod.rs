//! The sync engine: read the users in scope, map them, compare with the target and the
//! state file, guard against accidents, and write what changed.
//!
//! One sync runs as named steps, each in a file of its own: `read` (Entra and the target),
//! the pure [`plan`] (match, decide), what leavers still hold ([`holdings`]), the guards
//! ([`safety`]), `apply` (the writers) and `record` (the state file). [`engine`] runs them in order; [`report`] is what a run
//! produced, as every output reads it.

mod ahead;
mod apply;
pub mod changes;
pub mod engine;
mod error;
pub mod holdings;
mod listing;
mod order;
pub mod outcome;
pub mod plan;
mod read;
pub mod reconcile;
mod record;
pub mod report;
pub mod safety;
mod stop;
mod unread;

pub use error::SyncError;
pub use read::selection;
