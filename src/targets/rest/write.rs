//! Writing users: what follows a create (the user it made, or the user that was there
//! already), and updates, sent to `[deactivate]` or `[reactivate]` when that is all they
//! do.
//!
//! How a create itself is sent, and when it may be sent again, is in the target's module
//! with the other requests; this holds what the target does with the answers.

use serde_json::{Map, Value as Json, json};

use super::RestTarget;
use super::api::Operation;
use super::json::{json_at, json_at_map, text_of};
use crate::mapping::Record;
use crate::targets::{FieldChange, Target, TargetError, TargetUser};

impl RestTarget {
    /// The user a successful create answered with, else looked up.
    pub(super) async fn created(
        &self,
        op: &Operation,
        body: &Json,
        record: &Record,
    ) -> Result<TargetUser, TargetError> {
        if let Some(path) = &op.user
            && let Some(item @ Json::Object(_)) = json_at(body, path)
        {
            return self.user_from(item);
        }
        if let Some(get) = &self.api.get
            && let Some(id) = json_at(body, &self.api.id).and_then(text_of)
        {
            let url = self.url(get, &json!({ "id": id }))?;
            let (_, answer) = self
                .call(get, &url, None, "reading the created user")
                .await?;
            let item = get
                .user
                .as_deref()
                .map_or(Some(&answer), |p| json_at(&answer, p));
            if let Some(item) = item {
                return self.user_from(item);
            }
        }
        match self.find_by_key(record).await? {
            Some(user) => Ok(user),
            None => Err(TargetError::Malformed(format!(
                "{}: the user was created but cannot be found by `{}`",
                self.client.name(),
                self.mapping.match_key
            ))),
        }
    }

    /// The user with the record's match key, if the record has one.
    pub(super) async fn find_by_key(
        &self,
        record: &Record,
    ) -> Result<Option<TargetUser>, TargetError> {
        match record.get(&self.mapping.match_key) {
            Some(value) => self.find(&self.mapping.match_key, value).await,
            None => Ok(None),
        }
    }

    /// After a create was refused: if the user exists after all, it is updated to the record
    /// and returned; otherwise the refusal stands.
    pub(super) async fn existing(
        &self,
        refusal: TargetError,
        record: &Record,
    ) -> Result<TargetUser, TargetError> {
        let Ok(Some(mut user)) = self.find_by_key(record).await else {
            return Err(refusal);
        };
        let changes: Vec<FieldChange> = self
            .mapping
            .targets
            .iter()
            .enumerate()
            .filter(|(_, target)| !self.mapping.create_only.contains(target))
            .filter_map(|(i, target)| {
                let new = record.value(i)?;
                let old = json_at_map(&user.data, target);
                (!old.is_some_and(|old| self.same(target, old, new))).then(|| FieldChange {
                    field: i,
                    target: target.clone(),
                    old: old.cloned(),
                    new: Some(new.clone()),
                })
            })
            .collect();
        self.update(&user, &changes, record).await?;
        for change in changes {
            if let Some(new) = change.new {
                user.data.insert(change.target, new);
            }
        }
        Ok(user)
    }

    /// Writes the changed fields of a user: through `[deactivate]` when the change only
    /// deactivates and the description has one, else through `[update]`.
    pub(super) async fn write_changes(
        &self,
        user: &TargetUser,
        changes: &[FieldChange],
        record: &Record,
    ) -> Result<(), TargetError> {
        if changes.is_empty() {
            return Ok(());
        }
        let op = match (&self.api.deactivate, &self.api.reactivate) {
            (Some(op), _) if self.only_sets_active(changes, false) => op,
            (_, Some(op)) if self.only_sets_active(changes, true) => op,
            _ => self.operation(&self.api.update, "update")?,
        };
        let changed: Map<String, Json> = changes
            .iter()
            .map(|c| (c.target.clone(), c.new.clone().unwrap_or(Json::Null)))
            .collect();
        // Names are looked up only for what the templates send.
        let changed = if op.uses("changes") {
            self.resolved_fields(changed).await?
        } else {
            changed
        };
        let record = if op.uses("record") {
            self.resolved_fields(record.to_json()).await?
        } else {
            Map::new()
        };
        let vars =
            json!({ "id": user.id, "changes": changed, "record": record, "user": user.data });
        let url = self.url(op, &vars)?;
        let body = self.body(op, &vars)?;
        let what = match op.name.as_str() {
            "deactivate" => "deactivating a user",
            "reactivate" => "reactivating a user",
            _ => "updating a user",
        };
        self.call(op, &url, body.as_ref(), what).await?;
        Ok(())
    }

    /// Whether the only change sets the active field: to its active value when `active`,
    /// else to its inactive value.
    fn only_sets_active(&self, changes: &[FieldChange], active: bool) -> bool {
        match (&self.mapping.active, changes) {
            (Some(field), [only]) => {
                let value = if active {
                    &field.active
                } else {
                    &field.inactive
                };
                only.target == field.field && only.new.as_ref() == Some(value)
            }
            _ => false,
        }
    }
}
