//! A mapping file as written: every key, value and table with its place in the file.
//!
//! This layer checks only the file's shape — known keys, value types, one way to give each
//! field a value — so that the compiler after it can concentrate on meaning (Graph paths,
//! converters, templates). Oomnitza `mapping.FIELD = {…}` config lines are read into the same
//! [`FieldSpec`] by `legacy.rs`, so both go through one compiler.

mod read;

use std::ops::Range;
use std::sync::Arc;

use serde_json::Value as Json;

use crate::diag::SourceText;

pub use read::{read, to_json};

/// A value and where it was written.
#[derive(Debug, Clone)]
pub struct At<T> {
    /// The value.
    pub value: T,
    /// Its bytes in the source, quotes included for strings.
    pub span: Range<usize>,
}

impl<T> At<T> {
    fn new(value: T, span: Range<usize>) -> Self {
        Self { value, span }
    }
}

impl At<String> {
    /// Where the string's text lies in `source` when it is written there verbatim (no escape
    /// sequences), so that a position inside it (a template's, a regex's) maps onto the file.
    pub fn text_range(&self, source: &SourceText) -> Option<Range<usize>> {
        let written = source.text().get(self.span.clone())?;
        let at = self.span.start + written.find(self.value.as_str())?;
        Some(at..at + self.value.len())
    }
}

/// The whole mapping file.
#[derive(Debug)]
pub struct Spec {
    /// The file's text.
    pub source: Arc<SourceText>,
    /// `version = 1`.
    pub version: Option<At<i64>>,
    /// `target = "scim"`: the kind of record the mapping builds.
    pub target: Option<At<String>>,
    /// `match = "userName"`, or `match = ["employee_num", "email"]`: the target fields a
    /// user is matched on, tried in order.
    pub matching: Option<MatchSpec>,
    /// `active = { field = …, active = …, inactive = … }`.
    pub active: Option<ActiveSpec>,
    /// `[fields."…"]` tables, in file order.
    pub fields: Vec<FieldSpec>,
    /// `[lookup.NAME]` tables.
    pub lookups: Vec<LookupSpec>,
    /// `[[test]]` tables.
    pub tests: Vec<TestSpec>,
    /// Where the file starts, for problems about something missing from it.
    pub top: Range<usize>,
}

/// `match`: the target fields a user is matched on, as written.
#[derive(Debug, Clone)]
pub struct MatchSpec {
    /// The fields, in the order they are tried; the first identifies the user.
    pub keys: Vec<At<String>>,
    /// Whether they were written as a list (`match = ["…"]`) rather than one name.
    pub list: bool,
}

impl MatchSpec {
    /// A `match` whose mistakes were reported while reading: it names no key.
    pub fn reported() -> MatchSpec {
        MatchSpec {
            keys: Vec::new(),
            list: true,
        }
    }
}

/// `active = { field = "active", active = true, inactive = false }`.
#[derive(Debug)]
pub struct ActiveSpec {
    /// The target field that carries the flag.
    pub field: At<String>,
    /// What the field holds for an active user.
    pub active: Json,
    /// What the field holds for a deactivated user.
    pub inactive: Json,
}

/// One target field and how its value is made.
#[derive(Debug, Clone)]
pub struct FieldSpec {
    /// The text the field was written in (the mapping file, or a config for Oomnitza lines).
    pub source: Arc<SourceText>,
    /// The target field path as written, e.g. `name.givenName`.
    pub target: At<String>,
    /// `source = "…"` or `source = ["…", "…"]` (first non-empty).
    pub graph: Option<At<Vec<At<String>>>>,
    /// `template = "…"`.
    pub template: Option<At<String>>,
    /// `value = …`: a constant.
    pub constant: Option<At<Json>>,
    /// `setting = "…"`.
    pub setting: Option<At<String>>,
    /// `convert = [...]`.
    pub convert: Vec<ConvertSpec>,
    /// `default = …`: used when the value is missing.
    pub default: Option<At<Json>>,
    /// `required = true`: a user without a value is skipped.
    pub required: Option<At<bool>>,
    /// `on = "always" | "create"`.
    pub on: Option<At<String>>,
    /// `write = "always" | "on_create" | "if_empty"`: `on`, with one more choice.
    pub write: Option<At<String>>,
    /// `on_drift = "overwrite" | "keep"`: whether a value changed by hand in the target is
    /// set back.
    pub on_drift: Option<At<String>>,
    /// `primary = true`: marks the element of a multi-valued SCIM attribute as primary.
    pub primary: Option<At<bool>>,
    /// `refers = "user"` or `refers = { entity = …, policy = …, aliases = … }`: what the
    /// value names, written as its id in the target.
    pub refers: Option<RefersSpec>,
}

/// What a field's value names, as written.
#[derive(Debug, Clone)]
pub enum RefersSpec {
    /// `refers = "…"` (only `"user"` is known).
    Word(At<String>),
    /// `refers = { entity = "department", policy = "create", aliases = "TABLE" }`.
    Entity {
        /// The entity kind, as the target names it.
        entity: At<String>,
        /// `create` or `lookup` (default `lookup`).
        policy: Option<At<String>>,
        /// A `[lookup.TABLE]` of Entra names → target names.
        aliases: Option<At<String>>,
        /// The whole table.
        span: Range<usize>,
    },
}

impl RefersSpec {
    /// Where it is written.
    pub fn span(&self) -> Range<usize> {
        match self {
            RefersSpec::Word(word) => word.span.clone(),
            RefersSpec::Entity { span, .. } => span.clone(),
        }
    }
}

impl FieldSpec {
    /// A field with nothing but its target, for readers to fill in.
    pub fn new(source: &Arc<SourceText>, target: At<String>) -> Self {
        Self {
            source: Arc::clone(source),
            target,
            graph: None,
            template: None,
            constant: None,
            setting: None,
            convert: Vec::new(),
            default: None,
            required: None,
            on: None,
            write: None,
            on_drift: None,
            primary: None,
            refers: None,
        }
    }
}

/// One converter in a `convert` chain: `"lower"` or `{ regex_replace = ["…", "…"] }`.
#[derive(Debug, Clone)]
pub struct ConvertSpec {
    /// The converter's name as written.
    pub name: At<String>,
    /// Its arguments: none, one value, a list, or named values (a table).
    pub args: Args,
    /// The whole element of the chain.
    pub span: Range<usize>,
}

/// A converter's arguments as written.
#[derive(Debug, Clone)]
pub enum Args {
    /// `"lower"`.
    None,
    /// `{ truncate = 20 }` or `{ split = [" ", 0] }`.
    Positional(Vec<At<Json>>),
    /// `{ date = { from = "%m/%d/%Y", to = "%Y-%m-%d" } }`.
    Named(Vec<(At<String>, At<Json>)>),
}

/// `[lookup.NAME]`: a table of values for the `lookup` converter.
#[derive(Debug)]
pub struct LookupSpec {
    /// The table's name.
    pub name: At<String>,
    /// Its entries, in file order.
    pub entries: Vec<(At<String>, At<Json>)>,
}

/// One `[[test]]`: a Graph user and what the mapping must make of it.
#[derive(Debug)]
pub struct TestSpec {
    /// `name = "…"`.
    pub name: String,
    /// The Graph user.
    pub user: Json,
    /// Settings for this test (`default_role`, …).
    pub settings: serde_json::Map<String, Json>,
    /// The connector sync time for this test, RFC 3339.
    pub sync_time: Option<At<String>>,
    /// The expected record, or the expected skip reason.
    pub expect: Option<Expect>,
}

/// What a test expects.
#[derive(Debug)]
pub enum Expect {
    /// This record, exactly.
    Record(Json),
    /// A skip whose reason contains this text.
    Skip(String),
}
