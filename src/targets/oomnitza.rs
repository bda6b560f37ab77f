//! Oomnitza: users written in batches through the bulk API the Oomnitza connector uses, and
//! read through Oomnitza's REST API v3.
//!
//! A batch is one upload: `POST /api/v3/bulk` with `{"records": [...], "sync_field": …,
//! "portion": <uuid>, "data_type": "users", "insert_only": …, "update_only": …}`, then
//! `POST /api/v3/bulk/<portion>/finalize`, which applies the portion's records, matching
//! existing users on the sync field (the mapping's match key). Creates carry the whole
//! record; updates carry the sync field and the changed fields only, so a field written on
//! create only (POSITION, PERMISSIONS_ID) is never overwritten and a deactivation is just
//! the mapped status field. A batch of updates only is sent with `update_only`, so a user
//! deleted in Oomnitza meanwhile is not made again; a batch with creates is an upsert, so a
//! create that finds the user already there updates it. Every request carries the API
//! token in the `Authorization2` header (or the header the config names).
//!
//! Nothing is applied before the finalize, and a resent upload lands in the same portion, so
//! uploads and finalizes are retried like idempotent requests on 429, 5xx and broken
//! connections (resending a record to the same portion yields the same user).
//!
//! What is not known from Oomnitza's public documentation and is assumed here, to be
//! checked against a real instance: that finalizing a portion twice does not apply it
//! twice; that the finalize answer lists records it refused under `errors` as
//! `{"value": <sync field value>, "error": <message>}`; that `GET /api/v3/users` (with the
//! documented `limit`, `skip` and `filter` parameters and the `Authorization2` header)
//! answers a JSON array of users keyed by the same field names the bulk API takes (keys
//! that differ only in case are read as the mapping's names); and that the sync field's
//! value and e-mail addresses match regardless of case. A user's id here is its sync field
//! value, since that is what the bulk API matches on.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{Map, Value as Json, json};

use super::http::policy_of;
use super::rest::{self, RestTarget, text_of};
use super::{FieldChange, Target, TargetError, TargetStats, TargetUser, Write};
use crate::config::TargetConfig;
use crate::http::RetryPolicy;
use crate::mapping::{Mapping, Record};

/// Oomnitza's users: listed and found through API v3, written through bulk uploads.
#[derive(Debug)]
pub struct OomnitzaTarget {
    reader: RestTarget,
    sync_field: String,
    batch_size: usize,
}

/// How Oomnitza's users are read, for a sync field.
fn reading(sync_field: &str) -> String {
    let quoted = toml::Value::String(sync_field.to_string()).to_string();
    format!(
        r#"name = "Oomnitza"

[user]
id = {quoted}
folds_case = [{quoted}, "EMAIL"]
fold_names = true

[list]
url = "/api/v3/users?limit={{{{limit}}}}&skip={{{{offset}}}}"
paging = "offset"
items = ""

[find]
url = "/api/v3/users?filter=({{{{field}}}} eq '{{{{odata value}}}}')&limit=2"
items = ""
"#
    )
}

impl OomnitzaTarget {
    /// The Oomnitza at `config`'s URL, with users laid out by `mapping` and matched on its
    /// match key (the config's `sync_field` when it has one).
    pub fn new(config: &TargetConfig, mapping: &Mapping) -> Result<OomnitzaTarget, TargetError> {
        Self::with_policy(config, mapping, policy_of(config))
    }

    /// Like [`OomnitzaTarget::new`] with an explicit retry policy (tests shorten the waits).
    pub fn with_policy(
        config: &TargetConfig,
        mapping: &Mapping,
        policy: RetryPolicy,
    ) -> Result<OomnitzaTarget, TargetError> {
        let sync_field = mapping.match_key().to_string();
        let text = reading(&sync_field);
        let reader = RestTarget::reader(&text, "Oomnitza (built in)", config, mapping, policy)?;
        Ok(OomnitzaTarget {
            reader,
            sync_field,
            batch_size: config.batch_size.max(1),
        })
    }

    /// The record a write uploads, and the sync field value it is matched on.
    fn record_of(&self, write: &Write) -> Result<(String, Json), TargetError> {
        let (key, record) = match write {
            Write::Create { record } => {
                let fields = record.to_json();
                let key = fields.get(&self.sync_field).and_then(text_of);
                (key, fields)
            }
            Write::Update {
                user,
                changes,
                record,
            } => {
                // Oomnitza matches on the value it holds, whatever its case in Entra.
                let key = user
                    .data
                    .get(&self.sync_field)
                    .and_then(text_of)
                    .or_else(|| (!user.id.is_empty()).then(|| user.id.clone()))
                    .or_else(|| record.get(&self.sync_field).and_then(text_of));
                let mut fields = Map::new();
                if let Some(key) = &key {
                    fields.insert(self.sync_field.clone(), Json::String(key.clone()));
                }
                for change in changes {
                    fields.insert(
                        change.target.clone(),
                        change.new.clone().unwrap_or(Json::Null),
                    );
                }
                (key, fields)
            }
        };
        match key.filter(|k| !k.is_empty()) {
            Some(key) => Ok((key, Json::Object(record))),
            None => Err(TargetError::Rejected {
                status: 0,
                detail: format!("the record has no {} to match it on", self.sync_field),
            }),
        }
    }

    /// One upload of at most a batch of writes: for each, its sync field value or why it
    /// failed.
    async fn upload(&self, writes: &[Write]) -> Vec<Result<Option<String>, TargetError>> {
        let prepared: Vec<Result<(String, Json), TargetError>> =
            writes.iter().map(|w| self.record_of(w)).collect();
        let records: Vec<&Json> = prepared
            .iter()
            .filter_map(|p| p.as_ref().ok().map(|(_, r)| r))
            .collect();
        if records.is_empty() {
            return prepared.into_iter().map(|p| p.map(|_| None)).collect();
        }
        let update_only = writes.iter().all(|w| matches!(w, Write::Update { .. }));
        let (status, refused) = match self.send_portion(&records, update_only).await {
            Ok(outcome) => outcome,
            Err(error) => {
                return prepared
                    .into_iter()
                    .map(|p| p.and(Err(error.clone())))
                    .collect();
            }
        };
        prepared
            .into_iter()
            .map(|p| {
                let (key, _) = p?;
                match refused.get(&key.to_lowercase()) {
                    Some(detail) => Err(TargetError::Rejected {
                        status,
                        detail: detail.clone(),
                    }),
                    None => Ok(Some(key)),
                }
            })
            .collect()
    }

    /// Uploads records as one portion and finalizes it: the finalize's status, and the
    /// records it refused (sync field value in lower case → why).
    async fn send_portion(
        &self,
        records: &[&Json],
        update_only: bool,
    ) -> Result<(u16, HashMap<String, String>), TargetError> {
        let client = self.reader.client();
        let portion = uuid::Uuid::new_v4().to_string();
        let body = json!({
            "records": records,
            "sync_field": self.sync_field,
            "portion": portion,
            "data_type": "users",
            "insert_only": false,
            "update_only": update_only,
        });
        let url = client.url("/api/v3/bulk")?;
        let what = format!("uploading {} users", records.len());
        rest::send(client, Method::POST, &url, Some(&body), &what).await?;
        let url = client.url(&format!("/api/v3/bulk/{portion}/finalize"))?;
        let what = "finalizing an upload";
        let answer = rest::send(client, Method::POST, &url, Some(&json!({})), what).await?;
        let mut refused = HashMap::new();
        if let Some(Json::Array(errors)) = answer.body.get("errors") {
            for error in errors {
                let key = error.get("value").and_then(text_of).unwrap_or_default();
                let detail = error
                    .get("error")
                    .and_then(text_of)
                    .unwrap_or_else(|| "refused".to_string());
                refused.insert(key.to_lowercase(), client.scrub(&detail));
            }
        }
        Ok((answer.status, refused))
    }
}

#[async_trait::async_trait]
impl Target for OomnitzaTarget {
    fn describe(&self) -> String {
        self.reader.describe()
    }

    fn folds_case(&self, field: &str) -> bool {
        self.reader.folds_case(field)
    }

    async fn list(&self) -> Result<Vec<TargetUser>, TargetError> {
        self.reader.list().await
    }

    async fn find(&self, field: &str, value: &Json) -> Result<Option<TargetUser>, TargetError> {
        self.reader.find(field, value).await
    }

    /// A one-record upload; after a failure the user is looked up, since the upload may
    /// have been applied before the answer was lost.
    async fn create(&self, record: &Record) -> Result<TargetUser, TargetError> {
        let write = Write::Create {
            record: record.clone(),
        };
        let outcome = self.write_batch(std::slice::from_ref(&write)).await.pop();
        match outcome {
            Some(Ok(key)) => Ok(TargetUser {
                id: key.unwrap_or_default(),
                data: record.to_json(),
                etag: None,
            }),
            Some(Err(error @ TargetError::Unavailable(_))) => match record.get(&self.sync_field) {
                Some(value) => match self.find(&self.sync_field, value).await {
                    Ok(Some(user)) => Ok(user),
                    _ => Err(error),
                },
                None => Err(error),
            },
            Some(Err(error)) => Err(error),
            None => Err(TargetError::Malformed(
                "no outcome for the upload".to_string(),
            )),
        }
    }

    async fn update(
        &self,
        user: &TargetUser,
        changes: &[FieldChange],
        record: &Record,
    ) -> Result<(), TargetError> {
        if changes.is_empty() {
            return Ok(());
        }
        let write = Write::Update {
            user: user.clone(),
            changes: changes.to_vec(),
            record: record.clone(),
        };
        match self.write_batch(std::slice::from_ref(&write)).await.pop() {
            Some(outcome) => outcome.map(|_| ()),
            None => Err(TargetError::Malformed(
                "no outcome for the upload".to_string(),
            )),
        }
    }

    fn batch_size(&self) -> Option<usize> {
        Some(self.batch_size)
    }

    async fn write_batch(&self, writes: &[Write]) -> Vec<Result<Option<String>, TargetError>> {
        let mut outcomes = Vec::with_capacity(writes.len());
        for batch in writes.chunks(self.batch_size) {
            outcomes.extend(self.upload(batch).await);
        }
        outcomes
    }

    fn stats(&self) -> &TargetStats {
        self.reader.stats()
    }

    fn rate(&self) -> Option<crate::http::Rate> {
        self.reader.rate()
    }
}
