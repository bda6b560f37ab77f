//! `[source]` (or the Oomnitza connector's `[azureusers]`): the Entra tenant, the app that
//! signs in to it, the Graph endpoints, and which users to read.

use std::sync::Arc;

use odata::Filter;
use url::Url;

use super::credential::Kind;
use super::values::is_guid;
use super::{Checker, Keys};
use crate::config::model::SourceConfig;
use crate::diag::{SourceText, shorten};

impl<'d> Checker<'d> {
    /// `[source]`: every key is read, so that all of its problems are reported at once.
    pub(super) fn source_config(&mut self, keys: &mut Keys<'d>) -> Option<SourceConfig> {
        if keys.section.is_none() {
            self.error(
                0..0,
                "missing [source] section",
                "add [source] with tenant_id, client_id and secret",
            );
            return None;
        }
        let enabled = self.boolean(keys, "enable").unwrap_or(true);
        if !enabled && let Some(entry) = keys.given("enable") {
            self.warning(
                entry.value_span.clone(),
                "the source is disabled: runs will skip the sync",
                "set enable = true, or remove the key",
            );
        }
        let kind = self.credential_kind(keys);
        let ambient = kind == Some(Kind::WorkloadIdentity);
        let tenant_id = match from_environment(keys, ambient, "tenant_id", "AZURE_TENANT_ID") {
            Some(tenant) => {
                self.environment_value(keys, "tenant_id", "AZURE_TENANT_ID", tenant, |t| {
                    is_guid(t) || t.contains('.')
                })
            }
            None if ambient && keys.given("tenant_id").is_none() => {
                self.missing_ambient(keys, "tenant_id", "AZURE_TENANT_ID")
            }
            None => self.tenant_id(keys),
        };
        let client_id = match from_environment(keys, ambient, "client_id", "AZURE_CLIENT_ID") {
            Some(client) => {
                self.environment_value(keys, "client_id", "AZURE_CLIENT_ID", client, is_guid)
            }
            // A managed identity without `client_id` is the system-assigned one.
            None if kind == Some(Kind::ManagedIdentity) && keys.given("client_id").is_none() => {
                keys.take("client_id");
                Some(String::new())
            }
            None if ambient && keys.given("client_id").is_none() => {
                self.missing_ambient(keys, "client_id", "AZURE_CLIENT_ID")
            }
            None => self.client_id(keys),
        };
        let credential = match kind {
            Some(kind) => self.credential(keys, kind, client_id.as_deref()),
            None => None,
        };
        let (authority, graph_root) = self.cloud(keys);
        let filter = self.filter(keys);
        let page_size = self.integer(keys, "page_size", 1..=999).unwrap_or(999) as u16;
        let group = self.group(keys);
        let groups = self.group_names(keys, "groups");
        let exclude_groups = self.group_names(keys, "exclude_groups");
        let input_groups = self.group_names(keys, "input_groups");
        let (group, groups) = match (group, groups) {
            (Some(group), Some(mut groups))
                if !groups.is_empty() || matches!(&exclude_groups, Some(e) if !e.is_empty()) =>
            {
                // The old single group joins the list, which is then read apart.
                if let Some(group) = group
                    && !groups.iter().any(|g| g.eq_ignore_ascii_case(&group))
                {
                    groups.insert(0, group);
                }
                (Some(None), Some(groups))
            }
            other => other,
        };
        if let (Some(groups), Some(excluded), Some(entry)) =
            (&groups, &exclude_groups, keys.given("exclude_groups"))
            && let Some(both) = excluded
                .iter()
                .find(|e| groups.iter().any(|g| g.eq_ignore_ascii_case(e)))
        {
            self.error(
                entry.value_span.clone(),
                format!(
                    "`{}` is both in `groups` and in `exclude_groups`",
                    shorten(both, 60)
                ),
                "name it in one of them",
            );
        }
        let max_attempts = self.integer(keys, "max_attempts", 1..=20).unwrap_or(6) as u32;
        let timeout = self.integer(keys, "request_timeout", 1..=600).unwrap_or(60);
        Some(SourceConfig {
            enabled,
            tenant_id: tenant_id?,
            client_id: client_id?,
            credential: credential?,
            authority: authority?,
            graph_root: graph_root?,
            filter: filter?,
            page_size,
            group: group?,
            groups: groups?,
            exclude_groups: exclude_groups?,
            input_groups: input_groups?,
            max_attempts,
            request_timeout: std::time::Duration::from_secs(timeout as u64),
        })
    }

    /// A value taken from the environment instead of the config (workload identity), checked
    /// with `valid`; a bad one is reported at the section, naming the variable.
    fn environment_value(
        &mut self,
        keys: &mut Keys<'d>,
        key: &str,
        variable: &str,
        value: String,
        valid: impl Fn(&str) -> bool,
    ) -> Option<String> {
        keys.take(key);
        if valid(&value) {
            return Some(value);
        }
        self.error(
            keys.span(),
            format!(
                "the environment variable {variable} is `{}`, not a {}",
                shorten(&value, 40),
                if key == "tenant_id" {
                    "GUID or a domain"
                } else {
                    "GUID"
                }
            ),
            "fix the variable, or set the key in the config (it takes precedence)",
        );
        None
    }

    /// Reports `key` missing from the config and `variable` missing from the environment.
    fn missing_ambient(
        &mut self,
        keys: &mut Keys<'d>,
        key: &str,
        variable: &str,
    ) -> Option<String> {
        keys.take(key);
        self.missing(
            keys,
            key,
            format!(
                "add {key} = …, or run where {variable} is set (Azure's workload identity \
                 webhook sets it in pods labelled azure.workload.identity/use: \"true\")"
            ),
        );
        None
    }

    /// `group`: a group's object ID; `Some(None)` when not set.
    fn group(&mut self, keys: &mut Keys<'d>) -> Option<Option<String>> {
        let Some((group, entry)) = self.text(keys, "group") else {
            return Some(None);
        };
        if !is_guid(&group) {
            self.error(
                entry.value_span.clone(),
                "`group` must be the group's Object ID (a GUID)",
                "copy it from the group's overview page in the Entra admin center",
            );
            return None;
        }
        Some(Some(group))
    }

    /// A comma-separated list of groups, each a display name or an object ID; each at most
    /// once. Empty when the key is not set.
    fn group_names(&mut self, keys: &mut Keys<'d>, key: &str) -> Option<Vec<String>> {
        let Some((text, entry)) = self.text(keys, key) else {
            return Some(Vec::new());
        };
        let mut names: Vec<String> = Vec::new();
        let mut ok = true;
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                self.error(
                    entry.value_span.clone(),
                    format!("`{key}` names `{}` twice", shorten(name, 60)),
                    "name each group once",
                );
                ok = false;
                continue;
            }
            names.push(name.to_owned());
        }
        ok.then_some(names)
    }

    /// `tenant_id`: a GUID or a verified domain, never one of the multi-tenant aliases.
    fn tenant_id(&mut self, keys: &mut Keys<'d>) -> Option<String> {
        let (tenant, entry) = self.required_text(
            keys,
            "tenant_id",
            "<directory (tenant) ID or verified domain>",
        )?;
        let span = entry.value_span.clone();
        if ["common", "organizations", "consumers"].contains(&tenant.to_ascii_lowercase().as_str())
        {
            self.error(
                span,
                format!("`{tenant}` is not a tenant"),
                "app-only sign-in needs your tenant's ID (a GUID) or one of its verified domains",
            );
            return None;
        }
        let domain_like = tenant.contains('.')
            && tenant
                .split('.')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        if !is_guid(&tenant) && !domain_like {
            self.error(
                span,
                format!("`{}` is neither a GUID nor a domain", shorten(&tenant, 40)),
                "copy the Directory (tenant) ID from the app registration's overview page",
            );
            return None;
        }
        Some(tenant)
    }

    /// `client_id`: the app registration's GUID.
    fn client_id(&mut self, keys: &mut Keys<'d>) -> Option<String> {
        let (client, entry) = self.required_text(keys, "client_id", "<application (client) ID>")?;
        if !is_guid(&client) {
            self.error(
                entry.value_span.clone(),
                "`client_id` is not a GUID",
                "copy the Application (client) ID from the app registration's overview page",
            );
            return None;
        }
        Some(client)
    }

    /// `cloud`, `authority` and `domain`: the sign-in and Graph endpoints.
    fn cloud(&mut self, keys: &mut Keys<'d>) -> (Option<Url>, Option<Url>) {
        const CLOUDS: &[(&str, (&str, &str))] = &[
            (
                "global",
                (
                    "https://login.microsoftonline.com",
                    "https://graph.microsoft.com",
                ),
            ),
            (
                "usgov",
                (
                    "https://login.microsoftonline.us",
                    "https://graph.microsoft.us",
                ),
            ),
            (
                "usgov-dod",
                (
                    "https://login.microsoftonline.us",
                    "https://dod-graph.microsoft.us",
                ),
            ),
            (
                "china",
                (
                    "https://login.partner.microsoftonline.cn",
                    "https://microsoftgraph.chinacloudapi.cn",
                ),
            ),
        ];
        let (authority, domain) = self.choice(keys, "cloud", CLOUDS).unwrap_or(CLOUDS[0].1);
        let mut endpoint = |key: &str, default: &str| match keys.given(key) {
            Some(_) => self.endpoint(keys, key),
            None => Url::parse(default).ok(),
        };
        (endpoint("authority", authority), endpoint("domain", domain))
    }

    /// `filter` or `filter_file`. `Some(None)` is a valid "no filter".
    fn filter(&mut self, keys: &mut Keys<'d>) -> Option<Option<Filter>> {
        let inline = self.text(keys, "filter");
        let file = self.existing_file(keys, "filter_file");
        let file_entry = keys.given("filter_file");
        if let (Some(_), Some(entry)) = (&inline, file_entry) {
            self.error(
                entry.key_span.clone(),
                "both `filter` and `filter_file` are set",
                "keep one of them",
            );
            return None;
        }
        let (source, range) = match (inline, file) {
            (Some((text, entry)), _) => match entry.text_range(self.source) {
                Some(range) => (Arc::clone(self.source), range),
                None => {
                    let name = format!("{} [source] filter", self.source.name());
                    (SourceText::new(name, text.clone()), 0..text.len())
                }
            },
            (None, Some(path)) => match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let len = text.len();
                    (SourceText::new(path.display().to_string(), text), 0..len)
                }
                Err(e) => {
                    let span = file_entry.map_or(0..0, |e| e.value_span.clone());
                    self.error(span, format!("cannot read {}: {e}", path.display()), "");
                    return None;
                }
            },
            (None, None) => {
                return if file_entry.is_some() {
                    None
                } else {
                    Some(None)
                };
            }
        };
        match crate::filter::compile_in(&source, range) {
            Ok(filter) => Some(filter),
            Err(problems) => {
                self.problems.extend(problems);
                None
            }
        }
    }
}

/// The value of `variable` when `key` is not in the config and the credential takes it from
/// the environment (workload identity: Azure's webhook sets `AZURE_TENANT_ID` and
/// `AZURE_CLIENT_ID` in the pod).
fn from_environment(keys: &Keys<'_>, ambient: bool, key: &str, variable: &str) -> Option<String> {
    if !ambient || keys.given(key).is_some() {
        return None;
    }
    std::env::var(variable)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}
