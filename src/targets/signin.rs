//! Signing in to a target whose credential changes during a run: an OAuth2 access token of
//! the client-credentials grant, or a session opened by a login request.
//!
//! The credential is fetched on the first request and kept; every request carries the one
//! kept. An OAuth2 token is fetched again when less than [`MARGIN`] of its life remains,
//! and once more when the target answers 401 to it. A session is opened again when the
//! target says it expired (a status and/or a text in the answer, as the API description
//! says), and closed by the logout request at the end of the run. When several requests
//! find the credential stale at once, one fetches a new one and the others use it. A
//! credential that cannot be had is [`TargetError::SignIn`], which stops the run.
//!
//! Fetched credentials are remembered by the scrubber, so no output ever shows them.

use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::{self, HeaderName, HeaderValue};
use serde_json::Value as Json;
use tokio::sync::Mutex;
use url::Url;

use super::{TargetError, TargetStats};
use crate::config::{OAuth2Config, TargetAuth, TargetConfig};
use crate::diag::shorten;
use crate::http as shared;
use crate::secrets::Redactor;

/// An access token with less than this left is fetched anew before it is used.
pub(crate) const MARGIN: Duration = Duration::from_secs(30);

/// The largest answer of a token endpoint or a login request that is read.
const MAX_SIGN_IN_BYTES: usize = 1 << 20;

/// A request the sign-in sends (a login, a logout), made from the API description. Its
/// URL and body may hold secrets, so its `Debug` shows the method only.
#[derive(Clone)]
pub(crate) struct SignInRequest {
    /// The method.
    pub method: Method,
    /// Where it goes.
    pub url: Url,
    /// Its headers, besides those of every request.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Its JSON body, if any.
    pub body: Option<Json>,
}

impl std::fmt::Debug for SignInRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInRequest")
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

/// A session as the API description's `[session]` says to open, use and close it.
#[derive(Debug, Clone)]
pub(crate) struct SessionSpec {
    /// The login request.
    pub login: SignInRequest,
    /// Where the login's answer holds the session token (`session_token`).
    pub token: String,
    /// The header later requests carry it in (`Session-Token`).
    pub header: HeaderName,
    /// The status that says the session expired, if the description names one.
    pub expired_status: Option<u16>,
    /// A text whose presence in an answer says the session expired.
    pub expired_text: Option<String>,
    /// The logout request, sent at the end of the run.
    pub logout: Option<SignInRequest>,
    /// Headers sent on every request, the login's included (GLPI's `App-Token`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// How a target's requests are signed.
#[derive(Debug)]
pub(crate) enum Signing {
    /// The same header on every request (a bearer token, basic, an API key), or none.
    Fixed(Option<(HeaderName, HeaderValue)>),
    /// An OAuth2 access token, by the grant's settings (the secret in them shows as
    /// `[redacted]` when debugged).
    OAuth2(OAuth2Config),
    /// A session.
    Session(Box<SessionSpec>),
}

/// The credential in use.
#[derive(Debug)]
struct Current {
    value: HeaderValue,
    /// When it should be replaced (an access token's expiry, less the margin).
    renew_at: Option<Instant>,
    /// Counts the credentials fetched, so a renewal renews only the credential it saw.
    generation: u64,
}

/// What a request carries: its sign-in headers, and which credential they hold.
#[derive(Debug, Default)]
pub(crate) struct Signed {
    /// The headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The credential's generation (0 for a fixed header).
    pub generation: u64,
}

/// A target's sign-in.
#[derive(Debug)]
pub(crate) struct SignIn {
    method: Signing,
    current: Mutex<Option<Current>>,
    /// The last generation handed out.
    generations: std::sync::atomic::AtomicU64,
    /// What the target is, for messages.
    target: String,
}

impl SignIn {
    /// A sign-in by `method`, for the target called `target` in messages.
    pub(crate) fn new(method: Signing, target: String) -> SignIn {
        SignIn {
            method,
            current: Mutex::new(None),
            generations: std::sync::atomic::AtomicU64::new(0),
            target,
        }
    }

    /// The fixed header, for tests of how the config's `auth` is read.
    #[cfg(test)]
    pub(crate) fn fixed(&self) -> Option<(HeaderName, HeaderValue)> {
        match &self.method {
            Signing::Fixed(fixed) => fixed.clone(),
            _ => None,
        }
    }

    /// The headers a request carries, signing in first when there is no usable credential.
    pub(crate) async fn signed(
        &self,
        client: &reqwest::Client,
        stats: &TargetStats,
    ) -> Result<Signed, TargetError> {
        let (name, extra) = match &self.method {
            Signing::Fixed(fixed) => {
                return Ok(Signed {
                    headers: fixed.iter().cloned().collect(),
                    generation: 0,
                });
            }
            Signing::OAuth2(_) => (header::AUTHORIZATION, Vec::new()),
            Signing::Session(spec) => (spec.header.clone(), spec.headers.clone()),
        };
        let mut current = self.current.lock().await;
        let fresh = current
            .as_ref()
            .is_some_and(|c| c.renew_at.is_none_or(|at| Instant::now() < at));
        if !fresh {
            *current = Some(self.fetch(client, stats).await?);
        }
        let Some(current) = current.as_ref() else {
            return Err(self.lost("no credential was fetched".to_string()));
        };
        let mut headers = extra;
        headers.push((name, current.value.clone()));
        Ok(Signed {
            headers,
            generation: current.generation,
        })
    }

    /// Whether an answer says the credential it was sent with is no longer good: a 401 for
    /// an access token, what the description says for a session.
    pub(crate) fn expired(&self, status: u16, body: &[u8]) -> bool {
        match &self.method {
            Signing::Fixed(_) => false,
            Signing::OAuth2(_) => status == 401,
            Signing::Session(spec) => {
                let status_says = spec.expired_status.is_none_or(|s| s == status);
                let text_says = spec
                    .expired_text
                    .as_ref()
                    .is_none_or(|text| String::from_utf8_lossy(body).contains(text.as_str()));
                let says_something = spec.expired_status.is_some() || spec.expired_text.is_some();
                says_something && status_says && text_says
            }
        }
    }

    /// Drops the credential of `generation` so the next request fetches another; one that
    /// was replaced already is left alone.
    pub(crate) async fn forget(&self, generation: u64) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|c| c.generation == generation) {
            *current = None;
        }
    }

    /// The error for a credential refused again right after it was renewed.
    pub(crate) fn refused_after_renewal(&self, status: u16) -> TargetError {
        let what = match self.method {
            Signing::Session(_) => "the session",
            _ => "the access token",
        };
        self.lost(format!(
            "{what} was renewed but the target refused it again (HTTP {status})"
        ))
    }

    /// Closes the session with the logout request, if one is open; nothing for other kinds.
    /// A failed logout is logged, not an error: the run's work is done.
    pub(crate) async fn close(&self, client: &reqwest::Client, stats: &TargetStats) {
        let Signing::Session(spec) = &self.method else {
            return;
        };
        let Some(current) = self.current.lock().await.take() else {
            return;
        };
        let Some(logout) = &spec.logout else {
            return;
        };
        let mut headers = spec.headers.clone();
        headers.push((spec.header.clone(), current.value));
        match self.send(client, stats, logout, &headers).await {
            Ok((status, _)) if (200..300).contains(&status) => {
                tracing::debug!(target_name = %self.target, "target: session closed");
            }
            Ok((status, _)) => tracing::warn!(
                target_name = %self.target, status, "target: the logout was refused"
            ),
            Err(e) => tracing::warn!(
                target_name = %self.target, error = %e, "target: the logout failed"
            ),
        }
    }

    /// A new credential: an access token from the token endpoint, or a new session.
    async fn fetch(
        &self,
        client: &reqwest::Client,
        stats: &TargetStats,
    ) -> Result<Current, TargetError> {
        let (value, lifetime) = match &self.method {
            Signing::Fixed(_) => return Err(self.lost("nothing to fetch".to_string())),
            Signing::OAuth2(config) => self.token(client, stats, config).await?,
            Signing::Session(spec) => (self.login(client, stats, spec).await?, None),
        };
        crate::secrets::remember([value.clone()]);
        let shown = match &self.method {
            Signing::OAuth2(_) => format!("Bearer {value}"),
            _ => value,
        };
        let mut value = HeaderValue::from_str(&shown)
            .map_err(|_| self.lost("the credential cannot be sent in a header".to_string()))?;
        value.set_sensitive(true);
        let generation = 1 + self
            .generations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::debug!(target_name = %self.target, generation, "target: signed in");
        Ok(Current {
            value,
            renew_at: lifetime.map(|l| Instant::now() + l.saturating_sub(MARGIN)),
            generation,
        })
    }

    /// An access token of the client-credentials grant, and how long it lasts.
    async fn token(
        &self,
        client: &reqwest::Client,
        stats: &TargetStats,
        config: &OAuth2Config,
    ) -> Result<(String, Option<Duration>), TargetError> {
        let secret = config
            .client_secret
            .expose()
            .map_err(|why| self.lost(format!("the client secret is unavailable: {why}")))?;
        let form = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials");
            form.append_pair("client_id", &config.client_id);
            form.append_pair("client_secret", secret);
            if let Some(scope) = &config.scope {
                form.append_pair("scope", scope);
            }
            form.finish()
        };
        let request = SignInRequest {
            method: Method::POST,
            url: config.token_url.clone(),
            headers: vec![(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            )],
            body: None,
        };
        let (status, body) = self
            .send_raw(client, stats, &request, &[], Some(form))
            .await?;
        let answer: Json = serde_json::from_slice(&body).unwrap_or(Json::Null);
        if let Some(code) = answer.get("error").and_then(Json::as_str) {
            let fix = match code {
                "invalid_client" => "check client_id and client_secret",
                "invalid_scope" => "check scope: the server does not grant it to this client",
                "unauthorized_client" => "allow the client credentials grant for this client",
                "invalid_grant" => "check the client's grants on the authorization server",
                _ => "check token_url, client_id, client_secret and scope",
            };
            return Err(self.lost(format!(
                "the token endpoint {} refused the sign-in ({}): {fix}",
                config.token_url,
                shorten(code, 40)
            )));
        }
        let token = answer.get("access_token").and_then(Json::as_str);
        match token {
            Some(token) if (200..300).contains(&status) && !token.is_empty() => {
                let lifetime = answer
                    .get("expires_in")
                    .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                    .map(Duration::from_secs);
                Ok((token.to_string(), lifetime))
            }
            _ => Err(self.lost(format!(
                "the token endpoint {} answered HTTP {status} without an access token",
                config.token_url
            ))),
        }
    }

    /// Opens a session: the login request, its answer's token.
    async fn login(
        &self,
        client: &reqwest::Client,
        stats: &TargetStats,
        spec: &SessionSpec,
    ) -> Result<String, TargetError> {
        let (status, body) = self.send(client, stats, &spec.login, &spec.headers).await?;
        let answer: Option<Json> = serde_json::from_slice(&body).ok();
        let token = answer
            .as_ref()
            .and_then(|a| super::rest::json_at(a, &spec.token))
            .and_then(Json::as_str)
            .filter(|t| !t.is_empty());
        match token {
            Some(token) if (200..300).contains(&status) => Ok(token.to_string()),
            _ if let Some(title) = super::http::html_title(&body) => Err(self.lost(format!(
                "the login {} answered HTTP {status} with an HTML page, not JSON{title}",
                spec.login.url
            ))),
            _ => {
                let said = answer
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
                let said = crate::secrets::scrub(&said).into_owned();
                Err(self.lost(format!(
                    "the login {} answered HTTP {status} without `{}`: {}",
                    spec.login.url,
                    spec.token,
                    shorten(&said.split_whitespace().collect::<Vec<_>>().join(" "), 200)
                )))
            }
        }
    }

    /// Sends a login or logout request with `headers` besides its own.
    async fn send(
        &self,
        client: &reqwest::Client,
        stats: &TargetStats,
        request: &SignInRequest,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<(u16, Vec<u8>), TargetError> {
        let body = request.body.as_ref().map(Json::to_string);
        let mut all = headers.to_vec();
        if body.is_some() {
            all.push((
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ));
        }
        self.send_raw(client, stats, request, &all, body).await
    }

    async fn send_raw(
        &self,
        client: &reqwest::Client,
        stats: &TargetStats,
        request: &SignInRequest,
        headers: &[(HeaderName, HeaderValue)],
        body: Option<String>,
    ) -> Result<(u16, Vec<u8>), TargetError> {
        stats.count(false);
        let mut builder = client
            .request(request.method.clone(), request.url.clone())
            .header(header::ACCEPT, "application/json");
        for (name, value) in request.headers.iter().chain(headers) {
            builder = builder.header(name, value.clone());
        }
        if let Some(body) = body {
            builder = builder.body(body);
        }
        let mut response = builder.send().await.map_err(|e| {
            self.lost(format!(
                "{} {}: {}",
                request.method,
                request.url,
                shared::describe(&e)
            ))
        })?;
        let status = response.status().as_u16();
        let body = shared::read_body(&mut response, MAX_SIGN_IN_BYTES, |_| {})
            .await
            .map_err(|e| self.lost(format!("{} {}: {e}", request.method, request.url)))?;
        Ok((status, body))
    }

    /// The error that stops the run: no credential can be had.
    fn lost(&self, detail: String) -> TargetError {
        TargetError::SignIn {
            target: self.target.clone(),
            detail,
        }
    }
}

/// How requests are signed as the config says, and the texts to scrub.
pub(super) fn credentials(
    config: &TargetConfig,
    session: Option<SessionSpec>,
    setup: impl Fn(String) -> TargetError,
) -> Result<(Signing, Redactor), TargetError> {
    let token = match &config.token {
        Some(secret) => Some(
            secret
                .expose()
                .map_err(|why| setup(format!("the token is unavailable: {why}")))?
                .to_string(),
        ),
        None => None,
    };
    let mut secrets: Vec<String> = token.iter().cloned().collect();
    let credentials = match (&config.auth, token) {
        (TargetAuth::Basic { username, password }, _) => {
            let password = password
                .expose()
                .map_err(|why| setup(format!("the password is unavailable: {why}")))?;
            secrets.push(password.to_string());
            Some(basic(username, password, &mut secrets))
        }
        (TargetAuth::BasicToken, Some(token)) => Some(basic(&token, "X", &mut secrets)),
        (TargetAuth::BasicToken, None) => {
            return Err(setup(
                "`auth = basic` needs `username` and `password`, or a `token`".to_string(),
            ));
        }
        (TargetAuth::Bearer, Some(token)) => {
            Some((header::AUTHORIZATION, format!("Bearer {token}")))
        }
        (TargetAuth::Header(name), Some(token)) => {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                setup(format!(
                    "`{}` is not a valid header name",
                    shorten(name, 40)
                ))
            })?;
            Some((name, token))
        }
        (TargetAuth::Bearer | TargetAuth::Header(_), None) => None,
        (TargetAuth::OAuth2(oauth), _) => {
            let secret = oauth
                .client_secret
                .expose()
                .map_err(|why| setup(format!("the client secret is unavailable: {why}")))?;
            secrets.push(secret.to_string());
            return Ok((Signing::OAuth2(oauth.clone()), Redactor::new(secrets)));
        }
        (
            TargetAuth::Session {
                app_token,
                password,
                ..
            },
            _,
        ) => {
            for secret in [app_token, password].into_iter().flatten() {
                if let Ok(value) = secret.expose() {
                    secrets.push(value.to_string());
                }
            }
            let Some(session) = session else {
                return Err(setup(
                    "`auth = session` needs an API description with [session]".to_string(),
                ));
            };
            return Ok((Signing::Session(Box::new(session)), Redactor::new(secrets)));
        }
    };
    let credentials = match credentials {
        Some((name, value)) => {
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| setup("the credentials cannot be sent in a header".to_string()))?;
            value.set_sensitive(true);
            Some((name, value))
        }
        None => None,
    };
    Ok((Signing::Fixed(credentials), Redactor::new(secrets)))
}

/// A basic `Authorization` header for `user` and `password`; the encoded pair is added to
/// the texts to scrub.
fn basic(user: &str, password: &str, secrets: &mut Vec<String>) -> (HeaderName, String) {
    let encoded = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{user}:{password}"),
    );
    let value = format!("Basic {encoded}");
    secrets.push(encoded);
    (header::AUTHORIZATION, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(status: Option<u16>, text: Option<&str>) -> SignIn {
        let login = SignInRequest {
            method: Method::POST,
            url: Url::parse("https://assets.example.com/login?key=s3cr3t-key").unwrap(),
            headers: Vec::new(),
            body: Some(serde_json::json!({"password": "s3cr3t-password"})),
        };
        let spec = SessionSpec {
            login,
            token: "token".into(),
            header: HeaderName::from_static("x-session"),
            expired_status: status,
            expired_text: text.map(str::to_string),
            logout: None,
            headers: Vec::new(),
        };
        SignIn::new(Signing::Session(Box::new(spec)), "test".into())
    }

    #[test]
    fn a_session_expires_as_its_description_says() {
        let both = session(Some(401), Some("EXPIRED"));
        assert!(both.expired(401, b"[\"EXPIRED\"]"));
        assert!(!both.expired(401, b"[\"WRONG_PASSWORD\"]"));
        assert!(!both.expired(400, b"[\"EXPIRED\"]"));
        let text = session(None, Some("EXPIRED"));
        assert!(text.expired(200, b"{\"error\": \"EXPIRED\"}"));
        let status = session(Some(440), None);
        assert!(status.expired(440, b""));
        assert!(!status.expired(401, b""));
    }

    #[test]
    fn debugging_a_sign_in_shows_no_secret() {
        let shown = format!("{:?}", session(Some(401), None));
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }
}
