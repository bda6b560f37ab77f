//! Tells an admin's chat channel when a run needs them: it failed, it held deactivations
//! back, or some writes failed (as `[notify] on` chooses). The message names the first few
//! leavers who still hold assets, and a few things each holds (the report has them all).
//! The daemon sends two notices of its own the same way: once when runs keep failing, and
//! once when one succeeds again.
//!
//! The message is posted to an incoming webhook as `{"title": …, "text": …}`: Slack shows
//! `text`, a Teams incoming webhook shows both, and anything else that takes JSON can read
//! them. The webhook URL is a secret (it carries its own credentials): messages about it name
//! only its host. A webhook that cannot be reached is logged as a warning and changes nothing
//! about the run or its exit code.
//!
//! A ping URL (`[notify] ping_url`, the healthchecks.io convention Uptime Kuma's push
//! monitors also take) hears of every run: `…/start` when it starts, the URL itself when it
//! ends with exit code 0, `…/fail` otherwise, each with the run's outcome in one line. A
//! ping is tried once, within [`PING_TIMEOUT`], and never changes the run either.

use std::time::Duration;

use serde_json::json;

use crate::config::{NotifyConfig, NotifyOn};
use crate::http::{self, Exchange, RetryOn, RetryPolicy, Step, Transient};

/// How a notice is posted: three tries at most, one and then two seconds apart, each within
/// 15 s. A webhook's `Retry-After` is not waited for: a chat message is not worth holding
/// up the end of a run.
const POLICY: RetryPolicy = RetryPolicy {
    max_attempts: 3,
    base_delay: Duration::from_secs(1),
    max_delay: Duration::from_secs(2),
    timeout: Duration::from_secs(15),
    jitter: false,
};

/// A run's result, as the webhook hears it.
#[derive(Debug, Clone)]
pub struct Notice {
    /// `failed`, `limited`, `partial`, `ok`.
    pub status: NotifyOn,
    /// One line: what happened.
    pub headline: String,
    /// Further lines: counts, the first failures, what to do.
    pub details: Vec<String>,
}

/// Why a notice was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The webhook secret cannot be read (env var unset, file missing).
    #[error("the webhook is unavailable: {0}")]
    Unavailable(String),
    /// The webhook is not an http(s) URL.
    #[error("the webhook is not an http(s) URL")]
    NotUrl,
    /// The webhook did not take the message.
    #[error("the webhook at {host} did not take the message: {detail}")]
    Refused {
        /// The webhook's host.
        host: String,
        /// The last failure.
        detail: String,
    },
}

/// The JSON body posted for `notice`, sent from `host`, scrubbed of secrets like every
/// other text userload writes.
pub fn body(notice: &Notice, host: &str) -> serde_json::Value {
    let title = format!("userload on {host}: {}", notice.headline);
    let mut text = title.clone();
    for line in &notice.details {
        text.push('\n');
        text.push_str(line);
    }
    let scrub = |text: &str| crate::secrets::scrub(text).into_owned();
    json!({ "title": scrub(&title), "text": scrub(&text) })
}

/// Posts `notice` when the config has a webhook and asks for its status; `Ok(false)` when
/// nothing was to be sent.
pub async fn send(config: &NotifyConfig, notice: &Notice) -> Result<bool, NotifyError> {
    let Some(webhook) = &config.webhook else {
        return Ok(false);
    };
    if !config.on.contains(&notice.status) {
        return Ok(false);
    }
    let url = webhook
        .expose()
        .map_err(|why| NotifyError::Unavailable(why.to_string()))?;
    let url = url::Url::parse(url.trim()).map_err(|_| NotifyError::NotUrl)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(NotifyError::NotUrl);
    }
    let host = url.host_str().unwrap_or_default().to_owned();
    let client = http::client(POLICY.timeout).map_err(|e| NotifyError::Refused {
        host: host.clone(),
        detail: e.to_string(),
    })?;
    let body = body(notice, &hostname());
    let mut post = Post {
        client: &client,
        url: &url,
        body: &body,
        host: &host,
    };
    http::run(&POLICY, &mut post).await?;
    tracing::info!(%host, status = notice.status.name(), "notified the webhook");
    Ok(true)
}

/// One notice posted to the webhook, as the retry loop sends it.
struct Post<'a> {
    client: &'a reqwest::Client,
    /// The webhook (a secret).
    url: &'a url::Url,
    body: &'a serde_json::Value,
    /// The webhook's host, the only part of it named in messages.
    host: &'a str,
}

impl Post<'_> {
    fn refused(&self, detail: String) -> NotifyError {
        NotifyError::Refused {
            host: self.host.to_owned(),
            detail,
        }
    }
}

impl Exchange for Post<'_> {
    type Output = ();
    type Error = NotifyError;

    async fn attempt(&mut self) -> Step<(), NotifyError> {
        let sent = self
            .client
            .post(self.url.clone())
            .json(self.body)
            .send()
            .await;
        match sent {
            Ok(answer) if answer.status().is_success() => Step::Done(Ok(())),
            Ok(answer) => {
                let status = answer.status().as_u16();
                let last = format!("HTTP {status}");
                if RetryOn::ThrottlingAndServerErrors.covers(status) {
                    Step::Retry(Transient::new(last))
                } else {
                    Step::Done(Err(self.refused(last)))
                }
            }
            // Without the URL: it is the secret.
            Err(e) => Step::Retry(Transient::new(http::describe(&e.without_url()))),
        }
    }

    fn gave_up(&self, _: u32, last: Transient) -> NotifyError {
        self.refused(last.detail)
    }
}

/// This machine's name, for the message.
fn hostname() -> String {
    std::env::var("USERLOAD_HOSTNAME")
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this machine".to_owned())
}

/// How long a ping may take before it is given up: a monitor is not worth holding up a run.
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// What a ping tells the monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ping {
    /// A run started: `…/start`.
    Start,
    /// A run ended with exit code 0: the URL itself.
    Success,
    /// A run ended otherwise: `…/fail`.
    Fail,
}

impl Ping {
    /// The URL this ping goes to, from the configured `base`.
    pub fn url(self, base: &url::Url) -> url::Url {
        let suffix = match self {
            Ping::Start => "start",
            Ping::Success => return base.clone(),
            Ping::Fail => "fail",
        };
        let mut url = base.clone();
        let path = format!("{}/{suffix}", url.path().trim_end_matches('/'));
        url.set_path(&path);
        url
    }
}

/// Tells the ping URL, when the config has one, that a run started or ended, with `line`
/// (scrubbed) as the body; `Ok(false)` when there is no ping URL.
pub async fn ping(config: &NotifyConfig, ping: Ping, line: &str) -> Result<bool, NotifyError> {
    let Some(secret) = &config.ping_url else {
        return Ok(false);
    };
    let base = secret
        .expose()
        .map_err(|why| NotifyError::Unavailable(why.to_string()))?;
    let base = url::Url::parse(base.trim()).map_err(|_| NotifyError::NotUrl)?;
    if !matches!(base.scheme(), "http" | "https") {
        return Err(NotifyError::NotUrl);
    }
    let host = base.host_str().unwrap_or_default().to_owned();
    let refused = |detail: String| NotifyError::Refused {
        host: host.clone(),
        detail,
    };
    let client = http::client(PING_TIMEOUT).map_err(|e| refused(e.to_string()))?;
    let body = format!("{}\n", crate::secrets::scrub(line));
    let sent = client
        .post(ping.url(&base))
        .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(body)
        .send()
        .await;
    match sent {
        Ok(answer) if answer.status().is_success() => Ok(true),
        Ok(answer) => Err(refused(format!("HTTP {}", answer.status().as_u16()))),
        // Without the URL: it is the secret.
        Err(e) => Err(refused(http::describe(&e.without_url()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_go_to_start_the_url_and_fail() {
        let base = url::Url::parse("https://hc-ping.com/abc-123/").unwrap();
        assert_eq!(
            Ping::Start.url(&base).as_str(),
            "https://hc-ping.com/abc-123/start"
        );
        assert_eq!(
            Ping::Success.url(&base).as_str(),
            "https://hc-ping.com/abc-123/"
        );
        assert_eq!(
            Ping::Fail.url(&base).as_str(),
            "https://hc-ping.com/abc-123/fail"
        );
        let kuma = url::Url::parse("https://kuma.example.com/api/push/tok?status=up").unwrap();
        assert_eq!(
            Ping::Fail.url(&kuma).as_str(),
            "https://kuma.example.com/api/push/tok/fail?status=up"
        );
    }
}
