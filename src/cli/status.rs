//! `userload status`: the latest runs from the state file's history, for an admin or a
//! monitoring check.
//!
//! It also says when the last full reconciliation ran and the drift it found.
//!
//! It reads the state file without waiting for its lock, so it works while a run (or the
//! daemon) is going. The exit code is that of the latest run that is not going now (0 ok;
//! 1 partial, limited or stopped; 2 failed, refused or killed, or no run yet), so a
//! monitoring system can call it as is.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::json;

use super::{Outcome, load_config, print_error};
use crate::state::{Reconciled, RunRecord, State};

/// Arguments of `userload status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The config file (.ini or .toml); its `state` file is read.
    #[arg(long, short, env = "USERLOAD_CONFIG")]
    config: PathBuf,
    /// How many runs to show.
    #[arg(long, default_value_t = 10, value_name = "N")]
    runs: usize,
    /// Print the runs as JSON.
    #[arg(long)]
    json: bool,
    /// Also write the runs as charts on one self-contained HTML page to this file.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// With --html: the last run's JSON report (as `run --report` wrote it), shown on the
    /// page with its requests and failures.
    #[arg(long, value_name = "FILE", requires = "html")]
    report: Option<PathBuf>,
}

/// `userload status`.
pub fn run(args: &StatusArgs) -> Outcome {
    let Some(config) = load_config(&args.config) else {
        return Outcome::Failed;
    };
    let path = &config.sync.state;
    let peeked = State::peek_history(path, args.runs.max(1))
        .and_then(|(runs, owned)| Ok((runs, owned, State::peek_reconciled(path)?)));
    let (runs, owned, reconciled) = match peeked {
        Ok(history) => history,
        Err(e) => {
            print_error(&e);
            return Outcome::Failed;
        }
    };
    let busy = State::in_use(path);
    if args.json {
        let runs: Vec<_> = runs
            .iter()
            .enumerate()
            .map(|(i, r)| run_json(r, busy && i == 0))
            .collect();
        let status = json!({
            "state": path.display().to_string(),
            "running": busy,
            "owned": owned,
            "last_full_reconciliation": reconciled.as_ref().map(|r| json!({
                "at": r.at,
                "drift": {"users": r.drift_users, "fields": r.drift_fields},
            })),
            "runs": runs,
        });
        outln!("{status:#}");
    } else {
        out!("{}", table(path, &runs, owned, busy));
        outln!("{}", reconciled_line(reconciled.as_ref()));
    }
    if !super::html::write_status(
        args.html.as_deref(),
        args.report.as_deref(),
        path,
        owned,
        &runs,
    ) {
        return Outcome::Failed;
    }
    // The run going now has no code yet; a killed one counts as failed.
    let skip = usize::from(busy && runs.first().is_some_and(|r| r.finished.is_none()));
    runs.get(skip)
        .and_then(|r| r.exit_code)
        .map_or(Outcome::Failed, Outcome::of_exit_code)
}

/// A run's status word: a run that never finished is `running` if it is the latest and the
/// lock is held (`busy`), else `killed`.
fn status_of(run: &RunRecord, busy: bool) -> &str {
    match (&run.finished, busy) {
        (Some(_), _) => &run.status,
        (None, true) => "running",
        (None, false) => "killed",
    }
}

fn run_json(run: &RunRecord, busy: bool) -> serde_json::Value {
    let c = &run.counts;
    json!({
        "id": run.id,
        "started": run.started,
        "finished": run.finished,
        "status": status_of(run, busy),
        "exit_code": run.exit_code,
        "counts": c,
        "read": run.read,
        "requests": run.requests,
        "message": run.message,
    })
}

/// When the last full reconciliation ran and the drift it found, in one line.
fn reconciled_line(reconciled: Option<&Reconciled>) -> String {
    match reconciled {
        None => "last full reconciliation: none yet".to_owned(),
        Some(r) => format!(
            "last full reconciliation: {}, drift in {} users ({} fields)",
            r.at, r.drift_users, r.drift_fields
        ),
    }
}

/// Seconds between two RFC 3339 times, when both parse.
fn seconds(started: &str, finished: Option<&str>) -> Option<i64> {
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    Some((parse(finished?)? - parse(started)?).num_seconds())
}

fn table(path: &std::path::Path, runs: &[RunRecord], owned: usize, busy: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {owned} target users owned{}",
        path.display(),
        if busy { "; a run is going now" } else { "" }
    );
    if runs.is_empty() {
        let _ = writeln!(out, "no runs yet");
        return out;
    }
    let _ = writeln!(
        out,
        "{:>5}  {:<20}  {:>6}  {:<8}  {:>7} {:>7} {:>7} {:>7} {:>9} {:>7} {:>6}",
        "run",
        "started",
        "secs",
        "status",
        "created",
        "updated",
        "deact",
        "react",
        "unchanged",
        "skipped",
        "failed"
    );
    for (i, run) in runs.iter().enumerate() {
        let c = &run.counts;
        let took = seconds(&run.started, run.finished.as_deref())
            .map_or("-".to_owned(), |s| s.to_string());
        let _ = writeln!(
            out,
            "{:>5}  {:<20}  {:>6}  {:<8}  {:>7} {:>7} {:>7} {:>7} {:>9} {:>7} {:>6}",
            run.id,
            run.started,
            took,
            status_of(run, busy && i == 0),
            c.created,
            c.updated,
            c.deactivated,
            c.reactivated,
            c.unchanged,
            c.skipped,
            c.failed
        );
        if let Some(message) = &run.message {
            let _ = writeln!(out, "{:>5}  {}", "", crate::diag::shorten(message, 200));
        }
    }
    out
}
