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
//! The state file's hash of a record is taken over the Entra ids, which stay the same while
//! the manager does; a user written with an unresolved reference is remembered with a
//! marked hash ([`marked`]), so the next run compares it again and fills the field once the
//! manager can be found.

use foldhash::{HashMap as FastMap, HashSet as FastSet};
use serde_json::Value as Json;

use super::matching::{Found, TargetIndex, compared_key};
use super::{Create, Mapped, PlanOptions, SourceUser};
use crate::config::Mode;
use crate::mapping::{Mapping, Record};
use crate::state::OwnedUsers;

/// A reference that waits for a create of this run: the field, and the Entra id of the user
/// it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferred {
    /// The field's place in the mapping.
    pub field: usize,
    /// The Entra object id of the user referred to.
    pub entra_id: String,
}

/// A reference that names no user the target has or this run creates.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unresolved {
    /// The user whose field it is, as the admin knows them.
    #[serde(rename = "user")]
    pub label: String,
    /// The target field.
    pub field: String,
    /// The Entra object id of the user referred to.
    pub entra_id: String,
}

/// How the referenced users of a plan are found: only the users some record refers to are
/// looked at, so a plan without references costs nothing.
#[derive(Debug, Default)]
pub(super) struct Links {
    /// The fields that refer to a user.
    fields: Vec<usize>,
    /// Referenced Entra users with a target user: the target's id.
    linked: FastMap<String, String>,
    /// Referenced Entra users created in this run (or while it read Entra).
    creating: FastSet<String>,
}

impl Links {
    /// The links of every user a record of `sources` refers to: through the state file
    /// first, then by match key among `index`'s target users; a user without a target user
    /// that the plan will create (as [`Planner`](super::decide::Planner) decides: the run
    /// creates, and the user is enabled or `create_disabled` is on) is to be created.
    pub(super) fn new(
        mapping: &Mapping,
        sources: &[SourceUser],
        early: &[Create],
        owned: &OwnedUsers,
        index: &TargetIndex<'_>,
        duplicates: &FastMap<String, String>,
        options: &PlanOptions,
    ) -> Links {
        let fields: Vec<usize> = mapping.user_refs().collect();
        if fields.is_empty() {
            return Links::default();
        }
        let mut referenced: FastSet<String> = FastSet::default();
        for source in sources {
            if let Ok(Mapped {
                values: Some(packed),
                ..
            }) = &source.mapped
            {
                let record = packed.unpack();
                for &i in &fields {
                    if let Some(Json::String(id)) = record.value(i) {
                        referenced.insert(id.clone());
                    }
                }
            }
        }
        let mut links = Links {
            fields,
            ..Links::default()
        };
        let through_state = |entra_id: &str| {
            owned
                .get(entra_id)
                .and_then(|o| o.target_id.as_deref())
                .filter(|id| index.by_id.contains_key(id))
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
            let (key, enabled) = match &source.mapped {
                Ok(Mapped {
                    key: Some(key),
                    enabled,
                    ..
                }) => (compared_key(key, index.fold_key), *enabled),
                _ => continue,
            };
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
        for c in early {
            if referenced.contains(&c.entra_id) {
                seen.insert(c.entra_id.as_str());
                links.creating.insert(c.entra_id.clone());
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
        self.fields.is_empty()
    }

    /// Resolves `record`'s references in place: a linked user's target id is written, a
    /// user created in this run is deferred (the field left empty until then), any other
    /// user is unresolved (the field left empty). Returns the deferred references and the
    /// unresolved ones, named for `label`.
    pub(super) fn resolve(
        &self,
        mapping: &Mapping,
        record: &mut Record,
        label: &str,
    ) -> (Vec<Deferred>, Vec<Unresolved>) {
        let mut deferred = Vec::new();
        let mut unresolved = Vec::new();
        for &i in &self.fields {
            let Some(Json::String(entra_id)) = record.value(i).cloned() else {
                continue;
            };
            let value = match self.linked.get(&entra_id) {
                Some(target_id) => Some(Json::String(target_id.clone())),
                None if self.creating.contains(&entra_id) => {
                    deferred.push(Deferred { field: i, entra_id });
                    None
                }
                None => {
                    let field = mapping.fields().get(i).map(|f| f.target().to_owned());
                    unresolved.push(Unresolved {
                        label: label.to_owned(),
                        field: field.unwrap_or_default(),
                        entra_id,
                    });
                    None
                }
            };
            record.set(i, value);
        }
        (deferred, unresolved)
    }
}

/// The hash remembered for a record written with a reference left empty: never equal to a
/// record's own hash, so the next run compares the user again.
pub fn marked(hash: &str) -> String {
    format!("{hash}~")
}
