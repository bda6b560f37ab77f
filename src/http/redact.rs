//! Keeping secrets out of everything userload writes: errors, logs, reports.
//!
//! Two ways a secret could leak through HTTP. A transport error from reqwest names the URL,
//! whose query (or, for a webhook, whose whole path) may be a credential: [`describe`] says
//! what went wrong without it. A server may echo a credential it refused in its answer:
//! [`Redactor`] blanks every credential out of any text quoted back from a server.

use std::fmt;

/// Secrets shorter than this are not scrubbed from messages (they would blank out words).
const MIN_SECRET_CHARS: usize = 3;

/// What replaces a secret in a message.
const REDACTED: &str = "[redacted]";

/// A transport failure in words, without the URL (which reqwest includes and which may
/// carry query text).
pub fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "the connection broke while reading the answer"
    } else if error.is_request() {
        "the request failed"
    } else {
        "network error"
    };
    let mut root: &dyn std::error::Error = error;
    while let Some(next) = root.source() {
        root = next;
    }
    format!("{kind} ({root})")
}

/// The credentials one client sends, to be scrubbed from anything quoted back.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

impl Redactor {
    /// A redactor for these credential texts (the too short to scrub are left out).
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Redactor {
        let mut secrets: Vec<String> = secrets.into_iter().collect();
        secrets.retain(|s| s.len() >= MIN_SECRET_CHARS);
        Redactor { secrets }
    }

    /// `text` with every credential replaced.
    pub fn scrub(&self, text: &str) -> String {
        let mut text = text.to_string();
        for secret in &self.secrets {
            text = text.replace(secret.as_str(), REDACTED);
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_credential_is_scrubbed_and_short_ones_are_not() {
        let redactor = Redactor::new(["t0ken".to_owned(), "pa:ss".to_owned(), "ab".to_owned()]);
        assert_eq!(
            redactor.scrub("t0ken pa:ss ab ok"),
            "[redacted] [redacted] ab ok"
        );
        assert!(!format!("{redactor:?}").contains("t0ken"));
    }
}
