//! `[target]` (or the Oomnitza connector's `[oomnitza]`): the asset system, how to reach it
//! and sign in to it, and what its API looks like.

use super::{Checker, Keys};
use crate::config::model::{OAuth2Config, Preset, RestApi, TargetAuth, TargetConfig, TargetKind};
use crate::config::secret::Secret;
use crate::diag::shorten;

impl<'d> Checker<'d> {
    /// `[target]`. Without a usable `type` or `auth` the keys that depend on them are not
    /// read, since their problems would only be guesses.
    pub(super) fn target_config(
        &mut self,
        keys: &mut Keys<'d>,
        source_keys: &mut Keys<'d>,
    ) -> Option<TargetConfig> {
        if keys.section.is_none() {
            self.error(
                0..0,
                "missing [target] section",
                "add [target] with type, url and token",
            );
            return None;
        }
        let kind = self.target_kind(keys);
        let url = if keys.given("url").is_some() {
            self.endpoint(keys, "url")
        } else {
            self.missing(keys, "url", "add: url = https://…");
            None
        };
        let token = self.target_token(keys, kind);
        let sync_field = self.sync_field(keys, source_keys);
        let kind = kind?;
        let auth = self.target_auth(keys, kind, token.is_some())?;
        let api = self.rest_api(keys, kind);
        let page_size = self.integer(keys, "page_size", 1..=1000).unwrap_or(100) as u32;
        let list = self.boolean(keys, "list").unwrap_or(true);
        let batch_size = self.integer(keys, "batch_size", 1..=10_000).unwrap_or(500) as usize;
        let max_attempts = self.integer(keys, "max_attempts", 1..=20).unwrap_or(6) as u32;
        let timeout = self.integer(keys, "request_timeout", 1..=600).unwrap_or(60);
        Some(TargetConfig {
            kind,
            url: url?,
            token,
            sync_field,
            auth,
            api,
            page_size,
            list,
            batch_size,
            max_attempts,
            request_timeout: std::time::Duration::from_secs(timeout as u64),
            rate_limit: None,
        })
    }

    /// `type`; an old `[oomnitza]` section is an Oomnitza target without saying so.
    fn target_kind(&mut self, keys: &mut Keys<'d>) -> Option<TargetKind> {
        if keys.legacy {
            return Some(TargetKind::Oomnitza);
        }
        let kinds =
            [TargetKind::Scim, TargetKind::Rest, TargetKind::Oomnitza].map(|k| (k.name(), k));
        let kind = self.choice(keys, "type", &kinds);
        if kind.is_none() && keys.given("type").is_none() {
            self.missing(keys, "type", "add: type = \"scim\" (or rest, oomnitza)");
        }
        kind
    }

    /// `token` (`api_token` in an old `[oomnitza]`), which Oomnitza cannot do without.
    fn target_token(&mut self, keys: &mut Keys<'d>, kind: Option<TargetKind>) -> Option<Secret> {
        let token_key = if keys.legacy { "api_token" } else { "token" };
        let token = self.secret(keys, token_key);
        if keys.legacy {
            self.oomnitza_unused_keys(keys);
        }
        if kind == Some(TargetKind::Oomnitza) && token.is_none() {
            let hint = format!("add: {token_key} = env:OOMNITZA_TOKEN (an Oomnitza API token)");
            self.missing(keys, token_key, hint);
        }
        token
    }

    /// `sync_field`, which the Oomnitza connector kept in `[azureusers]`.
    fn sync_field(&mut self, keys: &mut Keys<'d>, source_keys: &mut Keys<'d>) -> Option<String> {
        match self.text(keys, "sync_field") {
            Some((field, _)) => Some(field),
            None if source_keys.legacy => self.text(source_keys, "sync_field").map(|(f, _)| f),
            None => None,
        }
    }

    /// `preset` or `templates`: what a `rest` target's API looks like; one of them is
    /// required there.
    fn rest_api(&mut self, keys: &mut Keys<'d>, kind: TargetKind) -> Option<RestApi> {
        let api = match (self.text(keys, "preset"), keys.given("templates").is_some()) {
            (Some((name, entry)), _) => match Preset::named(&name) {
                Some(preset) => Some(RestApi::Preset(preset)),
                None => {
                    let known: Vec<&str> = Preset::ALL.iter().map(|p| p.name()).collect();
                    self.error(
                        entry.value_span.clone(),
                        format!("unknown preset `{}`", shorten(&name, 40)),
                        format!("presets: {}", known.join(", ")),
                    );
                    None
                }
            },
            (None, true) => self
                .existing_file(keys, "templates")
                .map(RestApi::Templates),
            (None, false) => None,
        };
        if kind == TargetKind::Rest && api.is_none() {
            self.missing(
                keys,
                "preset",
                "add: preset = snipeit (or templates = my-api.toml)",
            );
        }
        api
    }

    /// `auth`: bearer (the default), basic (`username`, `password`, or only `token`: the
    /// token as the user name) or header (`auth_header`). Oomnitza sends its token in
    /// `Authorization2`. Without a token, bearer and header requests carry no credentials (a
    /// test server); `check` shows whether the target accepts that.
    fn target_auth(
        &mut self,
        keys: &mut Keys<'d>,
        kind: TargetKind,
        has_token: bool,
    ) -> Option<TargetAuth> {
        let choices = [
            ("bearer", 0),
            ("basic", 1),
            ("header", 2),
            ("oauth2", 3),
            ("session", 4),
        ];
        let auth_entry = keys.given("auth");
        let chosen = self.choice(keys, "auth", &choices);
        let chosen = chosen.unwrap_or(if kind == TargetKind::Oomnitza { 2 } else { 0 });
        let auth = match chosen {
            1 if has_token
                && keys.given("username").is_none()
                && keys.given("password").is_none() =>
            {
                TargetAuth::BasicToken
            }
            1 => {
                let username = self.text(keys, "username").map(|(u, _)| u);
                let password = self.secret(keys, "password");
                if username.is_none() {
                    self.missing(
                        keys,
                        "username",
                        "add: username = … (auth = basic), or only token = … for an API key sent as the user name",
                    );
                }
                if password.is_none() {
                    self.missing(keys, "password", "add: password = env:ASSET_PASSWORD");
                }
                TargetAuth::Basic {
                    username: username?,
                    password: password?,
                }
            }
            2 => {
                let header = self.text(keys, "auth_header").map(|(h, _)| h);
                TargetAuth::Header(header.unwrap_or_else(|| "Authorization2".to_string()))
            }
            3 => TargetAuth::OAuth2(self.oauth2(keys)?),
            4 => {
                if kind != TargetKind::Rest
                    && let Some(entry) = auth_entry
                {
                    self.error(
                        entry.value_span.clone(),
                        "`auth = session` needs a rest target",
                        "a session is opened by the login request of a rest target's API description",
                    );
                }
                TargetAuth::Session {
                    app_token: self.secret(keys, "app_token"),
                    username: self.text(keys, "username").map(|(u, _)| u),
                    password: self.secret(keys, "password"),
                }
            }
            _ => TargetAuth::Bearer,
        };
        Some(auth)
    }

    /// `token_url`, `client_id`, `client_secret` and `scope` of `auth = oauth2`.
    fn oauth2(&mut self, keys: &mut Keys<'d>) -> Option<OAuth2Config> {
        let token_url = self.endpoint(keys, "token_url");
        let client_id = self.text(keys, "client_id").map(|(c, _)| c);
        let client_secret = self.secret(keys, "client_secret");
        let scope = self.text(keys, "scope").map(|(s, _)| s);
        if token_url.is_none() && keys.given("token_url").is_none() {
            self.missing(keys, "token_url", "add: token_url = https://…/oauth/token");
        }
        if client_id.is_none() {
            self.missing(keys, "client_id", "add: client_id = … (auth = oauth2)");
        }
        if client_secret.is_none() {
            self.missing(
                keys,
                "client_secret",
                "add: client_secret = env:ASSET_CLIENT_SECRET",
            );
        }
        Some(OAuth2Config {
            token_url: token_url?,
            client_id: client_id?,
            client_secret: client_secret?,
            scope,
        })
    }
}
