//! The target's side of a read: its users listed beside the Graph pull (or, for a target
//! that cannot list, looked up by key), the state's records given to the users listed
//! without their values, and the entities the mapping names.

use std::collections::HashMap;

use futures_util::StreamExt;

use super::plan::{Catalogue, Listed, SourceUser};
use super::read::Expected;
use super::stop::StopSignal;
use crate::config::Config;
use crate::mapping::Mapping;
use crate::state::OwnedUsers;
use crate::targets::{RawUser, Target, TargetError, TargetUser};

/// The target's users, listed beside the read: set once the listing is complete, or ended
/// without them when it failed (the read then stops waiting for them).
#[derive(Debug, Default)]
pub struct Listing {
    users: std::sync::OnceLock<Vec<Listed>>,
    ended: StopSignal,
}

impl Listing {
    /// A listing complete from the start.
    pub fn complete(users: Vec<Listed>) -> Listing {
        let listing = Listing::default();
        listing.set(users);
        listing
    }

    /// The listing is complete.
    pub(super) fn set(&self, users: Vec<Listed>) {
        let _ = self.users.set(users);
        self.ended.stop();
    }

    /// The listing ended without its users (it failed, or the read did).
    pub(super) fn end(&self) {
        self.ended.stop();
    }

    /// The users, once complete.
    pub(super) fn get(&self) -> Option<&[Listed]> {
        self.users.get().map(Vec::as_slice)
    }

    /// The users, once the listing has ended; `None` if it failed.
    pub(super) async fn wait(&self) -> Option<&[Listed]> {
        self.ended.wait().await;
        self.get()
    }

    /// The users, when the listing completed.
    pub(super) fn into_users(self) -> Option<Vec<Listed>> {
        self.users.into_inner()
    }
}

/// Every target user, kept flat as its page arrives; a listing past `expected.limit` is
/// taken to run away and fails. The values of the users `unread` names are not kept (where
/// the target's text is read in place): the run reads them from the state's records if it
/// needs them ([`Listed::has_values`]).
pub(super) async fn list_target(
    mapping: &Mapping,
    target: &dyn Target,
    expected: Expected,
    unread: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Vec<Listed>, TargetError> {
    let mut listed = Vec::with_capacity(expected.users);
    let most = expected.limit.map(|limit| limit.most());
    let too_many = StopSignal::default();
    let mut keep = |user| {
        listed.push(user);
        if most.is_some_and(|most| listed.len() as u64 > most) {
            too_many.stop();
        }
    };
    // Read in place where the target offers its users' text, else parsed whole.
    let listing = async {
        let mut raw = |user: RawUser<'_>| {
            let values = !unread(&user.id);
            keep(Listed::of_raw(mapping, user, values));
        };
        match target.list_raw(&mut raw).await {
            Some(done) => done,
            None => {
                let mut parsed = |user: TargetUser| {
                    let values = !unread(&user.id);
                    let listed = Listed::of(mapping, user);
                    keep(if values {
                        listed
                    } else {
                        listed.without_values()
                    });
                };
                target.list_each(&mut parsed).await
            }
        }
    };
    // A listing that ends on the page that passed the bound is judged the same.
    let done = tokio::select! {
        done = listing => done,
        () = too_many.wait() => Ok(()),
    };
    if let Some(limit) = expected.limit.filter(|_| too_many.stopped()) {
        return Err(TargetError::Malformed(format!(
            "the user list went on past {} users, the most allowed after the {} users of the \
             last complete run: the paging is taken to run away; if the target really grew \
             so, run once with --allow-growth",
            limit.most(),
            limit.last
        )));
    }
    done?;
    Ok(listed)
}

/// For a target that cannot list its users (`list = false`): the target users this run
/// needs, looked up one by one by match key — users whose record changed since it was last
/// written (or never was), and owned users whose Entra user is gone. Users written
/// unchanged are not looked up at all, unless the run reconciles (`every`).
pub(super) async fn look_up(
    config: &Config,
    mapping: &Mapping,
    target: &dyn Target,
    source: &[SourceUser],
    owned: &OwnedUsers,
    every: bool,
) -> Result<Vec<Listed>, TargetError> {
    let present: std::collections::HashSet<&str> =
        source.iter().map(|s| s.entra_id.as_str()).collect();
    let mut keys: Vec<serde_json::Value> = Vec::new();
    for user in source {
        let Ok(record) = &user.mapped else { continue };
        let Some(key) = &record.key else {
            continue;
        };
        let unchanged = !every
            && owned.get(&user.entra_id).is_some_and(|o| {
                o.target_id.is_some() && o.hash.as_deref() == Some(record.hash.as_str())
            });
        if !unchanged {
            keys.push(key.clone());
        }
    }
    keys.extend(
        owned
            .values()
            .filter(|o| o.target_id.is_some() && !present.contains(o.entra_id.as_str()))
            .map(|o| serde_json::Value::String(o.key.clone())),
    );
    find_all(config, mapping, target, keys).await
}

/// The target users found by match key for each of `keys`, each once.
pub(super) async fn find_all(
    config: &Config,
    mapping: &Mapping,
    target: &dyn Target,
    keys: Vec<serde_json::Value>,
) -> Result<Vec<Listed>, TargetError> {
    let key_field = mapping.match_key();
    let found: Vec<Result<Option<TargetUser>, TargetError>> = futures_util::stream::iter(keys)
        .map(|key| async move { target.find(key_field, &key).await })
        .buffer_unordered(config.sync.concurrency.max(1))
        .collect()
        .await;
    let mut users: HashMap<String, TargetUser> = HashMap::new();
    for user in found {
        if let Some(user) = user? {
            users.insert(user.id.clone(), user);
        }
    }
    Ok(users
        .into_values()
        .map(|u| Listed::of(mapping, u))
        .collect())
}

/// For a run over some users ([`super::changes`]): the target users its plan needs, looked
/// up one by one — each changed user's by its key (and by the key the state last wrote, when
/// that differs: a renamed user), and the target user each owned user in `gone` owns. Users
/// the state remembers exactly as they are now are not looked up, unless the run
/// reconciles (`every`), nor are those in `known` (planned against the record the state
/// keeps, [`remembered`]).
pub(super) async fn look_up_some(
    config: &Config,
    mapping: &Mapping,
    target: &dyn Target,
    (source, gone): (&[SourceUser], &[String]),
    (owned, known): (&OwnedUsers, &foldhash::HashSet<String>),
    every: bool,
) -> Result<Vec<Listed>, TargetError> {
    let mut keys: Vec<serde_json::Value> = Vec::new();
    for user in source.iter().filter(|u| !known.contains(&u.entra_id)) {
        let Ok(record) = &user.mapped else { continue };
        let known = owned.get(&user.entra_id).filter(|o| o.target_id.is_some());
        if !every && known.is_some_and(|o| o.hash.as_deref() == Some(record.hash.as_str())) {
            continue;
        }
        if let Some(key) = &record.key {
            keys.push(key.clone());
        }
        if let Some(o) = known
            && record.key.as_ref().and_then(|k| k.as_str()) != Some(o.key.as_str())
        {
            keys.push(serde_json::Value::String(o.key.clone()));
        }
    }
    keys.extend(
        gone.iter()
            .filter(|id| !known.contains(*id))
            .filter_map(|id| owned.get(id))
            .filter(|o| o.target_id.is_some())
            .map(|o| serde_json::Value::String(o.key.clone())),
    );
    find_all(config, mapping, target, keys).await
}

/// The Entra users of a run over some users whose target user the state can vouch for, by
/// Entra id: owned, with a target id, the match key the state last wrote, and the record
/// the target holds after that write ([`crate::state::Remembered`]), asked of the state for
/// the ids returned. Users whose record the state remembers as it is now need no target user (the plan leaves them unchanged), and a renamed user (a new
/// key) is looked up, as is every user when the run compares live values (`every`).
pub(super) fn vouched_for<'s>(
    (source, gone): (&'s [SourceUser], &'s [String]),
    owned: &OwnedUsers,
    fold_key: bool,
    every: bool,
) -> Vec<&'s str> {
    if every {
        return Vec::new();
    }
    let changed = source.iter().filter_map(|user| {
        let record = user.mapped.as_ref().ok()?;
        let o = owned
            .get(&user.entra_id)
            .filter(|o| o.target_id.is_some())?;
        let key = record.key.as_ref()?;
        let same_key = crate::sync::plan::key_as_compared(key, fold_key) == o.key.as_str();
        let unchanged = o.hash.as_deref() == Some(record.hash.as_str());
        (same_key && !unchanged).then_some(user.entra_id.as_str())
    });
    let left = gone
        .iter()
        .filter(|id| owned.get(id).is_some_and(|o| o.target_id.is_some()))
        .map(String::as_str);
    changed.chain(left).collect()
}

/// The target users of `ids` as the state remembers them ([`Listed::remembered`]), from the
/// `written` records; ids without one (or with one this mapping cannot read) are left out.
pub(super) fn remembered(
    mapping: &Mapping,
    owned: &OwnedUsers,
    written: &foldhash::HashMap<String, String>,
) -> Vec<(String, Listed)> {
    written
        .iter()
        .filter_map(|(entra_id, text)| {
            let target_id = owned.get(entra_id)?.target_id.clone()?;
            let record = mapping.unpack(text)?;
            Some((
                entra_id.clone(),
                Listed::remembered(mapping, target_id, &record),
            ))
        })
        .collect()
}

/// The target users looked up, and those the state remembers (`from_state`) that were
/// not: a target user found live is planned against as found.
pub(super) fn with_remembered(
    mut found: Vec<Listed>,
    from_state: Vec<(String, Listed)>,
) -> Vec<Listed> {
    let live: foldhash::HashSet<String> = found.iter().map(|u| u.id.clone()).collect();
    found.extend(
        from_state
            .into_iter()
            .map(|(_, user)| user)
            .filter(|user| !live.contains(&user.id)),
    );
    found
}

/// The target's entities of every kind the mapping's references name, each kind listed
/// once.
pub async fn list_entities(
    mapping: &Mapping,
    target: &dyn Target,
) -> Result<Catalogue, TargetError> {
    let mut catalogue = Catalogue::default();
    let mut kinds: Vec<&str> = mapping
        .entity_refs()
        .map(|(_, e)| e.kind.as_str())
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    for kind in kinds {
        let entities = target.list_entities(kind).await?;
        tracing::debug!(kind, count = entities.len(), "listed");
        catalogue.add(kind, entities);
    }
    Ok(catalogue)
}
