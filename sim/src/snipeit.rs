//! A Snipe-IT simulator: the user and department endpoints of Snipe-IT's REST API v1, as
//! its public documentation describes them, on 127.0.0.1.
//!
//! It keeps users and departments in memory and answers the way Snipe-IT does: a bearer
//! token or 401 `Unauthenticated.`; a redirect to the login page without `Accept:
//! application/json`; listings as `{"total": n, "rows": [...]}` with `limit` (capped at
//! `MAX_RESULTS`), `offset` (an offset past the end starts over at 0, as Snipe-IT does),
//! `search` (parts of names, username, e-mail, employee number) and `sort`/`order`; users
//! rendered with their department as `{id, name}` and text HTML-escaped; writes answered 200
//! with `{"status": "success"|"error", "messages": …, "payload": …}`, validation failures
//! (required first name and username, a username already taken, a malformed e-mail address,
//! an unknown department) included.
//!
//! Two things are not Snipe-IT's, for testing the generic REST target's other kinds of
//! paging: a `page` parameter (pages of `limit`, from 1), and `cursor`: given (empty on the
//! first page), the answer adds `next_cursor` and the same page as a link in `links.next`.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value as Json, json};

use crate::server::{Reply, Request, Server, Service, Traffic};

/// The API token the simulator accepts unless told otherwise.
pub const TOKEN: &str = "snipeit-sim-token-7b0d2c94e1f3";

/// A running Snipe-IT simulator.
pub type SnipeItSim = Server<SnipeIt>;

/// The columns a user row has (the ones userload reads and writes).
const COLUMNS: &[&str] = &[
    "first_name",
    "last_name",
    "username",
    "email",
    "employee_num",
    "jobtitle",
    "phone",
    "activated",
    "department_id",
    "notes",
];

/// The columns `sort` accepts.
const SORTABLE: &[&str] = &[
    "id",
    "first_name",
    "last_name",
    "username",
    "email",
    "employee_num",
    "jobtitle",
    "phone",
    "activated",
];

/// Snipe-IT's data and behaviour; tests change it through [`Server::with`].
#[derive(Debug)]
pub struct SnipeIt {
    /// Users by id: their columns.
    pub users: BTreeMap<u64, Map<String, Json>>,
    /// Departments by id: their names.
    pub departments: BTreeMap<u64, String>,
    /// The token requests must carry.
    pub token: String,
    /// The most rows one listing returns (Snipe-IT's `MAX_RESULTS`).
    pub max_results: usize,
    /// Requests and faults.
    pub traffic: Traffic,
    next_user: u64,
    next_department: u64,
}

impl Default for SnipeIt {
    fn default() -> Self {
        SnipeIt {
            users: BTreeMap::new(),
            departments: BTreeMap::new(),
            token: TOKEN.to_string(),
            max_results: 500,
            traffic: Traffic::default(),
            next_user: 1,
            next_department: 1,
        }
    }
}

impl SnipeIt {
    /// Starts a simulator with no users.
    pub fn start() -> std::io::Result<SnipeItSim> {
        Server::start(SnipeIt::default())
    }

    /// Adds a user with these columns (unknown keys are ignored); returns its id.
    pub fn add_user(&mut self, columns: Json) -> u64 {
        let id = self.next_user;
        self.next_user += 1;
        let mut row = Map::new();
        fill(&mut row, &columns);
        row.entry("activated").or_insert(Json::Bool(true));
        self.users.insert(id, row);
        id
    }

    /// Adds a department; returns its id.
    pub fn add_department(&mut self, name: &str) -> u64 {
        let id = self.next_department;
        self.next_department += 1;
        self.departments.insert(id, name.to_string());
        id
    }

    /// The user with this username (any case).
    pub fn user_named(&self, username: &str) -> Option<(u64, &Map<String, Json>)> {
        self.users
            .iter()
            .find(|(_, u)| same_text(u.get("username"), username))
            .map(|(id, u)| (*id, u))
    }

    fn list_users(&self, request: &Request) -> Reply {
        let search = request.query.get("search").map(|s| s.to_lowercase());
        let mut rows: Vec<(u64, &Map<String, Json>)> = self
            .users
            .iter()
            .filter(|(_, u)| search.as_deref().is_none_or(|s| matches_search(u, s)))
            .map(|(id, u)| (*id, u))
            .collect();
        let sort = request
            .query
            .get("sort")
            .map(String::as_str)
            .filter(|s| SORTABLE.contains(s))
            .unwrap_or("first_name");
        rows.sort_by(|(a_id, a), (b_id, b)| {
            if sort == "id" {
                return a_id.cmp(b_id);
            }
            let key = |u: &Map<String, Json>| u.get(sort).map(sort_key).unwrap_or_default();
            key(a).cmp(&key(b)).then(a_id.cmp(b_id))
        });
        if request.query.get("order").map(String::as_str) != Some("asc") {
            rows.reverse();
        }
        let page = self.page(request, rows.len());
        let total = rows.len();
        let chosen: Vec<Json> = rows
            .iter()
            .skip(page.offset)
            .take(page.limit)
            .map(|(id, u)| self.render_user(*id, u))
            .collect();
        page.answer(request, total, chosen)
    }

    fn list_departments(&self, request: &Request) -> Reply {
        let search = request.query.get("search").map(|s| s.to_lowercase());
        let rows: Vec<(u64, &String)> = self
            .departments
            .iter()
            .filter(|(_, name)| {
                search
                    .as_deref()
                    .is_none_or(|s| name.to_lowercase().contains(s))
            })
            .map(|(id, name)| (*id, name))
            .collect();
        let page = self.page(request, rows.len());
        let chosen: Vec<Json> = rows
            .iter()
            .skip(page.offset)
            .take(page.limit)
            .map(|(id, name)| {
                let users = self
                    .users
                    .values()
                    .filter(|u| u.get("department_id") == Some(&Json::from(*id)))
                    .count();
                json!({"id": id, "name": escape(name), "users_count": users, "manager": null})
            })
            .collect();
        page.answer(request, rows.len(), chosen)
    }

    /// Where a listing starts and how long it is.
    fn page(&self, request: &Request, total: usize) -> Page {
        let number = |key: &str| request.query.get(key).and_then(|v| v.parse::<usize>().ok());
        let limit = number("limit")
            .unwrap_or(50)
            .clamp(1, self.max_results.max(1));
        let cursor = request.query.get("cursor").map(|c| {
            URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.parse::<usize>().ok())
                .unwrap_or(0)
        });
        let offset = match (cursor, number("page")) {
            (Some(at), _) => at,
            (None, Some(page)) => page.saturating_sub(1).saturating_mul(limit),
            (None, None) => number("offset").unwrap_or(0),
        };
        // Snipe-IT starts over when asked for more than there is.
        let offset = if offset > total { 0 } else { offset };
        Page {
            offset,
            limit,
            cursor: cursor.is_some(),
        }
    }

    fn render_user(&self, id: u64, row: &Map<String, Json>) -> Json {
        let text = |key: &str| row.get(key).and_then(Json::as_str).map(escape);
        let or_null = |value: Option<String>| {
            value
                .filter(|v| !v.is_empty())
                .map_or(Json::Null, Json::from)
        };
        let department = row
            .get("department_id")
            .and_then(Json::as_u64)
            .and_then(|d| Some(json!({"id": d, "name": escape(self.departments.get(&d)?)})))
            .unwrap_or(Json::Null);
        let first = text("first_name").unwrap_or_default();
        let last = text("last_name").unwrap_or_default();
        let mut user = json!({
            "id": id,
            "avatar": "https://example.invalid/img/default-sm.png",
            "name": format!("{first} {last}").trim(),
            "first_name": first,
            "last_name": last,
            "username": text("username").unwrap_or_default(),
            "remote": false,
            "locale": "en-US",
            "employee_num": text("employee_num").unwrap_or_default(),
            "manager": null,
            "jobtitle": or_null(text("jobtitle")),
            "vip": false,
            "phone": or_null(text("phone")),
            "website": null,
            "address": null,
            "city": null,
            "state": null,
            "country": null,
            "zip": null,
            "email": text("email").unwrap_or_default(),
            "department": department,
        });
        let extra = json!({
            "location": null,
            "notes": text("notes").unwrap_or_default(),
            "permissions": null,
            "activated": row.get("activated").is_some_and(truthy),
            "autoassign_licenses": true,
            "ldap_import": false,
            "two_factor_enrolled": false,
            "two_factor_optin": false,
            "assets_count": 0,
            "licenses_count": 0,
            "accessories_count": 0,
            "consumables_count": 0,
            "company": null,
            "created_at": {"datetime": "2024-01-01 00:00:00", "formatted": "2024-01-01 12:00AM"},
            "updated_at": {"datetime": "2024-01-01 00:00:00", "formatted": "2024-01-01 12:00AM"},
            "last_login": null,
            "deleted_at": null,
            "available_actions": {"update": true, "delete": true, "clone": true, "restore": false},
            "groups": null,
        });
        if let (Json::Object(user), Json::Object(extra)) = (&mut user, extra) {
            user.extend(extra);
        }
        user
    }

    fn create(&mut self, request: &Request) -> Reply {
        let Some(Json::Object(input)) = &request.body else {
            return bad_request();
        };
        let mut row = Map::new();
        row.insert("activated".to_string(), Json::Bool(false));
        fill(&mut row, &Json::Object(input.clone()));
        if let Some(messages) = self.invalid(&row, None) {
            return refusal(messages);
        }
        let id = self.next_user;
        self.next_user += 1;
        self.users.insert(id, row);
        let payload = self.users.get(&id).map(|u| self.render_user(id, u));
        success("User created successfully.", payload)
    }

    fn update(&mut self, id: u64, request: &Request) -> Reply {
        let Some(Json::Object(input)) = &request.body else {
            return bad_request();
        };
        let Some(mut row) = self.users.get(&id).cloned() else {
            return not_found();
        };
        fill(&mut row, &Json::Object(input.clone()));
        if let Some(messages) = self.invalid(&row, Some(id)) {
            return refusal(messages);
        }
        let payload = self.render_user(id, &row);
        self.users.insert(id, row);
        success("User updated successfully.", Some(payload))
    }

    /// Snipe-IT's validation of a user row: field → messages, or `None` when it passes.
    fn invalid(&self, row: &Map<String, Json>, id: Option<u64>) -> Option<Map<String, Json>> {
        let mut messages = Map::new();
        let mut fail = |field: &str, message: &str| {
            messages.insert(field.to_string(), json!([message]));
        };
        let blank = |key: &str| {
            row.get(key)
                .and_then(Json::as_str)
                .is_none_or(|s| s.trim().is_empty())
        };
        if blank("first_name") {
            fail("first_name", "The first name field is required.");
        }
        if blank("username") {
            fail("username", "The username field is required.");
        } else if let Some(name) = row.get("username").and_then(Json::as_str)
            && self
                .users
                .iter()
                .any(|(other, u)| Some(*other) != id && same_text(u.get("username"), name))
        {
            fail("username", "The username has already been taken.");
        }
        if let Some(email) = row.get("email").and_then(Json::as_str)
            && !email.is_empty()
            && !is_email(email)
        {
            fail("email", "The email must be a valid email address.");
        }
        if let Some(department) = row.get("department_id").filter(|d| !d.is_null())
            && !department
                .as_u64()
                .is_some_and(|d| self.departments.contains_key(&d))
        {
            fail("department_id", "The selected department id is invalid.");
        }
        (!messages.is_empty()).then_some(messages)
    }
}

impl Service for SnipeIt {
    const NAME: &'static str = "snipeit-sim";

    fn traffic(&mut self) -> &mut Traffic {
        &mut self.traffic
    }

    fn serve(&mut self, request: &Request) -> Reply {
        let accepts_json = request
            .header("accept")
            .is_some_and(|a| a.contains("application/json"));
        if !accepts_json {
            let mut reply = Reply::json(302, Json::Null);
            reply.headers.push(("location", "/login".to_string()));
            return reply;
        }
        let expected = format!("Bearer {}", self.token);
        if request.header("authorization") != Some(expected.as_str()) {
            return Reply::json(401, json!({"message": "Unauthenticated."}));
        }
        let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
        match (request.method.as_str(), segments.as_slice()) {
            ("GET", ["api", "v1", "users"]) => self.list_users(request),
            ("POST", ["api", "v1", "users"]) => self.create(request),
            ("GET", ["api", "v1", "users", id]) => match id
                .parse()
                .ok()
                .and_then(|id| Some((id, self.users.get(&id)?)))
            {
                Some((id, user)) => Reply::json(200, self.render_user(id, user)),
                None => not_found(),
            },
            ("PATCH" | "PUT", ["api", "v1", "users", id]) => match id.parse() {
                Ok(id) => self.update(id, request),
                Err(_) => not_found(),
            },
            ("GET", ["api", "v1", "departments"]) => self.list_departments(request),
            _ => Reply::json(
                404,
                json!({"status": "error", "messages": "404 endpoint not found", "payload": null}),
            ),
        }
    }
}

/// Where a listing starts, and whether it pages by cursor.
struct Page {
    offset: usize,
    limit: usize,
    cursor: bool,
}

impl Page {
    fn answer(&self, request: &Request, total: usize, rows: Vec<Json>) -> Reply {
        let end = self.offset + rows.len();
        let mut body = json!({"total": total, "rows": rows});
        if self.cursor && end < total && end > self.offset {
            let cursor = URL_SAFE_NO_PAD.encode(end.to_string());
            let mut query: BTreeMap<&str, String> = request
                .query
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect();
            query.insert("cursor", cursor.clone());
            let query = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(query)
                .finish();
            let host = request.header("host").unwrap_or("127.0.0.1");
            body["next_cursor"] = Json::from(cursor);
            body["links"] = json!({"next": format!("http://{host}{}?{query}", request.path)});
        }
        Reply::json(200, body)
    }
}

/// Sets the known columns `input` gives, as Laravel's `fill` does (others are ignored).
fn fill(row: &mut Map<String, Json>, input: &Json) {
    let Some(input) = input.as_object() else {
        return;
    };
    for column in COLUMNS {
        let Some(value) = input.get(*column) else {
            continue;
        };
        let value = match *column {
            "activated" => Json::Bool(truthy(value)),
            "department_id" => match value {
                Json::String(s) if s.is_empty() => Json::Null,
                Json::String(s) => s.parse::<u64>().map_or(value.clone(), Json::from),
                other => other.clone(),
            },
            _ => value.clone(),
        };
        row.insert((*column).to_string(), value);
    }
}

fn truthy(value: &Json) -> bool {
    match value {
        Json::Bool(b) => *b,
        Json::Number(n) => n.as_i64() == Some(1),
        Json::String(s) => matches!(s.as_str(), "1" | "true" | "on"),
        _ => false,
    }
}

fn sort_key(value: &Json) -> String {
    match value {
        Json::String(s) => s.to_lowercase(),
        other => other.to_string(),
    }
}

fn same_text(value: Option<&Json>, text: &str) -> bool {
    value
        .and_then(Json::as_str)
        .is_some_and(|v| v.to_lowercase() == text.to_lowercase())
}

fn matches_search(user: &Map<String, Json>, search: &str) -> bool {
    [
        "first_name",
        "last_name",
        "username",
        "email",
        "employee_num",
        "jobtitle",
    ]
    .iter()
    .filter_map(|k| user.get(*k).and_then(Json::as_str))
    .any(|v| v.to_lowercase().contains(search))
}

fn is_email(text: &str) -> bool {
    match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !text.contains(' ')
        }
        None => false,
    }
}

/// Laravel's `e()`: text HTML-escaped, quotes included.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#039;"),
            c => out.push(c),
        }
    }
    out
}

fn success(message: &str, payload: Option<Json>) -> Reply {
    Reply::json(
        200,
        json!({"status": "success", "messages": message, "payload": payload}),
    )
}

fn refusal(messages: Map<String, Json>) -> Reply {
    Reply::json(
        200,
        json!({"status": "error", "messages": messages, "payload": null}),
    )
}

fn not_found() -> Reply {
    Reply::json(
        404,
        json!({"status": "error", "messages": "User not found", "payload": null}),
    )
}

fn bad_request() -> Reply {
    Reply::json(
        400,
        json!({"status": "error", "messages": "The request body must be a JSON object.", "payload": null}),
    )
}
