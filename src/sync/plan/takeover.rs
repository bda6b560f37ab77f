//! The takeover: each Entra user that the state file does not link to a target user is
//! matched by the mapping's keys, in order (`match = ["employee_num", "email"]`). Under each
//! key the target users with the user's value are the candidates: one is a match, several
//! are a skip (never a guess), none sends the user on to the next key. A target user that
//! two Entra users claim, or that the state links to another Entra user read in this run
//! (or, in a run over some users only, to any Entra user outside it), is given to none of the
//! claimants. Each match is counted by the key that made it.

use std::fmt;

use foldhash::{HashMap as FastMap, HashSet as FastSet};
use serde_json::{Value as Json, json};

use super::matching::{Found, Matches, TargetIndex, compared_key, present};
use super::{Listed, Mapped, PlanOptions, Prior, Skipped, SourceUser};
use crate::state::OwnedUsers;

/// How many Entra users a plan matched to a target user, and how: through the state file,
/// or by each match key in the order they are tried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matched {
    /// Users linked through the state file.
    pub by_state: usize,
    /// Each match key tried, with the users it matched.
    pub by_key: Vec<(String, usize)>,
}

impl fmt::Display for Matched {
    /// `812 by state, 40 by employee_num, 3 by email, 0 by username`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} by state", self.by_state)?;
        for (key, users) in &self.by_key {
            write!(f, ", {users} by {key}")?;
        }
        Ok(())
    }
}

impl Matched {
    /// As JSON: `{"state": 812, "keys": [{"key": "employee_num", "users": 40}, …]}`.
    pub fn to_json(&self) -> Json {
        let keys: Vec<Json> = self
            .by_key
            .iter()
            .map(|(key, users)| json!({"key": key, "users": users}))
            .collect();
        json!({"state": self.by_state, "keys": keys})
    }
}

/// One Entra user's claim on a target user, by the `k`-th key.
struct Claim<'s, 'a> {
    user: &'s SourceUser,
    target: &'a Listed,
    k: usize,
}

impl<'a> TargetIndex<'a> {
    /// Matches by their keys the users of `sources` that the state (`owned`) does not link
    /// to a listed target user, and keeps the outcome for [`TargetIndex::find`]. Users whose
    /// first key `duplicates` holds are left to the planner (skipped). A user without a
    /// value for the first key is matched by the later keys only: it is skipped (added to
    /// `skipped`) unless the state or a later key links it. Returns the counts, and the users
    /// without a first key that are linked (the planner takes them with an empty key).
    pub(super) fn resolve(
        &mut self,
        sources: &[SourceUser],
        owned: &OwnedUsers,
        duplicates: &FastMap<String, String>,
        (options, prior): (&PlanOptions, &Prior<'_>),
        skipped: &mut Vec<Skipped>,
    ) -> (Matched, FastSet<String>) {
        let mut matched = Matched {
            by_state: 0,
            by_key: self.keys.iter().map(|k| (k.name.to_owned(), 0)).collect(),
        };
        let mut keyless = FastSet::default();
        let mut claims: Vec<Claim<'_, 'a>> = Vec::new();
        for user in sources {
            let Ok(mapped) = &user.mapped else { continue };
            let first = mapped.key.as_ref();
            if first
                .is_some_and(|k| duplicates.contains_key(compared_key(k, self.fold_key).as_ref()))
            {
                continue;
            }
            let known = owned.get(&user.entra_id).filter(|o| o.target_id.is_some());
            let listed = known
                .and_then(|o| o.target_id.as_deref())
                .is_some_and(|id| self.by_id().contains_key(id));
            // A target that cannot list holds only the users looked up: one written as it
            // is stays linked without being looked up.
            let unseen = options.partial_view
                && known.is_some_and(|o| o.hash.as_ref() == Some(&mapped.hash));
            if listed || unseen {
                matched.by_state += 1;
                if first.is_none() && self.keys.len() > 1 {
                    keyless.insert(user.entra_id.clone());
                }
                continue;
            }
            match self.try_keys(mapped) {
                Some(Ok((target, k))) => claims.push(Claim { user, target, k }),
                Some(Err(reason)) => {
                    self.found
                        .insert(user.entra_id.clone(), Found::Skip(reason));
                }
                None => {}
            }
        }
        if !claims.is_empty() {
            self.settle(&claims, (sources, prior), owned, &mut matched, &mut keyless);
        }
        self.skip_keyless(sources, &keyless, skipped);
        (matched, keyless)
    }

    /// Gives each claimed target user to its claimant, unless another Entra user claims it
    /// too or the state links it to another Entra user read in this run (`sources`, or one of
    /// the quiet users) or, in a run over the users of `only`, to one outside it (unchanged,
    /// so still there): then
    /// every claimant is skipped, naming the others. Counts the matches in `matched`, and
    /// adds the linked users without a first key to `keyless`.
    fn settle(
        &mut self,
        claims: &[Claim<'_, 'a>],
        (sources, prior): (&[SourceUser], &Prior<'_>),
        owned: &OwnedUsers,
        matched: &mut Matched,
        keyless: &mut FastSet<String>,
    ) {
        let mut claimants: FastMap<&str, Vec<&SourceUser>> = FastMap::default();
        for c in claims {
            claimants
                .entry(c.target.id.as_str())
                .or_default()
                .push(c.user);
        }
        // The claimed target users the state links to an Entra user read now, with its name.
        let mut linked: FastMap<&str, &str> = sources
            .iter()
            .filter_map(|u| {
                let id = owned.get(&u.entra_id)?.target_id.as_deref()?;
                let (id, _) = claimants.get_key_value(id)?;
                Some((*id, u.label.as_str()))
            })
            .collect();
        let claimed_of = |entra_id: &str| {
            let o = owned.get(entra_id)?;
            let (id, _) = claimants.get_key_value(o.target_id.as_deref()?)?;
            Some((*id, o.key.as_str()))
        };
        if let Some(quiet) = prior.quiet {
            linked.extend(quiet.iter().filter_map(claimed_of));
        }
        if let Some(only) = prior.only {
            linked.extend(owned.values().filter_map(|o| {
                let id = o.target_id.as_deref()?;
                let (id, _) = claimants.get_key_value(id)?;
                (!only.contains(&o.entra_id)).then_some((*id, o.key.as_str()))
            }));
        }
        for c in claims {
            let id = c.target.id.as_str();
            let others: Vec<&str> = claimants
                .get(id)
                .into_iter()
                .flatten()
                .filter(|u| u.entra_id != c.user.entra_id)
                .map(|u| u.label.as_str())
                .collect();
            let key = self.keys.get(c.k).map_or("", |k| k.name);
            let found = if let Some(other) = linked.get(id) {
                Found::Skip(format!(
                    "target user {id} (same {key}) is linked to another Entra user, {other}; \
                     left alone"
                ))
            } else if !others.is_empty() {
                Found::Skip(format!(
                    "target user {id} (same {key}) is claimed by other Entra users too ({}); \
                     none is linked until only one matches it",
                    others.join(", ")
                ))
            } else {
                if let Some(count) = matched.by_key.get_mut(c.k) {
                    count.1 += 1;
                }
                if c.user.mapped.as_ref().is_ok_and(|m| m.key.is_none()) {
                    keyless.insert(c.user.entra_id.clone());
                }
                Found::One(c.target)
            };
            self.found.insert(c.user.entra_id.clone(), found);
        }
    }

    /// The first key under which target users have `mapped`'s value: the one target user,
    /// or why several are no match. `None` when no key finds any.
    fn try_keys(&self, mapped: &Mapped) -> Option<Result<(&'a Listed, usize), String>> {
        for (k, index) in self.keys.iter().enumerate() {
            let Some(value) = present(mapped.key_value(k)) else {
                continue;
            };
            let value = compared_key(value, index.fold);
            match index.by_value().get(value.as_ref()).map(Matches::as_slice) {
                Some([user]) => return Some(Ok((*user, k))),
                Some(several @ [_, _, ..]) => {
                    let ids: Vec<&str> = several.iter().map(|u| u.id.as_str()).collect();
                    return Some(Err(format!(
                        "{} target users have {} `{value}` ({}); match them up by hand",
                        several.len(),
                        index.name,
                        ids.join(", ")
                    )));
                }
                _ => {}
            }
        }
        None
    }

    /// Adds to `skipped` the users without a value for the first key that are not linked
    /// (`keyless` holds those that are): they are never created.
    fn skip_keyless(
        &self,
        sources: &[SourceUser],
        keyless: &FastSet<String>,
        skipped: &mut Vec<Skipped>,
    ) {
        let Some(first) = self.keys.first().filter(|_| self.keys.len() > 1) else {
            return;
        };
        for user in sources {
            let Ok(Mapped { key: None, .. }) = &user.mapped else {
                continue;
            };
            if keyless.contains(&user.entra_id) {
                continue;
            }
            let reason = match self.found.get(&user.entra_id) {
                Some(Found::Skip(reason)) => reason.clone(),
                _ => format!(
                    "no value for the match key `{}`, and no target user matches a later key; \
                     not created",
                    first.name
                ),
            };
            skipped.push(Skipped {
                label: user.label.clone(),
                reason,
            });
        }
    }
}
