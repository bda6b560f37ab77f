//! The read step: Entra pulled page by page and mapped as each page arrives, the target
//! listed alongside ([`super::listing`]), and — once the listing is complete — the creates
//! the plan is certain of handed to the writers while the read goes on (and after its last
//! page, for the users that wait for their managers' creates).

use std::sync::Arc;

use foldhash::HashMap as FastMap;
use serde_json::value::RawValue;
use tokio::sync::mpsc::{Sender, UnboundedReceiver};

use super::apply::{Action, Answered};
use super::listing::Listing;
use super::plan::{
    Catalogue, Create, Early, EarlyCreates, Listed, PlanOptions, Quiet, Sealer, Settle, Skipped,
    SourceUser,
};
use super::stop::StopSignal;
use crate::config::Config;
use crate::graph::groups::ScopeCounts;
use crate::graph::users_file::label;
use crate::graph::{
    Beside, GraphClient, GraphError, Managers, ReadLimit, Selection, UserPager, UserQuery,
    users_by_id,
};
use crate::mapping::path::Input;
use crate::mapping::{Context, Mapping};
use crate::spill::Spill;
use crate::state::OwnedUsers;

/// How many users a side probably holds, and how many it may hold before its listing is
/// taken to run away.
#[derive(Debug, Clone, Copy, Default)]
pub struct Expected {
    /// About as many as the last run saw: room for them from the start.
    pub users: usize,
    /// The bound, from the last complete run; none before one, or with `--allow-growth`.
    pub limit: Option<ReadLimit>,
}

impl Expected {
    /// About as many as the `owned` users (room for them from the start, rather than lists
    /// that double, and are briefly held twice, as they grow), and at most what the bound
    /// after the `last` complete read allows.
    pub fn after(owned: usize, last: Option<u64>) -> Expected {
        Expected {
            users: owned + owned / 16,
            limit: last.map(ReadLimit::after),
        }
    }
}

/// Reads the users in scope and maps each as its page arrives; `expected` is how many there
/// probably are, and the most there may be. With `alongside`, what the other side tells lightens the plan as the read
/// goes on (see [`Alongside`]). `stop` ends the read at once, with [`GraphError::Stopped`].
pub async fn read_source<'a, 'o: 'a>(
    config: &Config,
    mapping: &'a Mapping,
    sync_time: &str,
    client: &Arc<GraphClient>,
    expected: Expected,
    alongside: Option<Alongside<'a, 'o>>,
    stop: &StopSignal,
) -> Result<Read<'o>, GraphError> {
    let query = UserQuery::new(&config.source, selection(mapping));
    let managers = Managers::read(client, &query).await?;
    let mut beside = Beside::start(client, &query, &config.source);
    let ctx = Context {
        settings: &config.settings,
        sync_time,
    };
    let mut pager = UserPager::new(Arc::clone(client), &query).limited(expected.limit);
    let mut read = Read {
        users: Vec::with_capacity(expected.users),
        ..Read::default()
    };
    let mut sorter = alongside.map(|alongside| Sorter::new(mapping, alongside));
    let mut sealer = None;
    loop {
        if let Some(sorter) = &sorter {
            tokio::select! {
                biased;
                () = stop.wait() => return Err(GraphError::Stopped),
                () = sorter.room() => {}
            }
        }
        // A stop ends the read between pages or during one: the page's request is dropped.
        // A stop wins over a page ready at the same moment.
        let page = loop {
            tokio::select! {
                biased;
                () = stop.wait() => return Err(GraphError::Stopped),
                page = pager.next_users() => break page?,
                // Early creates that wait for a user just created go while the page comes.
                made = told(&mut sorter) => {
                    if let Some(sorter) = &mut sorter {
                        sorter.release(Some(made), &mut read);
                    }
                }
            }
        };
        // Pages wait, unmapped, while groups and licences are still being read.
        let last = page.is_none();
        let pages = match page {
            Some(page) => beside.pass(page).await?,
            None => tokio::select! {
                biased;
                () = stop.wait() => return Err(GraphError::Stopped),
                pages = beside.rest() => pages?,
            },
        };
        for paged in pages.into_iter().flatten() {
            let (id, text) = (paged.id(), &paged.text);
            if !beside.admits(&id) {
                continue;
            }
            // A user the state keeps a seal for is sealed as read: quiet without being
            // mapped when the seals agree.
            let mut source = None;
            if let Some(sorter) = &mut sorter
                && let Some(at) = sorter.sealed_position(&id)
            {
                let fold = sorter.settle.folds_key();
                let sealer = sealer.get_or_insert_with(|| seal_run(mapping, fold, &beside));
                let read_from = sealer.source(text.get(), |piece| {
                    seal_user(&id, managers.as_ref(), &beside, piece);
                });
                if sorter.settle.take_sealed(at, &read_from) {
                    continue;
                }
                source = Some(read_from);
            }
            let mut user = parse_user(text, &pager)?;
            add_extras(&mut user, managers.as_ref(), &beside);
            read.users
                .push(source_user(mapping, &user, &ctx).read_from(source));
        }
        if let Some(sorter) = &mut sorter {
            sorter.sort(mapping, &mut read);
        }
        if last {
            break;
        }
    }
    read.scope = beside.scope_counts();
    if let Some(sorter) = sorter {
        let missing = sorter.finish(mapping, &mut read, stop).await?;
        // Users taken out as unchanged whose target user is gone (deleted by hand): read
        // again, to be planned like any other (a user Graph no longer has is gone).
        if !missing.is_empty() {
            tracing::debug!(
                users = missing.len(),
                "reading again users whose target user is gone"
            );
            let users = tokio::select! {
                biased;
                () = stop.wait() => return Err(GraphError::Stopped),
                users = users_by_id(client, &query, &missing) => users?,
            };
            for mut user in users {
                add_extras(&mut user, managers.as_ref(), &beside);
                read.users.push(source_user(mapping, &user, &ctx));
            }
        }
    }
    Ok(read)
}

/// A user parsed whole, for mapping.
fn parse_user(text: &RawValue, pager: &UserPager) -> Result<serde_json::Value, GraphError> {
    serde_json::from_str(text.get()).map_err(|e| GraphError::Malformed {
        what: format!("page {} of {}", pager.pages(), pager.label()),
        detail: format!("a user that is not valid JSON ({e})"),
    })
}

/// The run's sealer ([`Sealer`]): what decides how users are mapped, whether the match key
/// is compared without case (`fold`), and what is put on every user alike.
fn seal_run(mapping: &Mapping, fold: bool, beside: &Beside) -> Sealer {
    Sealer::new(mapping.recipe(), |piece| {
        piece(&[u8::from(fold)]);
        if let Some(extras) = beside.extras() {
            extras.describe_run(piece);
        }
    })
}

/// Gives `piece` what is put on the user of `id` alone before mapping ([`add_extras`]).
fn seal_user(id: &str, managers: Option<&Managers>, beside: &Beside, piece: &mut dyn FnMut(&[u8])) {
    piece(b"manager");
    if let Some(managers) = managers {
        managers.describe_user(id, piece);
    }
    piece(b"groups");
    if let Some(extras) = beside.extras() {
        extras.describe_user(id, piece);
    }
}

/// Puts on `user` its manager, when the managers are read apart, and its groups and
/// licences, as far as they were read.
fn add_extras(user: &mut serde_json::Value, managers: Option<&Managers>, beside: &Beside) {
    if let Some(managers) = managers {
        managers.attach(user);
    }
    beside.attach(user);
}

/// An Entra user as Graph returned it, mapped.
pub(super) fn source_user(
    mapping: &Mapping,
    user: &serde_json::Value,
    ctx: &Context<'_>,
) -> SourceUser {
    let entra_id = user
        .get("id")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned();
    SourceUser::new(mapping, entra_id, label(user), mapping.map(user, ctx))
}

/// What a mapping reads, as the Graph query selects it. Neither side knows the other (they
/// are siblings in the layering), so the sync, which holds both, joins them here.
pub fn selection(mapping: &Mapping) -> Selection {
    Selection {
        properties: mapping.select().into_iter().collect(),
        manager: mapping.manager_select().map(|m| m.into_iter().collect()),
        groups: mapping.reads(Input::Groups),
        licenses: mapping.reads(Input::Licenses),
    }
}

/// The users read from Entra.
#[derive(Debug, Default)]
pub struct Read<'o> {
    /// The users left to the plan.
    pub users: Vec<SourceUser>,
    /// Creates handed to the writers while reading ([`EarlyCreates`]).
    pub created: usize,
    /// Users left alone while reading, and why.
    pub skipped: Vec<Skipped>,
    /// What the scope groups and exclusions did, when the config names any.
    pub scope: Option<ScopeCounts>,
    /// The users found unchanged while reading, and taken out of `users`.
    pub quiet: Quiet<'o>,
    /// When the last of Entra was read, when early creates went on after it.
    pub ended: Option<std::time::Instant>,
    /// The target ids of the users created while reading, by Entra id, when the mapping
    /// names users.
    pub made: FastMap<String, String>,
    /// Why a user waiting for its manager's create could not be read back from disk
    /// ([`Spill`]): the run ends with it.
    pub spill_failed: Option<std::io::Error>,
}

impl Read<'_> {
    /// How many users Entra returned.
    pub fn total(&self) -> usize {
        self.users.len() + self.created + self.skipped.len() + self.quiet.len()
    }
}

/// What the read learns from the state and the other side. A user the state remembers
/// exactly as it is now is quiet ([`Settle`]): the plan would leave it unchanged, so a
/// normal run takes it out as its page arrives, before the target's listing is complete,
/// and a night without changes holds one mark per user; once the listing is complete, a
/// user whose target user it does not hold is read again. (Where Entra does not keep the
/// match key unique, such a user's record is dropped instead, once its target user is
/// listed, and the planner compares it by its hash alone.) A reconciliation keeps every
/// record, checks each against its target user as it is read, and takes out those the
/// target holds word for word at the end ([`Settle::finish`]). And with `early`, the
/// creates the plan is certain of ([`EarlyCreates`]) are sent to the writers at once
/// rather than after the whole read.
pub struct Alongside<'a, 'o> {
    /// The state's owned users.
    pub(super) owned: &'o OwnedUsers,
    /// The target's users, listed beside the read.
    pub(super) listing: &'a Listing,
    /// The run's plan options (a reconciliation compares every user).
    pub(super) options: &'a PlanOptions,
    /// Where the writers take creates from.
    pub(super) early: Option<Sender<Action>>,
    /// Where the writers tell how each create sent early went, for the early creates that
    /// name its user.
    pub(super) made: Option<UnboundedReceiver<Answered>>,
    /// The target's entities the mapping names.
    pub(super) catalogue: &'a Catalogue,
    /// Where the early creates keep the users that wait ([`EarlyCreates::kept_in`]); in
    /// memory without one.
    pub(super) spill: Option<Spill>,
}

impl<'a, 'o> Alongside<'a, 'o> {
    /// Nothing is created while reading.
    pub fn new(
        owned: &'o OwnedUsers,
        listing: &'a Listing,
        options: &'a PlanOptions,
        catalogue: &'a Catalogue,
    ) -> Alongside<'a, 'o> {
        Alongside {
            owned,
            listing,
            options,
            early: None,
            made: None,
            catalogue,
            spill: None,
        }
    }
}

/// The most users a Graph page holds (`$top` is at most 999): the room [`Sorter::room`]
/// waits for.
const PAGE_ROOM: usize = 1000;

/// Applies [`Alongside`] to the users read, page by page.
struct Sorter<'a, 'o> {
    alongside: Alongside<'a, 'o>,
    /// The quiet users' finder.
    settle: Settle<'a, 'o>,
    /// Once the listing is complete: the early creates' decider, if there is one.
    ready: Option<Option<EarlyCreates<'a>>>,
    /// Users read so far that the listing's steps have not looked at start here.
    from: usize,
    /// Users read so far that were not looked at at all start here.
    new: usize,
    /// Whether users may be found quiet by their seals ([`Sorter::sealed_position`]).
    seals: bool,
}

impl<'a, 'o: 'a> Sorter<'a, 'o> {
    fn new(mapping: &'a Mapping, alongside: Alongside<'a, 'o>) -> Sorter<'a, 'o> {
        Sorter {
            seals: !alongside.options.reconcile && !mapping.updates_sync_time(),
            settle: Settle::new(mapping, alongside.owned, alongside.options),
            alongside,
            ready: None,
            from: 0,
            new: 0,
        }
    }

    /// Where the user of `entra_id` is among the owned users, when this run may find it
    /// quiet by its seal ([`Settle::sealed_position`]): a normal run, not a
    /// reconciliation, with a mapping that does not write something new each run.
    fn sealed_position(&self, entra_id: &str) -> Option<usize> {
        if !self.seals {
            return None;
        }
        self.settle.sealed_position(entra_id)
    }

    /// Looks at the users read since the last call: a normal run takes out the quiet ones
    /// at once; the rest waits for the listing (all of them once it is there).
    fn sort(&mut self, mapping: &'a Mapping, read: &mut Read<'o>) {
        if !self.alongside.options.reconcile {
            retain_from(&mut read.users, self.new, |user| !self.settle.take(user));
        }
        self.new = read.users.len();
        if self.ready.is_none() {
            let Some(listing) = self.alongside.listing.get() else {
                return;
            };
            self.listed(mapping, listing);
        }
        let Alongside {
            owned,
            options,
            early,
            made,
            ..
        } = &mut self.alongside;
        let (Some(decider), settle) = (&mut self.ready, &mut self.settle) else {
            return;
        };
        // Once the writers are gone (the run was stopped, or the state failed), every user
        // is left to the plan.
        if let (Some(decider), Some(writers)) = (decider, early.as_ref())
            && !writers.is_closed()
        {
            release(decider, writers, &mut made.as_mut(), None, read);
            for user in read.users.split_off(self.from) {
                // With the queue full, a create waits in the decider for room.
                let early = match writers.capacity() {
                    0 => decider.decide_without_room(user),
                    _ => decider.decide(user),
                };
                match early {
                    Early::Later(user) => read.users.push(user),
                    Early::Skip(skipped) => read.skipped.push(skipped),
                    Early::Waits => {}
                    Early::Create(create) => hand_out(writers, create, read),
                }
            }
        }
        for user in &mut read.users[self.from..] {
            if options.reconcile {
                settle.check(user);
            } else if let Ok(mapped) = &mut user.mapped
                && owned.get(&user.entra_id).is_some_and(|o| {
                    o.hash.as_deref() == Some(mapped.hash.as_str())
                        && o.target_id
                            .as_deref()
                            .is_some_and(|id| settle.is_listed(id))
                })
            {
                mapped.drop_record();
            }
        }
        self.from = read.users.len();
        self.new = self.from;
    }

    /// Sends the early creates that wait for nobody any more: after `made` (a create just
    /// answered) and whatever else the writers have told.
    fn release(&mut self, made: Option<Answered>, read: &mut Read<'o>) {
        let Alongside {
            early, made: told, ..
        } = &mut self.alongside;
        if let (Some(Some(decider)), Some(writers)) = (&mut self.ready, early.as_ref()) {
            release(decider, writers, &mut told.as_mut(), made, read);
        }
    }

    /// The listing is complete.
    fn listed(&mut self, mapping: &'a Mapping, listing: &'a [Listed]) {
        let Alongside {
            owned,
            options,
            early,
            catalogue,
            spill,
            ..
        } = &mut self.alongside;
        self.settle.listed(listing, catalogue);
        let decider = early
            .as_ref()
            .and_then(|_| EarlyCreates::new(mapping, listing, owned, options))
            .map(|decider| match spill.take() {
                Some(spill) => decider.kept_in(spill),
                None => decider,
            });
        self.ready = Some(decider);
    }

    /// Waits, while creates go out as Entra is read, until the writers can take a page's
    /// worth more: a read far ahead of the writes holds no more than that.
    async fn room(&self) {
        if let (Some(writers), Some(Some(_))) = (&self.alongside.early, &self.ready) {
            // A closed queue (the writers are gone) has no room to wait for.
            let _ = writers.reserve_many(PAGE_ROOM).await;
        }
    }

    /// Once every user is read: waits for the listing (the users taken out are confirmed
    /// against it, and the others are looked at), and gives the quiet users and the Entra
    /// ids of those taken out whose target user is missing. A listing that failed leaves
    /// every user read to the plan, and nobody quiet (its error ends the run). `stop` ends
    /// the wait for the listing; the early creates that follow the read end with the
    /// writers, which a stop ends too, and leave a complete read.
    async fn finish(
        mut self,
        mapping: &'a Mapping,
        read: &mut Read<'o>,
        stop: &StopSignal,
    ) -> Result<Vec<&'o str>, GraphError> {
        if self.ready.is_none() {
            let listing = tokio::select! {
                biased;
                () = stop.wait() => return Err(GraphError::Stopped),
                listing = self.alongside.listing.wait() => listing,
            };
            match listing {
                Some(listing) => self.listed(mapping, listing),
                None => return Ok(Vec::new()),
            }
            self.sort(mapping, read);
        }
        // The users still waiting follow the creates they wait for; those left are the
        // plan's to decide.
        if let Some(Some(mut decider)) = self.ready.take() {
            let Alongside { early, made, .. } = &mut self.alongside;
            if let (Some(writers), Some(told)) = (early.as_ref(), made.as_mut()) {
                read.ended = Some(std::time::Instant::now());
                follow(&mut decider, writers, told, read).await;
            }
            read.made = decider.take_made();
            match decider.into_waiting() {
                Ok(users) => read.users.extend(users),
                Err(error) => read.spill_failed = Some(error),
            }
        }
        let (quiet, missing) = self.settle.finish(&mut read.users);
        read.quiet = quiet;
        Ok(missing)
    }
}

/// Once every user is read: sends the early creates that wait, each as soon as the creates
/// it waits for have answered, until none can be sent any more ([`EarlyCreates::settled`])
/// or the writers are gone and have told all they made.
async fn follow(
    decider: &mut EarlyCreates<'_>,
    writers: &Sender<Action>,
    told: &mut UnboundedReceiver<Answered>,
    read: &mut Read<'_>,
) {
    let mut made = None;
    loop {
        release(decider, writers, &mut Some(&mut *told), made.take(), read);
        if decider.settled() {
            return;
        }
        // A full queue empties as the writers answer: each answer is a chance to send.
        // Writers that are gone (a stopped run) tell the creates under way, then end.
        match told.recv().await {
            Some(answered) => made = Some(answered),
            None => return,
        }
    }
}

/// Tells `decider` how the creates went (`made`, then whatever `told` holds), and sends the
/// creates that no longer wait while the writers have room.
fn release(
    decider: &mut EarlyCreates<'_>,
    writers: &Sender<Action>,
    told: &mut Option<&mut UnboundedReceiver<Answered>>,
    made: Option<Answered>,
    read: &mut Read<'_>,
) {
    let more = std::iter::from_fn(|| told.as_mut()?.try_recv().ok());
    for (entra_id, target_id) in made.into_iter().chain(more) {
        decider.answered(entra_id, target_id);
    }
    while !writers.is_closed()
        && writers.capacity() > 0
        && let Some(create) = decider.next_released()
    {
        hand_out(writers, create, read);
    }
}

/// Hands a create decided while reading to the writers, counted in `read`. A create the
/// writers can no longer take is one of a stopped run's writes never sent.
fn hand_out(writers: &Sender<Action>, create: Create, read: &mut Read<'_>) {
    if writers.try_send(Action::Create(create)).is_ok() {
        read.created += 1;
    }
}

/// The next create the writers tell has answered, while early creates may wait for one;
/// never, otherwise.
async fn told(sorter: &mut Option<Sorter<'_, '_>>) -> Answered {
    let waits = sorter.as_mut().and_then(|sorter| match sorter.ready {
        Some(Some(_)) => sorter.alongside.made.as_mut(),
        _ => None,
    });
    match waits {
        Some(told) => match told.recv().await {
            Some(made) => made,
            // The writers are gone: nothing more comes.
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// Keeps, of `users` from `from` on, those `keep` says, in place (the users kept move to
/// the front, those taken out are dropped at the end: a copy of the users waiting for the
/// listing would double them).
fn retain_from<T>(users: &mut Vec<T>, from: usize, mut keep: impl FnMut(&T) -> bool) {
    let mut kept = from;
    for i in from..users.len() {
        if keep(&users[i]) {
            users.swap(kept, i);
            kept += 1;
        }
    }
    users.truncate(kept);
}
