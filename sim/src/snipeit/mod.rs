//! A Snipe-IT simulator: the user, department, location, company and user-holdings endpoints
//! of Snipe-IT's REST API v1, on 127.0.0.1, answering as Snipe-IT's API controllers and
//! transformers do.
//!
//! It keeps everything in memory and answers the way Snipe-IT does: a bearer token or 401
//! `Unauthenticated.`; a redirect to the login page without `Accept: application/json`;
//! listings as `{"total": n, "rows": [...]}` with `limit` (capped at `MAX_RESULTS`),
//! `offset` (an offset past the end starts over at 0), `search` and `sort`/`order`; text
//! HTML-escaped; writes answered 200 with `{"status": "success"|"error", "messages": …,
//! "payload": …}`, validation failures included (Snipe-IT's exception handler answers a
//! failed validation 200, not 422).
//!
//! - Users (`users.rs`): rendered as the `UsersTransformer` does, with their department,
//!   location and company as `{id, name}` and their manager as `{id, name}`; validated as
//!   `SaveUserRequest` and the `User` model's rules do (required first name and username, a
//!   username already taken, a malformed e-mail address, an unknown department, location,
//!   company or manager, a user who would manage themselves).
//! - Departments, locations and companies (`entities.rs`): listed and created with the
//!   name rules of their models (required, a length limit, unique as each model says).
//! - What a user holds (`holdings.rs`): `GET /api/v1/users/{id}/assets`, `/licenses` and
//!   `/accessories`, every item at once (Snipe-IT does not page them).
//!
//! Every authenticated request counts against Laravel's throttle ([`Throttle`]): its
//! headers on every answer, a 429 past the limit. Snipe-IT allows 120 requests a minute
//! ([`Throttle::snipeit`]); the simulator allows a million unless told otherwise
//! (`throttle`), so that tests and the demo that do not care never meet it.
//!
//! Two things are not Snipe-IT's, for testing the generic REST target's other kinds of
//! paging: a `page` parameter (pages of `limit`, from 1), and `cursor`: given (empty on the
//! first page), the answer adds `next_cursor` and the same page as a link in `links.next`.

mod entities;
mod holdings;
mod users;

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value as Json, json};

use crate::server::{Reply, Request, Server, Service, Traffic};
use crate::throttle::Throttle;

pub use entities::Kind;
pub use holdings::Item;

/// The API token the simulator accepts unless told otherwise.
pub const TOKEN: &str = "snipeit-sim-token-7b0d2c94e1f3";

/// A running Snipe-IT simulator.
pub type SnipeItSim = Server<SnipeIt>;

/// Snipe-IT's data and behaviour; tests change it through [`Server::with`].
#[derive(Debug)]
pub struct SnipeIt {
    /// Users by id: their columns.
    pub users: BTreeMap<u64, Map<String, Json>>,
    /// Departments by id: their names.
    pub departments: BTreeMap<u64, String>,
    /// Locations by id: their names.
    pub locations: BTreeMap<u64, String>,
    /// Companies by id: their names.
    pub companies: BTreeMap<u64, String>,
    /// Assets (hardware) by id.
    pub assets: BTreeMap<u64, Item>,
    /// Licence seats by id, each held by at most one user.
    pub licences: BTreeMap<u64, Item>,
    /// Accessories checked out, by id.
    pub accessories: BTreeMap<u64, Item>,
    /// Whether the API key may view assets, licences and accessories; without, a user's
    /// holdings are answered 403 as Laravel answers a failed `authorize`.
    pub may_view_holdings: bool,
    /// The token requests must carry.
    pub token: String,
    /// Whether every create and update of a user is refused (as a failed validation).
    pub refuse_writes: bool,
    /// The most rows one listing returns (Snipe-IT's `MAX_RESULTS`).
    pub max_results: usize,
    /// The limit on requests, and its window now open.
    pub throttle: Throttle,
    /// Requests and faults.
    pub traffic: Traffic,
    /// The location and company a department was created with, for its uniqueness rule.
    department_places: BTreeMap<u64, (Option<u64>, Option<u64>)>,
    next_id: BTreeMap<&'static str, u64>,
    /// Usernames in lower case → user id, so that a create checks uniqueness without
    /// reading every user (a load of 100,000 users would otherwise read five billion). A
    /// hint only: every hit is checked against `users`, and the index is rebuilt whenever
    /// it no longer has one entry per user (tests may change `users` directly).
    usernames: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

impl Default for SnipeIt {
    fn default() -> Self {
        SnipeIt {
            users: BTreeMap::new(),
            departments: BTreeMap::new(),
            locations: BTreeMap::new(),
            companies: BTreeMap::new(),
            assets: BTreeMap::new(),
            licences: BTreeMap::new(),
            accessories: BTreeMap::new(),
            may_view_holdings: true,
            token: TOKEN.to_string(),
            refuse_writes: false,
            max_results: 500,
            throttle: Throttle::generous(),
            traffic: Traffic::default(),
            department_places: BTreeMap::new(),
            next_id: BTreeMap::new(),
            usernames: std::sync::Mutex::default(),
        }
    }
}

impl SnipeIt {
    /// Starts a simulator with no users.
    pub fn start() -> std::io::Result<SnipeItSim> {
        Server::start(SnipeIt::default())
    }

    /// Starts a simulator with no users that limits requests as `throttle` says.
    pub fn start_throttled(throttle: Throttle) -> std::io::Result<SnipeItSim> {
        Server::start(SnipeIt {
            throttle,
            ..SnipeIt::default()
        })
    }

    /// The next id of a table, from 1.
    fn next(&mut self, table: &'static str) -> u64 {
        let next = self.next_id.entry(table).or_insert(1);
        let id = *next;
        *next += 1;
        id
    }

    /// Adds a user with these columns (unknown keys are ignored); returns its id.
    pub fn add_user(&mut self, columns: Json) -> u64 {
        let id = self.next("users");
        let mut row = Map::new();
        users::fill(&mut row, &columns);
        row.entry("activated").or_insert(Json::Bool(true));
        self.users.insert(id, row);
        self.index_username(id);
        id
    }

    /// The user other than `except` whose username is `name` (in any case).
    fn username_holder(&self, name: &str, except: Option<u64>) -> Option<u64> {
        let mut index = self
            .usernames
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if index.len() != self.users.len() {
            index.clear();
            for (id, user) in &self.users {
                if let Some(username) = user.get("username").and_then(Json::as_str) {
                    index.insert(username.to_lowercase(), *id);
                }
            }
        }
        index.get(&name.to_lowercase()).copied().filter(|id| {
            Some(*id) != except
                && self
                    .users
                    .get(id)
                    .is_some_and(|u| same_text(u.get("username"), name))
        })
    }

    /// Notes a user's username in the index.
    fn index_username(&self, id: u64) {
        if let Some(username) = self.users.get(&id).and_then(|u| u["username"].as_str()) {
            self.usernames
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(username.to_lowercase(), id);
        }
    }

    /// Adds a department; returns its id.
    pub fn add_department(&mut self, name: &str) -> u64 {
        self.add(Kind::Department, name)
    }

    /// Adds a location; returns its id.
    pub fn add_location(&mut self, name: &str) -> u64 {
        self.add(Kind::Location, name)
    }

    /// Adds a company; returns its id.
    pub fn add_company(&mut self, name: &str) -> u64 {
        self.add(Kind::Company, name)
    }

    /// Checks an asset out to a user: tag and name given, the rest made up; returns its id.
    pub fn assign_asset(&mut self, user: u64, asset_tag: &str, name: &str) -> u64 {
        let id = self.next("assets");
        let item = Item::assigned(user, name, asset_tag);
        self.assets.insert(id, item);
        id
    }

    /// Checks a seat of a licence out to a user; returns the seat's id.
    pub fn assign_licence(&mut self, user: u64, name: &str) -> u64 {
        let id = self.next("licences");
        self.licences.insert(id, Item::assigned(user, name, ""));
        id
    }

    /// Checks an accessory out to a user; returns its id.
    pub fn assign_accessory(&mut self, user: u64, name: &str) -> u64 {
        let id = self.next("accessories");
        self.accessories.insert(id, Item::assigned(user, name, ""));
        id
    }

    /// Checks an asset back in: it is held by nobody.
    pub fn return_asset(&mut self, id: u64) {
        if let Some(asset) = self.assets.get_mut(&id) {
            asset.assigned_to = None;
        }
    }

    /// The user with this username (any case).
    pub fn user_named(&self, username: &str) -> Option<(u64, &Map<String, Json>)> {
        self.users
            .iter()
            .find(|(_, u)| same_text(u.get("username"), username))
            .map(|(id, u)| (*id, u))
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

    fn route(&mut self, request: &Request, segments: &[&str]) -> Reply {
        let id = |text: &str| text.parse::<u64>().ok();
        if self.refuse_writes
            && matches!(
                (request.method.as_str(), segments),
                ("POST" | "PATCH" | "PUT", ["users", ..])
            )
        {
            return refusal("The user could not be saved (refused for the test).");
        }
        match (request.method.as_str(), segments) {
            ("GET", ["users"]) => self.list_users(request),
            ("POST", ["users"]) => self.create(request),
            ("GET", ["users", user]) => {
                match id(user).and_then(|id| Some((id, self.users.get(&id)?))) {
                    Some((id, user)) => Reply::json(200, self.render_user(id, user)),
                    None => not_found(),
                }
            }
            ("PATCH" | "PUT", ["users", user]) => match id(user) {
                Some(user) => self.update(user, request),
                None => not_found(),
            },
            ("GET", ["users", user, what]) => self.held_by(id(user), what),
            ("GET", [table]) => match Kind::of_table(table) {
                Some(kind) => self.list_entities(kind, request),
                None => endpoint_not_found(),
            },
            ("POST", [table]) => match Kind::of_table(table) {
                Some(kind) => self.create_entity(kind, request),
                None => endpoint_not_found(),
            },
            _ => endpoint_not_found(),
        }
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
        let headers = match self.throttle.admit(std::time::Instant::now()) {
            Ok(headers) => headers,
            Err(too_many) => return too_many,
        };
        let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
        let mut reply = match segments.as_slice() {
            ["api", "v1", rest @ ..] => self.route(request, rest),
            _ => endpoint_not_found(),
        };
        reply.headers.extend(headers);
        reply
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

/// An id as a request gives it: a number, a numeric text, or nothing (`null`, `""`).
fn id_value(value: &Json) -> Json {
    match value {
        Json::String(s) if s.is_empty() => Json::Null,
        Json::String(s) => s.parse::<u64>().map_or(value.clone(), Json::from),
        other => other.clone(),
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

/// `{"id": …, "name": …}` of a row in `table`, or `null` when there is none.
fn named(table: &BTreeMap<u64, String>, id: Option<u64>) -> Json {
    id.and_then(|id| Some(json!({"id": id, "name": escape(table.get(&id)?)})))
        .unwrap_or(Json::Null)
}

/// A date as Snipe-IT's `getFormattedDateObject` gives it.
fn date() -> Json {
    json!({"datetime": "2024-01-01 00:00:00", "formatted": "2024-01-01 12:00AM"})
}

fn success(message: &str, payload: Option<Json>) -> Reply {
    Reply::json(
        200,
        json!({"status": "success", "messages": message, "payload": payload}),
    )
}

/// A refused write: 200 with the messages (field → list of messages, or one text).
fn refusal(messages: impl Into<Json>) -> Reply {
    Reply::json(
        200,
        json!({"status": "error", "messages": messages.into(), "payload": null}),
    )
}

fn not_found() -> Reply {
    Reply::json(
        404,
        json!({"status": "error", "messages": "User not found", "payload": null}),
    )
}

fn endpoint_not_found() -> Reply {
    Reply::json(
        404,
        json!({"status": "error", "messages": "404 endpoint not found", "payload": null}),
    )
}

fn bad_request() -> Reply {
    Reply::json(
        400,
        json!({"status": "error", "messages": "The request body must be a JSON object.", "payload": null}),
    )
}

#[cfg(test)]
mod tests;
