//! A config file as written: sections of keys and values, each with its place in the file.
//!
//! INI and TOML are both read into this one shape, so that everything after reading (known
//! keys, types, ranges, hints) is checked by one validator and reported the same way.

use std::ops::Range;
use std::sync::Arc;

use crate::diag::SourceText;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ini,
    Toml,
}

#[derive(Debug)]
pub struct Document {
    pub source: Arc<SourceText>,
    pub format: Format,
    pub sections: Vec<Section>,
}

impl Document {
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }
}

#[derive(Debug)]
pub struct Section {
    pub name: String,
    /// The `[name]` header.
    pub span: Range<usize>,
    pub entries: Vec<Entry>,
}

/// One `key = value`. Its `Debug` hides the values of secret keys.
pub struct Entry {
    pub key: String,
    pub key_span: Range<usize>,
    pub value: Value,
    pub value_span: Range<usize>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = super::SECRET_KEYS.contains(&self.key.as_str());
        let value: &dyn std::fmt::Debug = if secret { &"[redacted]" } else { &self.value };
        f.debug_struct("Entry")
            .field("key", &self.key)
            .field("key_span", &self.key_span)
            .field("value", value)
            .field("value_span", &self.value_span)
            .finish()
    }
}

impl Entry {
    /// Where the text of a string value lies in the file, when the file holds it verbatim
    /// (no escapes), so that positions inside the value (e.g. of a filter) map onto the file.
    pub fn text_range(&self, source: &SourceText) -> Option<Range<usize>> {
        let Value::Text(text) = &self.value else {
            return None;
        };
        let written = source.text().get(self.value_span.clone())?;
        let at = self.value_span.start + written.find(text.as_str())?;
        Some(at..at + text.len())
    }
}

/// A value as written. INI values are always `Text`; TOML keeps its types.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Arrays, tables and dates: named for messages only.
    Other(&'static str),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Text(_) => "a string",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Bool(_) => "a boolean",
            Value::Other(name) => name,
        }
    }
}
