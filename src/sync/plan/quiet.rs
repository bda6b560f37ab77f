//! The users a full run leaves as they are, found while Entra is still being read. On a
//! night without changes that is nearly everyone, so they are taken out as their pages
//! arrive: the plan then works on the few that changed, and the read holds one small entry
//! per quiet user instead of the user.
//!
//! A user is quiet when [`plan`](super::plan) would find it unchanged with nothing new to
//! remember: the state links it to a listed target user, and remembers its record's hash,
//! match key and active flag as they are now. Entra must keep the match key unique
//! ([`Mapping::key_is_unique_in_entra`]), so no user read later can share its key. A normal
//! run compares such a user by its hash alone, so it takes it out at once, by what the state
//! remembers ([`Settle::take`]), before the target's listing is complete; once it is, each
//! user so taken is confirmed to have its target user listed, and one that has not is
//! missing ([`Settle::finish`]): the read reads it again, to be planned (created anew). A
//! full reconciliation compares every user with the target: a user is quiet when
//! the target user holds its record word for word ([`Settle::check`]), with the users it
//! names linked as the state links them. Whether the plan links them so is known only once
//! every user is read (a user read without a match key is never linked, [`linkable`]), so
//! the users checked leave the read only at its end ([`Settle::finish`]), and only if every
//! such link holds; else all of them are compared by the plan, as before.
//!
//! The plan counts quiet users as unchanged and matched through the state, never takes them
//! for leavers, and gives their target users to nobody else.

use foldhash::HashSet as FastSet;

use super::decide::same_text;
use super::entities::Catalogue;
use super::matching::compared_key;
use super::refs::{Names, Settled, linkable, settle};
use super::seal::{Source, seal};
use super::{Listed, PlanOptions, SourceUser};
use crate::mapping::Mapping;
use crate::state::OwnedUsers;

/// The users a full run leaves as they are: a mark for each of the state's owned users (a
/// million users take a megabyte).
#[derive(Debug, Default)]
pub struct Quiet<'a> {
    owned: Option<&'a OwnedUsers>,
    /// By the user's place among the owned users ([`OwnedUsers::at`]).
    marked: Vec<bool>,
    len: usize,
    /// Seals to keep for users found quiet by mapping them: their places and seals.
    seals: Vec<(usize, u64)>,
    /// Which were found quiet by their seals alone (by place; empty until one is), and how
    /// many.
    by_seal: Vec<bool>,
    sealed: usize,
}

impl<'a> Quiet<'a> {
    /// None of `owned` yet.
    fn of(owned: &'a OwnedUsers) -> Quiet<'a> {
        Quiet {
            owned: Some(owned),
            marked: vec![false; owned.len()],
            len: 0,
            seals: Vec::new(),
            by_seal: Vec::new(),
            sealed: 0,
        }
    }

    /// How many were found quiet by their seals alone, unmapped ([`super::Sealer`]).
    pub fn sealed(&self) -> usize {
        self.sealed
    }

    /// The seals the state is to keep, `(Entra id, seal)`, of quiet users whose seal it
    /// does not keep yet ([`super::Sealer`]).
    pub fn seals(&self) -> Vec<(&'a str, u64)> {
        let Some(owned) = self.owned else {
            return Vec::new();
        };
        self.seals
            .iter()
            .filter(|(at, _)| self.marked.get(*at) == Some(&true))
            .filter_map(|&(at, seal)| Some((owned.at(at)?.entra_id.as_str(), seal)))
            .collect()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the user of `entra_id` is one.
    pub fn contains(&self, entra_id: &str) -> bool {
        self.owned
            .and_then(|owned| owned.position(entra_id))
            .is_some_and(|at| self.marked.get(at) == Some(&true))
    }

    /// Their Entra ids.
    pub(super) fn iter(&self) -> impl Iterator<Item = &'a str> + '_ {
        let owned = self.owned;
        self.marked
            .iter()
            .enumerate()
            .filter(|(_, marked)| **marked)
            .filter_map(move |(at, _)| Some(owned?.at(at)?.entra_id.as_str()))
    }

    /// Marks the owned user at `at`; whether it was not yet.
    fn insert(&mut self, at: usize) -> bool {
        let Some(marked) = self.marked.get_mut(at).filter(|m| !**m) else {
            return false;
        };
        *marked = true;
        self.len += 1;
        true
    }

    /// Unmarks the owned user at `at`.
    fn remove(&mut self, at: usize) {
        if let Some(marked) = self.marked.get_mut(at).filter(|m| **m) {
            *marked = false;
            self.len -= 1;
        }
        if let Some(by_seal) = self.by_seal.get_mut(at).filter(|s| **s) {
            *by_seal = false;
            self.sealed -= 1;
        }
    }

    /// Notes that the owned user at `at`, marked, was found quiet by its seal.
    fn sealed_at(&mut self, at: usize) {
        if self.by_seal.is_empty() {
            self.by_seal = vec![false; self.marked.len()];
        }
        if let Some(by_seal) = self.by_seal.get_mut(at).filter(|s| !**s) {
            *by_seal = true;
            self.sealed += 1;
        }
    }
}

/// Finds the quiet users among those read (the target's listing and entities borrowed for
/// `'a`); they borrow from the state's owned users (`'o`).
pub struct Settle<'a, 'o> {
    mapping: &'a Mapping,
    owned: &'o OwnedUsers,
    /// Once the listing is complete: where in it the target user of each owned user is
    /// (by the owned user's place; the last of an id wins, as the plan indexes them), the
    /// listing, and the target's entities.
    listed: Option<(Vec<u32>, &'a [Listed], &'a Catalogue)>,
    /// The users taken out whose target user is not yet confirmed listed (their places
    /// among the owned users).
    unconfirmed: Vec<usize>,
    /// The users taken out whose target user the listing does not hold.
    missing: Vec<&'o str>,
    /// Whether the target compares the match key without case.
    fold_key: bool,
    /// Whether Entra keeps the match key unique: else nobody is quiet.
    unique_key: bool,
    /// The fields that name a user.
    user_fields: Vec<usize>,
    /// The fields that name an entity, with its kind.
    entity_fields: Vec<(usize, &'a str)>,
    /// The users named by the records found the same as the target, taken to be linked as
    /// the state links them.
    assumed: FastSet<String>,
    /// In a reconciliation, the users found the same as the target: quiet if the
    /// assumptions hold once every user is read.
    same: Quiet<'o>,
    quiet: Quiet<'o>,
}

/// No target user listed for an owned user.
const UNLISTED: u32 = u32::MAX;

impl<'a, 'o: 'a> Settle<'a, 'o> {
    /// The finder, before the target's listing is complete.
    pub fn new(
        mapping: &'a Mapping,
        owned: &'o OwnedUsers,
        options: &PlanOptions,
    ) -> Settle<'a, 'o> {
        Settle {
            mapping,
            owned,
            listed: None,
            unconfirmed: Vec::new(),
            missing: Vec::new(),
            fold_key: options.folds(mapping, mapping.match_key()),
            unique_key: mapping.key_is_unique_in_entra(),
            user_fields: mapping.user_refs().collect(),
            entity_fields: mapping
                .entity_refs()
                .map(|(i, e)| (i, e.kind.as_str()))
                .collect(),
            assumed: FastSet::default(),
            same: Quiet::of(owned),
            quiet: Quiet::of(owned),
        }
    }

    /// Whether the target compares the match key without case (the state keeps it so).
    pub fn folds_key(&self) -> bool {
        self.fold_key
    }

    /// The target's `listing`, complete, and its entities in `catalogue`: the users taken
    /// out so far are confirmed against it.
    pub fn listed(&mut self, listing: &'a [Listed], catalogue: &'a Catalogue) {
        let mut at = vec![UNLISTED; self.owned.len()];
        for (i, user) in listing.iter().enumerate() {
            if let (Some(owner), Ok(i)) = (self.owned.target_position(&user.id), u32::try_from(i)) {
                at[owner] = i;
            }
        }
        self.listed = Some((at, listing, catalogue));
        self.confirm();
    }

    /// Whether the target user of `id`, which the state links to an owned user, is listed
    /// (`false` before the listing is complete).
    pub fn is_listed(&self, id: &str) -> bool {
        self.listed_user(id).is_some()
    }

    /// The listed target user of `id`, which the state links to an owned user.
    fn listed_user(&self, id: &str) -> Option<&'a Listed> {
        self.listed_for(self.owned.target_position(id)?, id)
    }

    /// The listed target user of `id`, linked to the owned user at `owner`.
    fn listed_for(&self, owner: usize, id: &str) -> Option<&'a Listed> {
        let (at, listing, _) = self.listed.as_ref()?;
        let i = *at.get(owner)?;
        listing.get(i as usize).filter(|user| user.id == id)
    }

    /// In a normal run: whether `user` is quiet, its record being the one last written to
    /// the target user the state links it to (listed, or confirmed so once the listing is
    /// complete). It is then counted as such, and the caller drops it; the state is to
    /// keep its seal ([`Quiet::seals`]) when it does not yet.
    pub fn take(&mut self, user: &SourceUser) -> bool {
        let Some((at, _)) = self.remembered(user) else {
            return false;
        };
        if !self.mark(at) {
            return false;
        }
        if let (Some(source), Some(o)) = (&user.source, self.owned.at(at)) {
            let sealed = seal(source, o);
            if self.owned.source_at(at) != Some(sealed) {
                self.quiet.seals.push((at, sealed));
            }
        }
        true
    }

    /// Where among the owned users the user of `entra_id` is, when a normal run may find it
    /// quiet ([`Settle::take`], [`Settle::take_sealed`]): the state keeps a record's hash
    /// and a target user for it. Only such a user is sealed.
    pub fn sealed_position(&self, entra_id: &str) -> Option<usize> {
        if !self.unique_key {
            return None;
        }
        let at = self.owned.position(entra_id)?;
        let o = self.owned.at(at)?;
        (o.hash.is_some() && o.target_id.is_some()).then_some(at)
    }

    /// In a normal run: whether the owned user at `at` ([`Settle::sealed_position`]), read
    /// from `source`, is quiet by its seal: read as it was when last found unchanged, and
    /// remembered as it was then. It is then counted as such, as [`Settle::take`] counts.
    pub fn take_sealed(&mut self, at: usize, source: &Source) -> bool {
        let same = match (self.owned.source_at(at), self.owned.at(at)) {
            (Some(kept), Some(o)) => kept == seal(source, o),
            _ => false,
        };
        // The pager hands each user once; a second copy would be left to the plan.
        if !same || self.quiet.marked.get(at) != Some(&false) {
            return false;
        }
        // Noted before the user is marked: confirming it may unmark it at once, and its
        // seal's count with it.
        self.quiet.sealed_at(at);
        self.mark(at)
    }

    /// Counts the owned user at `at` as quiet, its target user to be confirmed listed;
    /// whether it was not yet (the pager hands each user once; a second copy would be left
    /// to the plan).
    fn mark(&mut self, at: usize) -> bool {
        if !self.quiet.insert(at) {
            return false;
        }
        self.unconfirmed.push(at);
        self.confirm();
        true
    }

    /// Once the listing is complete: the users taken out whose target user it does not hold
    /// are missing, and no longer quiet.
    fn confirm(&mut self) {
        if self.listed.is_none() {
            return;
        }
        let owned = self.owned;
        for at in std::mem::take(&mut self.unconfirmed) {
            let Some(o) = owned.at(at) else { continue };
            let listed = o
                .target_id
                .as_deref()
                .and_then(|id| self.listed_for(at, id));
            if listed.is_none() {
                self.quiet.remove(at);
                self.missing.push(o.entra_id.as_str());
            }
        }
    }

    /// In a reconciliation: marks `user` when the target user the state links it to holds
    /// its record word for word (the users it names linked as the state links them, the
    /// entities as listed), and the state remembers it as it is. Returns whether it did.
    pub fn check(&mut self, user: &mut SourceUser) -> bool {
        let Some((_, _, catalogue)) = self.listed else {
            return false;
        };
        let Some((at, target)) = self
            .remembered(user)
            .and_then(|(at, id)| Some((at, self.listed_for(at, id)?)))
        else {
            return false;
        };
        let Ok(mapped) = &mut user.mapped else {
            return false;
        };
        let Some(values) = &mapped.values else {
            return false;
        };
        let mut assumed = Vec::new();
        let same = same_text(self.mapping, values, &target.values, |i, text| {
            self.settled(i, text, catalogue, &mut assumed)
        });
        // The pager hands each user once; a second copy would be left to the plan.
        if same && self.same.insert(at) {
            mapped.same_as_listed = true;
            self.assumed.extend(assumed);
            return true;
        }
        false
    }

    /// The quiet users, once every user is read (`users`, those left) and the listing is
    /// complete, and the users taken out whose target user it does not hold (their Entra
    /// ids: to be read again). In a reconciliation, the users marked by [`Settle::check`]
    /// leave `users` for them, when the plan links every user their records name as the
    /// check assumed.
    pub fn finish(mut self, users: &mut Vec<SourceUser>) -> (Quiet<'o>, Vec<&'o str>) {
        let quiet = self.quiet_at_end(users);
        (quiet, self.missing)
    }

    fn quiet_at_end(&mut self, users: &mut Vec<SourceUser>) -> Quiet<'o> {
        let unlinked: FastSet<&str> = users
            .iter()
            .filter(|u| linkable(&u.mapped).is_none())
            .map(|u| u.entra_id.as_str())
            .collect();
        let mut quiet = std::mem::take(&mut self.quiet);
        if self.same.is_empty() || self.assumed.iter().any(|id| unlinked.contains(id.as_str())) {
            return quiet;
        }
        users.retain(|user| !user.mapped.as_ref().is_ok_and(|m| m.same_as_listed));
        let same = std::mem::take(&mut self.same);
        for (at, marked) in same.marked.iter().enumerate() {
            if *marked {
                quiet.insert(at);
            }
        }
        quiet
    }

    /// The user's place among the owned users and the id of the target user the state
    /// links it to, when the state remembers it as it is now (hash, key and active flag): a
    /// user the plan, finding nothing to write to that target user, would leave unchanged
    /// without a word.
    fn remembered(&self, user: &SourceUser) -> Option<(usize, &'o str)> {
        if !self.unique_key {
            return None;
        }
        let Ok(mapped) = &user.mapped else {
            return None;
        };
        let key = mapped.key.as_ref()?;
        let at = self.owned.position(&user.entra_id)?;
        let o = self.owned.at(at)?;
        let target = o.target_id.as_deref()?;
        let same = o.hash.as_deref() == Some(mapped.hash.as_str())
            && o.active == mapped.enabled
            && o.key == compared_key(key, self.fold_key);
        same.then_some((at, target))
    }

    /// What field `i` holds once resolved, as far as the state and the listing tell; the
    /// Entra id of a user named is noted in `assumed`.
    fn settled(
        &self,
        i: usize,
        text: &str,
        catalogue: &'a Catalogue,
        assumed: &mut Vec<String>,
    ) -> Settled<'a> {
        let names = match self.entity_fields.iter().find(|(f, _)| *f == i) {
            _ if self.user_fields.contains(&i) => Names::User,
            Some((_, kind)) => Names::Entity(kind),
            None => Names::Nothing,
        };
        settle(text, names, catalogue, |entra_id| {
            let id = self
                .owned
                .get(entra_id)
                .and_then(|o| o.target_id.as_deref())
                .filter(|id| self.is_listed(id))?;
            assumed.push(entra_id.to_owned());
            Some(id)
        })
    }
}
