//! Converters: the small value transformations a field's `convert` chain applies, and the
//! same transformations as handlebars helpers for templates.
//!
//! Everything that can be prepared is prepared when the mapping is compiled: regexes are
//! compiled once (with a size limit, so a hostile pattern cannot eat the machine), lookup
//! tables are built once, date formats are checked once. Applying a converter to a user's
//! value never compiles anything and never panics; a value it cannot handle (a date that is
//! not a date) is an error that skips that user, with a reason.
//!
//! This file holds the registry ([`CONVERTERS`]: name, arguments, how to build) and the
//! dispatch; each concern lives in its own file. A new converter is a row in the registry, a
//! variant of [`Converter`], and a `build` and an `apply` beside its neighbours.

mod dates;
mod helpers;
mod lists;
mod lookup;
mod regexes;
mod text;

use std::collections::HashMap;
use std::sync::Arc;

use regex::Regex;
use serde_json::Value as Json;

use super::path::GraphPath;

pub use dates::{DateFormatError, check_date_format};
pub use helpers::{BUILTIN_HELPERS, EXTRA_HELPERS, SETTINGS_KEY, Shared, register_helpers};
pub use lookup::Lookup;
pub use regexes::{REGEX_SIZE_LIMIT, RegexError, compile_regex};

/// One converter as the registry knows it.
pub struct Def {
    /// The name a mapping file gives it.
    pub name: &'static str,
    /// Its arguments' names, in order (`...` = any number of them).
    pub params: &'static [&'static str],
    /// How many of the arguments must be given.
    pub required: usize,
    /// What it does, for docs/mapping.md and for messages.
    pub about: &'static str,
    /// Builds it from arguments whose count has been checked.
    build: fn(&Args<'_>, &mut Env<'_>) -> Result<Converter, ArgError>,
}

/// Every converter, in the order docs/mapping.md lists them.
pub const CONVERTERS: &[Def] = &[
    Def {
        name: "lower",
        params: &[],
        required: 0,
        about: "lower case",
        build: |_, _| Ok(Converter::Lower),
    },
    Def {
        name: "upper",
        params: &[],
        required: 0,
        about: "upper case",
        build: |_, _| Ok(Converter::Upper),
    },
    Def {
        name: "trim",
        params: &[],
        required: 0,
        about: "drop leading and trailing white space",
        build: |_, _| Ok(Converter::Trim),
    },
    Def {
        name: "title",
        params: &[],
        required: 0,
        about: "Title Case Of Each Word",
        build: |_, _| Ok(Converter::Title),
    },
    Def {
        name: "capitalize",
        params: &[],
        required: 0,
        about: "First letter up, the rest down",
        build: |_, _| Ok(Converter::Capitalize),
    },
    Def {
        name: "strip_diacritics",
        params: &[],
        required: 0,
        about: "José → Jose, Łódź → Lodz",
        build: |_, _| Ok(Converter::StripDiacritics),
    },
    Def {
        name: "regex_replace",
        params: &["pattern", "with"],
        required: 2,
        about: "regex replace; `$1` or `${name}` in `with` are capture groups",
        build: regexes::build_replace,
    },
    Def {
        name: "replace",
        params: &["from", "to"],
        required: 2,
        about: "replace every `from` by `to` (plain text)",
        build: text::build_replace,
    },
    Def {
        name: "split",
        params: &["separator", "index"],
        required: 1,
        about: "split into a list; with `index`, that element (negative counts from the end)",
        build: lists::build_split,
    },
    Def {
        name: "join",
        params: &["separator"],
        required: 1,
        about: "join a list into text",
        build: lists::build_join,
    },
    Def {
        name: "first_non_empty",
        params: &["..."],
        required: 1,
        about: "the value if not empty, else the first non-empty of these Graph paths",
        build: lists::build_first_non_empty,
    },
    Def {
        name: "substring",
        params: &["start", "length"],
        required: 1,
        about: "characters from `start` (0-based), at most `length`",
        build: text::build_substring,
    },
    Def {
        name: "truncate",
        params: &["length"],
        required: 1,
        about: "at most `length` characters",
        build: text::build_truncate,
    },
    Def {
        name: "date",
        params: &["to", "from"],
        required: 1,
        about: "parse a date (ISO 8601, or the `from` format) and format it (strftime `to`)",
        build: dates::build,
    },
    Def {
        name: "lookup",
        params: &["table", "default"],
        required: 1,
        about: "the value's entry in [lookup.TABLE] (ignoring case), else `default`, else missing",
        build: lookup::build_lookup,
    },
    Def {
        name: "first_of",
        params: &["..."],
        required: 1,
        about: "the value of the first [name, value] pair whose name the list holds (ignoring case), else missing",
        build: lookup::build_first_of,
    },
    Def {
        name: "has",
        params: &["name"],
        required: 1,
        about: "true when the list holds `name` (ignoring case), else false",
        build: lists::build_has,
    },
    Def {
        name: "bool_words",
        params: &["true", "false"],
        required: 0,
        about: "true/false → \"Active\"/\"Inactive\" (or the two words given)",
        build: lookup::build_bool_words,
    },
    Def {
        name: "email_local",
        params: &[],
        required: 0,
        about: "the part before the last @",
        build: |_, _| Ok(Converter::EmailLocal),
    },
    Def {
        name: "email_domain",
        params: &[],
        required: 0,
        about: "the part after the last @",
        build: |_, _| Ok(Converter::EmailDomain),
    },
];

/// The names of every converter, for messages.
pub fn names() -> impl Iterator<Item = &'static str> {
    CONVERTERS.iter().map(|c| c.name)
}

/// The registry's entry for a converter name.
pub fn find(name: &str) -> Option<&'static Def> {
    CONVERTERS.iter().find(|c| c.name == name)
}

/// One prepared converter.
#[derive(Debug, Clone)]
pub enum Converter {
    /// `lower`.
    Lower,
    /// `upper`.
    Upper,
    /// `trim`.
    Trim,
    /// `title`.
    Title,
    /// `capitalize`.
    Capitalize,
    /// `strip_diacritics`.
    StripDiacritics,
    /// `regex_replace`.
    RegexReplace(Arc<Regex>, String),
    /// `replace`.
    Replace(String, String),
    /// `split`.
    Split(String, Option<i64>),
    /// `join`.
    Join(String),
    /// `first_non_empty`.
    FirstNonEmpty(Vec<GraphPath>),
    /// `substring`.
    Substring(usize, Option<usize>),
    /// `truncate`.
    Truncate(usize),
    /// `date`: (to, from).
    Date(String, Option<String>),
    /// `lookup`.
    Lookup(Arc<Lookup>, Option<Json>),
    /// The `aliases` of an entity reference: a name in the table becomes its entry, any
    /// other stays as it is.
    Alias(Arc<Lookup>),
    /// `first_of`: (name in lower case, value) pairs, in order.
    FirstOf(Arc<[(String, Json)]>),
    /// `has`: the name in lower case.
    Has(String),
    /// `bool_words`.
    BoolWords(String, String),
    /// `email_local`.
    EmailLocal,
    /// `email_domain`.
    EmailDomain,
}

impl Converter {
    /// The name a mapping file gives it.
    pub fn name(&self) -> &'static str {
        match self {
            Converter::Lower => "lower",
            Converter::Upper => "upper",
            Converter::Trim => "trim",
            Converter::Title => "title",
            Converter::Capitalize => "capitalize",
            Converter::StripDiacritics => "strip_diacritics",
            Converter::RegexReplace(..) => "regex_replace",
            Converter::Replace(..) => "replace",
            Converter::Split(..) => "split",
            Converter::Join(_) => "join",
            Converter::FirstNonEmpty(_) => "first_non_empty",
            Converter::Substring(..) => "substring",
            Converter::Truncate(_) => "truncate",
            Converter::Date(..) => "date",
            Converter::Lookup(..) => "lookup",
            Converter::Alias(_) => "aliases",
            Converter::FirstOf(_) => "first_of",
            Converter::Has(_) => "has",
            Converter::BoolWords(..) => "bool_words",
            Converter::EmailLocal => "email_local",
            Converter::EmailDomain => "email_domain",
        }
    }

    /// Applies the converter. `Ok(None)` means the result is missing; `Err` says why the value
    /// could not be converted.
    pub fn apply(&self, value: Json, user: &Json) -> Result<Option<Json>, ConvertError> {
        match self {
            Converter::FirstNonEmpty(paths) => Ok(lists::first_non_empty(paths, value, user)),
            Converter::Join(separator) => Ok(Some(lists::join(separator, value))),
            Converter::Split(separator, index) => lists::split(separator, *index, &value),
            Converter::Lookup(table, default) => table.apply(&value, default.as_ref()),
            Converter::Alias(table) => table.apply(&value, Some(&value)),
            Converter::FirstOf(pairs) => Ok(lookup::first_of(pairs, &value)),
            Converter::Has(name) => Ok(Some(Json::Bool(lists::holds(&value, name)))),
            Converter::BoolWords(yes, no) => lookup::bool_words(yes, no, &value),
            Converter::Date(to, from) => dates::apply(to, from.as_deref(), &value),
            // The rest work on text; a list is converted element by element.
            _ => text::apply(self, value),
        }
    }
}

/// Why a user's value could not be converted; the user is skipped with this reason.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// A converter that reads one value was given a list or a table.
    #[error("`{converter}` cannot read {value}")]
    Unreadable {
        /// The converter.
        converter: &'static str,
        /// The value, shortened.
        value: String,
    },
    /// A text converter was given a table.
    #[error("{0} is an object, not text")]
    Object(String),
    /// `bool_words` was given something other than a flag.
    #[error("{0} is not true or false")]
    NotBoolean(String),
    /// `date` was given something that does not parse as a date.
    #[error("{0} is not a date")]
    NotDate(String),
    /// The date parsed but cannot be written in the format.
    #[error("cannot format {value} as `{format}`")]
    Unformattable {
        /// The value, shortened.
        value: String,
        /// The `to` format.
        format: String,
    },
}

/// A converter's arguments that cannot be used: which one (if one), and why.
#[derive(Debug)]
pub struct ArgError {
    /// The argument at fault, by position; `None` for the converter as a whole.
    pub arg: Option<usize>,
    /// What is wrong; empty when it has been reported already (see [`ArgError::reported`]).
    pub message: String,
}

impl ArgError {
    /// An error about argument `arg` (or the whole converter).
    pub fn new(arg: Option<usize>, message: impl Into<String>) -> Self {
        Self {
            arg,
            message: message.into(),
        }
    }

    /// An error whose cause was reported where it was found, so it is not reported again.
    pub fn reported(arg: Option<usize>) -> Self {
        Self::new(arg, "")
    }

    /// Whether the cause has been reported already.
    pub fn is_reported(&self) -> bool {
        self.message.is_empty()
    }
}

/// What a converter needs from its surroundings while being built.
pub struct Env<'a> {
    /// The mapping's lookup tables.
    pub lookups: &'a HashMap<String, Arc<Lookup>>,
    /// Turns a pattern into a regex: compiles it (mapping compile time) or finds the one
    /// compiled before (template rendering).
    pub regex: &'a mut dyn FnMut(&str) -> Result<Arc<Regex>, RegexError>,
    /// Turns a Graph path into a checked path (`first_non_empty`).
    pub graph_path: &'a mut dyn FnMut(usize, &str) -> Result<GraphPath, ArgError>,
}

/// A converter's positional arguments, read with the converter's own names in messages.
pub struct Args<'a> {
    def: &'static Def,
    values: &'a [Json],
}

impl Args<'_> {
    /// How many were given.
    fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether none were given.
    fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Argument `i` as given.
    fn get(&self, i: usize) -> Option<&Json> {
        self.values.get(i)
    }

    fn param(&self, i: usize) -> &'static str {
        self.def.params.get(i).copied().unwrap_or("...")
    }

    /// Argument `i` as text (empty when not given).
    fn text(&self, i: usize) -> Result<String, ArgError> {
        match self.values.get(i) {
            Some(Json::String(s)) => Ok(s.clone()),
            Some(other) => Err(ArgError::new(
                Some(i),
                format!(
                    "`{}` of `{}` must be text, not {}",
                    self.param(i),
                    self.def.name,
                    json_type(other)
                ),
            )),
            None => Ok(String::new()),
        }
    }

    /// Argument `i` as text that must not be empty.
    fn non_empty_text(&self, i: usize) -> Result<String, ArgError> {
        let text = self.text(i)?;
        if text.is_empty() {
            let message = format!(
                "`{}` of `{}` must not be empty",
                self.param(i),
                self.def.name
            );
            return Err(ArgError::new(Some(i), message));
        }
        Ok(text)
    }

    /// Argument `i` as a whole number, if given.
    fn count(&self, i: usize) -> Result<Option<i64>, ArgError> {
        match self.values.get(i) {
            Some(Json::Number(n)) if n.is_i64() => Ok(n.as_i64()),
            Some(other) => Err(ArgError::new(
                Some(i),
                format!(
                    "`{}` of `{}` must be a whole number, not {}",
                    self.param(i),
                    self.def.name,
                    json_type(other)
                ),
            )),
            None => Ok(None),
        }
    }

    /// Argument `i` as a size (a whole number, not negative), if given.
    fn size(&self, i: usize) -> Result<Option<usize>, ArgError> {
        match self.count(i)? {
            Some(n) => usize::try_from(n).map(Some).map_err(|_| {
                let message = format!(
                    "`{}` of `{}` must not be negative",
                    self.param(i),
                    self.def.name
                );
                ArgError::new(Some(i), message)
            }),
            None => Ok(None),
        }
    }
}

impl Def {
    /// Checks the number of arguments against the converter's.
    fn check_count(&self, given: usize) -> Result<(), ArgError> {
        let (name, params, required) = (self.name, self.params, self.required);
        if given < required {
            let wanted = params.get(..required).unwrap_or(params).join(", ");
            let message = format!("`{name}` needs {required} argument(s): {wanted}");
            return Err(ArgError::new(None, message));
        }
        let variadic = params.first() == Some(&"...");
        if !variadic && given > params.len() {
            let message = if params.is_empty() {
                format!("`{name}` takes no arguments")
            } else {
                format!(
                    "`{name}` takes at most {} argument(s): {}",
                    params.len(),
                    params.join(", ")
                )
            };
            return Err(ArgError::new(Some(params.len()), message));
        }
        Ok(())
    }
}

/// Builds the converter `name` from positional arguments. `Ok(None)` if no such converter.
pub fn build(name: &str, args: &[Json], env: &mut Env<'_>) -> Result<Option<Converter>, ArgError> {
    let Some(def) = find(name) else {
        return Ok(None);
    };
    def.check_count(args.len())?;
    (def.build)(&Args { def, values: args }, env).map(Some)
}

/// Whether a value counts as missing: null, or text with nothing but white space.
pub fn is_missing(value: &Json) -> bool {
    match value {
        Json::Null => true,
        // Most values start with a letter or digit: no need to look further.
        Json::String(s) => match s.as_bytes().first() {
            None => true,
            Some(b) if b.is_ascii_alphanumeric() => false,
            Some(_) => s.trim().is_empty(),
        },
        _ => false,
    }
}

/// A value quoted in a skip reason, cut short.
pub fn shown(value: &Json) -> String {
    crate::diag::shorten(&value.to_string(), 40)
}

/// A scalar as text, for converters that read one value.
fn scalar_text(value: &Json, converter: &'static str) -> Result<String, ConvertError> {
    match value {
        Json::String(s) => Ok(s.clone()),
        Json::Number(_) | Json::Bool(_) => Ok(value.to_string()),
        other => Err(ConvertError::Unreadable {
            converter,
            value: shown(other),
        }),
    }
}

fn json_type(value: &Json) -> &'static str {
    match value {
        Json::Null => "nothing",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "text",
        Json::Array(_) => "a list",
        Json::Object(_) => "a table",
    }
}

#[cfg(test)]
mod tests;
