//! Maps one Graph user to one target record. Pure: no I/O and no clock; the run's start time
//! and the settings come in through [`Context`], so a mapping's output depends on its inputs
//! alone and tests can pin it down exactly.

use std::sync::Arc;

use serde_json::{Map, Value as Json};

use super::convert::{Converter, SETTINGS_KEY, is_missing};
use super::path::{GraphPath, SYNC_TIME, TargetSeg};
use super::{Context, Field, Mapping, Record, Skip, Template, ValueSource};

/// One field as a user went through it ([`Mapping::trace`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FieldTrace {
    /// The target field.
    pub target: String,
    /// Where its value comes from, in words (`userPrincipalName`, a template, a setting).
    pub source: String,
    /// The value read, before any converter; `None` when missing.
    pub read: Option<Json>,
    /// Each converter's name and what it made.
    pub steps: Vec<(&'static str, Option<Json>)>,
    /// The value written (`None`: left out), or why the user is skipped.
    pub result: Result<Option<Json>, String>,
}

impl Mapping {
    /// Maps one Graph user (a JSON object as Graph returns it) to a target record, or says
    /// why this user is skipped (a required field without a value, a value a converter could
    /// not convert). Fields whose value is missing and have no default are left out.
    pub fn map(&self, user: &Json, ctx: &Context<'_>) -> Result<Record, Skip> {
        let roots = self.root_values(user);
        let values = self
            .fields
            .iter()
            .map(|field| self.value(field, user, &roots, ctx, None))
            .collect::<Result<_, _>>()?;
        Ok(Record::new(Arc::clone(&self.shape), values))
    }

    /// Each field as `user` goes through it, step by step (for `userload explain`): the
    /// value read, what each converter made of it, and the value written or why the user
    /// is skipped.
    pub fn trace(&self, user: &Json, ctx: &Context<'_>) -> Vec<FieldTrace> {
        let roots = self.root_values(user);
        self.fields
            .iter()
            .map(|field| {
                let mut trace = FieldTrace {
                    target: field.target.clone(),
                    source: field.describe_source(),
                    read: None,
                    steps: Vec::new(),
                    result: Ok(None),
                };
                trace.result = self
                    .value(field, user, &roots, ctx, Some(&mut trace))
                    .map_err(|skip| skip.reason);
                trace
            })
            .collect()
    }

    /// The user's values of `self.roots`, found in one pass over both sorted lists.
    fn root_values<'u>(&self, user: &'u Json) -> Vec<Option<&'u Json>> {
        let mut values = vec![None; self.roots.len()];
        let Some(object) = user.as_object() else {
            return values;
        };
        if !self.sorted_objects {
            for (slot, root) in values.iter_mut().zip(&self.roots) {
                *slot = object.get(root);
            }
            return values;
        }
        let mut next = 0;
        for (key, value) in object {
            let key = key.as_bytes();
            let mut order = std::cmp::Ordering::Less;
            while let Some(root) = self.roots.get(next) {
                order = compare(root.as_bytes(), key);
                if order.is_lt() {
                    next += 1;
                } else {
                    break;
                }
            }
            if next == self.roots.len() {
                break;
            }
            if order.is_eq() {
                values[next] = Some(value);
                next += 1;
            }
        }
        values
    }

    /// One field's value: read, converted, defaulted; `None` when missing and optional.
    fn value(
        &self,
        field: &Field,
        user: &Json,
        roots: &[Option<&Json>],
        ctx: &Context<'_>,
        mut trace: Option<&mut FieldTrace>,
    ) -> Result<Option<Json>, Skip> {
        let skip = |reason: String| Skip {
            field: field.target.clone(),
            reason,
        };
        let mut value = match &field.value {
            ValueSource::Graph(paths) => {
                paths
                    .iter()
                    .zip(&field.roots)
                    .find_map(|(path, root)| match (path, root) {
                        (GraphPath::SyncTime, _) => Some(Json::from(ctx.sync_time)),
                        (path, Some(root)) => roots
                            .get(*root)
                            .copied()
                            .flatten()
                            .and_then(|r| path.get_below_root(r))
                            .filter(|v| !is_missing(v))
                            .cloned(),
                        (path, None) => path.get(user).filter(|v| !is_missing(v)).cloned(),
                    })
            }
            ValueSource::Constant(v) => Some(v.clone()),
            ValueSource::Setting(name) => ctx.settings.get(name).cloned(),
            ValueSource::Template(template) => {
                let data = template_data(template, user, ctx);
                let rendered = self
                    .templates
                    .render_with_context(&field.target, &handlebars::Context::from(data))
                    .map_err(|e| skip(format!("the template failed: {}", render_reason(&e))))?;
                let rendered = Json::String(rendered);
                within_cap(&rendered, "the template").map_err(skip)?;
                Some(rendered)
            }
        }
        .filter(|v| !is_missing(v));
        if let Some(trace) = trace.as_deref_mut() {
            trace.read = value.clone();
        }
        for converter in &field.convert {
            // A missing value ends the chain, except where `first_non_empty` fills it in.
            let input = match value.take() {
                Some(v) => v,
                None if matches!(converter, Converter::FirstNonEmpty(_)) => Json::Null,
                None => break,
            };
            value = converter
                .apply(input, user)
                .map_err(|e| skip(format!("converter `{}`: {e}", converter.name())))?
                .filter(|v| !is_missing(v));
            if let Some(value) = &value {
                within_cap(value, &format!("converter `{}`", converter.name())).map_err(skip)?;
            }
            if let Some(trace) = trace.as_deref_mut() {
                trace.steps.push((converter.name(), value.clone()));
            }
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

/// The most text one field's value may hold, in bytes (its strings together). Values this
/// large are never a person's data; a chain of converters that multiplies its input (a
/// regex replacement run several times, say) is stopped here, each step at a time, before it
/// can fill memory.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// `Err` with the reason when `value` holds more text than [`MAX_VALUE_BYTES`]; `made_by`
/// names the step that made it.
fn within_cap(value: &Json, made_by: &str) -> Result<(), String> {
    let size = text_bytes(value, MAX_VALUE_BYTES);
    if size > MAX_VALUE_BYTES {
        return Err(format!(
            "{made_by} made a value of more than {MAX_VALUE_BYTES} bytes, the most a field holds"
        ));
    }
    Ok(())
}

/// The bytes of text in `value`, counted until they pass `stop`.
fn text_bytes(value: &Json, stop: usize) -> usize {
    match value {
        Json::String(text) => text.len(),
        Json::Array(items) => sum_until(items.iter().map(|item| text_bytes(item, stop)), stop),
        Json::Object(map) => sum_until(
            map.iter()
                .map(|(key, item)| key.len() + text_bytes(item, stop)),
            stop,
        ),
        _ => 0,
    }
}

/// The sum of `sizes`, stopping as soon as it passes `stop`.
fn sum_until(sizes: impl Iterator<Item = usize>, stop: usize) -> usize {
    let mut sum = 0;
    for size in sizes {
        sum += size;
        if sum > stop {
            break;
        }
    }
    sum
}

impl Field {
    /// This field's value in a JSON object laid out by target paths: a record's
    /// [`Record::to_json`], or a user as the target returns it.
    pub fn get<'r>(&self, record: &'r Map<String, Json>) -> Option<&'r Json> {
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

/// Byte-wise order, as `str` has; property names differ early, so a plain loop beats a
/// call to `memcmp` per comparison.
fn compare(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::diag::SourceText;
    use crate::mapping::{Options, compile_source};

    fn compile(fields: &str) -> Mapping {
        let text = format!("version = 1\ntarget = \"scim\"\nmatch = \"userName\"\n{fields}");
        compile_source(&SourceText::new("m.toml", text), Options::default()).unwrap()
    }

    #[test]
    fn value_filters_share_one_element_and_primary_is_added_once() {
        let m = compile(
            "[fields.userName]\nsource = \"id\"\n[fields.'emails[type eq \"work\"].value']\nsource = \"mail\"\nprimary = true\n[fields.'emails[type eq \"work\"].display']\nsource = \"displayName\"\n[fields.'emails[type eq \"home\"].value']\nsource = \"otherMails[0]\"\n",
        );
        let settings = BTreeMap::new();
        let ctx = Context {
            settings: &settings,
            sync_time: "2024-01-01T00:00:00Z",
        };
        let user =
            json!({"id": "1", "mail": "a@x.com", "displayName": "A", "otherMails": ["a@home.net"]});
        let record = m.map(&user, &ctx).unwrap().to_json();
        assert_eq!(
            record["emails"],
            json!([
                {"type": "work", "value": "a@x.com", "display": "A", "primary": true},
                {"type": "home", "value": "a@home.net"}
            ])
        );
        let field = m.field("emails[type eq \"home\"].value").unwrap();
        assert_eq!(field.get(&record), Some(&json!("a@home.net")));
        assert_eq!(record["schemas"], json!([crate::mapping::path::SCIM_CORE]));
    }

    #[test]
    fn only_an_updated_field_that_reads_the_run_time_makes_records_new_each_run() {
        let user = "[fields.userName]\nsource = \"id\"\n";
        let updated = "[fields.title]\ntemplate = \"at {{connectorSyncTime}}\"\n";
        let created = "[fields.title]\nsource = \"connectorSyncTime\"\non = \"create\"\n";
        assert!(compile(&format!("{user}{updated}")).updates_sync_time());
        assert!(!compile(&format!("{user}{created}")).updates_sync_time());
        assert!(!compile(user).updates_sync_time());
    }

    #[test]
    fn a_converter_chain_that_multiplies_its_input_stops_at_the_cap() {
        let step = format!("{{ regex_replace = [\".\", \"{}\"] }}", "x".repeat(40));
        let chain = vec![step.clone(); 5].join(", ");
        let m = compile(&format!(
            "[fields.userName]\nsource = \"id\"\n[fields.title]\nsource = \"displayName\"\nconvert = [{chain}]\n"
        ));
        let settings = BTreeMap::new();
        let ctx = Context {
            settings: &settings,
            sync_time: "2024-01-01T00:00:00Z",
        };
        let user = json!({"id": "1", "displayName": "A".repeat(100)});
        let skip = m.map(&user, &ctx).unwrap_err();
        assert_eq!(skip.field, "title");
        assert_eq!(
            skip.reason,
            format!(
                "converter `regex_replace` made a value of more than {MAX_VALUE_BYTES} bytes, \
                 the most a field holds"
            )
        );
        // One step of the same chain stays well within the cap.
        let one = compile(&format!(
            "[fields.userName]\nsource = \"id\"\n[fields.title]\nsource = \"displayName\"\nconvert = [{step}]\n"
        ));
        let record = one.map(&user, &ctx).unwrap().to_json();
        assert_eq!(record["title"].as_str().map(str::len), Some(4000));
    }

    #[test]
    fn scim_attribute_names_ignore_case_in_records() {
        let m = compile(
            "[fields.userName]\nsource = \"id\"\n[fields.\"name.givenName\"]\nsource = \"givenName\"\n[fields.\"Name.familyName\"]\nsource = \"surname\"\n[fields.\"URN:ietf:params:scim:schemas:extension:enterprise:2.0:User:department\"]\nsource = \"department\"\n",
        );
        let settings = BTreeMap::new();
        let ctx = Context {
            settings: &settings,
            sync_time: "2024-01-01T00:00:00Z",
        };
        let user = json!({"id": "a", "givenName": "Ann", "surname": "Lee", "department": "IT"});
        let record = m.map(&user, &ctx).unwrap().to_json();
        assert_eq!(
            record["name"],
            json!({"givenName": "Ann", "familyName": "Lee"})
        );
        assert!(record.get("Name").is_none());
        assert_eq!(
            record["schemas"][1],
            "URN:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        );
    }

    #[test]
    fn template_data_holds_every_path_even_under_a_missing_parent() {
        let mut data = Map::new();
        put(&mut data, &["manager".into(), "mail".into()], Json::Null);
        put(&mut data, &["manager".into(), "id".into()], json!("7"));
        put(&mut data, &["mail".into()], json!("a@x.com"));
        put(&mut data, &["mail".into(), "x".into()], json!("ignored"));
        assert_eq!(
            Json::Object(data),
            json!({"manager": {"mail": null, "id": "7"}, "mail": "a@x.com"})
        );
    }

    #[test]
    fn users_that_are_not_objects_are_skipped_not_panicked_on() {
        let m = compile("[fields.userName]\nsource = \"userPrincipalName\"\n");
        let settings = BTreeMap::new();
        let ctx = Context {
            settings: &settings,
            sync_time: "2024-01-01T00:00:00Z",
        };
        for user in [json!(null), json!([1, 2]), json!("x")] {
            assert_eq!(m.map(&user, &ctx).unwrap_err().field, "userName");
        }
    }
}
