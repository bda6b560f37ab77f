//! One sync: read Entra and the target side by side, plan, judge, write, remember.
//!
//! Graph is read page by page and each user mapped as its page arrives, while the target's
//! users are listed at the same time. Once the listing is complete, users the plan is
//! certain to create (see [`EarlyCreates`](super::plan::EarlyCreates)) are created while the
//! read goes on; every other write waits for the plan. Writes go out with bounded
//! concurrency (and an optional rate limit), creates and updates first, deactivations last
//! and only if the guards allow them. Each write's outcome is recorded in the state file
//! soon after it completes (in transactions of a few thousand); each create is recorded as
//! pending before it is sent, so a run killed half-way never creates a user twice. Ctrl-C or
//! SIGTERM stops starting new writes: those under way finish, the state is saved and the
//! summary printed.
//!
//! The steps live apart: `read`, the planner's match and decide ([`plan`](super::plan)),
//! the guard ([`safety`]), `apply` and `record`. This file runs them in order and turns a
//! failure part-way into an error that keeps what was written.

use std::sync::Arc;

use foldhash::HashSet as FastSet;
use std::time::Instant;

use super::ahead::{self, Ahead};
use super::apply::{Action, EARLY_QUEUE, Input, Writer, apply};
use super::changes::{self, Changes, ReadMode, Start};
pub use super::error::SyncError;
use super::holdings;
pub use super::listing::{Listing, list_entities};
use super::listing::{
    list_target, look_up, look_up_some, remembered, vouched_for, with_remembered,
};
pub use super::outcome::{Failure, Outcome};
use super::plan::{self, Catalogue, Listed, Plan, PlanOptions, UpdateKind};
use super::read::source_user;
pub use super::read::{Alongside, Expected, Read, read_source};
use super::reconcile::Reason;
use super::safety::{self, Verdict};
pub use super::stop::StopSignal;
use super::unread;
use crate::config::Config;
use crate::graph::delta::{self, Change};
use crate::graph::{GraphClient, GraphError, UserQuery};
use crate::mapping::{Context, Mapping};
use crate::spill::Spill;
use crate::state::{OwnedUsers, SidesRead, State, StateError};
use crate::targets::{Target, TargetError};

/// What the caller asks of a sync.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// `--allow-deactivations N`.
    pub allow_deactivations: Option<usize>,
    /// The run's start time (RFC 3339), the mapping's `connectorSyncTime`.
    pub sync_time: String,
    /// What the last complete run read, which bounds this run's listings (see
    /// [`crate::graph::ReadLimit`]); `None` before any, or with `--allow-growth`.
    pub last_read: Option<SidesRead>,
    /// Why this run is a full reconciliation ([`super::reconcile`]); `None` for a normal
    /// run.
    pub reconcile: Option<Reason>,
    /// The delta links the state keeps ([`changes::start`]); none for a full run.
    pub links: changes::StoredLinks,
    /// The users of a run over some users only (`run --user`); `None` to read the scope.
    pub users: Option<Changes>,
    /// Whether the creates made are only counted once written, each one's record let go
    /// ([`Outcome::creates_let_go`]), rather than kept in the outcome's plan: for a run
    /// whose outputs list no record (no CSV of changes, no HTML page), so that a first load
    /// of a large tenant does not hold every user it created until it ends.
    pub count_creates_only: bool,
}

impl SyncOptions {
    /// The options of a sync starting now: with `full` asked for (`--full`) or `full_every`
    /// elapsed since `last_full`, a full reconciliation.
    pub fn starting_now(
        allow_deactivations: Option<usize>,
        (full, full_every, last_full): (
            bool,
            (std::time::Duration, Option<chrono::NaiveTime>),
            Option<&str>,
        ),
        last_read: Option<SidesRead>,
    ) -> SyncOptions {
        let sync_time = crate::state::now();
        SyncOptions {
            allow_deactivations,
            // In local time: `full_at` is a time of day where userload runs.
            reconcile: super::reconcile::due(
                full,
                full_every,
                last_full,
                &chrono::Local::now().to_rfc3339(),
            ),
            sync_time,
            last_read,
            links: Vec::new(),
            users: None,
            count_creates_only: false,
        }
    }
}

/// Runs one sync: plans it, and with a state file (open and locked) writes it. Without one
/// (`plan`) nothing is written anywhere. `owned` is what the state file remembers. The
/// target's session, if it opened one, is closed at the end, however the run ended.
pub async fn sync(
    config: &Config,
    mapping: &Mapping,
    target: &Arc<dyn Target>,
    owned: &OwnedUsers,
    state: Option<&mut State>,
    options: &SyncOptions,
    stop: &StopSignal,
) -> Result<Outcome, SyncError> {
    let result = sync_and_keep_open(config, mapping, target, owned, state, options, stop).await;
    target.close().await;
    result
}

async fn sync_and_keep_open(
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
    let query = UserQuery::new(&config.source, super::read::selection(mapping));
    let mut outcome = Outcome::new(owned.values().filter(|o| o.target_id.is_some()).count());
    let records_kept = match state.as_deref_mut() {
        Some(state) => state.keep_written_for(&mapping.layout())?,
        None => State::peek_written_kept(&config.sync.state, &mapping.layout())?,
    };
    outcome.reconcile = options.reconcile;
    let mut run = Run {
        catalogue: Catalogue::default(),
        config,
        mapping,
        target,
        owned,
        options,
        client,
        only: None,
        plan_options: PlanOptions {
            // One user asked for by name is compared field by field, drift included.
            reconcile: options.reconcile.is_some() || options.users.is_some(),
            ..plan_options(config, mapping, target.as_ref())
        },
        writer: Writer::new(config, mapping, target, stop, !options.count_creates_only),
        expected: Expected::after(owned.len(), options.last_read.map(|r| r.entra)),
        target_expected: Expected::after(owned.len(), options.last_read.and_then(|r| r.target)),
        records_kept,
    };
    // How to read: the users asked for, the changes since the stored delta link, or all.
    let (mut changes, next_link, ahead, catalogue) = match (&options.users, state.as_deref_mut()) {
        (Some(users), _) => {
            outcome.mode = ReadMode::Users;
            (Some(users.clone()), None, None, None)
        }
        (None, Some(state)) if run.writes_ahead() => {
            match run.read_changes_ahead(&query, state, &mut outcome).await {
                Ok(read) => read,
                Err(error) => return Err(run.failed_after(error, outcome)),
            }
        }
        (None, _) => {
            let (changes, link) = read_changes(
                (config, mapping),
                &run.client,
                &query,
                options,
                &mut outcome,
                None,
            )
            .await?;
            (changes, link, None, None)
        }
    };
    let quiet = ahead
        .as_ref()
        .is_none_or(|a| a.ids.is_empty() && a.later.is_empty());
    if quiet && changes.as_ref().is_some_and(Changes::is_empty) {
        // Nothing changed: nothing to look up, plan or write.
        outcome.read_time = started.elapsed();
        outcome.plan.unchanged = outcome.owned;
        outcome.counts.unchanged = outcome.owned as i64;
        outcome.count_requests(&run.client, target.as_ref());
        if let Some(state) = state {
            state.end_writes()?;
            if let Some(link) = &next_link {
                state.save_delta_link(&fingerprint(&query, mapping), link)?;
            }
        }
        return Ok(outcome);
    }
    // The users handed over that were not planned ahead join the round's (unless the round
    // has them again, as last read).
    if let (Some(changes), Some(ahead)) = (&mut changes, ahead.as_ref()) {
        let again = changes.ids();
        changes.present.extend(
            ahead
                .later
                .iter()
                .filter(|u| {
                    u.get("id")
                        .and_then(serde_json::Value::as_str)
                        .is_none_or(|id| !again.contains(id))
                })
                .cloned(),
        );
    }
    run.catalogue = match catalogue {
        Some(catalogue) => catalogue,
        None => list_entities(mapping, target.as_ref()).await?,
    };
    run.only = changes.as_ref().map(Changes::ids);
    run.plan_options.partial_view = !config.target.list || changes.is_some();
    if let Some(state) = state.as_deref_mut() {
        state.begin_writes()?;
    }
    let (read, listed, read_end) = if let Some(changes) = changes {
        run.read_some(changes, state.as_deref()).await?
    } else if config.target.list {
        match run.read_alongside(state.as_deref_mut(), &mut outcome).await {
            Ok(sides) => sides,
            Err(error) => return Err(run.failed_after(error, outcome)),
        }
    } else {
        run.read_then_look_up().await?
    };
    outcome.read_time = read_end - started;
    outcome.sealed = read.quiet.sealed();
    if let Some(state) = state.as_deref_mut() {
        state.remember_sources(&read.quiet.seals())?;
    }
    let plan = run.decide(read, &listed, ahead, &mut outcome).await;
    if let Err(error) = run.write(plan, state.as_deref_mut(), &mut outcome).await {
        return Err(run.failed_after(error, outcome));
    }
    if let Some(state) = state.as_deref_mut() {
        state.end_writes()?;
    }
    outcome.count_requests(&run.client, target.as_ref());
    if let (Some(state), Some(link)) = (state, next_link) {
        if outcome.replays() {
            tracing::warn!(
                "the delta link was not advanced: a write failed or was held back, so the next \
                 run reads these changes again"
            );
        } else {
            state.save_delta_link(&fingerprint(&query, mapping), &link)?;
        }
    }
    Ok(outcome)
}

/// What a delta link is stored under: the query it follows, and the config and mapping
/// that made the records it was taken with (after an edit of either, a full run).
fn fingerprint(query: &UserQuery, mapping: &Mapping) -> String {
    format!(
        "{} config-mapping={}",
        delta::fingerprint(query),
        mapping.origin()
    )
}

/// Decides how the run reads Entra and, for a delta run, reads the changes: `None` for a
/// full read. Also the delta link to store once the run's writes are recorded: the round's
/// next link, or for a full run one taken before it reads (changes made while it reads are
/// then read again by the next run, which finds them written). The mode and why are noted
/// in `outcome`. With `ready`, a delta round hands over each user it is sure of while it
/// reads ([`delta::Ready`]); those are not among the changes returned.
async fn read_changes(
    (config, mapping): (&Config, &Mapping),
    client: &GraphClient,
    query: &UserQuery,
    options: &SyncOptions,
    outcome: &mut Outcome,
    ready: Option<&delta::Ready>,
) -> Result<(Option<Changes>, Option<String>), SyncError> {
    let mut start = changes::start(
        client,
        (query, &fingerprint(query, mapping)),
        &options.links,
        options.reconcile,
        config.sync.delta,
    );
    if let Start::Delta(link) = &start {
        match delta::changes_handed_early(client, query, link, ready).await {
            Ok(round) => {
                outcome.mode = ReadMode::Delta;
                let mut changes = Changes::default();
                for change in round.changes {
                    match change {
                        Change::Present(user) => changes.present.push(user),
                        Change::Gone { id, .. } => changes.gone.push(id),
                    }
                }
                tracing::info!(
                    changes = changes.len(),
                    "read the changes since the last run"
                );
                return Ok((Some(changes), Some(round.delta_link)));
            }
            Err(e) if delta::is_expired_state(&e) => {
                start = Start::Full {
                    why: "Graph no longer knows the stored delta link (expired or reset)".into(),
                    fresh: true,
                };
            }
            Err(e) => return Err(e.into()),
        }
    }
    let Start::Full { why, fresh } = start else {
        return Ok((None, None));
    };
    outcome.mode = if options.reconcile.is_some() {
        ReadMode::Reconcile
    } else {
        ReadMode::Full
    };
    tracing::info!("a full run: {why}");
    outcome.mode_reason = Some(why);
    if !fresh {
        return Ok((None, None));
    }
    match delta::latest_link(client, query).await {
        Ok(link) => Ok((None, Some(link))),
        Err(e) => {
            tracing::warn!("no delta link could be taken for the next run: {e}");
            Ok((None, None))
        }
    }
}

/// The choices of the config and the target that shape the plan.
pub fn plan_options(config: &Config, mapping: &Mapping, target: &dyn Target) -> PlanOptions {
    PlanOptions {
        mode: config.sync.mode,
        deactivate: config.sync.deactivate,
        create_disabled: config.sync.create_disabled,
        folds_case: mapping
            .fields()
            .iter()
            .map(|f| target.folds_case(f.target()))
            .collect(),
        partial_view: !config.target.list,
        reconcile: false,
    }
}

/// What every step of one sync reads.
struct Run<'a> {
    config: &'a Config,
    mapping: &'a Mapping,
    target: &'a Arc<dyn Target>,
    owned: &'a OwnedUsers,
    options: &'a SyncOptions,
    client: Arc<GraphClient>,
    /// In a run over some users, their Entra ids ([`plan::Prior::only`]).
    only: Option<FastSet<String>>,
    plan_options: PlanOptions,
    writer: Writer<'a>,
    /// How many Entra users there probably are, and the most there may be.
    expected: Expected,
    /// The target's entities the mapping's references name.
    catalogue: Catalogue,
    /// The same of the target's users.
    target_expected: Expected,
    /// Whether the state's records of the last writes can be trusted this run
    /// ([`State::keep_written_for`]).
    records_kept: bool,
}

/// The users read from Entra, the target users to plan against, and when reading ended.
type Sides<'o> = (Read<'o>, Vec<Listed>, Instant);

/// What a run read of Entra's changes ([`read_changes`]), what it planned ahead, and the
/// target's entities when they were listed for it.
type ChangesAhead = (
    Option<Changes>,
    Option<String>,
    Option<Ahead>,
    Option<Catalogue>,
);

impl Run<'_> {
    /// Reads Entra while the target is listed. A run that writes user by user starts the
    /// creates it is certain of while Entra is still being read; a failed read stops them
    /// (those under way finish). The creates sent while reading are in `outcome`'s plan.
    ///
    /// Only a read without a bound (no complete run before: a first load) creates while
    /// reading. After one, creates wait for the read to end within its bound, so a listing
    /// that runs away creates nobody it invented; a nightly run has few creates anyway.
    async fn read_alongside(
        &self,
        state: Option<&mut State>,
        outcome: &mut Outcome,
    ) -> Result<Sides<'_>, SyncError> {
        let listing = Listing::default();
        let (writers, creates, made) = match (&state, self.target.batch_size()) {
            (Some(_), None) if self.expected.limit.is_none() => {
                let (writers, creates) = tokio::sync::mpsc::channel(EARLY_QUEUE);
                let (tell, made) = tokio::sync::mpsc::unbounded_channel();
                (Some(writers), Some(Input::Early(creates, tell)), Some(made))
            }
            _ => (None, None, None),
        };
        let spill = writers
            .as_ref()
            .and_then(|_| Spill::beside(&self.config.sync.state));
        let read_failed = StopSignal::default();
        let listing_started = Instant::now();
        let leave_out =
            unread::may_leave_out(self.mapping, self.plan_options.reconcile, self.records_kept);
        let unread = |id: &str| leave_out && unread::left_out(self.owned, id);
        let alongside = Alongside {
            owned: self.owned,
            listing: &listing,
            options: &self.plan_options,
            early: writers,
            made,
            catalogue: &self.catalogue,
            spill,
        };
        let (read, listed, early) = tokio::join!(
            async {
                let read = self.read_entra(Some(alongside)).await;
                if read.is_err() {
                    read_failed.stop();
                }
                // The read's time ends with Entra's last page, not with the early creates
                // that follow it.
                read.map(|read| {
                    let ended = read.ended.unwrap_or_else(Instant::now);
                    (read, ended)
                })
            },
            async {
                // A failed or stopped read makes the listing moot: it ends with the read. A
                // listing that fails ends too, for a read that waits for it.
                let listed = tokio::select! {
                    listed = list_target(self.mapping, self.target.as_ref(), self.target_expected, &unread) => listed,
                    () = read_failed.wait() => return Ok(Instant::now()),
                };
                let listed = listed.inspect_err(|_| listing.end())?;
                tracing::debug!(
                    users = listed.len(),
                    seconds = listing_started.elapsed().as_secs_f64(),
                    "listed the target's users"
                );
                listing.set(listed);
                Ok::<Instant, TargetError>(Instant::now())
            },
            async {
                match (creates, state) {
                    (Some(creates), Some(state)) => {
                        self.writer
                            .stream(creates, Some(&read_failed), state, outcome)
                            .await
                    }
                    _ => Ok(()),
                }
            }
        );
        let (mut read, read_end) = match (early, read) {
            (Ok(()), Ok(read)) => read,
            (Err(error), _) => return Err(error),
            (Ok(()), Err(error)) => return Err(error.into()),
        };
        // The early creates' target ids, for the references of the users planned.
        outcome.keep_created(std::mem::take(&mut read.made));
        if let Some(source) = read.spill_failed.take() {
            let path = self.config.sync.state.clone();
            return Err(StateError::Spill { path, source }.into());
        }
        let read_end = read_end.max(listed?);
        let mut listed = listing.into_users().unwrap_or_default();
        if leave_out {
            unread::fill(
                (self.config, self.mapping),
                (&read, &mut listed),
                self.owned,
                self.target.as_ref(),
                self.fold_key(),
            )
            .await?;
        }
        Ok((read, listed, read_end))
    }

    /// Whether a delta round of this run writes the users it is sure of while it reads
    /// ([`ahead`]): a normal run (not a reconciliation) that writes user by user, with a
    /// match key Entra keeps unique.
    fn writes_ahead(&self) -> bool {
        self.options.reconcile.is_none()
            && self.target.batch_size().is_none()
            && self.mapping.key_is_unique_in_entra()
    }

    /// [`read_changes`], and for a delta round the updates of the users it hands over
    /// planned ahead ([`ahead`]) and written while it reads. Returns also what was planned
    /// ahead, and the target's entities when they were listed for it. A failed read stops
    /// the writes (those under way finish).
    async fn read_changes_ahead(
        &self,
        query: &UserQuery,
        state: &mut State,
        outcome: &mut Outcome,
    ) -> Result<ChangesAhead, SyncError> {
        let (ready, mut handed) = tokio::sync::mpsc::unbounded_channel();
        let (writes, queue) = tokio::sync::mpsc::unbounded_channel();
        let reader = state.written_reader()?;
        state.begin_writes()?;
        let read_failed = StopSignal::default();
        let mut noted = Outcome::new(outcome.owned);
        let options = PlanOptions {
            partial_view: true,
            ..self.plan_options.clone()
        };
        let planner = ahead::Planner {
            mapping: self.mapping,
            owned: self.owned,
            options: &options,
            fold_key: self.fold_key(),
            ctx: Context {
                settings: &self.config.settings,
                sync_time: &self.options.sync_time,
            },
        };
        let (read, planned, written) = tokio::join!(
            async {
                let read = read_changes(
                    (self.config, self.mapping),
                    &self.client,
                    query,
                    self.options,
                    &mut noted,
                    Some(&ready),
                )
                .await;
                drop(ready);
                if read.is_err() {
                    read_failed.stop();
                }
                read
            },
            async {
                let mut ahead = Ahead::default();
                let mut catalogue = None;
                let mut batch = Vec::new();
                while handed.recv_many(&mut batch, 1024).await > 0 {
                    let raw = std::mem::take(&mut batch);
                    if read_failed.stopped() || self.writer.stop.stopped() || writes.is_closed() {
                        ahead.later.extend(raw);
                        continue;
                    }
                    let users = planner.map(&raw);
                    let wanted = planner.wanted(&users);
                    let kept = reader.written(wanted.iter().map(String::as_str))?;
                    if catalogue.is_none() && self.mapping.entity_refs().next().is_some() {
                        catalogue = Some(list_entities(self.mapping, self.target.as_ref()).await?);
                    }
                    let listed = catalogue.get_or_insert_default();
                    for update in planner.plan((raw, users), &kept, listed, &mut ahead) {
                        let _ = writes.send(Action::Update(Box::new(update)));
                    }
                }
                drop(writes);
                let listed = self.mapping.entity_refs().next().is_some();
                Ok::<_, SyncError>((ahead, catalogue.filter(|_| listed)))
            },
            self.writer
                .stream(Input::All(queue), Some(&read_failed), state, outcome)
        );
        outcome.mode = noted.mode;
        outcome.mode_reason = noted.mode_reason;
        written?;
        let (ahead, catalogue) = planned?;
        let (changes, link) = read?;
        Ok((changes, link, Some(ahead), catalogue))
    }

    /// Reads Entra with this run's config and mapping, `alongside` the target's listing or not.
    async fn read_entra<'o>(
        &'o self,
        alongside: Option<Alongside<'_, 'o>>,
    ) -> Result<Read<'o>, GraphError> {
        read_source(
            self.config,
            self.mapping,
            &self.options.sync_time,
            &self.client,
            self.expected,
            alongside,
            self.writer.stop,
        )
        .await
    }

    /// Reads Entra, then looks up the target users the plan needs (`list = false`).
    async fn read_then_look_up(&self) -> Result<Sides<'_>, SyncError> {
        let read = self.read_entra(None).await?;
        let found = look_up(
            self.config,
            self.mapping,
            self.target.as_ref(),
            &read.users,
            self.owned,
            self.plan_options.reconcile,
        )
        .await?;
        Ok((read, found, Instant::now()))
    }

    /// Maps the users of a run over some users, and finds the target users their plan
    /// needs: as the `state` remembers them where it can vouch for them ([`vouched_for`],
    /// [`remembered`]), else looked up ([`look_up_some`]).
    async fn read_some(
        &self,
        changes: Changes,
        state: Option<&State>,
    ) -> Result<Sides<'_>, SyncError> {
        let ctx = Context {
            settings: &self.config.settings,
            sync_time: &self.options.sync_time,
        };
        let read = Read {
            users: changes
                .present
                .iter()
                .map(|user| source_user(self.mapping, user, &ctx))
                .collect(),
            ..Read::default()
        };
        let from_state = match state {
            Some(state) => {
                let ids = vouched_for(
                    (&read.users, &changes.gone),
                    self.owned,
                    self.fold_key(),
                    self.plan_options.reconcile,
                );
                remembered(self.mapping, self.owned, &state.written(ids)?)
            }
            None => Vec::new(),
        };
        let known: FastSet<String> = from_state.iter().map(|(id, _)| id.clone()).collect();
        let found = look_up_some(
            self.config,
            self.mapping,
            self.target.as_ref(),
            (&read.users, &changes.gone),
            (self.owned, &known),
            self.plan_options.reconcile,
        )
        .await?;
        Ok((read, with_remembered(found, from_state), Instant::now()))
    }

    /// Whether the target compares the match key without case.
    fn fold_key(&self) -> bool {
        self.plan_options
            .folds(self.mapping, self.mapping.match_key())
    }

    /// Plans the users read against the target's, asks what the leavers still hold (holding
    /// back those who hold something when the config says so), and has the guards judge
    /// the plan.
    async fn decide(
        &self,
        mut read: Read<'_>,
        listed: &[Listed],
        ahead: Option<Ahead>,
        outcome: &mut Outcome,
    ) -> Plan {
        outcome.source_users = read.total();
        outcome.scope = read.scope.take();
        outcome.target_users = listed.len();
        outcome.listed_whole = self.config.target.list;
        tracing::info!(
            entra_users = outcome.source_users,
            target_users = outcome.target_users,
            early_creates = read.created,
            seconds = outcome.read_time.as_secs_f64(),
            "read Entra and the target"
        );
        let mut plan = plan::plan_after(
            self.mapping,
            read.users,
            listed,
            self.owned,
            self.plan_options.clone(),
            &plan::Prior {
                entities: &self.catalogue,
                early: &outcome.created_early(),
                only: self.only.as_ref(),
                quiet: Some(&read.quiet),
            },
        );
        plan.skipped.extend(read.skipped);
        if let Some(ahead) = ahead {
            let only = self.only.clone().unwrap_or_default();
            outcome.source_users += ahead.ids.iter().filter(|id| !only.contains(*id)).count();
            ahead::merge(&mut plan, ahead, self.owned, &only);
        }
        let target = self.target.as_ref();
        holdings::ask(target, &mut plan.updates, self.config.sync.concurrency).await;
        if self.config.sync.hold_leavers_with_assets {
            let (held, message) = holdings::hold(&mut plan);
            outcome.held.extend(held);
            outcome.held_for_assets = message;
        }
        outcome.verdict = safety::judge(
            // A run over some users reads no whole scope: an empty read says nothing.
            if self.only.is_some() {
                outcome.owned.max(1)
            } else {
                outcome.source_users
            },
            outcome.owned,
            plan.count(UpdateKind::Deactivate),
            self.config.sync.max_deactivations,
            self.options.allow_deactivations,
        );
        // The updates written ahead are already in the outcome's plan.
        let ahead = &outcome.plan;
        tracing::info!(
            create = read.created + plan.creates.len(),
            update = plan.count(UpdateKind::Update) + ahead.count(UpdateKind::Update),
            deactivate = plan.count(UpdateKind::Deactivate),
            reactivate = plan.count(UpdateKind::Reactivate) + ahead.count(UpdateKind::Reactivate),
            unchanged = plan.unchanged,
            skipped = plan.skipped.len(),
            "planned"
        );
        match &outcome.verdict {
            Verdict::Proceed => {}
            Verdict::HoldDeactivations(m) => tracing::warn!("{m}"),
            Verdict::Refuse(m) => tracing::error!("{m}"),
        }
        plan
    }

    /// Writes the plan when there is a state to record it in and the guards do not refuse.
    /// After a run the outcome's plan holds the writes sent, those made while reading first.
    async fn write(
        &self,
        plan: Plan,
        state: Option<&mut State>,
        outcome: &mut Outcome,
    ) -> Result<(), SyncError> {
        let Plan {
            creates: early,
            updates: ahead,
            ..
        } = std::mem::replace(&mut outcome.plan, plan);
        if state.is_some() && matches!(outcome.verdict, Verdict::Refuse(_)) {
            // A refused run sends nothing more.
            outcome.plan.creates = early;
            outcome.plan.updates = ahead;
        } else if let Some(state) = state {
            let applied = apply(&self.writer, state, outcome, early).await;
            outcome.plan.updates.splice(0..0, ahead);
            applied?;
            outcome.write_time = self.writer.write_time();
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
        Ok(())
    }

    /// The error of a sync that failed with `outcome` so far: with the writes it had made,
    /// if any, so that the report and the CSV of changes list them.
    fn failed_after(&self, error: SyncError, mut outcome: Outcome) -> SyncError {
        // Creates let go once written count as writes made.
        if outcome.creates_sent() == 0 && outcome.plan.updates.is_empty() {
            return error;
        }
        outcome.write_time = self.writer.write_time();
        outcome.interrupted = self.writer.stop.stopped();
        outcome.count_requests(&self.client, self.writer.target.as_ref());
        let made = Box::new(outcome);
        match error {
            SyncError::Graph(error) => SyncError::GraphAfterCreates { error, made },
            SyncError::State(error) => SyncError::StateAfterWrites { error, made },
            other => other,
        }
    }
}
