//! The session an API description's `[session]` opens (`auth = session`), made ready for
//! the HTTP layer: its templates rendered once from the target config's secrets.

use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value as Json, json};
use url::Url;

use super::api::{ApiDescription, Operation};
use crate::config::{TargetAuth, TargetConfig};
use crate::diag::shorten;
use crate::targets::TargetError;
use crate::targets::signin::{SessionSpec, SignInRequest};

/// The session `config` opens, when it signs in with `auth = session`; an error when the
/// description has no `[session]` or a template cannot be rendered.
pub(super) fn spec(
    api: &ApiDescription,
    config: &TargetConfig,
    base: &Url,
) -> Result<Option<SessionSpec>, TargetError> {
    let TargetAuth::Session {
        app_token,
        username,
        password,
    } = &config.auth
    else {
        return Ok(None);
    };
    let Some(session) = &api.session else {
        return Err(TargetError::Unsupported(format!(
            "`auth = session` needs [session] in the API description {}",
            api.source()
        )));
    };
    let exposed = |secret: Option<&crate::config::Secret>, key: &str| match secret {
        Some(secret) => secret
            .expose()
            .map(str::to_string)
            .map_err(|why| TargetError::Unsupported(format!("the {key} is unavailable: {why}"))),
        None => Ok(String::new()),
    };
    let vars = json!({
        "token": exposed(config.token.as_ref(), "token")?,
        "app_token": exposed(app_token.as_ref(), "app_token")?,
        "username": username.clone().unwrap_or_default(),
        "password": exposed(password.as_ref(), "password")?,
    });
    let maker = Maker { api, base, vars };
    let header = HeaderName::from_bytes(session.header.as_bytes())
        .map_err(|_| unusable(api, "session", "its header is not a header name"))?;
    Ok(Some(SessionSpec {
        login: maker.request(&session.login, &session.login_headers)?,
        token: session.token.clone(),
        header,
        expired_status: session.expired_status,
        expired_text: session.expired_text.clone(),
        logout: match &session.logout {
            Some(op) => Some(maker.request(op, &session.logout_headers)?),
            None => None,
        },
        headers: maker.headers("session", &session.headers)?,
    }))
}

/// Renders a session's requests.
struct Maker<'a> {
    api: &'a ApiDescription,
    base: &'a Url,
    vars: Json,
}

impl Maker<'_> {
    fn request(&self, op: &Operation, headers: &[String]) -> Result<SignInRequest, TargetError> {
        let written = self
            .api
            .url(&op.name, &self.vars)
            .map_err(|e| TargetError::Unsupported(e.to_string()))?;
        let base = self.base.as_str().trim_end_matches('/');
        let joined = format!("{base}/{}", written.trim().trim_start_matches('/'));
        let url = Url::parse(&joined)
            .map_err(|e| unusable(self.api, &op.name, &format!("its URL is not usable ({e})")))?;
        if url.origin() != self.base.origin() {
            return Err(unusable(self.api, &op.name, "its URL leaves the target"));
        }
        Ok(SignInRequest {
            method: op.method.clone(),
            url,
            headers: self.headers(&op.name, headers)?,
            body: self
                .api
                .body(&op.name, &self.vars)
                .map_err(|e| TargetError::Unsupported(e.to_string()))?,
        })
    }

    /// The headers `names` of `operation`, rendered; one that renders empty is not sent
    /// (an `app_token` the config does not give).
    fn headers(
        &self,
        operation: &str,
        names: &[String],
    ) -> Result<Vec<(HeaderName, HeaderValue)>, TargetError> {
        let mut headers = Vec::new();
        for name in names {
            let value = self
                .api
                .header(operation, name, &self.vars)
                .map_err(|e| TargetError::Unsupported(e.to_string()))?;
            if value.trim().is_empty() {
                continue;
            }
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| unusable(self.api, operation, "a header name is not usable"))?;
            let mut value = HeaderValue::from_str(value.trim()).map_err(|_| {
                unusable(
                    self.api,
                    operation,
                    &format!("header {} cannot be sent", shorten(name, 40)),
                )
            })?;
            value.set_sensitive(true);
            headers.push((header, value));
        }
        Ok(headers)
    }
}

fn unusable(api: &ApiDescription, operation: &str, why: &str) -> TargetError {
    TargetError::Unsupported(format!("{}: [{operation}] {why}", api.source()))
}
