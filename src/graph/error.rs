//! Errors of the Graph source, worded so that an admin reading one line knows what to fix.
//!
//! Entra and Graph answer with machine codes (`AADSTS7000215`, `Authorization_RequestDenied`);
//! the well-known ones become a sentence saying what is wrong and where to change it. Every
//! message carries the ids Microsoft support asks for (request-id, correlation id, trace id)
//! and never a secret or a token.

use std::fmt;

use crate::secrets::mask_tokens;

/// Why userload could not read users from Graph.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// The read was stopped from outside (Ctrl-C, SIGTERM) before it was complete.
    #[error("stopped by a signal before every user was read")]
    Stopped,
    /// Entra refused to issue a token.
    #[error("{0}")]
    SignIn(SignInError),
    /// The certificate, private key or federated token file could not be used to sign in.
    #[error("{0}")]
    Credential(String),
    /// Graph refused a request for a reason retrying cannot fix (permissions, a bad query).
    #[error("{what}: {message}{ids}", ids = Ids::request(request_id))]
    Refused {
        /// The request, e.g. "page 3 of GET /v1.0/users".
        what: String,
        /// HTTP status.
        status: u16,
        /// Graph's error code, e.g. `Authorization_RequestDenied`.
        code: String,
        /// What went wrong and what to do, in one sentence.
        message: String,
        /// Graph's `request-id` of the failed request.
        request_id: Option<String>,
    },
    /// A request kept failing (throttling, server errors, dropped connections) until the
    /// attempts ran out.
    #[error("{what} failed after {attempts} attempt(s): {last}{ids}", ids = Ids::request(request_id))]
    GaveUp {
        /// The request, e.g. "page 3 of GET /v1.0/users".
        what: String,
        /// How many times it was sent.
        attempts: u32,
        /// The last failure.
        last: String,
        /// Graph's `request-id` of the last failed request, when it answered at all.
        request_id: Option<String>,
    },
    /// Groups the config names by display name that no group has, or that several share.
    #[error("the config names groups Graph cannot resolve: {0}")]
    Groups(super::groups::Unresolved),
    /// Graph answered something that is not what its API promises.
    #[error("{what}: unexpected answer from Graph: {detail}")]
    Malformed {
        /// The request.
        what: String,
        /// What was wrong with the answer.
        detail: String,
    },
}

impl GraphError {
    /// The same error, naming its request `what` (known better by the caller than by the
    /// code that sent it).
    pub fn about(mut self, what: String) -> Self {
        match &mut self {
            GraphError::Refused { what: w, .. }
            | GraphError::GaveUp { what: w, .. }
            | GraphError::Malformed { what: w, .. } => *w = what,
            GraphError::Stopped
            | GraphError::SignIn(_)
            | GraphError::Credential(_)
            | GraphError::Groups(_) => {}
        }
        self
    }

    /// Graph's `request-id` (or Entra's correlation id) of the failed request, if known.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            GraphError::SignIn(e) => e.correlation_id.as_deref(),
            GraphError::Refused { request_id, .. } | GraphError::GaveUp { request_id, .. } => {
                request_id.as_deref()
            }
            GraphError::Stopped
            | GraphError::Credential(_)
            | GraphError::Malformed { .. }
            | GraphError::Groups(_) => None,
        }
    }
}

/// Entra's refusal to issue a token, with its `AADSTS` code.
#[derive(Debug, Clone)]
pub struct SignInError {
    /// The first of Entra's `error_codes`, e.g. 7000215.
    pub code: Option<u64>,
    /// The OAuth error, e.g. `invalid_client`.
    pub error: String,
    /// What is wrong and what to change.
    pub message: String,
    /// Entra's `correlation_id`.
    pub correlation_id: Option<String>,
    /// Entra's `trace_id`.
    pub trace_id: Option<String>,
}

impl fmt::Display for SignInError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sign-in failed")?;
        if let Some(code) = self.code {
            write!(f, " (AADSTS{code})")?;
        }
        write!(f, ": {}", self.message)?;
        let mut ids = Vec::new();
        if let Some(id) = &self.correlation_id {
            ids.push(format!("correlation id {id}"));
        }
        if let Some(id) = &self.trace_id {
            ids.push(format!("trace id {id}"));
        }
        if !ids.is_empty() {
            write!(f, " [{}]", ids.join(", "))?;
        }
        Ok(())
    }
}

impl SignInError {
    /// Reads Entra's token error body (`error`, `error_description`, `error_codes`, ids) and
    /// says what to fix for the codes admins meet.
    pub fn from_response(status: u16, body: &[u8], tenant: &str, client_id: &str) -> Self {
        let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let text = |key: &str| json.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        let code = json
            .get("error_codes")
            .and_then(|c| c.get(0))
            .and_then(|c| c.as_u64());
        let named = text("error");
        let error = named.clone().unwrap_or_else(|| format!("HTTP {status}"));
        let message = match code {
            Some(7000215) => "the client secret is wrong; paste the secret's Value (not its \
                 Secret ID) from the app registration's Certificates & secrets page into `secret`"
                .to_owned(),
            Some(7000222) => "the client secret has expired; create a new one under the app \
                 registration's Certificates & secrets and update `secret`"
                .to_owned(),
            Some(700016) => format!(
                "no application with client_id {client_id} exists in tenant {tenant}; check \
                 `client_id` and `tenant_id` (the app must be registered in this tenant)"
            ),
            Some(90002) => format!(
                "tenant {tenant} was not found; check `tenant_id`, and set `cloud` if the \
                 tenant lives in a national cloud"
            ),
            Some(700027) => "the certificate assertion was rejected; upload this certificate \
                 (the .crt, not the key) to the app registration's Certificates & secrets"
                .to_owned(),
            Some(70021) => format!(
                "no federated credential of app {client_id} matches the presented token; add \
                 one under the app registration's Certificates & secrets, Federated \
                 credentials, with the token's issuer and subject (for AKS: the cluster's OIDC \
                 issuer URL and system:serviceaccount:NAMESPACE:NAME)"
            ),
            Some(700024) => "the certificate assertion is outside its valid time range; check \
                 this machine's clock"
                .to_owned(),
            _ => {
                // Unknown codes: Entra's own first sentence, which names the problem.
                let description = text("error_description").unwrap_or_default();
                let first = description.lines().next().unwrap_or_default();
                let first = first.split_once(": ").map_or(first, |(_, rest)| rest);
                if first.is_empty() {
                    match &named {
                        Some(name) => format!("Entra answered HTTP {status} {name}"),
                        None => format!("Entra answered HTTP {status} with no error"),
                    }
                } else {
                    crate::diag::shorten(first, 300)
                }
            }
        };
        SignInError {
            code,
            error,
            message,
            correlation_id: text("correlation_id"),
            trace_id: text("trace_id"),
        }
    }
}

impl SignInError {
    /// Reads a managed identity endpoint's refusal: the instance metadata service answers
    /// `error` and `error_description`, App Service `message` (or `Message`); says what to
    /// check for the identity asked for (`None`: the system-assigned one).
    pub fn from_managed_identity(status: u16, body: &[u8], identity: Option<&str>) -> Self {
        let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let text = |key: &str| json.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        let said = text("error_description")
            .or_else(|| text("message"))
            .or_else(|| text("Message"))
            .map(|s| crate::diag::shorten(mask_tokens(&s).trim_end_matches('.'), 300));
        let error = text("error").unwrap_or_else(|| format!("HTTP {status}"));
        let check = match identity {
            Some(id) => format!(
                "check that the user-assigned identity with client id {id} is assigned to this \
                 VM or app, and that `client_id` is that identity's client id"
            ),
            None => "check that this VM or app has its system-assigned identity turned on, or \
                     set `client_id` to a user-assigned identity's client id"
                .to_owned(),
        };
        let message = match said {
            Some(said) => {
                format!("the managed identity endpoint answered HTTP {status}: {said}; {check}")
            }
            None => format!("the managed identity endpoint answered HTTP {status}; {check}"),
        };
        SignInError {
            code: None,
            error,
            message,
            correlation_id: text("correlation_id").or_else(|| text("correlationId")),
            trace_id: None,
        }
    }
}

/// Formats ids after a message: ` [request-id …]`, or nothing.
struct Ids<'a>(Option<&'a str>);

impl Ids<'_> {
    fn request(id: &Option<String>) -> Ids<'_> {
        Ids(id.as_deref())
    }
}

impl fmt::Display for Ids<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(id) => write!(f, " [request-id {id}]"),
            None => Ok(()),
        }
    }
}

/// Graph's error envelope: `{"error":{"code","message","innerError":{"request-id"}}}`.
#[derive(Debug, Default)]
pub struct GraphFault {
    /// Graph's error code, e.g. `Request_UnsupportedQuery`.
    pub code: String,
    /// Graph's message.
    pub message: String,
    /// The request-id from the body or the `request-id` header.
    pub request_id: Option<String>,
}

impl GraphFault {
    /// Reads an error body; anything unreadable leaves the fields empty.
    pub fn parse(body: &[u8], header_request_id: Option<String>) -> Self {
        let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let error = &json["error"];
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        let inner = if error["innerError"].is_object() {
            &error["innerError"]
        } else {
            &error["innererror"]
        };
        let body_id = inner["request-id"].as_str().map(str::to_owned);
        GraphFault {
            code: text(&error["code"]),
            // Graph may quote the request back, Authorization header included.
            message: crate::diag::shorten(&mask_tokens(&text(&error["message"])), 300),
            request_id: header_request_id.or(body_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_without_an_error_says_so_once() {
        let empty = SignInError::from_response(307, b"", "t", "c").to_string();
        assert_eq!(
            empty,
            "sign-in failed: Entra answered HTTP 307 with no error"
        );
        let named = SignInError::from_response(400, br#"{"error":"odd_error"}"#, "t", "c");
        assert_eq!(
            named.to_string(),
            "sign-in failed: Entra answered HTTP 400 odd_error"
        );
    }

    #[test]
    fn managed_identity_refusals_are_read_in_both_shapes() {
        let imds = br#"{"error":"invalid_request","error_description":"Identity not found"}"#;
        let error = SignInError::from_managed_identity(400, imds, Some("c-1"));
        assert_eq!(error.error, "invalid_request");
        assert!(error.message.starts_with(
            "the managed identity endpoint answered HTTP 400: Identity not found; check that \
             the user-assigned identity with client id c-1"
        ));
        let app_service =
            br#"{"statusCode":400,"message":"Unable to load.","correlationId":"abc"}"#;
        let error = SignInError::from_managed_identity(400, app_service, None);
        assert_eq!(error.correlation_id.as_deref(), Some("abc"));
        assert!(
            error
                .message
                .contains("HTTP 400: Unable to load; check that this VM")
        );
        let empty = SignInError::from_managed_identity(500, b"", None);
        assert!(
            empty
                .message
                .starts_with("the managed identity endpoint answered HTTP 500; ")
        );
    }

    #[test]
    fn a_graph_error_that_echoes_the_token_does_not_pass_it_on() {
        let token = "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJjYW5hcnkifQ.c2lnbmF0dXJl";
        let body = format!(
            r#"{{"error":{{"code":"InvalidAuthenticationToken","message":"Bad header: Bearer {token}"}}}}"#
        );
        let fault = GraphFault::parse(body.as_bytes(), None);
        assert_eq!(fault.message, "Bad header: Bearer [redacted]");
    }
}
