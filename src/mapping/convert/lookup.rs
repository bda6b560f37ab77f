//! Converters that look a value up in a table: `lookup` in a `[lookup.NAME]` table of the
//! mapping file, `first_of`, an ordered table from names a list may hold to values, and
//! `bool_words`, a two-entry table from a flag to words.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value as Json;

use super::{ArgError, Args, ConvertError, Converter, Env, scalar_text, shown};

/// A `[lookup.NAME]` table, keyed in lower case.
#[derive(Debug)]
pub struct Lookup {
    entries: HashMap<String, Json>,
}

impl Lookup {
    /// A table from its entries.
    pub fn new(entries: impl IntoIterator<Item = (String, Json)>) -> Self {
        Self {
            entries: entries
                .into_iter()
                .map(|(k, v)| (k.to_lowercase(), v))
                .collect(),
        }
    }

    /// The value's entry (ignoring case), else `default`.
    pub(super) fn apply(
        &self,
        value: &Json,
        default: Option<&Json>,
    ) -> Result<Option<Json>, ConvertError> {
        let key = scalar_text(value, "lookup")?.to_lowercase();
        Ok(self.entries.get(&key).or(default).cloned())
    }
}

/// `lookup`: the table must be one of the mapping's.
pub(super) fn build_lookup(args: &Args<'_>, env: &mut Env<'_>) -> Result<Converter, ArgError> {
    let table = args.text(0)?;
    let Some(lookup) = env.lookups.get(&table) else {
        let mut known: Vec<&str> = env.lookups.keys().map(String::as_str).collect();
        known.sort_unstable();
        let message = if known.is_empty() {
            format!("there is no [lookup.{table}] table in this mapping")
        } else {
            format!(
                "there is no [lookup.{table}] table; the tables are: {}",
                known.join(", ")
            )
        };
        return Err(ArgError::new(Some(0), message));
    };
    Ok(Converter::Lookup(Arc::clone(lookup), args.get(1).cloned()))
}

/// `first_of`: every argument is a `[name, value]` pair, the name text.
pub(super) fn build_first_of(args: &Args<'_>, _: &mut Env<'_>) -> Result<Converter, ArgError> {
    let mut pairs = Vec::with_capacity(args.len());
    for i in 0..args.len() {
        match args.get(i) {
            Some(Json::Array(pair)) if pair.len() == 2 => match &pair[0] {
                Json::String(name) if !name.trim().is_empty() => {
                    pairs.push((name.trim().to_lowercase(), pair[1].clone()));
                }
                _ => {
                    return Err(ArgError::new(
                        Some(i),
                        "the first element of a `first_of` pair is a name (text, not empty)",
                    ));
                }
            },
            _ => {
                return Err(ArgError::new(
                    Some(i),
                    "`first_of` takes [name, value] pairs, e.g. \
                     { first_of = [[\"IT-Admins\", \"admin\"], [\"Contractors\", \"restricted\"]] }",
                ));
            }
        }
    }
    Ok(Converter::FirstOf(pairs.into()))
}

/// The value of the first pair whose name `value` holds (a list, or one name), or `None`.
pub(super) fn first_of(pairs: &[(String, Json)], value: &Json) -> Option<Json> {
    pairs
        .iter()
        .find(|(name, _)| super::lists::holds(value, name))
        .map(|(_, v)| v.clone())
}

/// `bool_words`: "Active" and "Inactive" unless other words are given.
pub(super) fn build_bool_words(args: &Args<'_>, _: &mut Env<'_>) -> Result<Converter, ArgError> {
    let yes = if args.is_empty() {
        "Active".to_string()
    } else {
        args.text(0)?
    };
    let no = if args.len() < 2 {
        "Inactive".to_string()
    } else {
        args.text(1)?
    };
    Ok(Converter::BoolWords(yes, no))
}

/// A flag (a boolean, or "true"/"false" in any case) as one of two words.
pub(super) fn bool_words(yes: &str, no: &str, value: &Json) -> Result<Option<Json>, ConvertError> {
    let flag = match value {
        Json::Bool(b) => *b,
        Json::String(s) if s.eq_ignore_ascii_case("true") => true,
        Json::String(s) if s.eq_ignore_ascii_case("false") => false,
        other => return Err(ConvertError::NotBoolean(shown(other))),
    };
    Ok(Some(Json::from(if flag { yes } else { no })))
}
