//! Writing the HTML pages of `plan --html`, `run --html`, `daemon --html` and
//! `status --html` ([`crate::html`]), the way the other report files are written.

use std::path::Path;

use crate::html::Source;

/// Writes the page `page` makes to `path`, when one is asked for; false, with the problem
/// printed and naming the path, when it could not be written.
pub(super) fn write_page(path: Option<&Path>, page: impl FnOnce() -> String) -> bool {
    let Some(path) = path else {
        return true;
    };
    match crate::html::write(path, &page()) {
        Ok(()) => {
            tracing::info!(path = %path.display(), "HTML report written");
            true
        }
        Err(e) => {
            errln!(
                "error: cannot write the HTML report {}: {e}",
                path.display()
            );
            false
        }
    }
}

/// Writes the page of a plan made from the config at `config_path` to `path`, when one is
/// asked for; `when` is when the plan started and how many seconds it took.
pub(super) fn write_plan(
    path: Option<&Path>,
    outcome: &crate::sync::outcome::Outcome,
    config_path: &Path,
    config: &crate::config::Config,
    when: (&str, f64),
) -> bool {
    let source = Source {
        config: config_path,
        target: Some(config.target.url.as_str()),
    };
    write_page(path, || {
        crate::html::plan_page(outcome, source, when.0, when.1)
    })
}

/// Writes the page of a run with the config at `config_path` to `path`, when one is asked
/// for; `target` is the target's URL, when the config could be read.
pub(super) fn write_run(
    path: Option<&Path>,
    report: &crate::sync::report::RunReport,
    config_path: &Path,
    target: Option<&str>,
) -> bool {
    let source = Source {
        config: config_path,
        target,
    };
    write_page(path, || crate::html::run_page(report, source))
}

/// Writes the status page of `runs` (newest first) to `path`, when one is asked for, with
/// the last run's JSON `report` when one is named; false, with the problem printed, when
/// the report cannot be read or the page cannot be written.
pub(super) fn write_status(
    path: Option<&Path>,
    report: Option<&Path>,
    state: &Path,
    owned: usize,
    runs: &[crate::state::RunRecord],
) -> bool {
    let Some(path) = path else {
        return true;
    };
    let report = match report.map(|file| read_report(file).map(|json| (file, json))) {
        None => None,
        Some(Ok(report)) => Some(report),
        Some(Err(message)) => {
            errln!("error: {message}");
            return false;
        }
    };
    let report = report.as_ref().map(|(file, json)| (*file, json));
    write_page(Some(path), || {
        crate::html::status_page(state, owned, runs, report)
    })
}

/// A run's JSON report, read back.
fn read_report(file: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read the report {}: {e}", file.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}:{}:{}: not a run's JSON report: {e}",
            file.display(),
            e.line(),
            e.column()
        )
    })
}
