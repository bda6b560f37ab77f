//! Tells an admin's chat channel when a run needs them: it failed, it held deactivations
//! back, or some writes failed (as `[notify] on` chooses).
//!
//! The message is posted to an incoming webhook as `{"title": …, "text": …}`: Slack shows
//! `text`, a Teams incoming webhook shows both, and anything else that takes JSON can read
//! them. The webhook URL is a secret (it carries its own credentials): messages about it name
//! only its host. A webhook that cannot be reached is logged as a warning and changes nothing
//! about the run or its exit code.

use std::time::Duration;

use serde_json::json;

use crate::config::{NotifyConfig, NotifyOn};

/// How long one post may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// Posts tried before giving up.
const ATTEMPTS: u32 = 3;

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

/// The JSON body posted for `notice`, sent from `host`.
pub fn body(notice: &Notice, host: &str) -> serde_json::Value {
    let title = format!("userload on {host}: {}", notice.headline);
    let mut text = title.clone();
    for line in &notice.details {
        text.push('\n');
        text.push_str(line);
    }
    json!({ "title": title, "text": text })
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
    let refused = |detail: String| NotifyError::Refused {
        host: host.clone(),
        detail,
    };
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| refused(format!("cannot set up HTTPS: {e}")))?;
    let body = body(notice, &hostname());
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        match client.post(url.clone()).json(&body).send().await {
            Ok(answer) if answer.status().is_success() => {
                tracing::info!(%host, status = notice.status.name(), "notified the webhook");
                return Ok(true);
            }
            Ok(answer) => {
                let status = answer.status().as_u16();
                last = format!("HTTP {status}");
                if !(status == 429 || status >= 500) {
                    break;
                }
            }
            // Without the URL: it is the secret.
            Err(e) => last = crate::graph::auth::describe(&e.without_url()),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
        }
    }
    Err(refused(last))
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
