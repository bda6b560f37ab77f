//! Converters: the small value transformations a field's `convert` chain applies, and the
//! same transformations as handlebars helpers for templates.
//!
//! Everything that can be prepared is prepared when the mapping is compiled: regexes are
//! compiled once (with a size limit, so a hostile pattern cannot eat the machine), lookup
//! tables are built once, date formats are checked once. Applying a converter to a user's
//! value never compiles anything and never panics; a value it cannot handle (a date that is
//! not a date) is an error that skips that user, with a reason.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use handlebars::{
    Context, Handlebars, HelperDef, RenderContext, RenderError, RenderErrorReason, ScopedJson,
};
use regex::{Regex, RegexBuilder};
use serde_json::Value as Json;
use unicode_normalization::UnicodeNormalization;

use super::path::GraphPath;

/// Largest compiled regex (bytes); larger patterns are refused when the mapping is compiled.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Every converter: name, argument names (`...` = any number), how many are required, and
/// what it does (for the README and for messages).
pub const CONVERTERS: &[(&str, &[&str], usize, &str)] = &[
    ("lower", &[], 0, "lower case"),
    ("upper", &[], 0, "upper case"),
    ("trim", &[], 0, "drop leading and trailing white space"),
    ("title", &[], 0, "Title Case Of Each Word"),
    ("capitalize", &[], 0, "First letter up, the rest down"),
    ("strip_diacritics", &[], 0, "José → Jose, Łódź → Lodz"),
    (
        "regex_replace",
        &["pattern", "with"],
        2,
        "regex replace; `$1` or `${name}` in `with` are capture groups",
    ),
    (
        "replace",
        &["from", "to"],
        2,
        "replace every `from` by `to` (plain text)",
    ),
    (
        "split",
        &["separator", "index"],
        1,
        "split into a list; with `index`, that element (negative counts from the end)",
    ),
    ("join", &["separator"], 1, "join a list into text"),
    (
        "first_non_empty",
        &["..."],
        1,
        "the value if not empty, else the first non-empty of these Graph paths",
    ),
    (
        "substring",
        &["start", "length"],
        1,
        "characters from `start` (0-based), at most `length`",
    ),
    ("truncate", &["length"], 1, "at most `length` characters"),
    (
        "date",
        &["to", "from"],
        1,
        "parse a date (ISO 8601, or the `from` format) and format it (strftime `to`)",
    ),
    (
        "lookup",
        &["table", "default"],
        1,
        "the value's entry in [lookup.TABLE] (ignoring case), else `default`, else missing",
    ),
    (
        "bool_words",
        &["true", "false"],
        0,
        "true/false → \"Active\"/\"Inactive\" (or the two words given)",
    ),
    ("email_local", &[], 0, "the part before the last @"),
    ("email_domain", &[], 0, "the part after the last @"),
];

/// The names of every converter, for messages.
pub fn names() -> impl Iterator<Item = &'static str> {
    CONVERTERS.iter().map(|c| c.0)
}

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
            Converter::BoolWords(..) => "bool_words",
            Converter::EmailLocal => "email_local",
            Converter::EmailDomain => "email_domain",
        }
    }
}

/// A converter's arguments that cannot be used: which one (if one), and why.
#[derive(Debug)]
pub struct ArgError {
    /// The argument at fault, by position; `None` for the converter as a whole.
    pub arg: Option<usize>,
    /// What is wrong.
    pub message: String,
}

fn arg_error(arg: Option<usize>, message: impl Into<String>) -> ArgError {
    ArgError {
        arg,
        message: message.into(),
    }
}

/// What a converter needs from its surroundings while being built.
pub struct Env<'a> {
    /// The mapping's lookup tables.
    pub lookups: &'a HashMap<String, Arc<Lookup>>,
    /// Turns a pattern into a regex: compiles it (mapping compile time) or finds the one
    /// compiled before (template rendering).
    pub regex: &'a mut dyn FnMut(&str) -> Result<Arc<Regex>, String>,
    /// Turns a Graph path into a checked path (`first_non_empty`).
    pub graph_path: &'a mut dyn FnMut(usize, &str) -> Result<GraphPath, ArgError>,
}

/// Builds the converter `name` from positional arguments. `Ok(None)` if no such converter.
pub fn build(name: &str, args: &[Json], env: &mut Env<'_>) -> Result<Option<Converter>, ArgError> {
    let Some((_, params, required, _)) = CONVERTERS.iter().find(|c| c.0 == name) else {
        return Ok(None);
    };
    let variadic = params.first() == Some(&"...");
    if args.len() < *required {
        let wanted = params[..*required].join(", ");
        return Err(arg_error(
            None,
            format!("`{name}` needs {required} argument(s): {wanted}"),
        ));
    }
    if !variadic && args.len() > params.len() {
        let message = if params.is_empty() {
            format!("`{name}` takes no arguments")
        } else {
            format!(
                "`{name}` takes at most {} argument(s): {}",
                params.len(),
                params.join(", ")
            )
        };
        return Err(arg_error(Some(params.len()), message));
    }
    let text = |i: usize| -> Result<String, ArgError> {
        match args.get(i) {
            Some(Json::String(s)) => Ok(s.clone()),
            Some(other) => Err(arg_error(
                Some(i),
                format!(
                    "`{}` of `{name}` must be text, not {}",
                    params[i],
                    json_type(other)
                ),
            )),
            None => Ok(String::new()),
        }
    };
    let count = |i: usize| -> Result<Option<i64>, ArgError> {
        match args.get(i) {
            Some(Json::Number(n)) if n.is_i64() => Ok(n.as_i64()),
            Some(other) => Err(arg_error(
                Some(i),
                format!(
                    "`{}` of `{name}` must be a whole number, not {}",
                    params[i],
                    json_type(other)
                ),
            )),
            None => Ok(None),
        }
    };
    let size = |i: usize| -> Result<Option<usize>, ArgError> {
        match count(i)? {
            Some(n) => usize::try_from(n).map(Some).map_err(|_| {
                arg_error(
                    Some(i),
                    format!("`{}` of `{name}` must not be negative", params[i]),
                )
            }),
            None => Ok(None),
        }
    };
    Ok(Some(match name {
        "lower" => Converter::Lower,
        "upper" => Converter::Upper,
        "trim" => Converter::Trim,
        "title" => Converter::Title,
        "capitalize" => Converter::Capitalize,
        "strip_diacritics" => Converter::StripDiacritics,
        "email_local" => Converter::EmailLocal,
        "email_domain" => Converter::EmailDomain,
        "regex_replace" => {
            let pattern = text(0)?;
            let regex = (env.regex)(&pattern).map_err(|e| arg_error(Some(0), e))?;
            Converter::RegexReplace(regex, text(1)?)
        }
        "replace" => {
            let from = text(0)?;
            if from.is_empty() {
                return Err(arg_error(Some(0), "`from` of `replace` must not be empty"));
            }
            Converter::Replace(from, text(1)?)
        }
        "split" => {
            let separator = text(0)?;
            if separator.is_empty() {
                return Err(arg_error(
                    Some(0),
                    "`separator` of `split` must not be empty",
                ));
            }
            Converter::Split(separator, count(1)?)
        }
        "join" => Converter::Join(text(0)?),
        "first_non_empty" => {
            let mut paths = Vec::new();
            for (i, arg) in args.iter().enumerate() {
                let Json::String(p) = arg else {
                    return Err(arg_error(
                        Some(i),
                        "`first_non_empty` takes Graph paths (text)",
                    ));
                };
                paths.push((env.graph_path)(i, p)?);
            }
            Converter::FirstNonEmpty(paths)
        }
        "substring" => Converter::Substring(size(0)?.unwrap_or(0), size(1)?),
        "truncate" => Converter::Truncate(size(0)?.unwrap_or(0)),
        "date" => {
            let to = text(0)?;
            check_date_format(&to).map_err(|e| arg_error(Some(0), e))?;
            let from = match args.get(1) {
                Some(_) => {
                    let from = text(1)?;
                    check_date_format(&from).map_err(|e| arg_error(Some(1), e))?;
                    Some(from)
                }
                None => None,
            };
            Converter::Date(to, from)
        }
        "lookup" => {
            let table = text(0)?;
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
                return Err(arg_error(Some(0), message));
            };
            Converter::Lookup(Arc::clone(lookup), args.get(1).cloned())
        }
        "bool_words" => {
            let yes = if args.is_empty() {
                "Active".to_string()
            } else {
                text(0)?
            };
            let no = if args.len() < 2 {
                "Inactive".to_string()
            } else {
                text(1)?
            };
            Converter::BoolWords(yes, no)
        }
        _ => return Ok(None),
    }))
}

/// Compiles a pattern with the size limit. Shared, so that every use of the pattern (each
/// template helper call included) reuses one compiled regex and its caches.
pub fn compile_regex(pattern: &str) -> Result<Arc<Regex>, String> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => {
                format!("the regex is too large (compiled, it exceeds {limit} bytes)")
            }
            other => format!("invalid regex: {}", last_line(&other.to_string())),
        })
        .map(Arc::new)
}

/// The regex crate's messages draw the pattern over several lines; the last one says why.
fn last_line(message: &str) -> String {
    message
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(message)
        .trim()
        .trim_start_matches("error: ")
        .to_string()
}

/// A strftime format chrono can render.
pub fn check_date_format(format: &str) -> Result<(), String> {
    if format.is_empty() {
        return Err("the date format is empty".to_string());
    }
    match StrftimeItems::new(format).find(|i| matches!(i, Item::Error)) {
        Some(_) => Err(format!(
            "`{format}` is not a valid date format; use strftime codes such as %Y-%m-%d"
        )),
        None => Ok(()),
    }
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

impl Converter {
    /// Applies the converter. `Ok(None)` means the result is missing; `Err` says why the value
    /// could not be converted.
    pub fn apply(&self, value: Json, user: &Json) -> Result<Option<Json>, String> {
        match self {
            Converter::FirstNonEmpty(paths) => Ok(if is_missing(&value) {
                paths
                    .iter()
                    .filter_map(|p| p.get(user))
                    .find(|v| !is_missing(v))
                    .cloned()
            } else {
                Some(value)
            }),
            Converter::Join(separator) => Ok(Some(match value {
                Json::Array(items) => Json::String(
                    items
                        .iter()
                        .filter(|v| !is_missing(v))
                        .map(text_of)
                        .collect::<Vec<_>>()
                        .join(separator),
                ),
                other => other,
            })),
            Converter::Split(separator, index) => {
                let text = scalar_text(&value, "split")?;
                let parts: Vec<&str> = text.split(separator.as_str()).collect();
                Ok(match index {
                    None => Some(Json::Array(parts.into_iter().map(Json::from).collect())),
                    Some(i) => {
                        let at = if *i < 0 {
                            parts.len().checked_sub(i.unsigned_abs() as usize)
                        } else {
                            usize::try_from(*i).ok()
                        };
                        at.and_then(|at| parts.get(at)).map(|p| Json::from(*p))
                    }
                })
            }
            Converter::Lookup(table, default) => {
                let key = scalar_text(&value, "lookup")?.to_lowercase();
                Ok(table.entries.get(&key).or(default.as_ref()).cloned())
            }
            Converter::BoolWords(yes, no) => {
                let flag = match &value {
                    Json::Bool(b) => *b,
                    Json::String(s) if s.eq_ignore_ascii_case("true") => true,
                    Json::String(s) if s.eq_ignore_ascii_case("false") => false,
                    other => return Err(format!("{} is not true or false", shown(other))),
                };
                Ok(Some(Json::from(if flag {
                    yes.as_str()
                } else {
                    no.as_str()
                })))
            }
            Converter::Date(to, from) => {
                let text = scalar_text(&value, "date")?;
                let date = parse_date(&text, from.as_deref())
                    .ok_or_else(|| format!("{} is not a date", shown(&value)))?;
                let mut out = String::new();
                write!(out, "{}", date.format(to))
                    .map_err(|_| format!("cannot format {} as `{to}`", shown(&value)))?;
                Ok(Some(Json::String(out)))
            }
            // The rest work on text; a list is converted element by element.
            _ => match value {
                Json::Array(items) => {
                    let mut out = Vec::with_capacity(items.len());
                    for item in items {
                        if let Some(v) = self.text(item)? {
                            out.push(v);
                        }
                    }
                    Ok(Some(Json::Array(out)))
                }
                other => self.text(other),
            },
        }
    }

    /// A text converter on one value.
    fn text(&self, value: Json) -> Result<Option<Json>, String> {
        if value.is_null() {
            return Ok(None);
        }
        if value.is_object() {
            return Err(format!("{} is an object, not text", shown(&value)));
        }
        let s = match value {
            Json::String(s) => s,
            other => other.to_string(),
        };
        let out = match self {
            Converter::Lower => s.to_lowercase(),
            Converter::Upper => s.to_uppercase(),
            Converter::Trim => s.trim().to_string(),
            Converter::Title => title(&s),
            Converter::Capitalize => capitalize(&s),
            Converter::StripDiacritics => strip_diacritics(&s),
            Converter::RegexReplace(re, with) => re.replace_all(&s, with.as_str()).into_owned(),
            Converter::Replace(from, to) => s.replace(from.as_str(), to),
            Converter::Substring(start, len) => {
                let chars = s.chars().skip(*start);
                match len {
                    Some(n) => chars.take(*n).collect(),
                    None => chars.collect(),
                }
            }
            Converter::Truncate(n) => s.chars().take(*n).collect(),
            Converter::EmailLocal => s.rsplit_once('@').map_or(s.clone(), |(l, _)| l.to_string()),
            Converter::EmailDomain => match s.rsplit_once('@') {
                Some((_, domain)) => domain.to_string(),
                None => return Ok(None),
            },
            // Handled in `apply`.
            Converter::FirstNonEmpty(_)
            | Converter::Join(_)
            | Converter::Split(..)
            | Converter::Lookup(..)
            | Converter::BoolWords(..)
            | Converter::Date(..) => s,
        };
        Ok(Some(Json::String(out)))
    }
}

/// A scalar as text, for converters that read one value.
fn scalar_text(value: &Json, converter: &str) -> Result<String, String> {
    match value {
        Json::String(s) => Ok(s.clone()),
        Json::Number(_) | Json::Bool(_) => Ok(value.to_string()),
        other => Err(format!("`{converter}` cannot read {}", shown(other))),
    }
}

fn text_of(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A value quoted in a skip reason, cut short.
pub fn shown(value: &Json) -> String {
    crate::diag::shorten(&value.to_string(), 40)
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

/// ISO 8601 as Graph writes it (with or without a zone, or a bare date), or `from`.
fn parse_date(text: &str, from: Option<&str>) -> Option<DateTime<FixedOffset>> {
    let text = text.trim();
    let utc = |naive: NaiveDateTime| naive.and_utc().fixed_offset();
    match from {
        Some(format) => DateTime::parse_from_str(text, format)
            .ok()
            .or_else(|| NaiveDateTime::parse_from_str(text, format).ok().map(utc))
            .or_else(|| {
                NaiveDate::parse_from_str(text, format)
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map(utc)
            }),
        None => DateTime::parse_from_rfc3339(text)
            .ok()
            .or_else(|| {
                NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                    .ok()
                    .map(utc)
            })
            .or_else(|| {
                NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map(utc)
            }),
    }
}

/// Upper-cases the first letter of every word and lower-cases the rest; a word starts after
/// white space, a hyphen or an apostrophe (`o'brien-smith` → `O'Brien-Smith`).
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        start = c.is_whitespace() || matches!(c, '-' | '\'' | '’');
    }
    out
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

/// Drops accents (`José` → `Jose`) and spells out letters that have no accent-free form in
/// Unicode's decomposition (`ß` → `ss`, `Ł` → `L`). Only the combining diacritical marks
/// (U+0300–U+036F) go: the vowel signs of other scripts are letters' parts, not accents, and
/// the result is recomposed (NFC), so Hangul and the like come out as they went in.
fn strip_diacritics(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.nfd() {
        if ('\u{0300}'..='\u{036F}').contains(&c) {
            continue;
        }
        match c {
            'ß' => out.push_str("ss"),
            'æ' => out.push_str("ae"),
            'Æ' => out.push_str("AE"),
            'œ' => out.push_str("oe"),
            'Œ' => out.push_str("OE"),
            'ø' => out.push('o'),
            'Ø' => out.push('O'),
            'ł' => out.push('l'),
            'Ł' => out.push('L'),
            'đ' => out.push('d'),
            'Đ' => out.push('D'),
            'þ' => out.push_str("th"),
            'Þ' => out.push_str("Th"),
            'ı' => out.push('i'),
            other => out.push(other),
        }
    }
    out.nfc().collect()
}

/// What the helpers share: the regexes and lookup tables the templates use, prepared once.
#[derive(Debug, Default)]
pub struct Shared {
    /// Regexes by pattern, compiled while the mapping was compiled.
    pub regexes: HashMap<String, Arc<Regex>>,
    /// The mapping's lookup tables.
    pub lookups: HashMap<String, Arc<Lookup>>,
}

/// Where templates find settings: a key no Graph property can have.
pub const SETTINGS_KEY: &str = "$settings";

/// A converter as a handlebars helper: `{{lower givenName}}`, `{{date hire "%Y"}}`.
struct Helper {
    name: &'static str,
    shared: Arc<Shared>,
}

impl HelperDef for Helper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &handlebars::Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let params: Vec<&Json> = h.params().iter().map(|p| p.value()).collect();
        let fail = |message: String| -> RenderError {
            RenderErrorReason::Other(format!("{}: {message}", self.name)).into()
        };
        match self.name {
            "first_non_empty" => {
                let found = params.iter().find(|v| !is_missing(v)).map(|v| (*v).clone());
                return Ok(ScopedJson::Derived(found.unwrap_or(Json::Null)));
            }
            "setting" => {
                let value = params
                    .first()
                    .and_then(|name| name.as_str())
                    .and_then(|name| ctx.data().get(SETTINGS_KEY)?.get(name))
                    .cloned();
                return Ok(ScopedJson::Derived(value.unwrap_or(Json::Null)));
            }
            _ => {}
        }
        let Some((value, args)) = params.split_first() else {
            return Err(fail("give the value to convert".to_string()));
        };
        if is_missing(value) {
            return Ok(ScopedJson::Derived(Json::Null));
        }
        let args: Vec<Json> = args.iter().map(|a| (*a).clone()).collect();
        let shared = &self.shared;
        let mut regex = |pattern: &str| {
            shared
                .regexes
                .get(pattern)
                .cloned()
                .ok_or_else(|| "the pattern must be written in the template".to_string())
        };
        let mut graph_path =
            |_: usize, _: &str| -> Result<GraphPath, ArgError> { Err(arg_error(None, "")) };
        let mut env = Env {
            lookups: &shared.lookups,
            regex: &mut regex,
            graph_path: &mut graph_path,
        };
        let converter = build(self.name, &args, &mut env)
            .map_err(|e| fail(e.message))?
            .ok_or_else(|| fail("unknown helper".to_string()))?;
        let out = converter
            .apply((*value).clone(), &Json::Null)
            .map_err(fail)?;
        Ok(ScopedJson::Derived(out.unwrap_or(Json::Null)))
    }
}

/// Helpers beyond the converters.
pub const EXTRA_HELPERS: &[&str] = &["first_non_empty", "setting"];

/// Handlebars' own helpers that templates may use.
pub const BUILTIN_HELPERS: &[&str] = &[
    "if", "unless", "each", "with", "eq", "ne", "gt", "gte", "lt", "lte", "and", "or", "not", "len",
];

/// Registers every converter (and `first_non_empty`, `setting`) as a helper.
pub fn register_helpers(registry: &mut Handlebars<'static>, shared: &Arc<Shared>) {
    let converters = names().filter(|n| *n != "first_non_empty");
    for name in converters.chain(EXTRA_HELPERS.iter().copied()) {
        registry.register_helper(
            name,
            Box::new(Helper {
                name,
                shared: Arc::clone(shared),
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conv(name: &str, args: &[Json]) -> Converter {
        let lookups = HashMap::from([(
            "dept".to_string(),
            Arc::new(Lookup::new([("IT Operations".to_string(), json!(3))])),
        )]);
        let mut regex = |p: &str| compile_regex(p);
        let mut graph_path = |i: usize, p: &str| {
            super::super::path::split(p)
                .and_then(|s| super::super::path::resolve(&s))
                .map_err(|e| arg_error(Some(i), e.message))
        };
        let mut env = Env {
            lookups: &lookups,
            regex: &mut regex,
            graph_path: &mut graph_path,
        };
        build(name, args, &mut env).unwrap().unwrap()
    }

    fn run(name: &str, args: &[Json], value: Json) -> Option<Json> {
        conv(name, args)
            .apply(value, &json!({"mail": "a@b.c"}))
            .unwrap()
    }

    #[test]
    fn text_converters() {
        assert_eq!(run("lower", &[], json!("ÀB")), Some(json!("àb")));
        assert_eq!(run("upper", &[], json!("straße")), Some(json!("STRASSE")));
        assert_eq!(run("trim", &[], json!("  x ")), Some(json!("x")));
        assert_eq!(
            run("title", &[], json!("o'brien-SMITH jr")),
            Some(json!("O'Brien-Smith Jr"))
        );
        assert_eq!(
            run("capitalize", &[], json!("hELLO wORLD")),
            Some(json!("Hello world"))
        );
        assert_eq!(
            run("strip_diacritics", &[], json!("José Łódź Ærø Straße")),
            Some(json!("Jose Lodz AEro Strasse"))
        );
        assert_eq!(
            run("truncate", &[json!(3)], json!("Zoë-Ann")),
            Some(json!("Zoë"))
        );
        assert_eq!(
            run("substring", &[json!(1), json!(2)], json!("abcd")),
            Some(json!("bc"))
        );
        assert_eq!(
            run("replace", &[json!("-"), json!("")], json!("a-b-c")),
            Some(json!("abc"))
        );
        assert_eq!(
            run("lower", &[], json!(["A", null, "B"])),
            Some(json!(["a", "b"]))
        );
        assert_eq!(run("upper", &[], json!(true)), Some(json!("TRUE")));
    }

    #[test]
    fn email_parts_and_guests() {
        let guest = json!("ann_contoso.com#EXT#@fabrikam.onmicrosoft.com");
        assert_eq!(
            run("email_local", &[], guest.clone()),
            Some(json!("ann_contoso.com#EXT#"))
        );
        assert_eq!(
            run("email_domain", &[], guest),
            Some(json!("fabrikam.onmicrosoft.com"))
        );
        assert_eq!(run("email_domain", &[], json!("nobody")), None);
    }

    #[test]
    fn strip_diacritics_leaves_other_scripts_as_they_were() {
        assert_eq!(strip_diacritics("José Łódź Straße"), "Jose Lodz Strasse");
        assert_eq!(strip_diacritics("한국 이름"), "한국 이름");
        assert_eq!(strip_diacritics("हिन्दी"), "हिन्दी");
        assert_eq!(strip_diacritics("Ἀθῆναι"), "Αθηναι");
    }

    #[test]
    fn regex_replace_uses_capture_groups() {
        let args = [json!("^(?<first>\\w+)\\.(\\w+)@.*$"), json!("$2, ${first}")];
        assert_eq!(
            run("regex_replace", &args, json!("ann.lee@x.com")),
            Some(json!("lee, ann"))
        );
    }

    #[test]
    fn split_join_first_non_empty() {
        assert_eq!(
            run("split", &[json!(" ")], json!("a b")),
            Some(json!(["a", "b"]))
        );
        assert_eq!(
            run("split", &[json!(" "), json!(-1)], json!("a b c")),
            Some(json!("c"))
        );
        assert_eq!(run("split", &[json!(" "), json!(5)], json!("a b")), None);
        assert_eq!(run("split", &[json!(" "), json!(-5)], json!("a b")), None);
        assert_eq!(
            run("join", &[json!(", ")], json!(["a", "", "b"])),
            Some(json!("a, b"))
        );
        assert_eq!(
            run("first_non_empty", &[json!("mail")], json!(" ")),
            Some(json!("a@b.c"))
        );
        assert_eq!(
            run("first_non_empty", &[json!("mail")], json!("x")),
            Some(json!("x"))
        );
    }

    #[test]
    fn dates_lookups_and_words() {
        let hire = json!("2024-03-05T08:00:00Z");
        assert_eq!(
            run("date", &[json!("%d/%m/%Y")], hire.clone()),
            Some(json!("05/03/2024"))
        );
        assert_eq!(run("date", &[json!("%s")], hire), Some(json!("1709625600")));
        assert_eq!(
            run(
                "date",
                &[json!("%Y-%m-%d"), json!("%m/%d/%Y")],
                json!("03/05/2024")
            ),
            Some(json!("2024-03-05"))
        );
        assert!(
            conv("date", &[json!("%Y")])
                .apply(json!("soon"), &Json::Null)
                .is_err()
        );
        assert_eq!(
            run("lookup", &[json!("dept")], json!("it operations")),
            Some(json!(3))
        );
        assert_eq!(run("lookup", &[json!("dept")], json!("Sales")), None);
        assert_eq!(
            run("lookup", &[json!("dept"), json!(1)], json!("Sales")),
            Some(json!(1))
        );
        assert_eq!(
            run("bool_words", &[], json!(false)),
            Some(json!("Inactive"))
        );
        assert_eq!(
            run("bool_words", &[json!("Yes"), json!("No")], json!(true)),
            Some(json!("Yes"))
        );
        assert!(
            conv("bool_words", &[])
                .apply(json!("maybe"), &Json::Null)
                .is_err()
        );
    }

    #[test]
    fn hostile_regexes_are_refused_not_compiled() {
        assert!(compile_regex("(").unwrap_err().starts_with("invalid regex"));
        let huge = "\\w{1000}".repeat(50);
        assert!(compile_regex(&huge).unwrap_err().contains("too large"));
    }

    #[test]
    fn bad_date_formats_are_refused() {
        assert!(check_date_format("%Y-%m-%d").is_ok());
        assert!(check_date_format("%Q").is_err());
        assert!(check_date_format("").is_err());
    }
}
