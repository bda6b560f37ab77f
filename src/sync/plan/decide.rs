//! The decide step: for each Entra user, with its match (or none), whether it is created,
//! updated, deactivated, reactivated, left unchanged or skipped, and why; then the owned
//! users whose Entra user is gone. Only the fields an update may write that differ from the
//! target's are written; on a reconciliation, a difference on a user whose record did not
//! change is drift ([`super::drift`]).

use std::borrow::Cow;

use foldhash::{HashMap as FastMap, HashSet as FastSet};
use serde_json::Value as Json;

use super::drift::{hold_set_values, take_drift};
use super::matching::{Found, TargetIndex, compared_key};
use super::refs::{Deferred, Links, Settled, marked};
use super::{
    Create, Holdings, Listed, Mapped, Plan, PlanOptions, Prior, Skipped, SourceUser, Update,
    UpdateKind,
};
use crate::config::Mode;
use crate::mapping::{Active, Mapping, Packed, Record, json_text};
use crate::state::{Owned, OwnedUsers};
use crate::targets::FieldChange;

/// Builds a plan user by user.
pub(super) struct Planner<'a> {
    mapping: &'a Mapping,
    owned: &'a OwnedUsers,
    options: &'a PlanOptions,
    index: &'a TargetIndex<'a>,
    /// The keys several Entra users map to, with those users.
    duplicates: &'a FastMap<String, String>,
    /// The users the records refer to.
    links: &'a Links<'a>,
    /// The mapping's active field, and its place among the fields.
    active: Option<(usize, &'a Active)>,
    /// The target users matched so far: each is matched to one Entra user at most.
    claimed: FastSet<&'a str>,
    plan: Plan,
}

/// A mapped Entra user with a match key, as the decide step takes it apart.
struct Candidate<'k, 'a> {
    who: Who,
    /// Its match key, as compared.
    key: Cow<'k, str>,
    /// What the state remembers of it.
    known: Option<&'a Owned>,
    enabled: bool,
    hash: String,
    values: Option<Packed>,
}

impl<'a> Planner<'a> {
    /// A planner that adds to `plan` (which may hold skipped users already).
    pub(super) fn new(
        mapping: &'a Mapping,
        owned: &'a OwnedUsers,
        options: &'a PlanOptions,
        index: &'a TargetIndex<'a>,
        duplicates: &'a FastMap<String, String>,
        links: &'a Links<'a>,
        plan: Plan,
    ) -> Planner<'a> {
        let active = mapping.active_field().and_then(|a| {
            let index = mapping.field_index(&a.field)?;
            Some((index, a))
        });
        Planner {
            mapping,
            owned,
            options,
            index,
            duplicates,
            links,
            active,
            claimed: FastSet::default(),
            plan,
        }
    }

    fn skip(&mut self, label: String, reason: String) {
        self.plan.skipped.push(Skipped { label, reason });
    }

    /// Decides one Entra user: finds its target user, through the state first (renames),
    /// then by key.
    pub(super) fn user(&mut self, source: SourceUser) {
        let SourceUser {
            entra_id,
            label,
            mapped,
            ..
        } = source;
        let Ok(Mapped {
            key: Some(key),
            enabled,
            hash,
            values,
            ..
        }) = mapped
        else {
            return;
        };
        let key = compared_key(&key, self.index.fold_key);
        let who = Who { entra_id, label };
        if let Some(users) = self.duplicates.get(key.as_ref()) {
            let reason = format!(
                "{} Entra users map to {} `{key}` ({users}); none is written until one changes",
                users.matches(", ").count() + 1,
                self.mapping.match_key()
            );
            return self.skip(who.label, reason);
        }
        let known = self.owned.get(&who.entra_id);
        let through_state = known
            .and_then(|o| o.target_id.as_deref())
            .and_then(|id| self.index.by_id().get(id).copied());
        if self.options.partial_view
            && through_state.is_none()
            && let Some(o) = known
            && o.target_id.is_some()
            && o.hash.as_deref() == Some(hash.as_str())
        {
            self.plan.unchanged += 1;
            return;
        }
        if let Some(o) = known
            && o.target_id.is_some()
            && through_state.is_none()
        {
            // The target user it owned is gone (deleted in the target).
            self.plan.forget.push(o.entra_id.clone());
        }
        let found = match through_state {
            Some(user) => Some(user),
            None => match self.index.find(&who.entra_id) {
                Some(Found::One(user)) => Some(*user),
                Some(Found::Skip(reason)) => return self.skip(who.label, reason.clone()),
                None => None,
            },
        };
        let candidate = Candidate {
            who,
            key,
            known,
            enabled,
            hash,
            values,
        };
        match found {
            None => self.unmatched(candidate),
            Some(user) => self.matched(candidate, user),
        }
    }

    /// A user no target user matches: created, unless the run or the config says not to.
    fn unmatched(&mut self, c: Candidate<'_, '_>) {
        if self.options.mode == Mode::UpdateOnly {
            let reason = "not in the target, and the run is update_only".into();
            self.skip(c.who.label, reason);
        } else if !c.enabled && !self.options.create_disabled {
            let reason = "disabled in Entra; not created (create_disabled = false)".into();
            self.skip(c.who.label, reason);
        } else if let Some(mut values) = c.values {
            let (deferred, hash) = match self.links.is_empty() {
                true => (Vec::new(), c.hash),
                false => {
                    let mut record = values.unpack();
                    let (deferred, _, hash) = self.resolve(&mut record, &c.who.label, c.hash);
                    values = record.pack();
                    (deferred, hash)
                }
            };
            self.plan.creates.push(Create {
                pending: c.known.is_some_and(|o| o.target_id.is_none()),
                enabled: c.enabled,
                hash,
                entra_id: c.who.entra_id,
                key: c.key.into_owned(),
                label: c.who.label,
                values,
                deferred,
            });
        } else {
            self.plan.skipped.push(dropped(c.who.label));
        }
    }

    /// `record`'s references resolved in place; the deferred ones, and the hash to remember
    /// (marked when a reference is left unresolved).
    fn resolve(
        &mut self,
        record: &mut Record,
        label: &str,
        hash: String,
    ) -> (Vec<Deferred>, Vec<usize>, String) {
        let found = self.links.resolve(record, label);
        let hash = if found.unresolved.is_empty() {
            hash
        } else {
            marked(&hash)
        };
        self.plan.unresolved.extend(found.unresolved);
        (found.deferred, found.kept, hash)
    }

    /// A user matched to `user`: compared with it, and updated where it differs.
    ///
    /// A target user whose values were left out of the listing is compared only once they
    /// were read ([`Listed::has_values`]); otherwise the user is skipped, never written
    /// against values unknown.
    fn matched(&mut self, mut c: Candidate<'_, '_>, user: &'a Listed) {
        if !self.claimed.insert(user.id.as_str()) {
            let reason = format!(
                "target user {} is already matched to another Entra user",
                user.id
            );
            return self.skip(c.who.label, reason);
        }
        let remembered = c.known.is_some_and(|o| {
            o.hash.as_deref() == Some(c.hash.as_str()) && o.target_id.as_deref() == Some(&user.id)
        });
        // Only the record of a user remembered as it is can have been dropped, and a
        // reconciliation keeps them all.
        let compare = !remembered || self.options.reconcile;
        if compare && !user.has_values() {
            return self.skip(c.who.label, unread(user));
        }
        if compare && c.values.as_ref().is_some_and(|v| self.same_text(v, user)) {
            return self.unchanged(c, user, remembered);
        }
        let mut full = match (compare, c.values.as_ref().map(Packed::unpack)) {
            (false, _) => None,
            (true, Some(full)) => Some(full),
            (true, None) => {
                self.plan.skipped.push(dropped(c.who.label));
                return;
            }
        };
        // The target's record, unpacked once for everything compared below.
        let listed = full.as_ref().map(|_| user.record());
        let (mut deferred, mut kept) = (Vec::new(), Vec::new());
        if let (Some(full), Some(listed)) = (&mut full, &listed)
            && !self.links.is_empty()
        {
            let hash = std::mem::take(&mut c.hash);
            (deferred, kept, c.hash) = self.resolve(full, &c.who.label, hash);
            // A name the target has twice leaves the field as the target has it.
            for &i in &kept {
                full.set(i, listed.value(i).cloned());
            }
        }
        let mut changes = match (&mut full, &listed) {
            (Some(full), Some(listed)) => {
                hold_set_values(self.mapping, full, listed);
                differences(self.mapping, full, listed, &self.options.folds_case)
            }
            _ => Vec::new(),
        };
        // A reference to a user or an entity created in this run is written once it is.
        changes.retain(|change| {
            !deferred.iter().any(|d| d.field == change.field) && !kept.contains(&change.field)
        });
        // The record did not change in Entra, so the target did: drift.
        if remembered
            && !changes.is_empty()
            && let Some(full) = &mut full
        {
            let drift = take_drift(self.mapping, &c.who.label, &mut changes, full);
            self.plan.drift.push(drift);
        }
        let kind = self.kind_of(&mut changes, c.enabled);
        if changes.is_empty() && deferred.is_empty() {
            self.unchanged(c, user, remembered);
        } else if self.options.mode == Mode::CreateOnly {
            let reason = "changed in Entra, but the run is create_only".into();
            self.skip(c.who.label, reason);
        } else if let Some(record) = full {
            self.plan.updates.push(Update {
                entra_id: c.who.entra_id,
                key: c.key.into_owned(),
                label: c.who.label,
                user: user.clone(),
                changes,
                record,
                kind,
                hash: Some(c.hash),
                deferred,
                holdings: Holdings::NotAsked,
            });
        }
    }

    /// [`same_text`], with the references resolved as this plan resolves them.
    fn same_text(&self, values: &Packed, user: &Listed) -> bool {
        same_text(self.mapping, values, &user.values, |i, text| {
            self.links.settled(i, text)
        })
    }

    /// What `changes` make of a user that is `enabled` in Entra: a change of the active
    /// field is a deactivation or a reactivation. A deactivation the config does not allow
    /// is taken out of the changes.
    fn kind_of(&mut self, changes: &mut Vec<FieldChange>, enabled: bool) -> UpdateKind {
        let Some((index, a)) = self.active else {
            return UpdateKind::Update;
        };
        let Some(at) = changes.iter().position(|c| c.field == index) else {
            return UpdateKind::Update;
        };
        let was_active = changes[at].old.as_ref() != Some(&a.inactive);
        let kind = match (was_active, enabled) {
            (true, false) => UpdateKind::Deactivate,
            (false, true) => UpdateKind::Reactivate,
            _ => UpdateKind::Update,
        };
        if kind == UpdateKind::Deactivate && !self.options.deactivate {
            changes.remove(at);
            self.plan.kept_by_config += 1;
            return UpdateKind::Update;
        }
        kind
    }

    /// A matched user that needs no write; remembered unless the state already says so.
    fn unchanged(&mut self, c: Candidate<'_, '_>, user: &Listed, remembered: bool) {
        self.plan.unchanged += 1;
        // The state already says so (the common case): nothing to remember.
        let same = remembered
            && c.known
                .is_some_and(|o| o.key == c.key && o.active == c.enabled);
        if !same {
            self.plan.remember.push(Owned {
                entra_id: c.who.entra_id,
                key: c.key.into_owned(),
                target_id: Some(user.id.clone()),
                hash: Some(c.hash),
                active: c.enabled,
            });
        }
    }

    /// Decides the owned users whose Entra user is gone (not among `present` nor the quiet
    /// users; in a run over some users, one of those in `only`), in key order.
    pub(super) fn gone(&mut self, present: &FastSet<&str>, prior: &Prior<'_>) {
        let (only, quiet) = (prior.only, prior.quiet);
        let mut gone: Vec<&Owned> = self
            .owned
            .values()
            .filter(|o| only.is_none_or(|only| only.contains(&o.entra_id)))
            .filter(|o| {
                let id = o.entra_id.as_str();
                !present.contains(id)
                    && quiet.is_none_or(|q| !q.contains(id))
                    && !self.duplicates.contains_key(&o.key)
            })
            .collect();
        gone.sort_by(|a, b| a.key.cmp(&b.key));
        for o in gone {
            self.leaver(o);
        }
    }

    /// An owned user whose Entra user is gone: deactivated when the config allows it,
    /// forgotten when its target user is gone too.
    fn leaver(&mut self, o: &'a Owned) {
        let Some(user) = o
            .target_id
            .as_deref()
            .and_then(|id| self.index.by_id().get(id).copied())
        else {
            self.plan.forget.push(o.entra_id.clone());
            return;
        };
        if !self.claimed.insert(user.id.as_str()) {
            return;
        }
        let Some((index, a)) = self.active else {
            return;
        };
        let now = user.active.as_ref();
        if now == Some(&a.inactive) {
            return;
        }
        if !self.options.deactivate || self.options.mode == Mode::CreateOnly {
            self.plan.kept_by_config += 1;
            return;
        }
        if !user.has_values() {
            return self.skip(label_of(&o.key, user), unread(user));
        }
        let mut record = user.record();
        record.set(index, Some(a.inactive.clone()));
        self.plan.updates.push(Update {
            entra_id: o.entra_id.clone(),
            key: o.key.clone(),
            label: label_of(&o.key, user),
            user: user.clone(),
            changes: vec![FieldChange {
                field: index,
                target: a.field.clone(),
                old: now.cloned(),
                new: Some(a.inactive.clone()),
            }],
            record,
            kind: UpdateKind::Deactivate,
            hash: None,
            deferred: Vec::new(),
            holdings: Holdings::NotAsked,
        });
    }

    /// The plan, with its notes and the count of target users nobody owns.
    pub(super) fn finish(self, target: &[Listed]) -> Plan {
        let mut plan = self.plan;
        if self.active.is_none() && self.options.deactivate {
            plan.notes.push(
                "the mapping names no active field, so no user can be deactivated or reactivated"
                    .into(),
            );
        }
        let owned_targets: FastSet<&str> = self
            .owned
            .values()
            .filter_map(|o| o.target_id.as_deref())
            .collect();
        // A partial view holds only users looked up for userload's own users.
        plan.not_owned = target
            .iter()
            .filter(|u| {
                !owned_targets.contains(u.id.as_str()) && !self.claimed.contains(u.id.as_str())
            })
            .filter(|_| !self.options.partial_view)
            .count();
        plan
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

/// The fields an update may write whose record value differs from the target's.
fn differences(
    mapping: &Mapping,
    record: &Record,
    listed: &Record,
    folds_case: &[bool],
) -> Vec<FieldChange> {
    mapping
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| f.updatable())
        .filter_map(|(i, field)| {
            let new = record.value(i);
            let old = listed.value(i).filter(|v| !v.is_null());
            let same = match (new, old) {
                (Some(Json::String(a)), Some(Json::String(b)))
                    if folds_case.get(i).copied().unwrap_or(false) =>
                {
                    a.chars()
                        .flat_map(char::to_lowercase)
                        .eq(b.chars().flat_map(char::to_lowercase))
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
pub fn same_value(record: &Json, target: &Json) -> bool {
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

/// Whether every field an update writes is, once resolved (`settle`: what field `i` holds
/// once resolved, from its value's JSON text), the target's value (`theirs`) written the
/// same way: then comparing the records (unpacking both) finds nothing, and is skipped. Any
/// other difference, however small (a case, a number written as text), is left to that
/// comparison.
pub(super) fn same_text<'s>(
    mapping: &Mapping,
    ours: &Packed,
    theirs: &Packed,
    mut settle: impl FnMut(usize, &str) -> Settled<'s>,
) -> bool {
    let (Some(ours), Some(theirs)) = (ours.elements(), theirs.elements()) else {
        return false;
    };
    let fields = mapping.fields();
    if ours.len() != fields.len() || theirs.len() != fields.len() {
        return false;
    }
    fields.iter().enumerate().all(|(i, field)| {
        let (ours, theirs) = (ours[i], theirs[i]);
        if !field.updatable() {
            return true;
        }
        match settle(i, ours) {
            Settled::NotReference => ours == theirs,
            Settled::To(None) => theirs == "null",
            Settled::To(Some(id)) => json_text(theirs).is_some_and(|t| t == id),
            Settled::Unsure => false,
        }
    })
}

/// Why a user is skipped whose target user's values were not read.
fn unread(user: &Listed) -> String {
    format!(
        "the values of target user {} could not be read (no record of the last write, and \
         not found by its key); retried on the next run",
        user.id
    )
}
