//! How the SCIM target speaks over the shared HTTP layer: SCIM's media type, its error
//! bodies quoted (`scimType: detail`), and the URLs of `/Users`.
//!
//! Reads and PATCHes are sent again after throttling (429), a 5xx or a broken connection,
//! waiting as long as the server's `Retry-After` says. A POST is never sent again from here:
//! the server may have created the user before the answer was lost, so the caller looks
//! first (see [`ScimTarget::create`](super::ScimTarget)).

use url::Url;

use super::resource;
use crate::config::TargetConfig;
use crate::http::RetryPolicy;
use crate::targets::TargetError;
use crate::targets::http::{Dialect, Http, Reply};

/// SCIM's HTTP.
pub(super) const SCIM: Dialect = Dialect {
    accept: "application/scim+json, application/json",
    content_type: "application/scim+json",
    transient: &[429, 500, 502, 503, 504],
    // A server may echo a credential it refused: scrubbed before anything is read.
    quote: |http, body| resource::detail(http.scrub(&String::from_utf8_lossy(body)).as_bytes()),
    gave_up: |target, what, attempts, last| {
        format!("{what} at {target} failed after {attempts} attempt(s): {last}")
    },
};

/// The HTTP layer for the SCIM server at `config.url` (the SCIM base), its base `…/Users`.
pub(super) fn connect(config: &TargetConfig, policy: RetryPolicy) -> Result<Http, TargetError> {
    let name = format!("SCIM at {}", config.url);
    let mut users = config.url.clone();
    if !users.path().ends_with('/') {
        users.set_path(&format!("{}/", users.path()));
    }
    let users = users
        .join("Users")
        .map_err(|e| TargetError::Unsupported(format!("{name}: not a base URL: {e}")))?;
    Http::new(config, policy, name, users, &SCIM, None)
}

/// The URLs of `/Users` and the refusals of a SCIM server, on the HTTP layer whose base is
/// `…/Users`.
pub(super) trait Users {
    /// `…/Users`, with a query whose spaces are written `%20` (some servers read `+` as a
    /// plus sign).
    fn users_url(&self, query: &[(&str, &str)]) -> Url;

    /// `…/Users/{id}`, the id escaped so that no id can point elsewhere.
    fn user_url(&self, id: &str) -> Result<Url, TargetError>;

    /// The error for an answer that is not a success, saying which request it answered.
    fn refused(&self, reply: &Reply, what: &str) -> TargetError;
}

impl Users for Http {
    fn users_url(&self, query: &[(&str, &str)]) -> Url {
        let mut url = self.base().clone();
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

    fn user_url(&self, id: &str) -> Result<Url, TargetError> {
        if matches!(id.trim(), "" | "." | "..") {
            return Err(TargetError::Malformed(format!(
                "`{id}` cannot be a user id"
            )));
        }
        let mut url = self.base().clone();
        url.path_segments_mut()
            .map_err(|()| TargetError::Malformed(format!("{} is not a base URL", self.base())))?
            .push(id);
        Ok(url)
    }

    fn refused(&self, reply: &Reply, what: &str) -> TargetError {
        let detail = self.quote(&reply.body);
        self.refusal(reply.status, format!("{what}: {detail}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TargetAuth;
    use crate::targets::http::tests::config;

    fn http(token: Option<&str>) -> Http {
        connect(&config(TargetAuth::Bearer, token), RetryPolicy::default()).unwrap()
    }
    #[test]
    fn urls_stay_below_the_base() {
        let http = http(None);
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
        let http = http(Some("s3cr3t"));
        let reply = Reply {
            status: 400,
            etag: None,
            content_range: None,
            url: None,
            body: br#"{"detail": "token s3cr3t is not valid"}"#.to_vec(),
        };
        let said = http.refused(&reply, "GET /Users").to_string();
        assert!(
            !said.contains("s3cr3t") && said.contains("[redacted]"),
            "{said}"
        );
    }
}
