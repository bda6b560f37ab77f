//! Reading values out of JSON answers: dotted paths, text of strings and numbers, and
//! undoing the HTML escapes some APIs put into their text.
//!
//! Kept apart from the target so that the answer shapes of every API description are read
//! by the same few rules.

use serde_json::{Map, Value as Json};

/// The value at a dotted path (`rows`, `data.items`, `links.next`, `rows.0`); the empty
/// path (or `.`) is the value itself.
pub(crate) fn json_at<'a>(value: &'a Json, path: &str) -> Option<&'a Json> {
    if path.is_empty() || path == "." {
        return Some(value);
    }
    path.split('.').try_fold(value, |v, key| match v {
        Json::Object(map) => map.get(key),
        Json::Array(items) => items.get(key.parse::<usize>().ok()?),
        _ => None,
    })
}

/// [`json_at`] on an object.
pub(super) fn json_at_map<'a>(map: &'a Map<String, Json>, path: &str) -> Option<&'a Json> {
    match path.split_once('.') {
        None => map.get(path),
        Some((first, rest)) => json_at(map.get(first)?, rest),
    }
}

/// A path as shown in messages: `.` for the answer itself.
pub(super) fn display_path(path: &str) -> &str {
    if path.is_empty() { "." } else { path }
}

/// A value as text when it is a string or a number.
pub(crate) fn text_of(value: &Json) -> Option<String> {
    match value {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Whether a listed value means "nothing": `null` or an empty string.
pub(super) fn is_empty(value: &Json) -> bool {
    match value {
        Json::Null => true,
        Json::String(s) => s.is_empty(),
        _ => false,
    }
}

/// Undoes HTML escaping in every string of `value`.
pub(super) fn unescape_all(value: &mut Json) {
    match value {
        Json::String(s) if s.contains('&') => *s = unescape_html(s),
        Json::Array(items) => items.iter_mut().for_each(unescape_all),
        Json::Object(map) => map.values_mut().for_each(unescape_all),
        _ => {}
    }
}

/// `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;` and numeric references decoded; anything
/// else is left as it is.
pub(super) fn unescape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest[1..]
            .char_indices()
            .take(12)
            .find(|(_, c)| *c == ';')
            .and_then(|(end, _)| {
                let entity = &rest[1..1 + end];
                let c = match entity {
                    "amp" => '&',
                    "lt" => '<',
                    "gt" => '>',
                    "quot" => '"',
                    "apos" => '\'',
                    _ => {
                        let number = entity.strip_prefix('#')?;
                        let code = match number.strip_prefix(['x', 'X']) {
                            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                            None => number.parse().ok()?,
                        };
                        char::from_u32(code)?
                    }
                };
                Some((c, end + 2))
            });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn html_escapes_are_undone_once() {
        assert_eq!(unescape_html("O&#039;Brien &amp; Sons"), "O'Brien & Sons");
        assert_eq!(
            unescape_html("&lt;b&gt; &quot;x&quot; &#x41;"),
            "<b> \"x\" A"
        );
        assert_eq!(
            unescape_html("&amp;amp; & &unknown; &#99999999;"),
            "&amp; & &unknown; &#99999999;"
        );
        assert_eq!(unescape_html("trailing &"), "trailing &");
        assert_eq!(unescape_html("é&amp;ü"), "é&ü");
    }

    proptest::proptest! {
        #[test]
        fn unescaping_takes_any_text(text in "\\PC*", tail in "(&(#x?[0-9a-fA-F]{0,9}|[a-z]{0,6});?)*") {
            let text = format!("{text}{tail}");
            let out = unescape_html(&text);
            proptest::prop_assert!(out.len() <= text.len() + 4 * text.matches('&').count());
            if !text.contains('&') {
                proptest::prop_assert_eq!(out, text);
            }
        }
    }

    #[test]
    fn paths_reach_into_objects_and_lists() {
        let v = json!({"a": {"b": [1, {"c": true}]}});
        assert_eq!(json_at(&v, "a.b.1.c"), Some(&json!(true)));
        assert_eq!(json_at(&v, ""), Some(&v));
        assert_eq!(json_at(&v, "a.x"), None);
        assert_eq!(json_at(&v, "a.b.z"), None);
    }
}
