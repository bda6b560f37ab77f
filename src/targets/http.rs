//! One HTTP conversation with an asset system, shared by every target.
//!
//! Every request goes out signed the way the config says (bearer, a custom header, basic),
//! with a time limit and no redirects, is counted in [`TargetStats`], and has its answer
//! read within a size limit. Throttling, the 5xx a target's [`Dialect`] names, timeouts and
//! broken connections are transient: [`Http::send`] tries idempotent requests again,
//! honouring `Retry-After`; a request that must not simply be sent again (a POST that
//! creates) is sent with [`Http::send_once`], and its caller decides what to do after a
//! transient failure. No error ever carries a credential: answers are scrubbed of them
//! before they are quoted.
//!
//! What differs between targets (media types, how an error answer is quoted, how giving up
//! is worded) is the target's [`Dialect`]; what its answers mean stays in the target.

use std::time::Duration;

use reqwest::Method;
use reqwest::header::{self, HeaderName, HeaderValue};
use serde_json::Value as Json;
use url::Url;

use super::{TargetError, TargetStats};
use crate::config::{TargetAuth, TargetConfig};
use crate::diag::shorten;
use crate::graph::auth::describe;
use crate::graph::retry::{RetryPolicy, parse_retry_after};

/// The largest answer read; anything longer is refused rather than held in memory.
const MAX_ANSWER_BYTES: usize = 64 << 20;

/// Secrets shorter than this are not scrubbed from messages (they would blank out words).
const MIN_SECRET_CHARS: usize = 3;

/// The retry settings of a target's config.
pub(crate) fn policy_of(config: &TargetConfig) -> RetryPolicy {
    RetryPolicy {
        max_attempts: config.max_attempts.max(1),
        timeout: config.request_timeout,
        ..RetryPolicy::default()
    }
}

/// How one kind of target speaks HTTP.
#[derive(Debug)]
pub(crate) struct Dialect {
    /// The `Accept` header of every request.
    pub accept: &'static str,
    /// The `Content-Type` of every body.
    pub content_type: &'static str,
    /// The statuses worth trying again (besides timeouts and broken connections).
    pub transient: &'static [u16],
    /// What an answer's body says, shortened for a message, without credentials.
    pub quote: fn(&Http, &[u8]) -> String,
    /// The message after the last try of `what` failed:
    /// `(target, what, attempts, last failure)`.
    pub gave_up: fn(&str, &str, u32, &str) -> String,
}

/// An answer that trying again would not change, whatever its status.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The `ETag` header, if any.
    pub etag: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// How one attempt failed.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// Worth trying again later (a transient status, a timeout, a broken connection).
    Transient {
        /// What happened, for the error if no later try succeeds.
        detail: String,
        /// The server's `Retry-After`, if it gave one.
        retry_after: Option<Duration>,
        /// Whether it was a 429: the server says it did nothing with the request.
        throttled: bool,
    },
    /// Trying again cannot help (the answer is too large to read).
    Final(TargetError),
}

/// An authenticated HTTP client for one target.
#[derive(Debug)]
pub(crate) struct Http {
    client: reqwest::Client,
    /// The URL requests are made below.
    base: Url,
    credentials: Option<(HeaderName, HeaderValue)>,
    /// Credential texts to scrub from anything quoted back.
    secrets: Vec<String>,
    dialect: &'static Dialect,
    /// The retry policy.
    pub policy: RetryPolicy,
    /// The requests made so far.
    pub stats: TargetStats,
    /// What the target is, for messages (`SCIM at https://…`).
    name: String,
}

impl Http {
    /// A client for the target in `config`, making requests below `base`; `name` says what
    /// the target is in messages.
    pub fn new(
        config: &TargetConfig,
        policy: RetryPolicy,
        name: String,
        base: Url,
        dialect: &'static Dialect,
    ) -> Result<Http, TargetError> {
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
        let credentials = match (&config.auth, token) {
            (TargetAuth::Basic { username, password }, _) => {
                let password = password
                    .expose()
                    .map_err(|why| setup(format!("the password is unavailable: {why}")))?;
                let encoded = base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    format!("{username}:{password}"),
                );
                secrets.push(password.to_string());
                let value = format!("Basic {encoded}");
                secrets.push(encoded);
                Some((header::AUTHORIZATION, value))
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
        secrets.retain(|s| s.len() >= MIN_SECRET_CHARS);
        let client = reqwest::Client::builder()
            .user_agent(concat!("userload/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15).min(policy.timeout))
            // A redirect could carry the credentials to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| setup(format!("cannot set up HTTPS: {e}")))?;
        Ok(Http {
            client,
            base,
            credentials,
            secrets,
            dialect,
            policy,
            stats: TargetStats::default(),
            name,
        })
    }

    /// What the target is, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL requests are made below.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The URL a rendered template or a followed link names: a path (with its query) below
    /// the base, or an absolute URL that must stay on the target's origin so an answer
    /// cannot send our credentials elsewhere.
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

    /// Sends a request that may be repeated (GET, PUT, PATCH, DELETE, or a POST that is safe
    /// to repeat) until an answer comes that trying again would not change, or the tries run
    /// out. `what` names the request in errors.
    pub async fn send(
        &self,
        method: Method,
        url: &Url,
        body: Option<&Json>,
        if_match: Option<&str>,
        what: &str,
    ) -> Result<Reply, TargetError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .send_once(method.clone(), url, body, if_match, what)
                .await
            {
                Ok(reply) => return Ok(reply),
                Err(Attempt::Final(error)) => return Err(error),
                Err(Attempt::Transient {
                    detail,
                    retry_after,
                    ..
                }) => self.pause(what, attempt, &detail, retry_after).await?,
            }
        }
    }

    /// Waits before try `attempt + 1` and counts the retry, or, when the tries have run out,
    /// says so with the `last` failure.
    pub async fn pause(
        &self,
        what: &str,
        attempt: u32,
        last: &str,
        retry_after: Option<Duration>,
    ) -> Result<(), TargetError> {
        if attempt >= self.policy.max_attempts {
            return Err(self.gave_up(what, attempt, last));
        }
        self.stats
            .retries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let delay = self.policy.delay(attempt, retry_after);
        tracing::warn!(
            target_name = %self.name, request = what, attempt, failure = last,
            "target: trying again in {:.1} s", delay.as_secs_f64()
        );
        tokio::time::sleep(delay).await;
        Ok(())
    }

    /// The error after the last of `attempts` tries of `what` failed with `last`.
    pub fn gave_up(&self, what: &str, attempts: u32, last: &str) -> TargetError {
        TargetError::Unavailable((self.dialect.gave_up)(&self.name, what, attempts, last))
    }

    /// Sends a request once (with `If-Match` when given) and reads the whole answer.
    pub async fn send_once(
        &self,
        method: Method,
        url: &Url,
        body: Option<&Json>,
        if_match: Option<&str>,
        what: &str,
    ) -> Result<Reply, Attempt> {
        self.stats
            .count(method != Method::GET && method != Method::HEAD);
        let mut request = self
            .client
            .request(method.clone(), url.clone())
            .timeout(self.policy.timeout)
            .header(header::ACCEPT, self.dialect.accept);
        if let Some((name, value)) = &self.credentials {
            request = request.header(name, value.clone());
        }
        if let Some(etag) = if_match {
            request = request.header(header::IF_MATCH, etag);
        }
        if let Some(body) = body {
            request = request
                .header(header::CONTENT_TYPE, self.dialect.content_type)
                .body(body.to_string());
        }
        let sent = std::time::Instant::now();
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) => return Err(self.transient(describe(&e), None, false)),
        };
        let status = response.status().as_u16();
        tracing::trace!(
            %method, %url, status, ms = sent.elapsed().as_millis() as u64,
            "target request"
        );
        let text = |name: HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let etag = text(header::ETAG);
        let retry_after = text(header::RETRY_AFTER).and_then(|v| parse_retry_after(&v));
        let mut bytes =
            crate::graph::client::answer_buffer(response.content_length(), MAX_ANSWER_BYTES);
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) if bytes.len() + chunk.len() > MAX_ANSWER_BYTES => {
                    return Err(Attempt::Final(TargetError::Malformed(format!(
                        "{what}: the answer is longer than {} MiB",
                        MAX_ANSWER_BYTES >> 20
                    ))));
                }
                Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => return Err(self.transient(describe(&e), None, false)),
            }
        }
        if self.dialect.transient.contains(&status) {
            let detail = format!("HTTP {status}: {}", self.quote(&bytes));
            return Err(self.transient(detail, retry_after, status == 429));
        }
        Ok(Reply {
            status,
            etag,
            body: bytes,
        })
    }

    fn transient(&self, detail: String, retry_after: Option<Duration>, throttled: bool) -> Attempt {
        Attempt::Transient {
            detail: self.scrub(&detail),
            retry_after,
            throttled,
        }
    }

    /// The error for an answer that is not a success: refused credentials (401, 403) stop
    /// the run, any other status refuses this request.
    pub fn refusal(&self, status: u16, detail: String) -> TargetError {
        match status {
            401 | 403 => TargetError::Unauthorized {
                target: self.name.clone(),
                status,
                detail,
            },
            _ => TargetError::Rejected { status, detail },
        }
    }

    /// What an answer said, in the target's words, shortened and without credentials.
    pub fn quote(&self, body: &[u8]) -> String {
        (self.dialect.quote)(self, body)
    }

    /// `text` with every credential replaced (a server may echo a header it refused).
    pub fn scrub(&self, text: &str) -> String {
        let mut text = text.to_string();
        for secret in &self.secrets {
            text = text.replace(secret.as_str(), "[redacted]");
        }
        text
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::{Secret, TargetKind};

    const PLAIN: Dialect = Dialect {
        accept: "application/json",
        content_type: "application/json",
        transient: &[429, 503],
        quote: |http, body| http.scrub(&String::from_utf8_lossy(body)),
        gave_up: |target, what, attempts, last| format!("{target}: {what}: {attempts}: {last}"),
    };

    /// A SCIM target's config at `https://assets.example.com/scim/v2`.
    pub(crate) fn config(auth: TargetAuth, token: Option<&str>) -> TargetConfig {
        TargetConfig {
            kind: TargetKind::Scim,
            url: Url::parse("https://assets.example.com/scim/v2").unwrap(),
            token: token.map(Secret::literal),
            sync_field: None,
            auth,
            api: None,
            page_size: 100,
            list: true,
            batch_size: 500,
            max_attempts: 3,
            request_timeout: Duration::from_secs(5),
        }
    }

    fn http(auth: TargetAuth, token: Option<&str>) -> Result<Http, TargetError> {
        let config = config(auth, token);
        let base = config.url.clone();
        Http::new(&config, policy_of(&config), "test".into(), base, &PLAIN)
    }

    fn credentials(auth: TargetAuth, token: Option<&str>) -> Option<(String, String)> {
        http(auth, token).unwrap().credentials.map(|(name, value)| {
            assert!(value.is_sensitive());
            (name.to_string(), value.to_str().unwrap().to_owned())
        })
    }

    #[test]
    fn credentials_follow_the_auth_setting() {
        assert_eq!(
            credentials(TargetAuth::Bearer, Some("t0ken")),
            Some(("authorization".into(), "Bearer t0ken".into()))
        );
        assert_eq!(credentials(TargetAuth::Bearer, None), None);
        let basic = TargetAuth::Basic {
            username: "svc".into(),
            password: Secret::literal("pa:ss"),
        };
        assert_eq!(
            credentials(basic, None),
            Some(("authorization".into(), "Basic c3ZjOnBhOnNz".into()))
        );
        let header = TargetAuth::Header("X-API-Key".into());
        assert_eq!(
            credentials(header.clone(), Some("k3y")),
            Some(("x-api-key".into(), "k3y".into()))
        );
        assert_eq!(credentials(header, None), None);
        let bad = TargetAuth::Header("Bad Header".into());
        assert!(http(bad, Some("k")).is_err());
    }

    #[test]
    fn every_credential_is_scrubbed() {
        let basic = TargetAuth::Basic {
            username: "svc".into(),
            password: Secret::literal("pa:ss"),
        };
        let http = http(basic, Some("t0ken")).unwrap();
        assert_eq!(
            http.scrub("t0ken pa:ss c3ZjOnBhOnNz ok"),
            "[redacted] [redacted] [redacted] ok"
        );
    }
}
