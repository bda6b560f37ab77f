//! The guards between a plan and the target: one bad night (an outage, a broken filter, a
//! mistyped group) must never deactivate the user base.
//!
//! - No plan is made from a pull that failed or ended early: the pull either returns every
//!   user in scope or the run stops. Before then only creates are made, of users read whom
//!   any complete pull would create too (never an update or a deactivation); a failed pull
//!   stops them and says how many were made.
//! - Graph returning no users at all while userload owns target users refuses the run.
//! - More deactivations than `max_deactivations` allows skip the deactivation phase (the
//!   other writes still happen) and the run exits 1, saying how to allow them.

use crate::config::{DEFAULT_MAX_DEACTIVATIONS, Limit};

/// The most deactivations the default limit allows, however many users are owned.
pub const DEFAULT_CAP: usize = 500;

/// What the guards decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead with the whole plan.
    Proceed,
    /// Apply everything but the deactivations; the run exits 1 with this message.
    HoldDeactivations(String),
    /// Write nothing; the run fails with this message.
    Refuse(String),
}

impl Verdict {
    /// Whether it holds the deactivations back.
    pub fn holds_deactivations(&self) -> bool {
        matches!(self, Verdict::HoldDeactivations(_))
    }
}

/// The most deactivations `limit` allows when userload owns `owned` target users. A
/// percentage rounds up (10% of 5 users allows 1); the default (10%) allows at most
/// [`DEFAULT_CAP`].
pub fn allowed(limit: Limit, owned: usize) -> usize {
    match limit {
        Limit::Count(n) => n as usize,
        Limit::Percent(p) => {
            let share = (owned as f64 * p / 100.0).ceil() as usize;
            if limit == DEFAULT_MAX_DEACTIVATIONS {
                share.min(DEFAULT_CAP)
            } else {
                share
            }
        }
    }
}

/// Judges a plan: `sources` users came from Graph, userload owns `owned` target users, the
/// plan deactivates `deactivations`; `allow` is `--allow-deactivations N`.
pub fn judge(
    sources: usize,
    owned: usize,
    deactivations: usize,
    limit: Limit,
    allow: Option<usize>,
) -> Verdict {
    if sources == 0 && owned > 0 {
        return Verdict::Refuse(format!(
            "Graph returned no users in scope, but userload owns {owned} target users; \
             nothing was written. Check the filter and group with `userload check`"
        ));
    }
    if deactivations == 0 {
        return Verdict::Proceed;
    }
    let limit_allows = allowed(limit, owned);
    let ceiling = allow.map_or(limit_allows, |a| a.max(limit_allows));
    if deactivations <= ceiling {
        return Verdict::Proceed;
    }
    let limit_text = match limit {
        Limit::Count(n) => format!("{n}"),
        Limit::Percent(p) => format!("{p}% of {owned} owned users = {limit_allows}"),
    };
    Verdict::HoldDeactivations(format!(
        "{deactivations} deactivations exceed max_deactivations ({limit_text}){}; none were made. \
         Look at the plan (`userload plan`), and if it is right, run again with \
         --allow-deactivations {deactivations}",
        allow.map_or(String::new(), |a| format!(" and --allow-deactivations {a}"))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_ten_percent_rounded_up_and_at_most_500() {
        assert_eq!(allowed(DEFAULT_MAX_DEACTIVATIONS, 5), 1);
        assert_eq!(allowed(DEFAULT_MAX_DEACTIVATIONS, 1000), 100);
        assert_eq!(allowed(DEFAULT_MAX_DEACTIVATIONS, 100_000), 500);
        assert_eq!(allowed(Limit::Percent(20.0), 100_000), 20_000);
        assert_eq!(allowed(Limit::Count(3), 100_000), 3);
    }

    #[test]
    fn an_empty_source_is_refused_while_users_are_owned() {
        assert!(matches!(
            judge(0, 10, 10, DEFAULT_MAX_DEACTIVATIONS, None),
            Verdict::Refuse(_)
        ));
        assert_eq!(
            judge(0, 0, 0, DEFAULT_MAX_DEACTIVATIONS, None),
            Verdict::Proceed
        );
    }

    #[test]
    fn too_many_deactivations_are_held_until_allowed() {
        let Verdict::HoldDeactivations(message) = judge(90, 100, 11, Limit::Count(10), None) else {
            panic!("not held");
        };
        assert!(message.contains("--allow-deactivations 11"), "{message}");
        assert_eq!(judge(90, 100, 10, Limit::Count(10), None), Verdict::Proceed);
        assert_eq!(
            judge(90, 100, 11, Limit::Count(10), Some(11)),
            Verdict::Proceed
        );
        assert!(matches!(
            judge(90, 100, 12, Limit::Count(10), Some(11)),
            Verdict::HoldDeactivations(_)
        ));
    }
}
