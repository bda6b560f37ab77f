//! The checks: one walk over a [`Document`] that reports *every* problem and builds the
//! validated [`Config`] only when there are none.
//!
//! A missing or wrong value never stops the walk: each check reports what it found and
//! returns `None`, the sections go on being read, and the config is put together at the
//! end only from parts that all passed. The files below follow the config's sections; the
//! typed readers they share live in `values`.

mod credential;
mod daemon;
mod legacy;
mod notify;
mod settings;
mod source;
mod sync;
mod target;
mod unknown;
mod values;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use super::document::{Document, Entry, Section, Value};
use super::model::{Config, TargetConfig};
use super::sections::ALIASES;
use crate::diag::{Problem, Severity, SourceText};

pub use legacy::modern_source;
pub use values::is_guid;

/// Checks `doc`, read from the file at `path` in the folder `dir`: the config when every
/// check passed, and every problem found, errors and warnings alike, in the order found.
pub(super) fn check(doc: &Document, dir: &Path, path: &Path) -> (Option<Config>, Vec<Problem>) {
    let mut checker = Checker::new(doc, dir);
    let config = checker.build(path);
    (config, checker.problems)
}

/// One section being read: which of its entries have been used so far.
struct Keys<'d> {
    section: Option<&'d Section>,
    /// The name used in messages, e.g. `[source]` or `[azureusers]`.
    shown: String,
    used: Vec<bool>,
    /// An Oomnitza connector section: unknown keys are warnings.
    legacy: bool,
}

impl<'d> Keys<'d> {
    /// The entry for `key`, empty or not, now marked as used.
    fn take(&mut self, key: &str) -> Option<&'d Entry> {
        let section = self.section?;
        let i = section.entries.iter().position(|e| e.key == key)?;
        self.used[i] = true;
        Some(&section.entries[i])
    }

    /// The entry for `key` if it is written with a value (an empty INI value counts as
    /// absent). Does not mark it used.
    fn given(&self, key: &str) -> Option<&'d Entry> {
        self.section?
            .entries
            .iter()
            .find(|e| e.key == key)
            .filter(|e| !matches!(&e.value, Value::Text(t) if t.trim().is_empty()))
    }

    /// Where to point when something is missing from the section.
    fn span(&self) -> Range<usize> {
        self.section.map_or(0..0, |s| s.span.clone())
    }
}

/// The walk over one document: what it reads from and the problems found so far.
struct Checker<'d> {
    doc: &'d Document,
    source: &'d Arc<SourceText>,
    dir: &'d Path,
    problems: Vec<Problem>,
    /// The file is an Oomnitza connector config.
    legacy: bool,
}

impl<'d> Checker<'d> {
    fn new(doc: &'d Document, dir: &'d Path) -> Self {
        let legacy = ALIASES.iter().any(|(old, _)| doc.section(old).is_some());
        Self {
            doc,
            source: &doc.source,
            dir,
            problems: Vec::new(),
            legacy,
        }
    }

    /// Reports a problem that stops the config from loading.
    fn error(&mut self, span: Range<usize>, message: impl Into<String>, hint: impl Into<String>) {
        self.push(Severity::Error, span, message.into(), hint.into());
    }

    /// Reports a problem worth knowing that does not stop the config from loading.
    fn warning(&mut self, span: Range<usize>, message: impl Into<String>, hint: impl Into<String>) {
        self.push(Severity::Warning, span, message.into(), hint.into());
    }

    fn push(&mut self, severity: Severity, span: Range<usize>, message: String, hint: String) {
        let mut problem = Problem::error(self.source, span, message);
        problem.severity = severity;
        if !hint.is_empty() {
            problem.hint = Some(hint);
        }
        self.problems.push(problem);
    }

    /// Reports a required key that is absent or empty, at the section header.
    fn missing(&mut self, keys: &Keys<'d>, key: &str, hint: impl Into<String>) {
        let message = format!("missing `{key}` in {}", keys.shown);
        self.error(keys.span(), message, hint);
    }

    /// Opens the section called `name`, or its Oomnitza alias.
    fn keys(&mut self, name: &str) -> Keys<'d> {
        let modern = self.doc.section(name);
        let alias = ALIASES
            .iter()
            .find(|(_, new)| *new == name)
            .map(|(old, _)| *old);
        let old = alias.and_then(|a| self.doc.section(a));
        if let (Some(_), Some(old)) = (modern, old) {
            self.error(
                old.span.clone(),
                format!("[{name}] and [{}] are the same section", old.name),
                format!("keep only [{name}]"),
            );
        }
        let section = modern.or(old);
        Keys {
            section,
            shown: format!("[{}]", section.map_or(name, |s| s.name.as_str())),
            used: section.map_or(Vec::new(), |s| vec![false; s.entries.len()]),
            legacy: modern.is_none() && old.is_some(),
        }
    }

    /// Reads the sections in a fixed order, since problems at the same place are shown in
    /// the order they were found, then reports the keys nobody read.
    fn build(&mut self, path: &Path) -> Option<Config> {
        self.check_sections();
        let mut settings = BTreeMap::new();
        let mut source_keys = self.keys("source");
        let mut target_keys = self.keys("target");
        let mut sync_keys = self.keys("sync");
        let mut notify_keys = self.keys("notify");
        let mut daemon_keys = self.keys("daemon");
        let source = self.source_config(&mut source_keys);
        let target = self.target_config(&mut target_keys, &mut source_keys);
        let rate_limit = self.rate_limit(&mut sync_keys);
        let sync = self.sync_config(&mut sync_keys, &mut source_keys, &mut settings);
        let notify = self.notify_config(&mut notify_keys);
        let daemon = self.daemon_config(&mut daemon_keys);
        self.settings(&mut settings);
        let legacy_mappings = self.legacy_source(&mut source_keys);
        for keys in [
            &source_keys,
            &target_keys,
            &sync_keys,
            &notify_keys,
            &daemon_keys,
        ] {
            self.unknown_keys(keys);
        }
        Some(Config {
            path: path.to_path_buf(),
            source: source?,
            target: TargetConfig {
                rate_limit,
                ..target?
            },
            sync: sync?,
            notify,
            daemon,
            settings,
            legacy_mappings,
        })
    }
}
