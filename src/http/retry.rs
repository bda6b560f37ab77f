//! When and how long to wait before sending a failed request again, and the one loop that
//! does it for every request userload makes.
//!
//! Servers throttle (Graph per app and tenant, asset systems per token) and say how long to
//! wait in `Retry-After`, as whole or fractional seconds or as an HTTP date. Throttled
//! requests still cost, so a retry never goes out early: the server's wait is honoured, and
//! without one the wait grows exponentially with jitter so that parallel clients do not
//! retry in lockstep.
//!
//! What differs between callers stays with them, behind [`Exchange`]: how one attempt is
//! sent and what its answer means, how giving up is worded, what is logged and counted
//! while waiting, whether the request may be sent again at all, and what must be checked
//! before it is (a create whose answer was lost may have been carried out).

use std::future::Future;
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
    /// Whether a backoff is a random part (half to all) of its full length, so that
    /// parallel clients spread out. Without, the waits are exactly as documented.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(120),
            timeout: Duration::from_secs(60),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// The wait before try number `attempt + 1`, after `attempt` failures (1-based): the
    /// server's `Retry-After` when it gave one, else `base × 2^(attempt-1)`, capped, of
    /// which a random wait between half and all is taken when jittered.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max_delay);
        }
        let exponent = attempt.saturating_sub(1).min(20);
        let full = self
            .base_delay
            .saturating_mul(1 << exponent)
            .min(self.max_delay);
        if self.jitter {
            full.mul_f64(0.5 + fastrand::f64() / 2.0)
        } else {
            full
        }
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

/// The `Retry-After` of an answer, when it has a usable one.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after)
}

/// The answers worth sending a request again for. Timeouts and broken connections always
/// are; which statuses are is each caller's knowledge of its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOn {
    /// Exactly these statuses.
    Statuses(&'static [u16]),
    /// 429 and every 5xx.
    ThrottlingAndServerErrors,
}

impl RetryOn {
    /// Throttling and the server errors that mean "come back later" (what Graph and SCIM
    /// servers answer when busy or restarting).
    pub const BUSY: RetryOn = RetryOn::Statuses(&[429, 500, 502, 503, 504]);

    /// Whether an answer with `status` is worth another try.
    pub fn covers(self, status: u16) -> bool {
        match self {
            RetryOn::Statuses(statuses) => statuses.contains(&status),
            RetryOn::ThrottlingAndServerErrors => status == 429 || (500..600).contains(&status),
        }
    }
}

/// A failed attempt that a later one may not meet.
#[derive(Debug, Clone, Default)]
pub struct Transient {
    /// What happened, for the error if no later try succeeds.
    pub detail: String,
    /// The server's `Retry-After`, if it gave one.
    pub retry_after: Option<Duration>,
    /// Whether it was a 429: the server says it did nothing with the request.
    pub throttled: bool,
    /// The server's id of the failed request, when it gave one.
    pub request_id: Option<String>,
}

impl Transient {
    /// A failure described by `detail`, with nothing more known.
    pub fn new(detail: String) -> Transient {
        Transient {
            detail,
            ..Transient::default()
        }
    }
}

/// What one attempt came to.
#[derive(Debug)]
pub enum Step<T, E> {
    /// An answer to keep, or a failure that trying again cannot fix.
    Done(Result<T, E>),
    /// A failure worth another attempt, after a wait; it counts against the attempts.
    Retry(Transient),
    /// Send again at once, without counting an attempt: what the last answer objected to
    /// has been renewed (a token after a 401, a user read again after a 412). The exchange
    /// allows this only a bounded number of times.
    Again,
}

impl<T, E> Step<T, E> {
    /// The same step with its answer turned into another.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Step<U, E> {
        match self {
            Step::Done(result) => Step::Done(result.map(f)),
            Step::Retry(last) => Step::Retry(last),
            Step::Again => Step::Again,
        }
    }
}

/// One request as [`run`] drives it: how it is sent, and what it does around its retries.
pub trait Exchange {
    /// What a successful exchange gives.
    type Output;
    /// What a failed one gives.
    type Error;

    /// Returns when the request's turn has come (a server's pace); the wait is not part
    /// of the attempt's time. No wait by default.
    fn turn(&self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Sends the request once and says what came of it.
    fn attempt(&mut self) -> impl Future<Output = Step<Self::Output, Self::Error>> + Send;

    /// The error after `attempts` attempts, the last of which failed with `last`.
    fn gave_up(&self, attempts: u32, last: Transient) -> Self::Error;

    /// Whether the request may be sent again after a transient failure. A request that
    /// must not be repeated blindly (a POST that creates, with nothing to look for) says
    /// no and gives up after its first failure, unless that was a 429 (the server did
    /// nothing with it).
    fn repeatable(&self) -> bool {
        true
    }

    /// The meter that times this exchange's attempts and counts its 429s, if any.
    fn meter(&self) -> Option<&super::Meter> {
        None
    }

    /// Called before waiting `delay` after failed attempt number `attempt`, to log and count.
    fn waiting(&self, attempt: u32, last: &Transient, delay: Duration) {
        let _ = (attempt, last, delay);
    }

    /// Called after the wait, before the request goes out again. A create whose answer
    /// was lost may have been carried out: it looks for what it would make, and what it
    /// finds ends the exchange instead of a second create. Anything to renew before the
    /// next attempt (a token) is renewed here.
    fn before_resend(
        &mut self,
        last: &Transient,
    ) -> impl Future<Output = Result<Option<Self::Output>, Self::Error>> + Send {
        let _ = last;
        async { Ok(None) }
    }
}

/// Sends `exchange` until it succeeds, fails for good, or has used `policy.max_attempts`
/// attempts, waiting between attempts as the policy says.
pub async fn run<X: Exchange>(
    policy: &RetryPolicy,
    exchange: &mut X,
) -> Result<X::Output, X::Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        exchange.turn().await;
        let sent = std::time::Instant::now();
        let step = exchange.attempt().await;
        if let Some(meter) = exchange.meter() {
            meter.observe(sent.elapsed());
            if matches!(&step, Step::Retry(last) if last.throttled) {
                meter.throttled();
            }
        }
        let last = match step {
            Step::Done(result) => return result,
            Step::Again => {
                attempt -= 1;
                continue;
            }
            Step::Retry(last) => last,
        };
        // A 429 says the server did nothing with the request: even one that must not be
        // repeated blindly may go again.
        if attempt >= policy.max_attempts || !(exchange.repeatable() || last.throttled) {
            return Err(exchange.gave_up(attempt, last));
        }
        let delay = policy.delay(attempt, last.retry_after);
        exchange.waiting(attempt, &last, delay);
        tokio::time::sleep(delay).await;
        if let Some(output) = exchange.before_resend(&last).await? {
            return Ok(output);
        }
    }
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

    #[test]
    fn backoff_without_jitter_is_exact() {
        let policy = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(2),
            timeout: Duration::from_secs(15),
            jitter: false,
        };
        assert_eq!(policy.delay(1, None), Duration::from_secs(1));
        assert_eq!(policy.delay(2, None), Duration::from_secs(2));
        assert_eq!(policy.delay(3, None), Duration::from_secs(2));
    }

    #[test]
    fn statuses_worth_retrying() {
        assert!(RetryOn::BUSY.covers(429) && RetryOn::BUSY.covers(504));
        assert!(!RetryOn::BUSY.covers(501) && !RetryOn::BUSY.covers(408));
        let any = RetryOn::ThrottlingAndServerErrors;
        assert!(any.covers(429) && any.covers(501) && !any.covers(404) && !any.covers(600));
    }

    /// Fails as scripted, records what the loop asked of it.
    struct Script {
        steps: Vec<Step<&'static str, String>>,
        looked: u32,
        found_on_look: Option<&'static str>,
        repeatable: bool,
    }

    impl Script {
        fn new(steps: Vec<Step<&'static str, String>>) -> Script {
            Script {
                steps,
                looked: 0,
                found_on_look: None,
                repeatable: true,
            }
        }
    }

    impl Exchange for Script {
        type Output = &'static str;
        type Error = String;

        async fn attempt(&mut self) -> Step<&'static str, String> {
            if self.steps.is_empty() {
                return Step::Retry(Transient::new("out of script".into()));
            }
            self.steps.remove(0)
        }

        fn gave_up(&self, attempts: u32, last: Transient) -> String {
            format!("gave up after {attempts}: {}", last.detail)
        }

        fn repeatable(&self) -> bool {
            self.repeatable
        }

        fn waiting(&self, attempt: u32, _: &Transient, _: Duration) {
            assert!(attempt > 0);
        }

        async fn before_resend(&mut self, _: &Transient) -> Result<Option<&'static str>, String> {
            self.looked += 1;
            Ok(self.found_on_look)
        }
    }

    fn quick(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            ..RetryPolicy::default()
        }
    }

    fn failure(detail: &str) -> Step<&'static str, String> {
        Step::Retry(Transient::new(detail.into()))
    }

    #[tokio::test]
    async fn the_loop_counts_attempts_but_not_renewals() {
        let mut script = Script::new(vec![failure("a"), Step::Again, failure("b"), failure("c")]);
        let result = run(&quick(3), &mut script).await;
        assert_eq!(result, Err("gave up after 3: c".to_owned()));
        assert_eq!(script.looked, 2);

        let mut script = Script::new(vec![failure("a"), Step::Done(Ok("fine"))]);
        assert_eq!(run(&quick(3), &mut script).await, Ok("fine"));
        let mut script = Script::new(vec![Step::Done(Err("refused".into()))]);
        assert_eq!(run(&quick(3), &mut script).await, Err("refused".into()));
    }

    #[tokio::test]
    async fn a_request_that_must_not_be_repeated_is_sent_once() {
        let mut script = Script::new(vec![failure("lost"), Step::Done(Ok("twice"))]);
        script.repeatable = false;
        let result = run(&quick(5), &mut script).await;
        assert_eq!(result, Err("gave up after 1: lost".to_owned()));
        assert_eq!(script.looked, 0);
    }

    #[tokio::test]
    async fn a_request_refused_with_429_goes_again_even_if_it_must_not_be_repeated() {
        let throttled = Step::Retry(Transient {
            throttled: true,
            ..Transient::new("429".into())
        });
        let mut script = Script::new(vec![throttled, Step::Done(Ok("made"))]);
        script.repeatable = false;
        assert_eq!(run(&quick(5), &mut script).await, Ok("made"));
    }

    #[tokio::test]
    async fn what_the_lookup_finds_ends_the_exchange() {
        let mut script = Script::new(vec![failure("lost"), Step::Done(Ok("second"))]);
        script.found_on_look = Some("found");
        assert_eq!(run(&quick(5), &mut script).await, Ok("found"));
        assert_eq!(script.steps.len(), 1);
    }
}
