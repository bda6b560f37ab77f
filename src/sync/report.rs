//! The run report: everything one `userload run` produced, typed, so that every output of
//! a run reads the same facts. The summary table, the `--report` JSON, the `--changes` CSV,
//! the webhook's message and the state's history row are all made from a [`RunReport`],
//! and the exit code of a run is decided here, by [`RunStatus::exit_code`].

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Value as Json, json};

use super::changes::ReadMode;
use super::error::SyncError;
use super::holdings::describe;
use super::outcome::Outcome;
pub use super::outcome::RunStatus;
use super::plan::{Drift, Holdings, Update, UpdateKind, drift_count};
use super::reconcile::Reason;
use crate::graph::GraphError;
use crate::state::{Requests, RunEnd, SidesRead};
use crate::targets::TargetError;

/// Why a run could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The config has errors (they were printed).
    #[error("the config has errors; nothing was run")]
    Config,
    /// The mapping has errors (they were printed).
    #[error("the mapping has errors (shown in the log); nothing was run")]
    Mapping,
    /// The target could not be set up.
    #[error("the target could not be set up: {0}")]
    Target(TargetError),
    /// The sync failed ([`SyncError`] says what it may have written).
    #[error(transparent)]
    Sync(#[from] SyncError),
}

/// One run, made or not: when, how long, and what it produced.
#[derive(Debug)]
pub struct RunReport {
    /// When it started (RFC 3339).
    pub started: String,
    /// When it finished (RFC 3339).
    pub finished: String,
    /// How long it took.
    pub seconds: f64,
    /// What the sync did, or why the run could not run.
    pub result: Result<Outcome, RunError>,
}

/// The columns of the CSV of changes.
pub const CSV_HEADER: &str = "action,user,entra_id,target_id,field,from,to,result,error";

impl RunReport {
    /// The report of a run that started at `started` (RFC 3339), `clock` measuring it, and
    /// ends now.
    pub fn new(
        started: String,
        clock: std::time::Instant,
        result: Result<Outcome, RunError>,
    ) -> RunReport {
        RunReport {
            started,
            finished: crate::state::now(),
            seconds: clock.elapsed().as_secs_f64(),
            result,
        }
    }

    /// What the run wrote: all of it, or what a failed run made anyway.
    pub fn made(&self) -> Option<&Outcome> {
        match &self.result {
            Ok(outcome) => Some(outcome),
            Err(RunError::Sync(e)) => e.made(),
            Err(_) => None,
        }
    }

    /// How the run ended.
    pub fn status(&self) -> RunStatus {
        match &self.result {
            Ok(outcome) => outcome.status(),
            Err(RunError::Sync(e)) if e.stopped() => RunStatus::Stopped,
            Err(_) => RunStatus::Failed,
        }
    }

    /// The process exit code ([`RunStatus::exit_code`]).
    pub fn exit_code(&self) -> i32 {
        self.status().exit_code()
    }

    /// Why the credentials were refused, in a few words, when that is why the run failed:
    /// Entra refused the sign-in for a reason that lasts until an admin changes something
    /// (a wrong or expired secret, an unknown app or tenant, a certificate or federated
    /// credential it does not know), or the target refused the credentials (401, 403).
    /// `None` for any other ending, including failures a later try may not meet (the
    /// network, throttling, a target answering 5xx).
    pub fn credentials_refused(&self) -> Option<String> {
        let target = |status: u16| format!("the target refused the credentials (HTTP {status})");
        match &self.result {
            Ok(outcome) => outcome.refused_credentials.map(target),
            Err(RunError::Target(TargetError::Unauthorized { status, .. }))
            | Err(RunError::Sync(SyncError::Target(TargetError::Unauthorized {
                status, ..
            }))) => Some(target(*status)),
            Err(RunError::Sync(
                SyncError::Graph(GraphError::SignIn(e))
                | SyncError::GraphAfterCreates {
                    error: GraphError::SignIn(e),
                    ..
                },
            )) => {
                let why = match e.code? {
                    7000215 => "secret wrong",
                    7000222 => "secret expired",
                    700016 => "app not found",
                    90002 => "tenant not found",
                    700027 => "certificate refused",
                    70021 => "no federated credential matches",
                    _ => return None,
                };
                Some(format!("sign-in refused ({why})"))
            }
            Err(RunError::Sync(e)) => e.made()?.refused_credentials.map(target),
            Err(_) => None,
        }
    }

    /// Why the run failed, or what the guards held back or refused.
    pub fn message(&self) -> Option<String> {
        match &self.result {
            Ok(outcome) => outcome.verdict_message().map(str::to_owned),
            Err(e) => Some(e.to_string()),
        }
    }

    /// The row the state's history keeps of this run.
    pub fn history_row(&self) -> RunEnd<'static> {
        RunEnd {
            status: self.status().name(),
            exit_code: self.exit_code(),
            counts: self.made().map(|o| o.counts.clone()).unwrap_or_default(),
            message: self.message(),
            requests: self.made().map(|o| Requests {
                graph: o.graph_requests,
                target: o.target_requests,
            }),
            // A refused run's read is what the guard refused (say, an empty tenant), and a
            // delta or one-user run read only some users: neither is a measure for the
            // next run.
            read: self
                .result
                .as_ref()
                .ok()
                .filter(|o| o.status() != RunStatus::Refused)
                .filter(|o| matches!(o.mode, ReadMode::Full | ReadMode::Reconcile))
                .map(|o| SidesRead {
                    entra: o.source_users as u64,
                    // The target as the run left it: what was listed, and what it created.
                    target: o
                        .listed_whole
                        .then_some(o.target_users as u64 + o.counts.created.max(0) as u64),
                }),
        }
    }

    /// The webhook's one-line headline.
    pub fn headline(&self) -> String {
        let Ok(outcome) = &self.result else {
            return "the run failed".to_owned();
        };
        match outcome.status() {
            RunStatus::Refused => "the run refused to write".to_owned(),
            RunStatus::Limited if outcome.verdict.holds_deactivations() => format!(
                "{} deactivations held back by max_deactivations",
                outcome.held.len()
            ),
            RunStatus::Limited => format!(
                "{} deactivations held back: the users still hold assets",
                outcome.held.len()
            ),
            RunStatus::Ok => "the run finished".to_owned(),
            RunStatus::Stopped => "the run was stopped before all writes".to_owned(),
            RunStatus::Partial | RunStatus::Failed => {
                format!("{} writes failed", outcome.failures.len())
            }
        }
    }

    /// The webhook's further lines: the counts, the guards' message, the first failures.
    pub fn details(&self) -> Vec<String> {
        let outcome = match &self.result {
            Err(e) => return vec![e.to_string()],
            Ok(outcome) => outcome,
        };
        let c = &outcome.counts;
        let mut details = vec![format!(
            "created {}, updated {}, deactivated {}, reactivated {}, unchanged {}, skipped {}, failed {}",
            c.created, c.updated, c.deactivated, c.reactivated, c.unchanged, c.skipped, c.failed
        )];
        if let Some(message) = outcome.verdict_message() {
            details.push(message.to_owned());
        }
        details.extend(
            outcome
                .failures
                .iter()
                .take(5)
                .map(|f| format!("{} {}: {}", f.action, f.user, f.error)),
        );
        details.extend(leaver_lines(outcome));
        details
    }

    /// The JSON report: what the run did, what failed and why, how long it took and how
    /// many requests it made. A run that could not run still gets one, with the error and,
    /// when Graph answered, the `request-id` Microsoft support asks for. `path` is the
    /// config file, `target` the target's URL (none when the config could not be read),
    /// `peak_memory` the process's peak in MB, where known.
    pub fn to_json(&self, path: &Path, target: Option<&str>, peak_memory: Option<u64>) -> Json {
        let mut report = json!({
            "userload": env!("CARGO_PKG_VERSION"),
            "config": path.display().to_string(),
            "target": target,
            "started": self.started,
            "finished": self.finished,
            "status": self.status().name(),
            "exit_code": self.exit_code(),
            "peak_memory_mb": peak_memory,
        });
        let more = match &self.result {
            Ok(outcome) => self.outcome_json(outcome),
            Err(e) => self.error_json(e),
        };
        if let (Json::Object(report), Json::Object(more)) = (&mut report, more) {
            report.extend(more);
        }
        report
    }

    /// The report's fields for a run that could not run.
    fn error_json(&self, e: &RunError) -> Json {
        let request_id = match e {
            RunError::Sync(SyncError::Graph(g) | SyncError::GraphAfterCreates { error: g, .. }) => {
                g.request_id()
            }
            _ => None,
        };
        let mut more = json!({
            "message": e.to_string(),
            "error": {"message": e.to_string(), "graph_request_id": request_id},
            "seconds": {"total": self.seconds},
        });
        if let Some(made) = self.made() {
            more["counts"] = json!(made.counts);
            more["failures"] = json!(made.failures);
        }
        more
    }

    /// The report's fields for a run that ran.
    fn outcome_json(&self, outcome: &Outcome) -> Json {
        let planned = |kind| outcome.plan.of_kind(kind).count();
        json!({
            "message": outcome.verdict_message(),
            "source_users": outcome.source_users,
            "target_users": outcome.target_users,
            "owned_before": outcome.owned,
            "counts": outcome.counts,
            "sent": {
                "create": outcome.creates_sent(),
                "update": planned(UpdateKind::Update),
                "deactivate": planned(UpdateKind::Deactivate),
                "reactivate": planned(UpdateKind::Reactivate),
            },
            "matched": outcome.plan.matched.to_json(),
            "unchanged_by_seal": outcome.sealed,
            "mode": outcome.mode.name(),
            "mode_reason": outcome.mode_reason,
            "reconcile": outcome.reconcile.map(Reason::name),
            "drift": drift_json(&outcome.plan.drift),
            "held_deactivations": outcome.held.iter().map(|u| &u.label).collect::<Vec<_>>(),
            "leavers_holding": leavers_holding(outcome),
            "interrupted": outcome.interrupted,
            "failures": outcome.failures,
            "skipped": outcome.plan.skipped.iter().map(|s| json!({"user": s.label, "reason": s.reason})).collect::<Vec<_>>(),
            "references": {
                "unresolved": outcome.plan.unresolved,
                "second_pass_writes": outcome.second_pass,
                "entities_created": outcome.entities.iter().map(|(e, made)| match made {
                    Ok(id) => json!({"kind": e.kind, "name": e.name, "id": id}),
                    Err(error) => json!({"kind": e.kind, "name": e.name, "error": error}),
                }).collect::<Vec<_>>(),
            },
            "requests": {
                "graph": outcome.graph_requests,
                "graph_retries": outcome.graph_retries,
                "target": outcome.target_requests,
                "target_writes": outcome.target_writes,
                "target_retries": outcome.target_retries,
                "graph_throttled": outcome.graph_latency.throttled,
                "target_throttled": outcome.target_latency.throttled,
            },
            "seconds": {
                "read": outcome.read_time.as_secs_f64(),
                "write": outcome.write_time.as_secs_f64(),
                "total": self.seconds,
            },
        })
    }

    /// The CSV of changes: those the run made, else (it failed before writing) the header
    /// only, so that last night's rows are never taken for tonight's.
    pub fn changes_csv(&self) -> String {
        self.made()
            .map_or_else(|| format!("{CSV_HEADER}\n"), changes_csv)
    }
}

/// How many leavers who still hold something the webhook names.
const WEBHOOK_LEAVERS: usize = 5;
/// How many things the webhook names of what one leaver holds.
const WEBHOOK_ITEMS: usize = 3;

/// The deactivations of a run, made or held, each with whether it was held.
/// The drift a run found, as the report has it: the counts, and each user's fields.
fn drift_json(drift: &[Drift]) -> Json {
    let count = drift_count(drift);
    json!({"users": count.users, "fields": count.fields, "drifted": drift})
}

fn deactivations(outcome: &Outcome) -> impl Iterator<Item = (&Update, bool)> {
    let made = outcome
        .plan
        .of_kind(UpdateKind::Deactivate)
        .map(|u| (u, false));
    made.chain(outcome.held.iter().map(|u| (u, true)))
}

/// The webhook's lines on leavers who still hold something: the first few, then how many
/// more.
fn leaver_lines(outcome: &Outcome) -> Vec<String> {
    let holding: Vec<(&Update, bool)> = deactivations(outcome)
        .filter(|(u, _)| u.holdings.may_hold())
        .collect();
    let mut lines: Vec<String> = holding
        .iter()
        .take(WEBHOOK_LEAVERS)
        .filter_map(|(u, held)| {
            let holds = describe(&u.holdings, WEBHOOK_ITEMS)?;
            let state = if *held { "held" } else { "deactivated" };
            Some(format!("{} ({state}) {holds}", u.label))
        })
        .collect();
    if holding.len() > WEBHOOK_LEAVERS {
        lines.push(format!(
            "… and {} more leavers holding assets (see the report)",
            holding.len() - WEBHOOK_LEAVERS
        ));
    }
    lines
}

/// The report's `leavers_holding`: each deactivation, made or held, whose user still holds
/// something or whose holdings could not be read.
fn leavers_holding(outcome: &Outcome) -> Vec<Json> {
    deactivations(outcome)
        .filter(|(u, _)| u.holdings.may_hold())
        .map(|(u, held)| {
            json!({
                "user": u.label,
                "entra_id": u.entra_id,
                "target_id": u.user.id,
                "held": held,
                "holds": u.holdings.items(),
                "error": match &u.holdings {
                    Holdings::Unknown(why) => Some(why),
                    _ => None,
                },
            })
        })
        .collect()
}

/// The changes a sync made, one CSV row per field: `action,user,entra_id,target_id,field,
/// from,to,result,error`. `result` is `done`, `failed` or `held` (a deactivation not made:
/// over the limit, the run was stopped first, or the user still holds assets); values are
/// JSON, so that an absent value and an empty text differ. After a deactivation's row come
/// `holds` rows, one per thing the user still holds: `field` is its kind (`asset`,
/// `licence`, `accessory`), `from` the thing as JSON (`{"kind","id","name","tag"}`), and
/// `result` that of the deactivation; a user whose holdings could not be read has one
/// `holds` row with the reason in `error`.
pub fn changes_csv(outcome: &Outcome) -> String {
    let failed: HashMap<(&str, &str), &str> = outcome
        .failures
        .iter()
        .map(|f| ((f.action, f.user.as_str()), f.error.as_str()))
        .collect();
    let mut out = format!("{CSV_HEADER}\n");
    for create in &outcome.plan.creates {
        for (field, value) in create.record().iter() {
            let change = Change {
                action: "create",
                label: &create.label,
                entra_id: &create.entra_id,
                target_id: "",
                field,
                from: None,
                to: Some(value),
            };
            change.write(&failed, false, &mut out);
        }
    }
    let updates = outcome.plan.updates.iter().map(|u| (u, false));
    for (update, held) in updates.chain(outcome.held.iter().map(|u| (u, true))) {
        for c in &update.changes {
            let change = Change {
                action: update.kind.name(),
                label: &update.label,
                entra_id: &update.entra_id,
                target_id: &update.user.id,
                field: &c.target,
                from: c.old.as_ref(),
                to: c.new.as_ref(),
            };
            change.write(&failed, held, &mut out);
        }
        if update.kind == UpdateKind::Deactivate {
            holding_rows(update, &failed, held, &mut out);
        }
    }
    out
}

/// The `holds` rows of a deactivation: what its user still holds.
fn holding_rows(
    update: &Update,
    failed: &HashMap<(&str, &str), &str>,
    held: bool,
    out: &mut String,
) {
    let result = match failed.get(&(update.kind.name(), update.label.as_str())) {
        _ if held => "held",
        Some(_) => "failed",
        None => "done",
    };
    let row = |field: &str, from: &str, error: &str| {
        let cells = [
            "holds",
            &update.label,
            &update.entra_id,
            &update.user.id,
            field,
            from,
            "",
            result,
            error,
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        format!("{}\n", line.join(","))
    };
    match &update.holdings {
        Holdings::NotAsked => {}
        Holdings::Unknown(why) => out.push_str(&row("", "", why)),
        Holdings::Known(items) => {
            for item in items {
                let from = json!(item).to_string();
                out.push_str(&row(item.kind.name(), &from, ""));
            }
        }
    }
}

/// One field one write changed: a row of the CSV of changes.
struct Change<'a> {
    action: &'a str,
    label: &'a str,
    entra_id: &'a str,
    target_id: &'a str,
    field: &'a str,
    from: Option<&'a Json>,
    to: Option<&'a Json>,
}

impl Change<'_> {
    /// Appends the row to `out`; `failed` holds the failed writes' errors by action and
    /// user, `held` says the write was held back.
    fn write(&self, failed: &HashMap<(&str, &str), &str>, held: bool, out: &mut String) {
        let (result, error) = match failed.get(&(self.action, self.label)) {
            _ if held => ("held", ""),
            Some(error) => ("failed", *error),
            None => ("done", ""),
        };
        let value = |v: Option<&Json>| v.map(Json::to_string).unwrap_or_default();
        let cells = [
            self.action,
            self.label,
            self.entra_id,
            self.target_id,
            self.field,
            &value(self.from),
            &value(self.to),
            result,
            error,
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
}

/// A CSV cell: quoted when it holds a comma, a quote or a line break; a leading `=`, `+`,
/// `-` or `@` is prefixed with `'` so that a spreadsheet does not run it as a formula.
fn csv_cell(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NotifyOn;

    #[test]
    fn each_status_has_one_exit_code() {
        assert_eq!(RunStatus::Ok.exit_code(), 0);
        for status in [RunStatus::Partial, RunStatus::Stopped, RunStatus::Limited] {
            assert_eq!(status.exit_code(), 1, "{}", status.name());
        }
        for status in [RunStatus::Refused, RunStatus::Failed] {
            assert_eq!(status.exit_code(), 2, "{}", status.name());
        }
    }

    #[test]
    fn a_run_that_could_not_run_has_an_empty_csv_and_a_failed_row() {
        let report = RunReport::new(
            "2026-12-07T00:00:00Z".into(),
            std::time::Instant::now(),
            Err(RunError::Config),
        );
        assert_eq!(report.changes_csv(), format!("{CSV_HEADER}\n"));
        let row = report.history_row();
        assert_eq!((row.status, row.exit_code), ("failed", 2));
        assert_eq!(
            row.message.as_deref(),
            Some("the config has errors; nothing was run")
        );
        assert_eq!(report.status().notify_on(), NotifyOn::Failed);
    }

    fn failed(error: SyncError) -> RunReport {
        RunReport::new(
            "2026-12-07T00:00:00Z".into(),
            std::time::Instant::now(),
            Err(RunError::Sync(error)),
        )
    }

    fn sign_in(code: u64) -> SyncError {
        SyncError::Graph(GraphError::SignIn(crate::graph::error::SignInError {
            code: Some(code),
            error: "invalid_client".into(),
            message: "refused".into(),
            correlation_id: None,
            trace_id: None,
        }))
    }

    #[test]
    fn refused_credentials_are_told_apart_from_failures_that_may_pass() {
        let why = |error| failed(error).credentials_refused();
        assert_eq!(
            why(sign_in(7000222)).as_deref(),
            Some("sign-in refused (secret expired)")
        );
        assert_eq!(
            why(sign_in(7000215)).as_deref(),
            Some("sign-in refused (secret wrong)")
        );
        assert_eq!(
            why(sign_in(90002)).as_deref(),
            Some("sign-in refused (tenant not found)")
        );
        // Entra throttling the sign-in is no reason to wait longer.
        assert_eq!(why(sign_in(50196)), None);
        let unauthorized = TargetError::Unauthorized {
            target: "SCIM".into(),
            status: 401,
            detail: "no".into(),
        };
        assert_eq!(
            why(SyncError::Target(unauthorized)).as_deref(),
            Some("the target refused the credentials (HTTP 401)")
        );
        assert_eq!(
            why(SyncError::Target(TargetError::Unavailable(
                "HTTP 503".into()
            ))),
            None
        );
        let gave_up = GraphError::GaveUp {
            what: "GET /v1.0/users".into(),
            attempts: 3,
            last: "connection refused".into(),
            request_id: None,
        };
        assert_eq!(why(SyncError::Graph(gave_up)), None);
    }

    #[test]
    fn csv_cells_are_quoted_and_never_formulas() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=1+1"), "'=1+1");
    }
}
