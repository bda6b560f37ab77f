//! Reads a mapping file's TOML into the [`Spec`] model, keeping every place: known keys and
//! value types are checked here, one problem per mistake, and reading goes on past each one
//! so the admin sees them all at once.

use std::ops::Range;
use std::sync::Arc;

use serde_json::Value as Json;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::{
    ActiveSpec, Args, At, ConvertSpec, Expect, FieldSpec, LookupSpec, MatchSpec, RefersSpec, Spec,
    TestSpec,
};
use crate::diag::{Problem, SourceText, did_you_mean};

const TOP_KEYS: &[&str] = &[
    "version", "target", "match", "active", "fields", "lookup", "test",
];
/// The keys of a `[fields."…"]` table.
const FIELD_KEYS: &[&str] = &[
    "source", "template", "value", "setting", "convert", "default", "required", "on", "write",
    "on_drift", "primary", "refers",
];
/// The keys of a `refers = { … }` table.
const REFERS_KEYS: &[&str] = &["entity", "policy", "aliases"];
const TEST_KEYS: &[&str] = &[
    "name",
    "user",
    "settings",
    "sync_time",
    "expect",
    "expect_skip",
];
const ACTIVE_KEYS: &[&str] = &["field", "active", "inactive"];

/// Reads a mapping file. Returns what could be read and every problem found on the way.
pub fn read(source: &Arc<SourceText>) -> (Spec, Vec<Problem>) {
    let mut reader = Reader {
        source,
        problems: Vec::new(),
    };
    let (table, errors) = DeTable::parse_recoverable(source.text());
    for error in errors {
        let span = error.span().unwrap_or(0..0);
        reader.problems.push(Problem::error(
            source,
            span,
            error.message().trim().to_string(),
        ));
    }
    let mut spec = Spec {
        source: Arc::clone(source),
        version: None,
        target: None,
        matching: None,
        active: None,
        fields: Vec::new(),
        lookups: Vec::new(),
        tests: Vec::new(),
        top: 0..source.text().find('\n').unwrap_or(source.text().len()),
    };
    for (key, value) in table.get_ref() {
        match key.get_ref().as_ref() {
            "version" => spec.version = reader.integer(value),
            "target" => spec.target = reader.string(value),
            "match" => spec.matching = reader.match_keys(value),
            "active" => spec.active = reader.active(value),
            "fields" => spec.fields = reader.fields(value),
            "lookup" => spec.lookups = reader.lookups(value),
            "test" => spec.tests = reader.tests(value),
            other => reader.unknown(key, other, TOP_KEYS, "the mapping file"),
        }
    }
    (spec, reader.problems)
}

struct Reader<'s> {
    source: &'s Arc<SourceText>,
    problems: Vec<Problem>,
}

type Key<'i> = Spanned<std::borrow::Cow<'i, str>>;
type Val<'i> = Spanned<DeValue<'i>>;

impl Reader<'_> {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>, hint: impl Into<String>) {
        let hint = hint.into();
        let problem = Problem::error(self.source, span, message);
        self.problems.push(if hint.is_empty() {
            problem
        } else {
            problem.with_hint(hint)
        });
    }

    fn unknown(&mut self, key: &Key<'_>, name: &str, known: &[&str], place: &str) {
        let hint = did_you_mean(name, known.iter().copied(), || {
            format!("the keys of {place} are: {}", known.join(", "))
        });
        self.error(key.span(), format!("unknown key `{name}` in {place}"), hint);
    }

    fn wrong_type(&mut self, value: &Val<'_>, wanted: &str) {
        let message = format!("expected {wanted}, found {}", type_name(value.get_ref()));
        self.error(value.span(), message, "");
    }

    fn string(&mut self, value: &Val<'_>) -> Option<At<String>> {
        match value.get_ref() {
            DeValue::String(s) => Some(At::new(s.to_string(), value.span())),
            _ => {
                self.wrong_type(value, "a string");
                None
            }
        }
    }

    fn integer(&mut self, value: &Val<'_>) -> Option<At<i64>> {
        match to_json(value.get_ref()) {
            Json::Number(n) if n.is_i64() => n.as_i64().map(|n| At::new(n, value.span())),
            _ => {
                self.wrong_type(value, "a whole number");
                None
            }
        }
    }

    fn boolean(&mut self, value: &Val<'_>) -> Option<At<bool>> {
        match value.get_ref() {
            DeValue::Boolean(b) => Some(At::new(*b, value.span())),
            _ => {
                self.wrong_type(value, "true or false (without quotes)");
                None
            }
        }
    }

    fn table<'v, 'i>(&mut self, value: &'v Val<'i>, wanted: &str) -> Option<&'v DeTable<'i>> {
        match value.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.wrong_type(value, wanted);
                None
            }
        }
    }

    /// `match = "a"` or `match = ["a", "b"]`: at least one name, each once. A `match` with
    /// a mistake is read as naming no key, so that it is not reported missing as well.
    fn match_keys(&mut self, value: &Val<'_>) -> Option<MatchSpec> {
        let items = match value.get_ref() {
            DeValue::String(s) => {
                let keys = vec![At::new(s.to_string(), value.span())];
                return Some(MatchSpec { keys, list: false });
            }
            DeValue::Array(items) => items,
            _ => {
                self.wrong_type(value, "a target field, or a list of them tried in order");
                return Some(MatchSpec::reported());
            }
        };
        if items.is_empty() {
            self.error(
                value.span(),
                "`match` names no field",
                "name the target fields to match users on, e.g. match = [\"employee_num\", \"email\"]",
            );
            return Some(MatchSpec::reported());
        }
        let mut keys: Vec<At<String>> = Vec::new();
        let mut bad = false;
        for item in items {
            let DeValue::String(name) = item.get_ref() else {
                self.wrong_type(item, "a target field's name, in quotes");
                bad = true;
                continue;
            };
            let key = At::new(name.to_string(), item.span());
            if let Some(first) = keys.iter().find(|k| k.value == key.value) {
                let (line, column) = self.source.line_col(first.span.start);
                self.error(
                    key.span.clone(),
                    format!("`match` names `{}` twice", key.value),
                    format!("it is already named at line {line}, column {column}; remove one"),
                );
                bad = true;
                continue;
            }
            keys.push(key);
        }
        Some(if bad {
            MatchSpec::reported()
        } else {
            MatchSpec { keys, list: true }
        })
    }

    /// `refers = "user"` or `refers = { entity = …, policy = …, aliases = … }`.
    fn refers(&mut self, value: &Val<'_>) -> Option<RefersSpec> {
        if let DeValue::String(s) = value.get_ref() {
            return Some(RefersSpec::Word(At::new(s.to_string(), value.span())));
        }
        let table = self.table(
            value,
            "\"user\", or a table: { entity = \"department\", policy = \"create\" }",
        )?;
        let (mut entity, mut policy, mut aliases) = (None, None, None);
        for (key, v) in table {
            match key.get_ref().as_ref() {
                "entity" => entity = self.string(v),
                "policy" => policy = self.string(v),
                "aliases" => aliases = self.string(v),
                other => self.unknown(key, other, REFERS_KEYS, "`refers`"),
            }
        }
        let Some(entity) = entity else {
            self.error(
                value.span(),
                "`refers` does not name its entity",
                "add entity = \"…\": the kind of thing the value names, e.g. department",
            );
            return None;
        };
        Some(RefersSpec::Entity {
            entity,
            policy,
            aliases,
            span: value.span(),
        })
    }

    fn active(&mut self, value: &Val<'_>) -> Option<ActiveSpec> {
        let table = self.table(
            value,
            "a table: { field = \"active\", active = true, inactive = false }",
        )?;
        let (mut field, mut active, mut inactive) = (None, Json::Bool(true), Json::Bool(false));
        for (key, v) in table {
            match key.get_ref().as_ref() {
                "field" => field = self.string(v),
                "active" => active = to_json(v.get_ref()),
                "inactive" => inactive = to_json(v.get_ref()),
                other => self.unknown(key, other, ACTIVE_KEYS, "`active`"),
            }
        }
        let Some(field) = field else {
            self.error(
                value.span(),
                "`active` does not name its field",
                "add field = \"…\": the target field that carries the active flag",
            );
            return None;
        };
        Some(ActiveSpec {
            field,
            active,
            inactive,
        })
    }

    fn fields(&mut self, value: &Val<'_>) -> Vec<FieldSpec> {
        let Some(table) = self.table(value, "a table of fields: [fields.\"name\"]") else {
            return Vec::new();
        };
        let mut fields = Vec::new();
        for (key, v) in table {
            let target = At::new(key.get_ref().to_string(), key.span());
            let Some(entries) = self.table(v, "a table: [fields.\"…\"] with source = \"…\"")
            else {
                continue;
            };
            let mut field = FieldSpec::new(self.source, target);
            let mut dotted = false;
            for (k, v) in entries {
                // `[fields.name.givenName]` unquoted: TOML reads a field `name` holding a
                // table `givenName`.
                if let DeValue::Table(_) = v.get_ref()
                    && !FIELD_KEYS.contains(&k.get_ref().as_ref())
                {
                    let path = format!("{}.{}", key.get_ref(), k.get_ref());
                    self.error(
                        k.span(),
                        format!(
                            "TOML reads `{path}` as a field `{}` holding a table",
                            key.get_ref()
                        ),
                        format!("quote the field's path: [fields.\"{path}\"]"),
                    );
                    dotted = true;
                    continue;
                }
                match k.get_ref().as_ref() {
                    "source" => field.graph = self.sources(v),
                    "template" => field.template = self.string(v),
                    "value" => field.constant = Some(At::new(to_json(v.get_ref()), v.span())),
                    "setting" => field.setting = self.string(v),
                    "convert" => field.convert = self.convert(v),
                    "default" => field.default = Some(At::new(to_json(v.get_ref()), v.span())),
                    "required" => field.required = self.boolean(v),
                    "on" => field.on = self.string(v),
                    "write" => field.write = self.string(v),
                    "on_drift" => field.on_drift = self.string(v),
                    "primary" => field.primary = self.boolean(v),
                    "refers" => field.refers = self.refers(v),
                    other => {
                        let place = format!("field `{}`", key.get_ref());
                        self.unknown(k, other, FIELD_KEYS, &place);
                    }
                }
            }
            if !dotted {
                fields.push(field);
            }
        }
        fields
    }

    /// `source = "a"` or `source = ["a", "b"]`.
    fn sources(&mut self, value: &Val<'_>) -> Option<At<Vec<At<String>>>> {
        let paths = match value.get_ref() {
            DeValue::String(s) => vec![At::new(s.to_string(), value.span())],
            DeValue::Array(items) if !items.is_empty() => {
                let paths: Vec<_> = items.iter().filter_map(|i| self.string(i)).collect();
                if paths.len() != items.len() {
                    return None;
                }
                paths
            }
            _ => {
                self.wrong_type(
                    value,
                    "a Graph path, or a list of them (first non-empty wins)",
                );
                return None;
            }
        };
        Some(At::new(paths, value.span()))
    }

    fn convert(&mut self, value: &Val<'_>) -> Vec<ConvertSpec> {
        let items: Vec<&Val<'_>> = match value.get_ref() {
            DeValue::Array(items) => items.iter().collect(),
            // A single converter needs no list around it.
            DeValue::String(_) | DeValue::Table(_) => vec![value],
            _ => {
                self.wrong_type(value, "a list of converters, e.g. [\"trim\", \"lower\"]");
                return Vec::new();
            }
        };
        items
            .into_iter()
            .filter_map(|i| self.converter(i))
            .collect()
    }

    fn converter(&mut self, item: &Val<'_>) -> Option<ConvertSpec> {
        match item.get_ref() {
            DeValue::String(name) => Some(ConvertSpec {
                name: At::new(name.to_string(), item.span()),
                args: Args::None,
                span: item.span(),
            }),
            DeValue::Table(t) if t.len() == 1 => {
                let (key, v) = t.iter().next()?;
                let args = match v.get_ref() {
                    DeValue::Array(a) => Args::Positional(
                        a.iter()
                            .map(|x| At::new(to_json(x.get_ref()), x.span()))
                            .collect(),
                    ),
                    DeValue::Table(named) => Args::Named(
                        named
                            .iter()
                            .map(|(k, x)| {
                                (
                                    At::new(k.get_ref().to_string(), k.span()),
                                    At::new(to_json(x.get_ref()), x.span()),
                                )
                            })
                            .collect(),
                    ),
                    other => Args::Positional(vec![At::new(to_json(other), v.span())]),
                };
                Some(ConvertSpec {
                    name: At::new(key.get_ref().to_string(), key.span()),
                    args,
                    span: item.span(),
                })
            }
            _ => {
                self.error(
                    item.span(),
                    "a converter is a name (\"lower\") or a table with one key ({ truncate = 20 })",
                    "",
                );
                None
            }
        }
    }

    fn lookups(&mut self, value: &Val<'_>) -> Vec<LookupSpec> {
        let Some(table) = self.table(value, "tables: [lookup.NAME]") else {
            return Vec::new();
        };
        let mut lookups = Vec::new();
        for (key, v) in table {
            let Some(entries) = self.table(v, "a table of values: [lookup.NAME]") else {
                continue;
            };
            let entries = entries
                .iter()
                .map(|(k, x)| {
                    (
                        At::new(k.get_ref().to_string(), k.span()),
                        At::new(to_json(x.get_ref()), x.span()),
                    )
                })
                .collect();
            lookups.push(LookupSpec {
                name: At::new(key.get_ref().to_string(), key.span()),
                entries,
            });
        }
        lookups
    }

    fn tests(&mut self, value: &Val<'_>) -> Vec<TestSpec> {
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(value, "[[test]] tables");
            return Vec::new();
        };
        items.iter().filter_map(|item| self.test(item)).collect()
    }

    fn test(&mut self, item: &Val<'_>) -> Option<TestSpec> {
        let table = self.table(item, "a [[test]] table")?;
        let mut test = TestSpec {
            name: String::new(),
            user: Json::Null,
            settings: serde_json::Map::new(),
            sync_time: None,
            expect: None,
        };
        let mut expect_span = None;
        for (key, v) in table {
            let name = key.get_ref().as_ref();
            match name {
                "name" => test.name = self.string(v).map(|s| s.value).unwrap_or_default(),
                "user" | "settings" => match to_json(v.get_ref()) {
                    Json::Object(map) if name == "user" => test.user = Json::Object(map),
                    Json::Object(map) => test.settings = map,
                    _ => self.wrong_type(v, "a table"),
                },
                "sync_time" => test.sync_time = self.string(v),
                "expect" | "expect_skip" => {
                    if let Some(first) = expect_span.replace(key.span()) {
                        let (line, _) = self.source.line_col(first.start);
                        self.error(
                            key.span(),
                            "a test expects either a record or a skip, not both",
                            format!("the other expectation is on line {line}"),
                        );
                        continue;
                    }
                    test.expect = match (name, to_json(v.get_ref())) {
                        ("expect", Json::Object(map)) => Some(Expect::Record(Json::Object(map))),
                        ("expect_skip", Json::String(reason)) => Some(Expect::Skip(reason)),
                        ("expect", _) => {
                            self.wrong_type(v, "a table: the record the user maps to");
                            None
                        }
                        _ => {
                            self.wrong_type(v, "a string: part of the skip reason");
                            None
                        }
                    };
                }
                other => self.unknown(key, other, TEST_KEYS, "a [[test]]"),
            }
        }
        if !test.user.is_object() {
            self.error(
                item.span(),
                format!("test `{}` has no user", test.name),
                "add a [test.user] table: the Graph user to map",
            );
        }
        if expect_span.is_none() {
            self.error(
                item.span(),
                format!("test `{}` expects nothing", test.name),
                "add a [test.expect] table (the record) or expect_skip = \"…\" (the reason)",
            );
        }
        Some(test)
    }
}

/// A TOML value as JSON: tables become objects, date-times their text.
pub fn to_json(value: &DeValue<'_>) -> Json {
    match value {
        DeValue::String(s) => Json::String(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(&i.as_str().replace('_', ""), i.radix())
            .map_or(Json::Null, Json::from),
        DeValue::Float(f) => f
            .as_str()
            .replace('_', "")
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Json::Null, Json::Number),
        DeValue::Boolean(b) => Json::Bool(*b),
        DeValue::Datetime(d) => Json::String(d.to_string()),
        DeValue::Array(items) => Json::Array(items.iter().map(|i| to_json(i.get_ref())).collect()),
        DeValue::Table(t) => Json::Object(
            t.iter()
                .map(|(k, v)| (k.get_ref().to_string(), to_json(v.get_ref())))
                .collect(),
        ),
    }
}

fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}
