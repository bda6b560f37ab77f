//! How a plan is shown: as a diff one user per line, as counts, or as one JSON object; and
//! what the guards said.

use std::fmt::Write as _;

use serde_json::{Value as Json, json};

use crate::sync::plan::{Plan, UpdateKind};
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

/// The plan as a diff, one user per line, each group sorted by user; with `show`, at most
/// that many users per group, and how many more.
pub(super) fn plan_text(plan: &Plan, color: bool, show: Option<usize>) -> String {
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
    let _ = write!(text, "\nmatched: {}", plan.matched);
    text
}

/// The plan as one JSON object (`plan --json`).
pub(super) fn plan_json(plan: &Plan, verdict: &Verdict) -> Json {
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
        "matched": plan.matched.to_json(),
        "notes": plan.notes,
        "verdict": match verdict {
            Verdict::Proceed => json!("proceed"),
            Verdict::HoldDeactivations(m) => json!({"hold_deactivations": m}),
            Verdict::Refuse(m) => json!({"refuse": m}),
        },
    })
}
