//! The config file: read from INI or TOML, checked completely, turned into a [`Config`].
//!
//! Reading happens in two stages. First the file becomes a [`Document`] (sections, keys,
//! values, each with its place). Then one checker walks the document, collects *every*
//! problem (unknown keys with the nearest known one, wrong types, missing keys, ranges,
//! conflicting keys, missing files, filter mistakes) and only if there are none builds the
//! validated `Config`, which already holds the compiled filter. Nothing here touches the
//! network.
//!
//! An old Oomnitza connector `config.ini` loads as it is: `[azureusers]` is read as
//! `[source]` and `[oomnitza]` as a `[target]` of type `oomnitza`. Keys and sections that
//! only mattered to that connector are warnings, not errors.

pub mod document;
mod ini;
mod secret;
mod toml_file;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use url::Url;

pub use document::{Document, Entry, Format, Section, Value};
pub use secret::Secret;

use crate::diag::{Problem, Severity, SourceText, did_you_mean, nearest, shorten};
use odata::Filter;

/// A config that passed every offline check.
#[derive(Debug)]
pub struct Config {
    /// The config file this was read from.
    pub path: PathBuf,
    /// `[source]` (or `[azureusers]`): the Entra tenant and which of its users to read.
    pub source: SourceConfig,
    /// `[target]` (or `[oomnitza]`): the asset system users are written to.
    pub target: TargetConfig,
    /// `[sync]`: how runs behave.
    pub sync: SyncConfig,
    /// `[notify]`: who is told when a run goes wrong.
    pub notify: NotifyConfig,
    /// Values mapping files may read with `setting = "…"`: `default_role`,
    /// `default_position`, and every key of `[settings]`.
    pub settings: BTreeMap<String, serde_json::Value>,
    /// `mapping.FIELD = {…}` lines of an Oomnitza `[azureusers]` section.
    pub legacy_mappings: Vec<LegacyMapping>,
}

/// `[source]`: the Entra tenant, how to sign in to it, and how to read its users from Graph.
#[derive(Debug)]
pub struct SourceConfig {
    /// `enable = false` (Oomnitza's switch): runs skip the sync.
    pub enabled: bool,
    /// The directory (tenant) ID, a GUID, or one of the tenant's verified domains.
    pub tenant_id: String,
    /// The app registration's application (client) ID, a GUID.
    pub client_id: String,
    /// How the app signs in: a client secret or a certificate.
    pub credential: Credential,
    /// The sign-in endpoint, e.g. `https://login.microsoftonline.com`; `cloud` sets it unless
    /// given.
    pub authority: Url,
    /// The Graph root, e.g. `https://graph.microsoft.com`.
    pub graph_root: Url,
    /// The compiled `$filter`; `None` reads every user.
    pub filter: Option<Filter>,
    /// Users asked for per Graph page, 1–999 (default 999).
    pub page_size: u16,
    /// Only members of this group (a GUID; transitive membership) are read.
    pub group: Option<String>,
    /// Tries per Graph request before the pull fails, 1–20 (default 6).
    pub max_attempts: u32,
    /// How long one Graph request may take, 1–600 seconds (default 60).
    pub request_timeout: std::time::Duration,
}

/// How userload signs in to Entra (app-only, client credentials).
#[derive(Debug)]
pub enum Credential {
    /// A client secret's value (`secret`).
    Secret(Secret),
    /// A certificate and its private key (`certificate` and `private_key`).
    Certificate {
        /// PEM file with a `CERTIFICATE` block, resolved against the config's folder.
        certificate: PathBuf,
        /// PEM file with a `PRIVATE KEY` block, resolved against the config's folder.
        private_key: PathBuf,
        /// How the client assertion is signed (`assertion_algorithm`).
        algorithm: AssertionAlgorithm,
    },
}

/// How a certificate sign-in signs its client assertion (`assertion_algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssertionAlgorithm {
    /// `PS256` with an `x5t#S256` thumbprint: what Entra documents today (the default).
    Ps256,
    /// `RS256` with an `x5t` (SHA-1) thumbprint: the older form, for tenants that need it.
    Rs256,
}

/// The kind of API the asset system offers (`type` in `[target]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// `scim`: a SCIM users endpoint.
    Scim,
    /// `rest`: a plain REST API.
    Rest,
    /// `oomnitza`: the Oomnitza API; also implied by an old `[oomnitza]` section.
    Oomnitza,
}

impl TargetKind {
    /// The `type` value that selects this kind.
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Scim => "scim",
            TargetKind::Rest => "rest",
            TargetKind::Oomnitza => "oomnitza",
        }
    }
}

/// `[target]`: the asset system users are written to.
#[derive(Debug)]
pub struct TargetConfig {
    /// Which kind of API `url` offers.
    pub kind: TargetKind,
    /// Base URL of the target's API: https, or plain http on a loopback host.
    pub url: Url,
    /// API token (`api_token` in an old `[oomnitza]`), sent as a bearer token; required for
    /// Oomnitza.
    pub token: Option<Secret>,
    /// Oomnitza: the field that identifies users (the old connector's `sync_field`).
    pub sync_field: Option<String>,
    /// How requests prove who sends them (`auth`).
    pub auth: TargetAuth,
    /// `rest` targets: the preset (`snipeit`) or a file of request templates.
    pub api: Option<RestApi>,
    /// Users per page when listing the target, 1–1000 (default 100).
    pub page_size: u32,
    /// Whether to list every target user (`list = true`, the default); `false` looks users
    /// up one by one with a filter, for servers that do not allow listing.
    pub list: bool,
    /// Oomnitza: records per bulk upload, 1–10000 (default 500).
    pub batch_size: usize,
    /// Tries per idempotent request before giving up, 1–20 (default 6).
    pub max_attempts: u32,
    /// How long one request may take, 1–600 s (default 60).
    pub request_timeout: std::time::Duration,
}

/// How userload signs its requests to the target (`auth` in `[target]`).
#[derive(Debug, Clone)]
pub enum TargetAuth {
    /// `bearer` (the default): `Authorization: Bearer <token>`.
    Bearer,
    /// `basic`: `username` and `password`.
    Basic {
        /// `username`.
        username: String,
        /// `password`.
        password: Secret,
    },
    /// `header`: the token in a header of this name (`auth_header`), e.g. `X-API-Key`;
    /// Oomnitza's `Authorization2` by default for `type = oomnitza`.
    Header(String),
}

/// What a `rest` target's API looks like.
#[derive(Debug, Clone, PartialEq)]
pub enum RestApi {
    /// A preset built into userload (`preset = snipeit`).
    Preset(Preset),
    /// A TOML file of request templates (`templates = path`).
    Templates(PathBuf),
}

/// The API descriptions built into userload, by the name `preset` takes. The config knows
/// their names; the REST target holds what each one says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Snipe-IT's users API.
    Snipeit,
}

impl Preset {
    /// Every preset, in the order the docs list them.
    pub const ALL: [Preset; 1] = [Preset::Snipeit];

    /// The `preset` value that selects it.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Snipeit => "snipeit",
        }
    }

    /// The preset called `name`, if there is one.
    pub fn named(name: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// Which changes a run may make to target users (`mode` in `[sync]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `create_update`: create missing users and update existing ones (the default).
    CreateUpdate,
    /// `create_only`: create missing users, leave existing ones alone.
    CreateOnly,
    /// `update_only`: update existing users, create none.
    UpdateOnly,
}

impl Mode {
    /// The `mode` value that selects this mode.
    pub fn name(self) -> &'static str {
        match self {
            Mode::CreateUpdate => "create_update",
            Mode::CreateOnly => "create_only",
            Mode::UpdateOnly => "update_only",
        }
    }
}

/// The most deactivations one run may make without `--allow-deactivations`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// At most this many users.
    Count(u32),
    /// At most this percentage (0–100) of the target users userload owns.
    Percent(f64),
}

/// `[sync]`: how runs behave.
#[derive(Debug)]
pub struct SyncConfig {
    /// The mapping file; `None` means the shipped mapping for the target type.
    pub mapping: Option<PathBuf>,
    /// Whether runs create users, update them, or both.
    pub mode: Mode,
    /// Whether to deactivate target users that left the filter or were disabled or deleted in
    /// Entra.
    pub deactivate: bool,
    /// The most deactivations one run may make; 10% unless set.
    pub max_deactivations: Limit,
    /// The SQLite state file (owned users, last writes, run history); `userload.db` beside the
    /// config unless set.
    pub state: PathBuf,
    /// How many requests to the target may be under way at once, 1–64.
    pub concurrency: usize,
    /// At most this many requests to the target per second (`rate_limit`); none if unset.
    pub rate_limit: Option<u32>,
    /// Whether users disabled in Entra are created in the target (inactive); `false` (the
    /// default) leaves them out until they are enabled.
    pub create_disabled: bool,
}

/// One `mapping.FIELD = {json}` line, kept with its place for the mapping compiler.
#[derive(Debug)]
pub struct LegacyMapping {
    /// The target field, the `FIELD` of `mapping.FIELD`, in its written case.
    pub field: String,
    /// The JSON object given for it, e.g. `{"source": "userPrincipalName"}`.
    pub spec: serde_json::Value,
    /// The config text, for reporting problems in the mapping.
    pub source: Arc<SourceText>,
    /// Where the JSON was written in `source`.
    pub span: Range<usize>,
}

/// A config that loaded, and the warnings found on the way.
#[derive(Debug)]
pub struct Loaded {
    /// The validated config.
    pub config: Config,
    /// Warnings found while loading, in file order; none of them stops a run.
    pub warnings: Vec<Problem>,
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The config file.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The file name does not say whether the file is INI or TOML.
    #[error("config file {} must end in .ini or .toml (optionally followed by .example or .sample)", path.display())]
    Extension {
        /// The config file.
        path: PathBuf,
    },
    /// The file was read, but checking found errors.
    #[error("{} has {} problem(s)", path.display(), problems.iter().filter(|p| p.is_error()).count())]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// Errors and warnings, in file order.
        problems: Vec<Problem>,
    },
}

/// Reads, checks and builds the config at `path`.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    // `config.ini.example` is read as the `.ini` it stands for.
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let name = [".example", ".sample"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name);
    let format = match Path::new(name).extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("ini") => Format::Ini,
        Some(e) if e.eq_ignore_ascii_case("toml") => Format::Toml,
        _ => {
            return Err(ConfigError::Extension {
                path: path.to_path_buf(),
            });
        }
    };
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    // Editors on Windows may start UTF-8 files with a byte-order mark; it is not content.
    let text = match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    };
    let source = SourceText::new(path.display().to_string(), text);
    let (mut document, mut problems) = match format {
        Format::Ini => ini::read(&source),
        Format::Toml => toml_file::read(&source),
    };
    // Problems show the lines around them: from here on they show a copy of the file in
    // which literal secrets are starred out.
    let masked = masked_secrets(&document);
    for problem in &mut problems {
        problem.source = Arc::clone(&masked);
    }
    document.source = masked;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut checker = Checker::new(&document, dir);
    let built = checker.build(path);
    problems.append(&mut checker.problems);
    problems.extend(literal_secret_warnings(path, &document));
    let problems = crate::diag::sorted(problems);
    match built {
        Some(config) if !problems.iter().any(Problem::is_error) => Ok(Loaded {
            config,
            warnings: problems,
        }),
        _ => Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            problems,
        }),
    }
}

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
fn masked_secrets(doc: &Document) -> Arc<SourceText> {
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
fn literal_secret_warnings(path: &Path, doc: &Document) -> Vec<Problem> {
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
fn literal_secret_warnings(_: &Path, _: &Document) -> Vec<Problem> {
    Vec::new()
}

/// A secret key, or an unknown key that looks like a misspelt one.
fn is_secret_key(key: &str) -> bool {
    let known = SECTIONS.iter().any(|(_, keys)| keys.contains(&key));
    SECRET_KEYS.contains(&key) || (!known && nearest(key, SECRET_KEYS.iter().copied()).is_some())
}

/// Keys whose values are secrets, in any section.
pub(crate) const SECRET_KEYS: &[&str] = &[
    "secret",
    "token",
    "api_token",
    "password",
    "env_password",
    "webhook",
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
    "max_attempts",
    "request_timeout",
    "assertion_algorithm",
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
    "preset",
    "templates",
    "page_size",
    "list",
    "batch_size",
    "max_attempts",
    "request_timeout",
];
const NOTIFY_KEYS: &[&str] = &["webhook", "on"];
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
];
/// The sections of a config and their keys (the Oomnitza aliases aside).
pub const SECTIONS: &[(&str, &[&str])] = &[
    ("source", SOURCE_KEYS),
    ("target", TARGET_KEYS),
    ("sync", SYNC_KEYS),
    ("notify", NOTIFY_KEYS),
];

/// The Oomnitza connector's names for userload's sections.
const ALIASES: &[(&str, &str)] = &[("azureusers", "source"), ("oomnitza", "target")];

/// The section a name stands for: `azureusers` is `source`, `oomnitza` is `target`.
fn modern_name(name: &str) -> &str {
    ALIASES
        .iter()
        .find(|(old, _)| *old == name)
        .map_or(name, |(_, new)| new)
}

/// Keys of the old Oomnitza `[oomnitza]` section that userload does not use.
const OOMNITZA_UNUSED: &[&str] = &["username", "password", "env_password", "user_pem_file"];

/// Default maximum share of owned users one run may deactivate.
pub const DEFAULT_MAX_DEACTIVATIONS: Limit = Limit::Percent(10.0);

/// `[notify]`: a webhook told about runs that need an admin.
#[derive(Debug, Clone, Default)]
pub struct NotifyConfig {
    /// An incoming-webhook URL (Teams, Slack, or anything that takes their JSON); a secret,
    /// since such URLs carry their own credentials.
    pub webhook: Option<Secret>,
    /// The run statuses that are sent.
    pub on: Vec<NotifyOn>,
}

/// A kind of run the webhook hears about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyOn {
    /// The run could not run, or refused to (exit code 2).
    Failed,
    /// Deactivations were held back by `max_deactivations`.
    Limited,
    /// Some writes failed, or the run was stopped.
    Partial,
    /// Everything worked.
    Ok,
}

impl NotifyOn {
    /// Its name in `on`.
    pub fn name(self) -> &'static str {
        match self {
            NotifyOn::Failed => "failed",
            NotifyOn::Limited => "limited",
            NotifyOn::Partial => "partial",
            NotifyOn::Ok => "ok",
        }
    }
}

/// What `on` holds when not given.
pub const DEFAULT_NOTIFY_ON: &[NotifyOn] =
    &[NotifyOn::Failed, NotifyOn::Limited, NotifyOn::Partial];

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

    fn error(&mut self, span: Range<usize>, message: impl Into<String>, hint: impl Into<String>) {
        self.push(Severity::Error, span, message.into(), hint.into());
    }

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

    fn build(&mut self, path: &Path) -> Option<Config> {
        self.check_sections();
        let mut settings = BTreeMap::new();
        let mut legacy_mappings = Vec::new();
        let mut source_keys = self.keys("source");
        let mut target_keys = self.keys("target");
        let mut sync_keys = self.keys("sync");
        let mut notify_keys = self.keys("notify");
        let source = self.source_config(&mut source_keys);
        let target = self.target_config(&mut target_keys, &mut source_keys);
        let sync = self.sync_config(&mut sync_keys, &mut source_keys, &mut settings);
        let notify = self.notify_config(&mut notify_keys);
        self.settings(&mut settings);
        if source_keys.legacy {
            legacy_mappings = self.legacy_mappings(&mut source_keys);
            if let Some(url) = source_keys.take("url") {
                self.warning(
                    url.key_span.clone(),
                    "`url` is ignored: userload calls Microsoft Graph, not the retired Azure AD Graph",
                    "remove it; for a national cloud set `cloud` instead",
                );
            }
        }
        for keys in [&source_keys, &target_keys, &sync_keys, &notify_keys] {
            self.unknown_keys(keys);
        }
        Some(Config {
            path: path.to_path_buf(),
            source: source?,
            target: target?,
            sync: sync?,
            notify,
            settings,
            legacy_mappings,
        })
    }

    /// Reports sections nobody reads.
    fn check_sections(&mut self) {
        for section in &self.doc.sections {
            let name = section.name.as_str();
            if SECTIONS.iter().any(|(s, _)| *s == name)
                || name == "settings"
                || modern_name(name) != name
            {
                continue;
            }
            if self.legacy {
                self.warning(
                    section.span.clone(),
                    format!("section [{name}] is ignored"),
                    "it belongs to another Oomnitza connector; userload reads [azureusers] and [oomnitza]",
                );
                continue;
            }
            let known = SECTIONS.iter().map(|(s, _)| *s).chain(["settings"]);
            let hint = nearest(name, known)
                .map(|n| format!("did you mean [{n}]?"))
                .unwrap_or_else(|| {
                    "the sections are [source], [target], [sync], [notify] and [settings]".into()
                });
            self.error(
                section.span.clone(),
                format!("unknown section [{name}]"),
                hint,
            );
        }
    }

    fn unknown_keys(&mut self, keys: &Keys<'d>) {
        let Some(section) = keys.section else {
            return;
        };
        let name = modern_name(&section.name);
        let known = SECTIONS
            .iter()
            .find(|(s, _)| *s == name)
            .map_or(&[][..], |(_, k)| *k);
        for (entry, used) in section.entries.iter().zip(&keys.used) {
            // A known key left unused was empty; in an Oomnitza section, a key userload knows
            // only under [source]/[target] (e.g. `type`) is still one the file should not have.
            if *used || (!keys.legacy && known.contains(&entry.key.as_str())) {
                continue;
            }
            if keys.legacy {
                self.warning(
                    entry.key_span.clone(),
                    format!("`{}` is ignored", entry.key),
                    format!(
                        "userload does not use this key of the Oomnitza connector's {}",
                        keys.shown
                    ),
                );
                continue;
            }
            let hint = match nearest(&entry.key, known.iter().copied()) {
                Some(k) => format!("did you mean `{k}`?"),
                None => match SECTIONS
                    .iter()
                    .find(|(_, k)| k.contains(&entry.key.as_str()))
                {
                    Some((other, _)) => format!("`{}` belongs in [{other}]", entry.key),
                    None => format!("the keys of {} are: {}", keys.shown, known.join(", ")),
                },
            };
            self.error(
                entry.key_span.clone(),
                format!("unknown key `{}` in {}", entry.key, keys.shown),
                hint,
            );
        }
    }

    // ----- typed values -------------------------------------------------------------------

    /// A text value; an empty INI value counts as absent.
    fn text(&mut self, keys: &mut Keys<'d>, key: &str) -> Option<(String, &'d Entry)> {
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

    fn required_text(
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

    fn boolean(&mut self, keys: &mut Keys<'d>, key: &str) -> Option<bool> {
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
    fn integer(
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
    fn choice<T: Copy>(
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
    fn existing_file(&mut self, keys: &mut Keys<'d>, key: &str) -> Option<PathBuf> {
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

    fn secret(&mut self, keys: &mut Keys<'d>, key: &str) -> Option<Secret> {
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
                    why,
                    "a secret is a literal value, env:NAME or file:PATH",
                );
                None
            }
        }
    }

    /// An https URL (plain http only for loopback hosts, i.e. local tests and the demo).
    fn endpoint(&mut self, keys: &mut Keys<'d>, key: &str) -> Option<Url> {
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

    // ----- sections -----------------------------------------------------------------------

    fn source_config(&mut self, keys: &mut Keys<'d>) -> Option<SourceConfig> {
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
        let tenant_id = self.tenant_id(keys);
        let client_id = self.client_id(keys);
        let credential = self.credential(keys);
        let (authority, graph_root) = self.cloud(keys);
        let filter = self.filter(keys);
        let page_size = self.integer(keys, "page_size", 1..=999).unwrap_or(999) as u16;
        let group = self.group(keys);
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
            max_attempts,
            request_timeout: std::time::Duration::from_secs(timeout as u64),
        })
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

    /// `secret`, or `certificate` with `private_key`: exactly one way to sign in.
    fn credential(&mut self, keys: &mut Keys<'d>) -> Option<Credential> {
        let given = (
            keys.given("secret"),
            keys.given("certificate"),
            keys.given("private_key"),
        );
        let credential = match given {
            (Some(_), Some(other), _) | (Some(_), None, Some(other)) => {
                self.error(
                    other.key_span.clone(),
                    format!("both `secret` and `{}` are set", other.key),
                    "use one way to sign in: remove `secret`, or `certificate` and `private_key`",
                );
                None
            }
            (Some(_), None, None) => self.secret(keys, "secret").map(Credential::Secret),
            (None, Some(_), Some(_)) => {
                let certificate = self.pem_file(keys, "certificate", "CERTIFICATE");
                let private_key = self.pem_file(keys, "private_key", "PRIVATE KEY");
                const ALGORITHMS: &[(&str, AssertionAlgorithm)] = &[
                    ("PS256", AssertionAlgorithm::Ps256),
                    ("RS256", AssertionAlgorithm::Rs256),
                ];
                let algorithm = match keys.given("assertion_algorithm") {
                    Some(_) => self.choice(keys, "assertion_algorithm", ALGORITHMS)?,
                    None => AssertionAlgorithm::Ps256,
                };
                Some(Credential::Certificate {
                    certificate: certificate?,
                    private_key: private_key?,
                    algorithm,
                })
            }
            (None, Some(_), None) | (None, None, Some(_)) => {
                let missing = if given.1.is_some() {
                    "private_key"
                } else {
                    "certificate"
                };
                self.missing(
                    keys,
                    missing,
                    "a certificate sign-in needs both `certificate` and `private_key` (PEM files)",
                );
                None
            }
            (None, None, None) => {
                self.missing(
                    keys,
                    "secret",
                    "add: secret = env:USERLOAD_SECRET (or certificate = … and private_key = …)",
                );
                None
            }
        };
        for key in [
            "secret",
            "certificate",
            "private_key",
            "assertion_algorithm",
        ] {
            keys.take(key);
        }
        credential
    }

    /// A PEM file that must contain a `-----BEGIN … {label}-----` block.
    fn pem_file(&mut self, keys: &mut Keys<'d>, key: &str, label: &str) -> Option<PathBuf> {
        let entry = keys.given(key)?;
        let path = self.existing_file(keys, key)?;
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                let message = format!("cannot read {}: {e}", path.display());
                self.error(entry.value_span.clone(), message, "");
                return None;
            }
        };
        let has_block = text.lines().any(|l| {
            l.starts_with("-----BEGIN") && l.trim_end().ends_with(&format!("{label}-----"))
        });
        if !has_block {
            self.error(
                entry.value_span.clone(),
                format!(
                    "{} holds no PEM {}",
                    path.display(),
                    label.to_ascii_lowercase()
                ),
                format!("expected a file with a -----BEGIN {label}----- block"),
            );
            return None;
        }
        Some(path)
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

    fn target_config(
        &mut self,
        keys: &mut Keys<'d>,
        source_keys: &mut Keys<'d>,
    ) -> Option<TargetConfig> {
        if keys.section.is_none() {
            self.error(
                0..0,
                "missing [target] section",
                "add [target] with type, url and token",
            );
            return None;
        }
        let kind = if keys.legacy {
            Some(TargetKind::Oomnitza)
        } else {
            let kinds =
                [TargetKind::Scim, TargetKind::Rest, TargetKind::Oomnitza].map(|k| (k.name(), k));
            let kind = self.choice(keys, "type", &kinds);
            if kind.is_none() && keys.given("type").is_none() {
                self.missing(keys, "type", "add: type = \"scim\" (or rest, oomnitza)");
            }
            kind
        };
        let url = if keys.given("url").is_some() {
            self.endpoint(keys, "url")
        } else {
            self.missing(keys, "url", "add: url = https://…");
            None
        };
        let token_key = if keys.legacy { "api_token" } else { "token" };
        let token = self.secret(keys, token_key);
        if keys.legacy {
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
        if kind == Some(TargetKind::Oomnitza) && token.is_none() {
            let hint = format!("add: {token_key} = env:OOMNITZA_TOKEN (an Oomnitza API token)");
            self.missing(keys, token_key, hint);
        }
        // The Oomnitza connector kept `sync_field` in [azureusers].
        let sync_field = match self.text(keys, "sync_field") {
            Some((field, _)) => Some(field),
            None if source_keys.legacy => self.text(source_keys, "sync_field").map(|(f, _)| f),
            None => None,
        };
        let kind = kind?;
        let auth = self.target_auth(keys, kind)?;
        let api = match (self.text(keys, "preset"), keys.given("templates").is_some()) {
            (Some((name, entry)), _) => match Preset::named(&name) {
                Some(preset) => Some(RestApi::Preset(preset)),
                None => {
                    let known: Vec<&str> = Preset::ALL.iter().map(|p| p.name()).collect();
                    self.error(
                        entry.value_span.clone(),
                        format!("unknown preset `{}`", shorten(&name, 40)),
                        format!("presets: {}", known.join(", ")),
                    );
                    None
                }
            },
            (None, true) => self
                .existing_file(keys, "templates")
                .map(RestApi::Templates),
            (None, false) => None,
        };
        if kind == TargetKind::Rest && api.is_none() {
            self.missing(
                keys,
                "preset",
                "add: preset = snipeit (or templates = my-api.toml)",
            );
        }
        let page_size = self.integer(keys, "page_size", 1..=1000).unwrap_or(100) as u32;
        let list = self.boolean(keys, "list").unwrap_or(true);
        let batch_size = self.integer(keys, "batch_size", 1..=10_000).unwrap_or(500) as usize;
        let max_attempts = self.integer(keys, "max_attempts", 1..=20).unwrap_or(6) as u32;
        let timeout = self.integer(keys, "request_timeout", 1..=600).unwrap_or(60);
        Some(TargetConfig {
            kind,
            url: url?,
            token,
            sync_field,
            auth,
            api,
            page_size,
            list,
            batch_size,
            max_attempts,
            request_timeout: std::time::Duration::from_secs(timeout as u64),
        })
    }

    /// `auth`: bearer (the default), basic (`username`, `password`) or header
    /// (`auth_header`). Oomnitza sends its token in `Authorization2`. Without a token, bearer
    /// and header requests carry no credentials (a test server); `check` shows whether the
    /// target accepts that.
    fn target_auth(&mut self, keys: &mut Keys<'d>, kind: TargetKind) -> Option<TargetAuth> {
        let choices = [("bearer", 0), ("basic", 1), ("header", 2)];
        let chosen = self.choice(keys, "auth", &choices);
        let chosen = chosen.unwrap_or(if kind == TargetKind::Oomnitza { 2 } else { 0 });
        let auth = match chosen {
            1 => {
                let username = self.text(keys, "username").map(|(u, _)| u);
                let password = self.secret(keys, "password");
                if username.is_none() {
                    self.missing(keys, "username", "add: username = … (auth = basic)");
                }
                if password.is_none() {
                    self.missing(keys, "password", "add: password = env:ASSET_PASSWORD");
                }
                TargetAuth::Basic {
                    username: username?,
                    password: password?,
                }
            }
            2 => {
                let header = self.text(keys, "auth_header").map(|(h, _)| h);
                TargetAuth::Header(header.unwrap_or_else(|| "Authorization2".to_string()))
            }
            _ => TargetAuth::Bearer,
        };
        Some(auth)
    }

    fn sync_config(
        &mut self,
        keys: &mut Keys<'d>,
        source_keys: &mut Keys<'d>,
        settings: &mut BTreeMap<String, serde_json::Value>,
    ) -> Option<SyncConfig> {
        let mapping_given = keys.given("mapping").is_some();
        let mapping = self.existing_file(keys, "mapping");
        let modes = [Mode::CreateUpdate, Mode::CreateOnly, Mode::UpdateOnly].map(|m| (m.name(), m));
        let mode = self
            .choice(keys, "mode", &modes)
            .unwrap_or(Mode::CreateUpdate);
        let deactivate = self.boolean(keys, "deactivate").unwrap_or(true);
        let max_deactivations = self.limit(keys).unwrap_or(DEFAULT_MAX_DEACTIVATIONS);
        let concurrency = self.integer(keys, "concurrency", 1..=64).unwrap_or(8) as usize;
        let rate_limit = self
            .integer(keys, "rate_limit", 1..=10_000)
            .map(|n| n as u32);
        let create_disabled = self.boolean(keys, "create_disabled").unwrap_or(false);
        let state = self.state_path(keys);
        for key in ["default_role", "default_position"] {
            // The Oomnitza connector kept these in [azureusers].
            let entry = keys
                .take(key)
                .or_else(|| source_keys.legacy.then(|| source_keys.take(key)).flatten());
            if let Some(value) = entry.and_then(|e| self.setting_value(e)) {
                settings.insert(key.to_string(), value);
            }
        }
        if mapping_given && mapping.is_none() {
            return None;
        }
        Some(SyncConfig {
            mapping,
            mode,
            deactivate,
            max_deactivations,
            state: state?,
            concurrency,
            rate_limit,
            create_disabled,
        })
    }

    /// `[notify]`: `webhook` (a secret) and `on`, a comma-separated list of statuses.
    fn notify_config(&mut self, keys: &mut Keys<'d>) -> NotifyConfig {
        let webhook = self.secret(keys, "webhook");
        let choices = [
            NotifyOn::Failed,
            NotifyOn::Limited,
            NotifyOn::Partial,
            NotifyOn::Ok,
        ];
        let on = match self.text(keys, "on") {
            None => DEFAULT_NOTIFY_ON.to_vec(),
            Some((text, entry)) => {
                let mut on = Vec::new();
                for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
                    match choices.iter().find(|c| c.name().eq_ignore_ascii_case(word)) {
                        Some(c) if !on.contains(c) => on.push(*c),
                        Some(_) => {}
                        None => {
                            let names = choices.map(NotifyOn::name);
                            let hint = did_you_mean(word, names.iter().copied(), || {
                                format!("choose from: {}", names.join(", "))
                            });
                            self.error(
                                entry.value_span.clone(),
                                format!("`{}` is not a run status `on` knows", shorten(word, 40)),
                                hint,
                            );
                        }
                    }
                }
                on
            }
        };
        NotifyConfig { webhook, on }
    }

    /// `max_deactivations`: a count (`25`) or a percentage (`"10%"`).
    fn limit(&mut self, keys: &mut Keys<'d>) -> Option<Limit> {
        let entry = keys.take("max_deactivations")?;
        let written = match &entry.value {
            Value::Int(n) => n.to_string(),
            Value::Text(t) => t.trim().to_string(),
            other => {
                self.error(
                    entry.value_span.clone(),
                    format!(
                        "`max_deactivations` must be a count or a percentage, not {}",
                        other.type_name()
                    ),
                    "e.g. max_deactivations = \"10%\" or max_deactivations = 25",
                );
                return None;
            }
        };
        let parsed = match written.strip_suffix('%') {
            Some(p) => p
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|p| (0.0..=100.0).contains(p))
                .map(Limit::Percent),
            None => written.parse::<u32>().ok().map(Limit::Count),
        };
        if parsed.is_none() {
            self.error(
                entry.value_span.clone(),
                format!(
                    "`max_deactivations` must be a count or a percentage, not `{}`",
                    shorten(&written, 40)
                ),
                "e.g. max_deactivations = \"10%\" or max_deactivations = 25",
            );
        }
        parsed
    }

    /// The state file: relative to the config's folder; its folder must exist.
    fn state_path(&mut self, keys: &mut Keys<'d>) -> Option<PathBuf> {
        let Some((text, entry)) = self.text(keys, "state") else {
            return Some(self.dir.join("userload.db"));
        };
        let path = self.dir.join(&text);
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            self.error(
                entry.value_span.clone(),
                format!(
                    "the folder for the state file does not exist: {}",
                    parent.display()
                ),
                "create it, or point `state` at an existing folder",
            );
            return None;
        }
        Some(path)
    }

    /// `[settings]`: any scalar the mapping files may read.
    fn settings(&mut self, settings: &mut BTreeMap<String, serde_json::Value>) {
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

/// A value quoted in a message, cut short so a long (or secret) value cannot flood the screen.
/// A hint for INI values that carry a trailing comment, which INI keeps as part of the value.
fn comment_hint(value: &str) -> Option<&'static str> {
    (value.contains(" #") || value.contains(" ;"))
        .then_some("comments must be on a line of their own in INI files")
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
pub fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}
