//! A GLPI simulator: the session and user endpoints of GLPI's legacy REST API
//! (`/apirest.php`, GLPI 10 and 11) on 127.0.0.1, answering as GLPI's API does.
//!
//! - Sessions: `GET /apirest.php/initSession` with `Authorization: user_token <token>` (and
//!   `App-Token` when one is set) answers `{"session_token": "…"}`; every other request
//!   carries it in `Session-Token`. An unknown or expired one is answered 401
//!   `["ERROR_SESSION_TOKEN_INVALID", "session_token seems invalid"]`; `GET
//!   /apirest.php/killSession` ends it. A session lasts `session_requests` requests when
//!   that is set, and [`Glpi::expire_sessions`] ends every open one, so a test can make a
//!   session expire in the middle of a run; `max_logins` refuses sessions after that many.
//! - Users: `GET /apirest.php/User?range=a-b` (default 0-49) answers 200 when it holds the
//!   last user and 206 otherwise, with `Content-Range: a-b/total`; a range past the end is
//!   400 `ERROR_RANGE_EXCEED_TOTAL`. `searchText[field]=text` keeps users whose field
//!   contains the text, regardless of case. `GET /apirest.php/User/:id`; `POST
//!   /apirest.php/User` with `{"input": {...}}` answers 201 `{"id": 12, "message": ""}`
//!   (a login taken is 400 `ERROR_GLPI_ADD`); `PUT`/`PATCH /apirest.php/User/:id` answers
//!   200 `[{"12": true, "message": ""}]`. E-mails given as `_useremails` on create are kept
//!   apart, as GLPI keeps them in another table; a user does not show them.
//! - Locations and user titles (`/apirest.php/Location`, `/apirest.php/UserTitle`): listed
//!   by range as users are, created with `{"input": {"name": …}}` (201 with the id only).
//! - `html_status`: every request is answered with an HTML error page of that status, as a
//!   web server in front of GLPI does when the API is not where the URL says.
//!
//! Errors are `["ERROR_…", "message"]` with a 400, 401 or 404 status, as GLPI answers them.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value as Json, json};

use crate::server::{Reply, Request, Server, Service, Traffic};

/// The user API token the simulator accepts unless told otherwise.
pub const USER_TOKEN: &str = "glpi-sim-user-token-4c1e9a7b2d";

/// The columns of a GLPI user the simulator keeps; others given on create are ignored.
pub const COLUMNS: &[&str] = &[
    "name",
    "realname",
    "firstname",
    "phone",
    "mobile",
    "registration_number",
    "is_active",
    "users_id_supervisor",
    "usertitles_id",
    "locations_id",
    "entities_id",
    "comment",
];

/// A running GLPI simulator.
pub type GlpiSim = Server<Glpi>;

/// GLPI's data and behaviour; tests change it through [`Server::with`].
#[derive(Debug)]
pub struct Glpi {
    /// Users by id: their columns.
    pub users: BTreeMap<u64, Map<String, Json>>,
    /// E-mail addresses given on create, by user id.
    pub emails: BTreeMap<u64, Vec<String>>,
    /// Locations by id: their names.
    pub locations: BTreeMap<u64, String>,
    /// User titles by id: their names.
    pub titles: BTreeMap<u64, String>,
    /// The user token `initSession` takes.
    pub user_token: String,
    /// The App-Token every request must carry, when set.
    pub app_token: Option<String>,
    /// How many requests a session answers before it expires; unlimited when `None`.
    pub session_requests: Option<u64>,
    /// How many sessions `initSession` opens before it refuses every login (a user token
    /// revoked mid-run); unlimited when `None`.
    pub max_logins: Option<u64>,
    /// When set, every request is answered with an HTML page of this status.
    pub html_status: Option<u16>,
    /// Sessions opened so far.
    pub logins: u64,
    /// Sessions closed by `killSession`.
    pub logouts: u64,
    /// Open sessions: token → requests answered.
    sessions: HashMap<String, u64>,
    /// Requests and faults.
    pub traffic: Traffic,
    next_id: u64,
}

impl Default for Glpi {
    fn default() -> Self {
        Glpi {
            users: BTreeMap::new(),
            emails: BTreeMap::new(),
            locations: BTreeMap::new(),
            titles: BTreeMap::new(),
            user_token: USER_TOKEN.to_string(),
            app_token: None,
            session_requests: None,
            max_logins: None,
            html_status: None,
            logins: 0,
            logouts: 0,
            sessions: HashMap::new(),
            traffic: Traffic::default(),
            next_id: 2,
        }
    }
}

impl Glpi {
    /// Starts a simulator with no users but GLPI's own (id 1 is never listed here).
    pub fn start() -> std::io::Result<GlpiSim> {
        Server::start(Glpi::default())
    }

    /// Ends every open session: the next request with one is answered 401.
    pub fn expire_sessions(&mut self) {
        self.sessions.clear();
    }

    /// How many sessions are open.
    pub fn open_sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Adds a user with these columns (others are ignored); returns its id.
    pub fn add_user(&mut self, columns: Json) -> u64 {
        let id = self.take_id();
        let mut row = Map::new();
        row.insert("id".into(), json!(id));
        row.insert("is_active".into(), json!(1));
        row.insert("entities_id".into(), json!(0));
        fill(&mut row, &columns);
        self.users.insert(id, row);
        id
    }

    /// The user with this login (any case).
    pub fn user_named(&self, name: &str) -> Option<(u64, &Map<String, Json>)> {
        self.users
            .iter()
            .find(|(_, u)| same_login(u.get("name"), name))
            .map(|(id, u)| (*id, u))
    }

    fn login(&mut self, request: &Request) -> Reply {
        let expected = format!("user_token {}", self.user_token);
        let refused = self.max_logins.is_some_and(|max| self.logins >= max);
        if refused || request.header("authorization") != Some(expected.as_str()) {
            return error(
                401,
                "ERROR_GLPI_LOGIN_USER_TOKEN",
                "parameter user_token seems invalid",
            );
        }
        self.logins += 1;
        let token = format!("glpi-sim-session-{:04}-8f2e6d", self.logins);
        self.sessions.insert(token.clone(), 0);
        Reply::json(200, json!({ "session_token": token }))
    }

    /// Whether the request's session is open; counts the request against it.
    fn session(&mut self, request: &Request) -> Result<String, Reply> {
        let Some(token) = request.header("session-token") else {
            return Err(error(
                400,
                "ERROR_SESSION_TOKEN_MISSING",
                "parameter session_token is missing or empty",
            ));
        };
        let limit = self.session_requests;
        let Some(used) = self.sessions.get_mut(token) else {
            return Err(invalid_session());
        };
        if limit.is_some_and(|l| *used >= l) {
            self.sessions.remove(token);
            return Err(invalid_session());
        }
        *used += 1;
        Ok(token.to_string())
    }

    fn route(&mut self, request: &Request, segments: &[&str]) -> Reply {
        if segments == ["initSession"] && request.method == "GET" {
            return self.login(request);
        }
        let token = match self.session(request) {
            Ok(token) => token,
            Err(reply) => return reply,
        };
        let id = |text: &str| text.parse::<u64>().ok();
        match (request.method.as_str(), segments) {
            ("GET", ["killSession"]) => {
                self.sessions.remove(&token);
                self.logouts += 1;
                Reply::json(200, json!([]))
            }
            ("GET", ["User"]) => self.list_users(request),
            ("GET", ["Location"]) => list(request, named_rows(&self.locations)),
            ("GET", ["UserTitle"]) => list(request, named_rows(&self.titles)),
            ("POST", ["Location"]) => {
                let id = self.take_id();
                create_named(&mut self.locations, id, request)
            }
            ("POST", ["UserTitle"]) => {
                let id = self.take_id();
                create_named(&mut self.titles, id, request)
            }
            ("POST", ["User"]) => self.create(request),
            ("GET", ["User", user]) => match id(user).and_then(|i| self.users.get(&i)) {
                Some(user) => Reply::json(200, Json::Object(user.clone())),
                None => not_found(),
            },
            ("PUT" | "PATCH", ["User", user]) => match id(user) {
                Some(user) if self.users.contains_key(&user) => self.update(user, request),
                _ => not_found(),
            },
            _ => error(
                400,
                "ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM",
                "resource not found or not an instance of CommonDBTM",
            ),
        }
    }

    /// The next id, shared by every table as GLPI's are not.
    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn list_users(&self, request: &Request) -> Reply {
        let searches: Vec<(&str, String)> = request
            .query
            .iter()
            .filter_map(|(k, v)| {
                let field = k.strip_prefix("searchText[")?.strip_suffix(']')?;
                Some((field, v.to_lowercase()))
            })
            .collect();
        let users: Vec<&Map<String, Json>> = self
            .users
            .values()
            .filter(|u| {
                searches.iter().all(|(field, text)| {
                    u.get(*field)
                        .map(|v| match v {
                            Json::String(s) => s.to_lowercase(),
                            other => other.to_string(),
                        })
                        .is_some_and(|v| v.contains(text.as_str()))
                })
            })
            .collect();
        list(
            request,
            users.into_iter().map(|u| Json::Object(u.clone())).collect(),
        )
    }

    fn create(&mut self, request: &Request) -> Reply {
        let Some(input) = input_of(request) else {
            return bad_input();
        };
        let name = input.get("name").and_then(Json::as_str).unwrap_or_default();
        if name.trim().is_empty() {
            return error(400, "ERROR_GLPI_ADD", "The login is required");
        }
        if self.user_named(name).is_some() {
            return error(
                400,
                "ERROR_GLPI_ADD",
                "Unable to add. The user already exists.",
            );
        }
        let id = self.add_user(Json::Object(input.clone()));
        if let Some(Json::Array(emails)) = input.get("_useremails") {
            let emails = emails
                .iter()
                .filter_map(Json::as_str)
                .map(str::to_string)
                .collect();
            self.emails.insert(id, emails);
        }
        let mut reply = Reply::json(201, json!({"id": id, "message": ""}));
        let host = request.header("host").unwrap_or("127.0.0.1");
        reply
            .headers
            .push(("location", format!("http://{host}/apirest.php/User/{id}")));
        reply
    }

    fn update(&mut self, id: u64, request: &Request) -> Reply {
        let Some(input) = input_of(request) else {
            return bad_input();
        };
        if let Some(name) = input.get("name").and_then(Json::as_str)
            && self.user_named(name).is_some_and(|(other, _)| other != id)
        {
            return error(
                400,
                "ERROR_GLPI_UPDATE",
                "Unable to update. The login is already used.",
            );
        }
        if let Some(user) = self.users.get_mut(&id) {
            fill(user, &Json::Object(input.clone()));
        }
        Reply::json(200, json!([{ id.to_string(): true, "message": "" }]))
    }
}

impl Service for Glpi {
    const NAME: &'static str = "glpi-sim";

    fn traffic(&mut self) -> &mut Traffic {
        &mut self.traffic
    }

    fn serve(&mut self, request: &Request) -> Reply {
        if let Some(status) = self.html_status {
            return Reply::html(status, error_page(status));
        }
        if let Some(app) = &self.app_token
            && request.header("app-token") != Some(app.as_str())
        {
            return error(
                400,
                "ERROR_WRONG_APP_TOKEN_PARAMETER",
                "parameter app_token seems wrong",
            );
        }
        let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
        match segments.as_slice() {
            ["apirest.php", rest @ ..] => self.route(request, rest),
            _ => Reply::html(404, error_page(404)),
        }
    }
}

/// A listing answered by range, as GLPI answers `range=a-b`.
fn list(request: &Request, rows: Vec<Json>) -> Reply {
    let (start, end) = request
        .query
        .get("range")
        .and_then(|r| {
            let (a, b) = r.split_once('-')?;
            Some((
                a.trim().parse::<usize>().ok()?,
                b.trim().parse::<usize>().ok()?,
            ))
        })
        .unwrap_or((0, 49));
    let total = rows.len();
    if total == 0 {
        return Reply::json(200, json!([]));
    }
    if start >= total || end < start {
        return error(
            400,
            "ERROR_RANGE_EXCEED_TOTAL",
            "Provided range exceed total count of data",
        );
    }
    let last = end.min(total - 1);
    let rows: Vec<Json> = rows[start..=last].to_vec();
    let status = if last + 1 < total { 206 } else { 200 };
    let mut reply = Reply::json(status, Json::Array(rows));
    reply
        .headers
        .push(("content-range", format!("{start}-{last}/{total}")));
    reply
}

/// `{"id", "name", "completename"}` of each row of a table of names.
fn named_rows(table: &BTreeMap<u64, String>) -> Vec<Json> {
    table
        .iter()
        .map(|(id, name)| json!({"id": id, "name": name, "completename": name}))
        .collect()
}

/// A create in a table of names: 201 with the id only.
fn create_named(table: &mut BTreeMap<u64, String>, id: u64, request: &Request) -> Reply {
    let Some(input) = input_of(request) else {
        return bad_input();
    };
    match input.get("name").and_then(Json::as_str) {
        Some(name) if !name.trim().is_empty() => {
            table.insert(id, name.to_string());
            Reply::json(201, json!({"id": id, "message": ""}))
        }
        _ => error(400, "ERROR_GLPI_ADD", "The name is required"),
    }
}

/// The known columns of `columns` written into `row`; ids and flags as numbers.
fn fill(row: &mut Map<String, Json>, columns: &Json) {
    let Some(columns) = columns.as_object() else {
        return;
    };
    for (key, value) in columns {
        if !COLUMNS.contains(&key.as_str()) {
            continue;
        }
        let value = match value {
            Json::Bool(b) if key == "is_active" => json!(u8::from(*b)),
            Json::String(s) if key.ends_with("_id") || key.ends_with("_supervisor") => {
                s.parse::<u64>().map_or(Json::Null, Json::from)
            }
            other => other.clone(),
        };
        row.insert(key.clone(), value);
    }
}

/// The `input` object of a write, as GLPI wants it.
fn input_of(request: &Request) -> Option<&Map<String, Json>> {
    request.body.as_ref()?.get("input")?.as_object()
}

fn same_login(value: Option<&Json>, name: &str) -> bool {
    value
        .and_then(Json::as_str)
        .is_some_and(|v| v.to_lowercase() == name.to_lowercase())
}

fn error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(status, json!([code, message]))
}

fn invalid_session() -> Reply {
    error(
        401,
        "ERROR_SESSION_TOKEN_INVALID",
        "session_token seems invalid",
    )
}

fn not_found() -> Reply {
    error(404, "ERROR_ITEM_NOT_FOUND", "Item not found")
}

fn bad_input() -> Reply {
    error(
        400,
        "ERROR_BAD_ARRAY",
        "input parameter must be an array of objects",
    )
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

    fn request(method: &str, path: &str, headers: &[(&str, &str)], body: Option<Json>) -> Request {
        let mut map = axum::http::HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        Request {
            method: method.into(),
            path: path.into(),
            query: url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
            headers: map,
            body,
            raw: Default::default(),
        }
    }

    fn session(glpi: &mut Glpi) -> String {
        let auth = format!("user_token {USER_TOKEN}");
        let reply = glpi.serve(&request(
            "GET",
            "/apirest.php/initSession",
            &[("authorization", &auth)],
            None,
        ));
        assert_eq!(reply.status, 200);
        reply.body["session_token"].as_str().unwrap().to_string()
    }

    #[test]
    fn users_are_listed_by_range_with_content_range() {
        let mut glpi = Glpi::default();
        for i in 0..5 {
            glpi.add_user(json!({"name": format!("u{i}")}));
        }
        let token = session(&mut glpi);
        let headers = [("session-token", token.as_str())];
        let first = glpi.serve(&request(
            "GET",
            "/apirest.php/User?range=0-1",
            &headers,
            None,
        ));
        assert_eq!(first.status, 206);
        assert_eq!(first.body.as_array().unwrap().len(), 2);
        assert!(first.headers.contains(&("content-range", "0-1/5".into())));
        let last = glpi.serve(&request(
            "GET",
            "/apirest.php/User?range=4-5",
            &headers,
            None,
        ));
        assert_eq!(last.status, 200);
        assert!(last.headers.contains(&("content-range", "4-4/5".into())));
        let past = glpi.serve(&request(
            "GET",
            "/apirest.php/User?range=5-9",
            &headers,
            None,
        ));
        assert_eq!(past.status, 400);
        assert_eq!(past.body[0], "ERROR_RANGE_EXCEED_TOTAL");
    }

    #[test]
    fn a_session_expires_after_its_requests_and_a_bad_token_is_refused() {
        let mut glpi = Glpi {
            session_requests: Some(1),
            ..Glpi::default()
        };
        let token = session(&mut glpi);
        let headers = [("session-token", token.as_str())];
        let ok = glpi.serve(&request("GET", "/apirest.php/User", &headers, None));
        assert_eq!(ok.status, 200);
        let expired = glpi.serve(&request("GET", "/apirest.php/User", &headers, None));
        assert_eq!(expired.status, 401);
        assert_eq!(expired.body[0], "ERROR_SESSION_TOKEN_INVALID");
        let wrong = glpi.serve(&request(
            "GET",
            "/apirest.php/initSession",
            &[("authorization", "user_token nope")],
            None,
        ));
        assert_eq!(wrong.status, 401);
    }

    #[test]
    fn creates_take_input_and_keep_emails_apart() {
        let mut glpi = Glpi::default();
        let token = session(&mut glpi);
        let headers = [("session-token", token.as_str())];
        let body = json!({"input": {"name": "ann", "realname": "Lee", "_useremails": ["a@x.org"]}});
        let created = glpi.serve(&request(
            "POST",
            "/apirest.php/User",
            &headers,
            Some(body.clone()),
        ));
        assert_eq!(created.status, 201);
        let id = created.body["id"].as_u64().unwrap();
        assert_eq!(glpi.emails[&id], ["a@x.org"]);
        assert!(!glpi.users[&id].contains_key("_useremails"));
        let again = glpi.serve(&request("POST", "/apirest.php/User", &headers, Some(body)));
        assert_eq!(
            (again.status, again.body[0].as_str()),
            (400, Some("ERROR_GLPI_ADD"))
        );
        let update = json!({"input": {"is_active": 0}});
        let path = format!("/apirest.php/User/{id}");
        let updated = glpi.serve(&request("PUT", &path, &headers, Some(update)));
        assert_eq!(
            updated.body,
            json!([{ id.to_string(): true, "message": "" }])
        );
        assert_eq!(glpi.users[&id]["is_active"], 0);
    }
}
