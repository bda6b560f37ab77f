//! Writing references to users and entities created in the same run: the entities are
//! created first (`apply`), then the creates go out in rounds, a user only once every user
//! they name (their manager) has been created, and each reference is filled in with the
//! target id the create of that user or entity returned. What no round can order — a cycle
//! of managers — is created without the reference and set by a short second pass once
//! everyone is created; a reference to a user or entity whose create failed, or that was
//! never created, is left empty and reported as unresolved.
//!
//! Without references (the mapping has no `refers` field, or no create names another)
//! there is one round: the whole plan, as before.

use std::collections::{HashMap, HashSet};

use foldhash::HashMap as FastMap;

use super::apply::Action;
use super::plan::{
    Create, Deferred, Holdings, Listed, NO_USER, Named, Unresolved, Update, UpdateKind, marked,
    same_value,
};
use crate::mapping::Mapping;
use crate::state::Owned;
use crate::targets::{FieldChange, TargetUser};

/// What the run has created so far that references may name.
pub(super) struct Known<'a> {
    /// Users, by Entra id: their target ids.
    users: &'a FastMap<String, String>,
    /// Entities, by kind and name as compared: their target ids, or why their create
    /// failed.
    entities: &'a HashMap<(String, String), Result<String, String>>,
}

impl<'a> Known<'a> {
    /// What the run created: `users` by Entra id, `entities` by kind and name as compared.
    pub(super) fn new(
        users: &'a FastMap<String, String>,
        entities: &'a HashMap<(String, String), Result<String, String>>,
    ) -> Known<'a> {
        Known { users, entities }
    }

    /// The target id of what `named` names, once created.
    fn id(&self, named: &Named) -> Option<String> {
        match named {
            Named::User(id) => self.users.get(id).cloned(),
            Named::Entity(e) => self
                .entities
                .get(&(e.kind.clone(), e.key.clone()))
                .and_then(|made| made.as_ref().ok())
                .cloned(),
        }
    }

    /// A reference to what `named` names left empty, named for `label`'s `field`.
    fn unresolved(&self, label: &str, field: &str, named: &Named) -> Unresolved {
        let (names, reason) = match named {
            Named::User(id) => (id.clone(), NO_USER.to_owned()),
            Named::Entity(e) => {
                let why = match self.entities.get(&(e.kind.clone(), e.key.clone())) {
                    Some(Err(why)) => why.clone(),
                    _ => "it was not created".to_owned(),
                };
                (
                    e.name.clone(),
                    format!("creating the {} failed: {why}", e.kind),
                )
            }
        };
        Unresolved {
            label: label.to_owned(),
            field: field.to_owned(),
            names,
            reason,
        }
    }
}

/// Whether `d` waits for a user among `unsent`.
fn waits(d: &Deferred, unsent: &HashSet<String>) -> bool {
    d.user().is_some_and(|id| unsent.contains(id))
}

/// The writes of a plan not yet sent, to be handed out round by round.
pub(super) struct Rounds {
    /// Creates waiting for a user they name to be created.
    waiting: Vec<Create>,
    /// Updates that set a reference to a user created in this run: sent last.
    updates: Vec<Update>,
    /// Entra ids of the creates not sent yet.
    unsent: HashSet<String>,
    /// Creates sent without a reference that a cycle kept from being known: the user, the
    /// field, and the Entra id of the user it names.
    second_pass: Vec<(Create, Vec<Deferred>)>,
}

impl Rounds {
    /// Splits the plan's writes: the first round (every write that waits for nobody, its
    /// references to users and entities created earlier filled from `known`) and the rest.
    pub(super) fn new(
        creates: Vec<Create>,
        updates: Vec<Update>,
        known: &Known<'_>,
        unresolved: &mut Vec<Unresolved>,
    ) -> (Vec<Action>, Rounds) {
        let unsent: HashSet<String> = creates.iter().map(|c| c.entra_id.clone()).collect();
        // Taken out of the creates in place: on a first load nearly every create waits, and
        // a second list of them would double the run's largest holding.
        let mut waiting = creates;
        let ready: Vec<Create> = waiting
            .extract_if(.., |c| !c.deferred.iter().any(|d| waits(d, &unsent)))
            .collect();
        let (deferred, others): (Vec<Update>, Vec<Update>) =
            updates.into_iter().partition(|u| !u.deferred.is_empty());
        let mut rounds = Rounds {
            waiting,
            updates: deferred,
            unsent,
            second_pass: Vec::new(),
        };
        let mut first: Vec<Action> = Vec::with_capacity(ready.len() + others.len());
        for mut c in ready {
            rounds.unsent.remove(&c.entra_id);
            let deferred = std::mem::take(&mut c.deferred);
            fill_create(&mut c, &deferred, known, unresolved);
            first.push(Action::Create(c));
        }
        first.extend(others.into_iter().map(|u| Action::Update(Box::new(u))));
        (first, rounds)
    }

    /// The next round of creates, with their references filled from `known` (what the run
    /// created so far); `None` once every create is sent. When the creates left all wait on one
    /// another, one user on a cycle is sent alone, without the references the cycle keeps
    /// from being known (the second pass sets them); that frees the others.
    pub(super) fn next_creates(
        &mut self,
        known: &Known<'_>,
        unresolved: &mut Vec<Unresolved>,
    ) -> Option<Vec<Action>> {
        if self.waiting.is_empty() {
            return None;
        }
        let unsent = &self.unsent;
        let mut ready: Vec<Create> = self
            .waiting
            .extract_if(.., |c| !c.deferred.iter().any(|d| waits(d, unsent)))
            .collect();
        if ready.is_empty() {
            let at = on_a_cycle(&self.waiting);
            ready.push(self.waiting.swap_remove(at));
        }
        let mut round = Vec::with_capacity(ready.len());
        for mut c in ready {
            let (cyclic, rest): (Vec<Deferred>, Vec<Deferred>) = std::mem::take(&mut c.deferred)
                .into_iter()
                .partition(|d| waits(d, &self.unsent));
            self.unsent.remove(&c.entra_id);
            fill_create(&mut c, &rest, known, unresolved);
            if !cyclic.is_empty() {
                // Remembered as incomplete unless the second pass completes it.
                self.second_pass.push((c.clone(), cyclic));
                c.hash = marked(&c.hash);
            }
            round.push(Action::Create(c));
        }
        Some(round)
    }

    /// The last round: the updates that set a reference to a user created in this run, and
    /// the second pass over the creates a cycle kept from being complete. With it, how many
    /// second-pass writes it holds, and the users whose update came to nothing (the user
    /// named was not created after all), for the state to remember as they are.
    pub(super) fn last(
        self,
        mapping: &Mapping,
        known: &Known<'_>,
        unresolved: &mut Vec<Unresolved>,
    ) -> (Vec<Action>, usize, Vec<Owned>) {
        let mut round = Vec::new();
        let mut remember = Vec::new();
        for mut u in self.updates {
            let deferred = std::mem::take(&mut u.deferred);
            for d in &deferred {
                let value = known.id(&d.named).map(serde_json::Value::String);
                if value.is_none() {
                    let field = u.record.field_name(d.field).to_owned();
                    unresolved.push(known.unresolved(&u.label, &field, &d.named));
                    u.hash = u.hash.as_deref().map(marked);
                }
                set_change(&mut u, d.field, value);
            }
            if u.changes.is_empty() {
                remember.push(Owned {
                    entra_id: u.entra_id,
                    key: u.key,
                    target_id: Some(u.user.id),
                    hash: u.hash,
                    active: u.kind != UpdateKind::Deactivate,
                });
            } else {
                round.push(Action::Update(Box::new(u)));
            }
        }
        let mut second = 0;
        for (c, cyclic) in self.second_pass {
            let Some(id) = known.users.get(&c.entra_id) else {
                // Its create failed: that is reported already.
                continue;
            };
            if let Some(update) = second_pass(mapping, c, id, &cyclic, known, unresolved) {
                round.push(Action::Update(Box::new(update)));
                second += 1;
            }
        }
        (round, second, remember)
    }
}

/// The place among `waiting` (creates that all wait for one another) of one on a cycle:
/// following each create to the first create it waits for must come back to a create seen.
fn on_a_cycle(waiting: &[Create]) -> usize {
    let at: HashMap<&str, usize> = waiting
        .iter()
        .enumerate()
        .map(|(i, c)| (c.entra_id.as_str(), i))
        .collect();
    let mut seen = HashSet::new();
    let mut i = 0;
    while seen.insert(i) {
        let next = waiting[i]
            .deferred
            .iter()
            .find_map(|d| at.get(d.user()?).copied());
        match next {
            Some(next) => i = next,
            None => break,
        }
    }
    i
}

/// Fills a create's references from the users and entities created so far; one not
/// created (its create failed, or it was never made) leaves the field empty, reported.
fn fill_create(
    c: &mut Create,
    deferred: &[Deferred],
    known: &Known<'_>,
    unresolved: &mut Vec<Unresolved>,
) {
    if deferred.is_empty() {
        return;
    }
    let mut record = c.record();
    for d in deferred {
        match known.id(&d.named) {
            Some(id) => record.set(d.field, Some(serde_json::Value::String(id))),
            None => {
                let field = record.field_name(d.field).to_owned();
                unresolved.push(known.unresolved(&c.label, &field, &d.named));
                c.hash = marked(&c.hash);
            }
        }
    }
    c.set_record(&record);
}

/// The update that sets, on a user just created as `id`, the references a cycle kept from
/// its create.
fn second_pass(
    mapping: &Mapping,
    c: Create,
    id: &str,
    cyclic: &[Deferred],
    known: &Known<'_>,
    unresolved: &mut Vec<Unresolved>,
) -> Option<Update> {
    let written = c.record();
    let user = Listed::of(
        mapping,
        TargetUser {
            id: id.to_owned(),
            data: written.to_json(),
            etag: None,
        },
    );
    let mut update = Update {
        entra_id: c.entra_id,
        key: c.key,
        label: c.label,
        user,
        changes: Vec::new(),
        record: written,
        kind: UpdateKind::Update,
        hash: Some(c.hash),
        deferred: Vec::new(),
        holdings: Holdings::NotAsked,
    };
    for d in cyclic {
        match known.id(&d.named) {
            Some(target_id) => set_change(
                &mut update,
                d.field,
                Some(serde_json::Value::String(target_id)),
            ),
            None => {
                let field = update.record.field_name(d.field).to_owned();
                unresolved.push(known.unresolved(&update.label, &field, &d.named));
                update.hash = update.hash.as_deref().map(marked);
            }
        }
    }
    (!update.changes.is_empty()).then_some(update)
}

/// Sets field `field` of an update's record to `value`, as a change when it differs from
/// the target user's value.
fn set_change(u: &mut Update, field: usize, value: Option<serde_json::Value>) {
    let old = u
        .user
        .record()
        .value(field)
        .filter(|v| !v.is_null())
        .cloned();
    u.record.set(field, value.clone());
    let same = match (&old, &value) {
        (Some(a), Some(b)) => same_value(b, a),
        (None, None) => true,
        _ => false,
    };
    if same {
        return;
    }
    let target = u.record.field_name(field).to_owned();
    u.changes.push(FieldChange {
        field,
        target,
        old,
        new: value,
    });
}
