//! JSON text read in place, in one pass over its bytes, without building values: the
//! members of an object and the elements of a list, each as its text. Every function takes
//! text from a document serde_json has already parsed (a page kept as raw values, or a
//! slice of one), so it is valid JSON: what is not is read as far as it can be and no
//! further. A large run reads every user so: the pager finds each Graph user's id, and a
//! target's listing the few members it compares.

use std::borrow::Cow;
use std::ops::Range;

/// The members of the object `text` holds, each as the text of its name (with its quotes)
/// and of its value; `None` when `text` holds another kind of value.
pub fn members(text: &str) -> Option<Members<'_>> {
    let bytes = text.as_bytes();
    let at = skip_space(bytes, 0);
    (bytes.get(at) == Some(&b'{')).then_some(Members { text, at: at + 1 })
}

/// The members of an object ([`members`]).
#[derive(Debug, Clone)]
pub struct Members<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Iterator for Members<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        let bytes = self.text.as_bytes();
        loop {
            self.at = skip_space(bytes, self.at);
            match bytes.get(self.at)? {
                b',' => self.at += 1,
                b'"' => break,
                _ => return None,
            }
        }
        let name_start = self.at;
        let name_end = string_end(bytes, name_start)?;
        let colon = skip_space(bytes, name_end);
        if bytes.get(colon) != Some(&b':') {
            return None;
        }
        let value_start = skip_space(bytes, colon + 1);
        let value_end = value_end(bytes, value_start)?;
        self.at = value_end;
        Some((
            self.text.get(name_start..name_end)?,
            self.text.get(value_start..value_end)?,
        ))
    }
}

/// The elements of the list `text` holds, each as its text; `None` when `text` holds
/// another kind of value.
pub fn elements(text: &str) -> Option<Vec<&str>> {
    let bytes = text.as_bytes();
    let mut at = skip_space(bytes, 0);
    if bytes.get(at) != Some(&b'[') {
        return None;
    }
    at += 1;
    let mut all = Vec::new();
    loop {
        at = skip_space(bytes, at);
        match bytes.get(at) {
            Some(b',') => at += 1,
            Some(b']') | None => return Some(all),
            Some(_) => {
                let end = value_end(bytes, at)?;
                all.push(text.get(at..end)?);
                at = end;
            }
        }
    }
}

/// Where in `text` the value of its one `id` member is written (a string, with its
/// quotes; [`string`] reads it). `text` is a JSON object as serde_json has already checked
/// it to be (a page's user, kept as text). `None` when it has no `id`, when its `id` is not
/// a string, or when it has two members named `id` (which serde would refuse too). A member
/// name written with escapes is decoded before it is compared, as a parser decodes it.
pub fn id_at(text: &str) -> Option<Range<usize>> {
    let mut found = None;
    for (name, value) in members(text)? {
        let is_id = match name.contains('\\') {
            false => name == "\"id\"",
            true => serde_json::from_str::<String>(name).ok()? == "id",
        };
        if is_id {
            if found.is_some() || !value.starts_with('"') {
                return None;
            }
            // Both are slices of `text`.
            let start = value.as_ptr() as usize - text.as_ptr() as usize;
            found = Some(start..start + value.len());
        }
    }
    found
}

/// The string a JSON string's text holds, borrowed where it has no escapes.
pub fn string(text: &str) -> Option<Cow<'_, str>> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(text).ok().map(Cow::Owned)
}

fn skip_space(bytes: &[u8], mut at: usize) -> usize {
    while matches!(bytes.get(at), Some(b' ' | b'\n' | b'\r' | b'\t')) {
        at += 1;
    }
    at
}

/// Where the string opened by the quote at `at` ends (just past its closing quote): at the
/// first quote after it that no backslash escapes (an odd run of backslashes before it).
fn string_end(bytes: &[u8], at: usize) -> Option<usize> {
    let mut at = at + 1;
    loop {
        at += memchr::memchr(b'"', bytes.get(at..)?)?;
        let escapes = bytes[..at]
            .iter()
            .rev()
            .take_while(|b| **b == b'\\')
            .count();
        at += 1;
        if escapes % 2 == 0 {
            return Some(at);
        }
    }
}

/// Where the value that starts at `at` ends (just past it).
fn value_end(bytes: &[u8], at: usize) -> Option<usize> {
    match bytes.get(at)? {
        b'"' => string_end(bytes, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut at = at;
            loop {
                match bytes.get(at)? {
                    b'"' => {
                        at = string_end(bytes, at)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(at + 1);
                        }
                    }
                    _ => {}
                }
                at += 1;
            }
        }
        _ => {
            let rest = bytes.get(at..)?;
            let len = rest
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'))
                .unwrap_or(rest.len());
            Some(at + len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_id(text: &str) -> Option<Cow<'_, str>> {
        string(&text[id_at(text)?])
    }

    #[test]
    fn the_id_is_found_wherever_it_is_and_whatever_comes_before_it() {
        let users = [
            r#"{"id":"u1","displayName":"Ann"}"#,
            r#"{"displayName":"Ann","id":"u1"}"#,
            r#" { "businessPhones" : [ "+1 \"2\"", {"id":"x"} ], "n": -1.5e3, "ok": true,
                "manager": {"id": "m", "x": [[], {}]}, "s": "a}\\", "id" : "u1" } "#,
            r#"{"\u0069d":"u1"}"#,
        ];
        for text in users {
            assert_eq!(user_id(text).as_deref(), Some("u1"), "{text}");
        }
        assert_eq!(user_id(r#"{"id":"a\"b"}"#).as_deref(), Some("a\"b"));
    }

    #[test]
    fn no_id_a_second_id_or_an_id_that_is_not_a_string_gives_none() {
        for text in [
            r#"{}"#,
            r#"{"displayName":"Ann","manager":{"id":"m"}}"#,
            r#"{"id":"u1","id":"u2"}"#,
            r#"{"id":"u1","\u0069d":"u2"}"#,
            r#"{"id":7}"#,
            r#"{"id":null}"#,
            r#"["id","u1"]"#,
            r#""id""#,
        ] {
            assert_eq!(user_id(text), None, "{text}");
        }
    }

    /// Any JSON value, members named from a few names (`id` among them) so that objects
    /// with one, two or no ids, nested or not, all come up.
    fn json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(serde_json::Value::from),
            "[a-z\"\\\\{}\\[\\],: \u{e9}\u{1f600}]{0,8}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::vec(("(id|ID|name|x\"y|i)", inner), 0..5)
                    .prop_map(|members| serde_json::Value::Object(members.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        #[test]
        fn it_agrees_with_a_parser_on_any_object(
            members in proptest::collection::vec(("(id|ID|name|i)", json()), 0..6),
            pretty: bool,
        ) {
            let value = serde_json::Value::Object(members.into_iter().collect());
            #[derive(serde::Deserialize)]
            struct Id {
                id: String,
            }
            let text = match pretty {
                true => serde_json::to_string_pretty(&value).unwrap(),
                false => value.to_string(),
            };
            let parsed = serde_json::from_str::<Id>(&text).map(|u| u.id).ok();
            proptest::prop_assert_eq!(user_id(&text).map(Cow::into_owned), parsed);
        }
    }
}
