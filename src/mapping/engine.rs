//! Maps one Graph user to one target record. Pure: no I/O and no clock; the run's start time
//! and the settings come in through [`Context`], so a mapping's output depends on its inputs
//! alone and tests can pin it down exactly.

use serde_json::{Map, Value as Json};

use super::convert::{Converter, SETTINGS_KEY, is_missing};
use super::path::{GraphPath, SCIM_CORE, SYNC_TIME, TargetSeg};
use super::{Context, Field, Mapping, Record, Skip, TargetType, Template, ValueSource};

impl Mapping {
    /// Maps one Graph user (a JSON object as Graph returns it) to a target record, or says
    /// why this user is skipped (a required field without a value, a value a converter could
    /// not convert). Fields whose value is missing and have no default are left out.
    pub fn map(&self, user: &Json, ctx: &Context<'_>) -> Result<Record, Skip> {
        let mut record = Record::new();
        for field in &self.fields {
            if let Some(value) = self.value(field, user, ctx)? {
                insert(&mut record, &field.path, value, field.primary);
            }
        }
        if self.target == TargetType::Scim && !record.contains_key("schemas") {
            let mut schemas = vec![Json::from(SCIM_CORE)];
            schemas.extend(
                record
                    .keys()
                    .filter(|k| k.starts_with("urn:"))
                    .map(|k| Json::from(k.as_str())),
            );
            record.insert("schemas".to_string(), Json::Array(schemas));
        }
        Ok(record)
    }

    /// One field's value: read, converted, defaulted; `None` when missing and optional.
    fn value(&self, field: &Field, user: &Json, ctx: &Context<'_>) -> Result<Option<Json>, Skip> {
        let skip = |reason: String| Skip {
            field: field.target.clone(),
            reason,
        };
        let mut value = match &field.value {
            ValueSource::Graph(paths) => paths.iter().find_map(|p| match p {
                GraphPath::SyncTime => Some(Json::from(ctx.sync_time)),
                user_path => user_path.get(user).filter(|v| !is_missing(v)).cloned(),
            }),
            ValueSource::Constant(v) => Some(v.clone()),
            ValueSource::Setting(name) => ctx.settings.get(name).cloned(),
            ValueSource::Template(template) => {
                let data = template_data(template, user, ctx);
                let rendered = self
                    .templates
                    .render_with_context(&field.target, &handlebars::Context::from(data))
                    .map_err(|e| skip(format!("the template failed: {}", render_reason(&e))))?;
                Some(Json::String(rendered))
            }
        }
        .filter(|v| !is_missing(v));
        for converter in &field.convert {
            // A missing value ends the chain, except where `first_non_empty` fills it in.
            let input = match value.take() {
                Some(v) => v,
                None if matches!(converter, Converter::FirstNonEmpty(_)) => Json::Null,
                None => break,
            };
            value = converter
                .apply(input, user)
                .map_err(skip)?
                .filter(|v| !is_missing(v));
        }
        let value = value.or_else(|| field.default.clone());
        if value.is_none() && field.required {
            return Err(skip(format!(
                "required, but {} has no value",
                field.describe_source()
            )));
        }
        Ok(value)
    }
}

impl Field {
    /// This field's value in a record built by the same mapping, for comparing records.
    pub fn get<'r>(&self, record: &'r Record) -> Option<&'r Json> {
        let (first, rest) = self.path.split_first()?;
        let TargetSeg::Key(key) = first else {
            return None;
        };
        let mut value = record.get(key)?;
        for seg in rest {
            value = match seg {
                TargetSeg::Key(k) => value.get(k)?,
                TargetSeg::Select {
                    attr,
                    value: wanted,
                } => value
                    .as_array()?
                    .iter()
                    .find(|e| e.get(attr).and_then(Json::as_str) == Some(wanted))?,
            };
        }
        Some(value)
    }

    fn describe_source(&self) -> String {
        match &self.value {
            ValueSource::Graph(paths) => {
                let names: Vec<String> =
                    paths.iter().map(|p| format!("`{}`", p.written())).collect();
                names.join(" or ")
            }
            ValueSource::Template(_) => "its template".to_string(),
            ValueSource::Setting(name) => format!("setting `{name}`"),
            ValueSource::Constant(_) => "its value".to_string(),
        }
    }
}

impl GraphPath {
    /// The path as a mapping file would write it.
    pub fn written(&self) -> String {
        match self {
            GraphPath::SyncTime => SYNC_TIME.to_string(),
            GraphPath::User(segs) => {
                let mut out = String::new();
                for seg in segs {
                    match seg {
                        super::path::Seg::Key(k) if out.is_empty() => out.push_str(k),
                        super::path::Seg::Key(k) => {
                            out.push('.');
                            out.push_str(k);
                        }
                        super::path::Seg::Index(i) => out.push_str(&format!("[{i}]")),
                    }
                }
                out
            }
        }
    }
}

/// The data a template renders against: only what it reads, each path present (null when the
/// user lacks it), so that strict mode reports real mistakes, not absent properties.
fn template_data(template: &Template, user: &Json, ctx: &Context<'_>) -> Json {
    let mut data = Map::new();
    for (written, path) in &template.vars {
        let value = match path {
            GraphPath::SyncTime => Json::from(ctx.sync_time),
            user_path => user_path.get(user).cloned().unwrap_or(Json::Null),
        };
        put(&mut data, written, value);
    }
    if !template.settings.is_empty() {
        let settings = template
            .settings
            .iter()
            .filter_map(|name| Some((name.clone(), ctx.settings.get(name)?.clone())))
            .collect();
        data.insert(SETTINGS_KEY.to_string(), Json::Object(settings));
    }
    Json::Object(data)
}

/// Sets `value` at `path` (as the template writes it) unless something is there already.
fn put(data: &mut Map<String, Json>, path: &[String], value: Json) {
    match path {
        [] => {}
        [last] => {
            data.entry(last.clone()).or_insert(value);
        }
        [first, rest @ ..] => {
            let child = data
                .entry(first.clone())
                .or_insert_with(|| Json::Object(Map::new()));
            match child {
                Json::Object(map) => put(map, rest, value),
                // A list read by index (`businessPhones.0`) is set whole by its own path.
                Json::Null => {
                    *child = Json::Object(Map::new());
                    if let Json::Object(map) = child {
                        put(map, rest, value);
                    }
                }
                _ => {}
            }
        }
    }
}

/// Why rendering failed, without handlebars' decoration (the template's internal name).
fn render_reason(error: &handlebars::RenderError) -> String {
    error.reason().to_string()
}

/// Puts `value` at `path` in `record`, building objects and list elements on the way.
fn insert(record: &mut Map<String, Json>, path: &[TargetSeg], value: Json, primary: bool) {
    let [TargetSeg::Key(key), rest @ ..] = path else {
        return;
    };
    match rest {
        [] => {
            record.insert(key.clone(), value);
        }
        [
            TargetSeg::Select {
                attr,
                value: wanted,
            },
            rest @ ..,
        ] => {
            let list = record
                .entry(key.clone())
                .or_insert_with(|| Json::Array(Vec::new()));
            if !list.is_array() {
                *list = Json::Array(Vec::new());
            }
            let Json::Array(items) = list else {
                return;
            };
            let at = items
                .iter()
                .position(|e| e.get(attr).and_then(Json::as_str) == Some(wanted.as_str()))
                .unwrap_or_else(|| {
                    let mut element = Map::new();
                    element.insert(attr.clone(), Json::from(wanted.as_str()));
                    items.push(Json::Object(element));
                    items.len() - 1
                });
            if let Some(Json::Object(element)) = items.get_mut(at) {
                if primary {
                    element.insert("primary".to_string(), Json::Bool(true));
                }
                insert(element, rest, value, false);
            }
        }
        _ => {
            let child = record
                .entry(key.clone())
                .or_insert_with(|| Json::Object(Map::new()));
            if !child.is_object() {
                *child = Json::Object(Map::new());
            }
            if let Json::Object(map) = child {
                insert(map, rest, value, primary);
            }
        }
    }
}
