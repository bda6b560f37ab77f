//! How a plan is shown: as a diff one user per line, as counts, or as one JSON object; and
//! what the guards said.

use std::fmt::Write as _;

use serde_json::{Value as Json, json};

use crate::sync::engine::Outcome;
use crate::sync::holdings::describe;
use crate::sync::plan::{Drift, Holdings, Plan, Update, UpdateKind, drift_count};
use crate::sync::reconcile::Reason;
use crate::sync::safety::Verdict;
use crate::targets::FieldChange;

/// Prints what the guards held back or refused.
pub(super) fn print_verdict(verdict: &Verdict) {
    match verdict {
        Verdict::Proceed => {}
        Verdict::HoldDeactivations(m) => errln!("warning: {m}"),
        Verdict::Refuse(m) => errln!("error: {m}"),
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

/// A drift line after `~ drift `: `ann@x: jobtitle "Boss" → "Engineer"`, a field the
/// mapping keeps as the target has it marked `(kept)`.
fn drift_text(drift: &Drift) -> String {
    let fields: Vec<String> = drift
        .fields
        .iter()
        .map(|f| {
            format!(
                "{} {} → {}{}",
                f.target,
                shown(f.found.as_ref()),
                shown(f.expected.as_ref()),
                if f.kept { " (kept)" } else { "" }
            )
        })
        .collect();
    format!("{}: {}", drift.label, fields.join("; "))
}

/// How many things a line names of what a leaver holds.
const HOLDINGS_SHOWN: usize = 3;

/// An update's line after its sign: `deactivate ann@x: active true → false (holds 1
/// asset: LAPTOP-0042 "MacBook Pro")`.
fn update_line(word: &str, update: &Update) -> String {
    let mut changes = change_text(&update.changes);
    for d in &update.deferred {
        if !changes.is_empty() {
            changes.push_str("; ");
        }
        let field = update.record.field_name(d.field);
        let _ = write!(changes, "{field} → a user created in this run");
    }
    let mut line = format!("{word} {}: {changes}", update.label);
    if let Some(holds) = describe(&update.holdings, HOLDINGS_SHOWN) {
        let _ = write!(line, " ({holds})");
    }
    line
}

/// The plan as a diff, one user per line, each group sorted by user; with `show`, at most
/// that many users per group, and how many more. `held` are the deactivations held back
/// because the users still hold assets.
pub(super) fn plan_text(plan: &Plan, held: &[Update], color: bool, show: Option<usize>) -> String {
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
    for e in plan.entities.iter().take(show) {
        let _ = writeln!(out, "{}", paint("32", format!("+ {} {:?}", e.kind, e.name)));
    }
    more(&mut out, plan.entities.len());
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
            let line = format!("{sign} {}", update_line(word, update));
            let _ = writeln!(out, "{}", paint(code, line));
        }
        more(&mut out, updates.len());
    }
    let mut drift: Vec<_> = plan.drift.iter().collect();
    drift.sort_by(|a, b| a.label.cmp(&b.label));
    for d in drift.iter().take(show) {
        let _ = writeln!(out, "{}", paint("33", format!("~ drift {}", drift_text(d))));
    }
    more(&mut out, drift.len());
    let mut held: Vec<&Update> = held.iter().collect();
    held.sort_by(|a, b| a.label.cmp(&b.label));
    for update in held.iter().take(show) {
        let line = format!("= held: {}", update_line("deactivate", update));
        let _ = writeln!(out, "{}", paint("35", line));
    }
    more(&mut out, held.len());
    let mut skipped: Vec<_> = plan.skipped.iter().collect();
    skipped.sort_by(|a, b| a.label.cmp(&b.label));
    for skip in skipped.iter().take(show) {
        let _ = writeln!(out, "! skip {}: {}", skip.label, skip.reason);
    }
    more(&mut out, skipped.len());
    for r in plan.unresolved.iter().take(show) {
        let _ = writeln!(
            out,
            "? reference {} {} → {}: {}",
            r.label, r.field, r.names, r.reason
        );
    }
    more(&mut out, plan.unresolved.len());
    for note in &plan.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

/// The plan's counts in one line, and how its users were matched in a second.
pub(super) fn plan_counts(plan: &Plan) -> String {
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
    if !plan.entities.is_empty() {
        let _ = write!(text, "; {} entities to create", plan.entities.len());
    }
    if !plan.unresolved.is_empty() {
        let _ = write!(
            text,
            "; {} references left empty (see `? reference` lines)",
            plan.unresolved.len()
        );
    }
    if !plan.drift.is_empty() {
        let drift = drift_count(&plan.drift);
        let _ = write!(
            text,
            "; drift in {} users ({} fields; see `~ drift` lines)",
            drift.users, drift.fields
        );
    }
    let _ = write!(text, "\nmatched: {}", plan.matched);
    text
}

/// What a user holds as the plan's JSON shows it, added to `entry`: `holds` (a list), or
/// `holds_error` when the target could not say.
fn with_holdings(mut entry: Json, holdings: &Holdings) -> Json {
    match holdings {
        Holdings::NotAsked => {}
        Holdings::Known(items) => entry["holds"] = json!(items),
        Holdings::Unknown(why) => entry["holds_error"] = json!(why),
    }
    entry
}

/// The plan as one JSON object (`plan --json`); `held` are the deactivations held back
/// because the users still hold assets.
/// What the scope groups and exclusions did, in one line: how many users each group of
/// `groups` brought in and each of `exclude_groups` left out; `None` without either.
pub(super) fn scope_text(outcome: &Outcome) -> Option<String> {
    let scope = outcome.scope.as_ref()?;
    let listed = |counts: &[crate::graph::groups::GroupCount]| {
        counts
            .iter()
            .map(|c| format!("{} {}", c.group, c.users))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if !scope.groups.is_empty() {
        parts.push(format!(
            "users brought in by groups: {}",
            listed(&scope.groups)
        ));
    }
    if !scope.excluded.is_empty() {
        parts.push(format!(
            "left out by exclude_groups: {}",
            listed(&scope.excluded)
        ));
    }
    Some(format!("scope: {}", parts.join("; ")))
}

pub(super) fn plan_json(outcome: &Outcome) -> Json {
    let Outcome {
        plan,
        held,
        verdict,
        ..
    } = outcome;
    let changes = |changes: &[FieldChange]| -> Vec<Json> {
        changes
            .iter()
            .map(|c| json!({"field": c.target, "from": c.old, "to": c.new}))
            .collect()
    };
    let entry = |u: &Update| {
        let entry = json!({"user": u.label, "id": u.user.id, "changes": changes(&u.changes)});
        with_holdings(entry, &u.holdings)
    };
    let updates = |kind| -> Vec<Json> { plan.of_kind(kind).map(entry).collect() };
    json!({
        "create": plan.creates.iter().map(|c| json!({"user": c.label, "record": c.record().to_json()})).collect::<Vec<_>>(),
        "update": updates(UpdateKind::Update),
        "deactivate": updates(UpdateKind::Deactivate),
        "reactivate": updates(UpdateKind::Reactivate),
        "held_deactivate": held.iter().map(entry).collect::<Vec<_>>(),
        "skip": plan.skipped.iter().map(|s| json!({"user": s.label, "reason": s.reason})).collect::<Vec<_>>(),
        "unchanged": plan.unchanged,
        "not_owned": plan.not_owned,
        "matched": plan.matched.to_json(),
        "notes": plan.notes,
        "unresolved_references": plan.unresolved,
        "create_entities": plan.entities,
        "mode": outcome.mode.name(),
        "mode_reason": outcome.mode_reason,
        "reconcile": outcome.reconcile.map(Reason::name),
        "scope": outcome.scope,
        "drift": plan.drift,
        "verdict": match verdict {
            Verdict::Proceed => json!("proceed"),
            Verdict::HoldDeactivations(m) => json!({"hold_deactivations": m}),
            Verdict::Refuse(m) => json!({"refuse": m}),
        },
    })
}

/// The writes a plan makes: creates, updates, deactivations, reactivations and the
/// entities created for the users' references.
pub(super) fn plan_writes(plan: &Plan) -> u64 {
    let updates = [
        UpdateKind::Update,
        UpdateKind::Deactivate,
        UpdateKind::Reactivate,
    ]
    .map(|kind| plan.count(kind))
    .iter()
    .sum::<usize>();
    (plan.creates.len() + updates + plan.entities.len()) as u64
}

/// How long a plan's writes take at `rate`: `2,040 writes ≈ 17 min at 120 requests/min`;
/// without a known rate, only the count.
pub(super) fn plan_estimate(plan: &Plan, rate: Option<crate::http::Rate>) -> (String, Json) {
    let writes = plan_writes(plan);
    let counted = format!(
        "{} write{}",
        grouped(writes),
        if writes == 1 { "" } else { "s" }
    );
    let Some(rate) = rate else {
        let line = format!("{counted}; the target gives no request limit to estimate their time");
        return (
            line,
            json!({"writes": writes, "seconds": null, "rate": null}),
        );
    };
    let time = rate.time_for(writes);
    let line = format!("{counted} ≈ {} at {rate}", about(time));
    let json = json!({
        "writes": writes,
        "seconds": time.as_secs_f64().round(),
        "rate": {"requests": rate.requests, "per_seconds": rate.per.as_secs()},
    });
    (line, json)
}

/// A count with thousands separated by commas: `2,040`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration as a person estimates it: `40 s`, `17 min`, `2 h 5 min`.
fn about(time: std::time::Duration) -> String {
    let seconds = time.as_secs_f64().round() as u64;
    match seconds {
        0..90 => format!("{seconds} s"),
        90..5400 => format!("{} min", (seconds + 30) / 60),
        _ => {
            let minutes = (seconds + 30) / 60;
            format!("{} h {} min", minutes / 60, minutes % 60)
        }
    }
}

#[cfg(test)]
mod estimate_tests {
    use super::*;

    #[test]
    fn counts_and_durations_read_as_a_person_writes_them() {
        assert_eq!(
            [0, 999, 2040, 1_234_567].map(grouped),
            ["0", "999", "2,040", "1,234,567"]
        );
        let secs = std::time::Duration::from_secs;
        assert_eq!(
            [secs(40), secs(1020), secs(7500)].map(about),
            ["40 s", "17 min", "2 h 5 min"]
        );
        let (line, json) =
            plan_estimate(&Plan::default(), Some(crate::http::Rate::per_minute(120)));
        assert_eq!(line, "0 writes ≈ 0 s at 120 requests/min");
        assert_eq!(json["rate"]["requests"], 120);
        let (line, json) = plan_estimate(&Plan::default(), None);
        assert!(line.contains("no request limit"), "{line}");
        assert_eq!(json["seconds"], Json::Null);
    }
}
