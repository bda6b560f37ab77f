//! The early creates: while Entra is still being read, the users the plan is certain to
//! create, so that their creates need not wait for the end of the read.

use std::borrow::Cow;
use std::hash::BuildHasher;

use foldhash::fast::FixedState;
use foldhash::{HashMap as FastMap, HashSet as FastSet};
use serde_json::Value as Json;

use super::held::Held;
use super::matching::{compared_key, present};
use super::{Create, Listed, Mapped, PlanOptions, Skipped, SourceUser};
use crate::config::Mode;
use crate::mapping::{Mapping, Packed};
use crate::spill::{Place, Spill};
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
/// ([`EarlyCreates::answered`]); its record then holds those ids, as the plan would fill
/// them, and it is created at once. Users are read in no useful order, so a report waits
/// for a manager read later as well as one read before; when the head of a chain is
/// created, the chain follows, during the read and after it, until every create sent has
/// answered ([`EarlyCreates::settled`]). A user still waiting then (it names someone the
/// run does not create early, whose create failed, or a cycle), like one that names an
/// entity, is left to the plan.
pub struct EarlyCreates<'a> {
    mapping: &'a Mapping,
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
    /// The keys created so far, each by a 128-bit hash ([`digest`]: two users whose keys
    /// share one are as likely as two random 128-bit numbers being equal). A second user
    /// with one of them (Entra allows that only across a change made while the read goes
    /// on, such as a principal name given up by one user and taken by another) is skipped,
    /// never created again.
    created: FastSet<u128>,
    /// The fields that name users, and whether any field names an entity.
    user_refs: Vec<usize>,
    names_entities: bool,
    /// The target ids of the users created early, once their creates have answered.
    made: FastMap<String, String>,
    /// The users that wait for the creates of the users they name; a place is taken out
    /// once its user is sent, and given to the next user that waits.
    waiting: Vec<Option<Waiting>>,
    /// The places of `waiting` free again.
    free: Vec<usize>,
    /// How many users wait.
    waits: usize,
    /// How many creates were handed out and have not answered.
    sent: usize,
    /// For each user named by a waiting one, where those that name it wait.
    named: FastMap<String, Vec<usize>>,
    /// Where the waiting users whose named users are all made wait, to be sent.
    released: Vec<usize>,
    /// Where waiting users are kept, when on disk ([`EarlyCreates::kept_in`]).
    spill: Option<Spill>,
    /// A user's record as the spill keeps it, between uses.
    scratch: Vec<u8>,
    /// Whether the spill failed to write a user (said once).
    spill_failed: bool,
    /// Why a waiting user could not be read back from the spill: the early creates end
    /// ([`EarlyCreates::into_waiting`] gives it).
    broken: Option<std::io::Error>,
}

/// A user certain to be created that waits for the creates of the users it names.
struct Waiting {
    kept: Kept,
    /// How many of the users named are not made yet.
    left: usize,
}

/// Where a waiting user is.
enum Kept {
    Here(Box<Held>),
    There(Place),
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
    /// Kept by the decider until the users it names are created ([`EarlyCreates::answered`])
    /// and the writers have room ([`EarlyCreates::next_released`]).
    Waits,
}

impl<'a> EarlyCreates<'a> {
    /// The decider for a run, when the run allows one. `target` is the complete listing.
    pub fn new(
        mapping: &'a Mapping,
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
            mapping,
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
            free: Vec::new(),
            waits: 0,
            sent: 0,
            named: FastMap::default(),
            released: Vec::new(),
            spill: None,
            scratch: Vec::new(),
            spill_failed: false,
            broken: None,
        })
    }

    /// Keeps the waiting users in `spill` rather than in memory.
    pub fn kept_in(self, spill: Spill) -> EarlyCreates<'a> {
        EarlyCreates {
            spill: Some(spill),
            ..self
        }
    }

    /// What becomes of a user just read.
    pub fn decide(&mut self, user: SourceUser) -> Early {
        self.decide_as(user, true)
    }

    /// What becomes of a user just read while the writers have no room: one to create now
    /// waits instead, released, for [`EarlyCreates::next_released`].
    pub fn decide_without_room(&mut self, user: SourceUser) -> Early {
        self.decide_as(user, false)
    }

    fn decide_as(&mut self, user: SourceUser, room: bool) -> Early {
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
        if !self.created.insert(digest(&key)) {
            return Early::Skip(Skipped {
                label: user.label,
                reason: format!(
                    "shares the key `{key}` with a user created earlier in this run (Entra \
                     changed while it was read); left alone until the next run"
                ),
            });
        }
        let at = self.free.last().copied().unwrap_or(self.waiting.len());
        let mut left = 0;
        for (_, named) in names.iter().filter(|(_, n)| !self.made.contains_key(n)) {
            self.named.entry(named.clone()).or_default().push(at);
            left += 1;
        }
        if left > 0 || !room {
            if left == 0 {
                self.released.push(at);
            }
            let kept = self.keep(Held { user, key, names });
            let waiting = Some(Waiting { kept, left });
            match self.free.pop() {
                Some(at) => self.waiting[at] = waiting,
                None => self.waiting.push(waiting),
            }
            self.waits += 1;
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
        let mut names = Vec::with_capacity(self.user_refs.len());
        for &field in &self.user_refs {
            match elements.get(field).copied() {
                None | Some("null") => {}
                Some(text) => names.push((field, crate::scan::string(text)?.into_owned())),
            }
        }
        Some(names)
    }

    /// The create of `user`, whose record names the users of `names` (each made), counted
    /// as sent.
    fn create(&mut self, user: SourceUser, key: String, names: &[(usize, String)]) -> Early {
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
            }) => {
                self.sent += 1;
                Early::Create(Create {
                    deferred: Vec::new(),
                    entra_id,
                    key,
                    label,
                    values: self.filled(values, names),
                    pending: false,
                    enabled,
                    hash,
                })
            }
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

    /// The create of the user of `entra_id`, sent early, answered: with `target_id` when it
    /// was made, and the users waiting for it alone can be sent
    /// ([`EarlyCreates::next_released`]); those waiting for a create that failed wait for
    /// good (the plan decides them).
    pub fn answered(&mut self, entra_id: String, target_id: Option<String>) {
        self.sent = self.sent.saturating_sub(1);
        let waiting = self.named.remove(&entra_id).unwrap_or_default();
        let Some(target_id) = target_id else {
            return;
        };
        for at in waiting {
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
        while self.broken.is_none()
            && let Some(at) = self.released.pop()
        {
            let Some(Waiting { kept, .. }) = self.waiting.get_mut(at).and_then(Option::take) else {
                continue;
            };
            let Held { user, key, names } = match self.take(kept) {
                Ok(held) => held,
                Err(error) => {
                    self.broken = Some(error);
                    return None;
                }
            };
            self.free.push(at);
            self.waits -= 1;
            match self.create(user, key, &names) {
                Early::Create(create) => return Some(create),
                // A waiting user always keeps its record.
                _ => continue,
            }
        }
        None
    }

    /// Keeps a waiting user: on disk when there is a spill and it takes the user, else in
    /// memory (as is one the spill failed to write, with a warning the first time).
    fn keep(&mut self, held: Held) -> Kept {
        if let Some(spill) = &mut self.spill
            && held.encode(&mut self.scratch)
        {
            match spill.put(&self.scratch) {
                Ok(place) => return Kept::There(place),
                Err(error) if !self.spill_failed => {
                    self.spill_failed = true;
                    tracing::warn!(
                        %error,
                        "keeping users that wait for their managers in memory: their temporary file beside the state file failed"
                    );
                }
                Err(_) => {}
            }
        }
        Kept::Here(Box::new(held))
    }

    /// A waiting user back from where it was kept.
    fn take(&mut self, kept: Kept) -> std::io::Result<Held> {
        match (kept, &self.spill) {
            (Kept::Here(held), _) => Ok(*held),
            (Kept::There(place), Some(spill)) => {
                spill.get(place, &mut self.scratch)?;
                Held::decode(self.mapping, &self.scratch)
                    .ok_or_else(|| std::io::Error::other("a user read back is not the one written"))
            }
            // Only a spill keeps users there.
            (Kept::There(_), None) => Err(std::io::Error::other("no file")),
        }
    }

    /// Whether no waiting user can be sent any more: none waits, or every create sent has
    /// answered and those that wait name users no create will make, or the spill failed.
    pub fn settled(&self) -> bool {
        self.waits == 0 || (self.sent == 0 && self.released.is_empty()) || self.broken.is_some()
    }

    /// The target ids of the users created early, by Entra id, taken out.
    pub fn take_made(&mut self) -> FastMap<String, String> {
        std::mem::take(&mut self.made)
    }

    /// The users still waiting when the early creates end: the plan decides them, with
    /// every create of the run known. An error when a user could not be read back from the
    /// spill (the run then ends: the next run creates whoever is missing).
    pub fn into_waiting(mut self) -> std::io::Result<Vec<SourceUser>> {
        if let Some(error) = self.broken.take() {
            return Err(error);
        }
        let waiting = std::mem::take(&mut self.waiting);
        let mut users = Vec::with_capacity(self.waits);
        for Waiting { kept, .. } in waiting.into_iter().flatten() {
            users.push(self.take(kept)?.user);
        }
        Ok(users)
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

/// A 128-bit hash of a match key as compared, from two 64-bit hashes of fixed seeds.
fn digest(key: &str) -> u128 {
    let [a, b] = [0x6561_726c_7920_6b65, 0x7973_2063_7265_6174]
        .map(|seed| FixedState::with_seed(seed).hash_one(key));
    (u128::from(a) << 64) | u128::from(b)
}
