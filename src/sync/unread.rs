//! Target users listed without their values. A normal full run compares an owned user only
//! when its record changed in Entra, and then with the record the state keeps of the last
//! write (as a delta run does), so the listing keeps no values for the target users the
//! state keeps a record for: at a million users that is most of the listing's memory. Once
//! Entra is read, the few the plan will compare or rewrite get the state's record here, with
//! their match key and active flag as listed; one without a record that can be read is
//! looked up in the target by its key.

use foldhash::HashSet as FastSet;

use super::error::SyncError;
use super::listing::find_all;
use super::plan::{Listed, key_as_compared};
use super::read::Read;
use crate::config::Config;
use crate::mapping::Mapping;
use crate::state::{OwnedUsers, WrittenReader};
use crate::targets::Target;

/// Whether the listing may leave out a target user's values: the run is a normal full run
/// (not a reconciliation) with one match key, and the state's records of the last writes
/// can be trusted (`records_kept`, [`crate::state::State::keep_written_for`]). Then those
/// of the users the state links to an owned user it wrote are left out.
pub(super) fn may_leave_out(mapping: &Mapping, reconcile: bool, records_kept: bool) -> bool {
    records_kept && !reconcile && mapping.match_keys().len() == 1
}

/// Whether the values of the target user of `id` are left out of the listing: an owned
/// user's, written at least once.
pub(super) fn left_out(owned: &OwnedUsers, id: &str) -> bool {
    owned.owner_of(id).is_some_and(|o| o.hash.is_some())
}

/// The values of the target users in `listed` that the plan of `read` compares or
/// rewrites: the target users of the users read with their record (and any whose match key
/// one of them has), and those of owned users not read (leavers). From the records in the
/// state file; else looked up in the target by key.
pub(super) async fn fill(
    (config, mapping): (&Config, &Mapping),
    (read, listed): (&Read<'_>, &mut [Listed]),
    owned: &OwnedUsers,
    target: &dyn Target,
    fold_key: bool,
) -> Result<(), SyncError> {
    let wanted = wanted(read, listed, owned, fold_key);
    if wanted.is_empty() {
        return Ok(());
    }
    let owners: Vec<&str> = wanted
        .iter()
        .filter_map(|&at| owned.owner_of(&listed[at].id))
        .map(|o| o.entra_id.as_str())
        .collect();
    let kept = match WrittenReader::open(&config.sync.state)? {
        Some(reader) => reader.written(owners)?,
        None => Default::default(),
    };
    let (mut keys, mut unfilled) = (Vec::new(), foldhash::HashMap::default());
    for &at in &wanted {
        let user = &mut listed[at];
        let record = owned
            .owner_of(&user.id)
            .and_then(|o| kept.get(&o.entra_id))
            .and_then(|text| mapping.unpack(text));
        match record {
            Some(record) => user.fill(mapping, record),
            None => {
                keys.extend(user.key.clone());
                unfilled.insert(user.id.clone(), at);
            }
        }
    }
    if keys.is_empty() {
        return Ok(());
    }
    tracing::debug!(
        users = keys.len(),
        "looking up target users the state keeps no record for"
    );
    let found = find_all(config, mapping, target, keys).await?;
    for user in found {
        if let Some(&at) = unfilled.get(&user.id) {
            listed[at] = user;
        }
    }
    Ok(())
}

/// The positions in `listed` of the target users without values the plan needs.
fn wanted(read: &Read<'_>, listed: &[Listed], owned: &OwnedUsers, fold_key: bool) -> Vec<usize> {
    let mut targets: FastSet<&str> = FastSet::default();
    let mut keys: FastSet<String> = FastSet::default();
    for user in &read.users {
        let Ok(mapped) = &user.mapped else { continue };
        if !mapped.has_record() {
            continue;
        }
        if let Some(id) = owned
            .get(&user.entra_id)
            .and_then(|o| o.target_id.as_deref())
        {
            targets.insert(id);
        }
        if let Some(key) = &mapped.key {
            keys.insert(key_as_compared(key, fold_key).into_owned());
        }
    }
    // Owned users neither read nor quiet are leavers: the plan rewrites their target users.
    let read_owned = read
        .users
        .iter()
        .filter(|u| owned.contains_key(&u.entra_id))
        .count();
    if read_owned + read.quiet.len() < owned.len() {
        let present: FastSet<&str> = read.users.iter().map(|u| u.entra_id.as_str()).collect();
        targets.extend(
            owned
                .values()
                .filter(|o| {
                    !present.contains(o.entra_id.as_str()) && !read.quiet.contains(&o.entra_id)
                })
                .filter_map(|o| o.target_id.as_deref()),
        );
    }
    listed
        .iter()
        .enumerate()
        .filter(|(_, user)| !user.has_values())
        .filter(|(_, user)| {
            targets.contains(user.id.as_str())
                || (!keys.is_empty()
                    && user
                        .key
                        .as_ref()
                        .is_some_and(|k| keys.contains(key_as_compared(k, fold_key).as_ref())))
        })
        .map(|(at, _)| at)
        .collect()
}
