//! A Freshservice simulator: the requester, department and location endpoints of
//! Freshservice's API v2 on 127.0.0.1, answering as the API does.
//!
//! - Sign-in: HTTP basic with the API key as the user name and any password (`X` by
//!   custom); anything else is 401 `{"code": "invalid_credentials", …}`.
//! - Requesters: `GET /api/v2/requesters?per_page=N&page=P` (10 a page unless asked, at most
//!   100) answers `{"requesters": [...]}` sorted by id, with a `link` header of
//!   `rel="next"` while more follow. Only active requesters are listed unless
//!   `active=false` asks for the deactivated ones; `email=` keeps the one with that address
//!   (any case). `GET /api/v2/requesters/:id` answers `{"requester": {...}}`.
//! - `POST /api/v2/requesters` answers 201 `{"requester": {...}}`; `PUT
//!   /api/v2/requesters/:id` changes the fields given and answers 200 the same way. Both
//!   check the body as Freshservice does, answering 400 `{"description": "Validation
//!   failed", "errors": [{"field", "message", "code"}]}`: a field it does not know
//!   (`invalid_field`), an id written as anything but a number (`datatype_mismatch`), an id
//!   of no department, location or requester (`invalid_value`), a first name or address
//!   missing on create (`missing_field`). An address another requester has, active or
//!   deactivated, is 409 with the code `duplicate_value`.
//! - `DELETE /api/v2/requesters/:id` deactivates the requester (204); it is kept, listed
//!   with `active=false` only. `PUT /api/v2/requesters/:id/reactivate` makes it active
//!   again (200 `{"requester": {...}}`). An id no requester has is 404.
//! - Departments and locations (`/api/v2/departments`, `/api/v2/locations`): listed as
//!   requesters are (`{"departments": [...]}`), created with `{"name": …}` (201
//!   `{"department": {...}}`; a name taken is 409 `duplicate_value`).
//! - Every answer carries Freshservice's rate-limit headers (`X-Ratelimit-Total`,
//!   `-Remaining`, `-Used-CurrentRequest`); past the limit a request is answered 429 with
//!   `Retry-After` ([`Throttle`]). The default limit is too high for any test to meet;
//!   `limited` answers chosen requests that way whatever the limit.
//! - `html_status`: every request is answered with an HTML page of that status, as a proxy
//!   in front of the account does.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use serde_json::{Map, Value as Json, json};

use crate::server::{Reply, Request, Server, Service, Traffic};
use crate::throttle::{Style, Throttle};

/// The API key the simulator accepts unless told otherwise.
pub const API_KEY: &str = "fs-sim-api-key-5b8e21c0d7";

/// The requester fields a write may give; any other is refused as Freshservice does.
pub const FIELDS: &[&str] = &[
    "first_name",
    "last_name",
    "primary_email",
    "job_title",
    "work_phone_number",
    "mobile_phone_number",
    "department_ids",
    "location_id",
    "reporting_manager_id",
    "custom_fields",
    "active",
];

/// A running Freshservice simulator.
pub type FreshserviceSim = Server<Freshservice>;

/// Freshservice's data and behaviour; tests change it through [`Server::with`].
#[derive(Debug)]
pub struct Freshservice {
    /// Requesters by id.
    pub requesters: BTreeMap<u64, Map<String, Json>>,
    /// Departments by id: their names.
    pub departments: BTreeMap<u64, String>,
    /// Locations by id: their names.
    pub locations: BTreeMap<u64, String>,
    /// The API key requests must carry.
    pub api_key: String,
    /// The limit on requests, and its window now open.
    pub throttle: Throttle,
    /// When set, every request is answered with an HTML page of this status.
    pub html_status: Option<u16>,
    /// The numbers of the requests (from 1) answered 429 as the limit answers, whatever the
    /// throttle says: with the rate-limit headers and `Retry-After: 1`.
    pub limited: BTreeSet<u64>,
    /// Requests and faults.
    pub traffic: Traffic,
    next_id: u64,
}

impl Default for Freshservice {
    fn default() -> Self {
        Freshservice {
            requesters: BTreeMap::new(),
            departments: BTreeMap::new(),
            locations: BTreeMap::new(),
            api_key: API_KEY.to_string(),
            throttle: Throttle::generous().style(Style::Freshservice),
            html_status: None,
            limited: BTreeSet::new(),
            traffic: Traffic::default(),
            next_id: 1000,
        }
    }
}

impl Freshservice {
    /// Starts a simulator with no requesters.
    pub fn start() -> std::io::Result<FreshserviceSim> {
        Server::start(Freshservice::default())
    }

    /// Starts a simulator with no requesters that limits requests as `throttle` says (told
    /// in Freshservice's headers).
    pub fn start_throttled(throttle: Throttle) -> std::io::Result<FreshserviceSim> {
        Server::start(Freshservice {
            throttle: throttle.style(Style::Freshservice),
            ..Freshservice::default()
        })
    }

    /// Adds an active requester with these fields; returns its id.
    pub fn add_requester(&mut self, fields: Json) -> u64 {
        let id = self.take_id();
        let mut row = Map::new();
        row.insert("id".into(), json!(id));
        for (key, value) in [
            ("first_name", Json::Null),
            ("last_name", Json::Null),
            ("primary_email", Json::Null),
            ("job_title", Json::Null),
            ("work_phone_number", Json::Null),
            ("mobile_phone_number", Json::Null),
            ("department_ids", json!([])),
            ("location_id", Json::Null),
            ("reporting_manager_id", Json::Null),
            ("custom_fields", json!({})),
            ("active", json!(true)),
            ("is_agent", json!(false)),
        ] {
            row.insert(key.into(), value);
        }
        if let Some(fields) = fields.as_object() {
            for (key, value) in fields {
                row.insert(key.clone(), value.clone());
            }
        }
        self.requesters.insert(id, row);
        id
    }

    /// Adds a department; returns its id.
    pub fn add_department(&mut self, name: &str) -> u64 {
        let id = self.take_id();
        self.departments.insert(id, name.to_string());
        id
    }

    /// The requester with this address (any case), active or not.
    pub fn requester(&self, email: &str) -> Option<&Map<String, Json>> {
        self.requesters
            .values()
            .find(|r| same_email(r.get("primary_email"), email))
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn route(&mut self, request: &Request, segments: &[&str]) -> Reply {
        let id = |text: &str| text.parse::<u64>().ok();
        match (request.method.as_str(), segments) {
            ("GET", ["requesters"]) => self.list_requesters(request),
            ("POST", ["requesters"]) => self.create(request),
            ("GET", ["requesters", r]) => match id(r).and_then(|i| self.requesters.get(&i)) {
                Some(row) => Reply::json(200, json!({ "requester": row })),
                None => not_found(),
            },
            ("PUT", ["requesters", r]) => match id(r).filter(|i| self.requesters.contains_key(i)) {
                Some(r) => self.update(r, request),
                None => not_found(),
            },
            ("DELETE", ["requesters", r]) => {
                match id(r).and_then(|i| self.requesters.get_mut(&i)) {
                    Some(row) => {
                        row.insert("active".into(), json!(false));
                        Reply::json(204, Json::Null)
                    }
                    None => not_found(),
                }
            }
            ("PUT", ["requesters", r, "reactivate"]) => {
                match id(r).and_then(|i| self.requesters.get_mut(&i)) {
                    Some(row) => {
                        row.insert("active".into(), json!(true));
                        Reply::json(200, json!({ "requester": row }))
                    }
                    None => not_found(),
                }
            }
            ("GET", ["departments"]) => page(request, "departments", named(&self.departments)),
            ("GET", ["locations"]) => page(request, "locations", named(&self.locations)),
            ("POST", ["departments"]) => {
                let id = self.take_id();
                create_named(&mut self.departments, id, "department", request)
            }
            ("POST", ["locations"]) => {
                let id = self.take_id();
                create_named(&mut self.locations, id, "location", request)
            }
            _ => not_found(),
        }
    }

    fn list_requesters(&self, request: &Request) -> Reply {
        let active = request.query.get("active").map(String::as_str) != Some("false");
        let email = request.query.get("email");
        let rows: Vec<Json> = self
            .requesters
            .values()
            .filter(|r| r.get("active") == Some(&json!(active)))
            .filter(|r| email.is_none_or(|e| same_email(r.get("primary_email"), e)))
            .map(|r| Json::Object(r.clone()))
            .collect();
        page(request, "requesters", rows)
    }

    fn create(&mut self, request: &Request) -> Reply {
        let Some(body) = request.body.as_ref().and_then(Json::as_object) else {
            return invalid(400, "body", "It should be a JSON object", "invalid_json");
        };
        for field in ["first_name", "primary_email"] {
            if body
                .get(field)
                .is_none_or(|v| v.as_str().is_none_or(str::is_empty))
            {
                return invalid(400, field, "It should not be blank", "missing_field");
            }
        }
        if let Some(refused) = self.checked(body, None) {
            return refused;
        }
        let id = self.add_requester(Json::Object(body.clone()));
        Reply::json(201, json!({ "requester": self.requesters[&id] }))
    }

    fn update(&mut self, id: u64, request: &Request) -> Reply {
        let Some(body) = request.body.as_ref().and_then(Json::as_object) else {
            return invalid(400, "body", "It should be a JSON object", "invalid_json");
        };
        if let Some(refused) = self.checked(body, Some(id)) {
            return refused;
        }
        let Some(row) = self.requesters.get_mut(&id) else {
            return not_found();
        };
        for (key, value) in body {
            row.insert(key.clone(), value.clone());
        }
        Reply::json(200, json!({ "requester": row }))
    }

    /// The refusal of a write's fields (of requester `id` when it updates one), if any.
    fn checked(&self, body: &Map<String, Json>, id: Option<u64>) -> Option<Reply> {
        for (key, value) in body {
            if !FIELDS.contains(&key.as_str()) {
                return Some(invalid(
                    400,
                    key,
                    "Unexpected/invalid field in request",
                    "invalid_field",
                ));
            }
            let ids: Vec<&Json> = match (key.as_str(), value) {
                ("department_ids", Json::Array(items)) => items.iter().collect(),
                ("department_ids", _) => {
                    return Some(invalid(
                        400,
                        key,
                        "It should be an Array",
                        "datatype_mismatch",
                    ));
                }
                ("location_id" | "reporting_manager_id", Json::Null) => Vec::new(),
                ("location_id" | "reporting_manager_id", value) => vec![value],
                _ => Vec::new(),
            };
            for item in ids {
                let Some(n) = item.as_u64() else {
                    return Some(invalid(
                        400,
                        key,
                        "It should be a/an Integer",
                        "datatype_mismatch",
                    ));
                };
                let known = match key.as_str() {
                    "department_ids" => self.departments.contains_key(&n),
                    "location_id" => self.locations.contains_key(&n),
                    _ => self.requesters.contains_key(&n) && Some(n) != id,
                };
                if !known {
                    return Some(invalid(
                        400,
                        key,
                        "There is no record with this id",
                        "invalid_value",
                    ));
                }
            }
        }
        if let Some(email) = body.get("primary_email").and_then(Json::as_str) {
            let taken = self
                .requesters
                .iter()
                .any(|(other, r)| Some(*other) != id && same_email(r.get("primary_email"), email));
            if taken {
                return Some(invalid(
                    409,
                    "primary_email",
                    "It should be a unique value",
                    "duplicate_value",
                ));
            }
        }
        None
    }

    /// Whether the request is signed with the API key.
    fn signed(&self, request: &Request) -> bool {
        let Some(encoded) = request
            .header("authorization")
            .and_then(|h| h.strip_prefix("Basic "))
        else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let text = String::from_utf8_lossy(&decoded);
        text.split_once(':')
            .is_some_and(|(key, _)| key == self.api_key)
    }
}

impl Service for Freshservice {
    const NAME: &'static str = "freshservice-sim";

    fn traffic(&mut self) -> &mut Traffic {
        &mut self.traffic
    }

    fn serve(&mut self, request: &Request) -> Reply {
        if let Some(status) = self.html_status {
            return Reply::html(status, error_page(status));
        }
        if !self.signed(request) {
            return Reply::json(
                401,
                json!({"code": "invalid_credentials", "message": "You have to be logged in to perform this action."}),
            );
        }
        if self.limited.contains(&(self.traffic.next_number() - 1)) {
            let mut reply = Reply::json(429, json!({"message": "Too Many Requests"}));
            reply.headers = vec![
                ("x-ratelimit-total", self.throttle.limit.to_string()),
                ("x-ratelimit-remaining", "0".to_string()),
                ("x-ratelimit-used-currentrequest", "1".to_string()),
                ("retry-after", "1".to_string()),
            ];
            return reply;
        }
        let headers = match self.throttle.admit(std::time::Instant::now()) {
            Ok(headers) => headers,
            Err(too_many) => return too_many,
        };
        let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
        let mut reply = match segments.as_slice() {
            ["api", "v2", rest @ ..] => self.route(request, rest),
            _ => Reply::html(404, error_page(404)),
        };
        reply.headers.extend(headers);
        reply
    }
}

/// One page of `rows` under `key`, as `per_page` and `page` ask, with a `link` header to
/// the next page while more follow.
fn page(request: &Request, key: &str, rows: Vec<Json>) -> Reply {
    let number = |name: &str, default: usize| {
        request
            .query
            .get(name)
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(default)
    };
    let per_page = number("per_page", 10).min(100);
    let page = number("page", 1);
    let start = (page - 1).saturating_mul(per_page).min(rows.len());
    let end = (start + per_page).min(rows.len());
    let mut reply = Reply::json(200, json!({ key: rows[start..end] }));
    if end < rows.len() {
        let host = request.header("host").unwrap_or("127.0.0.1");
        let mut query: BTreeMap<String, String> = request.query.clone();
        query.insert("page".into(), (page + 1).to_string());
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&query)
            .finish();
        let link = format!("<http://{host}{}?{query}>; rel=\"next\"", request.path);
        reply.headers.push(("link", link));
    }
    reply
}

/// `{"id", "name"}` of each row of a table of names.
fn named(table: &BTreeMap<u64, String>) -> Vec<Json> {
    table
        .iter()
        .map(|(id, name)| json!({"id": id, "name": name}))
        .collect()
}

/// A create in a table of names: 201 with the new row under `key`.
fn create_named(table: &mut BTreeMap<u64, String>, id: u64, key: &str, request: &Request) -> Reply {
    let name = request
        .body
        .as_ref()
        .and_then(|b| b.get("name"))
        .and_then(Json::as_str)
        .unwrap_or_default();
    if name.trim().is_empty() {
        return invalid(400, "name", "It should not be blank", "missing_field");
    }
    if table
        .values()
        .any(|n| n.to_lowercase() == name.to_lowercase())
    {
        return invalid(
            409,
            "name",
            "It should be a unique value",
            "duplicate_value",
        );
    }
    table.insert(id, name.to_string());
    Reply::json(201, json!({ key: {"id": id, "name": name} }))
}

fn same_email(value: Option<&Json>, email: &str) -> bool {
    value
        .and_then(Json::as_str)
        .is_some_and(|v| v.to_lowercase() == email.to_lowercase())
}

/// Freshservice's refusal of a request's fields.
fn invalid(status: u16, field: &str, message: &str, code: &str) -> Reply {
    Reply::json(
        status,
        json!({
            "description": "Validation failed",
            "errors": [{"field": field, "message": message, "code": code}],
        }),
    )
}

fn not_found() -> Reply {
    Reply::json(404, json!({"message": "Record Not Found"}))
}

/// A web server's error page.
fn error_page(status: u16) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><title>{status} Error</title></head>\
         <body><h1>Error {status}</h1><p>The server could not answer.</p></body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, path: &str, body: Option<Json>) -> Request {
        let mut headers = axum::http::HeaderMap::new();
        let key = base64::engine::general_purpose::STANDARD.encode(format!("{API_KEY}:X"));
        headers.insert("authorization", format!("Basic {key}").parse().unwrap());
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        Request {
            method: method.into(),
            path: path.into(),
            query: url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
            headers,
            body,
            raw: Default::default(),
        }
    }

    #[test]
    fn deactivated_requesters_are_listed_apart_and_keep_their_address() {
        let mut fs = Freshservice::default();
        let body = json!({"first_name": "Ann", "primary_email": "ann@contoso.com"});
        let created = fs.serve(&request("POST", "/api/v2/requesters", Some(body.clone())));
        assert_eq!(created.status, 201);
        let id = created.body["requester"]["id"].as_u64().unwrap();
        let path = format!("/api/v2/requesters/{id}");
        assert_eq!(fs.serve(&request("DELETE", &path, None)).status, 204);
        let active = fs.serve(&request("GET", "/api/v2/requesters", None));
        assert_eq!(active.body["requesters"], json!([]));
        let inactive = fs.serve(&request("GET", "/api/v2/requesters?active=false", None));
        assert_eq!(inactive.body["requesters"][0]["id"], id);
        let again = fs.serve(&request("POST", "/api/v2/requesters", Some(body)));
        assert_eq!(again.status, 409);
        assert_eq!(again.body["errors"][0]["code"], "duplicate_value");
        let back = fs.serve(&request("PUT", &format!("{path}/reactivate"), None));
        assert_eq!(back.body["requester"]["active"], true);
        assert!(
            back.headers
                .iter()
                .any(|(n, _)| *n == "x-ratelimit-remaining")
        );
    }

    #[test]
    fn ids_must_be_numbers_of_known_records_and_pages_link_the_next() {
        let mut fs = Freshservice::default();
        let dept = fs.add_department("Sales");
        let text = json!({"first_name": "A", "primary_email": "a@x.org", "department_ids": [dept.to_string()]});
        let refused = fs.serve(&request("POST", "/api/v2/requesters", Some(text)));
        assert_eq!(refused.status, 400);
        assert_eq!(refused.body["errors"][0]["code"], "datatype_mismatch");
        let unknown = json!({"first_name": "A", "primary_email": "a@x.org", "location_id": 5});
        let refused = fs.serve(&request("POST", "/api/v2/requesters", Some(unknown)));
        assert_eq!(refused.body["errors"][0]["code"], "invalid_value");
        for i in 0..3 {
            fs.add_requester(json!({"primary_email": format!("u{i}@x.org")}));
        }
        let first = fs.serve(&request(
            "GET",
            "/api/v2/requesters?per_page=2&page=1",
            None,
        ));
        assert_eq!(first.body["requesters"].as_array().unwrap().len(), 2);
        let link = first.headers.iter().find(|(n, _)| *n == "link").unwrap();
        assert!(link.1.contains("page=2") && link.1.ends_with("rel=\"next\""));
        let last = fs.serve(&request(
            "GET",
            "/api/v2/requesters?per_page=2&page=2",
            None,
        ));
        assert!(last.headers.iter().all(|(n, _)| *n != "link"));
    }
}
