//! References between users. A field that refers to a user (`refers = "user"`, the manager)
//! holds that user's Entra object id in the mapped record; the target must be given the
//! user's id *in the target*. The plan resolves each reference before it compares or
//! creates:
//!
//! - a user linked to a target user (through the state file, or by match key) is written as
//!   that target user's id;
//! - a user of this run who has no target user yet is created in this run: the reference
//!   is *deferred*, and filled in at write time once that create is done (creates are
//!   ordered so that a manager comes before the people who report to them);
//! - any other user (out of scope, or skipped) leaves the field empty: an *unresolved*
//!   reference, counted and reported, never a failure of the user's other fields.
//!
//! References to the target's entities (departments, locations, companies) are resolved the
//! same way against the entities listed for the run ([`super::entities`]): a name the
//! target lacks is, with `policy = "create"`, deferred to the entity's create.
//!
//! The state file's hash of a record is taken over the Entra ids and names, which stay the
//! same while the manager and the department do; a user written with an unresolved
//! reference is remembered with a marked hash ([`marked`]), so the next run compares it
//! again and fills the field once the manager or the department can be found.

use foldhash::{HashMap as FastMap, HashSet as FastSet};
use serde_json::Value as Json;

use super::entities::{Catalogue, EntityName, Lookup, name_key};
use super::matching::{Found, TargetIndex, compared_key};
use super::{Mapped, PlanOptions, Prior, SourceUser};
use crate::config::Mode;
use crate::mapping::{Mapping, Policy, Record, Skip, json_text};
use crate::state::OwnedUsers;

/// What a deferred reference waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named {
    /// The create of this Entra user (by object id).
    User(String),
    /// The create of this entity.
    Entity(EntityName),
}

/// A reference that waits for a create of this run: the field, and what it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferred {
    /// The field's place in the mapping.
    pub field: usize,
    /// The user or entity it names.
    pub named: Named,
}

impl Deferred {
    /// The Entra object id of the user it names, if it names a user.
    pub fn user(&self) -> Option<&str> {
        match &self.named {
            Named::User(id) => Some(id),
            Named::Entity(_) => None,
        }
    }
}

/// A reference left empty (or, for a name the target has twice, left as it is).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unresolved {
    /// The user whose field it is, as the admin knows them.
    #[serde(rename = "user")]
    pub label: String,
    /// The target field.
    pub field: String,
    /// What the field names: an Entra object id, or an entity's name.
    pub names: String,
    /// Why it is not written.
    pub reason: String,
}

/// A reference to a user that is neither in the target nor created by this run.
pub const NO_USER: &str = "the user named is not in the target and not created by this run";

/// How the referenced users of a plan are found: only the users some record refers to are
/// looked at, so a plan without references costs nothing.
#[derive(Debug)]
pub(super) struct Links<'a> {
    /// The fields that refer to a user.
    fields: Vec<usize>,
    /// Referenced Entra users with a target user: the target's id.
    linked: FastMap<String, String>,
    /// Referenced Entra users created in this run (or while it read Entra).
    creating: FastSet<String>,
    /// The fields that name an entity: their places, kinds and policies.
    entity_fields: Vec<(usize, String, Policy)>,
    /// The target's entities of those kinds.
    catalogue: &'a Catalogue,
}

/// What a field of a record holds once its references are resolved ([`Links::settled`]).
#[derive(Debug, PartialEq)]
pub(super) enum Settled<'s> {
    /// The field names no user and no entity: it is written as the record holds it.
    NotReference,
    /// It is written as this id (or left empty).
    To(Option<&'s str>),
    /// Only resolving the record tells.
    Unsure,
}

/// The match key and the active flag of a user read in this run whom [`Links::new`] may
/// link when a record names them: one mapped with a first key. A user read without one is
/// never linked, whatever the state says ([`super::quiet`] relies on this).
pub(super) fn linkable(mapped: &Result<Mapped, Skip>) -> Option<(&Json, bool)> {
    match mapped {
        Ok(Mapped {
            key: Some(key),
            enabled,
            ..
        }) => Some((key, *enabled)),
        _ => None,
    }
}

/// What a field names, as far as resolving its value goes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Names<'k> {
    /// Nothing: its value is written as it is.
    Nothing,
    /// A user, by Entra object id.
    User,
    /// An entity of this kind, by name.
    Entity(&'k str),
}

/// What a field that `names` something holds once resolved, from its value as the record
/// holds it (`text`, its JSON): for a user, the target id `link` gives for its Entra id;
/// for an entity, the id of the one entity of `catalogue` of that name. [`Settled::Unsure`]
/// where neither tells for certain.
pub(super) fn settle<'c>(
    text: &str,
    names: Names<'_>,
    catalogue: &'c Catalogue,
    link: impl FnOnce(&str) -> Option<&'c str>,
) -> Settled<'c> {
    match names {
        Names::Nothing => Settled::NotReference,
        _ if text == "null" => Settled::To(None),
        Names::User => json_text(text)
            .and_then(|entra_id| link(&entra_id))
            .map_or(Settled::Unsure, |id| Settled::To(Some(id))),
        Names::Entity(kind) => {
            let value = serde_json::from_str::<Json>(text).unwrap_or(Json::Null);
            match entity_name(&value).map(|name| catalogue.find(kind, &name_key(&name))) {
                Some(Lookup::One(id)) => Settled::To(Some(id)),
                _ => Settled::Unsure,
            }
        }
    }
}

impl<'a> Links<'a> {
    /// The links of every user a record of `sources` refers to: through the state file
    /// first, then by match key among `index`'s target users; a user without a target user
    /// that the plan will create (as [`Planner`](super::decide::Planner) decides: the run
    /// creates, and the user is enabled or `create_disabled` is on) is to be created.
    pub(super) fn new(
        mapping: &Mapping,
        sources: &[SourceUser],
        prior: &Prior<'a>,
        owned: &OwnedUsers,
        index: &TargetIndex<'_>,
        (duplicates, options): (&FastMap<String, String>, &PlanOptions),
    ) -> Links<'a> {
        let (catalogue, early) = (prior.entities, prior.early);
        let fields: Vec<usize> = mapping.user_refs().collect();
        let entity_fields = mapping
            .entity_refs()
            .map(|(i, e)| (i, e.kind.clone(), e.policy))
            .collect();
        let mut links = Links {
            fields: Vec::new(),
            linked: FastMap::default(),
            creating: FastSet::default(),
            entity_fields,
            catalogue,
        };
        if fields.is_empty() {
            return links;
        }
        let referenced = referenced(sources, &fields);
        links.fields = fields;
        // A target that is not listed holds only the users looked up: there the state's word
        // is taken, as the planner takes it for unchanged users.
        let through_state = |entra_id: &str| {
            owned
                .get(entra_id)
                .and_then(|o| o.target_id.as_deref())
                .filter(|id| options.partial_view || index.by_id().contains_key(id))
        };
        // Referenced users of this run: linked through the state, else by a match key (as
        // the index found them), else created.
        let mut seen: FastSet<&str> = FastSet::default();
        for source in sources {
            let id = source.entra_id.as_str();
            if !referenced.contains(id) {
                continue;
            }
            seen.insert(id);
            let Some((key, enabled)) = linkable(&source.mapped) else {
                continue;
            };
            let key = compared_key(key, index.fold_key);
            let created = options.mode != Mode::UpdateOnly
                && (enabled || options.create_disabled)
                && !duplicates.contains_key(key.as_ref());
            let by_key = match index.found.get(id) {
                Some(Found::One(user)) => Some(user.id.as_str()),
                _ => None,
            };
            match through_state(id).or(by_key) {
                Some(target_id) => {
                    links.linked.insert(id.to_owned(), target_id.to_owned());
                }
                None if created && !index.found.contains_key(id) => {
                    links.creating.insert(id.to_owned());
                }
                None => {}
            }
        }
        // Referenced users created while reading: their target ids come with their creates.
        for &id in early {
            if referenced.contains(id) {
                seen.insert(id);
                links.creating.insert(id.to_owned());
            }
        }
        // Referenced users not read in this run: only the state knows them.
        for id in referenced.iter().filter(|id| !seen.contains(id.as_str())) {
            if let Some(target_id) = through_state(id) {
                links.linked.insert(id.clone(), target_id.to_owned());
            }
        }
        links
    }

    /// Whether the mapping has no reference field.
    pub(super) fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.entity_fields.is_empty()
    }

    /// What field `i` holds once resolved, when its value as the record holds it (`text`,
    /// its JSON) is a reference this run resolves for certain: a linked user's target id,
    /// or the one listed entity of its name. [`Settled::Unsure`] for anything
    /// [`Links::resolve`] would defer, leave unresolved or keep.
    pub(super) fn settled(&self, i: usize, text: &str) -> Settled<'_> {
        let names = match self.entity_fields.iter().find(|(f, _, _)| *f == i) {
            _ if self.fields.contains(&i) => Names::User,
            Some((_, kind, _)) => Names::Entity(kind),
            None => Names::Nothing,
        };
        settle(text, names, self.catalogue, |entra_id| {
            self.linked.get(entra_id).map(String::as_str)
        })
    }

    /// Resolves `record`'s references in place: a linked user's (or a listed entity's)
    /// target id is written; a user or entity created in this run is deferred (the field
    /// left empty until then); anything else is unresolved (the field left empty). Returns
    /// what it found, named for `label`.
    pub(super) fn resolve(&self, record: &mut Record, label: &str) -> Resolved {
        let mut found = Resolved::default();
        let unresolved = |i: usize, names: String, reason: String| Unresolved {
            label: label.to_owned(),
            field: record.field_name(i).to_owned(),
            names,
            reason,
        };
        let mut values = Vec::new();
        for &i in &self.fields {
            let Some(Json::String(entra_id)) = record.value(i).cloned() else {
                continue;
            };
            let value = match self.linked.get(&entra_id) {
                Some(target_id) => Some(Json::String(target_id.clone())),
                None if self.creating.contains(&entra_id) => {
                    let named = Named::User(entra_id);
                    found.deferred.push(Deferred { field: i, named });
                    None
                }
                None => {
                    found
                        .unresolved
                        .push(unresolved(i, entra_id, NO_USER.to_owned()));
                    None
                }
            };
            values.push((i, value));
        }
        for (i, kind, policy) in &self.entity_fields {
            let Some(name) = record.value(*i).and_then(entity_name) else {
                continue;
            };
            let key = name_key(&name);
            let value = match self.catalogue.find(kind, &key) {
                Lookup::One(id) => Some(Json::String(id.to_owned())),
                Lookup::Many(all) => {
                    let ids: Vec<&str> = all.iter().map(|e| e.id.as_str()).collect();
                    let reason = format!(
                        "{} {kind} entities are named {name:?} (ids {}); rename all but one \
                         in the target",
                        all.len(),
                        ids.join(", ")
                    );
                    found.unresolved.push(unresolved(*i, name, reason));
                    found.kept.push(*i);
                    None
                }
                Lookup::Missing if *policy == Policy::Create => {
                    let named = Named::Entity(EntityName {
                        kind: kind.clone(),
                        name,
                        key,
                    });
                    found.deferred.push(Deferred { field: *i, named });
                    None
                }
                Lookup::Missing => {
                    let reason =
                        format!("the target has no {kind} named {name:?} (policy = \"lookup\")");
                    found.unresolved.push(unresolved(*i, name, reason));
                    None
                }
            };
            values.push((*i, value));
        }
        for (i, value) in values {
            record.set(i, value);
        }
        // A create waits with its deferred references until the end of the read: on a first
        // load every user's, so the room a growing list leaves spare would be most of them.
        found.deferred.shrink_to_fit();
        found
    }
}

/// Whether every reference of `record` is resolved without this run's other users: each
/// user it names is owned with a target id (linked through the state file), and each
/// entity it names is the one of its name in `catalogue`. Such a record is planned the same
/// whatever else the run reads.
pub fn resolved_alone(
    mapping: &Mapping,
    record: &Record,
    owned: &OwnedUsers,
    catalogue: &Catalogue,
) -> bool {
    let users = mapping.user_refs().all(|i| match record.value(i) {
        None | Some(Json::Null) => true,
        Some(Json::String(id)) => owned.get(id).is_some_and(|o| o.target_id.is_some()),
        Some(_) => false,
    });
    users
        && mapping
            .entity_refs()
            .all(|(i, e)| match record.value(i).and_then(entity_name) {
                None => true,
                Some(name) => matches!(catalogue.find(&e.kind, &name_key(&name)), Lookup::One(_)),
            })
}

/// The Entra ids the records of `sources` name in the user-reference `fields`.
fn referenced(sources: &[SourceUser], fields: &[usize]) -> FastSet<String> {
    let mut referenced = FastSet::default();
    for source in sources {
        if let Ok(Mapped {
            values: Some(packed),
            ..
        }) = &source.mapped
        {
            // Only the fields that refer to a user are read.
            let Some(values) = packed.elements() else {
                continue;
            };
            for &i in fields {
                let text = values.get(i).copied().unwrap_or("null");
                if let Ok(Json::String(id)) = serde_json::from_str(text) {
                    referenced.insert(id);
                }
            }
        }
    }
    referenced
}

/// What resolving a record's references found.
#[derive(Debug, Default)]
pub(super) struct Resolved {
    /// References to users or entities created in this run.
    pub(super) deferred: Vec<Deferred>,
    /// References left empty (or as they are), and why.
    pub(super) unresolved: Vec<Unresolved>,
    /// Fields to leave as the target has them (an entity name the target has twice).
    pub(super) kept: Vec<usize>,
}

/// The text of an entity reference's value: a name, or a number written as text.
fn entity_name(value: &Json) -> Option<String> {
    match value {
        Json::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The hash remembered for a record written with a reference left empty: never equal to a
/// record's own hash, so the next run compares the user again.
pub fn marked(hash: &str) -> String {
    format!("{hash}~")
}
