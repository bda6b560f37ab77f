//! When and how long to wait before sending a failed request again.
//!
//! Graph throttles per app and tenant with token buckets and says how long to wait in
//! `Retry-After` (whole or fractional seconds). Throttled requests still cost, so a retry
//! never goes out early: the server's wait is honoured exactly, and without one the wait
//! grows exponentially with jitter so that parallel clients do not retry in lockstep.

use std::time::Duration;

/// How many times a request is tried and how long each may take.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Tries per request, the first included (at least 1).
    pub max_attempts: u32,
    /// The first backoff; each later one doubles, up to `max_delay`.
    pub base_delay: Duration,
    /// The longest wait between two tries, also for a server's `Retry-After`.
    pub max_delay: Duration,
    /// How long one request may take, answer included, before it counts as failed.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(120),
            timeout: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before try number `attempt + 1`, after `attempt` failures (1-based): the
    /// server's `Retry-After` when it gave one, else a random wait between half and all of
    /// `base × 2^(attempt-1)`, capped.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max_delay);
        }
        let exponent = attempt.saturating_sub(1).min(20);
        let full = self
            .base_delay
            .saturating_mul(1 << exponent)
            .min(self.max_delay);
        full.mul_f64(0.5 + fastrand::f64() / 2.0)
    }
}

/// Reads a `Retry-After` value: seconds, possibly fractional (`2.128`), or an HTTP date.
/// Nonsense (negative, not a number, absurdly large) is ignored rather than trusted.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && (0.0..=86_400.0).contains(&seconds))
            .then(|| Duration::from_secs_f64(seconds));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = when.signed_duration_since(chrono::Utc::now());
    wait.to_std().ok().or(Some(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after(" 2.128 "),
            Some(Duration::from_secs_f64(2.128))
        );
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("NaN"), None);
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn backoff_grows_within_bounds_and_honours_the_server() {
        let policy = RetryPolicy::default();
        for attempt in 1..=30 {
            let full = policy
                .base_delay
                .saturating_mul(1 << (attempt - 1).min(20))
                .min(policy.max_delay);
            let d = policy.delay(attempt, None);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
        let told = Duration::from_millis(1500);
        assert_eq!(policy.delay(1, Some(told)), told);
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(999_999))),
            policy.max_delay
        );
    }
}
