//! `userload plan` and `userload run`: one sync, planned only or applied.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value as Json, json};

use super::{Outcome, color, load_config, load_mapping, peak_memory, print_error};
use crate::config::Config;
use crate::mapping::Mapping;
use crate::state::{self, State};
use crate::sync::engine::{self, StopSignal, SyncOptions};
use crate::sync::plan::{Plan, UpdateKind};
use crate::sync::safety::Verdict;
use crate::targets::{self, FieldChange, Target};

/// Arguments of `userload plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The config file (.ini or .toml).
    #[arg(long, short, env = "USERLOAD_CONFIG")]
    pub(super) config: PathBuf,
    /// Print the plan as one JSON object.
    #[arg(long)]
    pub(super) json: bool,
    /// Plan as if this many deactivations were allowed.
    #[arg(long, value_name = "N")]
    pub(super) allow_deactivations: Option<usize>,
    /// Show at most N users of each kind of change (the counts stay complete).
    #[arg(long, value_name = "N")]
    pub(super) show: Option<usize>,
}

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
    /// Allow up to N deactivations in this run, above `max_deactivations`.
    #[arg(long, value_name = "N")]
    pub(super) allow_deactivations: Option<usize>,
}

/// What both commands need, beside the config, before they talk to anyone.
struct Setup {
    mapping: Mapping,
    target: Arc<dyn Target>,
}

/// Compiles the config's mapping and sets up the target; must run inside a runtime. On
/// failure the problems are printed and the reason returned in one line.
fn setup(config: &Config) -> Result<Setup, String> {
    let Some(mapping) = load_mapping(config) else {
        return Err("the mapping has errors (shown in the log); nothing was run".to_owned());
    };
    match targets::connect(config, &mapping) {
        Ok(target) => Ok(Setup {
            mapping,
            target: Arc::from(target),
        }),
        Err(e) => {
            print_error(&e);
            Err(format!("the target could not be set up: {e}"))
        }
    }
}

/// `enable = false` in [source] (the Oomnitza connector's switch) turns plans and runs into
/// a no-op that says so and succeeds, so a scheduled job can be paused from the config alone.
fn source_disabled(config: &Config) -> bool {
    if config.source.enabled {
        return false;
    }
    eprintln!("the source is disabled (`enable = false` in [source]); nothing was read or written");
    tracing::info!("skipped: the source is disabled");
    true
}

/// `userload plan`: reads both sides and the state, writes nothing anywhere.
pub fn plan(args: &PlanArgs) -> Outcome {
    let Some(runtime) = super::runtime() else {
        return Outcome::Failed;
    };
    let _entered = runtime.enter();
    let Some(config) = load_config(&args.config) else {
        return Outcome::Failed;
    };
    if source_disabled(&config) {
        return Outcome::Success;
    }
    let Ok(setup) = setup(&config) else {
        return Outcome::Failed;
    };
    let owned = match State::peek_owned(&config.sync.state) {
        Ok(owned) => owned,
        Err(e) => {
            print_error(&e);
            return Outcome::Failed;
        }
    };
    let options = SyncOptions {
        allow_deactivations: args.allow_deactivations,
        sync_time: state::now(),
    };
    let result = runtime.block_on(engine::sync(
        &config,
        &setup.mapping,
        &setup.target,
        &owned,
        None,
        &options,
        &StopSignal::default(),
    ));
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(e) => {
            print_error(&e);
            return Outcome::Failed;
        }
    };
    if args.json {
        println!("{}", plan_json(&outcome.plan, &outcome.verdict));
    } else {
        print!("{}", plan_text(&outcome.plan, color(), args.show));
        eprintln!("{}", plan_counts(&outcome.plan));
        print_verdict(&outcome.verdict);
    }
    match outcome.verdict {
        Verdict::Refuse(_) => Outcome::Failed,
        Verdict::HoldDeactivations(_) => Outcome::Partial,
        Verdict::Proceed => Outcome::Success,
    }
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
    let _entered = runtime.enter();
    let started = state::now();
    let clock = std::time::Instant::now();
    tracing::info!(config = %args.config.display(), "run started");
    let Some(config) = load_config(&args.config) else {
        // Without a config there is no webhook to tell; the report and the CSV still say
        // that this run failed, so that last night's are never taken for tonight's.
        tracing::error!(config = %args.config.display(), "run failed: the config has errors");
        let ran = Ran {
            started,
            finished: state::now(),
            seconds: clock.elapsed().as_secs_f64(),
            result: Err(RunError::Setup(
                "the config has errors; nothing was run".to_owned(),
            )),
        };
        write_outputs(
            args,
            || report_json(&args.config, None, &ran),
            || format!("{CSV_HEADER}\n"),
        );
        return Outcome::Failed;
    };
    if source_disabled(&config) {
        return Outcome::Success;
    }
    // A mapping or target that cannot be set up is reported and notified like any failed run,
    // but not recorded in the state's history: the state is kept per target.
    let result = setup(&config).map_err(RunError::Setup).and_then(|setup| {
        let state = State::open(&config.sync.state, &setup.target.describe());
        match state {
            Ok(mut state) => runtime
                .block_on(sync_and_record(&config, &setup, &mut state, args, stop))
                .map_err(RunError::Sync),
            Err(e) => Err(RunError::Sync(e.into())),
        }
    });
    let ran = Ran {
        started,
        finished: state::now(),
        seconds: clock.elapsed().as_secs_f64(),
        result,
    };
    match &ran.result {
        Ok(outcome) => {
            print!("{}", summary(outcome));
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
        Err(RunError::Setup(_)) => {}
    }
    let code = ran.exit_code();
    tracing::info!(
        status = ran.status(),
        exit_code = code,
        seconds = ran.seconds,
        "run finished"
    );
    // A run that failed has the changes it made before it failed, if any, else the header
    // only, so that last night's rows are never taken for tonight's.
    let report = || report_json(&args.config, Some(&config), &ran);
    let failed_output = !write_outputs(args, report, || {
        ran.made()
            .map_or_else(|| format!("{CSV_HEADER}\n"), changes_csv)
    });
    let notice = notice(&ran);
    match runtime.block_on(crate::notify::send(&config.notify, &notice)) {
        Ok(_) => {}
        Err(e) => tracing::warn!("{e}"),
    }
    match code {
        _ if failed_output => Outcome::Failed,
        0 => Outcome::Success,
        1 => Outcome::Partial,
        _ => Outcome::Failed,
    }
}

/// Writes the `--report` and `--changes` files asked for (each made only then); false, with
/// the problem printed, if one could not be written.
fn write_outputs(
    args: &RunArgs,
    report: impl FnOnce() -> Json,
    csv: impl FnOnce() -> String,
) -> bool {
    let mut written = true;
    if let Some(path) = &args.report {
        let text = serde_json::to_string_pretty(&report()).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("error: cannot write the report {}: {e}", path.display());
            written = false;
        }
    }
    if let Some(path) = &args.changes
        && let Err(e) = std::fs::write(path, csv())
    {
        eprintln!("error: cannot write the changes {}: {e}", path.display());
        written = false;
    }
    written
}

/// Syncs with the state open, and records the run in its history.
async fn sync_and_record(
    config: &Config,
    setup: &Setup,
    state: &mut State,
    args: &RunArgs,
    stop: &StopSignal,
) -> Result<engine::Outcome, engine::SyncError> {
    let owned = state.owned()?;
    let run = state.start_run("run")?;
    let options = SyncOptions {
        allow_deactivations: args.allow_deactivations,
        sync_time: state::now(),
    };
    let result = engine::sync(
        config,
        &setup.mapping,
        &setup.target,
        &owned,
        Some(state),
        &options,
        stop,
    )
    .await;
    let (status, code, message) = match &result {
        Ok(outcome) => (
            outcome.status(),
            outcome.exit_code(),
            verdict_message(&outcome.verdict).map(str::to_owned),
        ),
        Err(e) => ("failed", 2, Some(e.to_string())),
    };
    let counts = match &result {
        Ok(outcome) => outcome.counts.clone(),
        Err(e) => e.made().map(|o| o.counts.clone()).unwrap_or_default(),
    };
    state.finish_run(run, status, code, &counts, message.as_deref())?;
    result
}

/// A run that was made, or could not be.
struct Ran {
    started: String,
    finished: String,
    seconds: f64,
    result: Result<engine::Outcome, RunError>,
}

/// Why a run could not run.
#[derive(Debug, thiserror::Error)]
enum RunError {
    /// The mapping or the target could not be set up.
    #[error("{0}")]
    Setup(String),
    /// The sync failed ([`engine::SyncError`] says what it may have written).
    #[error(transparent)]
    Sync(engine::SyncError),
}

impl Ran {
    /// What the run wrote: all of it, or what a failed run made anyway.
    fn made(&self) -> Option<&engine::Outcome> {
        match &self.result {
            Ok(outcome) => Some(outcome),
            Err(RunError::Sync(e)) => e.made(),
            Err(RunError::Setup(_)) => None,
        }
    }

    fn exit_code(&self) -> i32 {
        self.result.as_ref().map_or(2, engine::Outcome::exit_code)
    }

    fn status(&self) -> &'static str {
        self.result
            .as_ref()
            .map_or("failed", engine::Outcome::status)
    }
}

/// The first failures, and how many more the report holds.
fn print_failures(failures: &[engine::Failure]) {
    for failure in failures.iter().take(20) {
        eprintln!(
            "failed: {} {}: {}",
            failure.action, failure.user, failure.error
        );
    }
    if failures.len() > 20 {
        eprintln!("… and {} more failures (see --report)", failures.len() - 20);
    }
}

/// What the webhook is told about a run.
fn notice(ran: &Ran) -> crate::notify::Notice {
    use crate::config::NotifyOn;
    let outcome = match &ran.result {
        Err(e) => {
            return crate::notify::Notice {
                status: NotifyOn::Failed,
                headline: "the run failed".to_owned(),
                details: vec![e.to_string()],
            };
        }
        Ok(outcome) => outcome,
    };
    let c = &outcome.counts;
    let mut details = vec![format!(
        "created {}, updated {}, deactivated {}, reactivated {}, unchanged {}, skipped {}, failed {}",
        c.created, c.updated, c.deactivated, c.reactivated, c.unchanged, c.skipped, c.failed
    )];
    if let Some(message) = verdict_message(&outcome.verdict) {
        details.push(message.to_owned());
    }
    details.extend(
        outcome
            .failures
            .iter()
            .take(5)
            .map(|f| format!("{} {}: {}", f.action, f.user, f.error)),
    );
    let (status, headline) = match outcome.status() {
        "refused" => (NotifyOn::Failed, "the run refused to write".to_owned()),
        "limited" => (
            NotifyOn::Limited,
            format!(
                "{} deactivations held back by max_deactivations",
                outcome.held.len()
            ),
        ),
        "ok" => (NotifyOn::Ok, "the run finished".to_owned()),
        "stopped" => (
            NotifyOn::Partial,
            "the run was stopped before all writes".to_owned(),
        ),
        _ => (
            NotifyOn::Partial,
            format!("{} writes failed", outcome.failures.len()),
        ),
    };
    crate::notify::Notice {
        status,
        headline,
        details,
    }
}

fn verdict_message(verdict: &Verdict) -> Option<&str> {
    match verdict {
        Verdict::Proceed => None,
        Verdict::HoldDeactivations(m) | Verdict::Refuse(m) => Some(m),
    }
}

fn print_verdict(verdict: &Verdict) {
    match verdict {
        Verdict::Proceed => {}
        Verdict::HoldDeactivations(m) => eprintln!("warning: {m}"),
        Verdict::Refuse(m) => eprintln!("error: {m}"),
    }
}

/// A value as the plan shows it: text quoted, absent as `(none)`.
fn shown(value: Option<&Json>) -> String {
    match value {
        None | Some(Json::Null) => "(none)".to_owned(),
        Some(v) => crate::diag::shorten(&v.to_string(), 60),
    }
}

fn change_text(changes: &[FieldChange]) -> String {
    changes
        .iter()
        .map(|c| {
            format!(
                "{} {} → {}",
                c.target,
                shown(c.old.as_ref()),
                shown(c.new.as_ref())
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The plan as a diff, one user per line, each group sorted by user; with `show`, at most
/// that many users per group, and how many more.
pub fn plan_text(plan: &Plan, color: bool, show: Option<usize>) -> String {
    let paint = |code: &str, text: String| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text
        }
    };
    let mut out = String::new();
    let show = show.unwrap_or(usize::MAX);
    let more = |out: &mut String, total: usize| {
        if total > show {
            let _ = writeln!(out, "  … and {} more", total - show);
        }
    };
    let mut creates: Vec<&str> = plan.creates.iter().map(|c| c.label.as_str()).collect();
    creates.sort_unstable();
    for label in creates.iter().take(show) {
        let _ = writeln!(out, "{}", paint("32", format!("+ create {label}")));
    }
    more(&mut out, creates.len());
    for (kind, sign, word, code) in [
        (UpdateKind::Update, "~", "update", "33"),
        (UpdateKind::Reactivate, "↑", "reactivate", "36"),
        (UpdateKind::Deactivate, "-", "deactivate", "31"),
    ] {
        let mut updates: Vec<_> = plan.of_kind(kind).collect();
        updates.sort_by(|a, b| a.label.cmp(&b.label));
        for update in updates.iter().take(show) {
            let line = format!(
                "{sign} {word} {}: {}",
                update.label,
                change_text(&update.changes)
            );
            let _ = writeln!(out, "{}", paint(code, line));
        }
        more(&mut out, updates.len());
    }
    let mut skipped: Vec<_> = plan.skipped.iter().collect();
    skipped.sort_by(|a, b| a.label.cmp(&b.label));
    for skip in skipped.iter().take(show) {
        let _ = writeln!(out, "! skip {}: {}", skip.label, skip.reason);
    }
    more(&mut out, skipped.len());
    for note in &plan.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

fn plan_counts(plan: &Plan) -> String {
    let mut text = format!(
        "plan: {} to create, {} to update, {} to deactivate, {} to reactivate, {} unchanged, {} skipped",
        plan.creates.len(),
        plan.count(UpdateKind::Update),
        plan.count(UpdateKind::Deactivate),
        plan.count(UpdateKind::Reactivate),
        plan.unchanged,
        plan.skipped.len()
    );
    if plan.kept_by_config > 0 {
        let _ = write!(
            text,
            "; {} not deactivated (deactivate = false or create_only)",
            plan.kept_by_config
        );
    }
    if plan.not_owned > 0 {
        let _ = write!(
            text,
            "; {} target users not managed by userload, left alone",
            plan.not_owned
        );
    }
    text
}

fn plan_json(plan: &Plan, verdict: &Verdict) -> Json {
    let changes = |changes: &[FieldChange]| -> Vec<Json> {
        changes
            .iter()
            .map(|c| json!({"field": c.target, "from": c.old, "to": c.new}))
            .collect()
    };
    let updates = |kind| -> Vec<Json> {
        plan.of_kind(kind)
            .map(|u| json!({"user": u.label, "id": u.user.id, "changes": changes(&u.changes)}))
            .collect()
    };
    json!({
        "create": plan.creates.iter().map(|c| json!({"user": c.label, "record": c.record().to_json()})).collect::<Vec<_>>(),
        "update": updates(UpdateKind::Update),
        "deactivate": updates(UpdateKind::Deactivate),
        "reactivate": updates(UpdateKind::Reactivate),
        "skip": plan.skipped.iter().map(|s| json!({"user": s.label, "reason": s.reason})).collect::<Vec<_>>(),
        "unchanged": plan.unchanged,
        "not_owned": plan.not_owned,
        "notes": plan.notes,
        "verdict": match verdict {
            Verdict::Proceed => json!("proceed"),
            Verdict::HoldDeactivations(m) => json!({"hold_deactivations": m}),
            Verdict::Refuse(m) => json!({"refuse": m}),
        },
    })
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
    let _ = writeln!(
        out,
        "{} Entra users read, {} target users listed, {} owned before this run",
        outcome.source_users, outcome.target_users, outcome.owned
    );
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

/// The JSON report of a run: what it did, what failed and why, how long it took and how
/// many requests it made. A run that could not run still gets one, with the error and, when
/// Graph answered, the `request-id` Microsoft support asks for. `path` is the config file;
/// without `config` (it could not be read) the report names no target.
fn report_json(path: &std::path::Path, config: Option<&Config>, ran: &Ran) -> Json {
    let mut report = json!({
        "userload": env!("CARGO_PKG_VERSION"),
        "config": path.display().to_string(),
        "target": config.map(|c| c.target.url.as_str()),
        "started": ran.started,
        "finished": ran.finished,
        "status": ran.status(),
        "exit_code": ran.exit_code(),
        "peak_memory_mb": peak_memory(),
    });
    let outcome = match &ran.result {
        Ok(outcome) => outcome,
        Err(e) => {
            let request_id = match e {
                RunError::Sync(
                    engine::SyncError::Graph(g)
                    | engine::SyncError::GraphAfterCreates { error: g, .. },
                ) => g.request_id(),
                _ => None,
            };
            report["message"] = json!(e.to_string());
            report["error"] = json!({"message": e.to_string(), "graph_request_id": request_id});
            report["seconds"] = json!({"total": ran.seconds});
            if let Some(made) = ran.made() {
                report["counts"] = json!(made.counts);
                report["failures"] = json!(made.failures);
            }
            return report;
        }
    };
    let planned = |kind| outcome.plan.of_kind(kind).count();
    let more = json!({
        "message": verdict_message(&outcome.verdict),
        "source_users": outcome.source_users,
        "target_users": outcome.target_users,
        "owned_before": outcome.owned,
        "counts": outcome.counts,
        "sent": {
            "create": outcome.plan.creates.len(),
            "update": planned(UpdateKind::Update),
            "deactivate": planned(UpdateKind::Deactivate),
            "reactivate": planned(UpdateKind::Reactivate),
        },
        "held_deactivations": outcome.held.iter().map(|u| &u.label).collect::<Vec<_>>(),
        "interrupted": outcome.interrupted,
        "failures": outcome.failures,
        "skipped": outcome.plan.skipped.iter().map(|s| json!({"user": s.label, "reason": s.reason})).collect::<Vec<_>>(),
        "requests": {
            "graph": outcome.graph_requests,
            "graph_retries": outcome.graph_retries,
            "target": outcome.target_requests,
            "target_writes": outcome.target_writes,
            "target_retries": outcome.target_retries,
        },
        "seconds": {
            "read": outcome.read_time.as_secs_f64(),
            "write": outcome.write_time.as_secs_f64(),
            "total": ran.seconds,
        },
    });
    if let (Json::Object(report), Json::Object(more)) = (&mut report, more) {
        report.extend(more);
    }
    report
}

/// The columns of the CSV of changes.
const CSV_HEADER: &str = "action,user,entra_id,target_id,field,from,to,result,error";

/// The changes a run made, one CSV row per field: `action,user,entra_id,target_id,field,
/// from,to,result,error`. `result` is `done`, `failed` or `held` (a deactivation not made:
/// over the limit, or the run was stopped first); values are JSON, so that an absent value and an empty text differ.
pub fn changes_csv(outcome: &engine::Outcome) -> String {
    let failed: std::collections::HashMap<(&str, &str), &str> = outcome
        .failures
        .iter()
        .map(|f| ((f.action, f.user.as_str()), f.error.as_str()))
        .collect();
    let mut out = format!("{CSV_HEADER}\n");
    let mut row = |action: &str,
                   label: &str,
                   entra: &str,
                   id: &str,
                   field: &str,
                   from: Option<&Json>,
                   to: Option<&Json>,
                   held: bool| {
        let (result, error) = match failed.get(&(action, label)) {
            _ if held => ("held", ""),
            Some(error) => ("failed", *error),
            None => ("done", ""),
        };
        let value = |v: Option<&Json>| v.map(Json::to_string).unwrap_or_default();
        let cells = [
            action,
            label,
            entra,
            id,
            field,
            &value(from),
            &value(to),
            result,
            error,
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    };
    for create in &outcome.plan.creates {
        for (field, value) in create.record().iter() {
            row(
                "create",
                &create.label,
                &create.entra_id,
                "",
                field,
                None,
                Some(value),
                false,
            );
        }
    }
    let updates = outcome.plan.updates.iter().map(|u| (u, false));
    for (update, held) in updates.chain(outcome.held.iter().map(|u| (u, true))) {
        let action = update.kind.name();
        for c in &update.changes {
            row(
                action,
                &update.label,
                &update.entra_id,
                &update.user.id,
                &c.target,
                c.old.as_ref(),
                c.new.as_ref(),
                held,
            );
        }
    }
    out
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
