//! What only an old Oomnitza connector `config.ini` holds: `mapping.FIELD` lines, and keys
//! userload has no use for, which are warned about rather than refused so the file loads
//! as it is.

use std::ops::Range;
use std::sync::Arc;

use odata::catalog;

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

    /// Warns of a `"source"` written as the old connector named it, with the modern name.
    fn old_source_name(&mut self, spec: &serde_json::Value, text: &str, span: Range<usize>) {
        let Some(old) = spec.get("source").and_then(serde_json::Value::as_str) else {
            return;
        };
        let Some(graph) = modern_source(old) else {
            return;
        };
        let quoted = format!("\"{old}\"");
        let at = text.find(&quoted).map_or(span.clone(), |i| {
            span.start + i..span.start + i + quoted.len()
        });
        self.warning(
            at,
            format!("`{old}` is the old connector's name for `{graph}`"),
            format!("write \"source\": \"{graph}\"; the old name still works"),
        );
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
                Ok(spec) if spec.is_object() => {
                    self.old_source_name(&spec, text, entry.value_span.clone());
                    mappings.push(LegacyMapping {
                        field: field.to_string(),
                        spec,
                        source: Arc::clone(self.source),
                        span: entry.value_span.clone(),
                    });
                }
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

/// Azure AD Graph names (as the old connector's client modelled them, or as they stand
/// under `additional_properties`) that Microsoft Graph renamed.
const RENAMED: &[(&str, &str)] = &[
    ("object_id", "id"),
    ("objectId", "id"),
    ("immutable_id", "onPremisesImmutableId"),
    ("immutableId", "onPremisesImmutableId"),
    ("deletion_timestamp", "deletedDateTime"),
    ("sign_in_names", "identities"),
    ("signInNames", "identities"),
    ("telephoneNumber", "businessPhones[0]"),
    ("mobile", "mobilePhone"),
    ("physicalDeliveryOfficeName", "officeLocation"),
    ("facsimileTelephoneNumber", "faxNumber"),
    ("lastDirSyncTime", "onPremisesLastSyncDateTime"),
    ("dirSyncEnabled", "onPremisesSyncEnabled"),
];

/// The Microsoft Graph path an old connector's source name stands for: a snake_case
/// attribute (`given_name` → `givenName`), `additional_properties.X` (→ X), or an Azure AD
/// Graph name Microsoft Graph renamed (`telephoneNumber` → `businessPhones[0]`); `None`
/// for a name that is already Microsoft Graph's (or unknown to both).
pub fn modern_source(source: &str) -> Option<String> {
    let (bare, nested) = match source.strip_prefix("additional_properties.") {
        Some(rest) => (rest, true),
        None => (source, false),
    };
    if let Some((_, graph)) = RENAMED.iter().find(|(old, _)| *old == bare) {
        return Some((*graph).to_owned());
    }
    let camel = if bare.contains('_') && !bare.starts_with("extension_") {
        let mut words = bare.split('_');
        let first = words.next().unwrap_or_default().to_owned();
        words.fold(first, |mut name, word| {
            let mut chars = word.chars();
            if let Some(c) = chars.next() {
                name.extend(c.to_uppercase());
                name.push_str(chars.as_str());
            }
            name
        })
    } else {
        bare.to_owned()
    };
    let known = catalog::user_property(&camel).is_some() || catalog::is_extension_name(&camel);
    (known && (nested || camel != source)).then_some(camel)
}
