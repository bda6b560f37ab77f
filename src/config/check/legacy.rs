//! What only an old Oomnitza connector `config.ini` holds: `mapping.FIELD` lines, and keys
//! userload has no use for, which are warned about rather than refused so the file loads
//! as it is.

use std::sync::Arc;

use super::{Checker, Keys};
use crate::config::document::Value;
use crate::config::model::LegacyMapping;

/// Keys of the old Oomnitza `[oomnitza]` section that userload does not use.
const OOMNITZA_UNUSED: &[&str] = &["username", "password", "env_password", "user_pem_file"];

impl<'d> Checker<'d> {
    /// The rest of an `[azureusers]` section: its mappings, and its `url`, which pointed at
    /// the retired Azure AD Graph. Nothing for a `[source]` section.
    pub(super) fn legacy_source(&mut self, keys: &mut Keys<'d>) -> Vec<LegacyMapping> {
        if !keys.legacy {
            return Vec::new();
        }
        let mappings = self.legacy_mappings(keys);
        if let Some(url) = keys.take("url") {
            self.warning(
                url.key_span.clone(),
                "`url` is ignored: userload calls Microsoft Graph, not the retired Azure AD Graph",
                "remove it; for a national cloud set `cloud` instead",
            );
        }
        mappings
    }

    /// Warns about the sign-in keys of an old `[oomnitza]` section, which userload replaces
    /// with `api_token`; empty ones are left alone.
    pub(super) fn oomnitza_unused_keys(&mut self, keys: &mut Keys<'d>) {
        for key in OOMNITZA_UNUSED {
            if let Some(entry) = keys.take(key)
                && entry.value != Value::Text(String::new())
            {
                self.warning(
                    entry.key_span.clone(),
                    format!("`{key}` is ignored"),
                    "userload signs in to Oomnitza with api_token only",
                );
            }
        }
    }

    /// `mapping.FIELD = {json}` lines, kept with their place for the mapping compiler.
    fn legacy_mappings(&mut self, keys: &mut Keys<'d>) -> Vec<LegacyMapping> {
        let Some(section) = keys.section else {
            return Vec::new();
        };
        let mut mappings = Vec::new();
        for entry in &section.entries {
            let Some(field) = entry.key.strip_prefix("mapping.") else {
                continue;
            };
            keys.take(&entry.key);
            let Value::Text(text) = &entry.value else {
                continue;
            };
            match serde_json::from_str::<serde_json::Value>(text) {
                Ok(spec) if spec.is_object() => mappings.push(LegacyMapping {
                    field: field.to_string(),
                    spec,
                    source: Arc::clone(self.source),
                    span: entry.value_span.clone(),
                }),
                Ok(_) | Err(_) => self.error(
                    entry.value_span.clone(),
                    format!("the mapping for `{field}` is not a JSON object"),
                    "write it as {\"source\": \"userPrincipalName\"}",
                ),
            }
        }
        mappings
    }
}
