//! A run's figures as metrics for Prometheus: OpenMetrics text for the daemon's `/metrics`,
//! Prometheus text for node_exporter's textfile collector (`run --metrics-file`), and the
//! daemon's health.
//!
//! Everything is read from the [`RunReport`] and from the request meters the HTTP layer
//! keeps ([`crate::http::Meter`]), which the report's outcome carries. A [`Board`] holds the
//! last run's figures and the totals since the process started; each scrape or file is
//! rendered from it afresh.

pub mod serve;

use std::fmt;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::http::Latency;
use crate::state::RunCounts;
use crate::sync::report::{RunReport, RunStatus};

/// Every run status, in the order the metrics list them.
const STATUSES: [RunStatus; 6] = [
    RunStatus::Ok,
    RunStatus::Partial,
    RunStatus::Stopped,
    RunStatus::Limited,
    RunStatus::Refused,
    RunStatus::Failed,
];

/// The two sides userload talks to, as the `side` label names them.
const SIDES: [&str; 2] = ["graph", "target"];

/// The requests made to one side in one run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SideFigures {
    /// Requests sent, retries included.
    pub requests: u64,
    /// Requests sent again after a failure.
    pub retries: u64,
    /// How long the attempts took, and how many were answered 429.
    pub latency: Latency,
}

impl SideFigures {
    fn add(&mut self, other: &SideFigures) {
        self.requests += other.requests;
        self.retries += other.retries;
        self.latency.add(&other.latency);
    }
}

/// One run's figures, as the metrics show them.
#[derive(Debug, Clone, PartialEq)]
pub struct RunFigures {
    /// When the run started, in seconds since 1970.
    pub started: f64,
    /// When it ended, in seconds since 1970.
    pub finished: f64,
    /// How long it took, in seconds.
    pub seconds: f64,
    /// How it ended.
    pub status: RunStatus,
    /// Users by what was done with them (all zero for a run that wrote nothing).
    pub counts: RunCounts,
    /// Deactivations held back.
    pub held: u64,
    /// References the planner could not resolve (left empty).
    pub unresolved: u64,
    /// The requests to Graph.
    pub graph: SideFigures,
    /// The requests to the target.
    pub target: SideFigures,
    /// The run's outcome in one line (the webhook's headline).
    pub headline: String,
    /// Why the credentials were refused, when that is why the run failed
    /// ([`RunReport::credentials_refused`]).
    pub credentials_refused: Option<String>,
}

/// Seconds since 1970 of an RFC 3339 time; 0 when it cannot be read.
fn epoch_seconds(rfc3339: &str) -> f64 {
    DateTime::parse_from_rfc3339(rfc3339).map_or(0.0, |t| t.timestamp_micros() as f64 / 1e6)
}

impl RunFigures {
    /// The figures of `report`.
    pub fn of(report: &RunReport) -> RunFigures {
        let made = report.made();
        let side = |requests, retries, latency: Option<&Latency>| SideFigures {
            requests,
            retries,
            latency: latency.cloned().unwrap_or_default(),
        };
        RunFigures {
            started: epoch_seconds(&report.started),
            finished: epoch_seconds(&report.finished),
            seconds: report.seconds,
            status: report.status(),
            counts: made.map(|o| o.counts.clone()).unwrap_or_default(),
            held: made.map_or(0, |o| o.held.len() as u64),
            unresolved: made.map_or(0, |o| o.plan.unresolved.len() as u64),
            graph: made.map_or_else(SideFigures::default, |o| {
                side(o.graph_requests, o.graph_retries, Some(&o.graph_latency))
            }),
            target: made.map_or_else(SideFigures::default, |o| {
                side(o.target_requests, o.target_retries, Some(&o.target_latency))
            }),
            headline: report.headline(),
            credentials_refused: report.credentials_refused(),
        }
    }

    /// Whether the run counts as a success for `/healthz` and the ping: exit code 0.
    pub fn succeeded(&self) -> bool {
        self.status.exit_code() == 0
    }

    /// Whether the run counts as failed for the daemon's count of failures in a row: it
    /// could not run or refused to (exit code 2), or the credentials were refused.
    pub fn failed(&self) -> bool {
        self.status.exit_code() == 2 || self.credentials_refused.is_some()
    }
}

/// The daemon's failures in a row, and whether it is backing off.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Streak {
    /// Runs in a row that failed ([`RunFigures::failed`]); 0 after a run that did not.
    pub failures: u64,
    /// When the daemon waits longer than its schedule because the credentials were
    /// refused: why, in a few words, and how long it waits.
    pub backing_off: Option<(String, std::time::Duration)>,
}

/// The last run's figures, the totals since the process started, and when the next run is
/// due (the daemon's schedule).
#[derive(Debug, Default)]
pub struct Board {
    /// The last run, once there was one.
    pub last: Option<RunFigures>,
    /// Runs by status.
    runs: [u64; STATUSES.len()],
    /// The requests of every run to Graph.
    graph: SideFigures,
    /// The requests of every run to the target.
    target: SideFigures,
    /// When the next run is due to start, random delay included.
    pub next_due: Option<DateTime<Utc>>,
    /// The daemon's failures in a row and its backing off; `None` outside the daemon.
    pub streak: Option<Streak>,
}

/// How late past its due time a run may end before `/healthz` calls it overdue, besides
/// the length of the last run.
pub const GRACE: chrono::Duration = chrono::Duration::hours(1);

impl Board {
    /// How many runs were noted since the process started.
    pub fn recorded(&self) -> u64 {
        self.runs.iter().sum()
    }

    /// Notes a run that ended.
    pub fn record(&mut self, run: RunFigures) {
        if let Some(i) = STATUSES.iter().position(|s| *s == run.status) {
            self.runs[i] += 1;
        }
        self.graph.add(&run.graph);
        self.target.add(&run.target);
        self.last = Some(run);
    }

    /// Whether all is well at `now`, and why, in one line: the last run succeeded (or
    /// there was none yet) and the next run is not overdue (due more than [`GRACE`] and
    /// the last run's length ago).
    pub fn health(&self, now: DateTime<Utc>) -> (bool, String) {
        if let Some(due) = self.next_due {
            let took = self
                .last
                .as_ref()
                .and_then(|l| {
                    chrono::Duration::from_std(std::time::Duration::from_secs_f64(
                        l.seconds.max(0.0),
                    ))
                    .ok()
                })
                .unwrap_or_default();
            if now > due + GRACE + took {
                return (
                    false,
                    format!(
                        "overdue: a run was due at {}",
                        due.format("%Y-%m-%dT%H:%M:%SZ")
                    ),
                );
            }
        }
        let backing_off = self
            .streak
            .as_ref()
            .and_then(|s| s.backing_off.as_ref())
            .map(|(why, wait)| {
                format!(
                    "; backing off: {why}, next try in {}",
                    humantime::format_duration(round(*wait))
                )
            })
            .unwrap_or_default();
        match &self.last {
            None => (true, "ok: no run yet".to_owned()),
            Some(last) if last.succeeded() => (true, format!("ok: {}", last.headline)),
            Some(last) => (
                false,
                format!(
                    "last run {}: {}{backing_off}",
                    last.status.name(),
                    last.headline
                ),
            ),
        }
    }

    /// The metrics as OpenMetrics text (the daemon's `/metrics`).
    pub fn openmetrics(&self) -> Result<String, fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry())?;
        Ok(text)
    }

    /// The metrics as Prometheus text, for node_exporter's textfile collector.
    pub fn prometheus_text(&self) -> Result<String, fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry())?;
        Ok(text)
    }

    /// Every metric, filled in from the board.
    fn registry(&self) -> Registry {
        let mut registry = Registry::with_prefix("userload");
        if let Some(last) = &self.last {
            register_last(&mut registry, last);
        }
        if let Some(streak) = &self.streak {
            registry.register(
                "consecutive_failures",
                "Runs in a row that could not run, refused, or met refused credentials",
                gauge(streak.failures as f64),
            );
            registry.register(
                "backing_off",
                "1 while the daemon waits longer than its schedule because the credentials \
                 were refused, else 0",
                gauge(f64::from(u8::from(streak.backing_off.is_some()))),
            );
        }
        let runs = Family::<Vec<(String, String)>, Counter>::default();
        for (status, n) in STATUSES.iter().zip(self.runs) {
            runs.get_or_create(&label("status", status.name()))
                .inc_by(n);
        }
        registry.register(
            "runs",
            "Runs ended since the process started, by status",
            runs,
        );
        let sides = [&self.graph, &self.target];
        let requests = Family::<Vec<(String, String)>, Counter>::default();
        let retries = Family::<Vec<(String, String)>, Counter>::default();
        let throttled = Family::<Vec<(String, String)>, Counter>::default();
        for (name, side) in SIDES.iter().zip(sides) {
            let labels = label("side", name);
            requests.get_or_create(&labels).inc_by(side.requests);
            retries.get_or_create(&labels).inc_by(side.retries);
            throttled
                .get_or_create(&labels)
                .inc_by(side.latency.throttled);
        }
        registry.register(
            "http_requests",
            "Requests sent since the process started, retries included, by side",
            requests,
        );
        registry.register(
            "http_retries",
            "Requests sent again after a failure since the process started, by side",
            retries,
        );
        registry.register(
            "http_throttled",
            "Attempts answered 429 (too many requests) since the process started, by side",
            throttled,
        );
        registry.register(
            "http_request_duration_seconds",
            "How long each attempt took, answer included, since the process started, by side",
            Latencies(vec![
                (SIDES[0], self.graph.latency.clone()),
                (SIDES[1], self.target.latency.clone()),
            ]),
        );
        registry
    }
}

/// `wait` to the millisecond, for messages.
pub fn round(wait: std::time::Duration) -> std::time::Duration {
    std::time::Duration::from_millis(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX))
}

/// A label set of one label.
fn label(name: &str, value: &str) -> Vec<(String, String)> {
    vec![(name.to_owned(), value.to_owned())]
}

/// A gauge set to `value`.
fn gauge(value: f64) -> Gauge<f64, std::sync::atomic::AtomicU64> {
    let gauge = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    gauge.set(value);
    gauge
}

/// The last run's gauges.
fn register_last(registry: &mut Registry, last: &RunFigures) {
    registry.register(
        "last_run_start_timestamp_seconds",
        "When the last run started, in seconds since 1970",
        gauge(last.started),
    );
    registry.register(
        "last_run_end_timestamp_seconds",
        "When the last run ended, in seconds since 1970",
        gauge(last.finished),
    );
    registry.register(
        "last_run_duration_seconds",
        "How long the last run took",
        gauge(last.seconds),
    );
    let status = Family::<Vec<(String, String)>, Gauge>::default();
    for s in STATUSES {
        status
            .get_or_create(&label("status", s.name()))
            .set(i64::from(s == last.status));
    }
    registry.register(
        "last_run_status",
        "How the last run ended: 1 for its status, 0 for the others",
        status,
    );
    registry.register(
        "last_run_exit_code",
        "The last run's exit code: 0 all done, 1 some users failed or were held, 2 could not run",
        gauge(f64::from(last.status.exit_code())),
    );
    let users = Family::<Vec<(String, String)>, Gauge>::default();
    let c = &last.counts;
    for (action, n) in [
        ("created", c.created),
        ("updated", c.updated),
        ("deactivated", c.deactivated),
        ("reactivated", c.reactivated),
        ("unchanged", c.unchanged),
        ("skipped", c.skipped),
    ] {
        users.get_or_create(&label("action", action)).set(n);
    }
    registry.register(
        "last_run_users",
        "Users in the last run, by what was done",
        users,
    );
    registry.register(
        "last_run_failed_writes",
        "Writes that failed in the last run",
        gauge(c.failed as f64),
    );
    registry.register(
        "last_run_held_deactivations",
        "Deactivations the last run held back",
        gauge(last.held as f64),
    );
    registry.register(
        "last_run_unresolved_references",
        "References the last run could not resolve and left empty",
        gauge(last.unresolved as f64),
    );
}

/// The latency histograms of both sides, from the meters' buckets.
#[derive(Debug)]
struct Latencies(Vec<(&'static str, Latency)>);

impl EncodeMetric for Latencies {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), fmt::Error> {
        for (side, latency) in &self.0 {
            let bounds = crate::http::meter::BUCKETS
                .iter()
                .copied()
                .chain([f64::INFINITY]);
            let mut buckets: Vec<(f64, u64)> = bounds
                .zip(latency.buckets.iter().copied().chain(std::iter::repeat(0)))
                .collect();
            buckets.truncate(crate::http::meter::BUCKETS.len() + 1);
            let labels = [("side", *side)];
            encoder
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(latency.seconds, latency.count(), &buckets, None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// Writes `board`'s metrics to `path` as Prometheus text for node_exporter's textfile
/// collector: into a temporary file of the same folder (a name the collector skips), then
/// renamed over `path`, so that a scrape sees the old file or the new one, never part of one.
pub fn write_textfile(path: &std::path::Path, board: &Board) -> std::io::Result<()> {
    use std::io::Write as _;
    let text = board
        .prometheus_text()
        .map_err(|_| std::io::Error::other("the metrics could not be written as text"))?;
    let text = crate::secrets::scrub(&text).into_owned();
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let mut file = tempfile::Builder::new()
        .prefix(".userload-metrics-")
        .suffix(".tmp")
        .tempfile_in(folder)?;
    file.write_all(text.as_bytes())?;
    file.as_file().sync_all()?;
    // The collector usually runs as another user: the file is readable by all, like a
    // file written the ordinary way.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(status: RunStatus) -> RunFigures {
        RunFigures {
            started: 1_796_601_600.0,
            finished: 1_796_601_612.5,
            seconds: 12.5,
            status,
            counts: RunCounts {
                created: 3,
                updated: 2,
                failed: 1,
                ..RunCounts::default()
            },
            held: 4,
            unresolved: 5,
            graph: SideFigures {
                requests: 7,
                retries: 1,
                latency: Latency {
                    buckets: vec![0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 1],
                    seconds: 30.5,
                    throttled: 1,
                },
            },
            target: SideFigures::default(),
            headline: "the run finished".to_owned(),
            credentials_refused: None,
        }
    }

    #[test]
    fn the_text_holds_the_last_run_and_the_totals() {
        let mut board = Board::default();
        board.record(figures(RunStatus::Partial));
        board.record(figures(RunStatus::Ok));
        let text = board.openmetrics().unwrap();
        for line in [
            "userload_last_run_users{action=\"created\"} 3",
            "userload_last_run_failed_writes 1.0",
            "userload_last_run_held_deactivations 4.0",
            "userload_last_run_unresolved_references 5.0",
            "userload_last_run_status{status=\"ok\"} 1",
            "userload_last_run_status{status=\"partial\"} 0",
            "userload_runs_total{status=\"partial\"} 1",
            "userload_http_requests_total{side=\"graph\"} 14",
            "userload_http_throttled_total{side=\"graph\"} 2",
            "userload_http_request_duration_seconds_bucket{le=\"0.1\",side=\"graph\"} 12",
            "userload_http_request_duration_seconds_bucket{le=\"+Inf\",side=\"graph\"} 14",
            "userload_http_request_duration_seconds_count{side=\"target\"} 0",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
        let prom = board.prometheus_text().unwrap();
        assert!(!prom.contains("# EOF"));
        assert!(prom.contains("userload_runs_total{status=\"ok\"} 1"));
    }

    #[test]
    fn health_fails_after_a_failed_run_and_when_a_run_is_overdue() {
        let now = Utc::now();
        let mut board = Board::default();
        assert!(board.health(now).0);
        board.record(figures(RunStatus::Failed));
        let (well, why) = board.health(now);
        assert!(!well);
        assert_eq!(why, "last run failed: the run finished");
        board.record(figures(RunStatus::Ok));
        assert!(board.health(now).0);
        board.next_due = Some(now - GRACE - chrono::Duration::minutes(1));
        let (well, why) = board.health(now);
        assert!(!well && why.starts_with("overdue"), "{why}");
    }

    #[test]
    fn the_streak_shows_in_the_metrics_and_backing_off_in_the_health() {
        let mut board = Board::default();
        let text = board.openmetrics().unwrap();
        assert!(!text.contains("consecutive_failures"), "{text}");
        let mut failed = figures(RunStatus::Failed);
        failed.credentials_refused = Some("sign-in refused (secret expired)".into());
        board.record(failed);
        board.streak = Some(Streak {
            failures: 3,
            backing_off: Some((
                "sign-in refused (secret expired)".into(),
                std::time::Duration::from_secs(7200),
            )),
        });
        let text = board.openmetrics().unwrap();
        assert!(text.contains("userload_consecutive_failures 3.0"), "{text}");
        assert!(text.contains("userload_backing_off 1.0"), "{text}");
        let (well, why) = board.health(Utc::now());
        assert!(!well);
        assert_eq!(
            why,
            "last run failed: the run finished; backing off: sign-in refused (secret \
             expired), next try in 2h"
        );
    }
}
