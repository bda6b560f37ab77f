//! Names the mapping writes that the API takes as ids (`[[resolve]]`): each name is looked
//! up once per run, and the id found is sent in its place.
//!
//! Names compare regardless of case (and after undoing HTML escapes when the API escapes),
//! so the cache is keyed by the name in lower case.

use std::sync::{Mutex, MutexGuard};

use serde_json::{Map, Value as Json, json};

use super::RestTarget;
use super::json::{display_path, json_at, text_of, unescape_all};
use crate::diag::shorten;
use crate::targets::TargetError;

impl RestTarget {
    /// `fields` with every name the API wants as an id replaced by its id.
    pub(super) async fn resolved_fields(
        &self,
        mut fields: Map<String, Json>,
    ) -> Result<Map<String, Json>, TargetError> {
        for (index, resolver) in self.api.resolve.iter().enumerate() {
            let Some(name) = fields.remove(&resolver.field) else {
                continue;
            };
            let id = match text_of(&name) {
                None => Json::Null,
                Some(text) => self.resolve(index, &text).await?,
            };
            fields.insert(resolver.send_as.clone(), id);
        }
        Ok(self.shaped(fields))
    }

    /// `fields` as the API takes them: whole numbers written as text sent as numbers where
    /// `[user] integers` says, and the fields of `[user] as_list` sent as lists of one
    /// (an empty list when cleared).
    fn shaped(&self, mut fields: Map<String, Json>) -> Map<String, Json> {
        for field in &self.api.integers {
            if let Some(value) = fields.get_mut(field)
                && let Some(number) = value.as_str().and_then(|t| t.trim().parse::<i64>().ok())
            {
                *value = Json::from(number);
            }
        }
        for (field, list) in &self.api.as_list {
            if let Some(value) = fields.remove(field) {
                let items = if value.is_null() { vec![] } else { vec![value] };
                fields.insert(list.clone(), Json::Array(items));
            }
        }
        fields
    }

    /// The id of the item named `name` (a department), looked up once per run.
    async fn resolve(&self, index: usize, name: &str) -> Result<Json, TargetError> {
        let key = (index, name.to_lowercase());
        if let Some(id) = lock(&self.resolved).get(&key) {
            return Ok(id.clone());
        }
        let Some(resolver) = self.api.resolve.get(index) else {
            return Ok(Json::Null);
        };
        let op = &resolver.operation;
        let url = self.url(op, &json!({ "value": name }))?;
        let what = format!("looking up {} {name:?}", resolver.field);
        let (_, body) = self.call(op, &url, None, &what).await?;
        let Some(Json::Array(items)) = json_at(&body, &op.items) else {
            return Err(TargetError::Malformed(format!(
                "{}: {what}: the answer has no list at `{}`",
                self.client.name(),
                display_path(&op.items)
            )));
        };
        let found = items.iter().find_map(|item| {
            let mut listed = json_at(item, &resolver.name)?.clone();
            if self.api.unescape_html {
                unescape_all(&mut listed);
            }
            let matches = text_of(&listed)?.to_lowercase() == key.1;
            matches
                .then(|| json_at(item, &resolver.id).cloned())
                .flatten()
        });
        match found {
            Some(id) => {
                lock(&self.resolved).insert(key, id.clone());
                Ok(id)
            }
            None => Err(TargetError::Rejected {
                status: 200,
                detail: format!(
                    "{} has no {} named {:?}",
                    self.api.name,
                    resolver.field,
                    shorten(name, 80)
                ),
            }),
        }
    }
}

/// The cache, even after a panic elsewhere left its lock poisoned: it holds only ids found.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
