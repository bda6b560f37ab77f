//! JSON objects held compactly instead of as `Value` trees.
//!
//! A simulator serving a million users cannot afford a tree of maps and strings per user.
//! An object is kept as its compact JSON text with each member name replaced by a number
//! (the same few dozen names recur in every user, and spelt out they take half the text):
//! a listing page is written by copying that text and spelling the names out again, and
//! one member is found by scanning it. The whole object is parsed into a `Value` only where
//! a request or a test needs it.
//!
//! The stored bytes are the text `serde_json` writes (no whitespace, members in the order
//! of their names) with each `"name"` of a member replaced by `KEY` and the name's number
//! in two bytes. JSON text holds no raw control characters, so the marker is never anything
//! else; a name is kept spelt out once every number is taken.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value};

/// The byte that stands for a member name; the name's number follows in two bytes.
const KEY: u8 = 0x01;

/// How many names can have a number.
const NAMES: usize = 1 << 16;

/// A member name: as given, and as written in JSON (quoted, escaped).
struct Name {
    text: &'static str,
    json: &'static str,
}

/// The names by number. A name is never forgotten once numbered (the set of names a
/// simulator sees is small), so the names live as long as the process.
static BY_NUMBER: [OnceLock<Name>; NAMES] = [const { OnceLock::new() }; NAMES];

/// The numbers by name.
fn numbers() -> &'static Mutex<HashMap<&'static str, u16>> {
    static NUMBERS: OnceLock<Mutex<HashMap<&'static str, u16>>> = OnceLock::new();
    NUMBERS.get_or_init(Mutex::default)
}

/// The number of a name, given one if it has none; `None` once every number is taken.
fn number_of(name: &str) -> Option<u16> {
    let mut numbers = numbers().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&n) = numbers.get(name) {
        return Some(n);
    }
    let n = u16::try_from(numbers.len()).ok()?;
    let text: &'static str = Box::leak(name.into());
    let json: &'static str = Box::leak(quoted(name).into_boxed_str());
    BY_NUMBER[usize::from(n)].get_or_init(|| Name { text, json });
    numbers.insert(text, n);
    Some(n)
}

/// The name with this number.
fn name(number: u16) -> Option<&'static Name> {
    BY_NUMBER[usize::from(number)].get()
}

/// A string as JSON text.
fn quoted(text: &str) -> String {
    // A string always serializes.
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// A JSON object, held compactly (see the module's comment). Cloning shares it.
#[derive(Clone, PartialEq, Eq)]
pub struct JsonObject(Arc<[u8]>);

impl JsonObject {
    /// An object's members, held compactly.
    pub fn new(object: &Map<String, Value>) -> JsonObject {
        let mut out = Vec::with_capacity(256);
        encode_object(object, &mut out);
        JsonObject(out.into())
    }

    /// `value`, when it is an object (anything else is kept as an empty one).
    pub fn from_value(value: &Value) -> JsonObject {
        match value {
            Value::Object(object) => JsonObject::new(object),
            _ => JsonObject::new(&Map::new()),
        }
    }

    /// The object as a member's value is: to read members from or write out.
    pub fn raw(&self) -> Raw<'_> {
        Raw(&self.0)
    }

    /// The object's JSON text.
    pub fn to_json(&self) -> String {
        self.raw().to_json()
    }

    /// Appends the object's JSON text to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        self.raw().write_json(out);
    }

    /// The object, parsed.
    pub fn to_value(&self) -> Value {
        self.raw().to_value()
    }

    /// The object's members, parsed.
    pub fn to_map(&self) -> Map<String, Value> {
        match self.to_value() {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// The members' names and values, in the order of their names.
    pub fn members(&self) -> Members<'_> {
        self.raw().members()
    }

    /// A member's value.
    pub fn get(&self, name: &str) -> Option<Raw<'_>> {
        self.raw().get(name)
    }

    /// A member's value when it is a string.
    pub fn get_str(&self, name: &str) -> Option<Cow<'_, str>> {
        self.get(name).and_then(|v| v.as_str())
    }
}

impl fmt::Debug for JsonObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

/// A JSON value inside a [`JsonObject`], still held compactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raw<'t>(&'t [u8]);

impl<'t> Raw<'t> {
    /// `null`.
    pub const NULL: Raw<'static> = Raw(b"null");

    /// The members of an object (none for any other value).
    pub fn members(self) -> Members<'t> {
        Members {
            rest: self.0.strip_prefix(b"{").unwrap_or_default(),
        }
    }

    /// A member's value, when this is an object.
    pub fn get(self, name: &str) -> Option<Raw<'t>> {
        self.members().find(|(key, _)| key == name).map(|(_, v)| v)
    }

    /// The value when it is a string (`None` for any other kind of value).
    pub fn as_str(self) -> Option<Cow<'t, str>> {
        let inner = self.0.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
        if inner.contains(&b'\\') {
            serde_json::from_slice::<String>(self.0)
                .ok()
                .map(Cow::Owned)
        } else {
            std::str::from_utf8(inner).ok().map(Cow::Borrowed)
        }
    }

    /// Appends the value's JSON text to `out`: the stored bytes with the names spelt out.
    pub fn write_json(self, out: &mut Vec<u8>) {
        let mut rest = self.0;
        while let Some(at) = memchr::memchr(KEY, rest) {
            out.extend_from_slice(&rest[..at]);
            let name = rest
                .get(at + 1..at + 3)
                .and_then(|n| name(u16::from_le_bytes([n[0], n[1]])));
            out.extend_from_slice(name.map_or("\"\"", |n| n.json).as_bytes());
            rest = rest.get(at + 3..).unwrap_or_default();
        }
        out.extend_from_slice(rest);
    }

    /// The value's JSON text.
    pub fn to_json(self) -> String {
        let mut out = Vec::with_capacity(self.0.len() * 2);
        self.write_json(&mut out);
        // The stored bytes are JSON text but for the names, which are written as text.
        String::from_utf8(out).unwrap_or_default()
    }

    /// The value, parsed.
    pub fn to_value(self) -> Value {
        let mut out = Vec::with_capacity(self.0.len() * 2);
        self.write_json(&mut out);
        serde_json::from_slice(&out).unwrap_or(Value::Null)
    }
}

/// An iterator over an object's members: each name and its value.
pub struct Members<'t> {
    rest: &'t [u8],
}

impl<'t> Iterator for Members<'t> {
    type Item = (Cow<'t, str>, Raw<'t>);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest.strip_prefix(b",").unwrap_or(self.rest);
        let (key, after): (Cow<'t, str>, &'t [u8]) = match rest.first() {
            Some(&KEY) => {
                let n = rest.get(1..3)?;
                let name = name(u16::from_le_bytes([n[0], n[1]]))?;
                (Cow::Borrowed(name.text), &rest[3..])
            }
            Some(b'"') => {
                let end = string_end(rest)?;
                let key = Raw(&rest[..end]).as_str()?;
                (key, &rest[end..])
            }
            // `}`, or bytes that are not an object's: the end.
            _ => {
                self.rest = &[];
                return None;
            }
        };
        let after = after.strip_prefix(b":")?;
        let end = value_end(after);
        self.rest = &after[end..];
        Some((key, Raw(&after[..end])))
    }
}

/// Writes an object's members compactly.
fn encode_object(object: &Map<String, Value>, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (key, value)) in object.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match number_of(key) {
            Some(n) => {
                out.push(KEY);
                out.extend_from_slice(&n.to_le_bytes());
            }
            None => out.extend_from_slice(quoted(key).as_bytes()),
        }
        out.push(b':');
        encode(value, out);
    }
    out.push(b'}');
}

/// Writes a value compactly: objects with numbered names, the rest as JSON text.
fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(object) => encode_object(object, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                encode(item, out);
            }
            out.push(b']');
        }
        // A scalar always serializes.
        scalar => {
            let _ = serde_json::to_writer(&mut *out, scalar);
        }
    }
}

/// Where the string that `bytes` starts with ends (just past its closing quote).
fn string_end(bytes: &[u8]) -> Option<usize> {
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Where the value that `bytes` starts with ends: at the first `,`, `}` or `]` outside any
/// string, array or object, or at the end.
fn value_end(bytes: &[u8]) -> usize {
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            // A numbered name: its two bytes may be anything.
            KEY => i += 2,
            b'"' => match string_end(&bytes[i..]) {
                Some(end) => {
                    i += end;
                    continue;
                }
                None => return bytes.len(),
            },
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth == 0 => return i,
            b'}' | b']' => depth -= 1,
            b',' if depth == 0 => return i,
            _ => {}
        }
        i += 1;
    }
    bytes.len().min(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn members_are_read_from_the_compact_form() {
        let value = json!({
            "b": [1, {"x": "]}", "y": {"z": [{"w": null}]}}],
            "a": "quote \" and \\ backslash, \u{1} and ü",
            "c": {"d": null, "e": [true, false]},
            "f\"g": 2.5,
            "h": "",
        });
        let object = JsonObject::from_value(&value);
        let read: Vec<(String, Value)> = object
            .members()
            .map(|(k, v)| (k.into_owned(), v.to_value()))
            .collect();
        let expected: Vec<(String, Value)> = value
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(read, expected);
        assert_eq!(object.to_value(), value);
        assert_eq!(object.to_json(), value.to_string());
        assert_eq!(
            object.get_str("a").unwrap(),
            "quote \" and \\ backslash, \u{1} and ü"
        );
        assert_eq!(object.get_str("h").unwrap(), "");
        assert_eq!(object.get("f\"g").unwrap().to_json(), "2.5");
        let c = object.get("c").unwrap();
        assert_eq!(c.get("d").unwrap().to_json(), "null");
        assert_eq!(c.to_json(), r#"{"d":null,"e":[true,false]}"#);
        assert_eq!(object.get("z"), None);
        assert_eq!(object.get_str("b"), None);
        assert!(
            object.raw().0.len() < value.to_string().len(),
            "the names are numbered"
        );
    }

    #[test]
    fn anything_but_an_object_has_no_members() {
        assert_eq!(JsonObject::from_value(&json!([1])).to_json(), "{}");
        assert_eq!(JsonObject::from_value(&json!({})).members().count(), 0);
        for bytes in [
            &b""[..],
            b"[1]",
            b"{",
            b"{\"a\"",
            b"3",
            b"{\x01",
            b"{\x01\xff",
        ] {
            assert_eq!(Raw(bytes).members().count(), 0, "{bytes:?}");
        }
        // A member cut short reads as far as it goes.
        assert_eq!(Raw(b"{\"a\":[1,").get("a"), Some(Raw(b"[1,")));
    }
}
