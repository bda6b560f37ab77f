//! A SCIM 2.0 service provider simulator (`/Users` only) on 127.0.0.1, for tests, benchmarks
//! and `userload demo`.
//!
//! It keeps users in memory and answers the way SCIM servers do (RFC 7644): listing with
//! `startIndex`/`count` and a capped page size, `attr eq "value"` filters (`userName` and
//! e-mail addresses without regard to case, `externalId` exactly), POST with a 409
//! `uniqueness` on a taken `userName`, PATCH with `add`/`replace`/`remove` on plain,
//! dotted, value-filter and schema-URN paths (and path-less objects), PUT, DELETE, and
//! `meta.version` ETags that `If-Match` is checked against (412 when stale). A value-filter
//! path that picks no element is refused with 400 `noTarget`, as scim2-server does.
//!
//! Tests change its behaviour: a bearer token to demand, latency per request, faults by
//! request number (throttling, server errors, dropped connections, answers lost after the
//! write was made, garbage bodies), listing turned off, a smaller page size, no ETags. Every
//! request is logged, PATCH operations included, for tests to inspect.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::compact::JsonObject;
use crate::server::{Loopback, broken, delay, lock, response};

/// Where the SCIM endpoints live below the simulator's address.
pub const BASE_PATH: &str = "/scim/v2";

const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// A fault to inject into one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// 429 with `Retry-After` (seconds, may be fractional); the request is not carried out.
    Throttle(f64),
    /// A server error (503, 500…) with an optional `Retry-After`; not carried out.
    ServerError(u16, Option<f64>),
    /// The connection breaks after the status line; not carried out.
    Drop,
    /// The request is carried out, then the connection breaks: the answer is lost.
    DropAfterWrite,
    /// The request is carried out, then this server error is answered (a gateway that gave
    /// up waiting).
    ServerErrorAfterWrite(u16),
    /// The request is carried out and the answer held back this long (longer than the
    /// client's timeout makes it time out).
    Stall(Duration),
    /// This status and raw body instead of the real answer; not carried out.
    Answer(u16, String),
}

/// What the simulator does besides answering correctly.
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// How long after it arrived every request is answered (the work of answering included).
    pub latency: Duration,
    /// Faults by request number (1 = the first request).
    pub faults: BTreeMap<u64, Fault>,
    /// The bearer token every request must carry; none means no authentication.
    pub token: Option<String>,
    /// Whether `GET /Users` without a filter is allowed (403 when not).
    pub listing: bool,
    /// The most users on one page, whatever `count` asks.
    pub max_page_size: usize,
    /// Users per page when `count` is not given.
    pub default_page_size: usize,
    /// Whether users carry `meta.version`, answers an `ETag`, and `If-Match` is checked.
    pub etags: bool,
    /// Whether a PATCH answers 200 with the user (else 204 without a body).
    pub patch_returns_user: bool,
    /// Every write (POST, PUT, PATCH, DELETE) answered with this server error and not
    /// carried out: a target whose back end is down while it still lists.
    pub failing_writes: Option<u16>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            latency: Duration::ZERO,
            faults: BTreeMap::new(),
            token: None,
            listing: true,
            max_page_size: 1000,
            default_page_size: 100,
            etags: true,
            patch_returns_user: true,
            failing_writes: None,
        }
    }
}

/// One request the simulator received.
#[derive(Debug, Clone)]
pub struct Logged {
    /// `GET`, `POST`, `PATCH`…
    pub method: String,
    /// The path, e.g. `/scim/v2/Users/…`.
    pub path: String,
    /// Query parameters, decoded.
    pub query: BTreeMap<String, String>,
    /// The `If-Match` header, if sent.
    pub if_match: Option<String>,
    /// For a PATCH: its `Operations`, as sent.
    pub operations: Option<Value>,
    /// The status answered (0 when the connection was dropped before an answer).
    pub status: u16,
}

impl Logged {
    /// Whether the request changes something (POST, PUT, PATCH, DELETE).
    pub fn is_write(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD")
    }
}

/// A stored user and its place in the listing order.
#[derive(Debug)]
struct Stored {
    seq: u64,
    resource: JsonObject,
}

/// A user's id: the simulator makes each from a random UUID, written as 32 lowercase hex
/// digits, and keeps it as the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct UserId(u128);

impl UserId {
    fn new() -> UserId {
        UserId(uuid::Uuid::new_v4().as_u128())
    }

    /// The id in a request; `None` for text the simulator never gave out.
    fn parse(text: &str) -> Option<UserId> {
        let digits = text.len() == 32
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        digits
            .then(|| u128::from_str_radix(text, 16).ok())
            .flatten()
            .map(UserId)
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// Everything the simulator knows; tests change it through [`ScimSim::with`].
#[derive(Debug, Default)]
pub struct ScimState {
    /// Injected faults and timing.
    pub behaviour: Behaviour,
    /// Every request so far.
    pub log: Vec<Logged>,
    /// Users by id, each held compactly.
    users: HashMap<UserId, Stored>,
    /// Ids in creation order, the order of listings.
    order: BTreeMap<u64, UserId>,
    /// Lowercased `userName` → id.
    names: HashMap<String, UserId>,
    /// `externalId` → ids.
    external: HashMap<String, Vec<UserId>>,
    next_seq: u64,
    version: u64,
    requests: u64,
    /// `http://127.0.0.1:PORT/scim/v2`, for `meta.location`.
    base: String,
}

impl ScimState {
    /// The users, in creation order, as the server returns them (each parsed when the
    /// iterator reaches it).
    pub fn users(&self) -> impl Iterator<Item = Value> {
        self.stored_users().map(JsonObject::to_value)
    }

    /// The users as stored, in creation order.
    fn stored_users(&self) -> impl Iterator<Item = &JsonObject> {
        self.order
            .values()
            .filter_map(|id| self.users.get(id).map(|s| &s.resource))
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The user with this id, parsed.
    pub fn user(&self, id: &str) -> Option<Value> {
        self.stored(id).map(JsonObject::to_value)
    }

    /// The user with this `userName` (without regard to case), parsed.
    pub fn user_named(&self, user_name: &str) -> Option<Value> {
        self.stored_named(user_name).map(JsonObject::to_value)
    }

    /// A user, as stored.
    fn stored(&self, id: &str) -> Option<&JsonObject> {
        let id = UserId::parse(id)?;
        self.users.get(&id).map(|s| &s.resource)
    }

    /// The user with this `userName` (without regard to case), as stored.
    fn stored_named(&self, user_name: &str) -> Option<&JsonObject> {
        let id = self.names.get(&user_name.to_lowercase())?;
        self.users.get(id).map(|s| &s.resource)
    }

    /// Adds a user as a POST would (for tests that start with users); returns its id.
    pub fn insert(&mut self, resource: Value) -> Result<String, String> {
        match self.create(resource) {
            Ok(id) => Ok(id.to_string()),
            Err(answer) => Err(answer.body["detail"]
                .as_str()
                .unwrap_or("refused")
                .to_owned()),
        }
    }

    /// Changes one top-level attribute of a user, as an admin would by hand in the asset
    /// system (no request is logged). False for an unknown user.
    pub fn edit(&mut self, id: &str, attribute: &str, value: Value) -> bool {
        let Some(stored) = UserId::parse(id).and_then(|id| self.users.get_mut(&id)) else {
            return false;
        };
        let mut user = stored.resource.to_map();
        user.insert(attribute.to_owned(), value);
        stored.resource = JsonObject::new(&user);
        true
    }

    /// Requests received so far (the next one is number `requests() + 1`).
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Write requests (POST, PUT, PATCH, DELETE) logged so far.
    pub fn writes(&self) -> usize {
        self.log.iter().filter(|l| l.is_write()).count()
    }

    /// The PATCH requests logged so far.
    pub fn patches(&self) -> Vec<&Logged> {
        self.log.iter().filter(|l| l.method == "PATCH").collect()
    }

    fn next_version(&mut self) -> String {
        self.version += 1;
        format!("W/\"{}\"", self.version)
    }

    fn location(&self, id: impl std::fmt::Display) -> String {
        format!("{}/Users/{id}", self.base)
    }

    /// Stores a new user from a POST body; returns its id.
    fn create(&mut self, body: Value) -> Result<UserId, Answer> {
        let Value::Object(mut user) = body else {
            return Err(error(
                400,
                Some("invalidSyntax"),
                "the body is not a JSON object",
            ));
        };
        user.remove("id");
        user.remove("meta");
        check_user(&user)?;
        let name = user_name(&user).to_lowercase();
        if self.names.contains_key(&name) {
            return Err(uniqueness());
        }
        let id = UserId::new();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut meta = json!({
            "resourceType": "User",
            "created": now,
            "lastModified": now,
            "location": self.location(id),
        });
        if self.behaviour.etags {
            meta["version"] = self.next_version().into();
        }
        user.insert("id".into(), id.to_string().into());
        user.insert("meta".into(), meta);
        set_schemas(&mut user);
        self.next_seq += 1;
        let seq = self.next_seq;
        self.index(id, &user);
        self.order.insert(seq, id);
        self.users.insert(
            id,
            Stored {
                seq,
                resource: JsonObject::new(&user),
            },
        );
        Ok(id)
    }

    fn index(&mut self, id: UserId, user: &Map<String, Value>) {
        self.names.insert(user_name(user).to_lowercase(), id);
        if let Some(external) = user.get("externalId").and_then(Value::as_str) {
            self.external
                .entry(external.to_owned())
                .or_default()
                .push(id);
        }
    }

    fn unindex(&mut self, id: UserId, user: &Value) {
        if let Some(name) = user.get("userName").and_then(Value::as_str) {
            self.names.remove(&name.to_lowercase());
        }
        if let Some(external) = user.get("externalId").and_then(Value::as_str)
            && let Some(ids) = self.external.get_mut(external)
        {
            ids.retain(|i| *i != id);
            if ids.is_empty() {
                self.external.remove(external);
            }
        }
    }

    /// Replaces a stored user's attributes (PUT, PATCH) after the checks every write makes;
    /// returns the user as stored.
    fn store(&mut self, id: UserId, mut user: Map<String, Value>) -> Result<JsonObject, Answer> {
        check_user(&user)?;
        let Some(stored) = self.users.get(&id).map(|s| s.resource.clone()) else {
            return Err(not_found(id));
        };
        let old = stored.to_value();
        let name = user_name(&user).to_lowercase();
        if self.names.get(&name).is_some_and(|owner| *owner != id) {
            return Err(uniqueness());
        }
        let mut meta = old.get("meta").cloned().unwrap_or_else(|| json!({}));
        let mut compare = old.clone();
        if let Some(o) = compare.as_object_mut() {
            o.remove("meta");
        }
        user.insert("id".into(), id.to_string().into());
        set_schemas(&mut user);
        if Value::Object(user.clone()) == compare {
            return Ok(stored);
        }
        meta["lastModified"] = chrono::Utc::now()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            .into();
        if self.behaviour.etags {
            meta["version"] = self.next_version().into();
        }
        user.insert("meta".into(), meta);
        self.unindex(id, &old);
        self.index(id, &user);
        let resource = JsonObject::new(&user);
        if let Some(stored) = self.users.get_mut(&id) {
            stored.resource = resource.clone();
        }
        Ok(resource)
    }

    fn delete(&mut self, id: UserId) -> bool {
        match self.users.remove(&id) {
            Some(stored) => {
                self.order.remove(&stored.seq);
                self.unindex(id, &stored.resource.to_value());
                true
            }
            None => false,
        }
    }
}

/// A running simulator; stops when dropped.
#[derive(Debug)]
pub struct ScimSim(Loopback<ScimState>);

impl ScimSim {
    /// Starts an empty simulator on a free loopback port, in its own thread and runtime (so
    /// it works from any test, sync or async).
    pub fn start() -> std::io::Result<ScimSim> {
        let state = |addr| ScimState {
            base: format!("http://{addr}{BASE_PATH}"),
            ..ScimState::default()
        };
        let app = |state, _| axum::Router::new().fallback(handle).with_state(state);
        Loopback::serve("scim-sim", 2, state, app).map(ScimSim)
    }

    /// The SCIM base URL, `http://127.0.0.1:PORT/scim/v2`.
    pub fn url(&self) -> String {
        format!("{}{BASE_PATH}", self.0.url())
    }

    /// Runs `f` with the simulator's state locked: add users, change the behaviour, read
    /// the users or the request log.
    pub fn with<T>(&self, f: impl FnOnce(&mut ScimState) -> T) -> T {
        self.0.with(f)
    }
}

/// What a handler decided, before logging.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(header::HeaderName, String)>,
    body: Value,
    /// A raw body instead of `body`.
    raw: Option<String>,
    drop: bool,
}

impl Answer {
    fn json(status: u16, body: Value) -> Self {
        Answer {
            status,
            headers: Vec::new(),
            body,
            raw: None,
            drop: false,
        }
    }

    fn empty(status: u16) -> Self {
        Answer::json(status, Value::Null)
    }

    fn header(mut self, name: header::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

fn error(status: u16, scim_type: Option<&str>, detail: &str) -> Answer {
    let mut body = json!({
        "schemas": [ERROR],
        "status": status.to_string(),
        "detail": detail,
    });
    if let Some(t) = scim_type {
        body["scimType"] = t.into();
    }
    Answer::json(status, body)
}

fn uniqueness() -> Answer {
    error(
        409,
        Some("uniqueness"),
        "One or more of the attribute values are already in use or are reserved",
    )
}

fn not_found(id: impl std::fmt::Display) -> Answer {
    error(404, None, &format!("Resource {id} not found"))
}

/// One request: carried out at once, answered when the simulated latency since its arrival
/// is up.
async fn handle(State(state): State<Arc<Mutex<ScimState>>>, request: Request) -> Response {
    let arrived = std::time::Instant::now();
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let query: BTreeMap<String, String> =
        url::form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let headers = request.headers().clone();
    let body = axum::body::to_bytes(request.into_body(), 16 << 20)
        .await
        .unwrap_or_default();
    let (fault, latency) = {
        let mut state = lock(&state);
        state.requests += 1;
        let n = state.requests;
        let fault = state.behaviour.faults.remove(&n);
        let failing = state.behaviour.failing_writes.filter(|_| method != "GET");
        let fault = fault.or(failing.map(|status| Fault::ServerError(status, None)));
        (fault, state.behaviour.latency)
    };
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let operations = (method == "PATCH")
        .then(|| parsed.as_ref().and_then(|b| b.get("Operations")).cloned())
        .flatten();
    let if_match = headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let before = match &fault {
        Some(Fault::Throttle(seconds)) => Some(
            error(429, None, "Too many requests").header(header::RETRY_AFTER, seconds.to_string()),
        ),
        Some(Fault::ServerError(status, retry_after)) => {
            let answer = error(*status, None, "Service unavailable");
            Some(match retry_after {
                Some(s) => answer.header(header::RETRY_AFTER, s.to_string()),
                None => answer,
            })
        }
        Some(Fault::Drop) => Some(Answer {
            drop: true,
            ..Answer::empty(200)
        }),
        Some(Fault::Answer(status, raw)) => Some(Answer {
            raw: Some(raw.clone()),
            ..Answer::empty(*status)
        }),
        _ => None,
    };
    let (answer, stall) = {
        let mut state = lock(&state);
        let mut answer = match before {
            Some(answer) => answer,
            None => serve(
                &mut state,
                &method,
                &path,
                &query,
                &headers,
                if_match.as_deref(),
                &body,
                parsed,
            ),
        };
        let mut stall = None;
        match fault {
            Some(Fault::DropAfterWrite) => answer.drop = true,
            Some(Fault::ServerErrorAfterWrite(status)) => {
                answer = error(status, None, "The upstream server did not answer in time");
            }
            Some(Fault::Stall(wait)) => stall = Some(wait),
            _ => {}
        }
        state.log.push(Logged {
            method,
            path,
            query,
            if_match,
            operations,
            status: if answer.drop { 0 } else { answer.status },
        });
        (answer, stall)
    };
    delay(arrived, latency).await;
    if let Some(wait) = stall {
        tokio::time::sleep(wait).await;
    }
    respond(answer)
}

fn respond(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = if answer.drop {
        broken(b"{\"schemas\":")
    } else if let Some(raw) = answer.raw {
        Body::from(raw)
    } else if answer.body.is_null() {
        Body::empty()
    } else {
        Body::from(answer.body.to_string())
    };
    response(status, body, "application/scim+json", answer.headers)
}

/// Answers one request that no fault replaced.
#[allow(clippy::too_many_arguments)]
fn serve(
    state: &mut ScimState,
    method: &str,
    path: &str,
    query: &BTreeMap<String, String>,
    headers: &HeaderMap,
    if_match: Option<&str>,
    body: &[u8],
    parsed: Option<Value>,
) -> Answer {
    if let Some(token) = &state.behaviour.token {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if sent != Some(token.as_str()) {
            return error(401, None, "Authentication is required")
                .header(header::WWW_AUTHENTICATE, "Bearer realm=\"SCIM\"");
        }
    }
    let Some(rest) = path.strip_prefix(BASE_PATH) else {
        return error(404, None, "Not found");
    };
    let id = match rest.strip_prefix("/Users") {
        Some("") | Some("/") => None,
        Some(r) => match r.strip_prefix('/') {
            Some(id) if !id.contains('/') => {
                Some(percent_decode(id).unwrap_or_else(|| id.to_owned()))
            }
            _ => return error(404, None, "Not found"),
        },
        None => return error(404, None, "Not found"),
    };
    let writes_body = matches!(method, "POST" | "PUT" | "PATCH");
    if writes_body && parsed.is_none() {
        let detail = if body.is_empty() {
            "the request has no body"
        } else {
            "the body is not JSON"
        };
        return error(400, Some("invalidSyntax"), detail);
    }
    let body = parsed.unwrap_or(Value::Null);
    match (method, id) {
        ("GET", None) => list(state, query),
        ("POST", None) => match state.create(body) {
            Ok(id) => match state.users.get(&id) {
                Some(stored) => single(state, 201, &stored.resource),
                None => not_found(id),
            },
            Err(answer) => answer,
        },
        ("GET", Some(id)) => match state.stored(&id) {
            Some(user) => single(state, 200, user),
            None => not_found(&id),
        },
        ("PUT" | "PATCH" | "DELETE", Some(text)) => {
            let Some((id, current)) = UserId::parse(&text)
                .and_then(|id| Some((id, state.users.get(&id)?.resource.to_value())))
            else {
                return not_found(&text);
            };
            if state.behaviour.etags
                && let Some(wanted) = if_match
                && wanted.trim() != "*"
                && Some(wanted.trim()) != current["meta"]["version"].as_str()
            {
                return error(
                    412,
                    None,
                    "Failed to update. Resource has changed on the server",
                );
            }
            match method {
                "PUT" => put(state, id, body),
                "PATCH" => patch(state, id, &current, &body),
                _ => {
                    state.delete(id);
                    Answer::empty(204)
                }
            }
        }
        _ => error(405, None, "Method not allowed"),
    }
}

/// A single user, with its location and ETag; the answer is the stored text.
fn single(state: &ScimState, status: u16, user: &JsonObject) -> Answer {
    let id = user.get_str("id").unwrap_or_default();
    let mut answer = Answer {
        raw: Some(user.to_json()),
        ..Answer::empty(status)
    }
    .header(header::LOCATION, state.location(&id));
    if state.behaviour.etags
        && let Some(version) = user
            .get("meta")
            .and_then(|meta| meta.get("version"))
            .and_then(|v| v.as_str())
    {
        answer = answer.header(header::ETAG, version);
    }
    answer
}

fn percent_decode(text: &str) -> Option<String> {
    let query = format!("x={}", text.replace('+', "%2B").replace('&', "%26"));
    let (_, value) = url::form_urlencoded::parse(query.as_bytes()).next()?;
    Some(value.into_owned())
}

// ----- listing and filters ----------------------------------------------------------------------

fn list(state: &ScimState, query: &BTreeMap<String, String>) -> Answer {
    let number = |name: &str| query.get(name).and_then(|v| v.trim().parse::<i64>().ok());
    let start = number("startIndex").unwrap_or(1).max(1) as usize;
    let count = number("count")
        .map_or(state.behaviour.default_page_size, |c| c.max(0) as usize)
        .min(state.behaviour.max_page_size);
    let (total, page): (usize, Vec<&JsonObject>) = match query.get("filter") {
        None if !state.behaviour.listing => {
            return error(
                403,
                None,
                "Listing users is not allowed; search with a filter",
            );
        }
        None => (
            state.users.len(),
            // Skipped users are not looked up.
            state
                .order
                .values()
                .skip(start - 1)
                .take(count)
                .filter_map(|id| state.users.get(id).map(|s| &s.resource))
                .collect(),
        ),
        Some(text) => match Filter::parse(text) {
            Ok(filter) => {
                let matched = filter.select(state);
                let page = matched
                    .iter()
                    .skip(start - 1)
                    .take(count)
                    .copied()
                    .collect();
                (matched.len(), page)
            }
            Err(why) => return error(400, Some("invalidFilter"), &why),
        },
    };
    // Written straight from the stored users: pages of a large directory stay cheap.
    let head = format!(
        "{{\"schemas\":[\"{LIST}\"],\"totalResults\":{total},\"startIndex\":{start},\
         \"itemsPerPage\":{},\"Resources\":[",
        page.len()
    );
    let mut body = Vec::with_capacity(head.len() + 2048 * page.len());
    body.extend_from_slice(head.as_bytes());
    for (i, user) in page.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        user.write_json(&mut body);
    }
    body.extend_from_slice(b"]}");
    Answer {
        raw: Some(String::from_utf8(body).unwrap_or_default()),
        ..Answer::empty(200)
    }
}

/// An attribute path: `userName`, `name.givenName`, `emails[type eq "work"].value`,
/// `urn:…:User:department`.
#[derive(Debug, Clone, PartialEq)]
struct AttrPath {
    /// The extension schema the attribute belongs to (`None` for the core schema).
    schema: Option<String>,
    attr: String,
    /// `[name eq value]`.
    select: Option<(String, Value)>,
    sub: Option<String>,
}

impl AttrPath {
    fn parse(text: &str) -> Result<AttrPath, String> {
        let text = text.trim();
        let bad = || format!("invalid attribute path: {text}");
        let (schema, rest) = if text.len() > 4 && text[..4].eq_ignore_ascii_case("urn:") {
            let head_end = text.find('[').unwrap_or(text.len());
            let colon = text[..head_end].rfind(':').ok_or_else(bad)?;
            let urn = &text[..colon];
            let schema = (!urn.eq_ignore_ascii_case(CORE)).then(|| urn.to_owned());
            (schema, &text[colon + 1..])
        } else {
            (None, text)
        };
        let (head, select, tail) = match rest.find('[') {
            Some(open) => {
                let close = rest.rfind(']').filter(|&c| c > open).ok_or_else(bad)?;
                let inner = &rest[open + 1..close];
                let (name, value) = comparison(inner)?;
                let tail = &rest[close + 1..];
                let tail = match tail.strip_prefix('.') {
                    Some(t) => Some(t),
                    None if tail.is_empty() => None,
                    None => return Err(bad()),
                };
                (&rest[..open], Some((name, value)), tail)
            }
            None => match rest.split_once('.') {
                Some((head, sub)) => (head, None, Some(sub)),
                None => (rest, None, None),
            },
        };
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
        };
        if !valid(head) || tail.is_some_and(|t| !valid(t)) {
            return Err(bad());
        }
        Ok(AttrPath {
            schema,
            attr: head.to_owned(),
            select,
            sub: tail.map(str::to_owned),
        })
    }
}

/// `name eq <JSON value>`.
fn comparison(text: &str) -> Result<(String, Value), String> {
    let text = text.trim();
    let (name, rest) = text
        .split_once(char::is_whitespace)
        .ok_or_else(|| format!("expected `attribute eq value`: {text}"))?;
    let (op, value) = rest
        .trim_start()
        .split_once(char::is_whitespace)
        .ok_or_else(|| format!("expected `attribute eq value`: {text}"))?;
    if !op.eq_ignore_ascii_case("eq") {
        return Err(format!("only `eq` is supported, not `{op}`"));
    }
    let value: Value = serde_json::from_str(value.trim())
        .map_err(|_| format!("invalid comparison value: {}", value.trim()))?;
    if value.is_array() || value.is_object() {
        return Err("a comparison value is a string, number, boolean or null".into());
    }
    Ok((name.to_owned(), value))
}

/// A `GET /Users` filter: `path eq value`.
struct Filter {
    path: AttrPath,
    value: Value,
}

impl Filter {
    fn parse(text: &str) -> Result<Filter, String> {
        let text = text.trim();
        // The path ends at the first space outside brackets.
        let mut depth = 0i32;
        let mut in_string = false;
        let mut escaped = false;
        let mut end = text.len();
        for (i, c) in text.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if in_string => escaped = true,
                '"' => in_string = !in_string,
                '[' if !in_string => depth += 1,
                ']' if !in_string => depth -= 1,
                c if c.is_whitespace() && depth == 0 && !in_string => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let path = AttrPath::parse(&text[..end])?;
        let (_, value) = comparison(&format!("x {}", &text[end..]))?;
        Ok(Filter { path, value })
    }

    fn select<'s>(&self, state: &'s ScimState) -> Vec<&'s JsonObject> {
        let p = &self.path;
        let plain = p.schema.is_none() && p.select.is_none() && p.sub.is_none();
        // The indexed attributes are looked up; the rest are searched.
        if plain && p.attr.eq_ignore_ascii_case("userName") {
            return self
                .value
                .as_str()
                .and_then(|v| state.stored_named(v))
                .into_iter()
                .collect();
        }
        if plain && p.attr.eq_ignore_ascii_case("externalId") {
            let ids = self
                .value
                .as_str()
                .and_then(|v| state.external.get(v))
                .cloned()
                .unwrap_or_default();
            let mut found: Vec<(u64, &JsonObject)> = ids
                .iter()
                .filter_map(|id| state.users.get(id).map(|s| (s.seq, &s.resource)))
                .collect();
            found.sort_by_key(|(seq, _)| *seq);
            return found.into_iter().map(|(_, u)| u).collect();
        }
        state
            .stored_users()
            .filter(|u| self.matches(&u.to_value()))
            .collect()
    }

    fn matches(&self, user: &Value) -> bool {
        let p = &self.path;
        let container = match &p.schema {
            Some(urn) => member(user, urn),
            None => Some(user),
        };
        let Some(value) = container.and_then(|c| member(c, &p.attr)) else {
            return false;
        };
        let exact = p.attr.eq_ignore_ascii_case("externalId") || p.attr.eq_ignore_ascii_case("id");
        let candidates: Vec<&Value> = match (value, &p.select, &p.sub) {
            (Value::Array(items), select, sub) => items
                .iter()
                .filter(|e| select.as_ref().is_none_or(|(n, v)| picks(e, n, v)))
                .filter_map(|e| match sub {
                    Some(s) => member(e, s),
                    None => Some(e),
                })
                .collect(),
            (_, Some(_), _) => Vec::new(),
            (object, None, Some(sub)) => member(object, sub).into_iter().collect(),
            (single, None, None) => vec![single],
        };
        candidates.into_iter().any(|c| equal(c, &self.value, exact))
    }
}

fn equal(a: &Value, b: &Value, exact: bool) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) if !exact => x.to_lowercase() == y.to_lowercase(),
        _ => a == b,
    }
}

fn picks(element: &Value, name: &str, wanted: &Value) -> bool {
    member(element, name).is_some_and(|v| equal(v, wanted, false))
}

/// An attribute of an object; names match without regard to case, as in SCIM.
fn member<'v>(object: &'v Value, name: &str) -> Option<&'v Value> {
    let object = object.as_object()?;
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// The key an object uses for `name` (its own spelling when it has one).
fn key_of(object: &Map<String, Value>, name: &str) -> String {
    object
        .keys()
        .find(|k| k.eq_ignore_ascii_case(name))
        .cloned()
        .unwrap_or_else(|| name.to_owned())
}

// ----- writes ---------------------------------------------------------------------------------

fn user_name(user: &Map<String, Value>) -> &str {
    user.get("userName")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The checks every stored user passes.
fn check_user(user: &Map<String, Value>) -> Result<(), Answer> {
    match user.get("userName") {
        Some(Value::String(name)) if !name.trim().is_empty() => {}
        _ => return Err(error(400, Some("invalidValue"), "userName is required")),
    }
    if user
        .get("active")
        .is_some_and(|a| !a.is_boolean() && !a.is_null())
    {
        return Err(error(400, Some("invalidValue"), "active must be a boolean"));
    }
    for multi in ["emails", "phoneNumbers", "addresses"] {
        if user.get(multi).is_some_and(|v| !v.is_array()) {
            return Err(error(
                400,
                Some("invalidSyntax"),
                &format!("{multi} must be a list"),
            ));
        }
    }
    Ok(())
}

/// `schemas`: the core schema and each extension the user has.
fn set_schemas(user: &mut Map<String, Value>) {
    let mut schemas = vec![Value::from(CORE)];
    schemas.extend(
        user.iter()
            .filter(|(k, v)| k.starts_with("urn:") && v.is_object())
            .map(|(k, _)| Value::from(k.as_str())),
    );
    user.insert("schemas".into(), Value::Array(schemas));
}

fn put(state: &mut ScimState, id: UserId, body: Value) -> Answer {
    let Value::Object(mut user) = body else {
        return error(400, Some("invalidSyntax"), "the body is not a JSON object");
    };
    user.remove("meta");
    user.remove("id");
    match state.store(id, user) {
        Ok(user) => single(state, 200, &user),
        Err(answer) => answer,
    }
}

fn patch(state: &mut ScimState, id: UserId, current: &Value, body: &Value) -> Answer {
    let schemas_ok = body["schemas"]
        .as_array()
        .is_some_and(|s| s.iter().any(|v| v.as_str() == Some(PATCH_OP)));
    let Some(operations) = body["Operations"].as_array().filter(|_| schemas_ok) else {
        return error(
            400,
            Some("invalidSyntax"),
            "a PATCH body is a PatchOp message with Operations",
        );
    };
    let Value::Object(mut user) = current.clone() else {
        return not_found(id);
    };
    user.remove("meta");
    for operation in operations {
        if let Err(answer) = apply(&mut user, operation) {
            return answer;
        }
    }
    match state.store(id, user) {
        Ok(user) if state.behaviour.patch_returns_user => single(state, 200, &user),
        Ok(user) => {
            let mut answer = Answer::empty(204).header(header::LOCATION, state.location(id));
            if let Some(version) = user
                .get("meta")
                .and_then(|meta| meta.get("version"))
                .and_then(|v| v.as_str())
            {
                answer = answer.header(header::ETAG, version);
            }
            answer
        }
        Err(answer) => answer,
    }
}

/// Applies one PATCH operation to a user's attributes.
fn apply(user: &mut Map<String, Value>, operation: &Value) -> Result<(), Answer> {
    let op = operation["op"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let value = operation.get("value");
    let path = match operation.get("path") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => {
            Some(AttrPath::parse(p).map_err(|why| error(400, Some("invalidPath"), &why))?)
        }
        Some(_) => return Err(error(400, Some("invalidPath"), "path must be a string")),
    };
    if let Some(p) = &path
        && p.schema.is_none()
        && ["id", "meta", "schemas"]
            .iter()
            .any(|r| p.attr.eq_ignore_ascii_case(r))
    {
        return Err(error(
            400,
            Some("mutability"),
            &format!("{} cannot be changed", p.attr),
        ));
    }
    match (op.as_str(), path, value) {
        ("add" | "replace", None, Some(Value::Object(values))) => {
            for (name, new) in values {
                let key = key_of(user, name);
                merge(user, key, new.clone(), op == "add");
            }
            Ok(())
        }
        ("add" | "replace", None, _) => Err(error(
            400,
            Some("invalidValue"),
            "without a path, the value is an object of attributes",
        )),
        ("add" | "replace", Some(_), None) => Err(error(
            400,
            Some("invalidValue"),
            "the operation has no value",
        )),
        ("add" | "replace", Some(path), Some(new)) => set(user, &path, new.clone(), op == "add"),
        ("remove", None, _) => Err(error(400, Some("noTarget"), "remove needs a path")),
        ("remove", Some(path), _) => {
            remove(user, &path);
            Ok(())
        }
        _ => Err(error(
            400,
            Some("invalidSyntax"),
            &format!("unknown operation `{op}`"),
        )),
    }
}

/// Puts `new` at `key`: lists are appended to by `add`, objects are merged, the rest set.
fn merge(object: &mut Map<String, Value>, key: String, new: Value, add: bool) {
    match (object.get_mut(&key), new) {
        (Some(Value::Array(items)), Value::Array(more)) if add => items.extend(more),
        (Some(Value::Array(items)), single) if add && !single.is_null() => items.push(single),
        (Some(Value::Object(inner)), Value::Object(more)) => {
            for (k, v) in more {
                let k = key_of(inner, &k);
                inner.insert(k, v);
            }
        }
        (_, new) => {
            object.insert(key, new);
        }
    }
}

/// The object an attribute lives in: the user, or its extension's object (made if missing).
fn container<'u>(
    user: &'u mut Map<String, Value>,
    schema: &Option<String>,
    create: bool,
) -> Option<&'u mut Map<String, Value>> {
    match schema {
        None => Some(user),
        Some(urn) => {
            let key = key_of(user, urn);
            if create && !user.get(&key).is_some_and(Value::is_object) {
                user.insert(key.clone(), Value::Object(Map::new()));
            }
            user.get_mut(&key)?.as_object_mut()
        }
    }
}

fn set(
    user: &mut Map<String, Value>,
    path: &AttrPath,
    new: Value,
    add: bool,
) -> Result<(), Answer> {
    let Some(object) = container(user, &path.schema, true) else {
        return Err(error(
            400,
            Some("invalidPath"),
            "the schema's attributes are not an object",
        ));
    };
    let key = key_of(object, &path.attr);
    match (&path.select, &path.sub) {
        (None, None) => merge(object, key, new, add),
        (None, Some(sub)) => {
            if !object.get(&key).is_some_and(Value::is_object) {
                object.insert(key.clone(), Value::Object(Map::new()));
            }
            if let Some(Value::Object(inner)) = object.get_mut(&key) {
                let sub = key_of(inner, sub);
                inner.insert(sub, new);
            }
        }
        (Some((name, wanted)), sub) => {
            let items = match object.get_mut(&key) {
                Some(Value::Array(items)) => items,
                _ => return Err(no_target(&path.attr)),
            };
            let mut hit = false;
            for element in items.iter_mut().filter(|e| picks(e, name, wanted)) {
                hit = true;
                match (sub, element) {
                    (Some(sub), Value::Object(e)) => {
                        let sub = key_of(e, sub);
                        e.insert(sub, new.clone());
                    }
                    (None, Value::Object(e)) => {
                        if let Value::Object(more) = &new {
                            for (k, v) in more {
                                let k = key_of(e, k);
                                e.insert(k, v.clone());
                            }
                        }
                    }
                    _ => {}
                }
            }
            if !hit {
                return Err(no_target(&path.attr));
            }
        }
    }
    Ok(())
}

fn no_target(attr: &str) -> Answer {
    error(
        400,
        Some("noTarget"),
        &format!("no value of '{attr}' matches the path filter"),
    )
}

fn remove(user: &mut Map<String, Value>, path: &AttrPath) {
    let Some(object) = container(user, &path.schema, false) else {
        return;
    };
    let key = key_of(object, &path.attr);
    match (&path.select, &path.sub) {
        (None, None) => {
            object.remove(&key);
        }
        (None, Some(sub)) => {
            if let Some(Value::Object(inner)) = object.get_mut(&key) {
                let sub = key_of(inner, sub);
                inner.remove(&sub);
                if inner.is_empty() {
                    object.remove(&key);
                }
            }
        }
        (Some((name, wanted)), sub) => {
            if let Some(Value::Array(items)) = object.get_mut(&key) {
                match sub {
                    None => items.retain(|e| !picks(e, name, wanted)),
                    Some(sub) => {
                        for element in items.iter_mut().filter(|e| picks(e, name, wanted)) {
                            if let Value::Object(e) = element {
                                let sub = key_of(e, sub);
                                e.remove(&sub);
                            }
                        }
                    }
                }
                if items.is_empty() {
                    object.remove(&key);
                }
            }
        }
    }
    if let Some(urn) = &path.schema {
        let key = key_of(user, urn);
        if user
            .get(&key)
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty)
        {
            user.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse() {
        let p = AttrPath::parse(r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!(p.attr, "emails");
        assert_eq!(p.select, Some(("type".into(), json!("work"))));
        assert_eq!(p.sub.as_deref(), Some("value"));
        let urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let p = AttrPath::parse(&format!("{urn}:manager.value")).unwrap();
        assert_eq!(p.schema.as_deref(), Some(urn));
        assert_eq!(
            (p.attr.as_str(), p.sub.as_deref()),
            ("manager", Some("value"))
        );
        let p = AttrPath::parse(&format!("{CORE}:userName")).unwrap();
        assert_eq!((p.schema, p.attr.as_str()), (None, "userName"));
        assert!(AttrPath::parse("emails[type = work]").is_err());
        assert!(AttrPath::parse("a b").is_err());
    }

    #[test]
    fn filters_parse_json_values() {
        let f = Filter::parse(r#"userName eq "a\"b\\c""#).unwrap();
        assert_eq!(f.value, json!("a\"b\\c"));
        let f = Filter::parse(r#"emails[type eq "work"].value eq "x y""#).unwrap();
        assert_eq!(f.path.attr, "emails");
        assert_eq!(f.value, json!("x y"));
        assert!(Filter::parse(r#"userName eq "open"#).is_err());
        assert!(Filter::parse(r#"userName co "x""#).is_err());
    }
}
