//! `userload plan` and `userload run`: one sync, planned only or applied.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value as Json, json};

use super::{Outcome, color, load_config, load_mapping, peak_memory, print_error};
use crate::config::Config;
use crate::mapping::Mapping;
use crate::state::{self, State};
use crate::sync::engine::{self, StopSignal, SyncOptions};
use crate::sync::plan::{Plan, UpdateKind};
use crate::sync::safety::Verdict;
use crate::target::{self, FieldChange, Target};

/// Arguments of `userload plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The config file (.ini or .toml).
    #[arg(long, short, env = "USERLOAD_CONFIG")]
    config: PathBuf,
    /// Print the plan as one JSON object.
    #[arg(long)]
    json: bool,
    /// Plan as if this many deactivations were allowed.
    #[arg(long, value_name = "N")]
    allow_deactivations: Option<usize>,
}

/// Arguments of `userload run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The config file (.ini or .toml).
    #[arg(long, short, env = "USERLOAD_CONFIG")]
    config: PathBuf,
    /// Also write a JSON report of the run to this file.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Allow up to N deactivations in this run, above `max_deactivations`.
    #[arg(long, value_name = "N")]
    allow_deactivations: Option<usize>,
}

/// What both commands need before they talk to anyone.
struct Setup {
    config: Config,
    mapping: Mapping,
    target: Arc<dyn Target>,
    runtime: tokio::runtime::Runtime,
}

fn setup(path: &Path) -> Option<Setup> {
    let config = load_config(path)?;
    let mapping = load_mapping(&config)?;
    let runtime = super::runtime()?;
    let target = match target::connect(&config, &mapping) {
        Ok(target) => Arc::from(target),
        Err(e) => {
            print_error(&e);
            return None;
        }
    };
    Some(Setup {
        config,
        mapping,
        target,
        runtime,
    })
}

/// `userload plan`: reads both sides and the state, writes nothing anywhere.
pub fn plan(args: &PlanArgs) -> Outcome {
    let Some(setup) = setup(&args.config) else {
        return Outcome::Failed;
    };
    let owned = match State::peek_owned(&setup.config.sync.state) {
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
    let result = setup.runtime.block_on(engine::sync(
        &setup.config,
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
        print!("{}", plan_text(&outcome.plan, color()));
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
    let Some(setup) = setup(&args.config) else {
        return Outcome::Failed;
    };
    let mut state = match State::open(&setup.config.sync.state, &setup.target.describe()) {
        Ok(state) => state,
        Err(e) => {
            print_error(&e);
            return Outcome::Failed;
        }
    };
    let result = setup.runtime.block_on(async {
        let owned = state.owned()?;
        let run = state.start_run("run")?;
        let stop = StopSignal::default();
        stop.on_signals();
        let options = SyncOptions {
            allow_deactivations: args.allow_deactivations,
            sync_time: state::now(),
        };
        let result = engine::sync(
            &setup.config,
            &setup.mapping,
            &setup.target,
            &owned,
            Some(&mut state),
            &options,
            &stop,
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
        let counts = result
            .as_ref()
            .map(|o| o.counts.clone())
            .unwrap_or_default();
        state.finish_run(run, status, code, &counts, message.as_deref())?;
        result
    });
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(e) => {
            print_error(&e);
            return Outcome::Failed;
        }
    };
    print!("{}", summary(&outcome));
    print_verdict(&outcome.verdict);
    for failure in outcome.failures.iter().take(20) {
        eprintln!(
            "failed: {} {}: {}",
            failure.action, failure.user, failure.error
        );
    }
    if outcome.failures.len() > 20 {
        eprintln!(
            "… and {} more failures (see --report)",
            outcome.failures.len() - 20
        );
    }
    if let Some(path) = &args.report {
        let report = report_json(&outcome);
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("error: cannot write the report {}: {e}", path.display());
            return Outcome::Failed;
        }
    }
    match outcome.exit_code() {
        0 => Outcome::Success,
        1 => Outcome::Partial,
        _ => Outcome::Failed,
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

/// The plan as a diff, one user per line, each group sorted by user.
pub fn plan_text(plan: &Plan, color: bool) -> String {
    let paint = |code: &str, text: String| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text
        }
    };
    let mut out = String::new();
    let mut creates: Vec<&str> = plan.creates.iter().map(|c| c.label.as_str()).collect();
    creates.sort_unstable();
    for label in creates {
        let _ = writeln!(out, "{}", paint("32", format!("+ create {label}")));
    }
    for (kind, sign, word, code) in [
        (UpdateKind::Update, "~", "update", "33"),
        (UpdateKind::Reactivate, "↑", "reactivate", "36"),
        (UpdateKind::Deactivate, "-", "deactivate", "31"),
    ] {
        let mut updates: Vec<_> = plan.of_kind(kind).collect();
        updates.sort_by(|a, b| a.label.cmp(&b.label));
        for update in updates {
            let line = format!(
                "{sign} {word} {}: {}",
                update.label,
                change_text(&update.changes)
            );
            let _ = writeln!(out, "{}", paint(code, line));
        }
    }
    let mut skipped: Vec<_> = plan.skipped.iter().collect();
    skipped.sort_by(|a, b| a.label.cmp(&b.label));
    for skip in skipped {
        let _ = writeln!(out, "! skip {}: {}", skip.label, skip.reason);
    }
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
        "create": plan.creates.iter().map(|c| json!({"user": c.label, "record": c.record.to_json()})).collect::<Vec<_>>(),
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

fn report_json(outcome: &engine::Outcome) -> Json {
    json!({
        "status": outcome.status(),
        "exit_code": outcome.exit_code(),
        "message": verdict_message(&outcome.verdict),
        "source_users": outcome.source_users,
        "target_users": outcome.target_users,
        "counts": {
            "created": outcome.counts.created,
            "updated": outcome.counts.updated,
            "deactivated": outcome.counts.deactivated,
            "reactivated": outcome.counts.reactivated,
            "unchanged": outcome.counts.unchanged,
            "skipped": outcome.counts.skipped,
            "failed": outcome.counts.failed,
        },
        "failures": outcome.failures,
        "skipped": outcome.plan.skipped.iter().map(|s| json!({"user": s.label, "reason": s.reason})).collect::<Vec<_>>(),
        "requests": {"graph": outcome.graph_requests, "target": outcome.target_requests, "target_writes": outcome.target_writes},
        "seconds": {"read": outcome.read_time.as_secs_f64(), "write": outcome.write_time.as_secs_f64()},
        "peak_memory_mb": peak_memory(),
    })
}
