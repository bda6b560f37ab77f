//! The validated config: what a run may rely on once every offline check has passed.
//!
//! These types are the second of the config's two stages. Nothing here reads a file or
//! reports a problem; `check` builds them from a [`Document`](super::Document) only when the
//! document has no errors, so every value is already in range, every named file exists and
//! the filter is compiled.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use odata::Filter;
use url::Url;

use super::secret::Secret;
use crate::diag::SourceText;

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
    /// `[daemon]`: what `userload daemon` serves.
    pub daemon: DaemonConfig,
    /// Values mapping files may read with `setting = "…"`: `default_role`,
    /// `default_position`, and every key of `[settings]`.
    pub settings: BTreeMap<String, serde_json::Value>,
    /// `mapping.FIELD = {…}` lines of an Oomnitza `[azureusers]` section.
    pub legacy_mappings: Vec<LegacyMapping>,
}

impl Config {
    /// The values of every secret the config holds that is available now, for
    /// [`crate::secrets::remember`].
    pub fn secret_values(&self) -> Vec<String> {
        let mut secrets: Vec<&Secret> = [
            &self.target.token,
            &self.notify.webhook,
            &self.notify.ping_url,
        ]
        .into_iter()
        .flatten()
        .collect();
        match &self.source.credential {
            Credential::Secret(secret) => secrets.push(secret),
            Credential::ManagedIdentity {
                endpoint: ManagedIdentityEndpoint::AppService { header, .. },
                ..
            } => secrets.push(header),
            _ => {}
        }
        match &self.target.auth {
            TargetAuth::Basic { password, .. } => secrets.push(password),
            TargetAuth::OAuth2(oauth) => secrets.push(&oauth.client_secret),
            TargetAuth::Session {
                app_token,
                password,
                ..
            } => secrets.extend([app_token, password].into_iter().flatten()),
            TargetAuth::Bearer | TargetAuth::BasicToken | TargetAuth::Header(_) => {}
        }
        secrets
            .into_iter()
            .filter_map(|s| s.expose().ok())
            .map(str::to_owned)
            .collect()
    }
}

/// `[source]`: the Entra tenant, how to sign in to it, and how to read its users from Graph.
#[derive(Debug)]
pub struct SourceConfig {
    /// `enable = false` (Oomnitza's switch): runs skip the sync.
    pub enabled: bool,
    /// The directory (tenant) ID, a GUID, or one of the tenant's verified domains.
    pub tenant_id: String,
    /// The app registration's application (client) ID, a GUID. With a managed identity: the
    /// user-assigned identity's client ID, or empty for the system-assigned identity.
    pub client_id: String,
    /// How the app signs in: a client secret, a certificate, a federated token (workload
    /// identity) or a managed identity.
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
    /// Only members of this group (a GUID; transitive membership) are read, Graph listing
    /// the group's members. `None` when `groups` or `exclude_groups` is set: `group` is then
    /// the first of [`SourceConfig::groups`].
    pub group: Option<String>,
    /// `groups` (with `group` first, when both are set): only transitive members of any of
    /// these groups (display names or object IDs) are read; empty for no such limit.
    pub groups: Vec<String>,
    /// `exclude_groups`: transitive members of these groups (display names or object IDs)
    /// are left out of scope.
    pub exclude_groups: Vec<String>,
    /// `input_groups`: the groups (display names or object IDs, as written) whose
    /// transitive membership a mapping reads as `groups`.
    pub input_groups: Vec<String>,
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
    /// Workload identity federation (`credential = workload_identity`): the client assertion
    /// is a token another identity provider wrote to a file (Kubernetes projects a service
    /// account token there), read again for every token request since it rotates.
    WorkloadIdentity {
        /// `federated_token_file`, or `AZURE_FEDERATED_TOKEN_FILE` when the key is not set.
        token_file: PathBuf,
    },
    /// A managed identity of the Azure resource userload runs on
    /// (`credential = managed_identity`): Azure's local token endpoint signs in, no secret.
    ManagedIdentity {
        /// Where tokens are asked for.
        endpoint: ManagedIdentityEndpoint,
        /// A user-assigned identity's client ID (`client_id`); `None` uses the resource's
        /// system-assigned identity.
        identity: Option<String>,
    },
}

impl Credential {
    /// How userload signs in, in a few words safe to print: never a secret's value.
    pub fn describe(&self) -> String {
        match self {
            Credential::Secret(secret) => format!("client secret ({})", secret.origin()),
            Credential::Certificate { certificate, .. } => {
                format!("certificate {}", certificate.display())
            }
            Credential::WorkloadIdentity { token_file } => format!(
                "workload identity (federated token file {})",
                token_file.display()
            ),
            Credential::ManagedIdentity { endpoint, identity } => {
                let which = match identity {
                    Some(_) => "user-assigned managed identity",
                    None => "system-assigned managed identity",
                };
                match endpoint {
                    ManagedIdentityEndpoint::Imds(url) => {
                        format!("{which} (instance metadata endpoint {url})")
                    }
                    ManagedIdentityEndpoint::AppService { url, .. } => {
                        format!("{which} (App Service identity endpoint {url})")
                    }
                }
            }
        }
    }
}

/// The local endpoint a managed identity's tokens come from.
#[derive(Debug)]
pub enum ManagedIdentityEndpoint {
    /// The instance metadata service of Azure VMs and scale sets (`GET …?api-version=
    /// 2018-02-01` with `Metadata: true`); `managed_identity_endpoint` overrides its URL.
    Imds(Url),
    /// App Service, Functions and Container Apps: `IDENTITY_ENDPOINT`, asked with the
    /// `IDENTITY_HEADER` value in `X-IDENTITY-HEADER` (`api-version=2019-08-01`).
    AppService {
        /// `IDENTITY_ENDPOINT`.
        url: Url,
        /// `IDENTITY_HEADER`: a secret, rotated by the platform.
        header: Secret,
    },
}

/// The instance metadata service's token URL, used unless `managed_identity_endpoint` or
/// `IDENTITY_ENDPOINT` says otherwise.
pub const IMDS_TOKEN_URL: &str = "http://169.254.169.254/metadata/identity/oauth2/token";

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
    /// At most this many requests to the target (`rate_limit` in `[sync]`), in place of
    /// the API description's default; none if unset.
    pub rate_limit: Option<crate::http::Rate>,
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
    /// `basic` with `token` and no `username` or `password`: the token as the user name and
    /// `X` as the password, as Freshservice takes its API key.
    BasicToken,
    /// `header`: the token in a header of this name (`auth_header`), e.g. `X-API-Key`;
    /// Oomnitza's `Authorization2` by default for `type = oomnitza`.
    Header(String),
    /// `oauth2`: an access token of the client-credentials grant, fetched from `token_url`
    /// and sent as a bearer token.
    OAuth2(OAuth2Config),
    /// `session`: a session opened with the login request of the API description (which
    /// sends `token`, `app_token`, `username` and `password` as it says), its token sent on
    /// later requests and closed at the end of the run.
    Session {
        /// `app_token`: a second secret some APIs want besides the user's (GLPI's
        /// `App-Token`).
        app_token: Option<Secret>,
        /// `username`, for a login request that sends one.
        username: Option<String>,
        /// `password`, for a login request that sends one.
        password: Option<Secret>,
    },
}

/// `auth = oauth2`: the client-credentials grant of a target's own authorization server.
#[derive(Debug, Clone)]
pub struct OAuth2Config {
    /// `token_url`: where tokens are asked for.
    pub token_url: Url,
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`.
    pub client_secret: Secret,
    /// `scope`, when the server wants one.
    pub scope: Option<String>,
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
    /// GLPI's legacy REST API (`apirest.php`), GLPI 10 and 11.
    Glpi,
    /// Freshservice's requesters (API v2).
    Freshservice,
}

impl Preset {
    /// Every preset, in the order the docs list them.
    pub const ALL: [Preset; 3] = [Preset::Snipeit, Preset::Glpi, Preset::Freshservice];

    /// The `preset` value that selects it.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Snipeit => "snipeit",
            Preset::Glpi => "glpi",
            Preset::Freshservice => "freshservice",
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

/// Default maximum share of owned users one run may deactivate.
pub const DEFAULT_MAX_DEACTIVATIONS: Limit = Limit::Percent(10.0);

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
    /// Whether users disabled in Entra are created in the target (inactive); `false` (the
    /// default) leaves them out until they are enabled.
    pub create_disabled: bool,
    /// Whether the deactivation of a user who still holds assets in the target (or whose
    /// holdings cannot be read) is held back until they are returned; `false` by default.
    pub hold_leavers_with_assets: bool,
    /// How often a run is a full reconciliation (`full_every`): every user's fields compared
    /// with the target's live values, not only the hash of the last write. Zero means every
    /// run; seven days unless set.
    pub full_every: std::time::Duration,
    /// The local time of day from which a due full reconciliation starts (`full_at`), so
    /// that a daemon running every few minutes reconciles at night; any time if unset.
    pub full_at: Option<chrono::NaiveTime>,
    /// Whether runs between full reconciliations read only what changed in Entra (Graph's
    /// users delta) when they can; `true` unless set. `false` reads every user every run.
    pub delta: bool,
}

/// `[notify]`: a webhook told about runs that need an admin.
#[derive(Debug, Clone, Default)]
pub struct NotifyConfig {
    /// An incoming-webhook URL (Teams, Slack, or anything that takes their JSON); a secret,
    /// since such URLs carry their own credentials.
    pub webhook: Option<Secret>,
    /// The run statuses that are sent.
    pub on: Vec<NotifyOn>,
    /// A ping URL (healthchecks.io, Uptime Kuma): told when each run starts (`…/start`),
    /// succeeds (the URL itself) or fails (`…/fail`); a secret, like the webhook.
    pub ping_url: Option<Secret>,
}

/// `[daemon]`: what `userload daemon` serves besides running.
#[derive(Debug, Clone, Default)]
pub struct DaemonConfig {
    /// Where `/metrics` and `/healthz` are served; `None` (the default) serves nothing.
    pub metrics_address: Option<std::net::SocketAddr>,
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
