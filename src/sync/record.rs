//! The record step: how each completed write is counted, and what the state file remembers
//! of it.

use std::time::Instant;

use super::apply::{Action, Answered, Broken, Writer, Written};
use super::outcome::{Failure, Outcome};
use super::plan::{self, UpdateKind};
use crate::state::{Owned, Remembered};
use crate::targets::TargetError;

impl Writer<'_> {
    /// Notes how a write went: counted, what the state should remember pushed to `record`,
    /// and the write put back in the outcome's plan for the report (a create only counted,
    /// when the writer does not keep creates). A create, when the mapping names users, is
    /// also given back as its Entra id and, once made, its target id
    /// ([`Writer::made`] keeps it).
    pub(super) fn note(
        &self,
        written: Result<Written, Broken>,
        outcome: &mut Outcome,
        record: &mut Vec<Remembered>,
    ) -> Option<Answered> {
        if let Ok(mut ended) = self.ended.lock() {
            *ended = Some(Instant::now());
        }
        let (action, result) = match written {
            Ok((action, result)) => (action, result.map_err(|e| self.failed(e, outcome))),
            Err((action, panic)) => (action, Err(format!("the write stopped: {panic}"))),
        };
        // Only a mapping that names users needs the ids of the users created.
        let tells = self.mapping.user_refs().next().is_some();
        let mut made = None;
        match result {
            Ok(target_id) => {
                tracing::debug!(user = action.label(), action = action.name(), "written");
                if tells && let (Action::Create(_), Some(id)) = (&action, &target_id) {
                    made = Some(id.clone());
                }
                let (owned, counter) = self.owned_after(&action, target_id, outcome);
                *counter += 1;
                if let Some(owned) = owned {
                    record.push(owned);
                }
            }
            Err(error) => {
                tracing::warn!(
                    user = action.label(), action = action.name(), %error,
                    "write failed"
                );
                outcome.failures.push(Failure {
                    user: action.label().to_owned(),
                    action: action.name(),
                    error,
                });
                outcome.counts.failed += 1;
            }
        }
        let answered = match &action {
            Action::Create(c) if tells => Some((c.entra_id.clone(), made)),
            _ => None,
        };
        match action {
            Action::Create(c) if self.keep_creates => outcome.plan.creates.push(c),
            Action::Create(_) => outcome.creates_let_go += 1,
            Action::Update(u) => outcome.plan.updates.push(*u),
        }
        answered
    }

    /// Keeps the target id of a user created in this run, for the references to it.
    pub(super) fn made(answered: Option<Answered>, outcome: &mut Outcome) {
        if let Some((entra_id, Some(target_id))) = answered {
            outcome.created_ids.insert(entra_id, target_id);
        }
    }

    /// What a target's refusal of a write means for the run (refused credentials stop it),
    /// and its message.
    fn failed(&self, error: TargetError, outcome: &mut Outcome) -> String {
        if error.stops_run() {
            self.stop.stop();
        }
        if let TargetError::Unauthorized { status, .. } = &error {
            outcome.refused_credentials.get_or_insert(*status);
        }
        if matches!(error, TargetError::SignIn { .. }) {
            outcome.signed_out = true;
        }
        error.to_string()
    }

    /// What the state should remember after a write (with the record the target now
    /// holds: the one created, or the one updated with the changes sent), and the count it
    /// adds to.
    fn owned_after<'o>(
        &self,
        action: &Action,
        target_id: Option<String>,
        outcome: &'o mut Outcome,
    ) -> (Option<Remembered>, &'o mut i64) {
        match action {
            Action::Create(c) => (
                target_id.map(|id| Remembered {
                    owned: Owned {
                        entra_id: c.entra_id.clone(),
                        key: c.key.clone(),
                        target_id: Some(id),
                        hash: Some(c.hash.clone()),
                        active: c.enabled,
                    },
                    written: Some(c.packed().text().into()),
                }),
                &mut outcome.counts.created,
            ),
            Action::Update(u) => {
                let owned = Owned {
                    entra_id: u.entra_id.clone(),
                    key: u.key.clone(),
                    target_id: Some(u.user.id.clone()),
                    hash: Some(
                        u.hash
                            .clone()
                            .unwrap_or_else(|| plan::record_hash(self.mapping, &u.record)),
                    ),
                    active: u.kind != UpdateKind::Deactivate,
                };
                let mut now = u.user.record();
                for change in &u.changes {
                    now.set(change.field, change.new.clone());
                }
                let owned = Remembered {
                    owned,
                    written: Some(now.pack().text().into()),
                };
                let counter = match u.kind {
                    UpdateKind::Update => &mut outcome.counts.updated,
                    UpdateKind::Deactivate => &mut outcome.counts.deactivated,
                    UpdateKind::Reactivate => &mut outcome.counts.reactivated,
                };
                (Some(owned), counter)
            }
        }
    }
}
