//! The HTTP client every request goes out on, and reading its answers within a size limit.
//!
//! Graph, the targets and the webhook all build their client here, so that each speaks
//! TLS the same way (rustls), goes through the proxy the environment names (`HTTPS_PROXY`,
//! `HTTP_PROXY`, `NO_PROXY`), gives up on time, and says who it is. No client follows
//! redirects: a redirect could carry a bearer token or credentials to another host, and
//! none of the servers userload talks to needs one.

use std::time::Duration;

/// Who is asking, in every request.
const USER_AGENT: &str = concat!("userload/", env!("CARGO_PKG_VERSION"));

/// The longest wait for a connection, when requests may take longer than that.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a client could not be built (no usable TLS setup, a bad proxy variable).
#[derive(Debug, thiserror::Error)]
#[error("cannot set up HTTPS: {0}")]
pub struct ClientError(#[from] reqwest::Error);

/// A client whose requests may each take `timeout`, answer included.
pub fn client(timeout: Duration) -> Result<reqwest::Client, ClientError> {
    let client = reqwest::Client::builder()
        .tls_backend_rustls()
        .user_agent(USER_AGENT)
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    Ok(client)
}

/// A header of an answer as text, when it has one that is text.
pub fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Why an answer's body could not be read whole.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The answer is longer than the caller accepts: a broken or hostile server.
    #[error("the answer is longer than {} MiB", .0 >> 20)]
    TooLong(usize),
    /// The connection broke while the answer arrived.
    #[error("{}", describe(.0))]
    Broken(reqwest::Error),
}

/// Reads the body of `response`, at most `most` bytes. After each piece arrives, `opening`
/// sees all that has arrived so far (a caller may act on an answer's opening early).
pub async fn read_body(
    response: &mut reqwest::Response,
    most: usize,
    mut opening: impl FnMut(&[u8]),
) -> Result<Vec<u8>, BodyError> {
    let mut body = answer_buffer(response.content_length(), most);
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Broken)? {
        if body.len() + chunk.len() > most {
            return Err(BodyError::TooLong(most));
        }
        body.extend_from_slice(&chunk);
        opening(&body);
    }
    Ok(body)
}

/// A buffer for an answer of `length` bytes (as the server announced it, up to `most`): a
/// page of a thousand users is read into one allocation rather than grown chunk by chunk.
fn answer_buffer(length: Option<u64>, most: usize) -> Vec<u8> {
    Vec::with_capacity(length.map_or(0, |n| usize::try_from(n).unwrap_or(most).min(most)))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_takes_the_announced_length_within_the_limit() {
        assert_eq!(answer_buffer(None, 100).capacity(), 0);
        assert!(answer_buffer(Some(10), 100).capacity() >= 10);
        assert!(answer_buffer(Some(u64::MAX), 100).capacity() < 1000);
        assert_eq!(
            BodyError::TooLong(64 << 20).to_string(),
            "the answer is longer than 64 MiB"
        );
    }

    #[test]
    fn a_client_builds_for_any_timeout() {
        assert!(client(Duration::from_secs(1)).is_ok());
        assert!(client(Duration::from_secs(600)).is_ok());
    }
}
