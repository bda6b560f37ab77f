//! What one sync did, as the engine hands it back: the plan and the writes sent, what the
//! guards decided, the counts, the failures, the requests and the timings. The run report
//! ([`super::report`]) and the tests read it.

use foldhash::HashMap as FastMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;

use super::changes::ReadMode;
use super::plan::{EntityName, Plan, Update};
use super::safety::Verdict;
use crate::config::NotifyOn;
use crate::graph::GraphClient;
use crate::state::RunCounts;
use crate::targets::Target;

/// One write that failed.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The user, as the admin knows them.
    pub user: String,
    /// `create`, `update`, `deactivate`, `reactivate`.
    pub action: &'static str,
    /// Why.
    pub error: String,
}

/// How a sync went.
#[derive(Debug)]
pub struct Outcome {
    /// How Entra was read: in full, by delta, or some users only.
    pub mode: ReadMode,
    /// Why a run read in full rather than by delta; `None` for a delta run.
    pub mode_reason: Option<String>,
    /// The plan made. After a run, its creates and updates are the writes that were sent
    /// (each done, or failed as [`failures`](Self::failures) says); writes a stopped run
    /// never sent, and held deactivations, are not in it.
    pub plan: Plan,
    /// Deactivations planned but held back (the limit, a stopped run, or users who still
    /// hold assets).
    pub held: Vec<Update>,
    /// Why deactivations of users who still hold assets were held
    /// (`hold_leavers_with_assets`); `None` when none were.
    pub held_for_assets: Option<String>,
    /// What the guards decided.
    pub verdict: Verdict,
    /// Users read from Graph.
    pub source_users: usize,
    /// Target users listed (or, for a target that is not listed, found by key).
    pub target_users: usize,
    /// Whether the target was listed whole.
    pub listed_whole: bool,
    /// Target users owned before the run.
    pub owned: usize,
    /// What was written (all zero for a plan).
    pub counts: RunCounts,
    /// Writes that failed.
    pub failures: Vec<Failure>,
    /// Whether the run was stopped (Ctrl-C, SIGTERM, credentials refused) before all writes.
    pub interrupted: bool,
    /// The status the target answered when it refused the credentials and so stopped the
    /// writes (401, 403); `None` when it did not.
    pub refused_credentials: Option<u16>,
    /// Whether the run stopped because no credential for the target could be had (a
    /// session that could not be renewed, a token endpoint that refused): it ends failed.
    pub signed_out: bool,
    /// Requests to Graph.
    pub graph_requests: u64,
    /// Graph requests that were tries again.
    pub graph_retries: u64,
    /// Target requests that were tries again.
    pub target_retries: u64,
    /// Requests to the target.
    pub target_requests: u64,
    /// Write requests to the target.
    pub target_writes: u64,
    /// How long the attempts sent to Graph took, and how many Graph answered 429.
    pub graph_latency: crate::http::Latency,
    /// How long the attempts sent to the target took, and how many it answered 429.
    pub target_latency: crate::http::Latency,
    /// Reading both sides (creates certain early go out meanwhile).
    pub read_time: Duration,
    /// From the first write to the last (creates made while reading overlap the read).
    pub write_time: Duration,
    /// The target ids of the users created in this run, by Entra id, kept only when the
    /// mapping has fields that refer to users (to fill those references in).
    pub created_ids: FastMap<String, String>,
    /// How many creates were sent whose records were let go once written
    /// ([`SyncOptions::count_creates_only`](super::engine::SyncOptions)); the others are
    /// in the plan.
    pub creates_let_go: usize,
    /// Users found unchanged by their seals alone, without being mapped (see
    /// `sync::plan::Sealer`).
    pub sealed: usize,
    /// Writes made after the creates only to set a reference the creates could not (a
    /// cycle of managers).
    pub second_pass: usize,
    /// The entities created for the users' references (departments, locations…): each
    /// with its target id, or why its create failed.
    pub entities: Vec<(EntityName, Result<String, String>)>,
    /// Why the run was a full reconciliation; `None` for a normal run.
    pub reconcile: Option<super::reconcile::Reason>,
    /// What the scope groups and exclusions (`groups`, `exclude_groups`) did; `None` when
    /// the config names none.
    pub scope: Option<crate::graph::groups::ScopeCounts>,
}

impl Outcome {
    /// Keeps the target ids of users created in this run (by Entra id).
    pub(super) fn keep_created(&mut self, made: FastMap<String, String>) {
        if self.created_ids.is_empty() {
            self.created_ids = made;
        } else {
            self.created_ids.extend(made);
        }
    }

    /// Notes the requests made to both sides.
    pub(super) fn count_requests(&mut self, client: &GraphClient, target: &dyn Target) {
        self.graph_requests = client.stats.requests.load(Ordering::Relaxed);
        self.graph_retries = client.stats.retries.load(Ordering::Relaxed);
        let stats = target.stats();
        self.target_requests = stats.requests.load(Ordering::Relaxed);
        self.target_retries = stats.retries.load(Ordering::Relaxed);
        self.target_writes = stats.writes.load(Ordering::Relaxed);
        self.graph_latency = client.stats.meter.read();
        self.target_latency = stats.meter.read();
    }

    /// How many creates were sent, kept in the plan or let go.
    pub fn creates_sent(&self) -> usize {
        self.plan.creates.len() + self.creates_let_go
    }

    /// The Entra ids of the users whose creates were sent so far: those kept in the plan,
    /// and those created (whose ids are kept when the mapping names users, the only case
    /// where a later create asks).
    pub(super) fn created_early(&self) -> Vec<&str> {
        let kept = self.plan.creates.iter().map(|c| c.entra_id.as_str());
        kept.chain(self.created_ids.keys().map(String::as_str))
            .collect()
    }

    /// Whether the changes this run read must be read again by the next: a write failed,
    /// deactivations were held back, or the run stopped before all writes.
    pub fn replays(&self) -> bool {
        self.interrupted || !self.failures.is_empty() || !self.held.is_empty()
    }

    /// A sync that has not read or written anything yet; `owned` target users are owned.
    pub(super) fn new(owned: usize) -> Outcome {
        Outcome {
            mode: ReadMode::Full,
            mode_reason: None,
            plan: Plan::default(),
            held: Vec::new(),
            held_for_assets: None,
            reconcile: None,
            scope: None,
            verdict: Verdict::Proceed,
            source_users: 0,
            target_users: 0,
            listed_whole: false,
            owned,
            counts: RunCounts::default(),
            failures: Vec::new(),
            interrupted: false,
            refused_credentials: None,
            signed_out: false,
            graph_requests: 0,
            graph_retries: 0,
            target_retries: 0,
            target_requests: 0,
            target_writes: 0,
            graph_latency: crate::http::Latency::default(),
            target_latency: crate::http::Latency::default(),
            read_time: Duration::ZERO,
            write_time: Duration::ZERO,
            created_ids: FastMap::default(),
            creates_let_go: 0,
            sealed: 0,
            second_pass: 0,
            entities: Vec::new(),
        }
    }

    /// How the sync ended: refused or limited by the guards, stopped, some writes failed,
    /// deactivations held because the users still hold assets, or all done.
    pub fn status(&self) -> RunStatus {
        match self.verdict {
            Verdict::Refuse(_) => RunStatus::Refused,
            Verdict::HoldDeactivations(_) => RunStatus::Limited,
            Verdict::Proceed if self.signed_out => RunStatus::Failed,
            Verdict::Proceed if self.interrupted => RunStatus::Stopped,
            Verdict::Proceed if !self.failures.is_empty() => RunStatus::Partial,
            Verdict::Proceed if self.held_for_assets.is_some() => RunStatus::Limited,
            Verdict::Proceed => RunStatus::Ok,
        }
    }

    /// The exit status ([`RunStatus::exit_code`]).
    pub fn exit_code(&self) -> i32 {
        self.status().exit_code()
    }

    /// What the guards said, when they held something back or refused.
    pub fn verdict_message(&self) -> Option<&str> {
        match &self.verdict {
            Verdict::Proceed => self.held_for_assets.as_deref(),
            Verdict::HoldDeactivations(m) | Verdict::Refuse(m) => Some(m),
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Every write was made.
    Ok,
    /// Some writes failed.
    Partial,
    /// The run was stopped (Ctrl-C, SIGTERM, credentials refused) before all writes.
    Stopped,
    /// Deactivations were held back by `max_deactivations`, or because the users still
    /// hold assets (`hold_leavers_with_assets`).
    Limited,
    /// The guards refused the plan: nothing more was written.
    Refused,
    /// The run could not run (config, mapping, target set-up, Graph, the state file).
    Failed,
}

impl RunStatus {
    /// The word the run history, the report and `status` use.
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Partial => "partial",
            RunStatus::Stopped => "stopped",
            RunStatus::Limited => "limited",
            RunStatus::Refused => "refused",
            RunStatus::Failed => "failed",
        }
    }

    /// The process exit code, for a scheduler: 0 all done; 1 some writes failed,
    /// deactivations were held or the run was stopped; 2 refused or could not run.
    pub fn exit_code(self) -> i32 {
        match self {
            RunStatus::Ok => 0,
            RunStatus::Partial | RunStatus::Stopped | RunStatus::Limited => 1,
            RunStatus::Refused | RunStatus::Failed => 2,
        }
    }

    /// Which of the webhook's `[notify] on` choices the run falls under.
    pub fn notify_on(self) -> NotifyOn {
        match self {
            RunStatus::Ok => NotifyOn::Ok,
            RunStatus::Partial | RunStatus::Stopped => NotifyOn::Partial,
            RunStatus::Limited => NotifyOn::Limited,
            RunStatus::Refused | RunStatus::Failed => NotifyOn::Failed,
        }
    }
}
