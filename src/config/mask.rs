//! Literal secrets written in the config file itself.
//!
//! Problems draw the lines around them, so the text they draw from must never show a
//! secret: [`masked_secrets`] stars every literal one out, under a secret key or under any
//! other key when the value looks like a credential (a client secret pasted into
//! `client_id`, a token under a misnamed key). A literal secret in a file that others can
//! read is worth a warning too.

use std::path::Path;
use std::sync::Arc;

use super::document::{Document, Entry, Value};
use super::secret::Secret;
use super::sections::{SECRET_KEYS, SECTIONS};
use crate::diag::{Problem, SourceText, nearest};
use crate::secrets::looks_like_jwt;

/// Entries that hold a literal secret, including misspelt secret keys (`secrte = …`).
fn literal_secrets(doc: &Document) -> impl Iterator<Item = &Entry> {
    doc.sections
        .iter()
        .flat_map(|s| &s.entries)
        .filter(|e| is_secret_key(&e.key))
        .filter(
            |e| matches!(&e.value, Value::Text(t) if !t.trim().is_empty() && Secret::is_literal(t)),
        )
}

/// The document's text with every literal secret replaced by `*`s of the same byte length,
/// so that every place found in the original still fits.
pub(super) fn masked_secrets(doc: &Document) -> Arc<SourceText> {
    let mut text = doc.source.text().to_string();
    let lookalikes = doc
        .sections
        .iter()
        .flat_map(|s| &s.entries)
        .filter(|e| matches!(&e.value, Value::Text(t) if looks_like_a_credential(t)));
    for entry in literal_secrets(doc).chain(lookalikes) {
        let stars: String = text[entry.value_span.clone()]
            .chars()
            .map(|c| "*".repeat(c.len_utf8()))
            .collect();
        text.replace_range(entry.value_span.clone(), &stars);
    }
    SourceText::new(doc.source.name(), text)
}

/// Warns when a literal secret sits in a file that group or others can read.
#[cfg(unix)]
pub(super) fn literal_secret_warnings(path: &Path, doc: &Document) -> Vec<Problem> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(mode) = std::fs::metadata(path).map(|m| m.permissions().mode()) else {
        return Vec::new();
    };
    if mode & 0o077 == 0 {
        return Vec::new();
    }
    literal_secrets(doc)
        .map(|entry| {
            Problem::warning(
                &doc.source,
                entry.value_span.clone(),
                format!(
                    "literal secret in a file that group or others can read (mode {:o})",
                    mode & 0o777
                ),
            )
            .with_hint(format!(
                "run `chmod 600 {}`, or use env:NAME or file:PATH instead",
                path.display()
            ))
        })
        .collect()
}

#[cfg(not(unix))]
pub(super) fn literal_secret_warnings(_: &Path, _: &Document) -> Vec<Problem> {
    Vec::new()
}

/// Whether a value, whatever its key, has the shape of a credential: a JWT, an Entra client
/// secret (with its `~`), or a long random-looking token of upper- and lower-case letters
/// and digits. GUIDs, URLs, paths and anything with a space do not.
pub(crate) fn looks_like_a_credential(value: &str) -> bool {
    let value = value.trim();
    if value.len() < 20 || value.contains(char::is_whitespace) || value.contains("://") {
        return false;
    }
    if looks_like_jwt(value) {
        return true;
    }
    let token_chars = |extra: &str| {
        value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    };
    if value.contains('~') && (30..=60).contains(&value.len()) && token_chars("._~-") {
        return true;
    }
    value.len() >= 32
        && token_chars("+/=_-")
        && value.chars().any(|c| c.is_ascii_uppercase())
        && value.chars().any(|c| c.is_ascii_lowercase())
        && value.chars().any(|c| c.is_ascii_digit())
}

/// A secret key, or an unknown key that looks like a misspelt one.
fn is_secret_key(key: &str) -> bool {
    let known = SECTIONS.iter().any(|(_, keys)| keys.contains(&key));
    SECRET_KEYS.contains(&key) || (!known && nearest(key, SECRET_KEYS.iter().copied()).is_some())
}

#[cfg(test)]
mod tests {
    use super::looks_like_a_credential;

    #[test]
    fn credentials_are_told_from_ids_and_names() {
        for secret in [
            "Xy78Q~CanaryCanaryCanary1234567890abcdEF",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYW5hcnkifQ.c2lnbmF0dXJl",
            "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        ] {
            assert!(looks_like_a_credential(secret), "{secret}");
        }
        for plain in [
            "7f3a2b1c-0d4e-4f56-8a9b-0c1d2e3f4a5b",
            "7F3A2B1C-0D4E-4F56-8A9B-0C1D2E3F4A5B",
            "https://assets.example.com/scim/v2",
            "mappings/scim.toml",
            "employeeType in ('Admin','Staff')",
            "env:USERLOAD_SECRET",
            "snipeit",
        ] {
            assert!(!looks_like_a_credential(plain), "{plain}");
        }
    }
}
