//! App-only access tokens for Graph (OAuth 2.0 client credentials against Entra).
//!
//! A pull of a large tenant can outlast a token, and Entra never hands out refresh tokens to
//! apps: userload asks again. The token is cached and replaced before it expires; when Graph
//! still rejects it (revoked, clock skew) the caller asks for a forced refresh once.
//!
//! Four ways to prove who we are. A client secret. A certificate: we send a short-lived JWT
//! (a *client assertion*) signed with the private key; its header names the certificate by
//! thumbprint so Entra can pick the matching uploaded certificate. A federated token
//! (workload identity): another identity provider's token, read from a file before every
//! request because it rotates, is the client assertion. A managed identity: no proof at all,
//! the Azure resource's local endpoint (the instance metadata service, or App Service's
//! identity endpoint) hands out the token.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use url::Url;

use super::error::{GraphError, SignInError};
use crate::config::{AssertionAlgorithm, Credential, ManagedIdentityEndpoint, SourceConfig};
use crate::http::{self, Exchange, RetryOn, RetryPolicy, Step, Transient, describe};

/// A bearer token for Graph. Debug output never shows it.
#[derive(Clone)]
pub struct AccessToken {
    value: Arc<str>,
    /// When it stops being valid, by our clock.
    pub expires_at: Instant,
    /// How long it was valid for when it was issued.
    pub lifetime: Duration,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("value", &"[redacted]")
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

impl AccessToken {
    /// The token itself, for the `Authorization` header only.
    pub fn secret(&self) -> &str {
        &self.value
    }

    /// The application permissions granted to the app, from the token's `roles` claim (the
    /// token is a JWT; its payload is read, not verified: Graph verifies it).
    pub fn roles(&self) -> Vec<String> {
        let payload = self.value.split('.').nth(1).unwrap_or_default();
        let bytes = URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .or_else(|_| URL_SAFE.decode(payload))
            .unwrap_or_default();
        let claims: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        claims["roles"]
            .as_array()
            .map(|roles| {
                roles
                    .iter()
                    .filter_map(|r| r.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the token should be replaced now: less than a fifth of its life (at most five
    /// minutes) is left, so a request sent with it cannot expire on the way.
    fn is_stale(&self) -> bool {
        let margin = (self.lifetime / 5).min(Duration::from_secs(300));
        Instant::now() + margin >= self.expires_at
    }
}

/// How the app proves its identity to Entra.
enum Proof {
    Secret(String),
    Certificate(Box<CertificateSigner>),
    /// The file a federated token is read from.
    Federated(PathBuf),
    /// A managed identity's endpoint (`token_url`), and the user-assigned identity's client
    /// id, if one is chosen.
    Managed {
        /// `X-IDENTITY-HEADER` for App Service; `None` for the instance metadata service.
        header: Option<String>,
        identity: Option<String>,
    },
}

/// The `client_assertion_type` of a JWT assertion, signed or federated.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Reads the federated token for one token request. A missing, empty or expired token is an
/// error naming the file and what to check; the token is remembered as a secret.
fn federated_token(path: &Path) -> Result<String, GraphError> {
    const CHECK: &str = "check that the pod carries the label azure.workload.identity/use: \
                         \"true\" and runs as a service account annotated with \
                         azure.workload.identity/client-id, or fix `federated_token_file`";
    let text = std::fs::read_to_string(path).map_err(|e| {
        GraphError::Credential(format!(
            "sign-in failed: cannot read the federated token file {}: {e}; {CHECK}",
            path.display()
        ))
    })?;
    let token = text.trim().to_owned();
    if token.is_empty() {
        return Err(GraphError::Credential(format!(
            "sign-in failed: the federated token file {} is empty; {CHECK}",
            path.display()
        )));
    }
    crate::secrets::remember([token.clone()]);
    if let Some(expired) = expiry(&token).filter(|exp| *exp <= chrono::Utc::now().timestamp()) {
        let when = chrono::DateTime::from_timestamp(expired, 0)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_else(|| expired.to_string());
        return Err(GraphError::Credential(format!(
            "sign-in failed: the federated token in {} expired at {when}; whoever writes the \
             file no longer refreshes it (Kubernetes rotates a projected service account \
             token well before it expires): check the pod's token volume and that the file \
             named is the one mounted",
            path.display()
        )));
    }
    Ok(token)
}

/// The `exp` claim of a JWT (its payload is read, not verified), if it has one.
fn expiry(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims["exp"].as_i64()
}

/// Signs client assertions with a certificate's private key.
struct CertificateSigner {
    key: jsonwebtoken::EncodingKey,
    header: jsonwebtoken::Header,
}

impl CertificateSigner {
    fn load(
        certificate: &std::path::Path,
        private_key: &std::path::Path,
        algorithm: AssertionAlgorithm,
    ) -> Result<Self, GraphError> {
        let read = |path: &std::path::Path| {
            std::fs::read(path)
                .map_err(|e| GraphError::Credential(format!("cannot read {}: {e}", path.display())))
        };
        let der = certificate_der(&read(certificate)?).ok_or_else(|| {
            GraphError::Credential(format!(
                "{} holds no readable PEM certificate",
                certificate.display()
            ))
        })?;
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(&read(private_key)?).map_err(|e| {
            GraphError::Credential(format!(
                "{} is not a usable RSA private key ({e}); Entra certificates need an \
                 unencrypted RSA key in PEM",
                private_key.display()
            ))
        })?;
        let mut header = jsonwebtoken::Header::new(match algorithm {
            AssertionAlgorithm::Ps256 => jsonwebtoken::Algorithm::PS256,
            AssertionAlgorithm::Rs256 => jsonwebtoken::Algorithm::RS256,
        });
        match algorithm {
            AssertionAlgorithm::Ps256 => header.x5t_s256 = Some(thumbprint_sha256(&der)),
            AssertionAlgorithm::Rs256 => header.x5t = Some(thumbprint_sha1(&der)),
        }
        Ok(CertificateSigner { key, header })
    }

    /// A fresh assertion for `audience` (the token URL), valid for ten minutes.
    fn assertion(&self, client_id: &str, audience: &str) -> Result<String, GraphError> {
        let now = chrono::Utc::now().timestamp();
        let claims = serde_json::json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "iat": now,
            "nbf": now,
            "exp": now + 600,
        });
        jsonwebtoken::encode(&self.header, &claims, &self.key)
            .map_err(|e| GraphError::Credential(format!("cannot sign the client assertion: {e}")))
    }
}

/// The DER bytes of the first `CERTIFICATE` block of a PEM file.
pub fn certificate_der(pem_bytes: &[u8]) -> Option<Vec<u8>> {
    pem::parse_many(pem_bytes)
        .ok()?
        .into_iter()
        .find(|block| block.tag() == "CERTIFICATE")
        .map(|block| block.into_contents())
}

/// `x5t#S256`: base64url of the SHA-256 of the certificate's DER.
pub fn thumbprint_sha256(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der))
}

/// `x5t`: base64url of the SHA-1 of the certificate's DER (older Entra docs).
pub fn thumbprint_sha1(der: &[u8]) -> String {
    let sha1 = &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY;
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(sha1, der))
}

/// Gets, caches and refreshes access tokens for one app in one tenant.
pub struct TokenSource {
    http: reqwest::Client,
    token_url: Url,
    tenant: String,
    client_id: String,
    scope: String,
    proof: Proof,
    policy: RetryPolicy,
    cached: tokio::sync::Mutex<Option<AccessToken>>,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("token_url", &self.token_url.as_str())
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// A token source for the tenant and app in `source`; reads the certificate and key now,
    /// so a bad key fails before any request.
    pub fn new(
        http: reqwest::Client,
        source: &SourceConfig,
        policy: RetryPolicy,
    ) -> Result<Self, GraphError> {
        let proof = match &source.credential {
            Credential::Secret(secret) => Proof::Secret(
                secret
                    .expose()
                    .map_err(|why| GraphError::Credential(format!("the client secret {why}")))?
                    .to_owned(),
            ),
            Credential::Certificate {
                certificate,
                private_key,
                algorithm,
            } => Proof::Certificate(Box::new(CertificateSigner::load(
                certificate,
                private_key,
                *algorithm,
            )?)),
            Credential::WorkloadIdentity { token_file } => Proof::Federated(token_file.clone()),
            Credential::ManagedIdentity { endpoint, identity } => Proof::Managed {
                header: match endpoint {
                    ManagedIdentityEndpoint::Imds(_) => None,
                    ManagedIdentityEndpoint::AppService { header, .. } => Some(
                        header
                            .expose()
                            .map_err(|why| {
                                GraphError::Credential(format!("the identity header {why}"))
                            })?
                            .to_owned(),
                    ),
                },
                identity: identity.clone(),
            },
        };
        let token_url = match &source.credential {
            Credential::ManagedIdentity { endpoint, .. } => match endpoint {
                ManagedIdentityEndpoint::Imds(url) => url.clone(),
                ManagedIdentityEndpoint::AppService { url, .. } => url.clone(),
            },
            _ => join(
                &source.authority,
                &format!("{}/oauth2/v2.0/token", source.tenant_id),
            ),
        };
        let scope = match &source.credential {
            // A managed identity names the resource itself, not a scope of it.
            Credential::ManagedIdentity { .. } => {
                source.graph_root.as_str().trim_end_matches('/').to_owned()
            }
            _ => format!(
                "{}/.default",
                source.graph_root.as_str().trim_end_matches('/')
            ),
        };
        Ok(TokenSource {
            http,
            token_url,
            tenant: source.tenant_id.clone(),
            client_id: source.client_id.clone(),
            scope,
            proof,
            policy,
            cached: tokio::sync::Mutex::new(None),
        })
    }

    /// A valid token: the cached one, or a new one when it is missing or about to expire.
    pub async fn token(&self) -> Result<AccessToken, GraphError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| !t.is_stale()) {
            return Ok(token.clone());
        }
        let token = self.request().await?;
        *cached = Some(token.clone());
        Ok(token)
    }

    /// A new token after Graph rejected `rejected`. When another request already replaced
    /// it, that replacement is used instead of asking Entra again.
    pub async fn refresh(&self, rejected: &AccessToken) -> Result<AccessToken, GraphError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref()
            && token.value != rejected.value
        {
            return Ok(token.clone());
        }
        let token = self.request().await?;
        *cached = Some(token.clone());
        Ok(token)
    }

    /// Asks Entra for a token, retrying throttling, server errors and network failures.
    async fn request(&self) -> Result<AccessToken, GraphError> {
        let mut sign_in = SignIn {
            tokens: self,
            what: format!("sign-in at {}", self.token_url),
        };
        http::run(&self.policy, &mut sign_in).await
    }

    /// The request that asks for a token: a form posted to Entra with a fresh proof of who
    /// we are, or a GET to a managed identity's endpoint.
    fn request_for_token(&self) -> Result<reqwest::RequestBuilder, GraphError> {
        let Proof::Managed { header, identity } = &self.proof else {
            return Ok(self.http.post(self.token_url.clone()).form(&self.form()?));
        };
        let mut query = vec![
            (
                "api-version",
                if header.is_some() {
                    "2019-08-01"
                } else {
                    "2018-02-01"
                },
            ),
            ("resource", self.scope.as_str()),
        ];
        if let Some(identity) = identity {
            query.push(("client_id", identity.as_str()));
        }
        let request = self.http.get(self.token_url.clone()).query(&query);
        Ok(match header {
            Some(header) => request.header("X-IDENTITY-HEADER", header),
            None => request.header("Metadata", "true"),
        })
    }

    /// The form that asks for a token, with a fresh proof of who we are.
    fn form(&self) -> Result<Vec<(&'static str, String)>, GraphError> {
        let mut form = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", self.client_id.clone()),
            ("scope", self.scope.clone()),
        ];
        match &self.proof {
            Proof::Secret(secret) => form.push(("client_secret", secret.clone())),
            Proof::Certificate(signer) => {
                form.push(("client_assertion_type", JWT_BEARER.to_owned()));
                form.push((
                    "client_assertion",
                    signer.assertion(&self.client_id, self.token_url.as_str())?,
                ));
            }
            Proof::Federated(path) => {
                form.push(("client_assertion_type", JWT_BEARER.to_owned()));
                form.push(("client_assertion", federated_token(path)?));
            }
            // Asked for with a GET, never a form.
            Proof::Managed { .. } => {}
        }
        Ok(form)
    }

    fn accept(&self, body: &[u8], sent: Instant, what: &str) -> Result<AccessToken, GraphError> {
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            access_token: String,
            #[serde(default)]
            expires_in: serde_json::Value,
            /// Managed identity endpoints: when it expires, in seconds since 1970 (App
            /// Service's 2019-08-01 answer has only this).
            #[serde(default)]
            expires_on: serde_json::Value,
        }
        let malformed = |detail: &str| GraphError::Malformed {
            what: what.to_owned(),
            detail: detail.to_owned(),
        };
        let response: TokenResponse = serde_json::from_slice(body)
            .map_err(|_| malformed("the token response is not the expected JSON"))?;
        // Entra sends a number; managed identity endpoints, some proxies and old endpoints
        // send it as a string.
        let number = |value: &serde_json::Value| match value {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let seconds = number(&response.expires_in)
            .or_else(|| number(&response.expires_on).map(|on| on.saturating_sub(now)))
            .filter(|s| *s > 0)
            .ok_or_else(|| {
                malformed("the token response has no usable expires_in or expires_on")
            })?;
        if response.access_token.is_empty() {
            return Err(malformed("the token response holds an empty access_token"));
        }
        // From here on no sink writes the token, whatever echoes it.
        crate::secrets::remember([response.access_token.clone()]);
        let lifetime = Duration::from_secs(seconds);
        tracing::info!(
            tenant = %self.tenant,
            "signed in to Entra; the token is good for {}",
            lifetime_text(seconds)
        );
        Ok(AccessToken {
            value: response.access_token.into(),
            expires_at: sent + lifetime,
            lifetime,
        })
    }
}

/// `base` with `path` appended below its own path (a base may carry a path prefix).
pub fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    url.set_path(&format!("{prefix}/{}", path.trim_start_matches('/')));
    url
}

/// One request for a token, as the retry loop sends it.
struct SignIn<'a> {
    tokens: &'a TokenSource,
    /// The request in errors: "sign-in at <token URL>".
    what: String,
}

impl Exchange for SignIn<'_> {
    type Output = AccessToken;
    type Error = GraphError;

    async fn attempt(&mut self) -> Step<AccessToken, GraphError> {
        let tokens = self.tokens;
        let request = match tokens.request_for_token() {
            Ok(request) => request,
            Err(error) => return Step::Done(Err(error)),
        };
        let sent = Instant::now();
        let result = request.send().await;
        let response = match result {
            Ok(response) => response,
            Err(e) => return Step::Retry(Transient::new(describe(&e))),
        };
        let status = response.status();
        tracing::debug!(
            url = %tokens.token_url, status = status.as_u16(),
            ms = sent.elapsed().as_millis() as u64, "sign-in"
        );
        let retry_after = http::retry_after(response.headers());
        match response.bytes().await {
            Ok(body) if status.is_success() => Step::Done(tokens.accept(&body, sent, &self.what)),
            Ok(_) if RetryOn::ThrottlingAndServerErrors.covers(status.as_u16()) => {
                Step::Retry(Transient {
                    retry_after,
                    throttled: status.as_u16() == 429,
                    ..Transient::new(format!("HTTP {status}"))
                })
            }
            Ok(body) => Step::Done(Err(GraphError::SignIn(match &tokens.proof {
                Proof::Managed { identity, .. } => {
                    SignInError::from_managed_identity(status.as_u16(), &body, identity.as_deref())
                }
                _ => SignInError::from_response(
                    status.as_u16(),
                    &body,
                    &tokens.tenant,
                    &tokens.client_id,
                ),
            }))),
            Err(e) => Step::Retry(Transient::new(describe(&e))),
        }
    }

    fn gave_up(&self, attempts: u32, last: Transient) -> GraphError {
        GraphError::GaveUp {
            what: self.what.clone(),
            attempts,
            last: last.detail,
            request_id: None,
        }
    }
}

/// A token's lifetime in the unit that reads best: `59 min`, `45 s`.
fn lifetime_text(seconds: u64) -> String {
    if seconds < 120 {
        format!("{seconds} s")
    } else {
        format!("{} min", seconds / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expiry_of_a_federated_token_is_read_when_it_is_a_jwt() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"s","exp":1700000000}"#);
        assert_eq!(expiry(&format!("e30.{payload}.sig")), Some(1_700_000_000));
        // Anything else is sent as it is: Entra judges it.
        assert_eq!(expiry("opaque-token"), None);
        assert_eq!(expiry("a.%%%.c"), None);
    }

    #[test]
    fn short_lifetimes_are_told_in_seconds() {
        assert_eq!(lifetime_text(45), "45 s");
        assert_eq!(lifetime_text(119), "119 s");
        assert_eq!(lifetime_text(3599), "59 min");
    }
}
