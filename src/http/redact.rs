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

/// Whether a word has the shape of a JWT (`eyJ….….…`), as Entra's tokens do.
pub fn looks_like_jwt(word: &str) -> bool {
    word.contains("eyJ") && word.matches('.').count() >= 2
}

/// `text` with every token-shaped word blanked: a JWT (`eyJ….….…`, as Entra issues), and
/// whatever follows `Bearer `. For answers quoted from a server that may echo the request's
/// `Authorization` header, when the exact secret is not at hand.
pub fn mask_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut after_bearer = false;
    for word in text.split_inclusive(|c: char| c.is_whitespace() || c == '"') {
        let bare = word.trim_end_matches(|c: char| c.is_whitespace() || c == '"');
        let tail = &word[bare.len()..];
        if (after_bearer && !bare.is_empty()) || looks_like_jwt(bare) {
            out.push_str(REDACTED);
            out.push_str(tail);
        } else {
            out.push_str(word);
        }
        after_bearer = bare.eq_ignore_ascii_case("bearer") || (after_bearer && bare.is_empty());
    }
    out
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

    #[test]
    fn tokens_echoed_by_a_server_are_blanked() {
        let jwt = "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJ4In0.c2ln";
        let echoed =
            format!("Invalid header Authorization: Bearer {jwt} (\"{jwt}\"); other words stay");
        let masked = mask_tokens(&echoed);
        assert!(!masked.contains("eyJ"), "{masked}");
        assert!(masked.contains("Bearer [redacted]"), "{masked}");
        assert!(masked.ends_with("other words stay"), "{masked}");
        let opaque = mask_tokens("Authorization: Bearer abc123opaque rejected");
        assert_eq!(opaque, "Authorization: Bearer [redacted] rejected");
    }
}
