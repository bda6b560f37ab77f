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
///
/// With `at` (`full_at`, a time of day in `now`'s offset) a reconciliation that comes due
/// waits for the first run at or after that time: it is due when the latest such moment
/// is past the last reconciliation by more than `every` less a day (so `7d` and `02:00`
/// reconcile at the first run after 02:00, seven days on).
pub fn due(
    asked: bool,
    (every, at): (Duration, Option<chrono::NaiveTime>),
    last: Option<&str>,
    now: &str,
) -> Option<Reason> {
    if asked {
        return Some(Reason::Asked);
    }
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    let Some(last) = last.and_then(parse) else {
        return Some(Reason::FirstRun);
    };
    let every = chrono::TimeDelta::from_std(every).unwrap_or(chrono::TimeDelta::MAX);
    let Some(now) = parse(now) else {
        return Some(Reason::Elapsed);
    };
    let Some(at) = at else {
        return (now - last >= every).then_some(Reason::Elapsed);
    };
    let today = now.date_naive().and_time(at);
    let pinned = if now.naive_local() >= today {
        today
    } else {
        today - chrono::TimeDelta::days(1)
    };
    let since = pinned - last.with_timezone(now.offset()).naive_local();
    (since > chrono::TimeDelta::zero() && since > every - chrono::TimeDelta::days(1))
        .then_some(Reason::Elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

    #[test]
    fn a_reconciliation_is_due_when_asked_first_or_after_full_every() {
        let last = Some("2026-01-01T00:00:00Z");
        assert_eq!(
            due(true, (WEEK, None), last, "2026-01-02T00:00:00Z"),
            Some(Reason::Asked)
        );
        assert_eq!(
            due(false, (WEEK, None), None, "2026-01-02T00:00:00Z"),
            Some(Reason::FirstRun)
        );
        assert_eq!(due(false, (WEEK, None), last, "2026-01-07T23:59:59Z"), None);
        assert_eq!(
            due(false, (WEEK, None), last, "2026-01-08T00:00:00Z"),
            Some(Reason::Elapsed)
        );
        assert_eq!(
            due(false, (Duration::ZERO, None), last, "2026-01-01T00:00:00Z"),
            Some(Reason::Elapsed)
        );
    }

    #[test]
    fn full_at_holds_a_due_reconciliation_until_that_time_of_day() {
        let at = chrono::NaiveTime::from_hms_opt(2, 0, 0);
        let last = Some("2026-01-01T02:05:00+01:00");
        let due_at = |now| due(false, (WEEK, at), last, now);
        // Seven days on, before 02:00: not yet; from 02:00: due.
        assert_eq!(due_at("2026-01-08T01:59:00+01:00"), None);
        assert_eq!(due_at("2026-01-08T02:00:00+01:00"), Some(Reason::Elapsed));
        assert_eq!(due_at("2026-01-08T14:00:00+01:00"), Some(Reason::Elapsed));
        // Six days on, even after 02:00: not yet.
        assert_eq!(due_at("2026-01-07T03:00:00+01:00"), None);
        // Every day: each day's first run from 02:00, once.
        let daily = |last, now| due(false, (Duration::from_secs(86_400), at), Some(last), now);
        assert_eq!(
            daily("2026-01-01T02:05:00+01:00", "2026-01-02T02:01:00+01:00"),
            Some(Reason::Elapsed)
        );
        assert_eq!(
            daily("2026-01-02T02:01:00+01:00", "2026-01-02T23:00:00+01:00"),
            None
        );
    }
}
