//! One GET against Graph, done properly: a valid token, the advanced-query header when the
//! query needs it, retries on throttling and transient failures, one forced token refresh
//! on 401, and an error that names the request that failed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use url::Url;

use super::auth::{TokenSource, describe};
use super::error::{GraphError, GraphFault};
use super::retry::{RetryPolicy, parse_retry_after};
use crate::config::SourceConfig;

/// The longest answer read from Graph: a page of 999 users with every attribute is a few
/// MiB, so anything this long is a broken or hostile server.
const MAX_PAGE_BYTES: usize = 64 << 20;

/// A page of a Graph collection, as Graph sends it.
#[derive(Debug, serde::Deserialize)]
pub struct Page {
    /// The objects on this page, as Graph wrote them (may be empty even when more pages
    /// follow). Kept raw so that a caller who only passes them on does not pay for parsing.
    #[serde(default)]
    pub value: Vec<Box<serde_json::value::RawValue>>,
    /// The next page, to be followed exactly as given.
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
    /// On the last page of a delta round: where the next round starts.
    #[serde(rename = "@odata.deltaLink")]
    pub delta_link: Option<String>,
    /// With `$count=true`: how many objects match in all.
    #[serde(rename = "@odata.count")]
    pub count: Option<u64>,
}

/// Counters over everything one client sent, for summaries and tests.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests sent to Graph, retries included.
    pub requests: AtomicU64,
    /// Requests answered 429 or 503/504 with a `Retry-After`.
    pub throttled: AtomicU64,
    /// Requests sent again after a failure.
    pub retries: AtomicU64,
}

/// An authenticated Graph client for one tenant.
#[derive(Debug)]
pub struct GraphClient {
    http: reqwest::Client,
    root: Url,
    tokens: TokenSource,
    policy: RetryPolicy,
    /// What this client has sent so far.
    pub stats: Stats,
}

impl GraphClient {
    /// A client for the tenant in `source`, with its retry and timeout settings.
    pub fn new(source: &SourceConfig) -> Result<Self, GraphError> {
        let policy = RetryPolicy {
            max_attempts: source.max_attempts,
            timeout: source.request_timeout,
            ..RetryPolicy::default()
        };
        Self::with_policy(source, policy)
    }

    /// A client with an explicit retry policy (tests shorten the waits).
    pub fn with_policy(source: &SourceConfig, policy: RetryPolicy) -> Result<Self, GraphError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("userload/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15).min(policy.timeout))
            // Redirects could carry the bearer token to another host; Graph does not use them.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| GraphError::Credential(format!("cannot set up HTTPS: {e}")))?;
        let tokens = TokenSource::new(http.clone(), source, policy)?;
        let mut root = source.graph_root.clone();
        if !root.path().ends_with('/') {
            root.set_path(&format!("{}/", root.path()));
        }
        Ok(GraphClient {
            http,
            root,
            tokens,
            policy,
            stats: Stats::default(),
        })
    }

    /// The Graph root, e.g. `https://graph.microsoft.com/`.
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// The token source (for `check`, which reads the granted permissions).
    pub fn tokens(&self) -> &TokenSource {
        &self.tokens
    }

    /// GETs one page. `advanced` adds `ConsistencyLevel: eventual` (Graph does not remember
    /// it between pages). `what` names the request in errors, e.g. "page 3 of GET /v1.0/users".
    pub async fn get_page(
        &self,
        url: &str,
        advanced: bool,
        what: &str,
    ) -> Result<Page, GraphError> {
        self.get_page_early(url, advanced, what, None).await
    }

    /// Like [`get_page`](Self::get_page), and as soon as the answer's opening shows the
    /// `@odata.nextLink` (Graph sends it before `value`), passes it to `early` so the next page
    /// can be requested while this one is still arriving. The caller must check it against the
    /// finished page's link: after a retry the two may differ.
    pub async fn get_page_early(
        &self,
        url: &str,
        advanced: bool,
        what: &str,
        mut early: Option<tokio::sync::oneshot::Sender<String>>,
    ) -> Result<Page, GraphError> {
        let url = self.checked(url, what)?;
        let mut attempt = 0;
        let mut refreshed = false;
        let mut token = self.tokens.token().await?;
        loop {
            attempt += 1;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let mut request = self
                .http
                .get(url.clone())
                .timeout(self.policy.timeout)
                .bearer_auth(token.secret());
            if advanced {
                request = request.header("ConsistencyLevel", "eventual");
            }
            let sent = std::time::Instant::now();
            let (failure, retry_after, request_id) = match request.send().await {
                Err(e) => (describe(&e), None, None),
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    tracing::trace!(
                        %url, status, ms = sent.elapsed().as_millis() as u64,
                        request_id = response.headers().get("request-id").and_then(|v| v.to_str().ok()),
                        "Graph GET"
                    );
                    let header = |name| {
                        response
                            .headers()
                            .get(name)
                            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                            .map(str::to_owned)
                    };
                    let request_id = header("request-id").or_else(|| header("client-request-id"));
                    let retry_after = header("retry-after").and_then(|v| parse_retry_after(&v));
                    let ok = (200..300).contains(&status);
                    let mut body = answer_buffer(response.content_length(), MAX_PAGE_BYTES);
                    let read = loop {
                        match response.chunk().await {
                            Ok(Some(chunk)) if body.len() + chunk.len() > MAX_PAGE_BYTES => {
                                return Err(GraphError::Malformed {
                                    what: what.to_owned(),
                                    detail: format!(
                                        "the answer is longer than {} MiB",
                                        MAX_PAGE_BYTES >> 20
                                    ),
                                });
                            }
                            Ok(Some(chunk)) => {
                                body.extend_from_slice(&chunk);
                                if ok
                                    && early.is_some()
                                    && let Some(link) = early_next_link(&body)
                                    && let (Some(sender), Some(link)) = (early.take(), link)
                                {
                                    let _ = sender.send(link);
                                }
                            }
                            Ok(None) => break Ok(()),
                            Err(e) => break Err(e),
                        }
                    };
                    match read {
                        Err(e) => (describe(&e), None, request_id),
                        Ok(()) if ok => {
                            return serde_json::from_slice(&body).map_err(|e| {
                                GraphError::Malformed {
                                    what: what.to_owned(),
                                    detail: format!("the page is not a Graph collection ({e})"),
                                }
                            });
                        }
                        Ok(()) => {
                            let fault = GraphFault::parse(&body, request_id);
                            if status == 401 && !refreshed {
                                // Expired early, revoked, or our clock is off: one new token.
                                refreshed = true;
                                attempt -= 1;
                                token = self.tokens.refresh(&token).await?;
                                continue;
                            }
                            if !matches!(status, 429 | 500 | 502 | 503 | 504) {
                                return Err(refusal(what, status, fault));
                            }
                            if retry_after.is_some() {
                                self.stats.throttled.fetch_add(1, Ordering::Relaxed);
                            }
                            let code = if fault.code.is_empty() {
                                String::new()
                            } else {
                                format!(" {}", fault.code)
                            };
                            (
                                format!("HTTP {status}{code}"),
                                retry_after,
                                fault.request_id,
                            )
                        }
                    }
                }
            };
            if attempt >= self.policy.max_attempts {
                return Err(GraphError::GaveUp {
                    what: what.to_owned(),
                    attempts: attempt,
                    last: failure,
                    request_id,
                });
            }
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            let delay = self.policy.delay(attempt, retry_after);
            tracing::warn!(
                request = what, attempt, failure = %failure, request_id = request_id.as_deref(),
                "Graph: trying again in {:.1} s", delay.as_secs_f64()
            );
            tokio::time::sleep(delay).await;
            // A retry may outlast the token.
            token = self.tokens.token().await?;
        }
    }

    /// A link to follow: it must stay on the Graph root, so a hostile or broken answer cannot
    /// send our token elsewhere.
    fn checked(&self, url: &str, what: &str) -> Result<Url, GraphError> {
        let parsed = Url::parse(url).or_else(|_| self.root.join(url.trim_start_matches('/')));
        match parsed {
            Ok(u) if u.origin() == self.root.origin() => Ok(u),
            _ => Err(GraphError::Malformed {
                what: what.to_owned(),
                detail: format!(
                    "a next link points away from {}: {}",
                    self.root,
                    crate::diag::shorten(url, 80)
                ),
            }),
        }
    }
}

/// A refusal in words an admin can act on.
fn refusal(what: &str, status: u16, fault: GraphFault) -> GraphError {
    let message = match (status, fault.code.as_str()) {
        (401, _) => format!(
            "Graph rejected a fresh access token ({}); check that `cloud` matches the tenant",
            nonempty(&fault.code, "401")
        ),
        (403, "Authorization_RequestDenied") | (403, _) => format!(
            "permission denied ({}): grant the app the application permission User.Read.All \
             (or Directory.Read.All), plus GroupMember.Read.All when `group` is set, under API \
             permissions, then press \"Grant admin consent\"",
            nonempty(&fault.code, "403")
        ),
        (404, _) if what.contains("/groups/") => {
            "the group was not found; check `group` (the group's Object ID)".to_owned()
        }
        _ => format!(
            "Graph answered {status} {}: {}",
            fault.code,
            nonempty(&fault.message, "no details")
        ),
    };
    GraphError::Refused {
        what: what.to_owned(),
        status,
        code: fault.code,
        message,
        request_id: fault.request_id,
    }
}

fn nonempty<'a>(text: &'a str, otherwise: &'a str) -> &'a str {
    if text.is_empty() { otherwise } else { text }
}

/// A buffer for an answer of `length` bytes (as the server announced it, up to `most`): a
/// page of a thousand users is read into one allocation rather than grown chunk by chunk.
pub(crate) fn answer_buffer(length: Option<u64>, most: usize) -> Vec<u8> {
    Vec::with_capacity(length.map_or(0, |n| usize::try_from(n).unwrap_or(most).min(most)))
}

/// The `@odata.nextLink` of a page whose opening has arrived: `Some(Some(link))` when the
/// annotations before `value` hold one, `Some(None)` when they hold none, `None` while
/// `value` has not started yet.
fn early_next_link(opening: &[u8]) -> Option<Option<String>> {
    // Annotations are short; a page whose `value` starts late is simply not read early.
    let window = &opening[..opening.len().min(16 * 1024)];
    let at = window.windows(7).position(|w| w == b"\"value\"")?;
    let head = std::str::from_utf8(&window[..at]).ok()?;
    let head = head.trim_end().trim_end_matches(',');
    let annotations: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&format!("{head}}}")).ok()?;
    Some(
        annotations
            .get("@odata.nextLink")
            .and_then(|l| l.as_str())
            .map(str::to_owned),
    )
}

#[cfg(test)]
mod tests {
    use super::early_next_link;

    #[test]
    fn next_link_read_from_the_opening_of_a_page() {
        let page = br#"{"@odata.context":"x","@odata.nextLink":"https://g/v1.0/users?$skiptoken=a\u0026b","value":[{"id":"1"#;
        assert_eq!(
            early_next_link(page),
            Some(Some("https://g/v1.0/users?$skiptoken=a&b".to_owned()))
        );
        assert_eq!(
            early_next_link(br#"{"@odata.context":"x","value":["#),
            Some(None)
        );
        assert_eq!(early_next_link(br#"{"@odata.context":"x","#), None);
        // A link after `value` is only known when the page is complete.
        assert_eq!(
            early_next_link(br#"{"value":[],"@odata.nextLink":"n"}"#),
            Some(None)
        );
    }
}
