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
//! `department_id` (and the location's, the company's and the manager's ids) through
//! `refers`, the sync finding each id by name in the lists the preset describes
//! (`[entities.*]`, `entities.rs`); the preset reads a listed user's `department.id` back
//! into `department_id`, so the two compare. A mapping may instead write department names
//! into `department`: the preset's `[[resolve]]` then looks each name up with `GET
//! /api/v1/departments?search=` (once per name and run) and sends its id as
//! `department_id`; a name Snipe-IT does not know fails that user.
//!
//! This file holds the target, how it is built and how its requests are sent (a create
//! included, for the look before sending it again); `list.rs` lists and finds users,
//! `write.rs` follows up creates and sends updates, `user.rs` reads a user object from an
//! answer, `resolve.rs` turns names into ids, `json.rs` reads values out of answers and
//! `answer.rs` speaks JSON over the shared HTTP client, `holdings.rs` lists what a user
//! holds, `entities.rs` lists and creates the departments, locations and companies users
//! refer to.

mod answer;
pub mod api;
mod entities;
mod holdings;
mod json;
mod list;
mod resolve;
mod session;
mod user;
mod write;

use std::collections::HashMap;
use std::sync::Mutex;

use reqwest::Method;
use serde_json::{Value as Json, json};
use url::Url;

pub use api::{ApiDescription, Needs, Paging};

pub(crate) use answer::send;
use answer::{flatten_message, message_of};
pub(crate) use json::{json_at, text_of};

use super::http::{Created, Http, Request, policy_of};
use super::{
    Entity, EntityKind, FieldChange, Holding, Target, TargetError, TargetStats, TargetUser,
};
use crate::config::{RestApi, TargetConfig};
use crate::diag::{Problem, SourceText, shorten};
use crate::http::{RetryPolicy, Transient};
use crate::mapping::{Active, Mapping, On, Record};

use api::Operation;

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
        let session = session::spec(&api, config, &base)?;
        Ok(RestTarget {
            client: Http::with_session(
                config,
                policy,
                name,
                base,
                (&answer::REST, api.limit),
                session,
            )?,
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
            .map_err(|e| TargetError::Unsupported(e.to_string()))?;
        self.client.url(&written)
    }

    fn body(&self, op: &Operation, vars: &Json) -> Result<Option<Json>, TargetError> {
        self.api
            .body(&op.name, vars)
            .map_err(|e| TargetError::Unsupported(e.to_string()))
    }

    /// Sends an operation: retried when its method is idempotent, once for a POST.
    async fn call(
        &self,
        op: &Operation,
        url: &Url,
        body: Option<&Json>,
        what: &str,
    ) -> Result<(u16, Json), TargetError> {
        let answer = self.call_answer(op, url, body, what).await?;
        Ok((answer.status, answer.body))
    }

    /// Like [`RestTarget::call`], with the whole answer (its `Content-Range` too).
    async fn call_answer(
        &self,
        op: &Operation,
        url: &Url,
        body: Option<&Json>,
        what: &str,
    ) -> Result<answer::Answer, TargetError> {
        let answer = if op.method == Method::POST {
            let request = Request {
                method: op.method.clone(),
                url,
                body,
                if_match: None,
                what,
            };
            let reply = self.client.send_once(request).await?;
            answer::read(&self.client, reply, what)?
        } else {
            send(&self.client, op.method.clone(), url, body, what).await?
        };
        let body = self.refused(answer.status, answer.body)?;
        Ok(answer::Answer { body, ..answer })
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
        self.list_users().await
    }

    async fn find(&self, field: &str, value: &Json) -> Result<Option<TargetUser>, TargetError> {
        self.find_user(field, value).await
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
        self.write_changes(user, changes, record).await
    }

    async fn holdings(&self, user: &TargetUser) -> Result<Option<Vec<Holding>>, TargetError> {
        self.holdings_of(user).await
    }

    fn entity_kinds(&self) -> Vec<EntityKind> {
        self.kinds()
    }

    async fn list_entities(&self, kind: &str) -> Result<Vec<Entity>, TargetError> {
        self.entities_of(kind).await
    }

    async fn create_entity(&self, kind: &str, name: &str) -> Result<Entity, TargetError> {
        self.new_entity(kind, name).await
    }

    fn stats(&self) -> &TargetStats {
        &self.client.stats
    }

    fn rate(&self) -> Option<crate::http::Rate> {
        self.client.rate()
    }

    async fn close(&self) {
        self.client.close().await;
    }
}
