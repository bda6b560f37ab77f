//! The sync engine: read the users in scope, map them, compare with the target and the
//! state file, guard against accidents, and write what changed.

pub mod engine;
pub mod plan;
pub mod safety;
