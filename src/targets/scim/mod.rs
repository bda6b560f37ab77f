//! SCIM 2.0 targets (RFC 7643, RFC 7644): users are listed from `/Users` page by page,
//! found with a filter, created with a POST and changed with PATCH operations that touch only
//! the fields that changed.
//!
//! A SCIM server is someone else's system, reached over a network that loses answers. So a
//! create that hits "already exists" (409) adopts the existing user; a POST whose answer was
//! lost is never sent again before looking for the user it may have created; a PATCH carries
//! the user's ETag and, when another writer got there first (412), is rebuilt on a fresh read;
//! and every answer is checked before it is believed.

mod endpoint;
mod list;
mod patch;
mod resource;

use std::borrow::Cow;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Map, Value as Json};
use url::Url;

use super::http::{Created, Http, Request, policy_of};
use super::{FieldChange, RawUser, Target, TargetError, TargetStats, TargetUser};
use crate::config::TargetConfig;
use crate::http::{Exchange, RetryPolicy, Step, Transient};
use crate::mapping::path::TargetSeg;
use crate::mapping::{Mapping, On, Record};
use endpoint::Users;
use resource::{eq_filter, same, scim_path, segments, value_at};

/// What a create came to: the user as it now stands, or the server's successful answer.
enum Sent {
    Standing(TargetUser),
    Answer(super::http::Reply),
}

/// Pages of a listing requested at once, when the server says how many users it holds.
const PAGES_AT_ONCE: usize = 4;

/// A mapping field as the SCIM target needs it.
#[derive(Debug)]
struct FieldInfo {
    /// Its place in the mapping's fields (and in a record).
    index: usize,
    /// Its target path as the mapping writes it.
    target: String,
    /// That path parsed.
    segs: Vec<TargetSeg>,
    /// Whether updates write it (not only creates).
    always: bool,
}

/// A SCIM 2.0 service provider's `/Users` endpoint.
#[derive(Debug)]
pub struct ScimTarget {
    http: std::sync::Arc<Http>,
    page_size: u32,
    fields: Vec<FieldInfo>,
    /// The mapping field users are matched on.
    match_key: FieldInfo,
}

impl ScimTarget {
    /// A target for the server at `config.url` (the SCIM base, e.g.
    /// `https://assets.example.com/scim/v2`), writing records of `mapping`, with the retry
    /// settings of the config.
    pub fn new(config: &TargetConfig, mapping: &Mapping) -> Result<ScimTarget, TargetError> {
        Self::with_policy(config, mapping, policy_of(config))
    }

    /// A target with an explicit retry policy (tests shorten the waits).
    pub fn with_policy(
        config: &TargetConfig,
        mapping: &Mapping,
        policy: RetryPolicy,
    ) -> Result<ScimTarget, TargetError> {
        let http = endpoint::connect(config, policy)?;
        let fields: Vec<FieldInfo> = mapping
            .fields()
            .iter()
            .enumerate()
            .map(|(index, f)| FieldInfo {
                index,
                target: f.target().to_owned(),
                segs: segments(f.target()),
                always: f.on() == On::Always,
            })
            .collect();
        let key = mapping.match_key();
        let match_key = FieldInfo {
            index: fields
                .iter()
                .find(|f| f.target == key)
                .map_or(usize::MAX, |f| f.index),
            target: key.to_owned(),
            segs: segments(key),
            always: true,
        };
        Ok(ScimTarget {
            http: std::sync::Arc::new(http),
            page_size: config.page_size.clamp(1, 1000),
            fields,
            match_key,
        })
    }

    /// `GET /Users/{id}`.
    async fn get_user(&self, id: &str) -> Result<TargetUser, TargetError> {
        let url = self.http.user_url(id)?;
        let what = "GET /Users/{id}";
        let reply = self.http.send(Method::GET, &url, None, None, what).await?;
        if !reply.ok() {
            return Err(self.http.refused(&reply, what));
        }
        resource::user(resource::json(&reply.body)?, reply.etag)
    }

    /// The user whose match key is the record's, if any.
    async fn find_by_key(&self, record: &Record) -> Result<Option<TargetUser>, TargetError> {
        let Some(value) = record.value(self.match_key.index) else {
            return Err(TargetError::Unsupported(format!(
                "the record has no value for the match key `{}`",
                self.match_key.target
            )));
        };
        self.find(&self.match_key.target, value).await
    }

    /// Sends a create: the user as it now stands when that is known without the answer's
    /// body (found after a lost answer, adopted after a 409, or read back after an empty
    /// answer), else the successful answer.
    async fn send_create(&self, record: &Record) -> Result<Sent, TargetError> {
        let what = "POST /Users";
        let url = self.http.users_url(&[]);
        let body = Json::Object(record.to_json());
        let request = Request {
            method: Method::POST,
            url: &url,
            body: Some(&body),
            if_match: None,
            what,
        };
        // Throttled requests were not carried out; any other failure may have created the
        // user before the answer was lost.
        let look = |last: &Transient| {
            let throttled = last.throttled;
            async move {
                if throttled {
                    Ok(None)
                } else {
                    self.find_by_key(record).await
                }
            }
        };
        let reply = match self.http.create(request, Some(look)).await? {
            Created::Found(user) => return Ok(Sent::Standing(user)),
            Created::Answer(reply) => reply,
        };
        if reply.ok() {
            if reply.body.iter().all(u8::is_ascii_whitespace) {
                // Created without saying what: read it back.
                let user = self.find_by_key(record).await?.ok_or_else(|| {
                    TargetError::Malformed(format!(
                        "{what} answered {} without the user, and no user has its {}",
                        reply.status, self.match_key.target
                    ))
                })?;
                return Ok(Sent::Standing(user));
            }
            return Ok(Sent::Answer(reply));
        }
        if reply.status == 409 {
            return self.adopt(record).await.map(Sent::Standing);
        }
        Err(self.http.refused(&reply, what))
    }

    /// After a 409: the existing user, brought in line with the record.
    async fn adopt(&self, record: &Record) -> Result<TargetUser, TargetError> {
        let Some(user) = self.find_by_key(record).await? else {
            return Err(TargetError::Rejected {
                status: 409,
                detail: format!(
                    "the server says the user exists, but no user has {} = {}",
                    self.match_key.target,
                    crate::diag::shorten(&record[&self.match_key.target].to_string(), 80)
                ),
            });
        };
        let changes = self.differences(&user, record);
        if changes.is_empty() {
            return Ok(user);
        }
        self.update(&user, &changes, record).await?;
        self.get_user(&user.id).await
    }

    /// The fields written on update whose values differ between the user and the record.
    fn differences(&self, user: &TargetUser, record: &Record) -> Vec<FieldChange> {
        self.fields
            .iter()
            .filter(|f| f.always)
            .filter_map(|f| {
                let new = record.value(f.index);
                let old = value_at(&user.data, &f.segs).filter(|v| !v.is_null());
                let fold = resource::folds_case(&f.segs);
                let unchanged = match (old, new) {
                    (Some(a), Some(b)) => same(a, b, fold),
                    (None, None) => true,
                    _ => false,
                };
                (!unchanged).then(|| FieldChange {
                    field: f.index,
                    target: f.target.clone(),
                    old: old.cloned(),
                    new: new.cloned(),
                })
            })
            .collect()
    }

    /// One PATCH of `changes` to `user`, rebuilt on a fresh read when the server says the
    /// user changed since it was read (412) or when an append may have been applied already.
    async fn patch(
        &self,
        user: &TargetUser,
        changes: &[FieldChange],
        record: &Record,
    ) -> Result<(), TargetError> {
        let mut patching = Patching {
            target: self,
            id: &user.id,
            changes,
            record,
            url: self.http.user_url(&user.id)?,
            data: Cow::Borrowed(&user.data),
            etag: user.etag.clone(),
            reread: false,
            appends: false,
        };
        self.http.run(&mut patching).await
    }
}

/// A PATCH of a user's changed fields, as the retry loop sends it: each attempt is built
/// on the user as last read.
struct Patching<'a> {
    target: &'a ScimTarget,
    /// The user's id.
    id: &'a str,
    changes: &'a [FieldChange],
    record: &'a Record,
    /// `…/Users/{id}`.
    url: Url,
    /// The user's attributes as last read.
    data: Cow<'a, Map<String, Json>>,
    /// The user's version as last read.
    etag: Option<String>,
    /// Whether the user was already read again after a 412.
    reread: bool,
    /// Whether the last PATCH sent appended to a list.
    appends: bool,
}

impl Patching<'_> {
    /// The request in errors.
    const WHAT: &'static str = "PATCH /Users/{id}";

    /// Reads the user again, so the next PATCH is built on what the server holds now.
    async fn read_again(&mut self) -> Result<(), TargetError> {
        let fresh = self.target.get_user(self.id).await?;
        self.etag = fresh.etag;
        self.data = Cow::Owned(fresh.data);
        Ok(())
    }
}

impl Exchange for Patching<'_> {
    type Output = ();
    type Error = TargetError;

    async fn turn(&self) {
        self.target.http.turn().await;
    }

    async fn attempt(&mut self) -> Step<(), TargetError> {
        let patch = patch::build(self.changes, &self.data, self.record);
        if patch.operations.is_empty() {
            return Step::Done(Ok(()));
        }
        self.appends = patch.appends;
        let body = patch.body();
        let http = &self.target.http;
        let request = Request {
            method: Method::PATCH,
            url: &self.url,
            body: Some(&body),
            if_match: self.etag.as_deref(),
            what: Self::WHAT,
        };
        let reply = match http.attempt(&request).await {
            Step::Done(Ok(reply)) => reply,
            other => return other.map(|_| ()),
        };
        if reply.ok() {
            Step::Done(Ok(()))
        } else if reply.status == 412 && !self.reread {
            self.reread = true;
            match self.read_again().await {
                Ok(()) => Step::Again,
                Err(error) => Step::Done(Err(error)),
            }
        } else {
            Step::Done(Err(http.refused(&reply, Self::WHAT)))
        }
    }

    fn meter(&self) -> Option<&crate::http::Meter> {
        Some(&self.target.http.stats.meter)
    }

    fn gave_up(&self, attempts: u32, last: Transient) -> TargetError {
        self.target.http.gave_up(Self::WHAT, attempts, &last.detail)
    }

    fn waiting(&self, attempt: u32, last: &Transient, delay: Duration) {
        self.target.http.waiting(Self::WHAT, attempt, last, delay);
    }

    async fn before_resend(&mut self, last: &Transient) -> Result<Option<()>, TargetError> {
        // An append that reached the server must not be made twice: look again.
        // (With an ETag, a repeat that finds the user changed is answered 412.)
        if self.appends && !last.throttled && self.etag.is_none() {
            self.read_again().await?;
        }
        Ok(None)
    }
}

#[async_trait::async_trait]
impl Target for ScimTarget {
    fn describe(&self) -> String {
        self.http.name().to_owned()
    }

    fn folds_case(&self, field: &str) -> bool {
        resource::folds_case(&segments(field))
    }

    async fn list(&self) -> Result<Vec<TargetUser>, TargetError> {
        let http = std::sync::Arc::clone(&self.http);
        let fetch = move |start, count| list::fetch(std::sync::Arc::clone(&http), start, count);
        list::all(fetch, self.page_size, PAGES_AT_ONCE).await
    }

    async fn list_each(
        &self,
        each: &mut (dyn FnMut(TargetUser) + Send),
    ) -> Result<(), TargetError> {
        let http = std::sync::Arc::clone(&self.http);
        let fetch = move |start, count| list::fetch(std::sync::Arc::clone(&http), start, count);
        let mut parsed = |user: RawUser<'_>| each(user.parse());
        list::each(fetch, self.page_size, PAGES_AT_ONCE, &mut parsed).await
    }

    async fn list_raw(
        &self,
        each: &mut (dyn for<'a> FnMut(RawUser<'a>) + Send),
    ) -> Option<Result<(), TargetError>> {
        let http = std::sync::Arc::clone(&self.http);
        let fetch = move |start, count| list::fetch(std::sync::Arc::clone(&http), start, count);
        Some(list::each(fetch, self.page_size, PAGES_AT_ONCE, each).await)
    }

    async fn find(&self, field: &str, value: &Json) -> Result<Option<TargetUser>, TargetError> {
        let segs = segments(field);
        let attribute = scim_path(&segs);
        let Some(filter) = eq_filter(&attribute, value) else {
            return Ok(None);
        };
        let url = self.http.users_url(&[("filter", &filter)]);
        let what = "GET /Users?filter";
        let reply = self.http.send(Method::GET, &url, None, None, what).await?;
        if !reply.ok() {
            return Err(self.http.refused(&reply, what));
        }
        let page = resource::page(&reply.body)?;
        let fold = resource::folds_case(&segs);
        let mut ids = std::collections::HashSet::new();
        // A server that ignores the filter must not make us pick someone else.
        let mut found: Vec<TargetUser> = page
            .users
            .into_iter()
            .filter(|u| value_at(&u.data, &segs).is_some_and(|v| same(v, value, fold)))
            .filter(|u| ids.insert(u.id.clone()))
            .collect();
        match found.len() {
            0 | 1 => Ok(found.pop()),
            n => Err(TargetError::Rejected {
                status: 409,
                detail: format!(
                    "{n} users have {attribute} = {}; it must identify one user",
                    crate::diag::shorten(&value.to_string(), 80)
                ),
            }),
        }
    }

    async fn create(&self, record: &Record) -> Result<TargetUser, TargetError> {
        match self.send_create(record).await? {
            Sent::Standing(user) => Ok(user),
            Sent::Answer(reply) => resource::user(resource::json(&reply.body)?, reply.etag),
        }
    }

    async fn create_id(&self, record: &Record) -> Result<String, TargetError> {
        match self.send_create(record).await? {
            Sent::Standing(user) => Ok(user.id),
            Sent::Answer(reply) => resource::created_id(&reply.body),
        }
    }

    async fn update(
        &self,
        user: &TargetUser,
        changes: &[FieldChange],
        record: &Record,
    ) -> Result<(), TargetError> {
        self.patch(user, changes, record).await
    }

    fn stats(&self) -> &TargetStats {
        &self.http.stats
    }

    fn rate(&self) -> Option<crate::http::Rate> {
        self.http.rate()
    }
}
