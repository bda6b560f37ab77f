//! Converters that rewrite text: case, white space, accents, plain replacement, cutting, and
//! the parts of an e-mail address. Each works on one text value, or on every element of a
//! list.

use serde_json::Value as Json;
use unicode_normalization::UnicodeNormalization;

use super::{ArgError, Args, ConvertError, Converter, Env, regexes, shown};

/// `replace`: `from` must not be empty (it would match between every two characters).
pub(super) fn build_replace(args: &Args<'_>, _: &mut Env<'_>) -> Result<Converter, ArgError> {
    let from = args.non_empty_text(0)?;
    Ok(Converter::Replace(from, args.text(1)?))
}

/// `substring`.
pub(super) fn build_substring(args: &Args<'_>, _: &mut Env<'_>) -> Result<Converter, ArgError> {
    Ok(Converter::Substring(
        args.size(0)?.unwrap_or(0),
        args.size(1)?,
    ))
}

/// `truncate`.
pub(super) fn build_truncate(args: &Args<'_>, _: &mut Env<'_>) -> Result<Converter, ArgError> {
    Ok(Converter::Truncate(args.size(0)?.unwrap_or(0)))
}

/// Applies a text converter to a value, or to each element of a list (missing results are
/// left out of the list).
pub(super) fn apply(converter: &Converter, value: Json) -> Result<Option<Json>, ConvertError> {
    match value {
        Json::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                if let Some(v) = one(converter, item)? {
                    out.push(v);
                }
            }
            Ok(Some(Json::Array(out)))
        }
        other => one(converter, other),
    }
}

/// A text converter on one value.
fn one(converter: &Converter, value: Json) -> Result<Option<Json>, ConvertError> {
    if value.is_null() {
        return Ok(None);
    }
    if value.is_object() {
        return Err(ConvertError::Object(shown(&value)));
    }
    let s = match value {
        Json::String(s) => s,
        other => other.to_string(),
    };
    Ok(rewrite(converter, s).map(Json::String))
}

/// The converter's text; `None` when the result is missing.
fn rewrite(converter: &Converter, s: String) -> Option<String> {
    Some(match converter {
        Converter::Lower => s.to_lowercase(),
        Converter::Upper => s.to_uppercase(),
        Converter::Trim => s.trim().to_string(),
        Converter::Title => title(&s),
        Converter::Capitalize => capitalize(&s),
        Converter::StripDiacritics => strip_diacritics(&s),
        Converter::RegexReplace(re, with) => regexes::replace(re, with, &s),
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
        Converter::EmailDomain => s.rsplit_once('@')?.1.to_string(),
        // Not text converters: `Converter::apply` sends them elsewhere.
        Converter::FirstNonEmpty(_)
        | Converter::Join(_)
        | Converter::Split(..)
        | Converter::Lookup(..)
        | Converter::Alias(_)
        | Converter::BoolWords(..)
        | Converter::FirstOf(_)
        | Converter::Has(_)
        | Converter::Date(..) => s,
    })
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
pub(super) fn strip_diacritics(s: &str) -> String {
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
