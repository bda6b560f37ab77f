//! Requests to a SCIM server: credentials on every request, a time limit, retries where a
//! request may safely be sent again, every request counted, and errors that never carry a
//! credential.
//!
//! Reads and PATCHes are sent again after throttling (429), a 5xx or a broken connection,
//! waiting as long as the server's `Retry-After` says. A POST is never sent again from here:
//! the server may have created the user before the answer was lost, so the caller looks
//! first (see [`ScimTarget::create`](super::ScimTarget)).

use std::time::Duration;

use reqwest::Method;
use reqwest::header::{self, HeaderName, HeaderValue};
use serde_json::Value as Json;
use url::Url;

use super::resource;
use crate::config::{TargetAuth, TargetConfig};
use crate::graph::auth::describe;
use crate::graph::retry::{RetryPolicy, parse_retry_after};
use crate::target::{TargetError, TargetStats};

/// The largest answer read; more is taken for a broken or hostile server.
const MAX_BODY: usize = 64 << 20;

/// SCIM's media type, sent with every body.
const SCIM_JSON: &str = "application/scim+json";

/// An answer with its status, whatever the status.
#[derive(Debug)]
pub(super) struct Reply {
    /// The HTTP status.
    pub(super) status: u16,
    /// The `ETag` header, if any.
    pub(super) etag: Option<String>,
    /// The body.
    pub(super) body: Vec<u8>,
}

impl Reply {
    pub(super) fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// How one try went.
#[derive(Debug)]
pub(super) enum Sent {
    /// The server answered with a status that sending again would not change.
    Answered(Reply),
    /// Throttled, a 5xx, a timeout or a broken connection: sending again may work.
    Transient {
        /// What happened, for the message if the tries run out.
        reason: String,
        /// The server's `Retry-After`.
        retry_after: Option<Duration>,
        /// Whether it was a 429: the server says it did nothing with the request.
        throttled: bool,
    },
    /// The answer could not be read (too large).
    Unreadable(String),
}

/// A SCIM server's HTTP endpoint with credentials and a retry policy.
#[derive(Debug)]
pub(super) struct Http {
    client: reqwest::Client,
    users: Url,
    credentials: Option<(HeaderName, HeaderValue)>,
    /// Credential texts that must never appear in a message.
    secrets: Vec<String>,
    pub(super) policy: RetryPolicy,
    pub(super) stats: TargetStats,
    /// `SCIM at …`, for messages.
    pub(super) target: String,
}

impl Http {
    pub(super) fn new(config: &TargetConfig, policy: RetryPolicy) -> Result<Http, TargetError> {
        let target = format!("SCIM at {}", config.url);
        let setup = |why: String| TargetError::Unavailable(format!("{target}: {why}"));
        let token = match &config.token {
            Some(secret) => Some(
                secret
                    .expose()
                    .map_err(|why| setup(format!("cannot use the token: {why}")))?
                    .to_owned(),
            ),
            None => None,
        };
        let mut secrets = Vec::new();
        let credentials = match (&config.auth, token) {
            (TargetAuth::Basic { username, password }, _) => {
                let password = password
                    .expose()
                    .map_err(|why| setup(format!("cannot use the password: {why}")))?;
                let encoded = base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    format!("{username}:{password}"),
                );
                secrets.push(password.to_owned());
                let value = format!("Basic {encoded}");
                secrets.push(encoded);
                Some((header::AUTHORIZATION, value))
            }
            (TargetAuth::Bearer, Some(token)) => {
                let value = format!("Bearer {token}");
                secrets.push(token);
                Some((header::AUTHORIZATION, value))
            }
            (TargetAuth::Header(name), Some(token)) => {
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| setup(format!("`{name}` cannot be a header name")))?;
                secrets.push(token.clone());
                Some((name, token))
            }
            (TargetAuth::Bearer | TargetAuth::Header(_), None) => None,
        };
        let credentials = match credentials {
            Some((name, value)) => {
                let mut value = HeaderValue::from_str(&value).map_err(|_| {
                    setup("the credentials hold characters a header cannot carry".into())
                })?;
                value.set_sensitive(true);
                Some((name, value))
            }
            None => None,
        };
        secrets.retain(|s| s.len() >= 3);
        let client = reqwest::Client::builder()
            .user_agent(concat!("userload/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15).min(policy.timeout))
            // A redirect could carry the credentials to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| setup(format!("cannot set up HTTPS: {e}")))?;
        let mut users = config.url.clone();
        if !users.path().ends_with('/') {
            users.set_path(&format!("{}/", users.path()));
        }
        let users = users
            .join("Users")
            .map_err(|e| setup(format!("not a base URL: {e}")))?;
        Ok(Http {
            client,
            users,
            credentials,
            secrets,
            policy,
            stats: TargetStats::default(),
            target,
        })
    }

    /// `…/Users`, with a query whose spaces are written `%20` (some servers read `+` as a
    /// plus sign).
    pub(super) fn users_url(&self, query: &[(&str, &str)]) -> Url {
        let mut url = self.users.clone();
        if !query.is_empty() {
            let encode = |text: &str| {
                url::form_urlencoded::byte_serialize(text.as_bytes())
                    .collect::<String>()
                    .replace('+', "%20")
            };
            let query: Vec<String> = query
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect();
            url.set_query(Some(&query.join("&")));
        }
        url
    }

    /// `…/Users/{id}`, the id escaped so that no id can point elsewhere.
    pub(super) fn user_url(&self, id: &str) -> Result<Url, TargetError> {
        if matches!(id.trim(), "" | "." | "..") {
            return Err(TargetError::Malformed(format!(
                "`{id}` cannot be a user id"
            )));
        }
        let mut url = self.users.clone();
        url.path_segments_mut()
            .map_err(|()| TargetError::Malformed(format!("{} is not a base URL", self.users)))?
            .push(id);
        Ok(url)
    }

    /// Sends one request once and reads the whole answer.
    pub(super) async fn send_once(
        &self,
        method: Method,
        url: &Url,
        body: Option<&Json>,
        if_match: Option<&str>,
    ) -> Sent {
        let write = method != Method::GET && method != Method::HEAD;
        self.stats.count(write);
        let mut request = self
            .client
            .request(method, url.clone())
            .timeout(self.policy.timeout)
            .header(header::ACCEPT, "application/scim+json, application/json");
        if let Some((name, value)) = &self.credentials {
            request = request.header(name, value.clone());
        }
        if let Some(etag) = if_match {
            request = request.header(header::IF_MATCH, etag);
        }
        if let Some(body) = body {
            request = request
                .header(header::CONTENT_TYPE, SCIM_JSON)
                .body(body.to_string());
        }
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => return self.transient(describe(&e), None, false),
        };
        let status = response.status().as_u16();
        let text = |name: HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let etag = text(header::ETAG);
        let retry_after = text(header::RETRY_AFTER).and_then(|v| parse_retry_after(&v));
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) if body.len() + chunk.len() > MAX_BODY => {
                    return Sent::Unreadable(format!(
                        "the answer is larger than {} MiB",
                        MAX_BODY >> 20
                    ));
                }
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => return self.transient(describe(&e), None, false),
            }
        }
        if matches!(status, 429 | 500 | 502 | 503 | 504) {
            let reason = format!("HTTP {status}: {}", self.detail(&body));
            return self.transient(reason, retry_after, status == 429);
        }
        Sent::Answered(Reply { status, etag, body })
    }

    fn transient(&self, reason: String, retry_after: Option<Duration>, throttled: bool) -> Sent {
        Sent::Transient {
            reason: self.redact(reason),
            retry_after,
            throttled,
        }
    }

    /// Sends a request that may be repeated (GET, a PATCH that sets values) until the server
    /// answers or the tries run out. `what` names the request in errors.
    pub(super) async fn send(
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
            match self.send_once(method.clone(), url, body, if_match).await {
                Sent::Answered(reply) => return Ok(reply),
                Sent::Unreadable(why) => {
                    return Err(TargetError::Malformed(format!("{what}: {why}")));
                }
                Sent::Transient {
                    reason,
                    retry_after,
                    ..
                } => self.pause(what, attempt, &reason, retry_after).await?,
            }
        }
    }

    /// Waits before try `attempt + 1`, or says the tries have run out.
    pub(super) async fn pause(
        &self,
        what: &str,
        attempt: u32,
        reason: &str,
        retry_after: Option<Duration>,
    ) -> Result<(), TargetError> {
        if attempt >= self.policy.max_attempts {
            return Err(TargetError::Unavailable(format!(
                "{what} at {} failed after {attempt} attempt(s): {reason}",
                self.target
            )));
        }
        self.stats
            .retries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(self.policy.delay(attempt, retry_after)).await;
        Ok(())
    }

    /// The error for an answer that is not a success: refused credentials (401, 403) or a
    /// refused request.
    pub(super) fn refusal(&self, reply: &Reply, what: &str) -> TargetError {
        let detail = self.detail(&reply.body);
        match reply.status {
            401 | 403 => TargetError::Unauthorized {
                target: self.target.clone(),
                status: reply.status,
                detail: format!("{what}: {detail}"),
            },
            status => TargetError::Rejected {
                status,
                detail: format!("{what}: {detail}"),
            },
        }
    }

    /// What an error answer says, shortened, without credentials.
    fn detail(&self, body: &[u8]) -> String {
        let text = self.redact(String::from_utf8_lossy(body).into_owned());
        resource::detail(text.as_bytes())
    }

    /// `text` with every credential blanked out (a server may echo a header it refused).
    fn redact(&self, text: String) -> String {
        self.secrets.iter().fold(text, |text, secret| {
            if text.contains(secret.as_str()) {
                text.replace(secret.as_str(), "[redacted]")
            } else {
                text
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Secret, TargetKind};

    fn config(auth: TargetAuth, token: Option<&str>) -> TargetConfig {
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

    fn credentials(auth: TargetAuth, token: Option<&str>) -> Option<(String, String)> {
        let http = Http::new(&config(auth, token), RetryPolicy::default()).unwrap();
        http.credentials.map(|(name, value)| {
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
        assert!(Http::new(&config(bad, Some("k")), RetryPolicy::default()).is_err());
    }

    #[test]
    fn urls_stay_below_the_base() {
        let http = Http::new(&config(TargetAuth::Bearer, None), RetryPolicy::default()).unwrap();
        assert_eq!(
            http.user_url("../../admin?x=1#y").unwrap().as_str(),
            "https://assets.example.com/scim/v2/Users/..%2F..%2Fadmin%3Fx=1%23y"
        );
        assert!(http.user_url("..").is_err());
        assert_eq!(
            http.users_url(&[("filter", r#"userName eq "a+b c""#)])
                .as_str(),
            "https://assets.example.com/scim/v2/Users?filter=userName%20eq%20%22a%2Bb%20c%22"
        );
    }

    #[test]
    fn messages_never_carry_the_credentials() {
        let http = Http::new(
            &config(TargetAuth::Bearer, Some("s3cr3t")),
            RetryPolicy::default(),
        )
        .unwrap();
        let reply = Reply {
            status: 400,
            etag: None,
            body: br#"{"detail": "token s3cr3t is not valid"}"#.to_vec(),
        };
        let said = http.refusal(&reply, "GET /Users").to_string();
        assert!(
            !said.contains("s3cr3t") && said.contains("[redacted]"),
            "{said}"
        );
    }
}
