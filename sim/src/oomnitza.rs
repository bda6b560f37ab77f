//! An Oomnitza simulator: the bulk upload API the Oomnitza connector uses and the users
//! listing of REST API v3, on 127.0.0.1.
//!
//! Requests must carry the API token in `Authorization2`. `POST /api/v3/bulk` stages records
//! in a portion (`{"records", "sync_field", "portion", "data_type": "users", "insert_only",
//! "update_only"}`; uploading to the same portion again adds to it); `POST
//! /api/v3/bulk/<portion>/finalize` applies them, matching users on the sync field without
//! regard to case, leaving existing users alone with `insert_only` and unknown ones with
//! `update_only`, and answers a summary with the records it refused under `errors`
//! (`{"value", "error"}`; a record without a sync field value, or a malformed EMAIL). A
//! portion finalized again answers the same summary and changes nothing. `GET
//! /api/v3/users` answers a JSON array, with `limit`, `skip` and a `filter` of the form
//! `(FIELD eq 'value')`. Where Oomnitza's documentation is silent (the finalize answer, the
//! filter's exact grammar) this is a guess, kept in one place with the target's.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json, json};

use crate::server::{Reply, Request, Server, Service, Traffic};

/// The API token the simulator accepts unless told otherwise.
pub const TOKEN: &str = "oomnitza-sim-token-51c2e0d8a9";

/// A running Oomnitza simulator.
pub type OomnitzaSim = Server<Oomnitza>;

/// An uploaded portion.
#[derive(Debug, Clone)]
pub struct Portion {
    /// The field records are matched on.
    pub sync_field: String,
    /// The records uploaded to it, in order.
    pub records: Vec<Json>,
    /// Only new users are added.
    pub insert_only: bool,
    /// Only existing users are changed.
    pub update_only: bool,
    /// The summary, once finalized.
    pub summary: Option<Json>,
}

/// Oomnitza's users and portions; tests change them through [`Server::with`].
#[derive(Debug)]
pub struct Oomnitza {
    /// Users in the order they were added, keyed by field name.
    pub users: Vec<Map<String, Json>>,
    /// Uploaded portions by id.
    pub portions: BTreeMap<String, Portion>,
    /// The token requests must carry.
    pub token: String,
    /// Requests and faults.
    pub traffic: Traffic,
}

impl Default for Oomnitza {
    fn default() -> Self {
        Oomnitza {
            users: Vec::new(),
            portions: BTreeMap::new(),
            token: TOKEN.to_string(),
            traffic: Traffic::default(),
        }
    }
}

impl Oomnitza {
    /// Starts a simulator with no users.
    pub fn start() -> std::io::Result<OomnitzaSim> {
        Server::start(Oomnitza::default())
    }

    /// Adds a user with these fields.
    pub fn add_user(&mut self, fields: Json) {
        if let Json::Object(fields) = fields {
            self.users.push(fields);
        }
    }

    /// The user whose `field` is `value` (any case).
    pub fn user(&self, field: &str, value: &str) -> Option<&Map<String, Json>> {
        self.users.iter().find(|u| same(u.get(field), value))
    }

    fn list(&self, request: &Request) -> Reply {
        let number = |key: &str| request.query.get(key).and_then(|v| v.parse::<usize>().ok());
        let limit = number("limit").unwrap_or(100).clamp(1, 1000);
        let skip = number("skip").unwrap_or(0);
        let filter = match request.query.get("filter").map(|f| parse_filter(f)) {
            None => None,
            Some(Some(filter)) => Some(filter),
            Some(None) => {
                return Reply::json(400, json!({"error": "The filter cannot be parsed."}));
            }
        };
        let users: Vec<Json> = self
            .users
            .iter()
            .filter(|u| {
                filter.as_ref().is_none_or(|(field, value)| {
                    let found = u.iter().find(|(k, _)| k.eq_ignore_ascii_case(field));
                    same(found.map(|(_, v)| v), value)
                })
            })
            .skip(skip)
            .take(limit)
            .map(|u| Json::Object(u.clone()))
            .collect();
        Reply::json(200, Json::Array(users))
    }

    fn upload(&mut self, request: &Request) -> Reply {
        let body = request.body.as_ref();
        let text = |key: &str| body.and_then(|b| b.get(key)).and_then(Json::as_str);
        let flag = |key: &str| body.and_then(|b| b.get(key)).and_then(Json::as_bool);
        let records = body.and_then(|b| b.get("records")).and_then(Json::as_array);
        let (Some(portion), Some(sync_field), Some(records)) =
            (text("portion"), text("sync_field"), records)
        else {
            return invalid("records, sync_field and portion are required");
        };
        if text("data_type") != Some("users") {
            return invalid("data_type must be users");
        }
        if portion.is_empty() || sync_field.is_empty() {
            return invalid("portion and sync_field must not be empty");
        }
        let (insert_only, update_only) = (
            flag("insert_only").unwrap_or(false),
            flag("update_only").unwrap_or(false),
        );
        let entry = self
            .portions
            .entry(portion.to_string())
            .or_insert_with(|| Portion {
                sync_field: sync_field.to_string(),
                records: Vec::new(),
                insert_only,
                update_only,
                summary: None,
            });
        if entry.summary.is_some() {
            return Reply::json(409, json!({"error": "The portion is finalized already."}));
        }
        entry.records.extend(records.iter().cloned());
        Reply::json(
            200,
            json!({"portion": portion, "status": "uploaded", "records": entry.records.len()}),
        )
    }

    fn finalize(&mut self, portion: &str) -> Reply {
        let Some(staged) = self.portions.get(portion).cloned() else {
            return Reply::json(404, json!({"error": "No such portion."}));
        };
        if let Some(summary) = staged.summary {
            return Reply::json(200, summary);
        }
        let (mut added, mut updated, mut skipped) = (0, 0, 0);
        let mut errors = Vec::new();
        for record in &staged.records {
            let Some(fields) = record.as_object() else {
                errors.push(json!({"value": null, "error": "a record is not an object"}));
                continue;
            };
            let Some(key) = fields.get(&staged.sync_field).and_then(Json::as_str) else {
                let error = format!("{} has no value", staged.sync_field);
                errors.push(json!({"value": null, "error": error}));
                continue;
            };
            if let Some(email) = fields.get("EMAIL").and_then(Json::as_str)
                && !email.contains('@')
            {
                errors.push(json!({"value": key, "error": "EMAIL: not a valid e-mail address"}));
                continue;
            }
            let existing = self
                .users
                .iter_mut()
                .find(|u| same(u.get(&staged.sync_field), key));
            match existing {
                Some(_) if staged.insert_only => skipped += 1,
                Some(user) => {
                    for (name, value) in fields {
                        if value.is_null() {
                            user.remove(name);
                        } else {
                            user.insert(name.clone(), value.clone());
                        }
                    }
                    updated += 1;
                }
                None if staged.update_only => skipped += 1,
                None => {
                    let mut user = fields.clone();
                    user.retain(|_, v| !v.is_null());
                    self.users.push(user);
                    added += 1;
                }
            }
        }
        let summary = json!({
            "portion": portion,
            "status": "finished",
            "added": added,
            "updated": updated,
            "skipped": skipped,
            "errors": errors,
        });
        if let Some(entry) = self.portions.get_mut(portion) {
            entry.summary = Some(summary.clone());
        }
        Reply::json(200, summary)
    }
}

impl Service for Oomnitza {
    const NAME: &'static str = "oomnitza-sim";

    fn traffic(&mut self) -> &mut Traffic {
        &mut self.traffic
    }

    fn serve(&mut self, request: &Request) -> Reply {
        if request.header("authorization2") != Some(self.token.as_str()) {
            return Reply::json(401, json!({"error": "Invalid or missing API token."}));
        }
        let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
        match (request.method.as_str(), segments.as_slice()) {
            ("GET", ["api", "v3", "users"]) => self.list(request),
            ("POST", ["api", "v3", "bulk"]) => self.upload(request),
            ("POST", ["api", "v3", "bulk", portion, "finalize"]) => self.finalize(portion),
            _ => Reply::json(404, json!({"error": "Not found."})),
        }
    }
}

/// `(FIELD eq 'value')`, a quote inside the value written twice: the field and the value.
fn parse_filter(filter: &str) -> Option<(String, String)> {
    let inner = filter.trim().strip_prefix('(')?.strip_suffix(')')?;
    let (field, value) = inner.split_once(" eq ")?;
    let value = value.trim().strip_prefix('\'')?.strip_suffix('\'')?;
    if value.replace("''", "").contains('\'') {
        return None;
    }
    Some((field.trim().to_string(), value.replace("''", "'")))
}

fn same(value: Option<&Json>, text: &str) -> bool {
    value
        .and_then(Json::as_str)
        .is_some_and(|v| v.to_lowercase() == text.to_lowercase())
}

fn invalid(message: &str) -> Reply {
    Reply::json(400, json!({"error": message}))
}

#[cfg(test)]
mod tests {
    use super::parse_filter;

    #[test]
    fn filters_are_read_with_doubled_quotes() {
        assert_eq!(
            parse_filter("(USER eq 'o''neil@x.com')"),
            Some(("USER".to_string(), "o'neil@x.com".to_string()))
        );
        assert_eq!(parse_filter("(USER eq 'o'neil')"), None);
        assert_eq!(parse_filter("USER eq 'a'"), None);
    }
}
