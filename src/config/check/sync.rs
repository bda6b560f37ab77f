//! `[sync]`: how runs behave (mapping file, mode, deactivation and its limit, state file,
//! pace). `rate_limit` is read here but kept with the target it paces.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Checker, Keys};
use crate::config::document::Value;
use crate::config::model::{DEFAULT_MAX_DEACTIVATIONS, Limit, Mode, SyncConfig};
use crate::diag::shorten;
use crate::http::Rate;

/// How often a run is a full reconciliation unless `full_every` says: a week.
pub const DEFAULT_FULL_EVERY: Duration = Duration::from_secs(7 * 24 * 3600);

impl<'d> Checker<'d> {
    /// `[sync]`; its `default_role` and `default_position` go into `settings`.
    pub(super) fn sync_config(
        &mut self,
        keys: &mut Keys<'d>,
        source_keys: &mut Keys<'d>,
        settings: &mut BTreeMap<String, serde_json::Value>,
    ) -> Option<SyncConfig> {
        let mapping_given = keys.given("mapping").is_some();
        let mapping = self.existing_file(keys, "mapping");
        let modes = [Mode::CreateUpdate, Mode::CreateOnly, Mode::UpdateOnly].map(|m| (m.name(), m));
        let mode = self
            .choice(keys, "mode", &modes)
            .unwrap_or(Mode::CreateUpdate);
        let deactivate = self.boolean(keys, "deactivate").unwrap_or(true);
        let max_deactivations = self.limit(keys).unwrap_or(DEFAULT_MAX_DEACTIVATIONS);
        let concurrency = self.integer(keys, "concurrency", 1..=64).unwrap_or(8) as usize;
        let create_disabled = self.boolean(keys, "create_disabled").unwrap_or(false);
        let hold_leavers_with_assets = self
            .boolean(keys, "hold_leavers_with_assets")
            .unwrap_or(false);
        let full_every = self.full_every(keys).unwrap_or(DEFAULT_FULL_EVERY);
        let delta = self.boolean(keys, "delta").unwrap_or(true);
        let full_at = self.full_at(keys);
        let state = self.state_path(keys);
        self.default_settings(keys, source_keys, settings);
        if mapping_given && mapping.is_none() {
            return None;
        }
        Some(SyncConfig {
            mapping,
            mode,
            deactivate,
            max_deactivations,
            state: state?,
            concurrency,
            create_disabled,
            hold_leavers_with_assets,
            full_every,
            full_at,
            delta,
        })
    }

    /// `rate_limit`: requests per second (`20`, `"20/s"`) or per minute (`"600/min"`), at
    /// most 10,000 a second.
    pub(super) fn rate_limit(&mut self, keys: &mut Keys<'d>) -> Option<Rate> {
        let entry = keys.take("rate_limit")?;
        let written = match &entry.value {
            Value::Int(n) => n.to_string(),
            Value::Text(t) if t.trim().is_empty() => return None,
            Value::Text(t) => t.trim().to_string(),
            other => other.type_name().to_string(),
        };
        let parsed = Rate::parse(&written).filter(|r| r.per_sec() <= 10_000.0);
        if parsed.is_none() {
            self.error(
                entry.value_span.clone(),
                format!(
                    "`rate_limit` must be requests per second or per minute, not `{}`",
                    shorten(&written, 40)
                ),
                "e.g. rate_limit = \"120/min\" or \"20/s\" (a plain number is per second), \
                 at most 10000/s",
            );
        }
        parsed
    }

    /// `full_every`: a duration (`7d`, `12h`), or `0` or `always` for every run.
    fn full_every(&mut self, keys: &mut Keys<'d>) -> Option<Duration> {
        let entry = keys.take("full_every")?;
        let written = match &entry.value {
            Value::Int(n) => n.to_string(),
            Value::Text(t) => t.trim().to_string(),
            _ => String::new(),
        };
        let parsed = match written.as_str() {
            "0" | "always" => Some(Duration::ZERO),
            text => humantime::parse_duration(text).ok(),
        };
        if parsed.is_none() {
            self.error(
                entry.value_span.clone(),
                format!(
                    "`full_every` must be a duration, `0` or `always`, not `{}`",
                    shorten(&written, 40)
                ),
                "e.g. full_every = \"7d\", \"12h\", or \"always\" for every run",
            );
        }
        parsed
    }

    /// `full_at`: a local time of day, `HH:MM`.
    fn full_at(&mut self, keys: &mut Keys<'d>) -> Option<chrono::NaiveTime> {
        let entry = keys.take("full_at")?;
        let written = match &entry.value {
            Value::Text(t) => t.trim().to_string(),
            other => other.type_name().to_string(),
        };
        let parsed = chrono::NaiveTime::parse_from_str(&written, "%H:%M").ok();
        if parsed.is_none() {
            self.error(
                entry.value_span.clone(),
                format!(
                    "`full_at` must be a time of day as HH:MM, not `{}`",
                    shorten(&written, 40)
                ),
                "e.g. full_at = 02:00 (local time)",
            );
        }
        parsed
    }

    /// `max_deactivations`: a count (`25`) or a percentage (`"10%"`).
    fn limit(&mut self, keys: &mut Keys<'d>) -> Option<Limit> {
        let entry = keys.take("max_deactivations")?;
        let written = match &entry.value {
            Value::Int(n) => n.to_string(),
            Value::Text(t) => t.trim().to_string(),
            other => {
                self.error(
                    entry.value_span.clone(),
                    format!(
                        "`max_deactivations` must be a count or a percentage, not {}",
                        other.type_name()
                    ),
                    "e.g. max_deactivations = \"10%\" or max_deactivations = 25",
                );
                return None;
            }
        };
        let parsed = match written.strip_suffix('%') {
            Some(p) => p
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|p| (0.0..=100.0).contains(p))
                .map(Limit::Percent),
            None => written.parse::<u32>().ok().map(Limit::Count),
        };
        if parsed.is_none() {
            self.error(
                entry.value_span.clone(),
                format!(
                    "`max_deactivations` must be a count or a percentage, not `{}`",
                    shorten(&written, 40)
                ),
                "e.g. max_deactivations = \"10%\" or max_deactivations = 25",
            );
        }
        parsed
    }

    /// The state file: relative to the config's folder; its folder must exist.
    fn state_path(&mut self, keys: &mut Keys<'d>) -> Option<PathBuf> {
        let Some((text, entry)) = self.text(keys, "state") else {
            return Some(self.dir.join("userload.db"));
        };
        let path = self.dir.join(&text);
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            self.error(
                entry.value_span.clone(),
                format!(
                    "the folder for the state file does not exist: {}",
                    parent.display()
                ),
                "create it, or point `state` at an existing folder",
            );
            return None;
        }
        Some(path)
    }
}
