//! `userload run`: one sync applied and remembered, then told: the summary printed, the run
//! recorded in the state's history, the `--report` and `--changes` files written and the
//! webhook notified, all from the one [`RunReport`].

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use serde_json::Value as Json;

use super::show::print_verdict;
use super::sync::{Setup, setup, source_disabled};
use super::watch::{ping, watched};
use super::{Outcome, load_config, peak_memory, print_error};
use crate::config::Config;
use crate::metrics::serve::Shared;
use crate::notify::{Notice, Ping};
use crate::state::{self, Reconciled, State};
use crate::sync::changes::ReadMode;
use crate::sync::engine::{self, Failure, StopSignal, SyncOptions};
use crate::sync::plan::drift_count;
use crate::sync::report::{RunError, RunReport};

/// Arguments of `userload run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The config file (.ini or .toml).
    #[arg(long, short, env = "USERLOAD_CONFIG")]
    pub(super) config: PathBuf,
    /// Also write a JSON report of the run to this file.
    #[arg(long, value_name = "FILE")]
    pub(super) report: Option<PathBuf>,
    /// Also write every change made (one row per field) to this CSV file, for auditors.
    #[arg(long, value_name = "FILE")]
    pub(super) changes: Option<PathBuf>,
    /// Also write the run as one self-contained HTML page to this file (replaced whole).
    #[arg(long, value_name = "FILE")]
    pub(super) html: Option<PathBuf>,
    /// Allow up to N deactivations in this run, above `max_deactivations`.
    #[arg(long, value_name = "N")]
    pub(super) allow_deactivations: Option<usize>,
    /// Lift, for this run, the bound on how far the Entra and target listings may grow
    /// past the last complete run (three times as many users, and at least 1,000 more).
    #[arg(long)]
    pub(super) allow_growth: bool,
    /// Make this run a full reconciliation now, whenever `full_every` would next be due:
    /// compare every user with the target, and repair values changed there by hand (drift).
    #[arg(long)]
    pub(super) full: bool,
    /// Apply just this user (object id, user principal name, mail or employee id): read it
    /// from Graph, bring its target user in line field by field (or deactivate it when out
    /// of scope), under the same guards; every other user is left as it is.
    #[arg(long, value_name = "USER", conflicts_with = "full")]
    pub(super) user: Option<String>,
    /// Also write the run's metrics to this file, for node_exporter's textfile collector
    /// (replaced whole, never seen half-written).
    #[arg(long, value_name = "FILE")]
    pub(super) metrics_file: Option<PathBuf>,
}

/// `userload run`: applies the plan and remembers what it did.
pub fn run(args: &RunArgs) -> Outcome {
    let Some(runtime) = super::runtime() else {
        return Outcome::Failed;
    };
    let stop = StopSignal::default();
    {
        let _entered = runtime.enter();
        stop.on_signals();
    }
    run_once(&runtime, args, &stop)
}

/// One run on `runtime`, stopped early by `stop`: the state is opened and locked, the run
/// recorded in its history, the summary printed, the report and the changes written and the
/// webhook told, as the config and `args` ask.
pub(super) fn run_once(
    runtime: &tokio::runtime::Runtime,
    args: &RunArgs,
    stop: &StopSignal,
) -> Outcome {
    run_watched(runtime, args, stop, None)
}

/// [`run_once`], whose end is also noted on the daemon's `board` when there is one.
pub(super) fn run_watched(
    runtime: &tokio::runtime::Runtime,
    args: &RunArgs,
    stop: &StopSignal,
    board: Option<&Shared>,
) -> Outcome {
    let _entered = runtime.enter();
    let started = state::now();
    let clock = Instant::now();
    tracing::info!(config = %args.config.display(), "run started");
    let Some(config) = load_config(&args.config) else {
        // Without a config there is no webhook to tell; the report and the CSV still say
        // that this run failed, so that last night's are never taken for tonight's.
        tracing::error!(config = %args.config.display(), "run failed: the config has errors");
        let report = RunReport::new(started, clock, Err(RunError::Config));
        watched(runtime, None, args, board, &report);
        write_outputs(
            args,
            || report.to_json(&args.config, None, peak_memory()),
            || report.changes_csv(),
        );
        super::html::write_run(args.html.as_deref(), &report, &args.config, None);
        return Outcome::Failed;
    };
    if source_disabled(&config) {
        return Outcome::Success;
    }
    ping(runtime, &config, Ping::Start, "the run started");
    // A mapping or target that cannot be set up is reported and notified like any failed run,
    // but not recorded in the state's history: the state is kept per target.
    let report = match setup(&config) {
        Err(e) => RunReport::new(started, clock, Err(e)),
        Ok(setup) => match State::open(&config.sync.state, &setup.target.describe()) {
            Ok(mut state) => runtime.block_on(sync_and_record(
                &config, &setup, &mut state, args, stop, started, clock,
            )),
            Err(e) => RunReport::new(started, clock, Err(RunError::Sync(e.into()))),
        },
    };
    print_report(&report);
    let code = report.exit_code();
    tracing::info!(
        status = report.status().name(),
        exit_code = code,
        seconds = report.seconds,
        "run finished"
    );
    let target = Some(config.target.url.as_str());
    let failed_output = !write_outputs(
        args,
        || report.to_json(&args.config, target, peak_memory()),
        || report.changes_csv(),
    );
    let failed_output =
        !super::html::write_run(args.html.as_deref(), &report, &args.config, target)
            || failed_output;
    let failed_output = !watched(runtime, Some(&config), args, board, &report) || failed_output;
    let notice = Notice {
        status: report.status().notify_on(),
        headline: report.headline(),
        details: report.details(),
    };
    if let Err(e) = runtime.block_on(crate::notify::send(&config.notify, &notice)) {
        tracing::warn!("{e}");
    }
    if failed_output {
        Outcome::Failed
    } else {
        Outcome::of_exit_code(code.into())
    }
}

/// Prints how the run went: the summary table and the failures, or why it failed.
fn print_report(report: &RunReport) {
    match &report.result {
        Ok(outcome) => {
            out!("{}", summary(outcome));
            print_verdict(&outcome.verdict);
            print_failures(&outcome.failures);
        }
        Err(RunError::Sync(e)) => {
            if let Some(made) = e.made() {
                print_failures(&made.failures);
            }
            print_error(e);
        }
        // Its problems are printed already.
        Err(_) => {}
    }
}

/// Writes the `--report` and `--changes` files asked for (each made only then), scrubbed of
/// secrets; false, with the problem printed, if one could not be written.
fn write_outputs(
    args: &RunArgs,
    report: impl FnOnce() -> Json,
    csv: impl FnOnce() -> String,
) -> bool {
    let mut written = true;
    if let Some(path) = &args.report {
        let text = serde_json::to_string_pretty(&report()).unwrap_or_default();
        if let Err(e) = std::fs::write(path, crate::secrets::scrub(&text).into_owned() + "\n") {
            errln!("error: cannot write the report {}: {e}", path.display());
            written = false;
        }
    }
    if let Some(path) = &args.changes
        && let Err(e) = std::fs::write(path, crate::secrets::scrub(&csv()).as_bytes())
    {
        errln!("error: cannot write the changes {}: {e}", path.display());
        written = false;
    }
    written
}

/// Syncs with the state open, and records the run in its history. The run started at
/// `started`, `clock` measuring it.
async fn sync_and_record(
    config: &Config,
    setup: &Setup,
    state: &mut State,
    args: &RunArgs,
    stop: &StopSignal,
    started: String,
    clock: Instant,
) -> RunReport {
    let begun = state.owned().and_then(|owned| {
        let last_read = if args.allow_growth {
            None
        } else {
            state.last_read()?
        };
        let last_full = state.last_reconciled()?.map(|r| r.at);
        let links = state.delta_links()?;
        Ok((owned, last_read, last_full, links, state.start_run("run")?))
    });
    let (owned, last_read, last_full, links, run) = match begun {
        Ok(begun) => begun,
        Err(e) => return RunReport::new(started, clock, Err(RunError::Sync(e.into()))),
    };
    let mut options = SyncOptions {
        links,
        // Only the CSV of changes and the HTML page list each create with its record.
        count_creates_only: args.changes.is_none() && args.html.is_none(),
        ..SyncOptions::starting_now(
            args.allow_deactivations,
            (
                args.full,
                (config.sync.full_every, config.sync.full_at),
                last_full.as_deref(),
            ),
            last_read,
        )
    };
    if let Some(who) = &args.user {
        // One user: no reconciliation of everyone, whenever one is due.
        options.reconcile = None;
        match super::explain::one_user(config, &setup.mapping, who).await {
            Ok((changes, line)) => {
                errln!("{line}");
                options.users = Some(changes);
            }
            Err(e) => {
                let error = match e {
                    super::explain::ExplainError::Graph(e) => e.into(),
                    other => engine::SyncError::User(other.to_string()),
                };
                let report = RunReport::new(started, clock, Err(RunError::Sync(error)));
                if let Err(e) = state.finish_run(run, &report.history_row()) {
                    tracing::warn!("{e}");
                }
                return report;
            }
        }
    }
    let result = engine::sync(
        config,
        &setup.mapping,
        &setup.target,
        &owned,
        Some(&mut *state),
        &options,
        stop,
    )
    .await;
    let remembered = match &result {
        Ok(outcome) if outcome.reconcile.is_some() && !outcome.interrupted => {
            let drift = drift_count(&outcome.plan.drift);
            state.save_reconciled(&Reconciled {
                at: options.sync_time.clone(),
                drift_users: drift.users,
                drift_fields: drift.fields,
            })
        }
        _ => Ok(()),
    };
    let mut report = RunReport::new(started, clock, result.map_err(RunError::Sync));
    if let Err(e) = remembered {
        report.result = Err(RunError::Sync(e.into()));
    } else if let Err(e) = state.finish_run(run, &report.history_row()) {
        report.result = Err(RunError::Sync(e.into()));
    }
    report
}

/// The first failures, and how many more the report holds.
fn print_failures(failures: &[Failure]) {
    for failure in failures.iter().take(20) {
        errln!(
            "failed: {} {}: {}",
            failure.action,
            failure.user,
            failure.error
        );
    }
    if failures.len() > 20 {
        errln!("… and {} more failures (see --report)", failures.len() - 20);
    }
}

/// The summary table of a run.
fn summary(outcome: &engine::Outcome) -> String {
    let failed = |action: &str| {
        outcome
            .failures
            .iter()
            .filter(|f| f.action == action)
            .count()
    };
    let done = |action: &str| match action {
        "create" => outcome.counts.created,
        "update" => outcome.counts.updated,
        "deactivate" => outcome.counts.deactivated,
        _ => outcome.counts.reactivated,
    };
    let mut out = String::new();
    let _ = match outcome.mode {
        ReadMode::Delta | ReadMode::Users => writeln!(
            out,
            "{} run: {} changed users read, {} target users looked up, {} owned before this run",
            outcome.mode.name(),
            outcome.source_users,
            outcome.target_users,
            outcome.owned
        ),
        ReadMode::Full | ReadMode::Reconcile => writeln!(
            out,
            "{} Entra users read, {} target users listed, {} owned before this run",
            outcome.source_users, outcome.target_users, outcome.owned
        ),
    };
    if let (ReadMode::Full, Some(why)) = (outcome.mode, &outcome.mode_reason) {
        let _ = writeln!(out, "read in full: {why}");
    }
    let _ = writeln!(out, "{:<12} {:>8} {:>8}", "", "done", "failed");
    for action in ["create", "update", "deactivate", "reactivate"] {
        let _ = writeln!(
            out,
            "{action:<12} {:>8} {:>8}",
            done(action),
            failed(action)
        );
    }
    let _ = writeln!(out, "{:<12} {:>8}", "unchanged", outcome.counts.unchanged);
    let _ = writeln!(out, "{:<12} {:>8}", "skipped", outcome.counts.skipped);
    if let Some(reason) = outcome.reconcile {
        let drift = drift_count(&outcome.plan.drift);
        let _ = writeln!(
            out,
            "full reconciliation ({}): drift in {} users ({} fields)",
            reason.name(),
            drift.users,
            drift.fields
        );
    }
    if !outcome.plan.unresolved.is_empty() || outcome.second_pass > 0 {
        let _ = writeln!(
            out,
            "references: {} left empty (see the report), {} set by a second pass after the \
             creates",
            outcome.plan.unresolved.len(),
            outcome.second_pass
        );
    }
    if !outcome.entities.is_empty() {
        let failed = outcome.entities.iter().filter(|(_, r)| r.is_err()).count();
        let _ = writeln!(
            out,
            "entities: {} created, {failed} failed",
            outcome.entities.len() - failed
        );
    }
    let _ = writeln!(out, "matched: {}", outcome.plan.matched);
    let throttled = [
        ("Graph", outcome.graph_latency.throttled),
        ("target", outcome.target_latency.throttled),
    ];
    if throttled.iter().any(|(_, n)| *n > 0) {
        let sides: Vec<String> = throttled.iter().map(|(s, n)| format!("{s} {n}")).collect();
        let _ = writeln!(
            out,
            "answered 429 (too many requests): {}",
            sides.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "requests: Graph {}, target {} ({} writes); read {:.1} s, write {:.1} s; peak memory {}{}",
        outcome.graph_requests,
        outcome.target_requests,
        outcome.target_writes,
        outcome.read_time.as_secs_f64(),
        outcome.write_time.as_secs_f64(),
        peak_memory().map_or("unknown".to_owned(), |mb| format!("{mb} MB")),
        if outcome.interrupted {
            "; stopped before all writes were made"
        } else {
            ""
        }
    );
    out
}
