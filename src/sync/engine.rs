//! One sync: read Entra and the target side by side, plan, judge, write, remember.
//!
//! Graph is read page by page and each user mapped as its page arrives, while the target's
//! users are listed at the same time. Writes go out with bounded concurrency (and an
//! optional rate limit), creates and updates first, deactivations last and only if the
//! guards allow them. Each write's outcome is recorded in the state file soon after it
//! completes (in transactions of a few thousand); creates are recorded as pending before any is sent, so a run killed half-way never
//! creates a user twice. Ctrl-C or SIGTERM stops starting new writes: those under way
//! finish, the state is saved and the summary printed.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;

use super::plan::{self, Create, Listed, Plan, PlanOptions, SourceUser, Update, UpdateKind};
use super::safety::{self, Verdict};
use crate::config::Config;
use crate::graph::users_file::label;
use crate::graph::{GraphClient, GraphError, Managers, UserPager, UserQuery};
use crate::mapping::{Context, Mapping};
use crate::state::{Owned, RunCounts, State, StateError};
use crate::target::{Target, TargetError, TargetUser, Write};

/// Why a sync failed. Nothing was written to the target, except when the state file failed
/// while the writes were going on.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Reading Entra failed: the run stops before planning, so nothing is deactivated.
    #[error("reading users from Graph failed; nothing was written: {0}")]
    Graph(#[from] GraphError),
    /// The target's users could not be listed.
    #[error("listing the target's users failed; nothing was written: {0}")]
    Target(#[from] TargetError),
    /// The state file is unusable.
    #[error("{0}")]
    State(#[from] StateError),
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
    /// Reading both sides.
    pub read_time: Duration,
    /// Writing.
    pub write_time: Duration,
}

impl Outcome {
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
/// probably are. With `unwritten`, the record of a user that will not be written is dropped
/// as soon as that is known.
pub async fn read_source(
    config: &Config,
    mapping: &Mapping,
    sync_time: &str,
    client: &Arc<GraphClient>,
    expected: usize,
    unwritten: Option<Unwritten<'_>>,
) -> Result<Vec<SourceUser>, GraphError> {
    let query = UserQuery::new(&config.source, mapping.selection());
    let managers = Managers::read(client, &query).await?;
    let ctx = Context {
        settings: &config.settings,
        sync_time,
    };
    let mut pager = UserPager::new(Arc::clone(client), &query);
    let mut users = Vec::with_capacity(expected);
    let mut dropper = unwritten.map(Dropper::new);
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
            users.push(SourceUser::new(mapping, entra_id, label(&user), mapped));
        }
        if let Some(dropper) = &mut dropper {
            dropper.drop_unwritten(&mut users);
        }
    }
    Ok(users)
}

/// What tells, during the read, that a user will not be written: the state remembers its
/// record exactly as it is now, for a target user the listing (once complete) still holds.
/// The planner then never reads the record, so it is not kept: a quiet night holds one
/// record per user (the target's), not two.
#[derive(Clone, Copy)]
pub struct Unwritten<'a> {
    /// The state's owned users.
    pub owned: &'a HashMap<String, Owned>,
    /// The target's users, set when the listing is complete.
    pub listing: &'a std::sync::OnceLock<Vec<Listed>>,
}

/// Drops the records of [`Unwritten`] users, page by page.
struct Dropper<'a> {
    unwritten: Unwritten<'a>,
    /// The listed target ids, once the listing is complete.
    listed: Option<foldhash::HashSet<&'a str>>,
    /// Users read so far that were not looked at yet.
    from: usize,
}

impl<'a> Dropper<'a> {
    fn new(unwritten: Unwritten<'a>) -> Dropper<'a> {
        Dropper {
            unwritten,
            listed: None,
            from: 0,
        }
    }

    /// Looks at the users read since the last call (all of them once the listing is there).
    fn drop_unwritten(&mut self, users: &mut [SourceUser]) {
        if self.listed.is_none() {
            let Some(listing) = self.unwritten.listing.get() else {
                return;
            };
            self.listed = Some(listing.iter().map(|u| u.id.as_str()).collect());
        }
        let Some(listed) = &self.listed else { return };
        for user in &mut users[self.from..] {
            let Ok(mapped) = &mut user.mapped else {
                continue;
            };
            let unchanged = self.unwritten.owned.get(&user.entra_id).is_some_and(|o| {
                o.hash.as_deref() == Some(mapped.hash.as_str())
                    && o.target_id.as_deref().is_some_and(|id| listed.contains(id))
            });
            if unchanged {
                mapped.drop_record();
            }
        }
        self.from = users.len();
    }
}

/// Runs one sync: plans it, and with a state file (open and locked) writes it. Without one
/// (`plan`) nothing is written anywhere. `owned` is what the state file remembers.
pub async fn sync(
    config: &Config,
    mapping: &Mapping,
    target: &Arc<dyn Target>,
    owned: &HashMap<String, Owned>,
    state: Option<&mut State>,
    options: &SyncOptions,
    stop: &StopSignal,
) -> Result<Outcome, SyncError> {
    let started = Instant::now();
    let client = Arc::new(GraphClient::new(&config.source)?);
    // About as many users as last time: room for them from the start, rather than lists
    // that double (and are briefly held twice) as they grow.
    let expected = owned.len() + owned.len() / 16;
    let (source, listed) = if config.target.list {
        let listing = std::sync::OnceLock::new();
        let unwritten = Unwritten {
            owned,
            listing: &listing,
        };
        let (source, listed) = tokio::join!(
            read_source(
                config,
                mapping,
                &options.sync_time,
                &client,
                expected,
                Some(unwritten)
            ),
            async {
                let listed = list_target(mapping, target.as_ref(), expected).await?;
                let _ = listing.set(listed);
                Ok::<(), TargetError>(())
            }
        );
        let source = source?;
        listed?;
        (source, listing.into_inner().unwrap_or_default())
    } else {
        let source =
            read_source(config, mapping, &options.sync_time, &client, expected, None).await?;
        let found = look_up(config, mapping, target.as_ref(), &source, owned).await?;
        let found = found.into_iter().map(|u| Listed::of(mapping, u)).collect();
        (source, found)
    };
    let read_time = started.elapsed();
    tracing::info!(
        entra_users = source.len(),
        target_users = listed.len(),
        seconds = read_time.as_secs_f64(),
        "read Entra and the target"
    );
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
    let source_users = source.len();
    let plan = plan::plan(mapping, source, &listed, owned, plan_options);
    let owned_count = owned.values().filter(|o| o.target_id.is_some()).count();
    let verdict = safety::judge(
        source_users,
        owned_count,
        plan.count(UpdateKind::Deactivate),
        config.sync.max_deactivations,
        options.allow_deactivations,
    );
    tracing::info!(
        create = plan.creates.len(),
        update = plan.count(UpdateKind::Update),
        deactivate = plan.count(UpdateKind::Deactivate),
        reactivate = plan.count(UpdateKind::Reactivate),
        unchanged = plan.unchanged,
        skipped = plan.skipped.len(),
        "planned"
    );
    match &verdict {
        Verdict::Proceed => {}
        Verdict::HoldDeactivations(m) => tracing::warn!("{m}"),
        Verdict::Refuse(m) => tracing::error!("{m}"),
    }
    let mut outcome = Outcome {
        plan,
        held: Vec::new(),
        verdict,
        source_users,
        target_users: listed.len(),
        owned: owned_count,
        counts: RunCounts::default(),
        failures: Vec::new(),
        interrupted: false,
        graph_requests: 0,
        graph_retries: 0,
        target_retries: 0,
        target_requests: 0,
        target_writes: 0,
        read_time,
        write_time: Duration::ZERO,
    };
    if state.is_some() && matches!(outcome.verdict, Verdict::Refuse(_)) {
        // A refused run sends nothing, and after a run the plan holds the writes sent.
        outcome.plan.creates.clear();
        outcome.plan.updates.clear();
    } else if let Some(state) = state {
        let writing = Instant::now();
        apply(config, mapping, target, state, &mut outcome, stop).await?;
        outcome.write_time = writing.elapsed();
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
    outcome.graph_requests = client.stats.requests.load(Ordering::Relaxed);
    outcome.graph_retries = client.stats.retries.load(Ordering::Relaxed);
    let stats = target.stats();
    outcome.target_requests = stats.requests.load(Ordering::Relaxed);
    outcome.target_retries = stats.retries.load(Ordering::Relaxed);
    outcome.target_writes = stats.writes.load(Ordering::Relaxed);
    Ok(outcome)
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
    owned: &HashMap<String, Owned>,
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

/// Writes the plan and records every outcome in the state.
async fn apply(
    config: &Config,
    mapping: &Mapping,
    target: &Arc<dyn Target>,
    state: &mut State,
    outcome: &mut Outcome,
    stop: &StopSignal,
) -> Result<(), SyncError> {
    let plan = &mut outcome.plan;
    state.forget(&plan.forget)?;
    state.record(&plan.remember)?;
    outcome.counts.unchanged = plan.unchanged as i64;
    outcome.counts.skipped = plan.skipped.len() as i64;
    let mut pending = Pending {
        rows: plan
            .creates
            .iter()
            .map(|c| (c.entra_id.clone(), c.key.clone()))
            .collect(),
        marked: 0,
    };
    let (deactivations, others): (Vec<Update>, Vec<Update>) = std::mem::take(&mut plan.updates)
        .into_iter()
        .partition(|u| u.kind == UpdateKind::Deactivate);
    let mut first: Vec<Action> = std::mem::take(&mut plan.creates)
        .into_iter()
        .map(Action::Create)
        .collect();
    first.extend(others.into_iter().map(Action::Update));
    let writer = Writer {
        mapping,
        target: Arc::clone(target),
        pacer: config
            .sync
            .rate_limit
            .map(|rate| Arc::new(Pacer::new(rate))),
        stop,
        concurrency: config.sync.concurrency,
    };
    let mut sent = writer.write(first, &mut pending, state, outcome).await?;
    if matches!(outcome.verdict, Verdict::Proceed) && !stop.stopped() {
        sent.extend(
            writer
                .write(
                    deactivations.into_iter().map(Action::Update).collect(),
                    &mut Pending::default(),
                    state,
                    outcome,
                )
                .await?,
        );
    } else {
        outcome.held = deactivations;
    }
    for action in sent {
        match action {
            Action::Create(c) => outcome.plan.creates.push(c),
            Action::Update(u) => outcome.plan.updates.push(u),
        }
    }
    outcome.interrupted = stop.stopped();
    Ok(())
}

/// How many completed writes are remembered in one state transaction.
const RECORD_BATCH: usize = 4096;

/// How many creates are marked pending ahead of the writers.
const PENDING_AHEAD: usize = 4096;

/// The creates of a write, `(Entra id, key)` in the order they are sent (creates come
/// first): each is marked pending in the state before its request goes out, so that a
/// create cut short is looked up on the next run rather than made twice. Per-user writes
/// mark them a few thousand at a time, just ahead of the writers, so the first requests do
/// not wait for all of them.
#[derive(Default)]
struct Pending {
    rows: Vec<(String, String)>,
    /// How many are marked.
    marked: usize,
}

impl Pending {
    /// Marks the creates up to `end` (at most all).
    fn mark(&mut self, state: &mut State, end: usize) -> Result<(), StateError> {
        let end = end.min(self.rows.len());
        if end > self.marked {
            let rows: Vec<(&str, &str)> = self.rows[self.marked..end]
                .iter()
                .map(|(id, key)| (id.as_str(), key.as_str()))
                .collect();
            state.create_pending(&rows)?;
            self.marked = end;
        }
        Ok(())
    }

    /// How many of the writes may go out: the creates marked, or all once every one is.
    fn allowed(&self) -> usize {
        if self.marked == self.rows.len() {
            usize::MAX
        } else {
            self.marked
        }
    }
}

/// A write and how it went: the target id when known.
type Written = (Action, Result<Option<String>, TargetError>);

/// Sends writes with bounded concurrency.
struct Writer<'a> {
    mapping: &'a Mapping,
    target: Arc<dyn Target>,
    pacer: Option<Arc<Pacer>>,
    stop: &'a StopSignal,
    concurrency: usize,
}

impl Writer<'_> {
    /// Makes the writes and records each in the state; returns the writes sent, done or
    /// failed (kept for the report).
    async fn write(
        &self,
        actions: Vec<Action>,
        pending: &mut Pending,
        state: &mut State,
        outcome: &mut Outcome,
    ) -> Result<Vec<Action>, SyncError> {
        let mut sent = Vec::new();
        let mut record = Vec::new();
        let stop = self.stop;
        let mut gate = None;
        let mut results: futures_util::stream::BoxStream<'_, Result<Written, Failure>> =
            match self.target.batch_size() {
                Some(size) => {
                    pending.mark(state, usize::MAX)?;
                    let mut batches = Vec::new();
                    let mut actions = actions.into_iter().peekable();
                    while actions.peek().is_some() {
                        batches.push(actions.by_ref().take(size.max(1)).collect::<Vec<_>>());
                    }
                    futures_util::stream::iter(batches)
                        .take_while(move |_| std::future::ready(!stop.stopped()))
                        .then(|batch| self.write_batch(batch))
                        .flat_map(|written| futures_util::stream::iter(written.into_iter().map(Ok)))
                        .boxed()
                }
                None => {
                    pending.mark(state, PENDING_AHEAD)?;
                    let (open, allowed) = tokio::sync::watch::channel(pending.allowed());
                    gate = Some(open);
                    self.spawn_writers(actions, allowed)
                }
            };
        let mut received = 0;
        while let Some(written) = results.next().await {
            received += 1;
            // The next creates are marked while those before them are still being written.
            if let Some(gate) = &gate
                && pending.marked < pending.rows.len()
                && received + PENDING_AHEAD / 2 >= pending.marked
            {
                pending.mark(state, pending.marked + PENDING_AHEAD)?;
                gate.send_replace(pending.allowed());
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
                    continue;
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
                        stop.stop();
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
            sent.push(action);
            // Remembered in transactions of a few thousand as the writes complete (about a
            // second of writes at full speed): each commit rewrites the pages it touches, and
            // writes lost with a crash are found again by key on the next run.
            if record.len() >= RECORD_BATCH {
                state.record(&record)?;
                record.clear();
            }
        }
        state.record(&record)?;
        Ok(sent)
    }

    /// Starts `concurrency` writer tasks that take the next write as soon as one is done,
    /// so that the requests never wait for this loop's bookkeeping; each write also runs as
    /// a task of its own, which keeps a panic to the one user whose write it was.
    fn spawn_writers(
        &self,
        actions: Vec<Action>,
        allowed: tokio::sync::watch::Receiver<usize>,
    ) -> futures_util::stream::BoxStream<'static, Result<Written, Failure>> {
        let queue = Arc::new(std::sync::Mutex::new(actions.into_iter().enumerate()));
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..self.concurrency.max(1) {
            let queue = Arc::clone(&queue);
            let sender = sender.clone();
            let target = Arc::clone(&self.target);
            let pacer = self.pacer.clone();
            let key = self.mapping.match_key().to_owned();
            let stop = self.stop.clone();
            let mut allowed = allowed.clone();
            tokio::spawn(async move {
                while !stop.stopped() {
                    let next = queue.lock().ok().and_then(|mut q| q.next());
                    let Some((index, action)) = next else { break };
                    // A create goes out only once the state marks it pending.
                    if allowed.wait_for(|allowed| index < *allowed).await.is_err() {
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
        futures_util::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|written| (written, receiver))
        })
        .boxed()
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
