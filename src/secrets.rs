//! Keeping secrets out of everything userload writes: errors, logs, reports, CSV files.
//!
//! Two defences, one inside the other. Where a text is quoted from a server, the caller
//! scrubs it with the credentials it sent ([`Redactor`]) or, when it cannot know them, by
//! shape ([`mask_tokens`]). And every sink that writes for the admin (the log writers,
//! printed errors and problems, the report, the CSV of changes, the run history) passes its
//! text through [`scrub`], which blanks every secret this process has been given
//! ([`remember`]: the config's secrets once resolved, each access token as it is issued) and
//! every token-shaped word. So a secret that slipped past the first defence still never
//! reaches the admin's screen or files.
//!
//! This is the bottom of the crate: it imports nothing else of userload.

use std::borrow::Cow;
use std::fmt;
use std::sync::RwLock;

/// Secrets shorter than this are not scrubbed from messages (they would blank out words).
const MIN_SECRET_CHARS: usize = 3;

/// What replaces a secret in a message.
pub const REDACTED: &str = "[redacted]";

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

/// The secrets every sink blanks, newest last. Access tokens are renewed hourly, so a
/// daemon running for weeks would add a few dozen a day: only the latest are kept (an old
/// token is useless, and the config's secrets are remembered again with each reload).
static REMEMBERED: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// How many secrets [`REMEMBERED`] holds at most.
const MAX_REMEMBERED: usize = 64;

/// Adds secrets for every sink to blank (those too short to scrub are left out), each also
/// as JSON and CSV would escape it, for the report and the CSV of changes.
pub fn remember(secrets: impl IntoIterator<Item = String>) {
    let Ok(mut remembered) = REMEMBERED.write() else {
        return;
    };
    for secret in secrets.into_iter().filter(|s| s.len() >= MIN_SECRET_CHARS) {
        let json = serde_json::to_string(&secret).unwrap_or_default();
        let json = json.trim_matches('"').to_owned();
        let csv = secret.replace('"', "\"\"");
        for form in [secret, json, csv] {
            // Remembered again, a secret moves to the newest end: the config's secrets,
            // remembered at every reload, are never the ones dropped.
            remembered.retain(|kept| *kept != form);
            remembered.push(form);
        }
    }
    let excess = remembered.len().saturating_sub(MAX_REMEMBERED);
    remembered.drain(..excess);
}

/// `text` as a sink may write it: every remembered secret and every token-shaped word
/// blanked. Borrowed when there was nothing to blank, which is nearly always.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    if let Ok(remembered) = REMEMBERED.read() {
        for secret in remembered.iter() {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
            }
        }
    }
    let bearer = out
        .as_bytes()
        .windows(6)
        .any(|w| w.eq_ignore_ascii_case(b"bearer"));
    if bearer || out.contains("eyJ") {
        out = Cow::Owned(mask_tokens(&out));
    }
    out
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

    #[test]
    fn remembered_secrets_are_blanked_wherever_they_appear() {
        remember(["s3cret-remembered".to_owned(), "xy".to_owned()]);
        assert_eq!(
            scrub("sent s3cret-remembered, xy stays"),
            "sent [redacted], xy stays"
        );
        remember([r#"quo"te\back"#.to_owned()]);
        let json = serde_json::json!({ "error": r#"got quo"te\back"# }).to_string();
        assert_eq!(scrub(&json), r#"{"error":"got [redacted]"}"#);
        assert!(matches!(scrub("nothing to hide"), Cow::Borrowed(_)));
        let jwt = "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJ4In0.c2ln";
        assert_eq!(scrub(&format!("token {jwt}")), "token [redacted]");
    }
}
