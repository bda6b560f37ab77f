//! The asset systems users are written to.
//!
//! Every target offers the same operations to the sync engine ([`Target`]): list its users,
//! find one by a field, create one, and update the fields that changed. Deactivating and
//! reactivating are updates of the mapping's active field, so they need nothing of their
//! own. A target with a bulk API (Oomnitza) also takes writes in batches.
//!
//! A target user is held as the target returns it, laid out by the same target paths the
//! mapping writes (`name.givenName`, `emails[type eq "work"].value`), so the engine reads
//! each mapped field from it with [`Field::get`](crate::mapping::Field::get). A target that
//! lists many users (SCIM) also hands them over unparsed ([`Target::list_raw`]): each user's
//! members as their JSON text, from which the mapping reads the same fields in place.

mod http;
pub mod oomnitza;
pub mod rest;
pub mod scim;
mod signin;

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value as Json};

use crate::config::{Config, TargetKind};
use crate::mapping::{Mapping, RawObject, Record};

pub use oomnitza::OomnitzaTarget;
pub use rest::RestTarget;
pub use scim::ScimTarget;

/// A user as the target holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetUser {
    /// The target's own id of the user (SCIM `id`, a REST object's id).
    pub id: String,
    /// The user's attributes as the target returned them.
    pub data: Map<String, Json>,
    /// The version the target gave (an HTTP ETag), sent back with `If-Match` on writes.
    pub etag: Option<String>,
}

/// A listed user as the target sent it, read only as far as its top-level members (each
/// kept as its JSON text, borrowed from the page): a mapping reads the values it compares
/// in place ([`Mapping::read_raw`](crate::mapping::Mapping::read_raw)) instead of building
/// the user whole.
#[derive(Debug)]
pub struct RawUser<'a> {
    /// The target's own id of the user.
    pub id: String,
    /// The version the target gave, as in [`TargetUser::etag`].
    pub etag: Option<String>,
    /// The user's members.
    pub data: RawData<'a>,
}

/// What a [`RawUser`] holds of the user.
#[derive(Debug)]
pub enum RawData<'a> {
    /// Its members as their text.
    Members(RawObject<'a>),
    /// The user parsed whole already (a page out of the ordinary was read so).
    Parsed(Map<String, Json>),
}

impl RawUser<'_> {
    /// The user parsed whole.
    pub fn parse(self) -> TargetUser {
        TargetUser {
            id: self.id,
            data: match self.data {
                RawData::Members(members) => members.to_map(),
                RawData::Parsed(data) => data,
            },
            etag: self.etag,
        }
    }
}

/// One mapped field whose value differs between the record and the target user.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    /// The field's place in [`Mapping::fields`](crate::mapping::Mapping::fields).
    pub field: usize,
    /// Its target path as the mapping writes it (`name.givenName`).
    pub target: String,
    /// The target's value now; `None` when it has none.
    pub old: Option<Json>,
    /// The value to write; `None` removes it.
    pub new: Option<Json>,
}

/// One write of a batch (targets with a bulk API).
#[derive(Debug, Clone)]
pub enum Write {
    /// Create this user.
    Create {
        /// The whole record.
        record: Record,
    },
    /// Change these fields of an existing user.
    Update {
        /// The user as the target holds it.
        user: TargetUser,
        /// The fields that change (the active field for a deactivation).
        changes: Vec<FieldChange>,
        /// The whole record, for APIs that take the user whole.
        record: Record,
    },
}

/// What kind of thing a target user holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HoldingKind {
    /// Hardware: a laptop, a phone.
    Asset,
    /// A seat of a software licence.
    Licence,
    /// An accessory: a dock, a headset.
    Accessory,
}

impl HoldingKind {
    /// Its name in API descriptions, reports and the CSV of changes.
    pub fn name(self) -> &'static str {
        match self {
            HoldingKind::Asset => "asset",
            HoldingKind::Licence => "licence",
            HoldingKind::Accessory => "accessory",
        }
    }
}

/// One thing assigned to a target user (checked out to them), as the target lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Holding {
    /// Asset, licence or accessory.
    pub kind: HoldingKind,
    /// The target's id of the item.
    pub id: String,
    /// Its name (`MacBook Pro`).
    pub name: String,
    /// Its asset tag or serial number, when it has one (`LAPTOP-0042`).
    pub tag: Option<String>,
}

impl Holding {
    /// How a person reads it: `LAPTOP-0042 "MacBook Pro"`, or `"Dock"` without a tag.
    pub fn describe(&self) -> String {
        let name = crate::diag::shorten(&self.name, 60);
        match &self.tag {
            Some(tag) => format!("{} {name:?}", crate::diag::shorten(tag, 40)),
            None => format!("{name:?}"),
        }
    }
}

/// An item of one of a target's lists that users refer to (a department, a location, a
/// company), as the target lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    /// The target's id of it (`7`).
    pub id: String,
    /// Its name, as the target holds it (HTML escapes undone where the API escapes).
    pub name: String,
}

/// A kind of entity a target offers (`[entities.department]` in a REST API description).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityKind {
    /// Its name, as mappings refer to it (`department`).
    pub name: String,
    /// Whether the target can create one by name.
    pub creates: bool,
    /// The longest name the target takes, in characters, when it says.
    pub max_name: Option<usize>,
}

/// Why a request to the target did not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TargetError {
    /// The target refused the credentials (401, 403): no further request can succeed.
    #[error("{target} refused the credentials (HTTP {status}): {detail}")]
    Unauthorized {
        /// Which target, e.g. `SCIM at https://…`.
        target: String,
        /// The status answered.
        status: u16,
        /// What the target said, shortened.
        detail: String,
    },
    /// No credential for the target can be had (a token endpoint or a login refused, a
    /// session refused again right after it was renewed): no further request can succeed.
    #[error("{target}: cannot sign in: {detail}")]
    SignIn {
        /// Which target.
        target: String,
        /// What went wrong and what to fix.
        detail: String,
    },
    /// The target stopped answering: so many attempts in a row failed, and a last one after
    /// a pause as well, that no later request is sent.
    #[error(
        "{target} stopped answering ({failures} attempts in a row failed, a last try after a \
         pause too); no further request is sent, the next run makes the writes not made"
    )]
    Down {
        /// Which target.
        target: String,
        /// Attempts in a row that failed.
        failures: u32,
    },
    /// The target refused this request (another 4xx): this user fails, the run goes on.
    #[error("HTTP {status}: {detail}")]
    Rejected {
        /// The status answered.
        status: u16,
        /// What the target said, shortened.
        detail: String,
    },
    /// The target could not be reached or kept failing (5xx, 429, timeouts) after retries.
    #[error("{0}")]
    Unavailable(String),
    /// The target answered something userload cannot read.
    #[error("unexpected answer: {0}")]
    Malformed(String),
    /// The target cannot do this (listing turned off, no bulk API).
    #[error("{0}")]
    Unsupported(String),
}

impl TargetError {
    /// Whether no later request of this run can succeed either, so the run should stop
    /// writing (credentials refused, or the target stopped answering).
    pub fn stops_run(&self) -> bool {
        matches!(
            self,
            TargetError::Unauthorized { .. }
                | TargetError::Down { .. }
                | TargetError::SignIn { .. }
        )
    }
}

/// Requests made to a target, for summaries and the no-write checks.
#[derive(Debug, Default)]
pub struct TargetStats {
    /// Every request sent, retries included.
    pub requests: AtomicU64,
    /// Requests that change something (POST, PATCH, PUT, DELETE), retries included.
    pub writes: AtomicU64,
    /// Requests sent again after a 429, a 5xx or a broken connection.
    pub retries: AtomicU64,
    /// How long each attempt took, and how many the target answered 429.
    pub meter: crate::http::Meter,
}

impl TargetStats {
    /// Counts one request; `write` when it changes something.
    pub fn count(&self, write: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if write {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// An asset system's user API.
#[async_trait::async_trait]
pub trait Target: Send + Sync {
    /// What the target is, for messages: `SCIM at https://assets.example.com/scim/v2`.
    fn describe(&self) -> String;

    /// Whether values of this target field match without regard to case (SCIM `userName`
    /// and e-mail addresses do; `externalId` does not).
    fn folds_case(&self, field: &str) -> bool;

    /// Every user in the target, in pages; fails rather than return part of them.
    async fn list(&self) -> Result<Vec<TargetUser>, TargetError>;

    /// Every user in the target, each handed to `each` as soon as its page is read, so the
    /// caller keeps only what it needs of each; fails rather than hand on part of them (the
    /// caller must then drop what it was given). The default lists them all first.
    async fn list_each(
        &self,
        each: &mut (dyn FnMut(TargetUser) + Send),
    ) -> Result<(), TargetError> {
        for user in self.list().await? {
            each(user);
        }
        Ok(())
    }

    /// Every user in the target as it sent them ([`RawUser`]), each handed to `each` as its
    /// page is read, on the terms of [`Target::list_each`]. `None` from a target that reads
    /// its users whole anyway: the caller lists it with `list_each`.
    async fn list_raw(
        &self,
        _each: &mut (dyn for<'a> FnMut(RawUser<'a>) + Send),
    ) -> Option<Result<(), TargetError>> {
        None
    }

    /// The user whose target field `field` (a mapping target path) equals `value`.
    async fn find(&self, field: &str, value: &Json) -> Result<Option<TargetUser>, TargetError>;

    /// Creates a user from a record. A target that finds the user already exists (SCIM 409)
    /// looks it up and updates it instead; either way the user as it now stands is returned.
    async fn create(&self, record: &Record) -> Result<TargetUser, TargetError>;

    /// [`create`](Target::create), for a caller that needs only the id the user now has in
    /// the target (a target may then skip reading the rest of its answer).
    async fn create_id(&self, record: &Record) -> Result<String, TargetError> {
        self.create(record).await.map(|user| user.id)
    }

    /// Writes the changed fields of an existing user.
    async fn update(
        &self,
        user: &TargetUser,
        changes: &[FieldChange],
        record: &Record,
    ) -> Result<(), TargetError>;

    /// What `user` still holds (assets, licences, accessories checked out to them), for a
    /// target that tracks assignments; `None` when the target cannot tell (the default).
    async fn holdings(&self, user: &TargetUser) -> Result<Option<Vec<Holding>>, TargetError> {
        let _ = user;
        Ok(None)
    }

    /// The kinds of entity users refer to that this target lists (and perhaps creates);
    /// none by default.
    fn entity_kinds(&self) -> Vec<EntityKind> {
        Vec::new()
    }

    /// Every entity of `kind` (one of [`Target::entity_kinds`]), read page by page; fails
    /// rather than return part of them.
    async fn list_entities(&self, kind: &str) -> Result<Vec<Entity>, TargetError> {
        Err(TargetError::Unsupported(format!(
            "{} has no list of {kind}",
            self.describe()
        )))
    }

    /// Creates an entity of `kind` named `name`; the entity as the target made it.
    async fn create_entity(&self, kind: &str, name: &str) -> Result<Entity, TargetError> {
        let _ = name;
        Err(TargetError::Unsupported(format!(
            "{} cannot create a {kind}",
            self.describe()
        )))
    }

    /// Writes per batch instead of per user: the batch size, for targets with a bulk API.
    fn batch_size(&self) -> Option<usize> {
        None
    }

    /// Sends a batch of writes at once (when [`Target::batch_size`] is set): for each write,
    /// in order, the target id when known, or why it failed.
    async fn write_batch(&self, writes: &[Write]) -> Vec<Result<Option<String>, TargetError>> {
        writes
            .iter()
            .map(|_| {
                Err(TargetError::Unsupported(format!(
                    "{} takes no batches",
                    self.describe()
                )))
            })
            .collect()
    }

    /// The requests made so far.
    fn stats(&self) -> &TargetStats;

    /// The rate requests go at now (the config's `rate_limit`, the API description's
    /// default, or the limit the target's answers gave), when one is known.
    fn rate(&self) -> Option<crate::http::Rate> {
        None
    }

    /// Ends the run's conversation with the target (a session's logout); nothing for a
    /// target that keeps no session.
    async fn close(&self) {}
}

/// The target a config names, ready for requests.
pub fn connect(config: &Config, mapping: &Mapping) -> Result<Box<dyn Target>, TargetError> {
    let target = &config.target;
    let connected: Box<dyn Target> = match target.kind {
        TargetKind::Rest => Box::new(RestTarget::new(target, mapping)?),
        TargetKind::Oomnitza => Box::new(OomnitzaTarget::new(target, mapping)?),
        TargetKind::Scim => Box::new(ScimTarget::new(target, mapping)?),
    };
    Ok(connected)
}
