//! Literal values: strings, numbers, booleans, null, GUIDs and date-times, and the
//! shapes that tell a GUID or a date-time written without quotes.

use nom::Parser;
use nom::bytes::complete::{tag, take_while_m_n, take_while1};
use nom::character::complete::{char, digit1};
use nom::combinator::{opt, recognize};

use super::*;
use crate::ast::{Literal, Span, Value};

impl<'s> FilterParser<'s> {
    /// A literal value after `after` (an operator or punctuation, for messages).
    pub(super) fn literal(&self, i: &'s str, after: &str) -> PResult<'s, Literal> {
        let i = ws(i);
        let (rest, value) = self.value(i, after)?;
        Ok((
            rest,
            Literal {
                value,
                span: self.span(i, rest),
            },
        ))
    }

    pub(super) fn value(&self, i: &'s str, after: &str) -> PResult<'s, Value> {
        if i.starts_with('\'') {
            return self.string(i);
        }
        if let Some(body) = i.strip_prefix('"') {
            let (inner, end) = match body.find('"') {
                Some(n) => (&body[..n], n + 2),
                None => (body, i.len()),
            };
            return self.fail(
                Span::new(self.pos(i), self.pos(i) + end),
                "OData strings use single quotes",
                Some(format!("write '{}'", inner.replace('\'', "''"))),
            );
        }
        if let Ok((rest, guid)) = guid(i) {
            return Ok((rest, Value::Guid(guid.to_ascii_lowercase())));
        }
        if let Ok((rest, text)) = date_time_like(i) {
            return self.date_time(i, rest, text);
        }
        if let Ok((rest, text)) = guid_like(i) {
            return self.fail(
                self.span(i, rest),
                format!("`{text}` is not a valid GUID"),
                Some(
                    "a GUID has 8-4-4-4-12 hex digits, e.g. 184efa21-98c3-4e5d-95ab-d07053a96e67"
                        .into(),
                ),
            );
        }
        if let Ok((rest, digits)) = recognize((opt(char::<&str, PError>('-')), digit1)).parse(i) {
            if rest.starts_with('.') {
                return self.fail(
                    self.token_span(i),
                    "only whole numbers can be compared",
                    None,
                );
            }
            return match digits.parse::<i64>() {
                Ok(n) if !rest.starts_with(is_ident_char) => Ok((rest, Value::Int(n))),
                _ => self.fail(
                    self.token_span(i),
                    format!("`{}` is not a valid number", next_token(i)),
                    Some("text values must be quoted: '…'".into()),
                ),
            };
        }
        for (kw, value) in [
            ("true", Value::Bool(true)),
            ("false", Value::Bool(false)),
            ("null", Value::Null),
        ] {
            if let Some(rest) = keyword(i, kw) {
                return Ok((rest, value));
            }
        }
        let span = self.token_span(i);
        if i.is_empty() {
            return self.fail(
                span,
                format!("expected a value after `{after}`"),
                Some("e.g. 'Sales', true, null or 2024-01-01T00:00:00Z".into()),
            );
        }
        if let Ok((_, word)) = identifier(i) {
            return self.fail(
                span,
                format!("expected a value after `{after}`, found the bare word `{word}`"),
                Some(format!("text values are quoted: '{word}'")),
            );
        }
        self.fail(
            span,
            format!(
                "expected a value after `{after}`, found `{}`",
                next_token(i)
            ),
            Some("e.g. 'Sales', true, null or 2024-01-01T00:00:00Z".into()),
        )
    }

    /// `'…'` with `''` for a quote inside.
    pub(super) fn string(&self, i: &'s str) -> PResult<'s, Value> {
        let body = &i[1..];
        let mut out = String::new();
        let mut chunks = body.split('\'');
        let mut consumed = 1;
        while let Some(chunk) = chunks.next() {
            out.push_str(chunk);
            consumed += chunk.len() + 1;
            if consumed > i.len() {
                break;
            }
            if i[consumed..].starts_with('\'') {
                out.push('\'');
                consumed += 1;
                chunks.next();
                continue;
            }
            return Ok((&i[consumed..], Value::String(out)));
        }
        self.fail(
            Span::new(self.pos(i), self.pos(i) + 1),
            "this string is never closed",
            Some("end it with `'`; write `''` for a quote inside the text".into()),
        )
    }

    pub(super) fn date_time(&self, i: &'s str, rest: &'s str, text: &str) -> PResult<'s, Value> {
        let span = self.span(i, rest);
        if text.contains(['t', 'z']) {
            return self.fail(
                span,
                format!("`{text}` is not a valid date-time"),
                Some(format!(
                    "write T and Z in capitals: {}",
                    text.to_ascii_uppercase()
                )),
            );
        }
        if !text.contains('T') {
            return self.fail(
                span,
                format!("`{text}` is a date without a time"),
                Some(format!("Graph compares date-times: write {text}T00:00:00Z")),
            );
        }
        if chrono::DateTime::parse_from_rfc3339(text).is_err() {
            return self.fail(
                span,
                format!("`{text}` is not a valid date-time"),
                Some(
                    "write it as 2024-01-31T00:00:00Z (seconds and a time zone are required)"
                        .into(),
                ),
            );
        }
        Ok((rest, Value::DateTime(text.to_string())))
    }
}

fn hex(n: usize) -> impl FnMut(&str) -> PResult<'_, &str> {
    move |i| take_while_m_n(n, n, |c: char| c.is_ascii_hexdigit()).parse(i)
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, not followed by a name character.
fn guid(i: &str) -> PResult<'_, &str> {
    let (rest, g) = recognize((
        hex(8),
        tag("-"),
        hex(4),
        tag("-"),
        hex(4),
        tag("-"),
        hex(4),
        tag("-"),
        hex(12),
    ))
    .parse(i)?;
    if rest.starts_with(is_ident_char) {
        return Err(nom::Err::Error(PError::from_error_kind(
            rest,
            ErrorKind::Verify,
        )));
    }
    Ok((rest, g))
}

/// Something that starts like a GUID (eight hex digits and a hyphen) but is not one.
fn guid_like(i: &str) -> PResult<'_, &str> {
    let (_, _) = (hex(8), char('-')).parse(i)?;
    take_while1(|c: char| c.is_ascii_alphanumeric() || c == '-').parse(i)
}

/// Something that starts like a date (`2024-01-31`) and runs to the next separator.
fn date_time_like(i: &str) -> PResult<'_, &str> {
    let (_, _) = (
        take_while_m_n(4, 4, |c: char| c.is_ascii_digit()),
        char('-'),
        take_while_m_n(2, 2, |c: char| c.is_ascii_digit()),
        char('-'),
    )
        .parse(i)?;
    take_while1(|c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '.' | '+')).parse(i)
}
