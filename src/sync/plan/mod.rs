//! The planner: from the mapped Entra users, the target's users and what the state file
//! remembers, decide what each user needs. Pure: no I/O, so every rule is tested directly.
//!
//! The rules, in the order they apply:
//!
//! - A user is matched to a target user first through the state file (the Entra object id
//!   owns a target id, so a renamed user is updated, not created again), then by the match
//!   keys in order (each compared without case where the target does): the first key that
//!   finds exactly one target user matches; several target users under a key, or a target
//!   user claimed by two Entra users, skip the users concerned.
//! - Two Entra users that map to the same key are both skipped and reported, never merged;
//!   the target user with that key is left alone (not deactivated either).
//! - A user with no target user is created, unless the run is `update_only` or the user is
//!   disabled in Entra (and `create_disabled` is off).
//! - A matched user whose last written record is unchanged (same hash) needs nothing. Else
//!   its fields mapped `on = "always"` are compared with the target's values and only those
//!   that differ are written; a change of the active field makes it a deactivation or a
//!   reactivation. `create_only` runs update nothing.
//! - An owned target user whose Entra user is gone (deleted, out of the filter) is
//!   deactivated when `deactivate` is on; target users userload does not own are never
//!   touched.
//!
//! The steps: `matching` indexes the target users by id and by each key (and finds the
//! first keys several Entra users share); `takeover` matches the users the state does not
//! link, key by key, and counts the matches; `decide` decides what each matched or unmatched user
//! needs, and what the owned users that left need; [`early`] decides, while Entra is still
//! being read, the creates that are certain.

mod decide;
mod drift;
mod early;
mod entities;
mod held;
mod matching;
mod quiet;
mod refs;
mod seal;
mod takeover;

use foldhash::HashSet as FastSet;
use serde_json::Value as Json;

use decide::Planner;
pub use decide::same_value;
pub use drift::{Drift, DriftCount, DriftField, drift_count, is_empty};
pub use early::{Early, EarlyCreates};
pub use entities::{Catalogue, EntityName, name_key};
use matching::TargetIndex;
pub use quiet::{Quiet, Settle};
use refs::Links;
pub use refs::{Deferred, NO_USER, Named, Unresolved, marked, resolved_alone};
pub use seal::{Sealer, Source};
pub use takeover::Matched;

use crate::config::Mode;
use crate::mapping::{CannotBorrow, Mapping, Packed, Record, Skip};
use crate::state::{Owned, OwnedUsers};
use crate::targets::{FieldChange, Holding, RawData, RawUser, TargetUser};

/// A target user as the planner keeps it: the target's id and version, its match key and
/// active flag, and the values of the mapping's fields (read with
/// [`Mapping::record_from`]), packed. Small, so that a listing of 100,000 users stays small;
/// the values are unpacked only for the users compared or written.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The target's id of the user.
    pub id: String,
    /// Its version (ETag), when the target gives one.
    pub etag: Option<String>,
    /// Its value of the match key.
    pub key: Option<Json>,
    /// Its value of the active field.
    pub active: Option<Json>,
    /// Its values of the later match keys (`match = [...]`); empty with one key.
    later: Box<[Option<Json>]>,
    /// Its values; unread ([`Packed::is_unread`]) when listed without them
    /// ([`Listed::of_raw`]).
    values: Packed,
}

impl Listed {
    /// Keeps what the planner needs of a target user.
    pub fn of(mapping: &Mapping, user: TargetUser) -> Listed {
        let record = mapping.record_from(&user.data);
        Listed::from_parts(mapping, &record, record.pack(), user.id, user.etag)
    }

    /// The same from a user as the target sent it, its values read in place (the user is
    /// parsed whole only when its text cannot be read so); without `values`, only its id,
    /// version, match keys and active flag are kept ([`Listed::has_values`]).
    pub fn of_raw(mapping: &Mapping, user: RawUser<'_>, values: bool) -> Listed {
        let read = match &user.data {
            RawData::Members(members) => mapping.read_raw(members, &mapping.compared().all, values),
            RawData::Parsed(_) => Err(CannotBorrow),
        };
        match read {
            Ok((values, some)) => Listed::from_parts(mapping, &some, values, user.id, user.etag),
            Err(CannotBorrow) => Listed::of(mapping, user.parse()),
        }
    }

    /// A target user as the state file remembers it: its id, and the record the target
    /// holds after userload's last write ([`crate::state::Remembered`]), without a version.
    pub fn remembered(mapping: &Mapping, id: String, record: &Record) -> Listed {
        Listed::from_parts(mapping, record, record.pack(), id, None)
    }

    /// The same without its values ([`Listed::has_values`]).
    pub fn without_values(mut self) -> Listed {
        self.values.forget();
        self
    }

    /// Whether its values were read: a target user listed without them
    /// ([`Listed::of_raw`]) has them only once [`Listed::fill`] gave them.
    pub fn has_values(&self) -> bool {
        !self.values.is_unread()
    }

    /// Gives a target user listed without its values the `record` the state keeps for it,
    /// with the match keys and the active flag as listed (the target's own).
    pub fn fill(&mut self, mapping: &Mapping, mut record: Record) {
        let mut set = |field: Option<&str>, value: Option<&Json>| {
            if let Some(i) = field.and_then(|f| mapping.field_index(f)) {
                record.set(i, value.cloned());
            }
        };
        set(Some(mapping.match_key()), self.key.as_ref());
        for (k, field) in mapping.match_keys().iter().enumerate().skip(1) {
            set(Some(field), self.key_value(k));
        }
        set(
            mapping.active_field().map(|a| a.field.as_str()),
            self.active.as_ref(),
        );
        self.values = record.pack();
    }

    /// `record` holds at least the values of the match keys and the active field.
    fn from_parts(
        mapping: &Mapping,
        record: &Record,
        values: Packed,
        id: String,
        etag: Option<String>,
    ) -> Listed {
        let value = |field: Option<usize>| field.and_then(|i| record.value(i)).cloned();
        let compared = mapping.compared();
        Listed {
            key: value(compared.key()),
            active: value(compared.active),
            later: later_keys(mapping, record),
            values,
            id,
            etag,
        }
    }

    /// Its value of the `k`-th match key.
    fn key_value(&self, k: usize) -> Option<&Json> {
        match k {
            0 => self.key.as_ref(),
            k => self.later.get(k - 1)?.as_ref(),
        }
    }

    /// What it holds in each mapped field (nothing, while its values are not read:
    /// [`Listed::has_values`]).
    pub fn record(&self) -> Record {
        self.values.unpack()
    }

    /// The user as a target takes it back: its mapped fields, laid out by target paths.
    pub fn to_target_user(&self) -> TargetUser {
        TargetUser {
            id: self.id.clone(),
            data: self.record().to_json(),
            etag: self.etag.clone(),
        }
    }
}

/// A match key's value as compared, and as the state file keeps it ([`Owned::key`]):
/// lower-cased when the target compares the key without case (`fold`).
pub fn key_as_compared(value: &Json, fold: bool) -> std::borrow::Cow<'_, str> {
    matching::compared_key(value, fold)
}

/// One Entra user, mapped.
#[derive(Debug, Clone)]
pub struct SourceUser {
    /// The Entra object id.
    pub entra_id: String,
    /// How to name the user in messages (user principal name, else id).
    pub label: String,
    /// The record, or why the mapping skipped the user.
    pub mapped: Result<Mapped, Skip>,
    /// What it was read from, when the state may keep a seal of it ([`Sealer`]).
    pub source: Option<Source>,
}

impl SourceUser {
    /// An Entra user as the mapping made it.
    pub fn new(
        mapping: &Mapping,
        entra_id: String,
        label: String,
        mapped: Result<Record, Skip>,
    ) -> SourceUser {
        SourceUser {
            entra_id,
            label,
            mapped: mapped.map(|record| Mapped::of(mapping, &record)),
            source: None,
        }
    }

    /// The same user, read from `source`.
    pub fn read_from(self, source: Option<Source>) -> SourceUser {
        SourceUser { source, ..self }
    }
}

/// A mapped user as the planner keeps it: what every user is compared on (match key, active
/// flag, hash of what it writes), and its record, packed until it is written.
#[derive(Debug, Clone)]
pub struct Mapped {
    /// Its value of the match key.
    pub key: Option<Json>,
    /// Whether it is active (not the mapping's inactive value; active without an active
    /// field).
    pub enabled: bool,
    /// [`record_hash`] of its record.
    pub hash: String,
    /// Its values of the later match keys (`match = [...]`); empty with one key.
    later: Box<[Option<Json>]>,
    /// Whether the record names another user (a manager) or an entity (a department) in a
    /// field with `refers`: such a user is created only once the plan has resolved them.
    names_another: bool,
    /// The record; `None` once dropped because it will not be written.
    values: Option<Packed>,
    /// Whether the target user the state links it to held its record word for word when
    /// it was read ([`Settle::check`]).
    same_as_listed: bool,
}

impl Mapped {
    /// Keeps what the planner needs of a record.
    pub fn of(mapping: &Mapping, record: &Record) -> Mapped {
        let compared = mapping.compared();
        let (values, hash) = written_digest(mapping, record);
        let enabled = mapping
            .active_field()
            .is_none_or(|a| compared.active.and_then(|i| record.value(i)) != Some(&a.inactive));
        Mapped {
            key: compared.key().and_then(|i| record.value(i)).cloned(),
            enabled,
            hash,
            later: later_keys(mapping, record),
            names_another: mapping
                .user_refs()
                .chain(mapping.entity_refs().map(|(i, _)| i))
                .any(|i| record.value(i).is_some_and(|v| !v.is_null())),
            values: Some(values),
            same_as_listed: false,
        }
    }

    /// Its value of the `k`-th match key.
    fn key_value(&self, k: usize) -> Option<&Json> {
        match k {
            0 => self.key.as_ref(),
            k => self.later.get(k - 1)?.as_ref(),
        }
    }

    /// Whether it keeps its record ([`Mapped::drop_record`]).
    pub fn has_record(&self) -> bool {
        self.values.is_some()
    }

    /// The record, unless it was dropped ([`Mapped::drop_record`]).
    pub fn record(&self) -> Option<Record> {
        self.values.as_ref().map(Packed::unpack)
    }

    /// Drops the record of a user that will not be written (the state remembers it as it
    /// is, for a target user that is still there): the planner compares such a user by its
    /// hash alone.
    pub fn drop_record(&mut self) {
        self.values = None;
    }
}

/// A record's values of the match keys after the first: nothing to hold (no allocation) with
/// one key.
fn later_keys(mapping: &Mapping, record: &Record) -> Box<[Option<Json>]> {
    let keys = &mapping.compared().keys;
    keys.get(1..)
        .unwrap_or_default()
        .iter()
        .map(|k| k.and_then(|i| record.value(i)).cloned())
        .collect()
}

/// The choices of the config that shape a plan.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// `mode` in `[sync]`.
    pub mode: Mode,
    /// `deactivate` in `[sync]`.
    pub deactivate: bool,
    /// `create_disabled` in `[sync]`.
    pub create_disabled: bool,
    /// Whether `target` holds only the users looked up (`list = false`) rather than every
    /// target user: an owned user that is not among them, and whose record is the one last
    /// written, is then taken as present and unchanged.
    pub partial_view: bool,
    /// For each mapping field, whether the target compares its values without case
    /// ([`Target::folds_case`](crate::targets::Target::folds_case)): such a value differing
    /// only in case is not written again, and the match key is compared that way.
    pub folds_case: Vec<bool>,
    /// Whether this run is a full reconciliation: users whose record did not change since
    /// the last write are compared with the target too, and differences are drift.
    pub reconcile: bool,
}

impl PlanOptions {
    /// Whether the target compares the values of `field` (a mapping field) without case.
    pub fn folds(&self, mapping: &Mapping, field: &str) -> bool {
        mapping
            .field_index(field)
            .and_then(|i| self.folds_case.get(i).copied())
            .unwrap_or(false)
    }
}

/// What happens to a user that exists in the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    /// Fields change; the active flag does not.
    Update,
    /// The user becomes inactive.
    Deactivate,
    /// The user becomes active again.
    Reactivate,
}

impl UpdateKind {
    /// The action's name in logs, reports and the CSV of changes.
    pub fn name(self) -> &'static str {
        match self {
            UpdateKind::Update => "update",
            UpdateKind::Deactivate => "deactivate",
            UpdateKind::Reactivate => "reactivate",
        }
    }
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct Create {
    /// The Entra object id.
    pub entra_id: String,
    /// The match key, as compared.
    pub key: String,
    /// For messages.
    pub label: String,
    /// What to write, packed until it is written.
    values: Packed,
    /// Whether a create of this user was started before and may have gone through: look it
    /// up before creating it.
    pub pending: bool,
    /// Whether the user is active in Entra (created inactive otherwise, `create_disabled`).
    pub enabled: bool,
    /// [`record_hash`] of the record, remembered once it is written ([`marked`] when a
    /// reference in it could not be resolved).
    pub hash: String,
    /// References to users created in this run, filled in once they are.
    pub deferred: Vec<Deferred>,
}

impl Create {
    /// What to write.
    pub fn record(&self) -> Record {
        self.values.unpack()
    }

    /// What to write, packed.
    pub fn packed(&self) -> &Packed {
        &self.values
    }

    /// Sets what to write.
    pub fn set_record(&mut self, record: &Record) {
        self.values = record.pack();
    }
}

/// A user to write fields of.
#[derive(Debug, Clone)]
pub struct Update {
    /// The Entra object id.
    pub entra_id: String,
    /// The match key, as compared.
    pub key: String,
    /// For messages.
    pub label: String,
    /// The target user.
    pub user: Listed,
    /// The fields that change.
    pub changes: Vec<FieldChange>,
    /// The whole record as it will stand.
    pub record: Record,
    /// Update, deactivation or reactivation.
    pub kind: UpdateKind,
    /// The hash to remember once written, when it is not the record's own: the hash of the
    /// mapped record, whose references name Entra users ([`refs`]).
    pub hash: Option<String>,
    /// References to users created in this run, filled in (as changes) once they are.
    pub deferred: Vec<Deferred>,
    /// What the user still holds in the target (asked of deactivations only).
    pub holdings: Holdings,
}

/// What a user to deactivate still holds in the target, asked after the plan is made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Holdings {
    /// Not asked: not a deactivation, or the target cannot tell.
    #[default]
    NotAsked,
    /// What the target listed (perhaps nothing).
    Known(Vec<Holding>),
    /// The target could not be asked: why.
    Unknown(String),
}

impl Holdings {
    /// The things held, as far as known.
    pub fn items(&self) -> &[Holding] {
        match self {
            Holdings::Known(items) => items,
            Holdings::NotAsked | Holdings::Unknown(_) => &[],
        }
    }

    /// Whether the user may still hold something: the target listed something, or could
    /// not say.
    pub fn may_hold(&self) -> bool {
        match self {
            Holdings::Known(items) => !items.is_empty(),
            Holdings::Unknown(_) => true,
            Holdings::NotAsked => false,
        }
    }
}

/// A user left alone, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// For messages.
    pub label: String,
    /// Why.
    pub reason: String,
}

/// What a run will do.
#[derive(Debug, Default)]
pub struct Plan {
    /// Users to create.
    pub creates: Vec<Create>,
    /// Users to update, deactivate or reactivate.
    pub updates: Vec<Update>,
    /// How many users need no write.
    pub unchanged: usize,
    /// What the state file should remember that it does not yet (users matched for the
    /// first time, or whose record changed without a write being needed): no write to the
    /// target, one to the state.
    pub remember: Vec<Owned>,
    /// Users left alone, with the reason.
    pub skipped: Vec<Skipped>,
    /// Owned users whose target user no longer exists: forgotten.
    pub forget: Vec<String>,
    /// Owned users that would be deactivated if `deactivate` were on.
    pub kept_by_config: usize,
    /// Target users userload does not own (never touched).
    pub not_owned: usize,
    /// Things the admin should know that are not about one user.
    pub notes: Vec<String>,
    /// References to users or entities the target does not have and this run does not
    /// create: the fields are left empty.
    pub unresolved: Vec<Unresolved>,
    /// Entities to create before the users are written (`policy = "create"`), each once.
    pub entities: Vec<EntityName>,
    /// How many users were matched through the state, and by each key.
    pub matched: Matched,
    /// Users whose target values were changed by hand (found by a reconciliation).
    pub drift: Vec<Drift>,
}

impl Plan {
    /// The updates of one kind.
    pub fn of_kind(&self, kind: UpdateKind) -> impl Iterator<Item = &Update> {
        self.updates.iter().filter(move |u| u.kind == kind)
    }

    /// How many updates are of one kind.
    pub fn count(&self, kind: UpdateKind) -> usize {
        self.of_kind(kind).count()
    }

    /// Whether the plan writes nothing.
    pub fn is_empty(&self) -> bool {
        self.creates.is_empty() && self.updates.is_empty()
    }
}

/// A stable hash of what a record writes on update (the fields an update may write): equal
/// hashes mean nothing changed since the last write.
pub fn record_hash(mapping: &Mapping, record: &Record) -> String {
    written_digest(mapping, record).1
}

/// A record packed, and its [`record_hash`], from one serialisation of its values.
fn written_digest(mapping: &Mapping, record: &Record) -> (Packed, String) {
    let mut digest = Digest::new();
    let packed = record.pack_and_digest(
        |i| mapping.fields().get(i).is_some_and(|f| f.updatable()),
        |piece| digest.update(piece),
    );
    (packed, digest.finish())
}

/// The hash of a record's text: the first half of its SHA-256, in hex.
struct Digest(aws_lc_rs::digest::Context);

impl Digest {
    fn new() -> Digest {
        Digest(aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256))
    }

    fn update(&mut self, piece: &[u8]) {
        self.0.update(piece);
    }

    fn finish(self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let digest = self.0.finish();
        let mut hex = String::with_capacity(32);
        for b in &digest.as_ref()[..16] {
            hex.push(char::from(HEX[usize::from(b >> 4)]));
            hex.push(char::from(HEX[usize::from(b & 15)]));
        }
        hex
    }
}

/// Builds the plan. `target` is every target user (a listing); `owned` is the state file's
/// owned users by Entra object id.
pub fn plan(
    mapping: &Mapping,
    sources: Vec<SourceUser>,
    target: &[Listed],
    owned: &OwnedUsers,
    options: PlanOptions,
) -> Plan {
    let entities = Catalogue::default();
    let prior = Prior {
        entities: &entities,
        early: &[],
        only: None,
        quiet: None,
    };
    plan_after(mapping, sources, target, owned, options, &prior)
}

/// What a run knows before it plans, beside the users: the target's entities the mapping's
/// references name, and the users it created while Entra was read ([`EarlyCreates`]).
#[derive(Debug, Clone, Copy)]
pub struct Prior<'a> {
    /// The target's entities of each kind the mapping names.
    pub entities: &'a Catalogue,
    /// The creates made while reading: those users are not among the plan's sources, and a
    /// reference to one is filled in at write time.
    pub early: &'a [&'a str],
    /// In a run over some users only (a delta round, `run --user`): the Entra ids it
    /// concerns, read or removed. An owned user outside it is unchanged, not gone, and the
    /// target user it owns is nobody else's to take.
    pub only: Option<&'a FastSet<String>>,
    /// In a full run: the users found unchanged while Entra was read, and taken out of
    /// the users planned ([`Quiet`]).
    pub quiet: Option<&'a Quiet<'a>>,
}

/// [`plan`] with what the run knows beside the users ([`Prior`]).
pub fn plan_after(
    mapping: &Mapping,
    sources: Vec<SourceUser>,
    target: &[Listed],
    owned: &OwnedUsers,
    options: PlanOptions,
    prior: &Prior<'_>,
) -> Plan {
    let mut plan = Plan::default();
    if mapping.field_index(mapping.match_key()).is_none() {
        plan.notes.push(format!(
            "the mapping's match key `{}` is not one of its fields; nothing can be matched",
            mapping.match_key()
        ));
        return plan;
    }
    let mut index = TargetIndex::new(mapping, target, &options);
    // The owned users whose Entra user was seen, mapped or not: none of them is gone.
    let present: FastSet<&str> = sources
        .iter()
        .filter_map(|s| owned.get(&s.entra_id))
        .map(|o| o.entra_id.as_str())
        .collect();
    let later_keys = index.keys.len() > 1;
    let duplicates = matching::duplicate_keys(
        mapping,
        &sources,
        index.fold_key,
        later_keys,
        &mut plan.skipped,
    );
    let (matched, keyless) = index.resolve(
        &sources,
        owned,
        &duplicates,
        (&options, prior),
        &mut plan.skipped,
    );
    plan.matched = matched;
    let links = Links::new(
        mapping,
        &sources,
        prior,
        owned,
        &index,
        (&duplicates, &options),
    );
    let mut planner = Planner::new(mapping, owned, &options, &index, &duplicates, &links, plan);
    for mut source in sources {
        // A user linked without a first key: the state records an empty key for it.
        if keyless.contains(&source.entra_id)
            && let Ok(mapped) = &mut source.mapped
        {
            mapped.key = Some(Json::String(String::new()));
        }
        planner.user(source);
    }
    planner.gone(&present, prior);
    let mut plan = planner.finish(target);
    if let Some(only) = prior.only {
        // The users a run over some users leaves out are as they were.
        plan.unchanged += untouched(owned, only);
    }
    if let Some(quiet) = prior.quiet {
        plan.unchanged += quiet.len();
        plan.matched.by_state += quiet.len();
    }
    plan.entities = entities_to_create(&plan);
    plan
}

/// The owned users (with a target user) outside `only`.
pub fn untouched(owned: &OwnedUsers, only: &FastSet<String>) -> usize {
    owned
        .values()
        .filter(|o| o.target_id.is_some() && !only.contains(&o.entra_id))
        .count()
}

/// The entities the plan's writes wait for, each once, in the order first named.
fn entities_to_create(plan: &Plan) -> Vec<EntityName> {
    let mut seen = FastSet::default();
    plan.creates
        .iter()
        .flat_map(|c| &c.deferred)
        .chain(plan.updates.iter().flat_map(|u| &u.deferred))
        .filter_map(|d| match &d.named {
            Named::Entity(e) => Some(e),
            Named::User(_) => None,
        })
        .filter(|e| seen.insert((e.kind.clone(), e.key.clone())))
        .cloned()
        .collect()
}
