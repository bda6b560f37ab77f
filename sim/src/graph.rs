//! A Microsoft Graph and Entra token endpoint simulator on 127.0.0.1, for tests, benchmarks
//! and `userload demo`.
//!
//! It answers the requests userload makes the way the real services do, including their
//! refusals: the token endpoint checks tenant, app, secret (and its expiry), a certificate
//! assertion's signature and thumbprint, or a federated token's subject, audience and expiry,
//! with Entra's `AADSTS` error bodies; the two managed identity endpoints (a VM's instance
//! metadata service and App Service's identity endpoint) issue tokens for the identities
//! they know and refuse the others as Azure does; `/v1.0/users`
//! honours `$select` (and the default property set without it), `$top` limits, opaque
//! `$skiptoken`s, `$filter` (evaluated with the filter module), the advanced-query rules (400
//! without `ConsistencyLevel: eventual` and `$count=true`), `$expand=manager`; group members;
//! `/users/delta` with a change log. Faults can be injected (latency, throttling, server
//! errors, dropped connections, a page that always fails, short token lifetimes) and every
//! request is logged for tests to inspect.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::compact::{JsonObject, Raw};
use crate::server::{Loopback, broken, delay, lock, response};
use crate::tenant::{ChangeKind, Tenant};
use odata::{Filter, catalog};

/// The tenant id the simulator's default app lives in.
pub const TENANT_ID: &str = "7f3a2b1c-0d4e-4f56-8a9b-0c1d2e3f4a5b";
/// The default app's client id.
pub const CLIENT_ID: &str = "3c9e8d7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f";
/// The default app's client secret.
pub const SECRET: &str = "sim~Secret.Value_0123456789abcdefABCDEF";
/// The default app's secret *ID* (what admins paste by mistake).
pub const SECRET_ID: &str = "d4c3b2a1-9f8e-4d7c-8b6a-5f4e3d2c1b0a";

/// The client id of the simulated Azure resource's system-assigned managed identity.
pub const SYSTEM_IDENTITY: &str = "5e1d0c9b-8a7f-4e6d-9c5b-4a3f2e1d0c9b";
/// The client id of the user-assigned managed identity assigned to the simulated resource.
pub const USER_IDENTITY: &str = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";
/// The `IDENTITY_HEADER` value the App Service identity endpoint expects.
pub const IDENTITY_HEADER: &str = "sim-identity-header-0123456789abcdef";
/// The path of the instance metadata service's token endpoint.
pub const IMDS_PATH: &str = "/metadata/identity/oauth2/token";
/// The path of the App Service identity endpoint (what `IDENTITY_ENDPOINT` points to).
pub const APP_SERVICE_PATH: &str = "/msi/token";
/// The audience Entra expects in a federated token.
pub const FEDERATED_AUDIENCE: &str = "api://AzureADTokenExchange";
/// The subject of the default federated credential: a Kubernetes service account.
pub const FEDERATED_SUBJECT: &str = "system:serviceaccount:userload:userload";

/// The properties Graph returns when a request has no `$select`.
const DEFAULT_PROPERTIES: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "id",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
];

/// An app registration the token endpoint knows.
#[derive(Debug, Clone)]
pub struct App {
    /// The tenant it is registered in.
    pub tenant_id: String,
    /// Its application (client) id.
    pub client_id: String,
    /// Its client secret, if it has one.
    pub secret: Option<String>,
    /// Whether that secret has expired.
    pub secret_expired: bool,
    /// The DER of its uploaded certificate, if it has one.
    pub certificate: Option<Vec<u8>>,
    /// The application permissions granted (and consented).
    pub roles: Vec<String>,
    /// The federated credential that lets a token from another identity provider stand in
    /// for a secret, if the app has one.
    pub federated: Option<Federated>,
}

/// A federated identity credential of an app: the subject and audience a federated token
/// must carry. The token's signature and issuer are not checked (keep it simple).
#[derive(Debug, Clone)]
pub struct Federated {
    /// The `sub` claim expected, e.g. `system:serviceaccount:NAMESPACE:NAME`.
    pub subject: String,
    /// The `aud` claim expected (Entra's is [`FEDERATED_AUDIENCE`]).
    pub audience: String,
}

impl Default for Federated {
    fn default() -> Self {
        Federated {
            subject: FEDERATED_SUBJECT.to_owned(),
            audience: FEDERATED_AUDIENCE.to_owned(),
        }
    }
}

/// A federated token as a Kubernetes cluster projects it: a JWT with `iss`, `sub`, `aud`,
/// `iat` and `exp` (`lifetime_secs` from now; negative for one that has expired). Its
/// signature is filler: the simulator does not check it.
pub fn federated_token(subject: &str, audience: &str, lifetime_secs: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": "https://oidc.sim.example/issuer",
        "sub": subject,
        "aud": [audience],
        "iat": now,
        "nbf": now,
        "exp": now + lifetime_secs,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT","kid":"sim"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes()),
    )
}

/// A managed identity the simulated Azure resource has.
#[derive(Debug, Clone)]
pub struct ManagedIdentity {
    /// Its client id.
    pub client_id: String,
    /// Whether it is the resource's system-assigned identity (used when a request names none).
    pub system_assigned: bool,
    /// The application permissions granted to it.
    pub roles: Vec<String>,
}

impl ManagedIdentity {
    /// The identities of the default resource: a system-assigned one and a user-assigned one,
    /// both allowed to read users and group members.
    pub fn defaults() -> Vec<ManagedIdentity> {
        let roles = App::default().roles;
        vec![
            ManagedIdentity {
                client_id: SYSTEM_IDENTITY.to_owned(),
                system_assigned: true,
                roles: roles.clone(),
            },
            ManagedIdentity {
                client_id: USER_IDENTITY.to_owned(),
                system_assigned: false,
                roles,
            },
        ]
    }
}

impl App {
    /// Registers the certificate in a PEM file's text (as uploading it to the app
    /// registration does). Returns false when the text holds no certificate.
    pub fn upload_certificate(&mut self, pem: &[u8]) -> bool {
        self.certificate = certificate_der(pem);
        self.certificate.is_some()
    }
}

impl Default for App {
    fn default() -> Self {
        App {
            tenant_id: TENANT_ID.to_owned(),
            client_id: CLIENT_ID.to_owned(),
            secret: Some(SECRET.to_owned()),
            secret_expired: false,
            certificate: None,
            roles: vec![
                "User.Read.All".to_owned(),
                "GroupMember.Read.All".to_owned(),
            ],
            federated: None,
        }
    }
}

/// A fault to inject into one Graph request (token requests are never affected).
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// 429 with `Retry-After` (seconds, may be fractional).
    Throttle(f64),
    /// A server error (503, 504, 500…) with an optional `Retry-After`.
    ServerError(u16, Option<f64>),
    /// The connection breaks after the status line: the answer never completes.
    Drop,
    /// The answer is held back this long before it is given (longer than the client's
    /// timeout makes it time out).
    Stall(Duration),
    /// 401 `InvalidAuthenticationToken`, as if the token had been revoked.
    Unauthorized,
    /// This status, with an error message quoting the request's `Authorization` header
    /// back, as a careless proxy or service might.
    Echo(u16),
}

/// Holds a request back until something else has happened: whoever sees it happen opens it.
#[derive(Debug, Clone, Default)]
pub struct Gate(Arc<tokio::sync::watch::Sender<bool>>);

impl Gate {
    /// Lets the held requests through, and every later one.
    pub fn open(&self) {
        self.0.send_replace(true);
    }

    /// Whether it opened within `wait`.
    async fn opened(&self, wait: Duration) -> bool {
        let mut open = self.0.subscribe();
        tokio::time::timeout(wait, open.wait_for(|open| *open))
            .await
            .is_ok_and(|opened| opened.is_ok())
    }
}

/// What the simulator does besides answering correctly.
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// How long after it arrived every request is answered (the work of answering included).
    pub latency: Duration,
    /// The lifetime of issued access tokens, in whole seconds.
    pub token_lifetime_secs: u64,
    /// Faults by Graph request number (1 = the first Graph request, tokens not counted).
    pub faults: BTreeMap<u64, Fault>,
    /// A page of a users listing (0 = the first) that always fails with 503.
    pub failing_page: Option<u32>,
    /// A page of a users listing that is answered only once the gate opens (503 if it has
    /// not opened within a minute).
    pub held_page: Option<(u32, Gate)>,
    /// Delta pages hold at most this many entries (Graph's default is about 100–200).
    pub delta_page_size: usize,
    /// From this page of a users listing on, every page holds the same users again under a
    /// fresh `$skiptoken`: a service paging in a loop, which never ends by itself.
    pub endless_from: Option<u32>,
    /// The token endpoint refuses a wrong client secret with a code userload does not know
    /// (so its text is quoted), quoting the secret back.
    pub echo_secret: bool,
    /// Every users delta page is broken so.
    pub delta_fault: Option<DeltaFault>,
    /// The app lacks `AuditLog.Read.All`: a users listing that selects or filters on
    /// `signInActivity` is answered 403 `Authorization_RequestDenied`, as Graph does.
    pub sign_in_denied: bool,
}

/// How a broken users delta page is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaFault {
    /// 200 with a body that is not JSON (a proxy's error page).
    NotJson,
    /// The last page has neither a next link nor a delta link.
    NoDeltaLink,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            latency: Duration::ZERO,
            token_lifetime_secs: 3599,
            faults: BTreeMap::new(),
            failing_page: None,
            held_page: None,
            delta_page_size: 200,
            endless_from: None,
            echo_secret: false,
            delta_fault: None,
            sign_in_denied: false,
        }
    }
}

/// One request the simulator received.
#[derive(Debug, Clone)]
pub struct Logged {
    /// `GET`, `POST`.
    pub method: String,
    /// The path, e.g. `/v1.0/users`.
    pub path: String,
    /// Query parameters, decoded.
    pub query: BTreeMap<String, String>,
    /// The `ConsistencyLevel` header, if sent.
    pub consistency_level: Option<String>,
    /// The status answered (0 when the connection was dropped).
    pub status: u16,
    /// For token requests: the assertion's algorithm and thumbprint header
    /// (`PS256 x5t#S256`), when a certificate assertion was verified.
    pub assertion: Option<String>,
    /// For token requests: the federated token received, when it was accepted.
    pub federated_token: Option<String>,
    /// For managed identity requests: the `client_id` asked for, if any.
    pub identity: Option<String>,
}

impl Logged {
    /// Whether this was a token request (to Entra or a managed identity endpoint).
    pub fn is_token(&self) -> bool {
        self.path.ends_with("/oauth2/v2.0/token")
            || self.path == IMDS_PATH
            || self.path == APP_SERVICE_PATH
    }
}

/// Everything the simulator knows; tests change it through [`GraphSim::with`].
#[derive(Debug, Default)]
pub struct SimState {
    /// The directory.
    pub tenant: Tenant,
    /// Registered apps.
    pub apps: Vec<App>,
    /// Injected faults and timing.
    pub behaviour: Behaviour,
    /// Every request so far.
    pub log: Vec<Logged>,
    /// The managed identities of the simulated Azure resource.
    pub identities: Vec<ManagedIdentity>,
    tokens: HashMap<String, (Instant, Vec<String>)>,
    graph_requests: u64,
    delta_generation: u64,
}

impl SimState {
    /// Makes every delta link issued so far unusable (as after Graph's 7-day limit).
    pub fn expire_delta_links(&mut self) {
        self.delta_generation += 1;
    }

    /// Revokes every access token issued so far.
    pub fn revoke_tokens(&mut self) {
        self.tokens.clear();
    }

    /// The access tokens issued and not revoked (to check that none is ever printed).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.tokens.keys().cloned().collect()
    }

    /// The Graph (non-token) requests so far.
    pub fn graph_log(&self) -> Vec<&Logged> {
        self.log.iter().filter(|l| !l.is_token()).collect()
    }

    /// The token requests so far.
    pub fn token_log(&self) -> Vec<&Logged> {
        self.log.iter().filter(|l| l.is_token()).collect()
    }
}

/// A running simulator; stops when dropped.
#[derive(Debug)]
pub struct GraphSim(Loopback<SimState>);

impl GraphSim {
    /// Starts a simulator for `tenant` with the default app, on a free loopback port, in its
    /// own thread (so it works from any test, sync or async).
    pub fn start(tenant: Tenant) -> std::io::Result<GraphSim> {
        let state = |_| SimState {
            tenant,
            apps: vec![App::default()],
            identities: ManagedIdentity::defaults(),
            ..SimState::default()
        };
        // Graph answers without Nagle delays, and so does the loopback server.
        let app = |state, addr| {
            axum::Router::new()
                .fallback(handle)
                .with_state(Shared { state, addr })
        };
        Loopback::serve("graph-sim", 2, state, app).map(GraphSim)
    }

    /// `http://127.0.0.1:PORT`: both the authority and the Graph root.
    pub fn url(&self) -> String {
        self.0.url()
    }

    /// Runs `f` with the simulator's state locked: change the tenant, the apps, the
    /// behaviour, or read the request log.
    pub fn with<T>(&self, f: impl FnOnce(&mut SimState) -> T) -> T {
        self.0.with(f)
    }
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<SimState>>,
    addr: SocketAddr,
}

/// What a handler decided, before logging.
struct Answer {
    status: StatusCode,
    headers: Vec<(&'static str, String)>,
    body: Value,
    /// For collections: the users, streamed after the annotations in `body`, as Graph
    /// does, so the next page's link arrives before the users.
    value: Option<Vec<Projected>>,
    drop: bool,
    /// Whether `body` is a string sent as it is (not JSON at all).
    raw: bool,
    verified: Option<Verified>,
}

/// What a token request proved itself with, for the log.
enum Verified {
    /// A certificate assertion: its algorithm and thumbprint header.
    Certificate(String),
    /// A federated token, as received.
    Federated(String),
}

impl Answer {
    fn json(status: StatusCode, body: Value) -> Self {
        Answer {
            status,
            headers: Vec::new(),
            body,
            value: None,
            drop: false,
            raw: false,
            verified: None,
        }
    }

    fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

async fn handle(State(shared): State<Shared>, request: Request) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let query: BTreeMap<String, String> =
        url::form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let headers = request.headers().clone();
    let query_identity = query.get("client_id").cloned();
    let consistency_level = headers
        .get("consistencylevel")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let answer = if path.ends_with("/oauth2/v2.0/token") && method == "POST" {
        let body = axum::body::to_bytes(request.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        token(&shared, &path, &body)
    } else if method == "GET" && (path == IMDS_PATH || path == APP_SERVICE_PATH) {
        managed_identity(&shared, &path, &query, &headers)
    } else {
        graph(&shared, &method, &path, &query, &headers).await
    };
    lock(&shared.state).log.push(Logged {
        method,
        path,
        query,
        consistency_level,
        status: if answer.drop {
            0
        } else {
            answer.status.as_u16()
        },
        assertion: match &answer.verified {
            Some(Verified::Certificate(how)) => Some(how.clone()),
            _ => None,
        },
        federated_token: match &answer.verified {
            Some(Verified::Federated(token)) => Some(token.clone()),
            _ => None,
        },
        identity: query_identity,
    });
    respond(answer)
}

fn respond(answer: Answer) -> Response {
    let body = if answer.drop {
        broken(b"{\"value\":[")
    } else if let Some(value) = answer.value {
        let head = answer.body.to_string();
        let head = format!("{},\"value\":[", head.trim_end_matches('}'));
        // The annotations go out at once, the users in slices; between slices the stream
        // yields, so each slice is sent as soon as it is written, as Graph streams pages.
        let users = std::sync::Arc::new(value);
        let slices = futures_util::stream::unfold(0usize, move |start| {
            let users = std::sync::Arc::clone(&users);
            async move {
                if start > users.len() {
                    return None;
                }
                tokio::task::yield_now().await;
                let end = (start + 100).min(users.len());
                let mut chunk = Vec::with_capacity(128 * 1024);
                let mut members = Vec::new();
                for (i, user) in users[start..end].iter().enumerate() {
                    if start + i > 0 {
                        chunk.push(b',');
                    }
                    user.write(&mut chunk, &mut members);
                }
                if end == users.len() {
                    chunk.extend_from_slice(b"]}");
                }
                Some((
                    Ok::<_, std::io::Error>(Bytes::from(chunk)),
                    end + usize::from(end == users.len()),
                ))
            }
        });
        let head = futures_util::stream::once(async move { Ok(Bytes::from(head)) });
        Body::from_stream(futures_util::StreamExt::chain(head, slices))
    } else if let (true, Value::String(text)) = (answer.raw, &answer.body) {
        Body::from(text.clone())
    } else {
        Body::from(answer.body.to_string())
    };
    response(answer.status, body, "application/json", answer.headers)
}

// ----- the token endpoint ------------------------------------------------------------------

fn token(shared: &Shared, path: &str, body: &[u8]) -> Answer {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let tenant = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut state = lock(&shared.state);
    let Some(_) = state
        .apps
        .iter()
        .find(|a| a.tenant_id.eq_ignore_ascii_case(&tenant))
    else {
        return aadsts(
            400,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID \
                 and are signing into the correct cloud."
            ),
        );
    };
    if field("grant_type") != "client_credentials" {
        return aadsts(
            400,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    let client_id = field("client_id");
    let Some(app) = state
        .apps
        .iter()
        .find(|a| a.tenant_id.eq_ignore_ascii_case(&tenant) && a.client_id == client_id)
        .cloned()
    else {
        return aadsts(
            400,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory \
                 '{tenant}'."
            ),
        );
    };
    if !field("scope").ends_with("/.default") {
        return aadsts(
            400,
            "invalid_scope",
            1002012,
            "The provided value for scope is not valid.",
        );
    }
    let mut verified = None;
    let assertion = field("client_assertion");
    let thumbprinted = jsonwebtoken::decode_header(assertion)
        .is_ok_and(|h| h.x5t.is_some() || h.x5t_s256.is_some());
    // An assertion naming no certificate is a federated token (when the app has no
    // certificate that it could be a botched assertion for).
    let federated = app.federated.is_some() || app.certificate.is_none();
    if !assertion.is_empty() && !thumbprinted && federated {
        if let Err(answer) = verify_federated(&app, assertion) {
            return answer;
        }
        verified = Some(Verified::Federated(assertion.to_owned()));
    } else if !assertion.is_empty() {
        let audience = format!("http://{}{path}", shared.addr);
        match verify_assertion(&app, assertion, &audience) {
            Ok(how) => verified = Some(Verified::Certificate(how)),
            Err(answer) => return answer,
        }
    } else if state.behaviour.echo_secret && app.secret.as_deref() != Some(field("client_secret")) {
        return aadsts(
            401,
            "invalid_client",
            7000299,
            &format!(
                "The client secret '{}' was rejected.",
                field("client_secret")
            ),
        );
    } else if app.secret.as_deref() != Some(field("client_secret"))
        || field("client_secret").is_empty()
    {
        return aadsts(
            401,
            "invalid_client",
            7000215,
            &format!(
                "Invalid client secret provided. Ensure the secret being sent in the request \
                 is the client secret value, not the client secret ID, for a secret added to \
                 app '{client_id}'."
            ),
        );
    } else if app.secret_expired {
        return aadsts(
            401,
            "invalid_client",
            7000222,
            &format!("The provided client secret keys for app '{client_id}' are expired."),
        );
    }
    let (access, lifetime) = issue(&mut state, &tenant, client_id, &app.roles);
    let mut answer = Answer::json(
        StatusCode::OK,
        json!({
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access,
        }),
    );
    answer.verified = verified;
    answer
}

/// Issues an access token for Graph to `client_id` in `tenant` with `roles`; returns it and
/// its lifetime in seconds.
fn issue(state: &mut SimState, tenant: &str, client_id: &str, roles: &[String]) -> (String, u64) {
    let lifetime = state.behaviour.token_lifetime_secs.max(1);
    let payload = json!({
        "aud": "https://graph.microsoft.com",
        "tid": tenant,
        "appid": client_id,
        "roles": roles,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    let access = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes()),
    );
    state.tokens.insert(
        access.clone(),
        (
            Instant::now() + Duration::from_secs(lifetime),
            roles.to_vec(),
        ),
    );
    (access, lifetime)
}

/// Checks a federated token against the app's federated credential: its subject and audience
/// must match and it must not have expired. The signature is not checked.
fn verify_federated(app: &App, token: &str) -> Result<(), Answer> {
    let Some(expected) = &app.federated else {
        return Err(aadsts(
            401,
            "invalid_client",
            70021,
            "No matching federated identity record found for presented assertion.",
        ));
    };
    let claims: Value = token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| {
            aadsts(
                400,
                "invalid_request",
                50027,
                "JWT token is invalid or malformed.",
            )
        })?;
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let subject = text(&claims["sub"]);
    let audiences: Vec<String> = match &claims["aud"] {
        Value::Array(list) => list.iter().map(text).collect(),
        other => vec![text(other)],
    };
    if subject != expected.subject || !audiences.contains(&expected.audience) {
        return Err(aadsts(
            400,
            "invalid_client",
            70021,
            &format!(
                "No matching federated identity record found for presented assertion. \
                 Assertion Issuer: '{}'. Assertion Subject: '{subject}'. Assertion Audience: \
                 '{}'.",
                text(&claims["iss"]),
                audiences.join(",")
            ),
        ));
    }
    let exp = claims["exp"].as_i64().unwrap_or_default();
    if exp <= chrono::Utc::now().timestamp() {
        return Err(aadsts(
            400,
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range.",
        ));
    }
    Ok(())
}

/// The managed identity endpoints: the instance metadata service (`Metadata: true`,
/// `api-version=2018-02-01`) and App Service's (`X-IDENTITY-HEADER`,
/// `api-version=2019-08-01`). Both take `resource` and an optional `client_id` naming a
/// user-assigned identity, and answer with their own error shapes.
fn managed_identity(
    shared: &Shared,
    path: &str,
    query: &BTreeMap<String, String>,
    headers: &HeaderMap,
) -> Answer {
    let imds = path == IMDS_PATH;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    // The instance metadata service's errors: `error` and `error_description`.
    let imds_error = |status: StatusCode, description: &str| {
        Answer::json(
            status,
            json!({"error": "invalid_request", "error_description": description}),
        )
    };
    // App Service's errors: `statusCode`, `message` and `correlationId`.
    let app_service_error = |status: StatusCode, message: &str| {
        Answer::json(
            status,
            json!({
                "statusCode": status.as_u16(),
                "message": message,
                "correlationId": uuid::Uuid::new_v4().to_string(),
            }),
        )
    };
    let version = query.get("api-version").map(String::as_str);
    if imds {
        if !header("metadata").eq_ignore_ascii_case("true") {
            return imds_error(
                StatusCode::BAD_REQUEST,
                "Required metadata header not specified",
            );
        }
        if version.is_none() {
            return imds_error(
                StatusCode::BAD_REQUEST,
                "Required query variable 'api-version' is missing",
            );
        }
    } else {
        if header("x-identity-header") != IDENTITY_HEADER {
            return app_service_error(
                StatusCode::UNAUTHORIZED,
                "The X-IDENTITY-HEADER header is missing or invalid.",
            );
        }
        if version != Some("2019-08-01") {
            return app_service_error(
                StatusCode::BAD_REQUEST,
                "The api-version is missing or not supported; use 2019-08-01.",
            );
        }
    }
    let Some(resource) = query.get("resource").filter(|r| !r.is_empty()).cloned() else {
        return if imds {
            imds_error(
                StatusCode::BAD_REQUEST,
                "Required query variable 'resource' is missing",
            )
        } else {
            app_service_error(
                StatusCode::BAD_REQUEST,
                "The resource parameter is missing.",
            )
        };
    };
    let mut state = lock(&shared.state);
    let wanted = query.get("client_id");
    let Some(identity) = state
        .identities
        .iter()
        .find(|i| match wanted {
            Some(id) => i.client_id.eq_ignore_ascii_case(id),
            None => i.system_assigned,
        })
        .cloned()
    else {
        return if imds {
            imds_error(StatusCode::BAD_REQUEST, "Identity not found")
        } else {
            app_service_error(
                StatusCode::BAD_REQUEST,
                "Unable to load the proper Managed Identity.",
            )
        };
    };
    let (access, lifetime) = issue(&mut state, TENANT_ID, &identity.client_id, &identity.roles);
    let now = chrono::Utc::now().timestamp();
    let expires_on = (now + lifetime as i64).to_string();
    // Both answer numbers as strings; only the metadata service sends `expires_in`.
    let body = if imds {
        json!({
            "access_token": access,
            "client_id": identity.client_id,
            "expires_in": lifetime.to_string(),
            "expires_on": expires_on,
            "ext_expires_in": lifetime.to_string(),
            "not_before": now.to_string(),
            "resource": resource,
            "token_type": "Bearer",
        })
    } else {
        json!({
            "access_token": access,
            "expires_on": expires_on,
            "resource": resource,
            "token_type": "Bearer",
            "client_id": identity.client_id,
        })
    };
    Answer::json(StatusCode::OK, body)
}

/// The DER of the first certificate in a PEM file, as Entra keeps an uploaded certificate.
fn certificate_der(pem_bytes: &[u8]) -> Option<Vec<u8>> {
    let blocks = pem::parse_many(pem_bytes).ok()?;
    let certificate = blocks.into_iter().find(|b| b.tag() == "CERTIFICATE")?;
    Some(certificate.into_contents())
}

/// A certificate's thumbprint as an assertion header carries it: base64url of a digest of
/// the DER (SHA-256 for `x5t#S256`, SHA-1 for the older `x5t`).
fn thumbprint_of(der: &[u8], algorithm: &'static aws_lc_rs::digest::Algorithm) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(algorithm, der))
}

/// Checks a client assertion as Entra does: thumbprint of an uploaded certificate, signature
/// by its key, audience, issuer, subject and time. Returns the algorithm and thumbprint kind.
fn verify_assertion(app: &App, assertion: &str, audience: &str) -> Result<String, Answer> {
    let failed = |code, message: &str| aadsts(401, "invalid_client", code, message);
    let Some(der) = &app.certificate else {
        return Err(failed(
            700027,
            "Client assertion contains an invalid signature. No certificate is registered for the app.",
        ));
    };
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| failed(700027, "Client assertion is not a valid JWT."))?;
    let (thumbprint, kind) = match (&header.x5t_s256, &header.x5t) {
        (Some(t), _) => (t.clone(), "x5t#S256"),
        (None, Some(t)) => (t.clone(), "x5t"),
        _ => {
            return Err(failed(
                700027,
                "Client assertion has no certificate thumbprint.",
            ));
        }
    };
    let expected = match kind {
        "x5t#S256" => thumbprint_of(der, &aws_lc_rs::digest::SHA256),
        _ => thumbprint_of(der, &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY),
    };
    if thumbprint != expected {
        return Err(failed(
            700027,
            "Client assertion failed signature validation. The key was not found: no \
             certificate with this thumbprint is registered for the app.",
        ));
    }
    let Some(public_key) = rsa_public_key(der) else {
        return Err(failed(
            700027,
            "The registered certificate holds no RSA key.",
        ));
    };
    let key = jsonwebtoken::DecodingKey::from_rsa_der(&public_key);
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.algorithms = vec![
        jsonwebtoken::Algorithm::PS256,
        jsonwebtoken::Algorithm::RS256,
    ];
    validation.set_audience(&[audience]);
    validation.set_issuer(&[&app.client_id]);
    validation.sub = Some(app.client_id.clone());
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
    match jsonwebtoken::decode::<Value>(assertion, &key, &validation) {
        Ok(data) if data.claims["jti"].as_str().is_some_and(|j| !j.is_empty()) => {
            Ok(format!("{:?} {kind}", header.alg))
        }
        Ok(_) => Err(failed(700027, "Client assertion has no jti claim.")),
        Err(e) => match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature
            | jsonwebtoken::errors::ErrorKind::ImmatureSignature => Err(failed(
                700024,
                "Client assertion is not within its valid time range.",
            )),
            jsonwebtoken::errors::ErrorKind::InvalidAudience => Err(failed(
                700021,
                "Client assertion audience claim does not match Realm issuer.",
            )),
            _ => Err(failed(
                700027,
                "Client assertion failed signature validation.",
            )),
        },
    }
}

/// The PKCS#1 RSA public key inside an X.509 certificate: tbsCertificate's
/// subjectPublicKeyInfo, whose BIT STRING holds it.
fn rsa_public_key(certificate: &[u8]) -> Option<Vec<u8>> {
    /// Splits one DER element off `input`: (tag, content, rest).
    fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (length, rest) = if first < 0x80 {
            (first as usize, rest)
        } else {
            let count = (first & 0x7f) as usize;
            if count == 0 || count > 4 || rest.len() < count {
                return None;
            }
            let length = rest[..count]
                .iter()
                .fold(0usize, |n, b| (n << 8) | *b as usize);
            (length, &rest[count..])
        };
        (rest.len() >= length).then(|| (tag, &rest[..length], &rest[length..]))
    }
    let (_, certificate, _) = element(certificate)?;
    let (_, mut tbs, _) = element(certificate)?;
    let mut fields = Vec::new();
    while !tbs.is_empty() {
        let (tag, content, rest) = element(tbs)?;
        if tag != 0xa0 {
            fields.push(content);
        }
        tbs = rest;
    }
    // serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
    let spki = fields.get(5)?;
    let (_, _, rest) = element(spki)?;
    let (tag, bits, _) = element(rest)?;
    (tag == 0x03 && bits.first() == Some(&0)).then(|| bits[1..].to_vec())
}

fn aadsts(status: u16, error: &str, code: u64, message: &str) -> Answer {
    let trace = uuid::Uuid::new_v4().to_string();
    let correlation = uuid::Uuid::new_v4().to_string();
    Answer::json(
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        json!({
            "error": error,
            "error_description": format!(
                "AADSTS{code}: {message}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {}",
                chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ")
            ),
            "error_codes": [code],
            "timestamp": chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string(),
            "trace_id": trace,
            "correlation_id": correlation,
        }),
    )
}

// ----- Graph ----------------------------------------------------------------------------------

/// Graph's error envelope.
fn graph_error(status: u16, code: &str, message: &str) -> Answer {
    let request_id = uuid::Uuid::new_v4().to_string();
    Answer::json(
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        json!({
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
                    "request-id": request_id,
                    "client-request-id": request_id,
                }
            }
        }),
    )
    .header("request-id", request_id)
}

/// A Graph request: answered at once, sent when the simulated latency since its arrival is
/// up (so the work of building a page is part of the latency, as on a real server).
async fn graph(
    shared: &Shared,
    method: &str,
    path: &str,
    query: &BTreeMap<String, String>,
    headers: &HeaderMap,
) -> Answer {
    let arrived = Instant::now();
    let (fault, latency, held) = {
        let mut state = lock(&shared.state);
        state.graph_requests += 1;
        let n = state.graph_requests;
        (
            state.behaviour.faults.remove(&n),
            state.behaviour.latency,
            state.behaviour.held_page.clone(),
        )
    };
    if let Some((page, gate)) = held
        && path.ends_with("/users")
        && listed_page(query) == page
        && !gate.opened(Duration::from_secs(60)).await
    {
        return graph_error(
            503,
            "serviceNotAvailable",
            "The held page was never let through.",
        );
    }
    let answer = graph_answer(shared, fault, method, path, query, headers).await;
    delay(arrived, latency).await;
    answer
}

async fn graph_answer(
    shared: &Shared,
    fault: Option<Fault>,
    method: &str,
    path: &str,
    query: &BTreeMap<String, String>,
    headers: &HeaderMap,
) -> Answer {
    match fault {
        Some(Fault::Throttle(seconds)) => {
            return graph_error(429, "TooManyRequests", "Too many requests.")
                .header("retry-after", seconds.to_string());
        }
        Some(Fault::ServerError(status, retry_after)) => {
            let answer = graph_error(status, "serviceNotAvailable", "Service unavailable.");
            return match retry_after {
                Some(s) => answer.header("retry-after", s.to_string()),
                None => answer,
            };
        }
        Some(Fault::Drop) => {
            let mut answer = Answer::json(StatusCode::OK, Value::Null);
            answer.drop = true;
            return answer;
        }
        Some(Fault::Stall(wait)) => tokio::time::sleep(wait).await,
        Some(Fault::Unauthorized) => return expired_token(),
        Some(Fault::Echo(status)) => {
            let sent = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            return graph_error(
                status,
                "Request_Rejected",
                &format!("Request refused. Authorization: {sent}"),
            );
        }
        None => {}
    }
    let state = &mut *lock(&shared.state);
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let Some((expires, roles)) = state.tokens.get(bearer) else {
        return graph_error(
            401,
            "InvalidAuthenticationToken",
            "Access token is empty or not valid.",
        );
    };
    if *expires <= Instant::now() {
        return expired_token();
    }
    let has = |wanted: &[&str]| roles.iter().any(|r| wanted.contains(&r.as_str()));
    if method != "GET" {
        return graph_error(405, "Request_BadRequest", "Only GET is simulated.");
    }
    let reads_users = has(&["User.Read.All", "User.ReadWrite.All", "Directory.Read.All"]);
    let base = format!("http://{}{path}", shared.addr);
    let advanced_sent = headers
        .get("consistencylevel")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("eventual"));
    let listing = Listing {
        base: &base,
        query,
        advanced_sent,
    };
    let reads_groups = has(&[
        "GroupMember.Read.All",
        "Group.Read.All",
        "Directory.Read.All",
    ]);
    if path == "/v1.0/users" {
        if !reads_users {
            return denied();
        }
        if state.behaviour.sign_in_denied && reads_sign_in(query) {
            return denied();
        }
        return listing.answer(state, None);
    }
    if path == "/v1.0/groups" {
        if !reads_groups {
            return denied();
        }
        return groups_named(state, query);
    }
    if path == "/v1.0/subscribedSkus" {
        if !has(&[
            "Organization.Read.All",
            "LicenseAssignment.Read.All",
            "Directory.Read.All",
        ]) {
            return denied();
        }
        let skus: Vec<Value> = catalog_skus()
            .map(|(id, part)| json!({"skuId": id, "skuPartNumber": part, "capabilityStatus": "Enabled"}))
            .collect();
        return Answer::json(
            StatusCode::OK,
            json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscribedSkus", "value": skus}),
        );
    }
    if path == "/v1.0/users/delta" {
        if !reads_users {
            return denied();
        }
        return delta(state, &base, query);
    }
    if let Some(rest) = path.strip_prefix("/v1.0/groups/")
        && let Some(group) = rest.strip_suffix("/transitiveMembers/microsoft.graph.user")
    {
        if !reads_groups || !reads_users {
            return denied();
        }
        let Some(members) = state.tenant.members(group) else {
            return graph_error(
                404,
                "Request_ResourceNotFound",
                &format!(
                    "Resource '{group}' does not exist or one of its queried reference-property objects are not present."
                ),
            );
        };
        return listing.answer(state, Some(members));
    }
    graph_error(404, "UnknownError", "Resource not found for the segment.")
}

/// Whether a users listing selects or filters on `signInActivity`.
fn reads_sign_in(query: &BTreeMap<String, String>) -> bool {
    ["$select", "$filter"].iter().any(|k| {
        query
            .get(*k)
            .is_some_and(|v| v.to_ascii_lowercase().contains("signinactivity"))
    })
}

/// The tenant's subscriptions.
fn catalog_skus() -> impl Iterator<Item = (&'static str, &'static str)> {
    crate::tenant::SKUS.iter().copied()
}

/// `GET /groups?$filter=displayName eq '…'`: the groups of that name (only that filter is
/// simulated).
fn groups_named(state: &SimState, query: &BTreeMap<String, String>) -> Answer {
    let filter = query.get("$filter").map(String::as_str).unwrap_or_default();
    let Some(name) = filter
        .trim()
        .strip_prefix("displayName eq '")
        .and_then(|rest| rest.strip_suffix('\''))
    else {
        return graph_error(
            400,
            "Request_UnsupportedQuery",
            "Only displayName eq '…' is simulated for groups.",
        );
    };
    let name = name.replace("''", "'");
    let groups: Vec<Value> = state
        .tenant
        .groups_named(&name)
        .into_iter()
        .map(|id| {
            let display = state.tenant.group_name(&id).unwrap_or_default().to_owned();
            json!({"id": id, "displayName": display})
        })
        .collect();
    Answer::json(
        StatusCode::OK,
        json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#groups", "value": groups}),
    )
}

fn expired_token() -> Answer {
    graph_error(
        401,
        "InvalidAuthenticationToken",
        "Lifetime validation failed, the token is expired.",
    )
}

fn denied() -> Answer {
    graph_error(
        403,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
}

/// A `GET` of a user collection.
struct Listing<'a> {
    base: &'a str,
    query: &'a BTreeMap<String, String>,
    advanced_sent: bool,
}

impl Listing<'_> {
    fn answer(
        &self,
        state: &SimState,
        members: Option<std::collections::BTreeSet<String>>,
    ) -> Answer {
        let q = |name: &str| self.query.get(name).map(String::as_str);
        let top = match q("$top").map(str::parse::<u32>) {
            None => 100,
            Some(Ok(n)) if (1..=999).contains(&n) => n as usize,
            Some(_) => {
                return graph_error(
                    400,
                    "Request_UnsupportedQuery",
                    &format!(
                        "Invalid page size specified: '{}'. Must be between 1 and 999 inclusive.",
                        q("$top").unwrap_or_default()
                    ),
                );
            }
        };
        let select = match selection(q("$select")) {
            Ok(s) => s,
            Err(answer) => return answer,
        };
        let filter = match q("$filter").map(Filter::compile) {
            None | Some(Ok(None)) => None,
            Some(Ok(Some(f))) => Some(f),
            Some(Err(errors)) => return filter_refusal(&errors[0].message),
        };
        let count = q("$count") == Some("true");
        let needs_advanced = filter.as_ref().is_some_and(Filter::needs_advanced_query)
            || (members.is_some() && filter.is_some());
        if count && !self.advanced_sent {
            return graph_error(
                400,
                "Request_BadRequest",
                "$count is not currently supported.",
            );
        }
        if needs_advanced && !(self.advanced_sent && count) {
            return graph_error(400, "Request_UnsupportedQuery", "Unsupported Query.");
        }
        let expand = match q("$expand").map(manager_expansion) {
            None => None,
            Some(Ok(props)) => Some(props),
            Some(Err(answer)) => return answer,
        };
        if expand.is_some() && self.advanced_sent {
            return graph_error(
                400,
                "Request_UnsupportedQuery",
                "The expand query is not supported with advanced query parameters.",
            );
        }
        let (page, after) = match q("$skiptoken").map(decode_skiptoken) {
            None => (0, None),
            Some(Some((page, after))) => (page, Some(after)),
            Some(None) => return graph_error(400, "Request_BadRequest", "Invalid $skiptoken."),
        };
        if state.behaviour.failing_page == Some(page) {
            return graph_error(503, "serviceNotAvailable", "Service unavailable.");
        }
        // Only a filter needs the user parsed.
        let in_scope = |id: &str, user: &JsonObject| {
            members.as_ref().is_none_or(|m| m.contains(id))
                && filter.as_ref().is_none_or(|f| f.matches(&user.to_value()))
        };
        let start = match &after {
            Some(id) => std::ops::Bound::Excluded(id.clone()),
            None => std::ops::Bound::Unbounded,
        };
        // A filter on ids alone names its users: they are taken from the index (in id
        // order, as a listing), not found by reading every user.
        let mut chosen: Vec<(&String, &JsonObject)> = match q("$filter").and_then(ids_named) {
            Some(ids) => ids
                .iter()
                .filter(|id| match &start {
                    std::ops::Bound::Excluded(after) => *id > after,
                    _ => true,
                })
                .filter_map(|id| state.tenant.users.get_key_value(id))
                .filter(|(id, u)| in_scope(id, u))
                .take(top + 1)
                .collect(),
            None => state
                .tenant
                .users
                .range((start, std::ops::Bound::Unbounded))
                .filter(|(id, u)| in_scope(id, u))
                .take(top + 1)
                .collect(),
        };
        let more = chosen.len() > top;
        chosen.truncate(top);
        let select: Option<Arc<[String]>> = select.map(Into::into);
        let value: Vec<Projected> = chosen
            .iter()
            .map(|(id, user)| Projected {
                user: (*user).clone(),
                select: select.clone(),
                manager: expand.as_ref().and_then(|props| {
                    let manager = state
                        .tenant
                        .manager_of(id)
                        .and_then(|m| state.tenant.stored(m))?;
                    let mut m = project(manager, Some(props));
                    m["@odata.type"] = "#microsoft.graph.user".into();
                    Some(m)
                }),
            })
            .collect();
        let mut body = json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users",
        });
        if count {
            let users = state.tenant.users.iter();
            body["@odata.count"] = users.filter(|(id, u)| in_scope(id, u)).count().into();
        }
        if more && let Some((last, _)) = chosen.last() {
            let looping = state
                .behaviour
                .endless_from
                .is_some_and(|from| page >= from);
            let next_after = match &after {
                Some(after) if looping => after.as_str(),
                _ => last.as_str(),
            };
            let token = encode_skiptoken(page + 1, next_after);
            body["@odata.nextLink"] = next_link(self.base, self.query, "$skiptoken", &token).into();
        }
        let mut answer = Answer::json(StatusCode::OK, body);
        answer.value = Some(value);
        answer
    }
}

/// `$select`'s names checked against the catalogue; `None` without `$select`.
fn selection(select: Option<&str>) -> Result<Option<Vec<String>>, Answer> {
    let Some(select) = select else {
        return Ok(None);
    };
    let mut names = Vec::new();
    for name in select.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match catalog::user_property(name) {
            Some((_, canonical)) => names.push(canonical.into_owned()),
            None if catalog::is_extension_name(name) => names.push(name.to_owned()),
            None => {
                return Err(graph_error(
                    400,
                    "Request_BadRequest",
                    &format!(
                        "Could not find a property named '{name}' on type 'microsoft.graph.user'."
                    ),
                ));
            }
        }
    }
    Ok(Some(names))
}

/// The ids a filter of the form `id eq 'a'` or `id in ('a', 'b')` names, sorted; `None` for
/// any other filter.
fn ids_named(filter: &str) -> Option<std::collections::BTreeSet<String>> {
    let rest = filter.trim().strip_prefix("id")?.trim_start();
    let list = if let Some(rest) = rest.strip_prefix("eq") {
        rest.trim()
    } else {
        rest.strip_prefix("in")?
            .trim()
            .strip_prefix('(')?
            .strip_suffix(')')?
    };
    let mut ids = std::collections::BTreeSet::new();
    for item in list.split(',') {
        let id = item.trim().strip_prefix('\'')?.strip_suffix('\'')?;
        if id.contains('\'') {
            return None;
        }
        ids.insert(id.to_owned());
    }
    Some(ids)
}

/// `manager` or `manager($select=a,b)`: the manager properties to return.
fn manager_expansion(expand: &str) -> Result<Vec<String>, Answer> {
    let expand = expand.trim();
    let inner = match expand.strip_prefix("manager") {
        Some("") => return Ok(DEFAULT_PROPERTIES.iter().map(|s| (*s).to_owned()).collect()),
        Some(rest) => rest
            .strip_prefix("($select=")
            .and_then(|r| r.strip_suffix(')')),
        None => None,
    };
    match inner.map(|i| selection(Some(i))) {
        Some(Ok(Some(names))) => Ok(names),
        Some(Err(answer)) => Err(answer),
        _ => Err(graph_error(
            400,
            "Request_BadRequest",
            &format!("Parsing OData Select and Expand failed: could not expand '{expand}'."),
        )),
    }
}

fn filter_refusal(message: &str) -> Answer {
    // The validator's wording tells an unfilterable property from a syntax error.
    if message.contains("cannot be filtered")
        || message.contains("not filterable")
        || message.contains("does not support")
    {
        graph_error(
            400,
            "Request_UnsupportedQuery",
            &format!(
                "Unsupported or invalid query filter clause specified for property of resource 'User': {message}"
            ),
        )
    } else {
        graph_error(
            400,
            "BadRequest",
            &format!("Invalid filter clause: {message}"),
        )
    }
}

/// A user as Graph returns it: the selected (or default) properties, null when unset;
/// directory extensions only when set.
fn project(user: &JsonObject, select: Option<&[String]>) -> Value {
    let mut members = Vec::new();
    let mut out = serde_json::Map::new();
    for (name, value) in projection(user, select, &mut members) {
        out.insert(name.to_owned(), value.to_value());
    }
    Value::Object(out)
}

/// The `(name, value)` pairs of [`project`], borrowed from the stored user; `members` is
/// room for the user's members, kept from one user to the next.
fn projection<'a>(
    user: &'a JsonObject,
    select: Option<&'a [String]>,
    members: &mut Vec<(std::borrow::Cow<'a, str>, Raw<'a>)>,
) -> Vec<(&'a str, Raw<'a>)> {
    members.clear();
    members.extend(user.members());
    // A stored object lists its members in the order of their names, as `serde_json`'s
    // maps keep them; sorted here should a build keep them in insertion order instead.
    if !members.is_sorted_by(|a, b| a.0 <= b.0) {
        members.sort_by(|a, b| a.0.cmp(&b.0));
    }
    let find = |name: &str| {
        members
            .binary_search_by(|(key, _)| key.as_ref().cmp(name))
            .ok()
            .map(|i| members[i].1)
    };
    let names: Box<dyn Iterator<Item = &'a str>> = match select {
        Some(names) => Box::new(names.iter().map(String::as_str).filter(|n| *n != "id")),
        None => Box::new(DEFAULT_PROPERTIES.iter().copied().filter(|n| *n != "id")),
    };
    std::iter::once(("id", find("id").unwrap_or(Raw::NULL)))
        .chain(names.filter_map(|name| match find(name) {
            Some(value) => Some((name, value)),
            None if catalog::is_extension_name(name) => None,
            None => Some((name, Raw::NULL)),
        }))
        .collect()
}

/// A user on a page, written straight from the tenant's copy when the page is sent.
struct Projected {
    user: JsonObject,
    select: Option<Arc<[String]>>,
    manager: Option<Value>,
}

impl Projected {
    /// Appends the user's JSON to `out`; `members` is room kept from one user to the next.
    fn write<'a>(
        &'a self,
        out: &mut Vec<u8>,
        members: &mut Vec<(std::borrow::Cow<'a, str>, Raw<'a>)>,
    ) {
        out.push(b'{');
        for (i, (name, value)) in projection(&self.user, self.select.as_deref(), members)
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                out.push(b',');
            }
            write_name(out, name);
            value.write_json(out);
        }
        if let Some(manager) = &self.manager {
            out.push(b',');
            write_name(out, "manager");
            let _ = serde_json::to_writer(&mut *out, manager);
        }
        out.push(b'}');
    }
}

/// A member's name and its colon.
fn write_name(out: &mut Vec<u8>, name: &str) {
    let _ = serde_json::to_writer(&mut *out, name);
    out.push(b':');
}

/// The same request with one parameter replaced (and `$skiptoken`/`$deltatoken` dropped).
fn next_link(base: &str, query: &BTreeMap<String, String>, key: &str, value: &str) -> String {
    let Ok(mut url) = url::Url::parse(base) else {
        return String::new();
    };
    {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in query {
            if k != "$skiptoken" && k != "$deltatoken" {
                pairs.append_pair(k, v);
            }
        }
        pairs.append_pair(key, value);
    }
    url.to_string()
}

fn encode_skiptoken(page: u32, after: &str) -> String {
    format!(
        "RFNwdAI{}",
        URL_SAFE_NO_PAD.encode(format!("{page}|{after}"))
    )
}

/// The page of a users listing a request asks for (0 = the first).
fn listed_page(query: &BTreeMap<String, String>) -> u32 {
    query
        .get("$skiptoken")
        .and_then(|token| decode_skiptoken(token))
        .map_or(0, |(page, _)| page)
}

fn decode_skiptoken(token: &str) -> Option<(u32, String)> {
    let bytes = URL_SAFE_NO_PAD
        .decode(token.strip_prefix("RFNwdAI")?)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (page, after) = text.split_once('|')?;
    Some((page.parse().ok()?, after.to_owned()))
}

// ----- delta ----------------------------------------------------------------------------------

/// What a delta link or a delta page link remembers.
#[derive(serde::Serialize, serde::Deserialize)]
struct DeltaState {
    /// Which generation of links this is (expiry bumps it).
    g: u64,
    /// Changes after this version are reported.
    from: u64,
    /// Up to this version (the tenant's version when the round began).
    to: u64,
    /// The `$select` of the first request.
    select: Option<Vec<String>>,
    /// Where the round is: the last user id listed (initial round) or the change index.
    after: Option<String>,
    offset: usize,
    initial: bool,
    /// Whether the first request expanded the manager (`$expand=manager`): a manager's
    /// change is then reported, as `manager@delta`.
    #[serde(default)]
    manager: bool,
}

/// Whether a delta request asks for the manager (`$expand=manager`, any inner options).
fn expands_manager(query: &BTreeMap<String, String>) -> bool {
    query
        .get("$expand")
        .is_some_and(|e| e.trim().starts_with("manager"))
}

/// A user's `manager@delta`: the manager's id, or its removal.
fn manager_delta(state: &SimState, id: &str) -> Value {
    match state.tenant.manager_of(id) {
        Some(m) => json!([{ "@odata.type": "#microsoft.graph.user", "id": m }]),
        None => json!([{ "@odata.type": "#microsoft.graph.user", "id": "",
                         "@removed": { "reason": "deleted" } }]),
    }
}

fn delta(state: &SimState, base: &str, query: &BTreeMap<String, String>) -> Answer {
    let answer = delta_page(state, base, query);
    match state.behaviour.delta_fault {
        None => answer,
        Some(DeltaFault::NotJson) => Answer {
            raw: true,
            ..Answer::json(
                StatusCode::OK,
                "<html><body>Bad gateway</body></html>".into(),
            )
        },
        Some(DeltaFault::NoDeltaLink) => {
            let mut answer = answer;
            if let Value::Object(body) = &mut answer.body {
                body.remove("@odata.deltaLink");
            }
            answer
        }
    }
}

fn delta_page(state: &SimState, base: &str, query: &BTreeMap<String, String>) -> Answer {
    if query.get("$deltatoken").map(String::as_str) == Some("latest") {
        // A link for the changes from now on, without listing anyone.
        let select = match selection(query.get("$select").map(String::as_str)) {
            Ok(s) => s,
            Err(answer) => return answer,
        };
        let version = state.tenant.version();
        let next = DeltaState {
            g: state.delta_generation,
            from: version,
            to: version,
            select,
            after: None,
            offset: 0,
            initial: false,
            manager: expands_manager(query),
        };
        let token = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&next).unwrap_or_default());
        let body = json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users",
            "value": [],
            "@odata.deltaLink": next_link(base, &BTreeMap::new(), "$deltatoken", &token),
        });
        return Answer::json(StatusCode::OK, body);
    }
    let token = query.get("$deltatoken").or_else(|| query.get("$skiptoken"));
    let mut round = match token {
        Some(token) => {
            let decoded = URL_SAFE_NO_PAD
                .decode(token)
                .ok()
                .and_then(|b| serde_json::from_slice::<DeltaState>(&b).ok());
            match decoded {
                Some(d) if d.g == state.delta_generation => d,
                Some(_) => {
                    return graph_error(
                        410,
                        "syncStateNotFound",
                        "The sync state is not found; it may have expired. Start a new round.",
                    );
                }
                None => return graph_error(400, "syncStateInvalid", "The delta token is invalid."),
            }
        }
        None => {
            let select = match selection(query.get("$select").map(String::as_str)) {
                Ok(s) => s,
                Err(answer) => return answer,
            };
            DeltaState {
                g: state.delta_generation,
                from: 0,
                to: state.tenant.version(),
                select,
                after: None,
                offset: 0,
                initial: true,
                manager: expands_manager(query),
            }
        }
    };
    if query.contains_key("$deltatoken") {
        // A new round from a stored link: report changes up to now.
        round.to = state.tenant.version();
        round.offset = 0;
    }
    let size = state.behaviour.delta_page_size.max(1);
    let select = round.select.as_deref();
    let mut value = Vec::new();
    let finished;
    if round.initial {
        let start = match &round.after {
            Some(id) => std::ops::Bound::Excluded(id.clone()),
            None => std::ops::Bound::Unbounded,
        };
        let mut users = state
            .tenant
            .users
            .range((start, std::ops::Bound::Unbounded));
        for (id, user) in users.by_ref().take(size) {
            value.push(project(user, select));
            round.after = Some(id.clone());
        }
        finished = users.next().is_none();
    } else {
        let changes: Vec<_> = state
            .tenant
            .changes_since(round.from)
            .iter()
            .filter(|c| c.version <= round.to)
            .collect();
        let page = changes.iter().skip(round.offset).take(size);
        for change in page {
            round.offset += 1;
            let removed =
                |reason: &str| json!({ "id": change.id, "@removed": { "reason": reason } });
            match change.kind {
                ChangeKind::SoftDeleted => value.push(removed("changed")),
                ChangeKind::HardDeleted => value.push(removed("deleted")),
                ChangeKind::Added => {
                    if let Some(user) = state.tenant.stored(&change.id) {
                        let mut user = project(user, select);
                        if round.manager && state.tenant.manager_of(&change.id).is_some() {
                            user["manager@delta"] = manager_delta(state, &change.id);
                        }
                        value.push(user);
                    }
                }
                ChangeKind::Updated => {
                    let Some(user) = state.tenant.stored(&change.id) else {
                        continue;
                    };
                    // Updates carry the id and the changed properties that were selected.
                    let changed: Vec<String> = change
                        .properties
                        .iter()
                        .filter(|p| select.is_none_or(|s| s.contains(*p)))
                        .cloned()
                        .collect();
                    let manager = round.manager && change.properties.iter().any(|p| p == "manager");
                    if changed.is_empty() && !manager {
                        continue;
                    }
                    let mut entry = project(user, Some(&changed));
                    if manager {
                        entry["manager@delta"] = manager_delta(state, &change.id);
                    }
                    value.push(entry);
                }
            }
        }
        finished = round.offset >= changes.len();
    }
    let mut body = json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users",
        "value": value,
    });
    let base_query = BTreeMap::new();
    if finished {
        let next = DeltaState {
            g: round.g,
            from: round.to,
            to: round.to,
            select: round.select.clone(),
            after: None,
            offset: 0,
            initial: false,
            manager: round.manager,
        };
        let token = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&next).unwrap_or_default());
        body["@odata.deltaLink"] = next_link(base, &base_query, "$deltatoken", &token).into();
    } else {
        let token = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&round).unwrap_or_default());
        body["@odata.nextLink"] = next_link(base, &base_query, "$skiptoken", &token).into();
    }
    Answer::json(StatusCode::OK, body)
}
