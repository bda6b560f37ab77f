//! A config file as written: sections of keys and values, each with its place in the file.
//!
//! INI and TOML are both read into this one shape, so that everything after reading (known
//! keys, types, ranges, hints) is checked by one validator and reported the same way.

use std::ops::Range;
use std::sync::Arc;

use crate::diag::SourceText;

/// The syntax of a config file, chosen by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.ini`, read with Python `configparser` conventions like the Oomnitza connector's files.
    Ini,
    /// `.toml`.
    Toml,
}

/// A whole config file as written, before any check beyond its syntax.
#[derive(Debug)]
pub struct Document {
    /// The file's text, for placing problems; `load` swaps in a copy with literal secrets
    /// starred out.
    pub source: Arc<SourceText>,
    /// The syntax the file was read with; INI values are untyped, so checks differ.
    pub format: Format,
    /// The sections in file order, each name once.
    pub sections: Vec<Section>,
}

impl Document {
    /// The section whose name is exactly `name` (no alias lookup), if the file has one.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }
}

/// One `[name]` section and its entries.
#[derive(Debug)]
pub struct Section {
    /// The name without brackets, as written, e.g. `source` or the Oomnitza alias `azureusers`.
    pub name: String,
    /// The `[name]` header.
    pub span: Range<usize>,
    /// Its `key = value` lines in file order, each key once.
    pub entries: Vec<Entry>,
}

/// One `key = value`. Its `Debug` hides the values of secret keys.
pub struct Entry {
    /// The key; INI keys are lower-cased (except the field of `mapping.FIELD`), TOML keys are
    /// as written.
    pub key: String,
    /// Where the key was written.
    pub key_span: Range<usize>,
    /// The value, typed as far as the format allows; INI double quotes are already removed.
    pub value: Value,
    /// Where the value was written: TOML quotes included; an INI value's continuation lines
    /// included.
    pub value_span: Range<usize>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = super::sections::SECRET_KEYS.contains(&self.key.as_str());
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
    /// A string; every INI value is one.
    Text(String),
    /// A TOML integer.
    Int(i64),
    /// A TOML float.
    Float(f64),
    /// A TOML boolean.
    Bool(bool),
    /// Arrays, tables and dates: named for messages only.
    Other(&'static str),
}

impl Value {
    /// The value's type with an article, for messages, e.g. "a string".
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
