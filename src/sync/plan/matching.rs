//! The match step: the target users indexed by id and by match key (as compared), each
//! Entra user's target user found through the state file first and the key second, and the
//! keys that more than one Entra user maps to (never merged, never written).

use std::borrow::Cow;
use std::collections::hash_map::Entry;

use foldhash::HashMap as FastMap;
use serde_json::Value as Json;

use super::{Listed, Mapped, Skipped, SourceUser};
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

/// The target users by id and by match key (as compared): the matches of a whole plan
/// are looked up here, borrowing every key from the listing.
pub(super) struct TargetIndex<'a> {
    /// By the target's id.
    pub(super) by_id: FastMap<&'a str, &'a Listed>,
    /// By match key, as compared.
    pub(super) by_key: FastMap<Cow<'a, str>, Matches<'a>>,
    /// Whether keys are compared without case.
    pub(super) fold_key: bool,
}

impl<'a> TargetIndex<'a> {
    /// Indexes `target`; `fold_key` compares keys without case.
    pub(super) fn new(target: &'a [Listed], fold_key: bool) -> TargetIndex<'a> {
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
        TargetIndex {
            by_id,
            by_key,
            fold_key,
        }
    }
}

/// The keys more than one Entra user maps to, each with those users' names. The users that
/// cannot be matched at all (no key, or skipped by the mapping) are added to `skipped`.
pub(super) fn duplicate_keys(
    mapping: &Mapping,
    sources: &[SourceUser],
    fold_key: bool,
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
