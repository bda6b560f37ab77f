//! The early creates: while Entra is still being read, the users the plan is certain to
//! create, so that their creates need not wait for the end of the read.

use std::borrow::Cow;

use foldhash::{HashMap as FastMap, HashSet as FastSet};
use serde_json::Value as Json;

use super::matching::{compared_key, present};
use super::{Create, Listed, Mapped, PlanOptions, Skipped, SourceUser};
use crate::config::Mode;
use crate::mapping::{Mapping, Packed};
use crate::state::OwnedUsers;

/// Decides, while Entra is still being read, which users [`plan`](super::plan) is certain to create, so
/// that their creates need not wait for the end of the read. It only exists where that is
/// certain whatever the rest of the read brings: the target's listing is complete (which
/// also keeps creates from shifting the pages of a listing still being read), the run
/// creates users, and Entra keeps the match key unique ([`Mapping::key_is_unique_in_entra`]),
/// so no later user can share a key. A user the state file does not know, whose keys no
/// target user has (none of them, with several match keys: a later one would take a target
/// user over), is then created, exactly as [`plan`](super::plan) would.
///
/// A user whose record names other users (a manager) waits here until each of them has
/// been created early in this run and its create has answered with the target id
/// ([`EarlyCreates::made`]); its record then holds those ids, as the plan would fill them,
/// and it is created at once. Users are read in no useful order, so a report waits for a
/// manager read later as well as one read before; when the head of a chain is created, the
/// chain follows. A user still waiting when the read ends (it names someone the run does
/// not create early, or a cycle), like one that names an entity, is left to the plan.
pub struct EarlyCreates<'a> {
    /// The listed target users.
    target: &'a [Listed],
    /// Their values of each match key, as compared; built for the first user the state does
    /// not know (on a quiet night, none).
    listed: Option<Vec<FastSet<Cow<'a, str>>>>,
    owned: &'a OwnedUsers,
    /// For each match key, whether it is compared without case.
    folds: Vec<bool>,
    fold_key: bool,
    create_disabled: bool,
    /// The keys created so far. A second user with one of them (Entra allows that only
    /// across a change made while the read goes on, such as a principal name given up by one
    /// user and taken by another) is skipped, never created again.
    created: FastSet<String>,
    /// The fields that name users, and whether any field names an entity.
    user_refs: Vec<usize>,
    names_entities: bool,
    /// The target ids of the users created early, once their creates have answered.
    made: FastMap<String, String>,
    /// The users that wait for the creates of the users they name (taken out once sent).
    waiting: Vec<Option<Waiting>>,
    /// For each user named by a waiting one, where those that name it wait.
    named: FastMap<String, Vec<usize>>,
    /// Where the waiting users whose named users are all made wait, to be sent.
    released: Vec<usize>,
}

/// A user certain to be created that waits for the creates of the users it names.
struct Waiting {
    user: SourceUser,
    key: String,
    /// Each field that names a user, with the Entra id it names.
    names: Vec<(usize, String)>,
    /// How many of the users named are not made yet.
    left: usize,
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
    /// Kept by the decider until the users it names are created ([`EarlyCreates::made`]).
    Waits,
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
        let folds = mapping
            .match_keys()
            .iter()
            .map(|k| {
                let i = mapping.field_index(k)?;
                Some(options.folds_case.get(i).copied().unwrap_or(false))
            })
            .collect::<Option<Vec<bool>>>()?;
        Some(EarlyCreates {
            target,
            listed: None,
            owned,
            fold_key: *folds.first()?,
            folds,
            create_disabled: options.create_disabled,
            created: FastSet::default(),
            user_refs: mapping.user_refs().collect(),
            names_entities: mapping.entity_refs().next().is_some(),
            made: FastMap::default(),
            waiting: Vec::new(),
            named: FastMap::default(),
            released: Vec::new(),
        })
    }

    /// What becomes of a user just read.
    pub fn decide(&mut self, user: SourceUser) -> Early {
        let (key, names) = match &user.mapped {
            Ok(Mapped {
                key: Some(key),
                enabled,
                values: Some(values),
                names_another,
                ..
            }) if (*enabled || self.create_disabled)
                && !self.owned.contains_key(&user.entra_id) =>
            {
                let names = match names_another {
                    false => Vec::new(),
                    true => match self.names(values) {
                        Some(names) => names,
                        None => return Early::Later(user),
                    },
                };
                (compared_key(key, self.fold_key), names)
            }
            _ => return Early::Later(user),
        };
        if self.listed_has(&user) {
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
        let at = self.waiting.len();
        let mut left = 0;
        for (_, named) in names.iter().filter(|(_, n)| !self.made.contains_key(n)) {
            self.named.entry(named.clone()).or_default().push(at);
            left += 1;
        }
        if left > 0 {
            self.waiting.push(Some(Waiting {
                user,
                key,
                names,
                left,
            }));
            return Early::Waits;
        }
        self.create(user, key, &names)
    }

    /// The users a record names, each in its field, read from the packed values as they
    /// are; `None` when it names anything else (an entity, a value that is not an Entra id):
    /// the plan then decides.
    fn names(&self, values: &Packed) -> Option<Vec<(usize, String)>> {
        if self.names_entities {
            return None;
        }
        let elements = values.elements()?;
        let mut names = Vec::new();
        for &field in &self.user_refs {
            match elements.get(field).copied() {
                None | Some("null") => {}
                Some(text) => names.push((field, crate::scan::string(text)?.into_owned())),
            }
        }
        Some(names)
    }

    /// The create of `user`, whose record names the users of `names` (each made).
    fn create(&self, user: SourceUser, key: String, names: &[(usize, String)]) -> Early {
        let SourceUser {
            entra_id,
            label,
            mapped,
            source,
        } = user;
        match mapped {
            Ok(Mapped {
                enabled,
                hash,
                values: Some(values),
                ..
            }) => Early::Create(Create {
                deferred: Vec::new(),
                entra_id,
                key,
                label,
                values: self.filled(values, names),
                pending: false,
                enabled,
                hash,
            }),
            mapped => Early::Later(SourceUser {
                entra_id,
                label,
                mapped,
                source,
            }),
        }
    }

    /// `values` with each field of `names` holding the target id of the user it names, as
    /// the plan fills a reference to a user created in this run (the hash stays the mapped
    /// record's).
    fn filled(&self, values: Packed, names: &[(usize, String)]) -> Packed {
        if names.is_empty() {
            return values;
        }
        let mut record = values.unpack();
        for (field, named) in names {
            let id = self.made.get(named).cloned().map(Json::String);
            record.set(*field, id);
        }
        record.pack()
    }

    /// The user of `entra_id`, created early, has `target_id` in the target: the users
    /// waiting for it alone can be sent ([`EarlyCreates::next_released`]).
    pub fn made(&mut self, entra_id: String, target_id: String) {
        for at in self.named.remove(&entra_id).unwrap_or_default() {
            if let Some(waiting) = self.waiting.get_mut(at).and_then(Option::as_mut) {
                waiting.left -= 1;
                if waiting.left == 0 {
                    self.released.push(at);
                }
            }
        }
        self.made.insert(entra_id, target_id);
    }

    /// The next create of a waiting user whose named users are all made.
    pub fn next_released(&mut self) -> Option<Create> {
        while let Some(at) = self.released.pop() {
            let Some(Waiting {
                user, key, names, ..
            }) = self.waiting.get_mut(at).and_then(Option::take)
            else {
                continue;
            };
            match self.create(user, key, &names) {
                Early::Create(create) => return Some(create),
                // A waiting user always keeps its record.
                _ => continue,
            }
        }
        None
    }

    /// The users still waiting when the read ends: the plan decides them, with every
    /// create of the run known.
    pub fn into_waiting(self) -> impl Iterator<Item = SourceUser> {
        self.waiting.into_iter().flatten().map(|w| w.user)
    }

    /// Whether a listed target user has one of `user`'s match key values (a match, or a
    /// skip: either way the plan decides).
    fn listed_has(&mut self, user: &SourceUser) -> bool {
        let Ok(mapped) = &user.mapped else {
            return true;
        };
        let (target, folds) = (self.target, &self.folds);
        let listed = self.listed.get_or_insert_with(|| {
            folds
                .iter()
                .enumerate()
                .map(|(k, &fold)| {
                    target
                        .iter()
                        .filter_map(|u| present(u.key_value(k)))
                        .map(|key| compared_key(key, fold))
                        .collect()
                })
                .collect()
        });
        listed
            .iter()
            .zip(folds)
            .enumerate()
            .any(|(k, (values, &fold))| {
                present(mapped.key_value(k))
                    .is_some_and(|v| values.contains(compared_key(v, fold).as_ref()))
            })
    }
}
