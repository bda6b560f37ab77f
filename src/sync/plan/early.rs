//! The early creates: while Entra is still being read, the users the plan is certain to
//! create, so that their creates need not wait for the end of the read.

use std::borrow::Cow;

use foldhash::HashSet as FastSet;

use super::matching::{compared_key, present};
use super::{Create, Listed, Mapped, PlanOptions, Skipped, SourceUser};
use crate::config::Mode;
use crate::mapping::Mapping;
use crate::state::OwnedUsers;

/// Decides, while Entra is still being read, which users [`plan`](super::plan) is certain to create, so
/// that their creates need not wait for the end of the read. It only exists where that is
/// certain whatever the rest of the read brings: the target's listing is complete (which
/// also keeps creates from shifting the pages of a listing still being read), the run
/// creates users, and Entra keeps the match key unique ([`Mapping::key_is_unique_in_entra`]),
/// so no later user can share a key. A user the state file does not know, whose keys no
/// target user has (none of them, with several match keys: a later one would take a target
/// user over), is then created, exactly as [`plan`](super::plan) would.
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
        })
    }

    /// What becomes of a user just read.
    pub fn decide(&mut self, user: SourceUser) -> Early {
        let key = match &user.mapped {
            Ok(Mapped {
                key: Some(key),
                enabled,
                values: Some(_),
                names_another: false,
                ..
            }) if (*enabled || self.create_disabled)
                && !self.owned.contains_key(&user.entra_id) =>
            {
                compared_key(key, self.fold_key)
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
                values,
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
