//! Literal secrets written in the config file itself.
//!
//! Problems draw the lines around them, so the text they draw from must never show a
//! secret: [`masked_secrets`] stars every literal one out. A literal secret in a file that
//! others can read is worth a warning too.

use std::path::Path;
use std::sync::Arc;

use super::document::{Document, Entry, Value};
use super::secret::Secret;
use super::sections::{SECRET_KEYS, SECTIONS};
use crate::diag::{Problem, SourceText, nearest};

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
    for entry in literal_secrets(doc) {
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

/// A secret key, or an unknown key that looks like a misspelt one.
fn is_secret_key(key: &str) -> bool {
    let known = SECTIONS.iter().any(|(_, keys)| keys.contains(&key));
    SECRET_KEYS.contains(&key) || (!known && nearest(key, SECRET_KEYS.iter().copied()).is_some())
}
