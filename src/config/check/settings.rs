//! The values mapping files read with `setting = "…"`: `default_role` and
//! `default_position` from `[sync]`, and every key of `[settings]`.

use std::collections::BTreeMap;

use super::{Checker, Keys};
use crate::config::document::{Entry, Format, Value};

impl<'d> Checker<'d> {
    /// `default_role` and `default_position`, which the Oomnitza connector kept in
    /// `[azureusers]`.
    pub(super) fn default_settings(
        &mut self,
        keys: &mut Keys<'d>,
        source_keys: &mut Keys<'d>,
        settings: &mut BTreeMap<String, serde_json::Value>,
    ) {
        for key in ["default_role", "default_position"] {
            let entry = keys
                .take(key)
                .or_else(|| source_keys.legacy.then(|| source_keys.take(key)).flatten());
            if let Some(value) = entry.and_then(|e| self.setting_value(e)) {
                settings.insert(key.to_string(), value);
            }
        }
    }

    /// `[settings]`: any scalar the mapping files may read.
    pub(super) fn settings(&mut self, settings: &mut BTreeMap<String, serde_json::Value>) {
        let Some(section) = self.doc.section("settings") else {
            return;
        };
        for entry in &section.entries {
            if settings.contains_key(&entry.key) {
                self.error(
                    entry.key_span.clone(),
                    format!("`{}` is already set above", entry.key),
                    "default_role and default_position belong in [sync]; keep one of them",
                );
            } else if let Some(value) = self.setting_value(entry) {
                settings.insert(entry.key.clone(), value);
            }
        }
    }

    /// A scalar setting as JSON, the form mapping files read it in.
    fn setting_value(&mut self, entry: &Entry) -> Option<serde_json::Value> {
        match &entry.value {
            // INI has no types: a number-looking value (an Oomnitza role id) is a number.
            Value::Text(t) if t.trim().is_empty() => None,
            // Only when it reads back the same: `01234` (a postal code) stays text.
            Value::Text(t) if self.doc.format == Format::Ini => Some(match t.parse::<i64>() {
                Ok(n) if n.to_string() == *t => n.into(),
                _ => t.as_str().into(),
            }),
            Value::Text(t) => Some(t.as_str().into()),
            Value::Int(n) => Some((*n).into()),
            Value::Bool(b) => Some((*b).into()),
            Value::Float(f) => Some((*f).into()),
            other => {
                self.error(
                    entry.value_span.clone(),
                    format!(
                        "`{}` must be a string, number or boolean, not {}",
                        entry.key,
                        other.type_name()
                    ),
                    "",
                );
                None
            }
        }
    }
}
