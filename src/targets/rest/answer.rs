//! How the REST and Oomnitza targets speak over the shared HTTP layer: JSON both ways,
//! 408 tried again like 429 and 5xx, answers read as JSON, and error messages quoted from
//! the shapes JSON APIs commonly answer with.

use reqwest::Method;
use serde_json::Value as Json;
use url::Url;

use crate::diag::shorten;
use crate::targets::TargetError;
use crate::targets::http::{Dialect, Http, Reply, html_title};

/// How much of an answer is quoted in an error.
const QUOTED_CHARS: usize = 300;

/// JSON APIs' HTTP.
pub(crate) const REST: Dialect = Dialect {
    accept: "application/json",
    content_type: "application/json",
    transient: &[408, 429, 500, 502, 503, 504],
    quote,
    gave_up: |target, what, attempts, last| {
        let tries = if attempts == 1 { "try" } else { "tries" };
        format!("{target}: {what} failed after {attempts} {tries}: {last}")
    },
};

/// A 2xx answer.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The status, 200–299.
    pub status: u16,
    /// The body as JSON; `null` when empty.
    pub body: Json,
    /// The `Content-Range` header, if any.
    pub content_range: Option<String>,
}

/// Sends an idempotent request, trying again after transient failures, and reads the answer.
pub(crate) async fn send(
    http: &Http,
    method: Method,
    url: &Url,
    body: Option<&Json>,
    what: &str,
) -> Result<Answer, TargetError> {
    let reply = http.send(method, url, body, None, what).await?;
    read(http, reply, what)
}

/// A 2xx answer with its body as JSON; any other status as the refusal it is.
pub(crate) fn read(http: &Http, reply: Reply, what: &str) -> Result<Answer, TargetError> {
    if let Some(title) = html_title(&reply.body) {
        let url = reply
            .url
            .as_ref()
            .map_or_else(|| "the target".to_string(), |u| http.scrub(u.as_str()));
        let detail = format!(
            "{url} answered HTTP {} with an HTML page, not JSON{title}",
            reply.status
        );
        return Err(if reply.ok() {
            TargetError::Malformed(format!("{what}: {detail}"))
        } else {
            http.refusal(reply.status, detail)
        });
    }
    if !reply.ok() {
        return Err(http.refusal(reply.status, http.quote(&reply.body)));
    }
    let body = if reply.body.iter().all(u8::is_ascii_whitespace) {
        Json::Null
    } else {
        serde_json::from_slice(&reply.body).map_err(|e| {
            TargetError::Malformed(format!(
                "{what}: the answer is not JSON ({e}): {}",
                http.quote(&reply.body)
            ))
        })?
    };
    Ok(Answer {
        status: reply.status,
        body,
        content_range: reply.content_range,
    })
}

/// What an answer said, shortened for an error: the message of a JSON error body when
/// there is one, else the text; never the credentials.
fn quote(http: &Http, bytes: &[u8]) -> String {
    if let Some(title) = html_title(bytes) {
        return shorten(&http.scrub(&format!("an HTML page{title}")), QUOTED_CHARS);
    }
    let text = match serde_json::from_slice::<Json>(bytes) {
        Ok(json) => message_of(&json).unwrap_or_else(|| json.to_string()),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    };
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return "no details".to_string();
    }
    shorten(&http.scrub(&text), QUOTED_CHARS)
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
    .or_else(|| match body {
        // GLPI: `["ERROR_ITEM_NOT_FOUND", "Item not found"]`.
        Json::Array(items) if !items.is_empty() && items.iter().all(Json::is_string) => {
            flatten_message(body).map(|m| m.replacen("; ", ": ", 1))
        }
        _ => None,
    })
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
