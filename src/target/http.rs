//! One HTTP conversation with an asset system, shared by the REST and Oomnitza targets.
//!
//! Every request goes out signed the way the config says (bearer, a custom header, basic),
//! is counted in [`TargetStats`], and has its answer read within a size limit and sorted
//! into success, refusal or a transient failure. Idempotent requests are retried here on
//! 429, 5xx, timeouts and broken connections, honouring `Retry-After`; a request that must
//! not simply be sent again (a POST that creates) gets a single attempt, and its caller
//! decides what to do after a transient failure. No error ever carries the token: answers
//! are shortened and scrubbed of it before they are quoted.

use std::time::Duration;

use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value as Json;
use url::Url;

use super::{TargetError, TargetStats};
use crate::config::{TargetAuth, TargetConfig};
use crate::diag::shorten;
use crate::graph::auth::describe;
use crate::graph::retry::{RetryPolicy, parse_retry_after};

/// The largest answer read; anything longer is refused rather than held in memory.
const MAX_ANSWER_BYTES: usize = 64 << 20;

/// How much of an answer is quoted in an error.
const QUOTED_CHARS: usize = 300;

/// A 2xx answer.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The status, 200–299.
    pub status: u16,
    /// The body as JSON; `null` when empty.
    pub body: Json,
}

/// How one attempt failed.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// Worth trying again later (429, 5xx, a timeout, a broken connection): what happened,
    /// and how long the server asked us to wait.
    Transient {
        /// What happened, for the error if no later try succeeds.
        detail: String,
        /// The server's `Retry-After`, if it gave one.
        retry_after: Option<Duration>,
    },
    /// Trying again cannot help.
    Final(TargetError),
}

/// How requests prove who sends them.
#[derive(Debug)]
enum Auth {
    None,
    Header(HeaderName, HeaderValue),
    Basic(String, String),
}

/// An authenticated HTTP client for one target.
#[derive(Debug)]
pub(crate) struct Client {
    http: reqwest::Client,
    base: Url,
    auth: Auth,
    /// Secrets to scrub from anything quoted back (the token, the password).
    secrets: Vec<String>,
    policy: RetryPolicy,
    /// Which target, for messages.
    name: String,
    /// The requests made so far.
    pub stats: TargetStats,
}

impl Client {
    /// A client for the target in `config`; `name` says what it is in messages
    /// (`Snipe-IT at https://…`).
    pub fn new(
        config: &TargetConfig,
        policy: RetryPolicy,
        name: String,
    ) -> Result<Client, TargetError> {
        let setup = |detail: String| TargetError::Unsupported(format!("{name}: {detail}"));
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
        let auth = match (&config.auth, token) {
            (TargetAuth::Basic { username, password }, _) => {
                let password = password
                    .expose()
                    .map_err(|why| setup(format!("the password is unavailable: {why}")))?
                    .to_string();
                secrets.push(password.clone());
                Auth::Basic(username.clone(), password)
            }
            (_, None) => Auth::None,
            (TargetAuth::Bearer, Some(token)) => Auth::Header(
                reqwest::header::AUTHORIZATION,
                header_value(&format!("Bearer {token}"), &setup)?,
            ),
            (TargetAuth::Header(header), Some(token)) => {
                let header = HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                    setup(format!(
                        "`{}` is not a valid header name",
                        shorten(header, 40)
                    ))
                })?;
                Auth::Header(header, header_value(&token, &setup)?)
            }
        };
        let http = reqwest::Client::builder()
            .user_agent(concat!("userload/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15).min(policy.timeout))
            // A redirect could carry the credentials to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| setup(format!("cannot set up HTTPS: {e}")))?;
        let mut base = config.url.clone();
        base.set_query(None);
        base.set_fragment(None);
        Ok(Client {
            http,
            base,
            auth,
            secrets,
            policy,
            name,
            stats: TargetStats::default(),
        })
    }

    /// What the target is, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The retry policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The URL a rendered template or a followed link names: a path (with its query) below
    /// the configured URL, or an absolute URL that must stay on the target's origin so an
    /// answer cannot send our credentials elsewhere.
    pub fn url(&self, written: &str) -> Result<Url, TargetError> {
        let written = written.trim();
        if written.starts_with("http://") || written.starts_with("https://") {
            return match Url::parse(written) {
                Ok(url) if url.origin() == self.base.origin() => Ok(url),
                _ => Err(TargetError::Malformed(format!(
                    "a link points away from {}: {}",
                    self.base,
                    self.scrub(&shorten(written, 80))
                ))),
            };
        }
        let base = self.base.as_str().trim_end_matches('/');
        let joined = format!("{base}/{}", written.trim_start_matches('/'));
        Url::parse(&joined).map_err(|e| {
            TargetError::Malformed(format!("not a usable URL ({e}): {}", shorten(&joined, 120)))
        })
    }

    /// A link an answer gives (a next page): resolved against the URL it came from, and
    /// kept on the target's origin.
    pub fn follow(&self, from: &Url, link: &str) -> Result<Url, TargetError> {
        let resolved = from.join(link.trim()).map_err(|e| {
            TargetError::Malformed(format!(
                "not a usable link ({e}): {}",
                self.scrub(&shorten(link, 80))
            ))
        })?;
        self.url(resolved.as_str())
    }

    /// Sends an idempotent request (GET, PUT, PATCH, DELETE, or a POST that is safe to
    /// repeat), trying again after transient failures up to the policy's limit.
    pub async fn send(
        &self,
        method: Method,
        url: &Url,
        body: Option<&Json>,
        what: &str,
    ) -> Result<Answer, TargetError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.send_once(method.clone(), url, body, what).await {
                Ok(answer) => return Ok(answer),
                Err(Attempt::Final(error)) => return Err(error),
                Err(Attempt::Transient {
                    detail,
                    retry_after,
                }) => {
                    if attempt >= self.policy.max_attempts {
                        return Err(self.gave_up(what, attempt, &detail));
                    }
                    self.pause(attempt, retry_after).await;
                }
            }
        }
    }

    /// The error after the last try failed.
    pub fn gave_up(&self, what: &str, attempts: u32, last: &str) -> TargetError {
        let tries = if attempts == 1 { "try" } else { "tries" };
        TargetError::Unavailable(format!(
            "{}: {what} failed after {attempts} {tries}: {last}",
            self.name
        ))
    }

    /// Waits before try number `attempt + 1` and counts the retry.
    pub async fn pause(&self, attempt: u32, retry_after: Option<Duration>) {
        self.stats
            .retries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(self.policy.delay(attempt, retry_after)).await;
    }

    /// Sends a request once and sorts its outcome.
    pub async fn send_once(
        &self,
        method: Method,
        url: &Url,
        body: Option<&Json>,
        what: &str,
    ) -> Result<Answer, Attempt> {
        self.stats
            .count(method != Method::GET && method != Method::HEAD);
        let mut request = self
            .http
            .request(method, url.clone())
            .timeout(self.policy.timeout)
            .header(reqwest::header::ACCEPT, "application/json");
        request = match &self.auth {
            Auth::None => request,
            Auth::Header(name, value) => request.header(name.clone(), value.clone()),
            Auth::Basic(user, password) => request.basic_auth(user, Some(password)),
        };
        if let Some(body) = body {
            request = request.json(body);
        }
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                return Err(Attempt::Transient {
                    detail: self.scrub(&describe(&e)),
                    retry_after: None,
                });
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                        return Err(Attempt::Final(TargetError::Malformed(format!(
                            "{what}: the answer is longer than {} MiB",
                            MAX_ANSWER_BYTES >> 20
                        ))));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(Attempt::Transient {
                        detail: self.scrub(&describe(&e)),
                        retry_after: None,
                    });
                }
            }
        }
        match status {
            200..=299 => {
                let body = if bytes.iter().all(u8::is_ascii_whitespace) {
                    Json::Null
                } else {
                    serde_json::from_slice(&bytes).map_err(|e| {
                        Attempt::Final(TargetError::Malformed(format!(
                            "{what}: the answer is not JSON ({e}): {}",
                            self.quote(&bytes)
                        )))
                    })?
                };
                Ok(Answer { status, body })
            }
            401 | 403 => Err(Attempt::Final(TargetError::Unauthorized {
                target: self.name.clone(),
                status,
                detail: self.quote(&bytes),
            })),
            408 | 429 | 500 | 502 | 503 | 504 => Err(Attempt::Transient {
                detail: format!("HTTP {status}: {}", self.quote(&bytes)),
                retry_after,
            }),
            _ => Err(Attempt::Final(TargetError::Rejected {
                status,
                detail: self.quote(&bytes),
            })),
        }
    }

    /// What an answer said, shortened for an error: the message of a JSON error body when
    /// there is one, else the text; never the credentials.
    pub fn quote(&self, bytes: &[u8]) -> String {
        let text = match serde_json::from_slice::<Json>(bytes) {
            Ok(json) => message_of(&json).unwrap_or_else(|| json.to_string()),
            Err(_) => String::from_utf8_lossy(bytes).into_owned(),
        };
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() {
            return "no details".to_string();
        }
        shorten(&self.scrub(&text), QUOTED_CHARS)
    }

    /// `text` with every secret replaced.
    pub fn scrub(&self, text: &str) -> String {
        let mut text = text.to_string();
        for secret in self.secrets.iter().filter(|s| s.len() >= 4) {
            text = text.replace(secret.as_str(), "[redacted]");
        }
        text
    }
}

fn header_value(
    value: &str,
    setup: &impl Fn(String) -> TargetError,
) -> Result<HeaderValue, TargetError> {
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| setup("the token cannot be sent in a header".to_string()))?;
    value.set_sensitive(true);
    Ok(value)
}

/// The message in a JSON error body, in the shapes APIs commonly use: `messages` (a text,
/// or an object of field → texts, as Snipe-IT answers), `message`, `error`, `detail`,
/// `errors`.
pub(crate) fn message_of(body: &Json) -> Option<String> {
    [
        "messages",
        "message",
        "error",
        "detail",
        "errors",
        "error_description",
    ]
    .iter()
    .find_map(|key| body.get(key).and_then(flatten_message))
}

/// A message value as one line: texts joined, objects as `key: text`.
pub(crate) fn flatten_message(value: &Json) -> Option<String> {
    let text = match value {
        Json::String(s) => s.clone(),
        Json::Array(items) => items
            .iter()
            .filter_map(flatten_message)
            .collect::<Vec<_>>()
            .join("; "),
        Json::Object(map) => map
            .iter()
            .filter_map(|(k, v)| Some(format!("{k}: {}", flatten_message(v)?)))
            .collect::<Vec<_>>()
            .join("; "),
        Json::Null => String::new(),
        other => other.to_string(),
    };
    (!text.trim().is_empty()).then_some(text)
}
