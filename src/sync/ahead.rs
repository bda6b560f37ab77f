//! Updates planned ahead: in a delta run, the users the round hands over while it is still
//! read ([`crate::graph::delta::Ready`]) are planned at once, each against the record the
//! state keeps of its last write, and their writes go out while later pages are read.
//!
//! Only a user whose plan cannot depend on the rest of the round is planned ahead: owned,
//! with a target id, under the match key the state last wrote (and Entra keeps that key
//! unique, so no other user of the round can share it), with a record kept for it (or none
//! needed: its record is the one last written), and every reference it makes resolved
//! without the round ([`plan::resolved_alone`]). Every other user waits for the end of the
//! read and the plan of the rest, as do deactivations, which the guard judges with the
//! whole plan.

use foldhash::HashSet as FastSet;
use serde_json::Value as Json;

use super::plan::{self, Catalogue, Listed, Plan, PlanOptions, Prior, SourceUser, UpdateKind};
use super::read::source_user;
use crate::mapping::{Context, Mapping};
use crate::state::OwnedUsers;

/// What planning ahead made of the users handed over so far.
#[derive(Debug, Default)]
pub(super) struct Ahead {
    /// The plan of the users planned ahead, without the writes sent at once: what it left
    /// unchanged, remembers, skipped; the deactivations it holds for the guard.
    pub(super) plan: Plan,
    /// The Entra ids planned ahead.
    pub(super) ids: FastSet<String>,
    /// The users left to the end of the read, as Graph returned them.
    pub(super) later: Vec<Json>,
}

/// How the users of one run are planned ahead.
pub(super) struct Planner<'a> {
    pub(super) mapping: &'a Mapping,
    pub(super) owned: &'a OwnedUsers,
    /// The run's options, for a partial view of the target.
    pub(super) options: &'a PlanOptions,
    /// Whether the target compares the match key without case.
    pub(super) fold_key: bool,
    pub(super) ctx: Context<'a>,
}

impl Planner<'_> {
    /// The Entra ids among `users` (as Graph returned them) whose last written record is
    /// needed to plan them ahead.
    pub(super) fn wanted(&self, users: &[SourceUser]) -> Vec<String> {
        users
            .iter()
            .filter(|u| self.owned_alike(u).is_some_and(|unchanged| !unchanged))
            .map(|u| u.entra_id.clone())
            .collect()
    }

    /// `users` mapped.
    pub(super) fn map(&self, users: &[Json]) -> Vec<SourceUser> {
        users
            .iter()
            .map(|user| source_user(self.mapping, user, &self.ctx))
            .collect()
    }

    /// For an owned user with a target id under the key the state last wrote: whether its
    /// record is the one last written. `None` for any other user.
    fn owned_alike(&self, user: &SourceUser) -> Option<bool> {
        let mapped = user.mapped.as_ref().ok()?;
        let o = self.owned.get(&user.entra_id)?;
        o.target_id.as_ref()?;
        let key = mapped.key.as_ref()?;
        (plan::key_as_compared(key, self.fold_key) == o.key.as_str())
            .then(|| o.hash.as_deref() == Some(mapped.hash.as_str()))
    }

    /// Plans ahead those of `users` (as Graph returned them, and mapped) that can be, with
    /// `written`, the records kept for them by Entra id; adds what it decides to `ahead`
    /// and returns the updates to send now. The others are left in `ahead.later`.
    pub(super) fn plan(
        &self,
        (raw, users): (Vec<Json>, Vec<SourceUser>),
        written: &foldhash::HashMap<String, String>,
        catalogue: &Catalogue,
        ahead: &mut Ahead,
    ) -> Vec<plan::Update> {
        let mut now: Vec<SourceUser> = Vec::new();
        let mut listed: Vec<Listed> = Vec::new();
        let mut small = OwnedUsers::default();
        for (json, user) in raw.into_iter().zip(users) {
            let ready = match (self.owned_alike(&user), &user.mapped) {
                (Some(true), _) => true,
                (Some(false), Ok(mapped)) => {
                    let kept = written
                        .get(&user.entra_id)
                        .and_then(|t| self.mapping.unpack(t));
                    let alone = mapped.record().is_some_and(|r| {
                        plan::resolved_alone(self.mapping, &r, self.owned, catalogue)
                    });
                    match (kept, self.owned.get(&user.entra_id)) {
                        (Some(kept), Some(o)) if alone => {
                            let id = o.target_id.clone().unwrap_or_default();
                            listed.push(Listed::remembered(self.mapping, id, &kept));
                            true
                        }
                        _ => false,
                    }
                }
                _ => false,
            };
            // A user handed over twice is planned once here; the round reports it again.
            if !ready || !ahead.ids.insert(user.entra_id.clone()) {
                ahead.later.push(json);
                continue;
            }
            if let Some(o) = self.owned.get(&user.entra_id) {
                small.insert(o.clone());
            }
            now.push(user);
        }
        if now.is_empty() {
            return Vec::new();
        }
        // The users the records name, for their target ids.
        for user in &now {
            let Some(record) = user.mapped.as_ref().ok().and_then(plan::Mapped::record) else {
                continue;
            };
            for i in self.mapping.user_refs() {
                if let Some(Json::String(id)) = record.value(i)
                    && let Some(o) = self.owned.get(id)
                {
                    small.insert(o.clone());
                }
            }
        }
        let only: FastSet<String> = now.iter().map(|u| u.entra_id.clone()).collect();
        let mut made = plan::plan_after(
            self.mapping,
            now,
            &listed,
            &small,
            self.options.clone(),
            &Prior {
                entities: catalogue,
                early: &[],
                only: Some(&only),
                quiet: None,
            },
        );
        // The users the records name are the plan's owned users outside `only`.
        made.unchanged -= plan::untouched(&small, &only);
        let (held, send): (Vec<_>, Vec<_>) = std::mem::take(&mut made.updates)
            .into_iter()
            .partition(|u| u.kind == UpdateKind::Deactivate);
        add(&mut ahead.plan, made);
        ahead.plan.updates.extend(held);
        send
    }
}

/// Adds what one plan made ahead to `into`, the updates aside.
fn add(into: &mut Plan, made: Plan) {
    into.creates.extend(made.creates);
    into.unchanged += made.unchanged;
    into.remember.extend(made.remember);
    into.skipped.extend(made.skipped);
    into.forget.extend(made.forget);
    into.kept_by_config += made.kept_by_config;
    into.unresolved.extend(made.unresolved);
    into.entities.extend(made.entities);
    into.matched.by_state += made.matched.by_state;
    for (key, users) in made.matched.by_key {
        match into.matched.by_key.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += users,
            None => into.matched.by_key.push((key, users)),
        }
    }
    into.drift.extend(made.drift);
    for note in made.notes {
        if !into.notes.contains(&note) {
            into.notes.push(note);
        }
    }
}

/// The final plan with what was planned ahead: `ahead`'s plan added (its held deactivations
/// among the updates, unless the final plan has the user again), and the users planned
/// ahead no longer counted unchanged as users the final plan left out (`only`, its users).
pub(super) fn merge(
    final_plan: &mut Plan,
    ahead: Ahead,
    owned: &OwnedUsers,
    only: &FastSet<String>,
) {
    let outside = ahead
        .ids
        .iter()
        .filter(|id| !only.contains(*id))
        .filter(|id| owned.get(id).is_some_and(|o| o.target_id.is_some()))
        .count();
    final_plan.unchanged = final_plan.unchanged.saturating_sub(outside);
    let mut made = ahead.plan;
    let held: Vec<_> = std::mem::take(&mut made.updates)
        .into_iter()
        .filter(|u| !only.contains(&u.entra_id))
        .collect();
    final_plan.updates.extend(held);
    add(final_plan, made);
}
