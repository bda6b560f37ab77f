//! One sync: read Entra and the target side by side, plan, judge, write, remember.
//!
//! Graph is read page by page and each user mapped as its page arrives, while the target's
//! users are listed at the same time. Once the listing is complete, users the plan is
//! certain to create (see [`EarlyCreates`]) are created while the read goes on; every other
//! write waits for the plan. Writes go out with bounded concurrency (and an optional rate
//! limit), creates and updates first, deactivations last and only if the guards allow
//! them. Each write's outcome is recorded in the state file soon after it completes (in
//! transactions of a few thousand); each create is recorded as pending before it is sent,
//! so a run killed half-way never creates a user twice. Ctrl-C or SIGTERM stops starting
//! new writes: those under way finish, the state is saved and the summary printed.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use super::plan::{
    self, Create, Early, EarlyCreates, Listed, Plan, PlanOptions, Skipped, SourceUser, Update,
    UpdateKind,
};
use super::safety::{self, Verdict};
use crate::config::Config;
use crate::graph::users_file::label;
use crate::graph::{GraphClient, GraphError, Managers, Selection, UserPager, UserQuery};
use crate::mapping::{Context, Mapping};
use crate::state::{Owned, OwnedUsers, RunCounts, State, StateError};
use crate::targets::{Target, TargetError, TargetUser, Write};

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
        writes = .made.plan.creates.len() + .made.plan.updates.len()
    )]
    StateAfterWrites {
        /// Why the state file failed.
        error: StateError,
        /// What was written.
        made: Box<Outcome>,
    },
}

impl SyncError {
    /// What a failed sync wrote anyway, if anything.
    pub fn made(&self) -> Option<&Outcome> {
        match self {
            SyncError::GraphAfterCreates { made, .. }
            | SyncError::StateAfterWrites { made, .. } => Some(made),
            _ => None,
        }
    }
}

/// What the caller asks of a sync.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// `--allow-deactivations N`.
    pub allow_deactivations: Option<usize>,
    /// The run's start time (RFC 3339), the mapping's `connectorSyncTime`.
    pub sync_time: String,
}

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
    /// The plan made. After a run, its creates and updates are the writes that were sent
    /// (each done, or failed as [`failures`](Self::failures) says); writes a stopped run
    /// never sent, and held deactivations, are not in it.
    pub plan: Plan,
    /// Deactivations planned but held back (the limit, or a stopped run).
    pub held: Vec<Update>,
    /// What the guards decided.
    pub verdict: Verdict,
    /// Users read from Graph.
    pub source_users: usize,
    /// Target users listed.
    pub target_users: usize,
    /// Target users owned before the run.
    pub owned: usize,
    /// What was written (all zero for a plan).
    pub counts: RunCounts,
    /// Writes that failed.
    pub failures: Vec<Failure>,
    /// Whether the run was stopped (Ctrl-C, SIGTERM, credentials refused) before all writes.
    pub interrupted: bool,
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
    /// Reading both sides (creates certain early go out meanwhile).
    pub read_time: Duration,
    /// From the first write to the last (creates made while reading overlap the read).
    pub write_time: Duration,
}

impl Outcome {
    /// A sync that has not read or written anything yet; `owned` target users are owned.
    fn new(owned: usize) -> Outcome {
        Outcome {
            plan: Plan::default(),
            held: Vec::new(),
            verdict: Verdict::Proceed,
            source_users: 0,
            target_users: 0,
            owned,
            counts: RunCounts::default(),
            failures: Vec::new(),
            interrupted: false,
            graph_requests: 0,
            graph_retries: 0,
            target_retries: 0,
            target_requests: 0,
            target_writes: 0,
            read_time: Duration::ZERO,
            write_time: Duration::ZERO,
        }
    }

    /// The exit status: 0 all done, 1 some writes failed, deactivations were held or the run
    /// was stopped, 2 refused.
    pub fn exit_code(&self) -> i32 {
        match self.verdict {
            Verdict::Refuse(_) => 2,
            Verdict::HoldDeactivations(_) => 1,
            Verdict::Proceed if !self.failures.is_empty() || self.interrupted => 1,
            Verdict::Proceed => 0,
        }
    }

    /// The word the run history keeps.
    pub fn status(&self) -> &'static str {
        match (&self.verdict, self.exit_code()) {
            (Verdict::Refuse(_), _) => "refused",
            (Verdict::HoldDeactivations(_), _) => "limited",
            (_, 0) => "ok",
            _ if self.interrupted => "stopped",
            _ => "partial",
        }
    }
}

/// Set by Ctrl-C or SIGTERM: no new write starts (and the daemon starts no new run).
#[derive(Debug, Default, Clone)]
pub struct StopSignal(Arc<Stopping>);

#[derive(Debug, Default)]
struct Stopping {
    stopped: AtomicBool,
    notify: tokio::sync::Notify,
}

impl StopSignal {
    /// Stops the run at the next write.
    pub fn stop(&self) {
        self.0.stopped.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    /// Whether the run should stop.
    pub fn stopped(&self) -> bool {
        self.0.stopped.load(Ordering::SeqCst)
    }

    /// Returns once [`stop`](Self::stop) was called.
    pub async fn wait(&self) {
        let notified = self.0.notify.notified();
        tokio::pin!(notified);
        // Registered before the flag is read, so a stop in between is not missed.
        notified.as_mut().enable();
        if self.stopped() {
            return;
        }
        notified.await;
    }

    /// Stops the run on Ctrl-C or SIGTERM, from a background task.
    pub fn on_signals(&self) {
        let stop = self.clone();
        tokio::spawn(async move {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{SignalKind, signal};
                let Ok(mut term) = signal(SignalKind::terminate()) else {
                    return;
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            #[cfg(not(unix))]
            {
                let _ = tokio::signal::ctrl_c().await;
            }
            tracing::warn!("stopping: writes under way finish, then the state is saved");
            stop.stop();
        });
    }
}

/// Reads the users in scope and maps each as its page arrives; `expected` is how many there
/// probably are. With `alongside`, what the other side tells lightens the plan as the read
/// goes on (see [`Alongside`]).
pub async fn read_source(
    config: &Config,
    mapping: &Mapping,
    sync_time: &str,
    client: &Arc<GraphClient>,
    expected: usize,
    alongside: Option<Alongside<'_>>,
) -> Result<Read, GraphError> {
    let selection = Selection {
        properties: mapping.select().into_iter().collect(),
        manager: mapping.manager_select().map(|m| m.into_iter().collect()),
    };
    let query = UserQuery::new(&config.source, selection);
    let managers = Managers::read(client, &query).await?;
    let ctx = Context {
        settings: &config.settings,
        sync_time,
    };
    let mut pager = UserPager::new(Arc::clone(client), &query);
    let mut read = Read {
        users: Vec::with_capacity(expected),
        ..Read::default()
    };
    let mut sorter = alongside.map(|alongside| Sorter {
        alongside,
        ready: None,
        from: 0,
    });
    while let Some(page) = pager.next_page().await? {
        for mut user in page {
            if let Some(managers) = &managers {
                managers.attach(&mut user);
            }
            let entra_id = user
                .get("id")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned();
            let mapped = mapping.map(&user, &ctx);
            read.users
                .push(SourceUser::new(mapping, entra_id, label(&user), mapped));
        }
        if let Some(sorter) = &mut sorter {
            sorter.sort(mapping, &mut read);
        }
    }
    Ok(read)
}

/// The users read from Entra.
#[derive(Debug, Default)]
pub struct Read {
    /// The users left to the plan.
    pub users: Vec<SourceUser>,
    /// Creates handed to the writers while reading ([`EarlyCreates`]).
    pub created: usize,
    /// Users left alone while reading, and why.
    pub skipped: Vec<Skipped>,
}

impl Read {
    /// How many users Entra returned.
    pub fn total(&self) -> usize {
        self.users.len() + self.created + self.skipped.len()
    }
}

/// What the read learns from the other side once the target's listing is complete. The
/// record of a user the state remembers exactly as it is now, for a target user the
/// listing still holds, is dropped: the planner never reads it, so a quiet night holds one
/// record per user (the target's), not two. And with `early`, the creates the plan is
/// certain of ([`EarlyCreates`]) are sent to the writers at once rather than after the
/// whole read.
pub struct Alongside<'a> {
    /// The state's owned users.
    owned: &'a OwnedUsers,
    /// The target's users, set when the listing is complete.
    listing: &'a std::sync::OnceLock<Vec<Listed>>,
    /// The run's plan options, and where the writers take creates from.
    early: Option<(&'a PlanOptions, UnboundedSender<Action>)>,
}

impl<'a> Alongside<'a> {
    /// Records are dropped, nothing is created while reading.
    pub fn new(
        owned: &'a OwnedUsers,
        listing: &'a std::sync::OnceLock<Vec<Listed>>,
    ) -> Alongside<'a> {
        Alongside {
            owned,
            listing,
            early: None,
        }
    }
}

/// Applies [`Alongside`] to the users read, page by page.
struct Sorter<'a> {
    alongside: Alongside<'a>,
    /// Once the listing is complete: the listed target ids, and the early creates' decider.
    ready: Option<(foldhash::HashSet<&'a str>, Option<EarlyCreates<'a>>)>,
    /// Users read so far that were not looked at yet start here.
    from: usize,
}

impl Sorter<'_> {
    /// Looks at the users read since the last call (all of them once the listing is there).
    fn sort(&mut self, mapping: &Mapping, read: &mut Read) {
        let Alongside {
            owned,
            listing,
            early,
        } = &self.alongside;
        if self.ready.is_none() {
            let Some(listing) = listing.get() else {
                return;
            };
            let ids = listing.iter().map(|u| u.id.as_str()).collect();
            let decider = early
                .as_ref()
                .and_then(|(options, _)| EarlyCreates::new(mapping, listing, owned, options));
            self.ready = Some((ids, decider));
        }
        let Some((listed, decider)) = &mut self.ready else {
            return;
        };
        // Once the writers are gone (the run was stopped, or the state failed), every user
        // is left to the plan.
        if let (Some(decider), Some((_, writers))) = (decider, early)
            && !writers.is_closed()
        {
            for user in read.users.split_off(self.from) {
                match decider.decide(user) {
                    Early::Later(user) => read.users.push(user),
                    Early::Skip(skipped) => read.skipped.push(skipped),
                    // A create the writers can no longer take is one of a stopped run's
                    // writes never sent.
                    Early::Create(create) => {
                        if writers.send(Action::Create(create)).is_ok() {
                            read.created += 1;
                        }
                    }
                }
            }
        }
        for user in &mut read.users[self.from..] {
            let Ok(mapped) = &mut user.mapped else {
                continue;
            };
            let unchanged = owned.get(&user.entra_id).is_some_and(|o| {
                o.hash.as_deref() == Some(mapped.hash.as_str())
                    && o.target_id.as_deref().is_some_and(|id| listed.contains(id))
            });
            if unchanged {
                mapped.drop_record();
            }
        }
        self.from = read.users.len();
    }
}

/// Runs one sync: plans it, and with a state file (open and locked) writes it. Without one
/// (`plan`) nothing is written anywhere. `owned` is what the state file remembers.
pub async fn sync(
    config: &Config,
    mapping: &Mapping,
    target: &Arc<dyn Target>,
    owned: &OwnedUsers,
    mut state: Option<&mut State>,
    options: &SyncOptions,
    stop: &StopSignal,
) -> Result<Outcome, SyncError> {
    let started = Instant::now();
    let client = Arc::new(GraphClient::new(&config.source)?);
    // About as many users as last time: room for them from the start, rather than lists
    // that double (and are briefly held twice) as they grow.
    let expected = owned.len() + owned.len() / 16;
    let plan_options = PlanOptions {
        mode: config.sync.mode,
        deactivate: config.sync.deactivate,
        create_disabled: config.sync.create_disabled,
        folds_case: mapping
            .fields()
            .iter()
            .map(|f| target.folds_case(f.target()))
            .collect(),
        partial_view: !config.target.list,
    };
    let writer = Writer {
        mapping,
        target: Arc::clone(target),
        pacer: config
            .sync
            .rate_limit
            .map(|rate| Arc::new(Pacer::new(rate))),
        stop,
        concurrency: config.sync.concurrency,
        began: std::sync::OnceLock::new(),
        ended: std::sync::Mutex::new(None),
    };
    let mut outcome = Outcome::new(owned.values().filter(|o| o.target_id.is_some()).count());
    let (read, listed, read_end) = if config.target.list {
        let listing = std::sync::OnceLock::new();
        // A run that writes user by user starts the creates it is certain of while Entra
        // is still being read; a failed read stops them (those under way finish).
        let (writers, creates) = match (&state, target.batch_size()) {
            (Some(_), None) => {
                let (writers, creates) = tokio::sync::mpsc::unbounded_channel();
                (Some((&plan_options, writers)), Some(creates))
            }
            _ => (None, None),
        };
        let read_failed = StopSignal::default();
        let alongside = Alongside {
            owned,
            listing: &listing,
            early: writers,
        };
        let (read, listed, early) = tokio::join!(
            async {
                let read = read_source(
                    config,
                    mapping,
                    &options.sync_time,
                    &client,
                    expected,
                    Some(alongside),
                )
                .await;
                if read.is_err() {
                    read_failed.stop();
                }
                read.map(|read| (read, Instant::now()))
            },
            async {
                let listed = list_target(mapping, target.as_ref(), expected).await?;
                let _ = listing.set(listed);
                Ok::<Instant, TargetError>(Instant::now())
            },
            async {
                match (creates, state.as_deref_mut()) {
                    (Some(creates), Some(state)) => {
                        writer
                            .stream(creates, Some(&read_failed), state, &mut outcome)
                            .await
                    }
                    _ => Ok(()),
                }
            }
        );
        // The creates sent while reading are in the outcome's plan already.
        let read = match (early, read) {
            (Ok(()), Ok(read)) => read,
            (Err(error), _) => return Err(failed_after(error, outcome, &client, &writer)),
            (Ok(()), Err(error)) => {
                return Err(failed_after(error.into(), outcome, &client, &writer));
            }
        };
        let (read, read_end) = read;
        let read_end = read_end.max(listed?);
        (read, listing.into_inner().unwrap_or_default(), read_end)
    } else {
        let read =
            read_source(config, mapping, &options.sync_time, &client, expected, None).await?;
        let found = look_up(config, mapping, target.as_ref(), &read.users, owned).await?;
        let found = found.into_iter().map(|u| Listed::of(mapping, u)).collect();
        (read, found, Instant::now())
    };
    outcome.read_time = read_end - started;
    outcome.source_users = read.total();
    outcome.target_users = listed.len();
    tracing::info!(
        entra_users = outcome.source_users,
        target_users = outcome.target_users,
        early_creates = read.created,
        seconds = outcome.read_time.as_secs_f64(),
        "read Entra and the target"
    );
    let mut plan = plan::plan(mapping, read.users, &listed, owned, plan_options);
    plan.skipped.extend(read.skipped);
    outcome.verdict = safety::judge(
        outcome.source_users,
        outcome.owned,
        plan.count(UpdateKind::Deactivate),
        config.sync.max_deactivations,
        options.allow_deactivations,
    );
    tracing::info!(
        create = read.created + plan.creates.len(),
        update = plan.count(UpdateKind::Update),
        deactivate = plan.count(UpdateKind::Deactivate),
        reactivate = plan.count(UpdateKind::Reactivate),
        unchanged = plan.unchanged,
        skipped = plan.skipped.len(),
        "planned"
    );
    match &outcome.verdict {
        Verdict::Proceed => {}
        Verdict::HoldDeactivations(m) => tracing::warn!("{m}"),
        Verdict::Refuse(m) => tracing::error!("{m}"),
    }
    // After a run the plan holds the writes sent, those made while reading first.
    let early = std::mem::replace(&mut outcome.plan, plan).creates;
    if state.is_some() && matches!(outcome.verdict, Verdict::Refuse(_)) {
        // A refused run sends nothing more.
        outcome.plan.creates = early;
        outcome.plan.updates.clear();
    } else if let Some(state) = state {
        if let Err(error) = apply(&writer, state, &mut outcome, early).await {
            return Err(failed_after(error, outcome, &client, &writer));
        }
        outcome.write_time = writer.write_time();
        tracing::info!(
            created = outcome.counts.created,
            updated = outcome.counts.updated,
            deactivated = outcome.counts.deactivated,
            reactivated = outcome.counts.reactivated,
            failed = outcome.counts.failed,
            seconds = outcome.write_time.as_secs_f64(),
            "wrote"
        );
    }
    count_requests(&mut outcome, &client, target.as_ref());
    Ok(outcome)
}

/// The error of a sync that failed with `outcome` so far: with the writes it had made, if
/// any, so that the report and the CSV of changes list them.
fn failed_after(
    error: SyncError,
    mut outcome: Outcome,
    client: &GraphClient,
    writer: &Writer<'_>,
) -> SyncError {
    if outcome.plan.is_empty() {
        return error;
    }
    outcome.write_time = writer.write_time();
    outcome.interrupted = writer.stop.stopped();
    count_requests(&mut outcome, client, writer.target.as_ref());
    let made = Box::new(outcome);
    match error {
        SyncError::Graph(error) => SyncError::GraphAfterCreates { error, made },
        SyncError::State(error) => SyncError::StateAfterWrites { error, made },
        other => other,
    }
}

/// Notes in `outcome` the requests made to both sides.
fn count_requests(outcome: &mut Outcome, client: &GraphClient, target: &dyn Target) {
    outcome.graph_requests = client.stats.requests.load(Ordering::Relaxed);
    outcome.graph_retries = client.stats.retries.load(Ordering::Relaxed);
    let stats = target.stats();
    outcome.target_requests = stats.requests.load(Ordering::Relaxed);
    outcome.target_retries = stats.retries.load(Ordering::Relaxed);
    outcome.target_writes = stats.writes.load(Ordering::Relaxed);
}

/// Every target user, kept flat as its page arrives.
async fn list_target(
    mapping: &Mapping,
    target: &dyn Target,
    expected: usize,
) -> Result<Vec<Listed>, TargetError> {
    let mut listed = Vec::with_capacity(expected);
    target
        .list_each(&mut |user| listed.push(Listed::of(mapping, user)))
        .await?;
    Ok(listed)
}

/// For a target that cannot list its users (`list = false`): the target users this run
/// needs, looked up one by one by match key — users whose record changed since it was last
/// written (or never was), and owned users whose Entra user is gone. Users written
/// unchanged are not looked up at all.
async fn look_up(
    config: &Config,
    mapping: &Mapping,
    target: &dyn Target,
    source: &[SourceUser],
    owned: &OwnedUsers,
) -> Result<Vec<TargetUser>, TargetError> {
    let key_field = mapping.match_key();
    let present: std::collections::HashSet<&str> =
        source.iter().map(|s| s.entra_id.as_str()).collect();
    let mut keys: Vec<serde_json::Value> = Vec::new();
    for user in source {
        let Ok(record) = &user.mapped else { continue };
        let Some(key) = &record.key else {
            continue;
        };
        let unchanged = owned.get(&user.entra_id).is_some_and(|o| {
            o.target_id.is_some() && o.hash.as_deref() == Some(record.hash.as_str())
        });
        if !unchanged {
            keys.push(key.clone());
        }
    }
    keys.extend(
        owned
            .values()
            .filter(|o| o.target_id.is_some() && !present.contains(o.entra_id.as_str()))
            .map(|o| serde_json::Value::String(o.key.clone())),
    );
    let found: Vec<Result<Option<TargetUser>, TargetError>> = futures_util::stream::iter(keys)
        .map(|key| async move { target.find(key_field, &key).await })
        .buffer_unordered(config.sync.concurrency.max(1))
        .collect()
        .await;
    let mut users: HashMap<String, TargetUser> = HashMap::new();
    for user in found {
        if let Some(user) = user? {
            users.insert(user.id.clone(), user);
        }
    }
    Ok(users.into_values().collect())
}

/// One write to make.
enum Action {
    Create(Create),
    Update(Update),
}

impl Action {
    fn name(&self) -> &'static str {
        match self {
            Action::Create(_) => "create",
            Action::Update(u) => u.kind.name(),
        }
    }

    fn label(&self) -> &str {
        match self {
            Action::Create(c) => &c.label,
            Action::Update(u) => &u.label,
        }
    }
}

/// Writes the plan and records every outcome in the state; `early` are the creates sent
/// while Entra was read. The plan is left holding the writes sent (done or failed).
async fn apply(
    writer: &Writer<'_>,
    state: &mut State,
    outcome: &mut Outcome,
    early: Vec<Create>,
) -> Result<(), SyncError> {
    let plan = &mut outcome.plan;
    state.forget(&plan.forget)?;
    state.record(&plan.remember)?;
    outcome.counts.unchanged = plan.unchanged as i64;
    outcome.counts.skipped = plan.skipped.len() as i64;
    let (deactivations, others): (Vec<Update>, Vec<Update>) = std::mem::take(&mut plan.updates)
        .into_iter()
        .partition(|u| u.kind == UpdateKind::Deactivate);
    let mut first: Vec<Action> = std::mem::replace(&mut plan.creates, early)
        .into_iter()
        .map(Action::Create)
        .collect();
    first.extend(others.into_iter().map(Action::Update));
    writer.write(first, state, outcome).await?;
    if matches!(outcome.verdict, Verdict::Proceed) && !writer.stop.stopped() {
        let deactivations = deactivations.into_iter().map(Action::Update).collect();
        writer.write(deactivations, state, outcome).await?;
    } else {
        outcome.held = deactivations;
    }
    outcome.interrupted = writer.stop.stopped();
    Ok(())
}

/// How many completed writes are remembered in one state transaction.
const RECORD_BATCH: usize = 4096;

/// How many creates are marked pending in one state transaction, ahead of the writers.
const PENDING_AHEAD: usize = 4096;

/// A write and how it went: the target id when known.
type Written = (Action, Result<Option<String>, TargetError>);

/// Sends writes with bounded concurrency.
struct Writer<'a> {
    mapping: &'a Mapping,
    target: Arc<dyn Target>,
    pacer: Option<Arc<Pacer>>,
    stop: &'a StopSignal,
    concurrency: usize,
    /// When the first write was handed out.
    began: std::sync::OnceLock<Instant>,
    /// When the last write completed.
    ended: std::sync::Mutex<Option<Instant>>,
}

/// Stops a stream's writer tasks when the stream ends, however it ends.
struct Quit(StopSignal);

impl Drop for Quit {
    fn drop(&mut self) {
        self.0.stop();
    }
}

impl Writer<'_> {
    /// The time from the first write handed out to the last completed.
    fn write_time(&self) -> Duration {
        let ended = self.ended.lock().ok().and_then(|ended| *ended);
        match (self.began.get(), ended) {
            (Some(began), Some(ended)) => ended.saturating_duration_since(*began),
            _ => Duration::ZERO,
        }
    }

    /// Makes the writes and records each in the state; the writes sent, done or failed, are
    /// put back in the outcome's plan for the report. Every create is marked pending in the
    /// state before its request goes out, so that a create cut short is looked up on the
    /// next run rather than made twice.
    async fn write(
        &self,
        actions: Vec<Action>,
        state: &mut State,
        outcome: &mut Outcome,
    ) -> Result<(), SyncError> {
        let Some(size) = self.target.batch_size() else {
            let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
            for action in actions {
                let _ = sender.send(action);
            }
            drop(sender);
            return self.stream(receiver, None, state, outcome).await;
        };
        state.create_pending(&pending_rows(&actions))?;
        let mut batches = Vec::new();
        let mut actions = actions.into_iter().peekable();
        while actions.peek().is_some() {
            batches.push(actions.by_ref().take(size.max(1)).collect::<Vec<_>>());
        }
        let mut record = Vec::new();
        for batch in batches {
            if self.stop.stopped() {
                break;
            }
            self.began.get_or_init(Instant::now);
            for written in self.write_batch(batch).await {
                self.note(Ok(written), outcome, &mut record);
            }
            if record.len() >= RECORD_BATCH {
                state.record(&record)?;
                record.clear();
            }
        }
        state.record(&record)?;
        Ok(())
    }

    /// Makes the writes that arrive on `input`, a request each, as they arrive. The creates
    /// are marked pending a few thousand at a time, just ahead of the writers, so the
    /// first requests never wait for all of them; outcomes are remembered in transactions
    /// of a few thousand. A stop of the run, or `halt`, ends the stream: writes under way
    /// finish, no other starts.
    async fn stream(
        &self,
        mut input: UnboundedReceiver<Action>,
        halt: Option<&StopSignal>,
        state: &mut State,
        outcome: &mut Outcome,
    ) -> Result<(), SyncError> {
        let quit = Quit(StopSignal::default());
        let (work, queue) = tokio::sync::mpsc::unbounded_channel();
        let mut work = Some(work);
        let mut results = self.spawn_writers(queue, &quit.0, halt);
        let halted = || halt.is_some_and(StopSignal::stopped);
        let mut record = Vec::new();
        let mut chunk = Vec::with_capacity(PENDING_AHEAD);
        // Handed to the writers and not yet done.
        let mut queued = 0usize;
        loop {
            let room = work.is_some() && queued < PENDING_AHEAD / 2;
            tokio::select! {
                biased;
                written = results.recv() => {
                    let Some(written) = written else { break };
                    queued = queued.saturating_sub(1);
                    self.note(written, outcome, &mut record);
                    // Remembered in transactions of a few thousand as the writes complete
                    // (about a second of writes at full speed): each commit rewrites the
                    // pages it touches, and writes lost with a crash are found again by key
                    // on the next run.
                    if record.len() >= RECORD_BATCH {
                        state.record(&record)?;
                        record.clear();
                    }
                }
                taken = input.recv_many(&mut chunk, PENDING_AHEAD), if room => {
                    let stopping = halted() || self.stop.stopped();
                    if taken == 0 || stopping {
                        if stopping {
                            quit.0.stop();
                            input.close();
                        }
                        // The writers end once the queue is empty.
                        work = None;
                        continue;
                    }
                    state.create_pending(&pending_rows(&chunk))?;
                    self.began.get_or_init(Instant::now);
                    for action in chunk.drain(..) {
                        if work.as_ref().is_some_and(|w| w.send(action).is_ok()) {
                            queued += 1;
                        }
                    }
                }
                () = stopped(self.stop, halt), if work.is_some() => {
                    // No more writes are taken; the writes under way finish.
                    quit.0.stop();
                    input.close();
                    work = None;
                }
            }
        }
        state.record(&record)?;
        Ok(())
    }

    /// Notes how a write went: counted, what the state should remember pushed to `record`,
    /// and the write put back in the outcome's plan for the report.
    fn note(
        &self,
        written: Result<Written, Failure>,
        outcome: &mut Outcome,
        record: &mut Vec<Owned>,
    ) {
        if let Ok(mut ended) = self.ended.lock() {
            *ended = Some(Instant::now());
        }
        let (action, result) = match written {
            Ok(written) => written,
            Err(failure) => {
                tracing::warn!(
                    user = %failure.user, action = failure.action, error = %failure.error,
                    "write failed"
                );
                outcome.failures.push(failure);
                outcome.counts.failed += 1;
                return;
            }
        };
        match result {
            Ok(target_id) => {
                tracing::debug!(user = action.label(), action = action.name(), "written");
                let (owned, counter) = self.owned_after(&action, target_id, outcome);
                *counter += 1;
                if let Some(owned) = owned {
                    record.push(owned);
                }
            }
            Err(error) => {
                if error.stops_run() {
                    self.stop.stop();
                }
                tracing::warn!(
                    user = action.label(), action = action.name(), error = %error,
                    "write failed"
                );
                outcome.failures.push(Failure {
                    user: action.label().to_owned(),
                    action: action.name(),
                    error: error.to_string(),
                });
                outcome.counts.failed += 1;
            }
        }
        match action {
            Action::Create(c) => outcome.plan.creates.push(c),
            Action::Update(u) => outcome.plan.updates.push(u),
        }
    }

    /// Starts `concurrency` writer tasks that take the next write from `queue` as soon as
    /// one is done, so that the requests never wait for the stream's bookkeeping; each write
    /// also runs as a task of its own, which keeps a panic to the one user whose write it
    /// was. They end when the queue is empty and closed, or on a stop (of the run, `quit`
    /// or `halt`).
    fn spawn_writers(
        &self,
        queue: UnboundedReceiver<Action>,
        quit: &StopSignal,
        halt: Option<&StopSignal>,
    ) -> UnboundedReceiver<Result<Written, Failure>> {
        let queue = Arc::new(tokio::sync::Mutex::new(queue));
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..self.concurrency.max(1) {
            let queue = Arc::clone(&queue);
            let sender = sender.clone();
            let target = Arc::clone(&self.target);
            let pacer = self.pacer.clone();
            let key = self.mapping.match_key().to_owned();
            let stops = [Some(self.stop), Some(quit), halt].map(|s| s.cloned());
            let stop = self.stop.clone();
            tokio::spawn(async move {
                loop {
                    let next = queue.lock().await.recv().await;
                    let Some(action) = next else { break };
                    if stops.iter().flatten().any(StopSignal::stopped) {
                        break;
                    }
                    let (user, name) = (action.label().to_owned(), action.name());
                    let write = write_one(Arc::clone(&target), pacer.clone(), key.clone(), action);
                    // Only a panic ends a write task early: that user's write fails and the
                    // next run makes it.
                    let written = tokio::spawn(write).await.map_err(|e| Failure {
                        user,
                        action: name,
                        error: format!("the write stopped: {e}"),
                    });
                    // Refused credentials stop the run before this writer takes another.
                    if let Ok((_, Err(error))) = &written
                        && error.stops_run()
                    {
                        stop.stop();
                    }
                    if sender.send(written).is_err() {
                        break;
                    }
                }
            });
        }
        receiver
    }

    /// What the state should remember after a write, and the count it adds to.
    fn owned_after<'o>(
        &self,
        action: &Action,
        target_id: Option<String>,
        outcome: &'o mut Outcome,
    ) -> (Option<Owned>, &'o mut i64) {
        match action {
            Action::Create(c) => (
                target_id.map(|id| Owned {
                    entra_id: c.entra_id.clone(),
                    key: c.key.clone(),
                    target_id: Some(id),
                    hash: Some(c.hash.clone()),
                    active: c.enabled,
                }),
                &mut outcome.counts.created,
            ),
            Action::Update(u) => {
                let owned = Owned {
                    entra_id: u.entra_id.clone(),
                    key: u.key.clone(),
                    target_id: Some(u.user.id.clone()),
                    hash: Some(plan::record_hash(self.mapping, &u.record)),
                    active: u.kind != UpdateKind::Deactivate,
                };
                let counter = match u.kind {
                    UpdateKind::Update => &mut outcome.counts.updated,
                    UpdateKind::Deactivate => &mut outcome.counts.deactivated,
                    UpdateKind::Reactivate => &mut outcome.counts.reactivated,
                };
                (Some(owned), counter)
            }
        }
    }

    async fn write_batch(&self, batch: Vec<Action>) -> Vec<Written> {
        let writes: Vec<Write> = batch
            .iter()
            .map(|a| match a {
                Action::Create(c) => Write::Create { record: c.record() },
                Action::Update(u) => Write::Update {
                    user: u.user.to_target_user(),
                    changes: u.changes.clone(),
                    record: u.record.clone(),
                },
            })
            .collect();
        if let Some(pacer) = &self.pacer {
            pacer.wait().await;
        }
        let mut answers = self.target.write_batch(&writes).await.into_iter();
        batch
            .into_iter()
            .map(|action| {
                let answer = answers.next().unwrap_or_else(|| {
                    Err(TargetError::Malformed(
                        "the target answered for fewer records than were sent".into(),
                    ))
                });
                (action, answer)
            })
            .collect()
    }
}

/// Returns once the run is stopped, or `halt` is.
async fn stopped(stop: &StopSignal, halt: Option<&StopSignal>) {
    match halt {
        Some(halt) => tokio::select! {
            () = stop.wait() => {}
            () = halt.wait() => {}
        },
        None => stop.wait().await,
    }
}

/// The `(Entra id, key)` of the creates among `actions`, to mark pending.
fn pending_rows(actions: &[Action]) -> Vec<(&str, &str)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Create(c) => Some((c.entra_id.as_str(), c.key.as_str())),
            Action::Update(_) => None,
        })
        .collect()
}

/// One write, as a task of its own: the action comes back with how it went.
async fn write_one(
    target: Arc<dyn Target>,
    pacer: Option<Arc<Pacer>>,
    key: String,
    action: Action,
) -> Written {
    if let Some(pacer) = &pacer {
        pacer.wait().await;
    }
    let result = match &action {
        Action::Create(c) => create(target.as_ref(), &key, c).await,
        Action::Update(u) => target
            .update(&u.user.to_target_user(), &u.changes, &u.record)
            .await
            .map(|()| Some(u.user.id.clone())),
    };
    (action, result)
}

async fn create(target: &dyn Target, key: &str, c: &Create) -> Result<Option<String>, TargetError> {
    let record = c.record();
    if c.pending {
        // A create of this user may have gone through in a run cut short.
        if let Some(value) = record.get(key)
            && let Some(found) = target.find(key, value).await?
        {
            return Ok(Some(found.id));
        }
    }
    target.create(&record).await.map(|u| Some(u.id))
}

/// Spaces requests to at most `rate` per second.
#[derive(Debug)]
struct Pacer {
    interval: Duration,
    next: tokio::sync::Mutex<Instant>,
}

impl Pacer {
    fn new(rate: u32) -> Pacer {
        Pacer {
            interval: Duration::from_secs(1) / rate.max(1),
            next: tokio::sync::Mutex::new(Instant::now()),
        }
    }

    async fn wait(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let at = (*next).max(now);
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at.into()).await;
    }
}
