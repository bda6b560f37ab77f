//! `[notify]`: the webhook told about runs that need an admin, and which runs those are.

use super::{Checker, Keys};
use crate::config::model::{DEFAULT_NOTIFY_ON, NotifyConfig, NotifyOn};
use crate::config::secret::Secret;
use crate::diag::{did_you_mean, shorten};

impl<'d> Checker<'d> {
    /// `[notify]`: `webhook` (a secret) and `on`, a comma-separated list of statuses.
    pub(super) fn notify_config(&mut self, keys: &mut Keys<'d>) -> NotifyConfig {
        let webhook = self.secret(keys, "webhook");
        let choices = [
            NotifyOn::Failed,
            NotifyOn::Limited,
            NotifyOn::Partial,
            NotifyOn::Ok,
        ];
        let on = match self.text(keys, "on") {
            None => DEFAULT_NOTIFY_ON.to_vec(),
            Some((text, entry)) => {
                let mut on = Vec::new();
                for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
                    match choices.iter().find(|c| c.name().eq_ignore_ascii_case(word)) {
                        Some(c) if !on.contains(c) => on.push(*c),
                        Some(_) => {}
                        None => {
                            let names = choices.map(NotifyOn::name);
                            let hint = did_you_mean(word, names.iter().copied(), || {
                                format!("choose from: {}", names.join(", "))
                            });
                            self.error(
                                entry.value_span.clone(),
                                format!("`{}` is not a run status `on` knows", shorten(word, 40)),
                                hint,
                            );
                        }
                    }
                }
                on
            }
        };
        let ping_url = self.ping_url(keys);
        NotifyConfig {
            webhook,
            on,
            ping_url,
        }
    }

    /// `ping_url`: a secret that, when it can be read now, must be an http(s) URL.
    fn ping_url(&mut self, keys: &mut Keys<'d>) -> Option<Secret> {
        let entry = keys.given("ping_url");
        let secret = self.secret(keys, "ping_url")?;
        if let (Ok(value), Some(entry)) = (secret.expose(), entry) {
            let url = url::Url::parse(value.trim()).ok();
            if !url.is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host()) {
                self.error(
                    entry.value_span.clone(),
                    "`ping_url` is not an http(s) URL",
                    "e.g. https://hc-ping.com/<uuid> or https://kuma.example.com/api/push/<token>",
                );
                return None;
            }
        }
        Some(secret)
    }
}
