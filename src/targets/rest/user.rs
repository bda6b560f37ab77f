//! A user object from an answer, read back into the layout the mapping writes.
//!
//! The description's `[user]` section says how: where the id is, fields read from elsewhere
//! in the object, HTML escapes undone, keys renamed to the mapping's names. Reading users
//! this way is what makes an unchanged user compare equal, so a second run writes nothing.

use serde_json::{Map, Value as Json};

use super::RestTarget;
use super::api::Operation;
use super::json::{display_path, is_empty, json_at, json_at_map, text_of, unescape_all};
use crate::diag::shorten;
use crate::targets::{Target, TargetError, TargetUser};

impl RestTarget {
    /// A user object from an answer, in the layout the mapping writes.
    pub(super) fn user_from(&self, item: &Json) -> Result<TargetUser, TargetError> {
        let Json::Object(raw) = item else {
            return Err(TargetError::Malformed(format!(
                "{}: a user is not a JSON object: {}",
                self.client.name(),
                self.client.scrub(&shorten(&item.to_string(), 80))
            )));
        };
        let mut data = raw.clone();
        for (target, path) in &self.api.fields {
            match json_at(item, path).filter(|v| !v.is_null()) {
                Some(value) => data.insert(target.clone(), value.clone()),
                None => data.remove(target),
            };
        }
        for (target, list) in &self.api.as_list {
            match json_at(item, list)
                .and_then(|l| l.get(0))
                .filter(|v| !v.is_null())
            {
                Some(first) => data.insert(target.clone(), first.clone()),
                None => data.remove(target),
            };
        }
        data.retain(|_, v| !is_empty(v));
        if self.api.unescape_html {
            for value in data.values_mut() {
                unescape_all(value);
            }
        }
        if self.api.fold_names {
            self.fold_names(&mut data);
        }
        let id = match json_at_map(&data, &self.api.id).or_else(|| json_at(item, &self.api.id)) {
            Some(Json::String(s)) if !s.is_empty() => s.clone(),
            Some(Json::Number(n)) => n.to_string(),
            _ => {
                return Err(TargetError::Malformed(format!(
                    "{}: a user has no `{}`: {}",
                    self.client.name(),
                    self.api.id,
                    self.client.scrub(&shorten(&item.to_string(), 80))
                )));
            }
        };
        Ok(TargetUser {
            id,
            data,
            etag: None,
        })
    }

    /// Renames keys to the mapping's field names they equal but for case.
    fn fold_names(&self, data: &mut Map<String, Json>) {
        let renames: Vec<(String, String)> = data
            .keys()
            .filter(|key| !self.mapping.targets.contains(key))
            .filter_map(|key| {
                let target = self
                    .mapping
                    .targets
                    .iter()
                    .find(|t| t.eq_ignore_ascii_case(key) && !data.contains_key(*t))?;
                Some((key.clone(), target.clone()))
            })
            .collect();
        for (key, target) in renames {
            if let Some(value) = data.remove(&key) {
                data.insert(target, value);
            }
        }
    }

    /// The users in an answer: an array at `items`, one object, or none.
    pub(super) fn users_in(
        &self,
        body: &Json,
        op: &Operation,
    ) -> Result<Vec<TargetUser>, TargetError> {
        let find = op.name == "find" || op.name.starts_with("find.");
        match json_at(body, &op.items) {
            Some(Json::Array(items)) => items.iter().map(|i| self.user_from(i)).collect(),
            Some(Json::Null) | None if find => Ok(Vec::new()),
            Some(item @ Json::Object(_)) if find => Ok(vec![self.user_from(item)?]),
            _ => Err(TargetError::Malformed(format!(
                "{}: [{}] answer has no list of users at `{}`: {}",
                self.client.name(),
                op.name,
                display_path(&op.items),
                self.client.scrub(&shorten(&body.to_string(), 80))
            ))),
        }
    }

    /// Whether two values of `field` are the same for the target.
    pub(super) fn same(&self, field: &str, a: &Json, b: &Json) -> bool {
        if a == b {
            return true;
        }
        match (text_of(a), text_of(b)) {
            (Some(x), Some(y)) if self.folds_case(field) => x.to_lowercase() == y.to_lowercase(),
            (Some(x), Some(y)) => x == y,
            _ => false,
        }
    }
}
