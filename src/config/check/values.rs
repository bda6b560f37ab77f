//! Typed readers for single values, shared by every section's checks.
//!
//! Each one takes a key from its section, reports what is wrong with the value in words an
//! admin can act on, and returns `None` when the value cannot be used. INI values are all
//! text, so the readers parse them; TOML values must already have the right type.

use std::path::PathBuf;

use url::Url;

use super::{Checker, Keys};
use crate::config::document::{Entry, Format, Value};
use crate::config::secret::Secret;
use crate::diag::{did_you_mean, shorten};

impl<'d> Checker<'d> {
    /// A text value; an empty INI value counts as absent.
    pub(super) fn text(&mut self, keys: &mut Keys<'d>, key: &str) -> Option<(String, &'d Entry)> {
        let entry = keys.take(key)?;
        match &entry.value {
            Value::Text(t) if t.trim().is_empty() => None,
            Value::Text(t) => Some((t.trim().to_string(), entry)),
            other => {
                self.error(
                    entry.value_span.clone(),
                    format!("`{key}` must be a string, not {}", other.type_name()),
                    format!("quote it: {key} = \"…\""),
                );
                None
            }
        }
    }

    /// A text value that must be given; its absence is reported with an `example` to add.
    pub(super) fn required_text(
        &mut self,
        keys: &mut Keys<'d>,
        key: &str,
        example: &str,
    ) -> Option<(String, &'d Entry)> {
        if keys.given(key).is_none() {
            self.missing(keys, key, format!("add: {key} = {example}"));
        }
        self.text(keys, key)
    }

    /// A boolean; INI also takes yes/no, on/off and 1/0.
    pub(super) fn boolean(&mut self, keys: &mut Keys<'d>, key: &str) -> Option<bool> {
        let entry = keys.take(key)?;
        match (&entry.value, self.doc.format) {
            (Value::Bool(b), _) => Some(*b),
            (Value::Text(t), Format::Ini) => match t.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Some(true),
                "false" | "no" | "off" | "0" => Some(false),
                "" => None,
                _ => {
                    self.error(
                        entry.value_span.clone(),
                        format!("`{key}` must be true or false, not `{}`", shorten(t, 40)),
                        comment_hint(t).unwrap_or("write true or false"),
                    );
                    None
                }
            },
            (other, _) => {
                self.error(
                    entry.value_span.clone(),
                    format!("`{key}` must be a boolean, not {}", other.type_name()),
                    format!("write {key} = true or {key} = false, without quotes"),
                );
                None
            }
        }
    }

    /// An integer within `range`.
    pub(super) fn integer(
        &mut self,
        keys: &mut Keys<'d>,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<i64> {
        let entry = keys.take(key)?;
        let n = match (&entry.value, self.doc.format) {
            (Value::Int(n), _) => *n,
            (Value::Text(t), Format::Ini) if t.trim().is_empty() => return None,
            (Value::Text(t), Format::Ini) => match t.trim().parse() {
                Ok(n) => n,
                Err(_) => {
                    self.error(
                        entry.value_span.clone(),
                        format!("`{key}` must be a whole number, not `{}`", shorten(t, 40)),
                        comment_hint(t).unwrap_or(&format!("e.g. {key} = {}", range.end())),
                    );
                    return None;
                }
            },
            (other, _) => {
                self.error(
                    entry.value_span.clone(),
                    format!("`{key}` must be an integer, not {}", other.type_name()),
                    format!("write it without quotes, e.g. {key} = {}", range.end()),
                );
                return None;
            }
        };
        if !range.contains(&n) {
            self.error(
                entry.value_span.clone(),
                format!(
                    "`{key}` is {n}, but it must be between {} and {}",
                    range.start(),
                    range.end()
                ),
                "",
            );
            return None;
        }
        Some(n)
    }

    /// One of a fixed set of words.
    pub(super) fn choice<T: Copy>(
        &mut self,
        keys: &mut Keys<'d>,
        key: &str,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let (text, entry) = self.text(keys, key)?;
        if let Some((_, v)) = choices.iter().find(|(w, _)| w.eq_ignore_ascii_case(&text)) {
            return Some(*v);
        }
        let words: Vec<&str> = choices.iter().map(|(w, _)| *w).collect();
        let hint = did_you_mean(&text, words.iter().copied(), || {
            format!("choose one of: {}", words.join(", "))
        });
        self.error(
            entry.value_span.clone(),
            format!("`{}` is not a valid `{key}`", shorten(&text, 40)),
            hint,
        );
        None
    }

    /// A path relative to the config's folder that must exist.
    pub(super) fn existing_file(&mut self, keys: &mut Keys<'d>, key: &str) -> Option<PathBuf> {
        let (text, entry) = self.text(keys, key)?;
        let path = self.dir.join(&text);
        if !path.is_file() {
            self.error(
                entry.value_span.clone(),
                format!(
                    "`{key}` names a file that does not exist: {}",
                    path.display()
                ),
                "relative paths are resolved against the config file's folder",
            );
            return None;
        }
        Some(path)
    }

    /// A secret: a literal, `env:NAME` or `file:PATH`. A variable that is not set yet is
    /// only a warning, since the scheduler that runs userload may set it.
    pub(super) fn secret(&mut self, keys: &mut Keys<'d>, key: &str) -> Option<Secret> {
        let (text, entry) = self.text(keys, key)?;
        match Secret::resolve(&text, self.dir) {
            Ok(secret) => {
                match secret.expose() {
                    Err(why) => self.warning(
                        entry.value_span.clone(),
                        why.to_string(),
                        "runs fail unless the scheduler sets it",
                    ),
                    // Entra shows a secret's ID (a GUID) beside its value; the ID is useless here.
                    Ok(value) if key == "secret" && is_guid(value) => self.warning(
                        entry.value_span.clone(),
                        "this secret looks like the secret's ID, not its value",
                        "copy the Value column of Certificates & secrets (shown only when created)",
                    ),
                    Ok(_) => {}
                }
                Some(secret)
            }
            Err(why) => {
                self.error(
                    entry.value_span.clone(),
                    why.to_string(),
                    "a secret is a literal value, env:NAME or file:PATH",
                );
                None
            }
        }
    }

    /// An https URL (plain http only for loopback hosts, i.e. local tests and the demo).
    pub(super) fn endpoint(&mut self, keys: &mut Keys<'d>, key: &str) -> Option<Url> {
        let (text, entry) = self.text(keys, key)?;
        let span = entry.value_span.clone();
        let url = match Url::parse(&text) {
            Ok(url) if url.host().is_some() => url,
            _ => {
                self.error(
                    span,
                    format!("`{key}` is not a URL: `{}`", shorten(&text, 40)),
                    "e.g. https://example.com",
                );
                return None;
            }
        };
        if !url.username().is_empty() || url.password().is_some() {
            self.error(
                span,
                format!("`{key}` carries a user name or password"),
                "remove it from the URL; put credentials in `token`",
            );
            return None;
        }
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        match url.scheme() {
            "https" => Some(url),
            "http" if loopback => Some(url),
            "http" => {
                self.error(
                    span,
                    format!("`{key}` uses plain http"),
                    "use https; plain http is allowed only for loopback test servers",
                );
                None
            }
            other => {
                self.error(
                    span,
                    format!("`{key}` has the unsupported scheme `{other}`"),
                    "use https",
                );
                None
            }
        }
    }
}

/// A hint for INI values that carry a trailing comment, which INI keeps as part of the value.
fn comment_hint(value: &str) -> Option<&'static str> {
    (value.contains(" #") || value.contains(" ;"))
        .then_some("comments must be on a line of their own in INI files")
}

/// Whether `s` is a GUID, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, as Entra writes its IDs.
pub fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}
