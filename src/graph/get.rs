//! One GET against Graph, done properly: a valid token, the advanced-query header when the
//! query needs it, retries on throttling and transient failures, one forced token refresh
//! on 401, and an error that names the request that failed.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use url::Url;

use super::auth::AccessToken;
use super::client::{GraphClient, Page};
use super::error::{GraphError, GraphFault};
use crate::http::{self, BodyError, Exchange, RetryOn, Step, Transient, describe};

/// The longest answer read from Graph: a page of 999 users with every attribute is a few
/// MiB, so anything this long is a broken or hostile server.
const MAX_PAGE_BYTES: usize = 64 << 20;

/// One page GET, as the retry loop sends it.
pub(super) struct PageGet<'a> {
    /// The client it goes out on.
    pub client: &'a GraphClient,
    /// The page, already checked to be on the Graph root.
    pub url: Url,
    /// Whether it needs `ConsistencyLevel: eventual`.
    pub advanced: bool,
    /// The request in errors, e.g. "page 3 of GET /v1.0/users".
    pub what: &'a str,
    /// Where the next link goes as soon as the page's opening shows it.
    pub early: Option<oneshot::Sender<String>>,
    /// The token the next attempt carries.
    pub token: AccessToken,
    /// Whether the token was already renewed after a 401.
    pub refreshed: bool,
}

impl Exchange for PageGet<'_> {
    type Output = Page;
    type Error = GraphError;

    async fn attempt(&mut self) -> Step<Page, GraphError> {
        let client = self.client;
        client.stats.requests.fetch_add(1, Ordering::Relaxed);
        let mut request = client
            .http
            .get(self.url.clone())
            .bearer_auth(self.token.secret());
        if self.advanced {
            request = request.header("ConsistencyLevel", "eventual");
        }
        let sent = Instant::now();
        let mut response = match request.send().await {
            Ok(response) => response,
            // A request that cannot even be built (an unusable URL) fails the same way every
            // time: it is not tried again.
            Err(e) if e.is_builder() => return Step::Done(Err(self.malformed(describe(&e)))),
            Err(e) => return Step::Retry(Transient::new(describe(&e))),
        };
        let status = response.status().as_u16();
        tracing::trace!(
            url = %self.url, status, ms = sent.elapsed().as_millis() as u64,
            request_id = response.headers().get("request-id").and_then(|v| v.to_str().ok()),
            "Graph GET"
        );
        let request_id = http::header(&response, "request-id")
            .or_else(|| http::header(&response, "client-request-id"));
        let retry_after = http::retry_after(response.headers());
        let ok = (200..300).contains(&status);
        let early = &mut self.early;
        let read = http::read_body(&mut response, MAX_PAGE_BYTES, |opening| {
            if ok
                && early.is_some()
                && let Some(link) = early_next_link(opening)
                && let (Some(sender), Some(link)) = (early.take(), link)
            {
                let _ = sender.send(link);
            }
        })
        .await;
        let body = match read {
            Ok(body) => body,
            Err(too_long @ BodyError::TooLong(_)) => {
                return Step::Done(Err(self.malformed(too_long.to_string())));
            }
            Err(broken @ BodyError::Broken(_)) => {
                return Step::Retry(Transient {
                    request_id,
                    ..Transient::new(broken.to_string())
                });
            }
        };
        if ok {
            return Step::Done(
                // Checked as UTF-8 once for the whole page, rather than user by user.
                std::str::from_utf8(&body)
                    .map_err(|e| e.to_string())
                    .and_then(|text| serde_json::from_str(text).map_err(|e| e.to_string()))
                    .map_err(|e| {
                        self.malformed(format!("the page is not a Graph collection ({e})"))
                    }),
            );
        }
        self.failed(status, &body, request_id, retry_after).await
    }

    fn meter(&self) -> Option<&crate::http::Meter> {
        Some(&self.client.stats.meter)
    }

    fn gave_up(&self, attempts: u32, last: Transient) -> GraphError {
        GraphError::GaveUp {
            what: self.what.to_owned(),
            attempts,
            last: last.detail,
            request_id: last.request_id,
        }
    }

    fn waiting(&self, attempt: u32, last: &Transient, delay: Duration) {
        self.client.stats.retries.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            request = self.what, attempt, failure = %last.detail,
            request_id = last.request_id.as_deref(),
            "Graph: trying again in {:.1} s", delay.as_secs_f64()
        );
    }

    async fn before_resend(&mut self, _: &Transient) -> Result<Option<Page>, GraphError> {
        // A retry may outlast the token.
        self.token = self.client.tokens.token().await?;
        Ok(None)
    }
}

impl PageGet<'_> {
    /// What an answer other than 2xx comes to: one new token after a 401, another try
    /// after throttling or a server error, else the refusal.
    async fn failed(
        &mut self,
        status: u16,
        body: &[u8],
        request_id: Option<String>,
        retry_after: Option<Duration>,
    ) -> Step<Page, GraphError> {
        let fault = GraphFault::parse(body, request_id);
        if status == 401 && !self.refreshed {
            // Expired early, revoked, or our clock is off: one new token.
            self.refreshed = true;
            return match self.client.tokens.refresh(&self.token).await {
                Ok(token) => {
                    self.token = token;
                    Step::Again
                }
                Err(error) => Step::Done(Err(error)),
            };
        }
        if !RetryOn::BUSY.covers(status) {
            return Step::Done(Err(refusal(self.what, &self.url, status, fault)));
        }
        if retry_after.is_some() {
            self.client.stats.throttled.fetch_add(1, Ordering::Relaxed);
        }
        let code = if fault.code.is_empty() {
            String::new()
        } else {
            format!(" {}", fault.code)
        };
        Step::Retry(Transient {
            detail: format!("HTTP {status}{code}"),
            retry_after,
            throttled: status == 429,
            request_id: fault.request_id,
        })
    }

    fn malformed(&self, detail: String) -> GraphError {
        GraphError::Malformed {
            what: self.what.to_owned(),
            detail,
        }
    }
}

/// A refusal in words an admin can act on; `url` tells which permission a 403 is about.
fn refusal(what: &str, url: &Url, status: u16, fault: GraphFault) -> GraphError {
    let path = url.path();
    let query = url.query().unwrap_or_default();
    let message = match (status, fault.code.as_str()) {
        (401, _) => format!(
            "Graph rejected a fresh access token ({}); check that `cloud` matches the tenant",
            nonempty(&fault.code, "401")
        ),
        (403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant") => {
            "sign-in activity needs an Entra ID P1 (or P2) licence in the tenant: drop \
             `signInActivity` from the filter and the mapping, or license the tenant"
                .to_owned()
        }
        (403, _) if query.contains("signInActivity") => format!(
            "permission denied ({}): reading sign-in activity (`signInActivity`) needs the \
             application permission AuditLog.Read.All besides User.Read.All, and an Entra ID \
             P1 licence in the tenant; grant it under API permissions, then press \"Grant \
             admin consent\"",
            nonempty(&fault.code, "403")
        ),
        (403, _) if path.ends_with("/subscribedSkus") => format!(
            "permission denied ({}): reading licence names (`licenses`) needs the application \
             permission Organization.Read.All (or Directory.Read.All); grant it under API \
             permissions, then press \"Grant admin consent\"",
            nonempty(&fault.code, "403")
        ),
        (403, _) if path.contains("/groups") => format!(
            "permission denied ({}): reading groups needs the application permission \
             GroupMember.Read.All (or Group.Read.All, Directory.Read.All) besides \
             User.Read.All; grant it under API permissions, then press \"Grant admin consent\"",
            nonempty(&fault.code, "403")
        ),
        (403, _) => format!(
            "permission denied ({}): grant the app the application permission User.Read.All \
             (or Directory.Read.All), plus GroupMember.Read.All when `group` is set, under API \
             permissions, then press \"Grant admin consent\"",
            nonempty(&fault.code, "403")
        ),
        (404, _) if what.contains("/groups/") => {
            "the group was not found; check `group` and the groups named in [source] (each a \
             display name or an Object ID)"
                .to_owned()
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
