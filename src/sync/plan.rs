//! The planner: from the mapped Entra users, the target's users and what the state file
//! remembers, decide what each user needs. Pure: no I/O, so every rule is tested directly.
//!
//! The rules, in the order they apply:
//!
//! - A user is matched to a target user first through the state file (the Entra object id
//!   owns a target id, so a renamed user is updated, not created again), then by the match
//!   key (compared without case where the target does).
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

use std::borrow::Cow;
use std::collections::hash_map::Entry;

use foldhash::{HashMap as FastMap, HashSet as FastSet};
use serde_json::Value as Json;

use crate::config::Mode;
use crate::mapping::{Mapping, On, Packed, Record, Skip};
use crate::state::{Owned, OwnedUsers};
use crate::targets::{FieldChange, TargetUser};

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
    values: Packed,
}

impl Listed {
    /// Keeps what the planner needs of a target user.
    pub fn of(mapping: &Mapping, user: TargetUser) -> Listed {
        let record = mapping.record_from(&user.data);
        let value = |field: Option<usize>| field.and_then(|i| record.value(i)).cloned();
        let active = mapping
            .active_field()
            .and_then(|a| mapping.field_index(&a.field));
        Listed {
            key: value(mapping.field_index(mapping.match_key())),
            active: value(active),
            values: record.pack(),
            id: user.id,
            etag: user.etag,
        }
    }

    /// What it holds in each mapped field.
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

/// One Entra user, mapped.
#[derive(Debug, Clone)]
pub struct SourceUser {
    /// The Entra object id.
    pub entra_id: String,
    /// How to name the user in messages (user principal name, else id).
    pub label: String,
    /// The record, or why the mapping skipped the user.
    pub mapped: Result<Mapped, Skip>,
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
        }
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
    /// The record; `None` once dropped because it will not be written.
    values: Option<Packed>,
}

impl Mapped {
    /// Keeps what the planner needs of a record.
    pub fn of(mapping: &Mapping, record: &Record) -> Mapped {
        let index = |field: &str| mapping.field_index(field);
        let enabled = mapping
            .active_field()
            .is_none_or(|a| index(&a.field).and_then(|i| record.value(i)) != Some(&a.inactive));
        Mapped {
            key: index(mapping.match_key())
                .and_then(|i| record.value(i))
                .cloned(),
            enabled,
            hash: record_hash(mapping, record),
            values: Some(record.pack()),
        }
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
    /// [`record_hash`] of the record, remembered once it is written.
    pub hash: String,
}

impl Create {
    /// What to write.
    pub fn record(&self) -> Record {
        self.values.unpack()
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

/// A stable hash of what a record writes on update (its `on = "always"` fields): equal
/// hashes mean nothing changed since the last write.
pub fn record_hash(mapping: &Mapping, record: &Record) -> String {
    let written: Vec<&Option<Json>> = mapping
        .fields()
        .iter()
        .zip(record.values())
        .filter(|(f, _)| f.on() == On::Always)
        .map(|(_, v)| v)
        .collect();
    let text = serde_json::to_string(&written).unwrap_or_default();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(32);
    for b in &digest.as_ref()[..16] {
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 15)]));
    }
    hex
}

/// A match key as compared: the value's text, lower-cased when the target ignores case;
/// borrowed from the value when it is already so (most keys are).
fn compared_key(value: &Json, fold_case: bool) -> Cow<'_, str> {
    match value {
        Json::String(s) if !fold_case || is_folded(s) => Cow::Borrowed(s),
        Json::String(s) => Cow::Owned(s.to_lowercase()),
        other if fold_case => Cow::Owned(other.to_string().to_lowercase()),
        other => Cow::Owned(other.to_string()),
    }
}

/// Whether lower-casing leaves `text` as it is (checked byte by byte for ASCII text).
fn is_folded(text: &str) -> bool {
    if text.is_ascii() {
        !text.bytes().any(|b| b.is_ascii_uppercase())
    } else {
        text.chars().all(|c| c.to_lowercase().eq([c]))
    }
}

/// The target users with one match key: nearly always one.
enum Matches<'a> {
    One(&'a Listed),
    Many(Vec<&'a Listed>),
}

impl<'a> Matches<'a> {
    fn add(&mut self, user: &'a Listed) {
        match self {
            Matches::One(first) => *self = Matches::Many(vec![*first, user]),
            Matches::Many(users) => users.push(user),
        }
    }

    fn as_slice(&self) -> &[&'a Listed] {
        match self {
            Matches::One(user) => std::slice::from_ref(user),
            Matches::Many(users) => users,
        }
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
    let mut plan = Plan::default();
    let Some(key_index) = mapping.field_index(mapping.match_key()) else {
        plan.notes.push(format!(
            "the mapping's match key `{}` is not one of its fields; nothing can be matched",
            mapping.match_key()
        ));
        return plan;
    };
    let fold_key = options.folds_case.get(key_index).copied().unwrap_or(false);
    let active = mapping.active_field().and_then(|a| {
        let index = mapping.field_index(&a.field)?;
        Some((index, a))
    });
    let by_id: FastMap<&str, &Listed> = target.iter().map(|u| (u.id.as_str(), u)).collect();
    let mut by_key: FastMap<Cow<'_, str>, Matches<'_>> = FastMap::default();
    by_key.reserve(target.len());
    for user in target {
        if let Some(key) = &user.key {
            match by_key.entry(compared_key(key, fold_key)) {
                Entry::Vacant(entry) => {
                    entry.insert(Matches::One(user));
                }
                Entry::Occupied(mut entry) => entry.get_mut().add(user),
            }
        }
    }
    // The owned users whose Entra user was seen, mapped or not: none of them is gone.
    let present: FastSet<&str> = sources
        .iter()
        .filter_map(|s| owned.get_key_value(&s.entra_id))
        .map(|(id, _)| id.as_str())
        .collect();

    // How many users map to each key; the users that cannot be matched at all.
    let mut users_of_key: FastMap<Cow<'_, str>, u32> = FastMap::default();
    users_of_key.reserve(sources.len());
    for user in &sources {
        let reason = match &user.mapped {
            Ok(Mapped { key: Some(key), .. }) => {
                *users_of_key.entry(compared_key(key, fold_key)).or_default() += 1;
                continue;
            }
            Ok(_) => format!("no value for the match key `{}`", mapping.match_key()),
            Err(skip) => skip.to_string(),
        };
        plan.skipped.push(Skipped {
            label: user.label.clone(),
            reason,
        });
    }
    // Keys more than one Entra user maps to, with those users.
    let mut duplicates: FastMap<String, String> = FastMap::default();
    for user in &sources {
        if let Ok(Mapped { key: Some(key), .. }) = &user.mapped {
            let key = compared_key(key, fold_key);
            if users_of_key.get(key.as_ref()).is_some_and(|&n| n > 1) {
                let users = duplicates.entry(key.into_owned()).or_default();
                if !users.is_empty() {
                    users.push_str(", ");
                }
                users.push_str(&user.label);
            }
        }
    }
    drop(users_of_key);

    let mut claimed: FastSet<&str> = FastSet::default();
    for SourceUser {
        entra_id,
        label,
        mapped,
    } in sources
    {
        let Ok(record) = mapped else { continue };
        let Some(key) = &record.key else { continue };
        let key = compared_key(key, fold_key);
        let source = Who { entra_id, label };
        if let Some(users) = duplicates.get(key.as_ref()) {
            plan.skipped.push(Skipped {
                label: source.label,
                reason: format!(
                    "{} Entra users map to {} `{key}` ({users}); none is written until one changes",
                    users.matches(", ").count() + 1,
                    mapping.match_key()
                ),
            });
            continue;
        }
        let known = owned.get(&source.entra_id);
        // Matched through the state first (renames), then by key.
        let through_state = known
            .and_then(|o| o.target_id.as_deref())
            .and_then(|id| by_id.get(id).copied());
        if options.partial_view
            && through_state.is_none()
            && let Some(o) = known
            && o.target_id.is_some()
            && o.hash.as_deref() == Some(record.hash.as_str())
        {
            plan.unchanged += 1;
            continue;
        }
        if let Some(o) = known
            && o.target_id.is_some()
            && through_state.is_none()
        {
            // The target user it owned is gone (deleted in the target).
            plan.forget.push(o.entra_id.clone());
        }
        let found = match through_state {
            Some(user) => Some(user),
            None => match by_key.get(key.as_ref()).map(Matches::as_slice) {
                Some([user]) => Some(*user),
                Some(several @ [_, _, ..]) => {
                    plan.skipped.push(Skipped {
                        label: source.label,
                        reason: format!(
                            "{} target users have {} `{key}`; match them up by hand",
                            several.len(),
                            mapping.match_key()
                        ),
                    });
                    continue;
                }
                _ => None,
            },
        };
        let enabled = record.enabled;
        let Some(user) = found else {
            if options.mode == Mode::UpdateOnly {
                plan.skipped.push(Skipped {
                    label: source.label,
                    reason: "not in the target, and the run is update_only".into(),
                });
            } else if !enabled && !options.create_disabled {
                plan.skipped.push(Skipped {
                    label: source.label,
                    reason: "disabled in Entra; not created (create_disabled = false)".into(),
                });
            } else if let Some(values) = record.values {
                plan.creates.push(Create {
                    pending: known.is_some_and(|o| o.target_id.is_none()),
                    enabled,
                    hash: record.hash,
                    entra_id: source.entra_id,
                    key: key.into_owned(),
                    label: source.label,
                    values,
                });
            } else {
                plan.skipped.push(dropped(source.label));
            }
            continue;
        };
        if !claimed.insert(user.id.as_str()) {
            plan.skipped.push(Skipped {
                label: source.label,
                reason: format!(
                    "target user {} is already matched to another Entra user",
                    user.id
                ),
            });
            continue;
        }
        let hash = record.hash.clone();
        let remembered = known.is_some_and(|o| {
            o.hash.as_deref() == Some(hash.as_str()) && o.target_id.as_deref() == Some(&user.id)
        });
        // Only the record of a user remembered as it is can have been dropped.
        let full = match (remembered, record.record()) {
            (true, _) => None,
            (false, Some(full)) => Some(full),
            (false, None) => {
                plan.skipped.push(dropped(source.label));
                continue;
            }
        };
        let mut changes = full
            .as_ref()
            .map(|full| differences(mapping, full, user, &options.folds_case))
            .unwrap_or_default();
        let mut kind = UpdateKind::Update;
        if let Some((index, a)) = &active
            && let Some(at) = changes.iter().position(|c| c.field == *index)
        {
            let was_active = changes[at].old.as_ref() != Some(&a.inactive);
            kind = match (was_active, enabled) {
                (true, false) => UpdateKind::Deactivate,
                (false, true) => UpdateKind::Reactivate,
                _ => UpdateKind::Update,
            };
            if kind == UpdateKind::Deactivate && !options.deactivate {
                changes.remove(at);
                kind = UpdateKind::Update;
                plan.kept_by_config += 1;
            }
        }
        if changes.is_empty() {
            plan.unchanged += 1;
            // The state already says so (the common case): nothing to remember.
            let same = remembered && known.is_some_and(|o| o.key == key && o.active == enabled);
            if !same {
                plan.remember.push(Owned {
                    entra_id: source.entra_id,
                    key: key.into_owned(),
                    target_id: Some(user.id.clone()),
                    hash: Some(hash),
                    active: enabled,
                });
            }
        } else if options.mode == Mode::CreateOnly {
            plan.skipped.push(Skipped {
                label: source.label,
                reason: "changed in Entra, but the run is create_only".into(),
            });
        } else if let Some(record) = full {
            plan.updates.push(Update {
                entra_id: source.entra_id,
                key: key.into_owned(),
                label: source.label,
                user: user.clone(),
                changes,
                record,
                kind,
            });
        }
    }

    // Owned users whose Entra user is gone.
    let mut gone: Vec<&Owned> = owned
        .values()
        .filter(|o| !present.contains(o.entra_id.as_str()) && !duplicates.contains_key(&o.key))
        .collect();
    gone.sort_by(|a, b| a.key.cmp(&b.key));
    for o in gone {
        let Some(user) = o.target_id.as_deref().and_then(|id| by_id.get(id).copied()) else {
            plan.forget.push(o.entra_id.clone());
            continue;
        };
        if !claimed.insert(user.id.as_str()) {
            continue;
        }
        let Some((index, a)) = &active else {
            continue;
        };
        let now = user.active.as_ref();
        if now == Some(&a.inactive) {
            continue;
        }
        if !options.deactivate || options.mode == Mode::CreateOnly {
            plan.kept_by_config += 1;
            continue;
        }
        let mut record = user.record();
        record.set(*index, Some(a.inactive.clone()));
        plan.updates.push(Update {
            entra_id: o.entra_id.clone(),
            key: o.key.clone(),
            label: label_of(&o.key, user),
            user: user.clone(),
            changes: vec![FieldChange {
                field: *index,
                target: a.field.clone(),
                old: now.cloned(),
                new: Some(a.inactive.clone()),
            }],
            record,
            kind: UpdateKind::Deactivate,
        });
    }
    if active.is_none() && options.deactivate {
        plan.notes.push(
            "the mapping names no active field, so no user can be deactivated or reactivated"
                .into(),
        );
    }
    let owned_targets: FastSet<&str> = owned
        .values()
        .filter_map(|o| o.target_id.as_deref())
        .collect();
    // A partial view holds only users looked up for userload's own users.
    plan.not_owned = target
        .iter()
        .filter(|u| !owned_targets.contains(u.id.as_str()) && !claimed.contains(u.id.as_str()))
        .filter(|_| !options.partial_view)
        .count();
    plan
}

/// Decides, while Entra is still being read, which users [`plan`] is certain to create, so
/// that their creates need not wait for the end of the read. It only exists where that is
/// certain whatever the rest of the read brings: the target's listing is complete (which
/// also keeps creates from shifting the pages of a listing still being read), the run
/// creates users, and Entra keeps the match key unique ([`Mapping::key_is_unique_in_entra`]),
/// so no later user can share a key. A user the state file does not know, whose key no
/// target user has, is then created, exactly as [`plan`] would.
pub struct EarlyCreates<'a> {
    /// The listed target users.
    target: &'a [Listed],
    /// Their keys, as compared; built for the first user the state does not know (on a
    /// quiet night, none).
    listed: Option<FastSet<Cow<'a, str>>>,
    owned: &'a OwnedUsers,
    fold_key: bool,
    create_disabled: bool,
    /// The keys created so far. A second user with one of them (Entra allows that only
    /// across a change made while the read goes on, such as a principal name given up by one
    /// user and taken by another) is skipped, never created again.
    created: FastSet<String>,
}

/// What [`EarlyCreates`] makes of a user read.
#[derive(Debug)]
pub enum Early {
    /// Create it now.
    Create(Create),
    /// Leave it alone, for this reason.
    Skip(Skipped),
    /// Leave it to the plan.
    Later(SourceUser),
}

impl<'a> EarlyCreates<'a> {
    /// The decider for a run, when the run allows one. `target` is the complete listing.
    pub fn new(
        mapping: &Mapping,
        target: &'a [Listed],
        owned: &'a OwnedUsers,
        options: &PlanOptions,
    ) -> Option<EarlyCreates<'a>> {
        if options.partial_view
            || options.mode == Mode::UpdateOnly
            || !mapping.key_is_unique_in_entra()
        {
            return None;
        }
        let key_index = mapping.field_index(mapping.match_key())?;
        let fold_key = options.folds_case.get(key_index).copied().unwrap_or(false);
        Some(EarlyCreates {
            target,
            listed: None,
            owned,
            fold_key,
            create_disabled: options.create_disabled,
            created: FastSet::default(),
        })
    }

    /// What becomes of a user just read.
    pub fn decide(&mut self, user: SourceUser) -> Early {
        let key = match &user.mapped {
            Ok(Mapped {
                key: Some(key),
                enabled,
                values: Some(_),
                ..
            }) if (*enabled || self.create_disabled)
                && !self.owned.contains_key(&user.entra_id) =>
            {
                compared_key(key, self.fold_key)
            }
            _ => return Early::Later(user),
        };
        let (target, fold_key) = (self.target, self.fold_key);
        let listed = self.listed.get_or_insert_with(|| {
            target
                .iter()
                .filter_map(|u| u.key.as_ref())
                .map(|key| compared_key(key, fold_key))
                .collect()
        });
        if listed.contains(key.as_ref()) {
            return Early::Later(user);
        }
        let key = key.into_owned();
        if !self.created.insert(key.clone()) {
            return Early::Skip(Skipped {
                label: user.label,
                reason: format!(
                    "shares the key `{key}` with a user created earlier in this run (Entra \
                     changed while it was read); left alone until the next run"
                ),
            });
        }
        let SourceUser {
            entra_id,
            label,
            mapped,
        } = user;
        match mapped {
            Ok(Mapped {
                enabled,
                hash,
                values: Some(values),
                ..
            }) => Early::Create(Create {
                entra_id,
                key,
                label,
                values,
                pending: false,
                enabled,
                hash,
            }),
            mapped => Early::Later(SourceUser {
                entra_id,
                label,
                mapped,
            }),
        }
    }
}

/// A user whose record is needed but was dropped during the read ([`Mapped::drop_record`]
/// only drops records the planner does not read, so this is a fault, reported rather than
/// guessed at).
fn dropped(label: String) -> Skipped {
    Skipped {
        label,
        reason: "its record was not kept while reading (a fault in userload); the next run \
                 writes it"
            .into(),
    }
}

/// An Entra user whose record the planner holds apart.
struct Who {
    entra_id: String,
    label: String,
}

/// The key, as the admin knows the user.
fn label_of(key: &str, user: &Listed) -> String {
    if key.is_empty() {
        user.id.clone()
    } else {
        key.to_owned()
    }
}

/// The `on = "always"` fields whose record value differs from the target's.
fn differences(
    mapping: &Mapping,
    record: &Record,
    user: &Listed,
    folds_case: &[bool],
) -> Vec<FieldChange> {
    let listed = user.record();
    mapping
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| f.on() == On::Always)
        .filter_map(|(i, field)| {
            let new = record.value(i);
            let old = listed.value(i).filter(|v| !v.is_null());
            let same = match (new, old) {
                (Some(Json::String(a)), Some(Json::String(b)))
                    if folds_case.get(i).copied().unwrap_or(false) =>
                {
                    a.to_lowercase() == b.to_lowercase()
                }
                (Some(a), Some(b)) => same_value(a, b),
                (None, None) => true,
                _ => false,
            };
            (!same).then(|| FieldChange {
                field: i,
                target: field.target().to_owned(),
                old: old.cloned(),
                new: new.cloned(),
            })
        })
        .collect()
}

/// Whether a target's value is the one a record holds. Targets that store numbers as text
/// (or the reverse) are not asked to change them.
fn same_value(record: &Json, target: &Json) -> bool {
    match (record, target) {
        (Json::Number(n), Json::String(s)) | (Json::String(s), Json::Number(n)) => {
            s.trim() == n.to_string()
        }
        (Json::Bool(b), Json::String(s)) | (Json::String(s), Json::Bool(b)) => {
            s.eq_ignore_ascii_case(if *b { "true" } else { "false" })
        }
        _ => record == target,
    }
}
