//! The names a config file may use: its sections, their keys, the Oomnitza connector's
//! section names, and the keys whose values are secrets.
//!
//! Both stages read these lists: the raw model to keep secrets out of debug output, the
//! checks to report unknown names with the nearest known one.

/// Keys whose values are secrets, in any section.
pub(super) const SECRET_KEYS: &[&str] = &[
    "secret",
    "token",
    "api_token",
    "password",
    "env_password",
    "webhook",
    "ping_url",
];

const SOURCE_KEYS: &[&str] = &[
    "tenant_id",
    "client_id",
    "secret",
    "certificate",
    "private_key",
    "authority",
    "domain",
    "cloud",
    "filter",
    "filter_file",
    "page_size",
    "group",
    "groups",
    "exclude_groups",
    "input_groups",
    "max_attempts",
    "request_timeout",
    "assertion_algorithm",
    "credential",
    "federated_token_file",
    "managed_identity_endpoint",
    "enable",
];
const TARGET_KEYS: &[&str] = &[
    "type",
    "url",
    "token",
    "sync_field",
    "auth",
    "username",
    "password",
    "auth_header",
    "token_url",
    "client_id",
    "client_secret",
    "scope",
    "app_token",
    "preset",
    "templates",
    "page_size",
    "list",
    "batch_size",
    "max_attempts",
    "request_timeout",
];
const NOTIFY_KEYS: &[&str] = &["webhook", "on", "ping_url"];
const DAEMON_KEYS: &[&str] = &["metrics_address"];
const SYNC_KEYS: &[&str] = &[
    "mapping",
    "mode",
    "deactivate",
    "default_role",
    "default_position",
    "max_deactivations",
    "state",
    "concurrency",
    "rate_limit",
    "create_disabled",
    "hold_leavers_with_assets",
    "full_every",
    "full_at",
    "delta",
];

/// The sections of a config and their keys (the Oomnitza aliases aside).
pub const SECTIONS: &[(&str, &[&str])] = &[
    ("source", SOURCE_KEYS),
    ("target", TARGET_KEYS),
    ("sync", SYNC_KEYS),
    ("notify", NOTIFY_KEYS),
    ("daemon", DAEMON_KEYS),
];

/// The Oomnitza connector's names for userload's sections.
pub(super) const ALIASES: &[(&str, &str)] = &[("azureusers", "source"), ("oomnitza", "target")];

/// The section a name stands for: `azureusers` is `source`, `oomnitza` is `target`.
pub(super) fn modern_name(name: &str) -> &str {
    ALIASES
        .iter()
        .find(|(old, _)| *old == name)
        .map_or(name, |(_, new)| new)
}
