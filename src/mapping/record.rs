//! A mapped user. A record is flat — one value per mapping field, in the mapping's field
//! order — so that mapping a user allocates only its values, and the planner can compare
//! two records field by field. The nested JSON a target takes (`name.givenName`,
//! `emails[type eq "work"].value`, schema URNs) is built only for the users that are written.

use std::fmt;
use std::ops::Index;
use std::sync::Arc;

use serde_json::{Map, Value as Json};

use super::path::{SCIM_CORE, TargetSeg};

/// How the records of one mapping are laid out: shared by all of them.
#[derive(Debug, PartialEq)]
pub(super) struct Shape {
    /// Each field's target path as written, in field order.
    pub(super) targets: Vec<String>,
    /// Each field's parsed target path.
    pub(super) paths: Vec<Vec<TargetSeg>>,
    /// Whether each field marks its multi-valued element primary.
    pub(super) primary: Vec<bool>,
    /// The fields grouped by the top-level key they write under, in order of first
    /// appearance: a nested object (`name`, `emails`) is built apart and put in once.
    pub(super) groups: Vec<(String, Vec<usize>)>,
    /// Whether records carry SCIM `schemas` (added unless a field writes it).
    pub(super) scim: bool,
}

impl Shape {
    pub(super) fn new(
        targets: Vec<String>,
        paths: Vec<Vec<TargetSeg>>,
        primary: Vec<bool>,
        scim: bool,
    ) -> Shape {
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, path) in paths.iter().enumerate() {
            let Some(TargetSeg::Key(key)) = path.first() else {
                continue;
            };
            // SCIM attribute names ignore case: `name.givenName` and `Name.familyName` fill
            // one `name` object, spelt as first written.
            let same = |k: &String| {
                if scim {
                    k.eq_ignore_ascii_case(key)
                } else {
                    k == key
                }
            };
            match groups.iter_mut().find(|(k, _)| same(k)) {
                Some((_, members)) => members.push(i),
                None => groups.push((key.clone(), vec![i])),
            }
        }
        let scim = scim
            && !groups
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("schemas"));
        Shape {
            targets,
            paths,
            primary,
            groups,
            scim,
        }
    }
}

/// One user as a mapping made it: a value, or none, for each field of the mapping.
#[derive(Clone, PartialEq)]
pub struct Record {
    shape: Arc<Shape>,
    values: Vec<Option<Json>>,
}

impl Record {
    pub(super) fn new(shape: Arc<Shape>, values: Vec<Option<Json>>) -> Record {
        Record { shape, values }
    }

    /// The value of the field at `index` in [`Mapping::fields`](super::Mapping::fields).
    pub fn value(&self, index: usize) -> Option<&Json> {
        self.values.get(index)?.as_ref()
    }

    /// Sets the value of the field at `index` (nothing happens past the last field).
    pub fn set(&mut self, index: usize, value: Option<Json>) {
        if let Some(slot) = self.values.get_mut(index) {
            *slot = value;
        }
    }

    /// Every field's value, in field order.
    pub fn values(&self) -> &[Option<Json>] {
        &self.values
    }

    /// The target path of field `index`, as the mapping writes it.
    pub fn field_name(&self, index: usize) -> &str {
        self.shape.targets.get(index).map_or("", String::as_str)
    }

    /// The value of the field whose target path is `target` (as the mapping writes it).
    pub fn get(&self, target: &str) -> Option<&Json> {
        let index = self.shape.targets.iter().position(|t| t == target)?;
        self.value(index)
    }

    /// The fields that have a value, in field order: `(target path, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Json)> {
        self.shape
            .targets
            .iter()
            .zip(&self.values)
            .filter_map(|(t, v)| Some((t.as_str(), v.as_ref()?)))
    }

    /// The record as the target takes it: a JSON object built from the target paths, with
    /// SCIM `schemas` listing the core schema and every extension written.
    pub fn to_json(&self) -> Map<String, Json> {
        let shape = &*self.shape;
        let mut object = Map::new();
        for (key, members) in &shape.groups {
            let mut nested: Option<Json> = None;
            for &i in members {
                let (Some(Some(value)), Some(path)) = (self.values.get(i), shape.paths.get(i))
                else {
                    continue;
                };
                match path.get(1..) {
                    Some([]) | None => {
                        object.insert(key.clone(), value.clone());
                    }
                    Some(rest) => {
                        let slot = nested.get_or_insert_with(|| match rest.first() {
                            Some(TargetSeg::Select { .. }) => Json::Array(Vec::new()),
                            _ => Json::Object(Map::new()),
                        });
                        let primary = shape.primary.get(i).copied().unwrap_or(false);
                        insert_below(slot, rest, value.clone(), primary);
                    }
                }
            }
            if let Some(nested) = nested {
                object.insert(key.clone(), nested);
            }
        }
        if shape.scim {
            let mut schemas = vec![Json::from(SCIM_CORE)];
            schemas.extend(
                shape
                    .groups
                    .iter()
                    .filter(|(k, _)| is_urn(k) && object.contains_key(k))
                    .map(|(k, _)| Json::from(k.as_str())),
            );
            object.insert("schemas".to_string(), Json::Array(schemas));
        }
        object
    }
}

/// A record packed into one piece of text (its values as a JSON array): a fifth of the
/// memory, for records kept in bulk and seldom read (the target's users during a run).
#[derive(Debug, Clone)]
pub struct Packed {
    shape: Arc<Shape>,
    text: Box<str>,
}

impl Record {
    /// The record packed; [`Packed::unpack`] gives it back (a `null` value as no value).
    pub fn pack(&self) -> Packed {
        Packed {
            shape: Arc::clone(&self.shape),
            text: serde_json::to_string(&self.values)
                .unwrap_or_default()
                .into_boxed_str(),
        }
    }

    /// The record packed, and the JSON text of the list of the values of the fields `keep`
    /// picks, in field order, handed to `digest` piece by piece: the same text as
    /// `serde_json::to_string` of that list, from the one serialisation of the values.
    pub fn pack_and_digest(
        &self,
        keep: impl Fn(usize) -> bool,
        mut digest: impl FnMut(&[u8]),
    ) -> Packed {
        let mut text = Vec::with_capacity(64 * self.values.len());
        let mut ends = Vec::with_capacity(self.values.len());
        text.push(b'[');
        for (i, value) in self.values.iter().enumerate() {
            if i > 0 {
                text.push(b',');
            }
            let start = text.len();
            // Writing a JSON value to memory cannot fail.
            let _ = serde_json::to_writer(&mut text, value);
            ends.push((start, text.len()));
        }
        text.push(b']');
        digest(b"[");
        let mut first = true;
        for (i, &(start, end)) in ends.iter().enumerate() {
            if keep(i) {
                if !first {
                    digest(b",");
                }
                first = false;
                digest(&text[start..end]);
            }
        }
        digest(b"]");
        Packed {
            shape: Arc::clone(&self.shape),
            // serde_json writes UTF-8.
            text: String::from_utf8(text).unwrap_or_default().into_boxed_str(),
        }
    }
}

impl Packed {
    /// No record: the values were not read (an empty text, which no packed record has).
    pub(super) fn unread(shape: Arc<Shape>) -> Packed {
        Packed {
            shape,
            text: Box::default(),
        }
    }

    /// Lets go of the values, as if they were never read ([`Packed::is_unread`]).
    pub fn forget(&mut self) {
        self.text = Box::default();
    }

    /// Whether the values were not read ([`Packed::unread`]): it unpacks as a record with
    /// no value in any field.
    pub fn is_unread(&self) -> bool {
        self.text.is_empty()
    }

    /// A record packed as `text`: a JSON list of the values in field order.
    pub(super) fn from_text(shape: Arc<Shape>, text: Box<str>) -> Packed {
        Packed { shape, text }
    }

    /// The packed text (its values as a JSON array), as the state file keeps a record;
    /// [`Mapping::unpack`](super::Mapping::unpack) reads it back.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text of each value, in field order, as packed (`null` for no value): the
    /// top-level elements of the packed list, found without parsing them. `None` if the
    /// text is not a list.
    pub fn elements(&self) -> Option<Vec<&str>> {
        let inner = self.text.strip_prefix('[')?.strip_suffix(']')?;
        let mut elements = Vec::with_capacity(self.shape.targets.len());
        if inner.is_empty() {
            return Some(elements);
        }
        let bytes = inner.as_bytes();
        let (mut depth, mut start, mut i) = (0usize, 0, 0);
        while i < bytes.len() {
            match bytes[i] {
                // A string: on to its closing quote, over escaped characters.
                b'"' => loop {
                    i += 1 + memchr::memchr2(b'"', b'\\', bytes.get(i + 1..)?)?;
                    if bytes[i] == b'"' {
                        break;
                    }
                    i += 1;
                },
                b'[' | b'{' => depth += 1,
                b']' | b'}' => depth = depth.checked_sub(1)?,
                // Every delimiter is ASCII: the slices fall on character boundaries.
                b',' if depth == 0 => {
                    elements.push(&inner[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
            i += 1;
        }
        elements.push(&inner[start..]);
        Some(elements)
    }

    /// The record again.
    pub fn unpack(&self) -> Record {
        let mut values: Vec<Option<Json>> = serde_json::from_str(&self.text).unwrap_or_default();
        values.resize(self.shape.targets.len(), None);
        Record::new(Arc::clone(&self.shape), values)
    }
}

/// A missing field reads as `null`, as in a JSON object.
impl Index<&str> for Record {
    type Output = Json;

    fn index(&self, target: &str) -> &Json {
        static NULL: Json = Json::Null;
        self.get(target).unwrap_or(&NULL)
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Puts `value` at `path` below `slot` (an object, or a list for a value filter), building
/// objects and list elements on the way.
fn insert_below(slot: &mut Json, path: &[TargetSeg], value: Json, primary: bool) {
    match (slot, path) {
        (
            Json::Array(items),
            [
                TargetSeg::Select {
                    attr,
                    value: wanted,
                },
                rest @ ..,
            ],
        ) => {
            let at = items
                .iter()
                .position(|e| e.get(attr).and_then(Json::as_str) == Some(wanted.as_str()))
                .unwrap_or_else(|| {
                    let mut element = Map::new();
                    element.insert(attr.clone(), Json::from(wanted.as_str()));
                    items.push(Json::Object(element));
                    items.len() - 1
                });
            if let Some(element) = items.get_mut(at) {
                if primary && let Json::Object(map) = element {
                    map.insert("primary".to_string(), Json::Bool(true));
                }
                insert_below(element, rest, value, false);
            }
        }
        (Json::Object(map), [TargetSeg::Key(key)]) => {
            map.insert(key.clone(), value);
        }
        (Json::Object(map), [TargetSeg::Key(key), rest @ ..]) => {
            let wants_list = matches!(rest.first(), Some(TargetSeg::Select { .. }));
            let fits = map.get(key).is_some_and(|v| {
                if wants_list {
                    v.is_array()
                } else {
                    v.is_object()
                }
            });
            if !fits {
                let empty = if wants_list {
                    Json::Array(Vec::new())
                } else {
                    Json::Object(Map::new())
                };
                map.insert(key.clone(), empty);
            }
            if let Some(child) = map.get_mut(key) {
                insert_below(child, rest, value, primary);
            }
        }
        _ => {}
    }
}

/// Whether a record key is a schema URN (`urn:`, in any case).
fn is_urn(key: &str) -> bool {
    key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
}
