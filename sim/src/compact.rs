//! JSON objects held as their compact text instead of `Value` trees.
//!
//! A simulator serving a million users cannot afford a tree of maps and strings per user:
//! the text of an object takes a fraction of the memory, a listing page is written by
//! copying it, and a single member is found by scanning it. The text is parsed into a
//! `Value` only where a request or a test needs the whole object.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

/// A JSON object as the compact text `serde_json` writes for a [`Value`]: no whitespace,
/// members in the order of their names. Cloning shares the text.
#[derive(Clone, PartialEq, Eq)]
pub struct JsonObject(Arc<str>);

impl JsonObject {
    /// The text of an object's members.
    pub fn new(object: &Map<String, Value>) -> JsonObject {
        JsonObject(object_text(object).into())
    }

    /// The text of `value`, when it is an object (anything else is kept as an empty one).
    pub fn from_value(value: &Value) -> JsonObject {
        match value {
            Value::Object(object) => JsonObject::new(object),
            _ => JsonObject("{}".into()),
        }
    }

    /// The text, as it is written in answers.
    pub fn text(&self) -> &str {
        &self.0
    }

    /// The object, parsed.
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or_else(|_| Value::Object(Map::new()))
    }

    /// The object's members, parsed.
    pub fn to_map(&self) -> Map<String, Value> {
        match self.to_value() {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// The members' names and the text of their values, in order.
    pub fn members(&self) -> Members<'_> {
        members(&self.0)
    }

    /// The text of a member's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        member(&self.0, name)
    }

    /// A member's value when it is a string, decoded.
    pub fn get_str(&self, name: &str) -> Option<Cow<'_, str>> {
        self.get(name).and_then(string)
    }
}

impl fmt::Debug for JsonObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The compact text of an object's members.
fn object_text(object: &Map<String, Value>) -> String {
    // A map serializes without fail: its keys are strings.
    serde_json::to_string(object).unwrap_or_else(|_| "{}".to_owned())
}

/// The text of member `name`'s value in the text of an object.
pub fn member<'t>(object: &'t str, name: &str) -> Option<&'t str> {
    members(object).find(|(key, _)| key == name).map(|(_, v)| v)
}

/// A string's value from its JSON text (`None` for any other kind of value).
pub fn string(text: &str) -> Option<Cow<'_, str>> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains(['\\', '"']) {
        serde_json::from_str::<String>(text).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// The members of an object's text: each name (decoded) and the text of its value.
pub fn members(object: &str) -> Members<'_> {
    let rest = object.trim_start().strip_prefix('{').unwrap_or_default();
    Members { rest }
}

/// An iterator over an object's members; see [`members`].
pub struct Members<'t> {
    rest: &'t str,
}

impl<'t> Iterator for Members<'t> {
    type Item = (Cow<'t, str>, &'t str);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest.trim_start();
        let rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        if !rest.starts_with('"') {
            // `}` or text that is not an object's: the end.
            self.rest = "";
            return None;
        }
        let key_end = string_end(rest)?;
        let key = string(&rest[..key_end])?;
        let after = rest[key_end..].trim_start().strip_prefix(':')?.trim_start();
        let value_end = value_end(after);
        let value = after[..value_end].trim_end();
        self.rest = &after[value_end..];
        Some((key, value))
    }
}

/// Where the string that `text` starts with ends (just past its closing quote).
fn string_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
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

/// Where the value that `text` starts with ends: at the first `,`, `}` or `]` outside any
/// string, array or object, or at the end of the text.
fn value_end(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => match string_end(&text[i..]) {
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
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn members_are_read_from_the_text() {
        let value = json!({
            "b": [1, {"x": "]}"}],
            "a": "quote \" and \\ backslash",
            "c": {"d": null, "e": [true, false]},
            "f\"g": 2.5,
            "h": "",
        });
        let object = JsonObject::from_value(&value);
        let read: Vec<(String, Value)> = object
            .members()
            .map(|(k, v)| (k.into_owned(), serde_json::from_str(v).unwrap()))
            .collect();
        let expected: Vec<(String, Value)> = value
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(read, expected);
        assert_eq!(object.to_value(), value);
        assert_eq!(object.get_str("a").unwrap(), "quote \" and \\ backslash");
        assert_eq!(object.get_str("h").unwrap(), "");
        assert_eq!(object.get("f\"g"), Some("2.5"));
        assert_eq!(member(object.get("c").unwrap(), "d"), Some("null"));
        assert_eq!(object.get("z"), None);
        assert_eq!(object.get_str("b"), None);
    }

    #[test]
    fn text_that_is_not_an_object_has_no_members() {
        for text in ["", "[1]", "{", "{\"a\"", "{\"a\":", "3", "{}"] {
            assert!(
                members(text).all(|(_, v)| v.is_empty() || text.contains(v)),
                "{text}"
            );
        }
        assert_eq!(members("{}").count(), 0);
        assert_eq!(members("{\"a\":1 , \"b\" : [ 2 ] }").count(), 2);
        assert_eq!(member("{\"a\":1 , \"b\" : [ 2 ] }", "b"), Some("[ 2 ]"));
        assert_eq!(JsonObject::from_value(&json!([1])).text(), "{}");
    }
}
