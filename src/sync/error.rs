//! Why a sync failed, with what it wrote anyway when it failed part-way.

use super::outcome::Outcome;
use crate::graph::GraphError;
use crate::state::StateError;
use crate::targets::TargetError;

/// Why a sync failed. Nothing was written to the target, except by the syncs that failed
/// once they had written: [`SyncError::GraphAfterCreates`] and
/// [`SyncError::StateAfterWrites`], which hold what was made.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Reading Entra failed: the run stops before planning, so nothing is deactivated.
    #[error("reading users from Graph failed; nothing was written: {0}")]
    Graph(#[from] GraphError),
    /// Reading Entra failed after users certain to be created were created while reading
    /// (no other write is made before the read completes).
    #[error(
        "reading users from Graph failed; {created} new users created while reading are \
         remembered ({failed} creates failed), nothing else was written: {error}",
        created = .made.counts.created,
        failed = .made.counts.failed
    )]
    GraphAfterCreates {
        /// Why the read failed.
        error: GraphError,
        /// What was written: the creates sent (its plan's creates), their counts and
        /// failures.
        made: Box<Outcome>,
    },
    /// The user a run over one user names cannot be read from Graph as one user (none has
    /// that name, or several have).
    #[error("{0}; nothing was written")]
    User(String),
    /// The target's users could not be listed.
    #[error("listing the target's users failed; nothing was written: {0}")]
    Target(#[from] TargetError),
    /// The state file is unusable.
    #[error("{0}")]
    State(#[from] StateError),
    /// The state file failed once writes had been made: they are in the report and the CSV
    /// of changes, and those it could not remember are found again by key on the next run.
    #[error(
        "{error} (after {writes} writes to the target)",
        writes = .made.creates_sent() + .made.plan.updates.len()
    )]
    StateAfterWrites {
        /// Why the state file failed.
        error: StateError,
        /// What was written.
        made: Box<Outcome>,
    },
}

impl SyncError {
    /// Whether the sync ended because it was stopped from outside while reading.
    pub fn stopped(&self) -> bool {
        matches!(
            self,
            SyncError::Graph(GraphError::Stopped)
                | SyncError::GraphAfterCreates {
                    error: GraphError::Stopped,
                    ..
                }
        )
    }

    /// What a failed sync wrote anyway, if anything.
    pub fn made(&self) -> Option<&Outcome> {
        match self {
            SyncError::GraphAfterCreates { made, .. }
            | SyncError::StateAfterWrites { made, .. } => Some(made),
            _ => None,
        }
    }
}
