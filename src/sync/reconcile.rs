//! When a run is a full reconciliation: every `full_every` since the last one (kept in the
//! state file), on a first run, or when asked (`--full`). Such a run compares every user's
//! fields with the target's, not only the hash of the last write, and so finds drift.

use std::time::Duration;

/// Why a run reconciles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `run --full` or `plan --full`.
    Asked,
    /// The state remembers no reconciliation: a first run.
    FirstRun,
    /// `full_every` has passed since the last one (or is zero: every run).
    Elapsed,
}

impl Reason {
    /// Its name in the report: `--full`, `first run`, `full_every elapsed`.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Asked => "--full",
            Reason::FirstRun => "first run",
            Reason::Elapsed => "full_every elapsed",
        }
    }
}

/// Whether a run at `now` (RFC 3339) reconciles, and why: `asked` (`--full`), `every`
/// (`full_every`, zero for every run), `last` the time of the last reconciliation (RFC
/// 3339), if any. A time that does not parse counts as none.
pub fn due(asked: bool, every: Duration, last: Option<&str>, now: &str) -> Option<Reason> {
    if asked {
        return Some(Reason::Asked);
    }
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    let Some(last) = last.and_then(parse) else {
        return Some(Reason::FirstRun);
    };
    let since = parse(now).map_or(chrono::TimeDelta::MAX, |now| now - last);
    let every = chrono::TimeDelta::from_std(every).unwrap_or(chrono::TimeDelta::MAX);
    (since >= every).then_some(Reason::Elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

    #[test]
    fn a_reconciliation_is_due_when_asked_first_or_after_full_every() {
        let last = Some("2026-01-01T00:00:00Z");
        assert_eq!(
            due(true, WEEK, last, "2026-01-02T00:00:00Z"),
            Some(Reason::Asked)
        );
        assert_eq!(
            due(false, WEEK, None, "2026-01-02T00:00:00Z"),
            Some(Reason::FirstRun)
        );
        assert_eq!(due(false, WEEK, last, "2026-01-07T23:59:59Z"), None);
        assert_eq!(
            due(false, WEEK, last, "2026-01-08T00:00:00Z"),
            Some(Reason::Elapsed)
        );
        assert_eq!(
            due(false, Duration::ZERO, last, "2026-01-01T00:00:00Z"),
            Some(Reason::Elapsed)
        );
    }
}
