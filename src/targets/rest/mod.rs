//! The generic REST target: any user API that an API description ([`api`]) can describe,
//! with Snipe-IT built in as a preset.
//!
//! Users are read back into the layout the mapping writes (`[user] fields`, HTML escapes
//! undone) so that an unchanged user compares equal and a second run writes nothing.
//! Idempotent requests are retried; a create (a POST) is never simply sent again: after a
//! transient failure the user is first looked up by the match key, since the first request
//! may have been carried out. A create the API refuses because the user already exists
//! becomes an update of that user.
//!
//! Snipe-IT departments: the shipped mapping (`mappings/snipeit.toml`) writes
//! `department_id` through its lookup table of the admin's department ids, and the preset
//! reads a listed user's `department.id` back into `department_id`, so the two compare. A
//! mapping may instead write department names into `department`: the preset's `[[resolve]]`
//! then looks each name up with `GET /api/v1/departments?search=` (once per name and run)
//! and sends its id as `department_id`; a name Snipe-IT does not know fails that user.

mod answer;
pub mod api;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use reqwest::Method;
use serde_json::{Map, Value as Json, json};
use url::Url;

pub use api::{ApiDescription, Needs, Paging};

pub(crate) use answer::send;
use answer::{flatten_message, message_of};

use super::http::{Created, Http, Request, policy_of};
use super::{FieldChange, Target, TargetError, TargetStats, TargetUser};
use crate::config::{RestApi, TargetConfig};
use crate::diag::{Problem, SourceText, shorten};
use crate::http::{RetryPolicy, Transient};
use crate::mapping::{Active, Mapping, On, Record};

use api::Operation;

/// No listing reads more pages than this: a server that never ends its list is an error.
const MAX_PAGES: usize = 1_000_000;

/// Reads the API description a config names (a preset or a templates file), with every
/// problem in it. `validate` calls this without touching the network.
pub fn load_description(api: &RestApi, needs: Needs) -> Result<ApiDescription, Vec<Problem>> {
    let source = match api {
        RestApi::Preset(preset) => SourceText::new(
            format!("preset {} (built in)", preset.name()),
            api::preset(*preset),
        ),
        RestApi::Templates(path) => {
            let name = path.display().to_string();
            match std::fs::read_to_string(path) {
                Ok(text) => SourceText::new(name, text),
                Err(e) => {
                    let source = SourceText::new(&name, "");
                    return Err(vec![Problem::error(
                        &source,
                        0..0,
                        format!("cannot read the API description {name}: {e}"),
                    )]);
                }
            }
        }
    };
    api::parse(&source, needs)
}

/// Problems as one error: each on its own line, `file:line:col: error: … (help: …)`.
pub(crate) fn description_error(problems: &[Problem]) -> TargetError {
    let lines: Vec<String> = problems
        .iter()
        .map(|p| match &p.hint {
            Some(hint) => format!("{} (help: {hint})", p.one_line()),
            None => p.one_line(),
        })
        .collect();
    TargetError::Unsupported(format!("bad API description:\n{}", lines.join("\n")))
}

/// What the target needs to know of the mapping.
#[derive(Debug, Clone)]
struct MappingInfo {
    match_key: String,
    active: Option<Active>,
    /// Every field's target path, in the mapping's order.
    targets: Vec<String>,
    /// Fields written only when a user is created.
    create_only: Vec<String>,
}

impl MappingInfo {
    fn of(mapping: &Mapping) -> MappingInfo {
        MappingInfo {
            match_key: mapping.match_key().to_string(),
            active: mapping.active_field().cloned(),
            targets: mapping
                .fields()
                .iter()
                .map(|f| f.target().to_string())
                .collect(),
            create_only: mapping
                .fields()
                .iter()
                .filter(|f| f.on() == On::Create)
                .map(|f| f.target().to_string())
                .collect(),
        }
    }
}

/// A REST API's users, as an API description says to reach them.
#[derive(Debug)]
pub struct RestTarget {
    api: ApiDescription,
    client: Http,
    list_enabled: bool,
    page_size: u32,
    mapping: MappingInfo,
    /// Resolved names: (resolver, name in lower case) → id.
    resolved: Mutex<HashMap<(usize, String), Json>>,
}

impl RestTarget {
    /// A target for `config` (its `preset` or `templates`), writing records of `mapping`.
    pub fn new(config: &TargetConfig, mapping: &Mapping) -> Result<RestTarget, TargetError> {
        Self::with_policy(config, mapping, policy_of(config))
    }

    /// Like [`RestTarget::new`] with an explicit retry policy (tests shorten the waits).
    pub fn with_policy(
        config: &TargetConfig,
        mapping: &Mapping,
        policy: RetryPolicy,
    ) -> Result<RestTarget, TargetError> {
        let Some(api) = &config.api else {
            return Err(TargetError::Unsupported(
                "a rest target needs `preset` or `templates`".to_string(),
            ));
        };
        let api = load_description(api, Needs::Writes).map_err(|p| description_error(&p))?;
        Self::from_description(api, config, MappingInfo::of(mapping), policy)
    }

    fn from_description(
        api: ApiDescription,
        config: &TargetConfig,
        mapping: MappingInfo,
        policy: RetryPolicy,
    ) -> Result<RestTarget, TargetError> {
        // A URL may carry a user name and password; messages show neither.
        let mut shown = config.url.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        let name = format!("{} at {shown}", api.name);
        let mut base = config.url.clone();
        base.set_query(None);
        base.set_fragment(None);
        Ok(RestTarget {
            client: Http::new(config, policy, name, base, &answer::REST)?,
            api,
            list_enabled: config.list,
            page_size: config.page_size.max(1),
            mapping,
            resolved: Mutex::new(HashMap::new()),
        })
    }

    /// A target that only reads, for another target that writes its own way (Oomnitza's
    /// bulk uploads): `text` is its API description, reported under `name`.
    pub(crate) fn reader(
        text: &str,
        name: &str,
        config: &TargetConfig,
        mapping: &Mapping,
        policy: RetryPolicy,
    ) -> Result<RestTarget, TargetError> {
        let source = SourceText::new(name, text);
        let api = api::parse(&source, Needs::Reads).map_err(|p| description_error(&p))?;
        Self::from_description(api, config, MappingInfo::of(mapping), policy)
    }

    /// The API description in use.
    pub fn description(&self) -> &ApiDescription {
        &self.api
    }

    /// The HTTP client, for a target built on this one.
    pub(crate) fn client(&self) -> &Http {
        &self.client
    }

    fn operation<'a>(
        &self,
        op: &'a Option<Operation>,
        name: &str,
    ) -> Result<&'a Operation, TargetError> {
        op.as_ref().ok_or_else(|| {
            TargetError::Unsupported(format!(
                "{} has no [{name}] in {}",
                self.client.name(),
                self.api.source()
            ))
        })
    }

    fn url(&self, op: &Operation, vars: &Json) -> Result<Url, TargetError> {
        let written = self
            .api
            .url(&op.name, vars)
            .map_err(TargetError::Unsupported)?;
        self.client.url(&written)
    }

    fn body(&self, op: &Operation, vars: &Json) -> Result<Option<Json>, TargetError> {
        self.api
            .body(&op.name, vars)
            .map_err(TargetError::Unsupported)
    }

    /// Sends an operation: retried when its method is idempotent, once for a POST.
    async fn call(
        &self,
        op: &Operation,
        url: &Url,
        body: Option<&Json>,
        what: &str,
    ) -> Result<(u16, Json), TargetError> {
        let answer = if op.method == Method::POST {
            let reply = self
                .client
                .send_once(op.method.clone(), url, body, None, what)
                .await?;
            answer::read(&self.client, reply, what)?
        } else {
            send(&self.client, op.method.clone(), url, body, what).await?
        };
        let body = self.refused(answer.status, answer.body)?;
        Ok((answer.status, body))
    }

    /// An answer that says it failed although its status is 2xx, as a refusal.
    fn refused(&self, status: u16, body: Json) -> Result<Json, TargetError> {
        let Some(error) = &self.api.error else {
            return Ok(body);
        };
        if json_at(&body, &error.path) != Some(&error.equals) {
            return Ok(body);
        }
        let detail = self
            .api
            .message
            .as_deref()
            .and_then(|path| json_at(&body, path))
            .and_then(flatten_message)
            .or_else(|| message_of(&body))
            .unwrap_or_else(|| "no details".to_string());
        Err(TargetError::Rejected {
            status,
            detail: shorten(&self.client.scrub(&detail), 300),
        })
    }

    /// A user object from an answer, in the layout the mapping writes.
    fn user_from(&self, item: &Json) -> Result<TargetUser, TargetError> {
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
    fn users_in(&self, body: &Json, op: &Operation) -> Result<Vec<TargetUser>, TargetError> {
        match json_at(body, &op.items) {
            Some(Json::Array(items)) => items.iter().map(|i| self.user_from(i)).collect(),
            Some(Json::Null) | None if op.name == "find" => Ok(Vec::new()),
            Some(item @ Json::Object(_)) if op.name == "find" => Ok(vec![self.user_from(item)?]),
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
    fn same(&self, field: &str, a: &Json, b: &Json) -> bool {
        if a == b {
            return true;
        }
        match (text_of(a), text_of(b)) {
            (Some(x), Some(y)) if self.folds_case(field) => x.to_lowercase() == y.to_lowercase(),
            (Some(x), Some(y)) => x == y,
            _ => false,
        }
    }

    /// `fields` with every name the API wants as an id replaced by its id.
    async fn resolved_fields(
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
        Ok(fields)
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

    /// The user a successful create answered with, else looked up.
    async fn created(
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

    async fn find_by_key(&self, record: &Record) -> Result<Option<TargetUser>, TargetError> {
        match record.get(&self.mapping.match_key) {
            Some(value) => self.find(&self.mapping.match_key, value).await,
            None => Ok(None),
        }
    }

    /// After a create was refused: if the user exists after all, it is updated to the record
    /// and returned; otherwise the refusal stands.
    async fn existing(
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

    fn is_deactivation(&self, changes: &[FieldChange]) -> bool {
        match (&self.mapping.active, changes) {
            (Some(active), [only]) => {
                only.target == active.field && only.new.as_ref() == Some(&active.inactive)
            }
            _ => false,
        }
    }
}

#[async_trait::async_trait]
impl Target for RestTarget {
    fn describe(&self) -> String {
        self.client.name().to_string()
    }

    fn folds_case(&self, field: &str) -> bool {
        // Names are resolved regardless of case, so they compare that way too.
        self.api.folds_case.iter().any(|f| f == field)
            || self.api.resolve.iter().any(|r| r.field == field)
    }

    async fn list(&self) -> Result<Vec<TargetUser>, TargetError> {
        if !self.list_enabled {
            return Err(TargetError::Unsupported(format!(
                "{}: listing is turned off (`list = false`)",
                self.client.name()
            )));
        }
        let op = self.operation(&self.api.list, "list")?;
        let limit = u64::from(self.page_size);
        let mut users: Vec<TargetUser> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut offset = 0u64;
        let mut page = op.first_page;
        let mut cursor = Json::Null;
        let mut link: Option<Url> = None;
        for number in 1..=MAX_PAGES {
            let url = match link.take() {
                Some(url) => url,
                None => {
                    let vars =
                        json!({ "page": page, "offset": offset, "limit": limit, "cursor": cursor });
                    self.url(op, &vars)?
                }
            };
            let what = format!("listing users (page {number})");
            let (_, body) = self.call(op, &url, None, &what).await?;
            let listed = self.users_in(&body, op)?;
            let count = listed.len() as u64;
            let mut fresh = 0;
            for user in listed {
                if seen.insert(user.id.clone()) {
                    fresh += 1;
                    users.push(user);
                }
            }
            if count > 0 && fresh == 0 {
                return Err(TargetError::Malformed(format!(
                    "{}: page {number} of the user list repeats users already listed",
                    self.client.name()
                )));
            }
            let total = op
                .total
                .as_deref()
                .and_then(|p| json_at(&body, p))
                .and_then(Json::as_u64);
            let done = |listed: u64| count == 0 || total.map_or(count < limit, |t| listed >= t);
            match op.paging {
                Paging::None => return Ok(users),
                Paging::Offset => {
                    offset += count;
                    if done(offset) {
                        return Ok(users);
                    }
                }
                Paging::Page => {
                    page += 1;
                    if done(users.len() as u64) {
                        return Ok(users);
                    }
                }
                Paging::Next | Paging::Cursor => {
                    let next = op
                        .next
                        .as_deref()
                        .and_then(|p| json_at(&body, p))
                        .filter(|v| !is_empty(v));
                    match (op.paging, next) {
                        (_, None) => return Ok(users),
                        (Paging::Next, Some(Json::String(next))) => {
                            link = Some(self.client.follow(&url, next)?)
                        }
                        (Paging::Cursor, Some(next)) if *next != cursor => cursor = next.clone(),
                        (_, Some(other)) => {
                            return Err(TargetError::Malformed(format!(
                                "{}: page {number} of the user list has an unusable next page: {}",
                                self.client.name(),
                                self.client.scrub(&shorten(&other.to_string(), 80))
                            )));
                        }
                    }
                }
            }
        }
        Err(TargetError::Malformed(format!(
            "{}: the user list did not end after {MAX_PAGES} pages",
            self.client.name()
        )))
    }

    async fn find(&self, field: &str, value: &Json) -> Result<Option<TargetUser>, TargetError> {
        let op = self.operation(&self.api.find, "find")?;
        let vars = json!({ "field": field, "value": value, "limit": self.page_size });
        let url = self.url(op, &vars)?;
        let what = format!("looking up {field}");
        let (_, body) = self.call(op, &url, None, &what).await?;
        let mut matches: Vec<TargetUser> = self
            .users_in(&body, op)?
            .into_iter()
            .filter(|u| json_at_map(&u.data, field).is_some_and(|v| self.same(field, v, value)))
            .collect();
        match matches.len() {
            0 => Ok(None),
            1 => Ok(matches.pop()),
            n => Err(TargetError::Malformed(format!(
                "{}: {n} users have the same {field}",
                self.client.name()
            ))),
        }
    }

    async fn create(&self, record: &Record) -> Result<TargetUser, TargetError> {
        let op = self.operation(&self.api.create, "create")?;
        let fields = self.resolved_fields(record.to_json()).await?;
        let vars = json!({ "record": fields });
        let url = self.url(op, &vars)?;
        let body = self.body(op, &vars)?;
        let what = "creating a user";
        let request = Request {
            method: op.method.clone(),
            url: &url,
            body: body.as_ref(),
            if_match: None,
            what,
        };
        // The request may have been carried out before it failed: look before resending.
        let key = record.get(&self.mapping.match_key);
        let look = key.map(|_| |_: &Transient| self.find_by_key(record));
        let reply = match self.client.create(request, look).await? {
            Created::Answer(reply) => reply,
            Created::Found(user) => return Ok(user),
        };
        match answer::read(&self.client, reply, what) {
            Ok(answer) => match self.refused(answer.status, answer.body) {
                Ok(answer) => self.created(op, &answer, record).await,
                Err(refusal) => self.existing(refusal, record).await,
            },
            Err(refusal @ TargetError::Rejected { .. }) => self.existing(refusal, record).await,
            Err(error) => Err(error),
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
        let op = match &self.api.deactivate {
            Some(op) if self.is_deactivation(changes) => op,
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
        let what = if op.name == "deactivate" {
            "deactivating a user"
        } else {
            "updating a user"
        };
        self.call(op, &url, body.as_ref(), what).await?;
        Ok(())
    }

    fn stats(&self) -> &TargetStats {
        &self.client.stats
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The value at a dotted path (`rows`, `data.items`, `links.next`, `rows.0`); the empty
/// path (or `.`) is the value itself.
pub(crate) fn json_at<'a>(value: &'a Json, path: &str) -> Option<&'a Json> {
    if path.is_empty() || path == "." {
        return Some(value);
    }
    path.split('.').try_fold(value, |v, key| match v {
        Json::Object(map) => map.get(key),
        Json::Array(items) => items.get(key.parse::<usize>().ok()?),
        _ => None,
    })
}

/// [`json_at`] on an object.
pub(crate) fn json_at_map<'a>(map: &'a Map<String, Json>, path: &str) -> Option<&'a Json> {
    match path.split_once('.') {
        None => map.get(path),
        Some((first, rest)) => json_at(map.get(first)?, rest),
    }
}

fn display_path(path: &str) -> &str {
    if path.is_empty() { "." } else { path }
}

/// A value as text when it is a string or a number.
pub(crate) fn text_of(value: &Json) -> Option<String> {
    match value {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Whether a listed value means "nothing": `null` or an empty string.
pub(crate) fn is_empty(value: &Json) -> bool {
    match value {
        Json::Null => true,
        Json::String(s) => s.is_empty(),
        _ => false,
    }
}

/// Undoes HTML escaping in every string of `value`.
fn unescape_all(value: &mut Json) {
    match value {
        Json::String(s) if s.contains('&') => *s = unescape_html(s),
        Json::Array(items) => items.iter_mut().for_each(unescape_all),
        Json::Object(map) => map.values_mut().for_each(unescape_all),
        _ => {}
    }
}

/// `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;` and numeric references decoded; anything
/// else is left as it is.
fn unescape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest[1..]
            .char_indices()
            .take(12)
            .find(|(_, c)| *c == ';')
            .and_then(|(end, _)| {
                let entity = &rest[1..1 + end];
                let c = match entity {
                    "amp" => '&',
                    "lt" => '<',
                    "gt" => '>',
                    "quot" => '"',
                    "apos" => '\'',
                    _ => {
                        let number = entity.strip_prefix('#')?;
                        let code = match number.strip_prefix(['x', 'X']) {
                            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                            None => number.parse().ok()?,
                        };
                        char::from_u32(code)?
                    }
                };
                Some((c, end + 2))
            });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_are_undone_once() {
        assert_eq!(unescape_html("O&#039;Brien &amp; Sons"), "O'Brien & Sons");
        assert_eq!(
            unescape_html("&lt;b&gt; &quot;x&quot; &#x41;"),
            "<b> \"x\" A"
        );
        assert_eq!(
            unescape_html("&amp;amp; & &unknown; &#99999999;"),
            "&amp; & &unknown; &#99999999;"
        );
        assert_eq!(unescape_html("trailing &"), "trailing &");
        assert_eq!(unescape_html("é&amp;ü"), "é&ü");
    }

    proptest::proptest! {
        #[test]
        fn unescaping_takes_any_text(text in "\\PC*", tail in "(&(#x?[0-9a-fA-F]{0,9}|[a-z]{0,6});?)*") {
            let text = format!("{text}{tail}");
            let out = unescape_html(&text);
            proptest::prop_assert!(out.len() <= text.len() + 4 * text.matches('&').count());
            if !text.contains('&') {
                proptest::prop_assert_eq!(out, text);
            }
        }
    }

    #[test]
    fn paths_reach_into_objects_and_lists() {
        let v = json!({"a": {"b": [1, {"c": true}]}});
        assert_eq!(json_at(&v, "a.b.1.c"), Some(&json!(true)));
        assert_eq!(json_at(&v, ""), Some(&v));
        assert_eq!(json_at(&v, "a.x"), None);
        assert_eq!(json_at(&v, "a.b.z"), None);
    }
}
