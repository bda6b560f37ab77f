//! The apply step: the plan's writes sent to the target with bounded concurrency (and an
//! optional rate limit), creates and updates first, deactivations last and only when the
//! guards allow them. Creates are marked pending in the state before their request goes
//! out, a few thousand at a time just ahead of the writers, so a run killed half-way never
//! creates a user twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio::sync::mpsc::{Receiver, UnboundedReceiver, UnboundedSender};

use super::SyncError;
use super::order::{Known, Rounds};
use super::outcome::Outcome;
use super::plan::{Create, EntityName, Update, UpdateKind};
use super::safety::Verdict;
use super::stop::StopSignal;
use crate::config::Config;
use crate::mapping::Mapping;
use crate::state::State;
use crate::targets::{Target, TargetError, Write};

/// One write to make.
pub(super) enum Action {
    /// A user to create.
    Create(Create),
    /// A user to update, deactivate or reactivate (boxed: an update carries the target
    /// user's values beside its own).
    Update(Box<Update>),
}

impl Action {
    /// The action's name in logs, reports and the CSV of changes.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Action::Create(_) => "create",
            Action::Update(u) => u.kind.name(),
        }
    }

    /// The user, as the admin knows them.
    pub(super) fn label(&self) -> &str {
        match self {
            Action::Create(c) => &c.label,
            Action::Update(u) => &u.label,
        }
    }
}

/// Writes the plan and records every outcome in the state; `early` are the creates sent
/// while Entra was read. The plan is left holding the writes sent (done or failed).
pub(super) async fn apply(
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
    let creates = std::mem::replace(&mut plan.creates, early);
    // The entities the users name, before any user that names one is written.
    let entities = create_entities(writer, state, outcome).await?;
    let (first, mut rounds) = Rounds::new(
        creates,
        others,
        &Known::new(&outcome.created_ids, &entities),
        &mut outcome.plan.unresolved,
    );
    writer.write(first, state, outcome).await?;
    // References to users created in this run: the creates that name them, round by round,
    // then the updates that set them.
    while let Some(round) = rounds.next_creates(
        &Known::new(&outcome.created_ids, &entities),
        &mut outcome.plan.unresolved,
    ) {
        if writer.stop.stopped() {
            break;
        }
        writer.write(round, state, outcome).await?;
    }
    let (last, second_pass, remember) = rounds.last(
        writer.mapping,
        &Known::new(&outcome.created_ids, &entities),
        &mut outcome.plan.unresolved,
    );
    state.record(&remember)?;
    if !writer.stop.stopped() {
        outcome.second_pass = second_pass;
        writer.write(last, state, outcome).await?;
    }
    if matches!(outcome.verdict, Verdict::Proceed) && !writer.stop.stopped() {
        let deactivations = deactivations
            .into_iter()
            .map(|u| Action::Update(Box::new(u)))
            .collect();
        writer.write(deactivations, state, outcome).await?;
    } else {
        outcome.held.extend(deactivations);
    }
    outcome.interrupted = writer.stop.stopped();
    Ok(())
}

/// Creates the entities the plan's users name and the target lacks (`policy = "create"`),
/// each once, as many at a time as users are written, and remembers each made in the
/// state; by kind and name as compared, the id of each, or why its create failed (its users
/// are then written without it).
async fn create_entities(
    writer: &Writer<'_>,
    state: &mut State,
    outcome: &mut Outcome,
) -> Result<HashMap<(String, String), Result<String, String>>, SyncError> {
    use futures_util::StreamExt;
    let wanted = std::mem::take(&mut outcome.plan.entities);
    if wanted.is_empty() || writer.stop.stopped() {
        return Ok(HashMap::new());
    }
    let target = &writer.target;
    let results: Vec<(EntityName, Result<String, String>)> = futures_util::stream::iter(wanted)
        .map(|entity| async move {
            let made = target
                .create_entity(&entity.kind, &entity.name)
                .await
                .map(|e| e.id)
                .map_err(|e| e.to_string());
            (entity, made)
        })
        .buffer_unordered(writer.concurrency.max(1))
        .collect()
        .await;
    let rows: Vec<(&str, &str, &str)> = results
        .iter()
        .filter_map(|(e, made)| Some((e.kind.as_str(), made.as_deref().ok()?, e.name.as_str())))
        .collect();
    state.record_entities(&rows)?;
    tracing::info!(
        created = rows.len(),
        failed = results.len() - rows.len(),
        "created the entities the users name"
    );
    let mut made = HashMap::new();
    for (entity, result) in results {
        match &result {
            Ok(id) => tracing::debug!(kind = %entity.kind, name = %entity.name, %id, "created"),
            Err(error) => {
                tracing::warn!(kind = %entity.kind, name = %entity.name, %error, "create failed");
            }
        }
        made.insert((entity.kind.clone(), entity.key.clone()), result.clone());
        outcome.entities.push((entity, result));
    }
    Ok(made)
}

/// How many completed writes are remembered in one state transaction.
pub(super) const RECORD_BATCH: usize = 4096;

/// How many creates are marked pending in one state transaction, ahead of the writers.
const PENDING_AHEAD: usize = 4096;

/// How many creates decided while Entra is read may wait for the writers: twice what the
/// writers take at a time, so they never wait for the read, while a read far ahead of
/// the writes (a first load: pages come faster than creates) holds a few thousand creates
/// rather than every user it read.
pub(super) const EARLY_QUEUE: usize = 2 * PENDING_AHEAD;

/// Where [`Writer::stream`] takes its writes from.
pub(super) enum Input {
    /// Writes the run sends as it decides them, without a bound: a plan's, or a delta
    /// round's planned ahead.
    All(UnboundedReceiver<Action>),
    /// Creates sent while Entra is read, at most [`EARLY_QUEUE`] waiting; how each create
    /// went is told on the sender ([`Answered`]), for the creates that name its user (the
    /// read keeps the target ids, for the outcome's `created_ids`).
    Early(Receiver<Action>, UnboundedSender<Answered>),
}

/// How a create went, told to the read that sent it: the user's Entra id, and its target id
/// when the create succeeded.
pub(super) type Answered = (String, Option<String>);

impl Input {
    async fn recv_many(&mut self, into: &mut Vec<Action>, limit: usize) -> usize {
        match self {
            Input::All(input) => input.recv_many(into, limit).await,
            Input::Early(input, _) => input.recv_many(into, limit).await,
        }
    }

    fn close(&mut self) {
        match self {
            Input::All(input) => input.close(),
            Input::Early(input, _) => input.close(),
        }
    }
}

/// A write and how it went: the target id when known.
pub(super) type Written = (Action, Result<Option<String>, TargetError>);

/// A write that stopped with a panic, and what the panic said.
pub(super) type Broken = (Action, String);

/// Sends writes with bounded concurrency.
pub(super) struct Writer<'a> {
    pub(super) mapping: &'a Mapping,
    pub(super) target: Arc<dyn Target>,
    pub(super) stop: &'a StopSignal,
    concurrency: usize,
    /// Whether each create written is kept in the outcome's plan (else only its Entra id).
    pub(super) keep_creates: bool,
    /// When the first write was handed out.
    began: std::sync::OnceLock<Instant>,
    /// When the last write completed.
    pub(super) ended: std::sync::Mutex<Option<Instant>>,
}

/// Stops a stream's writer tasks when the stream ends, however it ends.
struct Quit(StopSignal);

impl Drop for Quit {
    fn drop(&mut self) {
        self.0.stop();
    }
}

impl<'a> Writer<'a> {
    /// The writer of a run: as many at once as `concurrency` in `[sync]` (the target paces
    /// its own requests), stopped by `stop`; `keep_creates` keeps each create written in the
    /// outcome's plan, with its record.
    pub(super) fn new(
        config: &Config,
        mapping: &'a Mapping,
        target: &Arc<dyn Target>,
        stop: &'a StopSignal,
        keep_creates: bool,
    ) -> Writer<'a> {
        Writer {
            mapping,
            target: Arc::clone(target),
            stop,
            concurrency: config.sync.concurrency,
            keep_creates,
            began: std::sync::OnceLock::new(),
            ended: std::sync::Mutex::new(None),
        }
    }

    /// The time from the first write handed out to the last completed.
    pub(super) fn write_time(&self) -> Duration {
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
            return self
                .stream(Input::All(receiver), None, state, outcome)
                .await;
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
                let answered = self.note(Ok(written), outcome, &mut record);
                Writer::made(answered, outcome);
            }
            if record.len() >= RECORD_BATCH {
                state.record_written(&record)?;
                record.clear();
            }
        }
        state.record_written(&record)?;
        Ok(())
    }

    /// Makes the writes that arrive on `input`, a request each, as they arrive. The creates
    /// are marked pending a few thousand at a time, just ahead of the writers, so the
    /// first requests never wait for all of them; outcomes are remembered in transactions
    /// of a few thousand. A stop of the run, or `halt`, ends the stream: writes under way
    /// finish, no other starts.
    pub(super) async fn stream(
        &self,
        mut input: Input,
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
                    let answered = self.note(written, outcome, &mut record);
                    match &input {
                        // The read keeps the ids of the creates it sent (and may be gone:
                        // then nobody waits for them).
                        Input::Early(_, tell) => {
                            if let Some(answered) = answered {
                                let _ = tell.send(answered);
                            }
                        }
                        Input::All(_) => Writer::made(answered, outcome),
                    }
                    // Remembered in transactions of a few thousand as the writes complete
                    // (about a second of writes at full speed): each commit rewrites the
                    // pages it touches, and writes lost with a crash are found again by key
                    // on the next run.
                    if record.len() >= RECORD_BATCH {
                        state.record_written(&record)?;
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
        state.record_written(&record)?;
        Ok(())
    }

    /// Starts `concurrency` writer tasks that take the next write from `queue` as soon as
    /// one is done, so that the requests never wait for the stream's bookkeeping; a panic in
    /// a write is caught where it happens, which keeps it to the one user whose write it
    /// was. They end when the queue is empty and closed, or on a stop (of the run, `quit`
    /// or `halt`).
    fn spawn_writers(
        &self,
        queue: UnboundedReceiver<Action>,
        quit: &StopSignal,
        halt: Option<&StopSignal>,
    ) -> UnboundedReceiver<Result<Written, Broken>> {
        let queue = Arc::new(tokio::sync::Mutex::new(queue));
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..self.concurrency.max(1) {
            let queue = Arc::clone(&queue);
            let sender = sender.clone();
            let target = Arc::clone(&self.target);
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
                    // Only a panic ends a write early: that user's write fails, the writer
                    // goes on, and the next run makes it.
                    let write = write_one(target.as_ref(), &key, &action);
                    let written = match std::panic::AssertUnwindSafe(write).catch_unwind().await {
                        Ok(result) => Ok((action, result)),
                        Err(panic) => Err((action, panic_text(&*panic).to_owned())),
                    };
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

/// What a panic said, for the failure it leaves.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic")
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

/// One write: its target id when known.
async fn write_one(
    target: &dyn Target,
    key: &str,
    action: &Action,
) -> Result<Option<String>, TargetError> {
    match action {
        Action::Create(c) => create(target, key, c).await,
        Action::Update(u) => target
            .update(&u.user.to_target_user(), &u.changes, &u.record)
            .await
            .map(|()| Some(u.user.id.clone())),
    }
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
    target.create_id(&record).await.map(Some)
}
