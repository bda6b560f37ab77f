//! The owned users in memory, found by Entra id. A run loads all of them and looks up every
//! Entra user it reads, so at a million users their shape is a large share of the run's
//! memory: each user is kept once, in a list sized to fit, with a small table of positions
//! by id beside it. (A map keyed by id would keep every id twice, and its table, rounded up
//! to a power of two of whole entries, would be up to half empty: about twice the memory.)

use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::Owned;

/// The owned users by Entra object id (hashed with foldhash, as the planner's own maps
/// are: a run looks up every Entra user in it).
#[derive(Debug, Clone, Default)]
pub struct OwnedUsers {
    users: Vec<Owned>,
    /// Positions in `users`, by the hash of the Entra id.
    index: HashTable<u32>,
    /// Positions in `users` of the users with a target id, by the hash of that id.
    by_target: HashTable<u32>,
    /// Each user's seal ([`OwnedUsers::source_at`]), 0 for none; empty when none has one.
    sources: Vec<u64>,
    hasher: foldhash::fast::RandomState,
}

impl OwnedUsers {
    /// Room for `n` users.
    pub fn with_capacity(n: usize) -> OwnedUsers {
        OwnedUsers {
            users: Vec::with_capacity(n),
            index: HashTable::with_capacity(n),
            by_target: HashTable::with_capacity(n),
            sources: Vec::new(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// The same users with their seals, in the order of the users (0 for none).
    pub fn with_sources(mut self, mut sources: Vec<u64>) -> OwnedUsers {
        sources.resize(self.users.len(), 0);
        sources.shrink_to_fit();
        self.sources = sources;
        self
    }

    /// The seal of the owned user at `at`, as the state keeps it: a digest of what the user
    /// was last read from in Entra together with what the state remembers of it (hash, key,
    /// active flag), written when that reading was found to change nothing. A run that
    /// reads the user the same again, and seals it to the same value, knows it is
    /// unchanged without mapping it. A user whose row changed since no longer matches its
    /// seal, so a stale one is never trusted.
    pub fn source_at(&self, at: usize) -> Option<u64> {
        self.sources.get(at).copied().filter(|&seal| seal != 0)
    }

    /// The owned user of `entra_id`.
    pub fn get(&self, entra_id: &str) -> Option<&Owned> {
        let at = self.position(entra_id)?;
        self.users.get(at)
    }

    /// The owned user whose target user has the id `target_id`.
    pub fn owner_of(&self, target_id: &str) -> Option<&Owned> {
        self.users.get(self.target_position(target_id)?)
    }

    /// Where the owned user whose target user has the id `target_id` is ([`OwnedUsers::at`]).
    pub fn target_position(&self, target_id: &str) -> Option<usize> {
        let hash = self.hasher.hash_one(target_id);
        let users = &self.users;
        let at = self.by_target.find(hash, |&i| {
            users[i as usize].target_id.as_deref() == Some(target_id)
        })?;
        Some(*at as usize)
    }

    /// The owned user at `at`: each user's place is fixed once added, from 0 to
    /// [`OwnedUsers::len`], so that a caller can keep a mark per user in a list.
    pub fn at(&self, at: usize) -> Option<&Owned> {
        self.users.get(at)
    }

    /// Whether the user of `entra_id` is owned.
    pub fn contains_key(&self, entra_id: &str) -> bool {
        self.position(entra_id).is_some()
    }

    /// How many users are owned.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Every owned user, in the order added.
    pub fn values(&self) -> std::slice::Iter<'_, Owned> {
        self.users.iter()
    }

    /// Adds `owned`, or puts it in the place of the user of the same Entra id; returns the
    /// user replaced.
    pub fn insert(&mut self, owned: Owned) -> Option<Owned> {
        let (at, old) = match self.position(&owned.entra_id) {
            Some(at) => (at, Some(std::mem::replace(&mut self.users[at], owned))),
            None => {
                // Four billion owned users: more than any tenant holds.
                let Ok(at) = u32::try_from(self.users.len()) else {
                    return None;
                };
                let hash = self.hasher.hash_one(owned.entra_id.as_str());
                let (users, hasher) = (&self.users, &self.hasher);
                self.index.insert_unique(hash, at, |&i| {
                    hasher.hash_one(users[i as usize].entra_id.as_str())
                });
                self.users.push(owned);
                (at as usize, None)
            }
        };
        let before = old.as_ref().and_then(|o| o.target_id.as_deref());
        if before != self.users[at].target_id.as_deref() {
            self.reindex_target(at, before);
        }
        old
    }

    /// The user at `at` found by its target id, no longer by `old`.
    fn reindex_target(&mut self, at: usize, old: Option<&str>) {
        let (users, hasher) = (&self.users, &self.hasher);
        if let Some(old) = old
            && let Ok(entry) = self
                .by_target
                .find_entry(hasher.hash_one(old), |&i| i as usize == at)
        {
            entry.remove();
        }
        if let Some(id) = users[at].target_id.as_deref() {
            self.by_target
                .insert_unique(hasher.hash_one(id), at as u32, |&i| {
                    users[i as usize]
                        .target_id
                        .as_deref()
                        .map_or(0, |id| hasher.hash_one(id))
                });
        }
    }

    /// Where the owned user of `entra_id` is ([`OwnedUsers::at`]).
    pub fn position(&self, entra_id: &str) -> Option<usize> {
        let hash = self.hasher.hash_one(entra_id);
        self.index
            .find(hash, |&i| self.users[i as usize].entra_id == entra_id)
            .map(|&i| i as usize)
    }
}

impl From<Vec<Owned>> for OwnedUsers {
    /// `users`, each with an Entra id of its own (as the state file's key keeps them),
    /// indexed where they are: no user is moved, and the list is cut to fit.
    fn from(mut users: Vec<Owned>) -> OwnedUsers {
        users.shrink_to_fit();
        let mut all = OwnedUsers {
            index: HashTable::with_capacity(users.len()),
            by_target: HashTable::with_capacity(users.len()),
            users,
            sources: Vec::new(),
            hasher: foldhash::fast::RandomState::default(),
        };
        for at in 0..all.users.len() {
            let (users, hasher) = (&all.users, &all.hasher);
            let id = users[at].entra_id.as_str();
            let entry = all.index.entry(
                hasher.hash_one(id),
                |&i| users[i as usize].entra_id == id,
                |&i| hasher.hash_one(users[i as usize].entra_id.as_str()),
            );
            // Should an id come twice, the first is found by it.
            if let hashbrown::hash_table::Entry::Vacant(vacant) = entry {
                vacant.insert(at as u32);
                all.reindex_target(at, None);
            }
        }
        all
    }
}

impl Extend<Owned> for OwnedUsers {
    fn extend<I: IntoIterator<Item = Owned>>(&mut self, users: I) {
        for owned in users {
            self.insert(owned);
        }
    }
}

impl FromIterator<Owned> for OwnedUsers {
    fn from_iter<I: IntoIterator<Item = Owned>>(users: I) -> OwnedUsers {
        let users = users.into_iter();
        let mut all = OwnedUsers::with_capacity(users.size_hint().0);
        all.extend(users);
        all
    }
}

impl<'a> IntoIterator for &'a OwnedUsers {
    type Item = &'a Owned;
    type IntoIter = std::slice::Iter<'a, Owned>;

    fn into_iter(self) -> Self::IntoIter {
        self.users.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(id: &str, key: &str) -> Owned {
        Owned {
            entra_id: id.into(),
            key: key.into(),
            target_id: None,
            hash: None,
            active: true,
        }
    }

    #[test]
    fn each_id_is_found_once_past_the_room_given_and_a_second_insert_replaces() {
        let mut users = OwnedUsers::with_capacity(2);
        for i in 0..1000 {
            assert_eq!(users.insert(owned(&format!("e{i}"), "k")), None);
        }
        let old = users.insert(owned("e7", "renamed"));
        assert_eq!(old.map(|o| o.key), Some("k".to_owned()));
        assert_eq!(users.len(), 1000);
        assert_eq!(users.get("e7").map(|o| o.key.as_str()), Some("renamed"));
        assert!((0..1000).all(|i| users.contains_key(&format!("e{i}"))));
        assert!(users.get("e1000").is_none() && !users.contains_key(""));
        let again: OwnedUsers = users.values().cloned().collect();
        assert_eq!(again.len(), 1000);
        assert_eq!(again.get("e999"), users.get("e999"));
    }

    #[test]
    fn users_are_found_by_target_id_after_a_load_and_after_a_new_link() {
        let linked = |i: usize| Owned {
            target_id: Some(format!("t{i}")),
            ..owned(&format!("e{i}"), "k")
        };
        let mut users = OwnedUsers::from((0..100).map(linked).collect::<Vec<_>>());
        assert_eq!(
            users.owner_of("t42").map(|o| o.entra_id.as_str()),
            Some("e42")
        );
        assert_eq!(users.target_position("t42"), users.position("e42"));
        // Linked anew: found by the new target id only.
        users.insert(Owned {
            target_id: Some("t-new".into()),
            ..owned("e42", "k")
        });
        assert!(users.owner_of("t42").is_none());
        assert_eq!(
            users.owner_of("t-new").map(|o| o.entra_id.as_str()),
            Some("e42")
        );
        assert_eq!(users.at(42).map(|o| o.entra_id.as_str()), Some("e42"));
        assert_eq!(users.len(), 100);
    }
}
