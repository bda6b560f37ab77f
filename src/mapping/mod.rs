//! Declarative field mapping: how a Microsoft Graph user becomes a target record.
//!
//! A mapping file (`mappings/*.toml`) names, for every target field, where its value comes
//! from — a Graph path, a handlebars template, a constant or a config setting — and how it
//! is converted. The file is read with every place kept ([`spec`]), compiled once into a
//! [`Mapping`] (paths checked against the Graph catalogue, templates and regexes compiled,
//! every problem collected), and then applied to each user by a pure engine. The compiled
//! mapping also tells the Graph client which properties to `$select`, and carries the file's
//! own `[[test]]` cases.
//!
//! An old Oomnitza `config.ini` keeps working: its `mapping.FIELD = {"source": …}` lines are
//! read into the same model and laid over the shipped Oomnitza mapping.

mod cases;
mod compile;
pub mod convert;
mod engine;
pub use engine::FieldTrace;
mod legacy;
mod load;
pub mod path;
mod raw;
mod record;
pub mod spec;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value as Json};

use crate::config::TargetKind;
use crate::diag::Problem;
use path::{GraphPath, TargetSeg};

pub use cases::{Expectation, TEST_SYNC_TIME, TestCase, TestOutcome};
pub use compile::Options;
pub use load::{SHIPPED, compile_source, load, load_file, shipped};
pub use raw::{CannotBorrow, RawObject, json_text};
pub use record::{Packed, Record};

/// What a mapping reads besides the user: the same for every user of one run.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Config settings by name (`default_role`, `default_position`, `[settings]` keys).
    pub settings: &'a BTreeMap<String, Json>,
    /// The run's start time, RFC 3339 (`2024-05-01T06:00:00Z`): the value of
    /// `connectorSyncTime`.
    pub sync_time: &'a str,
}

/// Why one user was not mapped. The run goes on without this user; the reason is reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// The target field that could not be filled.
    pub field: String,
    /// Why, for the admin.
    pub reason: String,
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.reason)
    }
}

impl std::error::Error for Skip {}

/// When a field is written to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    /// On create and on every update (the default).
    Always,
    /// Only when the user is created; later changes in Entra are not carried over.
    Create,
    /// On create, and later only while the target's value is empty: once set, the target
    /// owns it.
    IfEmpty,
}

/// What a reconciliation does with a value changed by hand in the target (drift).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDrift {
    /// Sets the value back to the mapped one (the default).
    Overwrite,
    /// Reports the drift and leaves the target's value.
    Keep,
}

/// The kind of record a mapping builds (`target` in the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetType {
    /// A SCIM 2.0 user; `schemas` is added to every record.
    Scim,
    /// An Oomnitza user.
    Oomnitza,
    /// A Snipe-IT user (through the generic REST target).
    SnipeIt,
    /// Any other REST API.
    Rest,
}

impl TargetType {
    /// Every type, with the name that selects it.
    pub const ALL: [(&'static str, TargetType); 4] = [
        ("scim", TargetType::Scim),
        ("oomnitza", TargetType::Oomnitza),
        ("snipeit", TargetType::SnipeIt),
        ("rest", TargetType::Rest),
    ];

    /// The `target` value that selects this type.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("rest", |(n, _)| n)
    }

    /// Whether a config target of `kind` can take records of this type.
    pub fn suits(self, kind: TargetKind) -> bool {
        matches!(
            (self, kind),
            (TargetType::Scim, TargetKind::Scim)
                | (TargetType::Oomnitza, TargetKind::Oomnitza)
                | (TargetType::SnipeIt | TargetType::Rest, TargetKind::Rest)
        )
    }
}

/// The field that carries a user's active flag, and its two values.
#[derive(Debug, Clone, PartialEq)]
pub struct Active {
    /// The target field, as the mapping names it.
    pub field: String,
    /// Its value for an active user.
    pub active: Json,
    /// Its value for a deactivated user: what a deactivation writes.
    pub inactive: Json,
}

/// One compiled target field.
#[derive(Debug)]
pub struct Field {
    target: String,
    path: Vec<TargetSeg>,
    value: ValueSource,
    convert: Vec<convert::Converter>,
    default: Option<Json>,
    required: bool,
    on: On,
    on_drift: OnDrift,
    primary: bool,
    /// What the value refers to, when it is not the value to write itself.
    refers: Option<Refers>,
    /// For each Graph path of `value`, its top-level property's place in `Mapping::roots`.
    roots: Vec<Option<usize>>,
}

impl Field {
    /// The target field path as the mapping writes it, e.g. `name.givenName`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Whether the field is written on every update, only on create, or while empty.
    pub fn on(&self) -> On {
        self.on
    }

    /// What a reconciliation does with drift in this field.
    pub fn on_drift(&self) -> OnDrift {
        self.on_drift
    }

    /// Whether an update may write the field (`on = "always"` or `write = "if_empty"`);
    /// such fields make the record's hash.
    pub fn updatable(&self) -> bool {
        self.on != On::Create
    }

    /// Whether a user without a value for this field is skipped.
    pub fn is_required(&self) -> bool {
        self.required
    }

    /// What the value refers to (`refers`), when it is not the value to write itself.
    pub fn refers(&self) -> Option<&Refers> {
        self.refers.as_ref()
    }
}

/// What a field's mapped value stands for (`refers` in the mapping file).
#[derive(Debug, Clone)]
pub enum Refers {
    /// An Entra user's object id (the manager's), written as that user's id in the target:
    /// the sync resolves it through the users it links or creates.
    User,
    /// The name of one of the target's entities (a department), written as its id.
    Entity(EntityRef),
}

/// A field whose value names an entity of the target (`refers = { entity = … }`).
#[derive(Debug, Clone)]
pub struct EntityRef {
    /// The kind, as the target names it (`department`).
    pub kind: String,
    /// What happens when the target has no entity of the name.
    pub policy: Policy,
    /// The mapping file, for problems found once the target is known.
    pub(crate) source: Arc<crate::diag::SourceText>,
    /// Where the kind is written.
    pub(crate) span: std::ops::Range<usize>,
}

/// What a reference to a missing entity does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// The entity is created, once per run, and its id written.
    Create,
    /// The field is left empty, with a warning naming the value.
    Lookup,
}

/// Where a field's value comes from.
#[derive(Debug)]
enum ValueSource {
    /// The first non-empty of these paths.
    Graph(Vec<GraphPath>),
    /// A template registered under the field's target name.
    Template(Template),
    /// A constant.
    Constant(Json),
    /// A config setting.
    Setting(String),
}

/// What a template reads, to build the data it renders against.
#[derive(Debug, Default)]
struct Template {
    /// Each path as the template writes it, and where it is in the user.
    vars: Vec<(Vec<String>, GraphPath)>,
    /// The settings it reads with `{{setting "…"}}`.
    settings: Vec<String>,
}

/// Where the fields every user is matched and compared on are ([`Mapping::compared`]).
#[derive(Debug, Clone, Default)]
pub struct Compared {
    /// Each match key's field, in order (`None` for a key no field maps).
    pub keys: Vec<Option<usize>>,
    /// The active flag's field.
    pub active: Option<usize>,
    /// Every mapped match key's field, in order, then the active flag's.
    pub all: Vec<usize>,
}

impl Compared {
    /// The first match key's field.
    pub fn key(&self) -> Option<usize> {
        self.keys.first().copied().flatten()
    }
}

/// A compiled mapping: ready to map users, and able to say what it reads.
#[derive(Debug)]
pub struct Mapping {
    name: String,
    /// A digest of the texts the mapping was made from (the mapping file, and the config
    /// when it was loaded for one): see [`Mapping::origin`].
    origin: String,
    /// A digest of what decides each user's record: see [`Mapping::recipe`].
    recipe: String,
    /// The fields of the match keys and of the active flag: see [`Mapping::compared`].
    compared: Compared,
    target: TargetType,
    fields: Vec<Field>,
    /// The match keys, in the order they are tried; never empty once compiled.
    matching: Vec<String>,
    active: Option<Active>,
    templates: handlebars::Handlebars<'static>,
    select: Vec<String>,
    manager_select: Option<Vec<String>>,
    tests: Vec<TestCase>,
    /// The top-level properties the fields read, sorted: each user's values for them are
    /// found in one pass over the user instead of one search per field.
    roots: Vec<String>,
    /// Whether JSON objects iterate in key order (serde_json's default), which that pass needs.
    sorted_objects: bool,
    /// The layout of the records it makes.
    shape: Arc<record::Shape>,
}

impl Mapping {
    /// Where the mapping came from (a file name, or the shipped mapping's name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kind of record it builds.
    pub fn target_type(&self) -> TargetType {
        self.target
    }

    /// Every field, in file order, with its `on` and `required` for the planner.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The field of a given target path.
    pub fn field(&self, target: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.target == target)
    }

    /// The places of the fields that refer to a user ([`Refers::User`]).
    pub fn user_refs(&self) -> impl Iterator<Item = usize> + '_ {
        self.fields
            .iter()
            .enumerate()
            .filter(|(_, f)| matches!(f.refers, Some(Refers::User)))
            .map(|(i, _)| i)
    }

    /// The fields that name an entity of the target, with their places.
    pub fn entity_refs(&self) -> impl Iterator<Item = (usize, &EntityRef)> + '_ {
        self.fields
            .iter()
            .enumerate()
            .filter_map(|(i, f)| match &f.refers {
                Some(Refers::Entity(e)) => Some((i, e)),
                _ => None,
            })
    }

    /// The problems of entity references against the kinds a target offers (`target`
    /// names it; each kind with whether the target can create one): a kind it does not
    /// list, or `create` of a kind it cannot create. Each points at the mapping's line.
    pub fn check_entities(&self, kinds: &[(&str, bool)], target: &str) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (_, e) in self.entity_refs() {
            let kind = kinds.iter().find(|(name, _)| *name == e.kind);
            let (message, hint) = match kind {
                None => (
                    format!("{target} has no list of `{}`", e.kind),
                    if kinds.is_empty() {
                        format!("{target} offers no entity lists")
                    } else {
                        let names: Vec<&str> = kinds.iter().map(|(name, _)| *name).collect();
                        format!("its lists are: {}", names.join(", "))
                    },
                ),
                Some((_, creates)) if e.policy == Policy::Create && !creates => (
                    format!("{target} cannot create a `{}`", e.kind),
                    "use policy = \"lookup\": a missing name leaves the field empty".to_owned(),
                ),
                Some(_) => continue,
            };
            problems.push(Problem::error(&e.source, e.span.clone(), message).with_hint(hint));
        }
        problems
    }

    /// How its records are laid out: the target path of each field, in order. A record
    /// packed by a mapping of the same layout reads back the same ([`Mapping::unpack`]),
    /// whatever else in the mapping or the config changed.
    pub fn layout(&self) -> String {
        let targets: Vec<&str> = self.fields.iter().map(|f| f.target.as_str()).collect();
        targets.join("\n")
    }

    /// A record of this mapping again, from its [`Packed::text`]; `None` when the text is
    /// not one (not a list of values, or not one value for each field).
    pub fn unpack(&self, text: &str) -> Option<Record> {
        let values: Vec<Option<Json>> = serde_json::from_str(text).ok()?;
        (values.len() == self.fields.len()).then(|| Record::new(Arc::clone(&self.shape), values))
    }

    /// A record of this mapping packed as `text` ([`Packed::text`]), taken as it is.
    pub fn packed(&self, text: Box<str>) -> Packed {
        Packed::from_text(Arc::clone(&self.shape), text)
    }

    /// The place of the field of a given target path in [`Mapping::fields`].
    pub fn field_index(&self, target: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.target == target)
    }

    /// Where the fields every user is matched and compared on are: the match keys and the
    /// active flag, found once rather than by name for each user mapped or listed.
    pub fn compared(&self) -> &Compared {
        &self.compared
    }

    /// [`Mapping::compared`], found by name.
    fn find_compared(&self) -> Compared {
        let keys: Vec<Option<usize>> = self
            .match_keys()
            .iter()
            .map(|field| self.field_index(field))
            .collect();
        let active = self.active_field().and_then(|a| self.field_index(&a.field));
        Compared {
            all: keys.iter().flatten().copied().chain(active).collect(),
            keys,
            active,
        }
    }

    /// A record holding what a target user has in each mapped field (read with
    /// [`Field::get`]): the starting point for writing a user no Entra user maps to any more,
    /// such as a deactivation.
    pub fn record_from(&self, data: &Map<String, Json>) -> Record {
        let values = self.fields.iter().map(|f| f.get(data).cloned()).collect();
        Record::new(Arc::clone(&self.shape), values)
    }

    /// The target field that identifies a user: the first match key. The state file keeps
    /// its value, users are created and looked up by it, and a single key is required of
    /// every user.
    pub fn match_key(&self) -> &str {
        self.matching.first().map_or("", String::as_str)
    }

    /// Every match key, in the order they are tried (`match = ["employee_num", "email"]`);
    /// the first is [`Mapping::match_key`].
    pub fn match_keys(&self) -> &[String] {
        &self.matching
    }

    /// Whether Entra itself keeps the match key unique: the key field is the user's
    /// principal name or object id, with no default and at most trimmed or changed in case
    /// (Entra refuses two principal names that differ only in case). No two Entra users can
    /// then map to one key, so whether a user is created is known before every user is read.
    pub fn key_is_unique_in_entra(&self) -> bool {
        use convert::Converter;
        use path::Seg;
        let Some(field) = self.field(self.match_key()) else {
            return false;
        };
        let ValueSource::Graph(paths) = &field.value else {
            return false;
        };
        let unique = match paths.as_slice() {
            [GraphPath::User(segs)] => {
                matches!(segs.as_slice(), [Seg::Key(k)] if k == "userPrincipalName" || k == "id")
            }
            _ => false,
        };
        unique
            && field.default.is_none()
            && field
                .convert
                .iter()
                .all(|c| matches!(c, Converter::Lower | Converter::Upper | Converter::Trim))
    }

    /// The field that carries the active flag and its two values, if the mapping has one.
    pub fn active_field(&self) -> Option<&Active> {
        self.active.as_ref()
    }

    /// The top-level Graph user properties the mapping reads, for `$select`: Graph's
    /// spelling, sorted, each once, always with `id` and `accountEnabled`. The manager is not
    /// among them; see [`Mapping::manager_select`].
    ///
    /// These are plain names on purpose. The mapping and the Graph client are neighbours in
    /// the layering and neither imports the other: the callers that hold both (the commands
    /// and the sync engine) build the client's `graph::Selection` from these two lists. The
    /// selection stays in `graph` because turning it into `$select` and `$expand` parameters
    /// is the client's business, not the mapping's.
    pub fn select(&self) -> Vec<String> {
        self.select.clone()
    }

    /// Whether any field reads the built-in input (`groups`, `licenses`): the run then
    /// reads it and puts it on each user before mapping.
    pub fn reads(&self, input: path::Input) -> bool {
        self.reads_any(|_| true, |p| p.input() == Some(input))
    }

    /// Whether a field that is updated reads the time of the run (`connectorSyncTime`):
    /// what is written to a user is then new each run.
    pub fn updates_sync_time(&self) -> bool {
        self.reads_any(Field::updatable, |p| matches!(p, GraphPath::SyncTime))
    }

    /// Whether some field that `which` picks reads a path `pick` picks.
    fn reads_any(&self, which: impl Fn(&Field) -> bool, pick: impl Fn(&GraphPath) -> bool) -> bool {
        self.fields.iter().filter(|f| which(f)).any(|field| {
            let mut paths: Vec<&GraphPath> = match &field.value {
                ValueSource::Graph(paths) => paths.iter().collect(),
                ValueSource::Template(t) => t.vars.iter().map(|(_, p)| p).collect(),
                ValueSource::Constant(_) | ValueSource::Setting(_) => Vec::new(),
            };
            for c in &field.convert {
                if let convert::Converter::FirstNonEmpty(more) = c {
                    paths.extend(more);
                }
            }
            paths.into_iter().any(&pick)
        })
    }

    /// Whether the mapping reads `signInActivity` (which needs `AuditLog.Read.All`).
    pub fn reads_sign_in(&self) -> bool {
        self.select.iter().any(|p| p == "signInActivity")
    }

    /// The manager's properties the mapping reads (`manager.mail` → `mail`), sorted, for
    /// `$expand=manager($select=…)`; `None` when the mapping does not read the manager.
    pub fn manager_select(&self) -> Option<Vec<String>> {
        self.manager_select.clone()
    }

    /// A digest of the texts the mapping was made from: the mapping file, and for a
    /// config's mapping the config too (its filter, settings and sync options shape every
    /// record and plan). Any edit changes it, so a run after one reads in full rather than
    /// only what changed in Entra.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// A digest of everything that decides how a user is mapped: the mapping file and, for
    /// a config's mapping, the config's settings, `mapping.FIELD` lines, `sync_field`,
    /// target type and `input_groups`. Unlike [`Mapping::origin`], the rest of the config
    /// is left out: a changed limit or schedule maps nobody otherwise.
    pub fn recipe(&self) -> &str {
        &self.recipe
    }
}
