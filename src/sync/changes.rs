//! Runs over some users only, and how a run reads Entra.
//!
//! A run reads Entra whole (a full run, or a full reconciliation) or only what changed
//! since the last run: Graph's users delta from the link the state keeps for this config
//! (see [`crate::graph::delta`]). `run --user` reads one user. A run over some users plans
//! them alone ([`super::plan::Prior::only`]): their target users are looked up one by one,
//! nothing is listed, and the owned users outside the run are neither gone nor touched.
//!
//! The delta link is stored only once a run's writes are recorded, and only when every
//! write succeeded and none was held back: otherwise the next run reads the same changes
//! again (replaying them is harmless: what is already written compares unchanged).

use serde_json::Value as Json;

use super::reconcile::Reason;
use crate::graph::delta;
use crate::graph::{GraphClient, UserQuery};

/// How a run read Entra.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadMode {
    /// Every user in scope; the target listed (or looked up) for all of them.
    #[default]
    Full,
    /// A full run that compared every field with the target ([`super::reconcile`]).
    Reconcile,
    /// Only the users that changed since the last run (Graph's users delta).
    Delta,
    /// Only the users named (`run --user`).
    Users,
}

impl ReadMode {
    /// Its name in the report and `plan --json`: `full`, `reconcile`, `delta`, `user`.
    pub fn name(self) -> &'static str {
        match self {
            ReadMode::Full => "full",
            ReadMode::Reconcile => "reconcile",
            ReadMode::Delta => "delta",
            ReadMode::Users => "user",
        }
    }
}

/// The users a run over some users concerns.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Users in scope, as Graph returned them (the manager attached when the mapping reads
    /// it): each is brought in line.
    pub present: Vec<Json>,
    /// Ids of users that left scope (deleted, soft-deleted, disabled out of the filter):
    /// the target user each owns is deactivated as in a full run.
    pub gone: Vec<String>,
}

impl Changes {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.present.is_empty() && self.gone.is_empty()
    }

    /// How many users it names.
    pub fn len(&self) -> usize {
        self.present.len() + self.gone.len()
    }

    /// The Entra ids of the users it names.
    pub fn ids(&self) -> foldhash::HashSet<String> {
        self.present
            .iter()
            .filter_map(|u| u.get("id").and_then(Json::as_str).map(str::to_owned))
            .chain(self.gone.iter().cloned())
            .collect()
    }
}

/// The delta links the state keeps, by fingerprint ([`delta::fingerprint`]).
pub type StoredLinks = Vec<(String, String)>;

/// How a run is to read Entra, decided before it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Follow this stored delta link.
    Delta(String),
    /// Read everything.
    Full {
        /// Why not by delta.
        why: String,
        /// Whether a delta link is taken for the next run (not when delta runs are
        /// unavailable to this config).
        fresh: bool,
    },
}

/// Decides how a run reads: by delta when the state keeps a link under this run's
/// `fingerprint` (the query, the config and the mapping) and no full reconciliation is due,
/// else in full, saying why.
pub fn start(
    client: &GraphClient,
    (query, fingerprint): (&UserQuery, &str),
    stored: &StoredLinks,
    reconcile: Option<Reason>,
    wanted: bool,
) -> Start {
    if !wanted {
        return Start::Full {
            why: "`delta = no` in [sync]".into(),
            fresh: false,
        };
    }
    if let Some(why) = delta::unavailable(query) {
        return Start::Full {
            why: format!("delta runs are unavailable: {why}"),
            fresh: false,
        };
    }
    let full = |why: &str| Start::Full {
        why: why.to_owned(),
        fresh: true,
    };
    if let Some(reason) = reconcile {
        return full(&format!("a full reconciliation ({})", reason.name()));
    }
    match stored.iter().find(|(f, _)| f == fingerprint) {
        None if stored.is_empty() => full("no delta link is stored yet"),
        None => full(
            "the config, the filter or the mapping changed since the last run (or an older \
             version of userload stored its delta link)",
        ),
        Some((_, link)) if !delta::is_own_link(client, link) => {
            full("the stored delta link is not a users delta link of this Graph")
        }
        Some((_, link)) => Start::Delta(link.clone()),
    }
}
