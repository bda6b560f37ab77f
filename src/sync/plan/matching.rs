//! The match step: the target users indexed by id and by each match key (as compared), each
//! Entra user's target user found through the state file first and its keys second (see
//! [`takeover`](super::takeover)), and the first keys that more than one Entra user maps to
//! (never merged, never written).

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::hash_map::Entry;

use foldhash::HashMap as FastMap;
use serde_json::Value as Json;

use super::{Listed, Mapped, PlanOptions, Skipped, SourceUser};
use crate::mapping::Mapping;

/// A match key as compared: the value's text, lower-cased when the target ignores case;
/// borrowed from the value when it is already so (most keys are).
pub(super) fn compared_key(value: &Json, fold_case: bool) -> Cow<'_, str> {
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
pub(super) enum Matches<'a> {
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

    pub(super) fn as_slice(&self) -> &[&'a Listed] {
        match self {
            Matches::One(user) => std::slice::from_ref(user),
            Matches::Many(users) => users,
        }
    }
}

/// The target users by one match key, as compared.
pub(super) struct KeyIndex<'a> {
    /// The key's target field.
    pub(super) name: &'a str,
    /// Whether its values are compared without case.
    pub(super) fold: bool,
    /// Which match key it is (0 for the first).
    k: usize,
    target: &'a [Listed],
    /// The target users by value (empty values left out): built when first asked for, as
    /// a night whose users are all linked through the state never asks.
    by_value: OnceCell<FastMap<Cow<'a, str>, Matches<'a>>>,
}

impl<'a> KeyIndex<'a> {
    /// Indexes `target` by the `k`-th match key, named `name`.
    fn new(target: &'a [Listed], k: usize, name: &'a str, fold: bool) -> KeyIndex<'a> {
        KeyIndex {
            name,
            fold,
            k,
            target,
            by_value: OnceCell::new(),
        }
    }

    /// The target users by value.
    pub(super) fn by_value(&self) -> &FastMap<Cow<'a, str>, Matches<'a>> {
        self.by_value.get_or_init(|| {
            let mut by_value: FastMap<Cow<'_, str>, Matches<'_>> = FastMap::default();
            by_value.reserve(self.target.len());
            for user in self.target {
                if let Some(key) = present(user.key_value(self.k)) {
                    match by_value.entry(compared_key(key, self.fold)) {
                        Entry::Vacant(entry) => {
                            entry.insert(Matches::One(user));
                        }
                        Entry::Occupied(mut entry) => entry.get_mut().add(user),
                    }
                }
            }
            by_value
        })
    }
}

/// A value that can be matched on: neither null nor empty text.
pub(super) fn present(value: Option<&Json>) -> Option<&Json> {
    value.filter(|v| !v.is_null() && v.as_str() != Some(""))
}

/// How an Entra user that the state file does not link to a target user was matched by
/// its keys.
pub(super) enum Found<'a> {
    /// To this target user.
    One(&'a Listed),
    /// Not at all, for this reason: several target users have its key, or another Entra
    /// user claims the same target user.
    Skip(String),
}

/// The target users by id and by each match key (as compared), and how each Entra user the
/// state does not link was matched: the matches of a whole plan are looked up here,
/// borrowing every key from the listing.
pub(super) struct TargetIndex<'a> {
    target: &'a [Listed],
    /// By the target's id: built when first asked for ([`TargetIndex::by_id`]).
    by_id: OnceCell<FastMap<&'a str, &'a Listed>>,
    /// By each match key, first key first.
    pub(super) keys: Vec<KeyIndex<'a>>,
    /// Whether the first key is compared without case.
    pub(super) fold_key: bool,
    /// What [`TargetIndex::resolve`] made of each Entra user it matched or skipped, by
    /// Entra object id; a user not here has no target user.
    pub(super) found: FastMap<String, Found<'a>>,
}

impl<'a> TargetIndex<'a> {
    /// Indexes `target` by id and by each of `mapping`'s match keys, folding case where
    /// `folds_case` says the target does; only the first key with a partial view.
    pub(super) fn new(
        mapping: &'a Mapping,
        target: &'a [Listed],
        options: &PlanOptions,
    ) -> TargetIndex<'a> {
        let tried = if options.partial_view { 1 } else { usize::MAX };
        let keys: Vec<KeyIndex<'a>> = mapping
            .match_keys()
            .iter()
            .take(tried)
            .enumerate()
            .map(|(k, name)| KeyIndex::new(target, k, name, options.folds(mapping, name)))
            .collect();
        TargetIndex {
            target,
            by_id: OnceCell::new(),
            fold_key: keys.first().is_some_and(|k| k.fold),
            keys,
            found: FastMap::default(),
        }
    }

    /// The target users by id. Built when first asked for: a night whose users are all
    /// quiet, with no leaver, never asks, and a million target users indexed take 50 MB.
    pub(super) fn by_id(&self) -> &FastMap<&'a str, &'a Listed> {
        self.by_id
            .get_or_init(|| self.target.iter().map(|u| (u.id.as_str(), u)).collect())
    }

    /// How the Entra user `entra_id`, not linked through the state, was matched by its keys;
    /// `None` when no target user has any of them (it is created).
    pub(super) fn find(&self, entra_id: &str) -> Option<&Found<'a>> {
        self.found.get(entra_id)
    }
}

/// The first keys more than one Entra user maps to, each with those users' names. The users
/// that cannot be matched at all (skipped by the mapping, or without a first key when no
/// later key is tried: `later_keys` false) are added to `skipped`.
pub(super) fn duplicate_keys(
    mapping: &Mapping,
    sources: &[SourceUser],
    fold_key: bool,
    later_keys: bool,
    skipped: &mut Vec<Skipped>,
) -> FastMap<String, String> {
    // How many users map to each key.
    let mut users_of_key: FastMap<Cow<'_, str>, u32> = FastMap::default();
    users_of_key.reserve(sources.len());
    for user in sources {
        let reason = match &user.mapped {
            Ok(Mapped { key: Some(key), .. }) => {
                *users_of_key.entry(compared_key(key, fold_key)).or_default() += 1;
                continue;
            }
            // Matched by a later key, or skipped, by the takeover.
            Ok(_) if later_keys => continue,
            Ok(_) => format!("no value for the match key `{}`", mapping.match_key()),
            Err(skip) => skip.to_string(),
        };
        skipped.push(Skipped {
            label: user.label.clone(),
            reason,
        });
    }
    let mut duplicates: FastMap<String, String> = FastMap::default();
    for user in sources {
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
    duplicates
}
