//! A run, a plan or the run history as one self-contained HTML page, for admins who review a
//! plan before allowing it and auditors who ask for evidence afterwards.
//!
//! The page is the template `page.html` with its style `page.css` and script `page.js`
//! inline, and the facts as JSON in a `<script type="application/json">` block. The script
//! draws everything from that JSON with `textContent`, never as markup, so a value from
//! Graph or the target stays text. The page loads nothing: its Content-Security-Policy
//! allows no source at all but its own style and script, named by their SHA-256 hashes.
//! Users without changes are counted, never listed, so the page grows with the changes
//! only.

use std::path::Path;

use base64::Engine as _;
use serde::Serialize;
use serde_json::{Value as Json, json};

use crate::state::RunRecord;
use crate::sync::outcome::Outcome;
use crate::sync::plan::{Holdings, Update, UpdateKind};
use crate::sync::report::RunReport;

const TEMPLATE: &str = include_str!("page.html");
const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// What a page shows: its header, counts, users, and the history of runs. Every part but
/// the header is optional; the script shows the sections that have data.
#[derive(Debug, Default, Serialize)]
pub struct Page {
    /// `plan`, `run` or `status`.
    pub kind: &'static str,
    /// The facts at the top.
    pub head: Head,
    /// The counts as `(name, count)`, drawn as bars.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<Vec<(String, i64)>>,
    /// The fields that any row changes, for the filter.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// One row per user with an action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<Row>>,
    /// The entities to create (or created), each `{kind, name}` with `id` or `error`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<Json>,
    /// The references left empty, each `{user, field, names, reason}`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unresolved: Vec<Json>,
    /// The planner's notes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The run history, newest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runs: Option<Vec<Json>>,
    /// The last run's JSON report, in short.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Json>,
}

/// The facts at the top of a page; those absent are not shown.
#[derive(Debug, Default, Serialize)]
pub struct Head {
    /// The config file.
    pub config: Option<String>,
    /// The target's URL.
    pub target: Option<String>,
    /// How Entra was read: `full`, `reconcile`, `delta` or `user`.
    pub mode: Option<&'static str>,
    /// When it started (RFC 3339).
    pub started: Option<String>,
    /// When it finished (RFC 3339).
    pub finished: Option<String>,
    /// How long it took.
    pub seconds: Option<f64>,
    /// How it ended (`ok`, `partial`, …).
    pub status: Option<&'static str>,
    /// The exit code it ends with.
    pub exit_code: Option<i32>,
    /// What the guards said, or why it failed.
    pub message: Option<String>,
    /// The state file (status page).
    pub state: Option<String>,
    /// Target users owned (status page).
    pub owned: Option<usize>,
}

/// One user with an action. The short names keep a page of 100,000 rows small.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `create`, `update`, `deactivate`, `reactivate`, `held` or `skip`.
    #[serde(rename = "a")]
    pub action: &'static str,
    /// The user, as the admin knows them.
    #[serde(rename = "u")]
    pub user: String,
    /// The target's id of the user, when it has one.
    #[serde(rename = "id", skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    /// The fields that change: name, old value, new value (`None`: no value).
    #[serde(rename = "c", skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<(String, Option<Json>, Option<Json>)>,
    /// Why: a deactivation's cause, why a user is held or skipped.
    #[serde(rename = "r", skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What a leaver still holds, one line each.
    #[serde(rename = "h", skip_serializing_if = "Vec::is_empty")]
    pub holds: Vec<String>,
    /// `planned`, `done`, `failed`, `held` or `skipped`.
    #[serde(rename = "s")]
    pub result: &'static str,
    /// Why the write failed.
    #[serde(rename = "e", skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where a plan or run came from: the config file and the target's URL.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The config file.
    pub config: &'a Path,
    /// The target's URL, when the config could be read.
    pub target: Option<&'a str>,
}

impl Source<'_> {
    fn head(&self) -> Head {
        Head {
            config: Some(self.config.display().to_string()),
            target: self.target.map(str::to_owned),
            ..Head::default()
        }
    }
}

/// The page of a plan (`plan --html`) that started at `started` and took `seconds`.
pub fn plan_page(outcome: &Outcome, source: Source<'_>, started: &str, seconds: f64) -> String {
    let plan = &outcome.plan;
    let mut head = source.head();
    head.mode = Some(outcome.mode.name());
    head.started = Some(started.to_owned());
    head.seconds = Some(seconds);
    head.status = Some(outcome.status().name());
    head.exit_code = Some(outcome.exit_code());
    head.message = outcome.verdict_message().map(str::to_owned);
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let counts = vec![
        ("create".to_owned(), count(plan.creates.len())),
        ("update".to_owned(), count(plan.count(UpdateKind::Update))),
        (
            "deactivate".to_owned(),
            count(plan.count(UpdateKind::Deactivate)),
        ),
        (
            "reactivate".to_owned(),
            count(plan.count(UpdateKind::Reactivate)),
        ),
        ("held".to_owned(), count(outcome.held.len())),
        ("skip".to_owned(), count(plan.skipped.len())),
        ("unchanged".to_owned(), count(plan.unchanged)),
    ];
    let entities = plan
        .entities
        .iter()
        .map(|e| json!({"kind": e.kind, "name": e.name}))
        .collect();
    outcome_page("plan", head, counts, outcome, entities, true)
}

/// The page of a run (`run --html`): what it did, or why it could not run and what it made
/// before.
pub fn run_page(report: &RunReport, source: Source<'_>) -> String {
    let mut head = source.head();
    head.started = Some(report.started.clone());
    head.finished = Some(report.finished.clone());
    head.seconds = Some(report.seconds);
    head.status = Some(report.status().name());
    head.exit_code = Some(report.exit_code());
    head.message = report.message();
    let Some(outcome) = report.made() else {
        let page = Page {
            kind: "run",
            head,
            ..Page::default()
        };
        return render("userload run", &page);
    };
    if let Ok(outcome) = &report.result {
        head.mode = Some(outcome.mode.name());
    }
    let c = &outcome.counts;
    let counts = [
        ("created", c.created),
        ("updated", c.updated),
        ("deactivated", c.deactivated),
        ("reactivated", c.reactivated),
        (
            "held",
            i64::try_from(outcome.held.len()).unwrap_or(i64::MAX),
        ),
        ("skipped", c.skipped),
        ("failed", c.failed),
        ("unchanged", c.unchanged),
    ]
    .into_iter()
    .map(|(name, n)| (name.to_owned(), n))
    .collect();
    let entities = outcome
        .entities
        .iter()
        .map(|(e, made)| match made {
            Ok(id) => json!({"kind": e.kind, "name": e.name, "id": id}),
            Err(error) => json!({"kind": e.kind, "name": e.name, "error": error}),
        })
        .collect();
    outcome_page("run", head, counts, outcome, entities, false)
}

/// A plan's or a run's page: `planned` says the writes are yet to be made.
fn outcome_page(
    kind: &'static str,
    head: Head,
    counts: Vec<(String, i64)>,
    outcome: &Outcome,
    entities: Vec<Json>,
    planned: bool,
) -> String {
    let rows = rows(outcome, planned);
    let mut fields: Vec<String> = rows
        .iter()
        .flat_map(|r| r.changes.iter().map(|c| c.0.clone()))
        .collect();
    fields.sort_unstable();
    fields.dedup();
    let page = Page {
        kind,
        head,
        counts: Some(counts),
        fields,
        rows: Some(rows),
        entities,
        unresolved: outcome.plan.unresolved.iter().map(|u| json!(u)).collect(),
        notes: outcome.plan.notes.clone(),
        ..Page::default()
    };
    render(&format!("userload {kind}"), &page)
}

/// Why a deactivation is made: the user is disabled in Entra (the planner compared a mapped
/// record, so it remembers a hash), or is no longer among the users read.
fn deactivation_reason(update: &Update) -> &'static str {
    if update.hash.is_some() {
        "disabled in Entra"
    } else {
        "no longer among the Entra users read: deleted, or out of scope"
    }
}

/// What a leaver still holds, one line per thing, or why it could not be told.
fn holds(holdings: &Holdings) -> Vec<String> {
    match holdings {
        Holdings::NotAsked => Vec::new(),
        Holdings::Known(items) => items
            .iter()
            .map(|h| format!("{} {}", h.kind.name(), h.describe()))
            .collect(),
        Holdings::Unknown(why) => vec![format!("unknown: {why}")],
    }
}

/// One row per user with an action: creates, updates, deactivations (made or held),
/// reactivations, skips, and failed writes of users the plan does not name.
fn rows(outcome: &Outcome, planned: bool) -> Vec<Row> {
    let mut failed: std::collections::HashMap<(&str, &str), &str> = outcome
        .failures
        .iter()
        .map(|f| ((f.action, f.user.as_str()), f.error.as_str()))
        .collect();
    /// The result of `user`'s write of `action`, taken out of `failed` when it failed.
    fn result<'o>(
        failed: &mut std::collections::HashMap<(&'o str, &'o str), &'o str>,
        planned: bool,
        action: &'o str,
        user: &'o str,
    ) -> (&'static str, Option<String>) {
        match failed.remove(&(action, user)) {
            Some(error) => ("failed", Some(error.to_owned())),
            None if planned => ("planned", None),
            None => ("done", None),
        }
    }
    let mut rows = Vec::new();
    for create in &outcome.plan.creates {
        let (s, error) = result(&mut failed, planned, "create", &create.label);
        let changes = create
            .record()
            .iter()
            .map(|(field, value)| (field.to_owned(), None, Some(value.clone())))
            .collect();
        rows.push(Row {
            action: "create",
            user: create.label.clone(),
            target_id: None,
            changes,
            reason: None,
            holds: Vec::new(),
            result: s,
            error,
        });
    }
    for update in &outcome.plan.updates {
        let action = update.kind.name();
        let (s, error) = result(&mut failed, planned, action, &update.label);
        rows.push(update_row(update, action, s, error));
    }
    for update in &outcome.held {
        let mut row = update_row(update, "held", "held", None);
        if let Some(reason) = &mut row.reason {
            reason.push_str("; the deactivation is held back");
        }
        rows.push(row);
    }
    for skip in &outcome.plan.skipped {
        rows.push(Row {
            action: "skip",
            user: skip.label.clone(),
            target_id: None,
            changes: Vec::new(),
            reason: Some(skip.reason.clone()),
            holds: Vec::new(),
            result: "skipped",
            error: None,
        });
    }
    // Failures the plan does not name (there should be none) are shown all the same.
    let mut rest: Vec<_> = failed.into_iter().collect();
    rest.sort_unstable();
    for ((action, user), error) in rest {
        rows.push(Row {
            action: match action {
                "create" => "create",
                "deactivate" => "deactivate",
                "reactivate" => "reactivate",
                _ => "update",
            },
            user: user.to_owned(),
            target_id: None,
            changes: Vec::new(),
            reason: None,
            holds: Vec::new(),
            result: "failed",
            error: Some(error.to_owned()),
        });
    }
    rows
}

fn update_row(
    update: &Update,
    action: &'static str,
    result: &'static str,
    error: Option<String>,
) -> Row {
    let deactivates = update.kind == UpdateKind::Deactivate;
    let mut changes: Vec<_> = update
        .changes
        .iter()
        .map(|c| (c.target.clone(), c.old.clone(), c.new.clone()))
        .collect();
    for d in &update.deferred {
        let field = update.record.field_name(d.field).to_owned();
        changes.push((field, None, Some(json!("a user created in this run"))));
    }
    Row {
        action,
        user: update.label.clone(),
        target_id: Some(update.user.id.clone()),
        changes,
        reason: deactivates.then(|| deactivation_reason(update).to_owned()),
        holds: holds(&update.holdings),
        result,
        error,
    }
}

/// The page of the run history (`status --html`): `runs` newest first, `owned` target
/// users owned, and the last run's JSON report as `(file, report)` when there is one.
pub fn status_page(
    state: &Path,
    owned: usize,
    runs: &[RunRecord],
    report: Option<(&Path, &Json)>,
) -> String {
    let head = Head {
        state: Some(state.display().to_string()),
        owned: Some(owned),
        ..Head::default()
    };
    let runs = runs
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "started": r.started,
                "finished": r.finished,
                "status": r.status,
                "exit_code": r.exit_code,
                "seconds": seconds(&r.started, r.finished.as_deref()),
                "counts": r.counts,
                "requests": r.requests,
                "message": r.message,
            })
        })
        .collect();
    let report = report.map(|(file, r)| {
        json!({
            "file": file.display().to_string(),
            "started": r["started"],
            "status": r["status"],
            "exit_code": r["exit_code"],
            "message": r["message"],
            "counts": r["counts"],
            "requests": r.get("requests"),
            "failures": r.get("failures"),
        })
    });
    let page = Page {
        kind: "status",
        head,
        runs: Some(runs),
        report,
        ..Page::default()
    };
    render("userload status", &page)
}

/// Seconds between two RFC 3339 times, when both parse.
fn seconds(started: &str, finished: Option<&str>) -> Option<f64> {
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    let took = parse(finished?)? - parse(started)?;
    Some(took.num_milliseconds() as f64 / 1000.0)
}

/// The SHA-256 of `text` as a CSP source (`'sha256-…'`).
fn csp_hash(text: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    let hash = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
    format!("'sha256-{hash}'")
}

/// The page's Content-Security-Policy: nothing may load, only the page's own style and
/// script may run.
pub fn content_security_policy() -> String {
    format!(
        "default-src 'none'; script-src {}; style-src {}; img-src 'none'; base-uri 'none'; \
         form-action 'none'",
        csp_hash(SCRIPT),
        csp_hash(STYLE)
    )
}

/// `page` as JSON that can sit inside a `<script>` element: `<`, `>` and `&` (which
/// appear only within strings) are written as `\u` escapes, so `</script>` or `<!--` in a
/// value cannot end the block.
pub fn script_json(page: &impl Serialize) -> String {
    let text = serde_json::to_string(page).unwrap_or_else(|_| "{}".to_owned());
    let mut out = String::with_capacity(text.len() + 64);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The whole page: the template with its style, script and policy, then `page` as data.
/// `title` is one of the page's own words, never a value from a data source.
pub fn render(title: &str, page: &Page) -> String {
    let frame = TEMPLATE
        .replace("{{CSP}}", &content_security_policy())
        .replace("{{TITLE}}", title)
        .replace("{{STYLE}}", STYLE)
        .replace("{{SCRIPT}}", SCRIPT);
    // The data goes in last, so that nothing in it is taken for a placeholder.
    frame.replacen("{{DATA}}", &script_json(page), 1)
}

/// Writes `page` to `path`, scrubbed of secrets, whole or not at all: into a temporary
/// file beside it, then renamed over it, so a reader never sees half a page.
pub fn write(path: &Path, page: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new()
        .prefix(".userload-html-")
        .tempfile_in(dir)?;
    file.write_all(crate::secrets::scrub(page).as_bytes())?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_cannot_close_the_data_block() {
        let page = Page {
            notes: vec!["</script><script>alert(1)</script> & <!--".to_owned()],
            ..Page::default()
        };
        let html = render("userload plan", &page);
        let data = html
            .split("<script type=\"application/json\" id=\"data\">")
            .nth(1)
            .and_then(|rest| rest.split("</script>").next())
            .unwrap();
        assert!(!data.contains('<') && !data.contains('&'), "{data}");
        let back: Json = serde_json::from_str(data).unwrap();
        assert_eq!(back["notes"][0], page.notes[0]);
    }

    #[test]
    fn the_policy_names_the_page_s_own_script_and_style_and_nothing_else() {
        let csp = content_security_policy();
        assert!(csp.starts_with("default-src 'none';"), "{csp}");
        assert!(!csp.contains("unsafe") && !csp.contains("http"), "{csp}");
        assert!(csp.contains(&csp_hash(SCRIPT)) && csp.contains(&csp_hash(STYLE)));
        let html = render("userload run", &Page::default());
        assert!(html.contains(&format!("<script>{SCRIPT}</script>")));
        assert!(html.contains(&format!("<style>{STYLE}</style>")));
        assert!(!html.contains("{{"), "a placeholder is left");
    }

    #[test]
    fn a_page_is_written_whole_and_scrubbed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.html");
        write(&path, "one").unwrap();
        write(&path, "two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "the temporary file is gone");
        assert!(write(&dir.path().join("no/such/dir/r.html"), "x").is_err());
        crate::secrets::remember(["html-page-secret-5f1c".to_owned()]);
        let page = Page {
            notes: vec!["the token html-page-secret-5f1c was refused".to_owned()],
            ..Page::default()
        };
        write(&path, &render("userload run", &page)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("was refused"), "the note is missing");
        assert!(
            !text.contains("html-page-secret-5f1c"),
            "a secret is on the page"
        );
    }
}
