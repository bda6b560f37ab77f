//! How fast requests may go to one server, shared by every request to it.
//!
//! Asset systems limit their APIs per token: Snipe-IT (Laravel's throttle) to 120 requests a
//! minute unless its admin changed it, Freshservice to 100–500 a minute by plan. A
//! [`Pacer`] starts at the limit the admin or the API description gives ([`Rate`]) and then
//! follows what the server says on each answer:
//!
//! - `X-RateLimit-Limit` (Laravel) or `X-Ratelimit-Total` (Freshservice): the server's own
//!   limit, counted over the period of the configured one (a minute for both);
//! - `X-RateLimit-Remaining` / `X-Ratelimit-Remaining`: how many requests are left in the
//!   server's window. When the reset time is known the remaining requests are spread until
//!   then, and none is sent once they are used up;
//! - `X-RateLimit-Reset`: when the window starts over, as epoch seconds (Laravel) or seconds
//!   from now. Without it, the answer to the first request of a window (remaining one less
//!   than the limit) starts the window's clock;
//! - a 429's `Retry-After`: every request waits that long, not only the one refused.
//!
//! Requests are spaced evenly at the rate, never in bursts. The state is behind one lock
//! and every decision takes the time as an argument, so the rules are tested without
//! sleeping.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::HeaderMap;

/// A number of requests per period: `120/min`, `20/s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed in each period (at least 1).
    pub requests: u32,
    /// The period: a second or a minute.
    pub per: Duration,
}

impl Rate {
    /// `n` requests a second.
    pub fn per_second(n: u32) -> Rate {
        Rate {
            requests: n.max(1),
            per: Duration::from_secs(1),
        }
    }

    /// `n` requests a minute.
    pub fn per_minute(n: u32) -> Rate {
        Rate {
            requests: n.max(1),
            per: Duration::from_secs(60),
        }
    }

    /// Reads `N` (per second, as older configs write it), `N/s` or `N/min`; `None` for
    /// anything else or a count of 0.
    pub fn parse(text: &str) -> Option<Rate> {
        let (count, unit) = match text.split_once('/') {
            Some((count, unit)) => (count.trim(), unit.trim()),
            None => (text.trim(), "s"),
        };
        let requests = count.parse::<u32>().ok().filter(|n| *n > 0)?;
        match unit {
            "s" | "sec" | "second" => Some(Rate::per_second(requests)),
            "min" | "minute" => Some(Rate::per_minute(requests)),
            _ => None,
        }
    }

    /// Requests per second, for comparing rates of different periods.
    pub fn per_sec(&self) -> f64 {
        f64::from(self.requests.max(1)) / self.per.as_secs_f64().max(1e-9)
    }

    /// The time between two requests sent evenly at this rate.
    pub fn interval(&self) -> Duration {
        self.per / self.requests.max(1)
    }

    /// How long `n` requests take at this rate.
    pub fn time_for(&self, n: u64) -> Duration {
        Duration::from_secs_f64(n as f64 / self.per_sec())
    }

    /// The slower of two rates.
    pub fn slower(self, other: Rate) -> Rate {
        if other.per_sec() < self.per_sec() {
            other
        } else {
            self
        }
    }

    /// The unit as written in messages and configs: `s` or `min`.
    fn unit(&self) -> &'static str {
        if self.per == Duration::from_secs(60) {
            "min"
        } else {
            "s"
        }
    }
}

impl fmt::Display for Rate {
    /// `120 requests/min`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} requests/{}", self.requests, self.unit())
    }
}

/// What one answer says of the server's budget.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Budget {
    /// The server's limit per window.
    pub limit: Option<u32>,
    /// Requests left in the window.
    pub remaining: Option<u32>,
    /// How long until the window starts over.
    pub reset: Option<Duration>,
    /// How long the server asks every request to wait (a 429's `Retry-After`).
    pub retry_after: Option<Duration>,
}

impl Budget {
    /// The budget headers of an answer, in Laravel's or Freshservice's names; `now` is the
    /// wall clock, for a reset given as epoch seconds.
    pub fn of(headers: &HeaderMap, now: SystemTime) -> Budget {
        let number = |names: &[&str]| {
            names.iter().find_map(|name| {
                headers
                    .get(*name)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
            })
        };
        let small = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        Budget {
            limit: number(&["x-ratelimit-limit", "x-ratelimit-total"]).map(small),
            remaining: number(&["x-ratelimit-remaining"]).map(small),
            reset: number(&["x-ratelimit-reset"]).and_then(|n| reset_in(n, now)),
            retry_after: super::retry_after(headers),
        }
    }
}

/// A reset given as epoch seconds (large numbers) or seconds from now, as a wait; a day at
/// most, so that nonsense is not trusted.
fn reset_in(value: u64, now: SystemTime) -> Option<Duration> {
    const EPOCH_FROM: u64 = 1_000_000_000;
    let wait = if value >= EPOCH_FROM {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(value);
        at.duration_since(now).unwrap_or(Duration::ZERO)
    } else {
        Duration::from_secs(value)
    };
    (wait <= Duration::from_secs(86_400)).then_some(wait)
}

/// Paces the requests to one server; shared by all of them.
#[derive(Debug)]
pub struct Pacer {
    state: Mutex<Pace>,
    /// Wakes the waiting requests when what the server says changes their turn.
    changed: tokio::sync::Notify,
}

impl Pacer {
    /// A pacer at `admin`'s rate (the config's `rate_limit`) if given, else at `vendor`'s
    /// (the API description's default); with neither, it follows only what the server says.
    /// A 429 pauses the requests for at most `longest_pause`, whatever the server asks.
    pub fn new(admin: Option<Rate>, vendor: Option<Rate>, longest_pause: Duration) -> Pacer {
        let mut pace = Pace::new(admin, vendor);
        pace.longest_pause = longest_pause;
        Pacer {
            state: Mutex::new(pace),
            changed: tokio::sync::Notify::new(),
        }
    }

    /// The rate requests go at now: the configured one, or the server's limit.
    pub fn rate(&self) -> Option<Rate> {
        self.lock().rate()
    }

    /// Returns when the next request may be sent, and counts it as sent.
    pub async fn wait(&self) {
        loop {
            let notified = self.changed.notified();
            let Some(at) = self.lock().take(Instant::now()) else {
                return;
            };
            tokio::select! {
                () = tokio::time::sleep_until(at.into()) => {}
                () = notified => {}
            }
        }
    }

    /// Notes what an answer of `status` says of the budget.
    pub fn observe(&self, status: u16, headers: &HeaderMap) {
        let budget = Budget::of(headers, SystemTime::now());
        if budget == Budget::default() && status != 429 {
            return;
        }
        self.lock().learn(Instant::now(), status == 429, budget);
        self.changed.notify_waiters();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pace> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Without a `Retry-After`, how long a 429 pauses every request.
const PAUSE_WITHOUT_WAIT: Duration = Duration::from_secs(1);

/// A pacer's state, and its rules with the time given.
#[derive(Debug)]
pub struct Pace {
    admin: Option<Rate>,
    vendor: Option<Rate>,
    /// The limit the server gave, per the period of the configured rate.
    server_limit: Option<u32>,
    /// The turn of the last request sent: the next one's comes an interval later, at the
    /// rate in force when it asks (so a faster limit learnt meanwhile applies at once).
    last: Option<Instant>,
    /// No request goes before this (after a 429).
    paused_until: Option<Instant>,
    /// Requests left in the server's window, counted down as they are sent.
    remaining: Option<u32>,
    /// When the server's window starts over, when known.
    reset_at: Option<Instant>,
    /// The longest a 429 pauses the requests.
    longest_pause: Duration,
}

impl Pace {
    /// A pace at `admin`'s rate, else `vendor`'s, from `now`.
    pub fn new(admin: Option<Rate>, vendor: Option<Rate>) -> Pace {
        Pace {
            admin,
            vendor,
            server_limit: None,
            last: None,
            paused_until: None,
            remaining: None,
            reset_at: None,
            longest_pause: Duration::from_secs(120),
        }
    }

    /// The rate in force: the server's limit over the configured period (capped by the
    /// admin's rate when set), else the admin's, else the vendor's.
    pub fn rate(&self) -> Option<Rate> {
        let base = self.admin.or(self.vendor)?;
        match self.server_limit {
            Some(limit) => {
                let server = Rate {
                    requests: limit.max(1),
                    per: base.per,
                };
                Some(self.admin.map_or(server, |admin| admin.slower(server)))
            }
            None => Some(base),
        }
    }

    /// The request asking at `now` may go (`None`; it is counted), or must ask again at the
    /// time returned.
    pub fn take(&mut self, now: Instant) -> Option<Instant> {
        if let Some(until) = self.paused_until {
            if now < until {
                return Some(until);
            }
            self.paused_until = None;
        }
        if self.reset_at.is_some_and(|reset| reset <= now) {
            self.reset_at = None;
            self.remaining = None;
        }
        let mut interval = self.rate().map_or(Duration::ZERO, |r| r.interval());
        if let (Some(left), Some(reset)) = (self.remaining, self.reset_at) {
            if left == 0 {
                return Some(reset);
            }
            // Spread what is left of the window evenly until it starts over.
            let from = self.last.unwrap_or(now).min(reset);
            interval = interval.max((reset - from) / left.saturating_add(1));
        }
        let due = self.last.map_or(now, |last| last + interval);
        if now < due {
            return Some(due);
        }
        // A request woken a little late keeps to the grid; one after a quiet spell starts
        // a new one, so that no burst makes up for the quiet.
        self.last = Some(if now - due < interval { due } else { now });
        if let Some(left) = &mut self.remaining {
            *left = left.saturating_sub(1);
        }
        None
    }

    /// Takes in what an answer at `now` said: a 429 (`throttled`) pauses every request for
    /// its `Retry-After`; the limit, the remaining requests and the reset set the pace.
    pub fn learn(&mut self, now: Instant, throttled: bool, budget: Budget) {
        if let Some(limit) = budget.limit {
            self.server_limit = Some(limit);
        }
        let reset = budget.reset.map(|wait| now + wait);
        if throttled {
            let wait = budget
                .retry_after
                .or(budget.reset)
                .unwrap_or(PAUSE_WITHOUT_WAIT)
                .min(self.longest_pause);
            let until = now + wait;
            self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
            self.remaining = Some(0);
            self.reset_at = Some(until);
            return;
        }
        if let Some(reset) = reset {
            self.reset_at = Some(reset);
        }
        let Some(left) = budget.remaining else {
            return;
        };
        let first_of_window = budget.limit.is_some_and(|limit| left + 1 >= limit);
        if first_of_window && reset.is_none() {
            // The answer to a window's first request: the window runs for the period of
            // the configured rate from about now (a little later than the server's clock,
            // which is the safe side).
            self.reset_at = self.admin.or(self.vendor).map(|rate| now + rate.per);
            self.remaining = Some(left);
            return;
        }
        self.remaining = match (self.remaining, self.reset_at) {
            // Answers to requests sent before others arrive late: the lower count holds.
            (Some(mine), Some(at)) if at > now => Some(mine.min(left)),
            _ => Some(left),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn rates_are_written_per_second_or_per_minute() {
        assert_eq!(Rate::parse("20"), Some(Rate::per_second(20)));
        assert_eq!(Rate::parse("20/s"), Some(Rate::per_second(20)));
        assert_eq!(Rate::parse(" 600 / min "), Some(Rate::per_minute(600)));
        assert_eq!(Rate::parse("120/minute"), Some(Rate::per_minute(120)));
        for bad in ["", "0", "0/min", "-3", "fast", "10/h", "1.5/s", "/min"] {
            assert_eq!(Rate::parse(bad), None, "{bad}");
        }
        let rate = Rate::per_minute(120);
        assert_eq!(rate.interval(), Duration::from_millis(500));
        assert_eq!(rate.time_for(2040), Duration::from_secs(1020));
        assert_eq!(rate.to_string(), "120 requests/min");
        assert_eq!(Rate::per_second(20).to_string(), "20 requests/s");
        assert_eq!(rate.slower(Rate::per_second(10)), rate);
        assert_eq!(rate.slower(Rate::per_second(1)), Rate::per_second(1));
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn budgets_are_read_in_laravel_and_freshservice_names() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let laravel = headers(&[
            ("X-RateLimit-Limit", "120"),
            ("X-RateLimit-Remaining", "0"),
            ("Retry-After", "17"),
            ("X-RateLimit-Reset", "1700000017"),
        ]);
        assert_eq!(
            Budget::of(&laravel, now),
            Budget {
                limit: Some(120),
                remaining: Some(0),
                reset: Some(Duration::from_secs(17)),
                retry_after: Some(Duration::from_secs(17)),
            }
        );
        let freshservice = headers(&[
            ("X-Ratelimit-Total", "200"),
            ("X-Ratelimit-Remaining", "150"),
            ("X-Ratelimit-Used-CurrentRequest", "1"),
        ]);
        let read = Budget::of(&freshservice, now);
        assert_eq!((read.limit, read.remaining), (Some(200), Some(150)));
        assert_eq!(read.reset, None);
        let nonsense = headers(&[
            ("X-RateLimit-Reset", "99999999999"),
            ("X-RateLimit-Limit", "x"),
        ]);
        assert_eq!(Budget::of(&nonsense, now), Budget::default());
    }

    /// Takes turns from `at` on, jumping to each turn given; the times they went.
    fn turns(pace: &mut Pace, mut at: Instant, n: usize) -> Vec<Instant> {
        let mut went = Vec::new();
        while went.len() < n {
            match pace.take(at) {
                None => went.push(at),
                Some(later) => {
                    assert!(later > at, "a turn in the past");
                    at = later;
                }
            }
        }
        went
    }

    #[test]
    fn requests_are_spaced_at_the_configured_rate() {
        let t0 = Instant::now();
        let mut pace = Pace::new(None, Some(Rate::per_minute(120)));
        let went = turns(&mut pace, t0, 5);
        assert_eq!(went[4] - went[0], Duration::from_secs(2));
        // The admin's rate replaces the vendor's.
        let mut pace = Pace::new(Some(Rate::per_second(10)), Some(Rate::per_minute(120)));
        let went = turns(&mut pace, t0, 11);
        assert_eq!(went[10] - went[0], Duration::from_secs(1));
        // Nothing configured and nothing said: no waiting.
        let mut pace = Pace::new(None, None);
        assert_eq!(turns(&mut pace, t0, 100).last(), Some(&t0));
    }

    #[test]
    fn a_faster_limit_learnt_applies_to_the_requests_already_waiting() {
        let t0 = Instant::now();
        let mut pace = Pace::new(None, Some(Rate::per_minute(120)));
        assert_eq!(pace.take(t0), None);
        assert_eq!(pace.take(t0), Some(t0 + Duration::from_millis(500)));
        let said = Budget {
            limit: Some(6000),
            remaining: Some(5000),
            ..Budget::default()
        };
        pace.learn(t0, false, said);
        let soon = t0 + Duration::from_millis(10);
        assert_eq!(pace.take(t0), Some(soon));
        assert_eq!(pace.take(soon), None);
        // After a quiet spell the next goes at once, the one after an interval later.
        let later = t0 + Duration::from_secs(5);
        assert_eq!(pace.take(later), None);
        assert_eq!(pace.take(later), Some(later + Duration::from_millis(10)));
    }

    #[test]
    fn the_servers_limit_replaces_the_vendors_default_but_not_a_lower_admin_rate() {
        let t0 = Instant::now();
        let said = Budget {
            limit: Some(600),
            remaining: Some(500),
            ..Budget::default()
        };
        let mut pace = Pace::new(None, Some(Rate::per_minute(120)));
        pace.learn(t0, false, said);
        assert_eq!(pace.rate(), Some(Rate::per_minute(600)));
        let mut pace = Pace::new(Some(Rate::per_minute(300)), Some(Rate::per_minute(120)));
        pace.learn(t0, false, said);
        assert_eq!(pace.rate(), Some(Rate::per_minute(300)));
        let mut pace = Pace::new(Some(Rate::per_minute(900)), None);
        pace.learn(t0, false, said);
        assert_eq!(pace.rate(), Some(Rate::per_minute(600)));
    }

    #[test]
    fn a_429_pauses_every_request_for_its_retry_after() {
        let t0 = Instant::now();
        let mut pace = Pace::new(None, None);
        assert_eq!(pace.take(t0), None);
        let throttled = Budget {
            retry_after: Some(Duration::from_secs(3)),
            ..Budget::default()
        };
        pace.learn(t0, true, throttled);
        let resume = t0 + Duration::from_secs(3);
        for _ in 0..5 {
            assert_eq!(pace.take(t0 + Duration::from_secs(1)), Some(resume));
        }
        assert_eq!(pace.take(resume), None);
        assert_eq!(pace.take(resume), None);
        // Without a Retry-After the pause is a second; an absurd one is cut short.
        pace.learn(resume, true, Budget::default());
        assert_eq!(pace.take(resume), Some(resume + PAUSE_WITHOUT_WAIT));
        let day = Budget {
            retry_after: Some(Duration::from_secs(86_400)),
            ..Budget::default()
        };
        pace.learn(resume, true, day);
        assert_eq!(pace.take(resume), Some(resume + Duration::from_secs(120)));
    }

    #[test]
    fn the_remaining_requests_are_spread_until_the_reset() {
        let t0 = Instant::now();
        let mut pace = Pace::new(None, None);
        pace.learn(
            t0,
            false,
            Budget {
                limit: Some(100),
                remaining: Some(4),
                reset: Some(Duration::from_secs(8)),
                retry_after: None,
            },
        );
        let went = turns(&mut pace, t0, 5);
        // Four spread over the eight seconds, the fifth once the window starts over.
        assert_eq!(went[1] - went[0], Duration::from_secs(2));
        assert_eq!(went[3] - went[2], Duration::from_secs(2));
        assert_eq!(went[4], t0 + Duration::from_secs(8));
    }

    #[test]
    fn a_windows_first_answer_starts_its_clock_when_the_server_gives_no_reset() {
        let t0 = Instant::now();
        let mut pace = Pace::new(None, Some(Rate::per_minute(120)));
        // Laravel's answer to the first request of a window of 3.
        let first = Budget {
            limit: Some(3),
            remaining: Some(2),
            ..Budget::default()
        };
        assert_eq!(pace.take(t0), None);
        pace.learn(t0, false, first);
        assert_eq!(pace.rate(), Some(Rate::per_minute(3)));
        // The two left are spread over the minute, the third waits for the next window.
        let went = turns(&mut pace, t0, 3);
        let at = |s| t0 + Duration::from_secs(s);
        assert_eq!(went, [at(20), at(40), at(60)]);
        // A late answer with a higher count does not give back requests already sent.
        let mut pace = Pace::new(None, Some(Rate::per_minute(120)));
        pace.learn(t0, false, first);
        pace.learn(
            t0,
            false,
            Budget {
                remaining: Some(0),
                ..first
            },
        );
        pace.learn(
            t0,
            false,
            Budget {
                remaining: Some(1),
                ..first
            },
        );
        assert_eq!(pace.take(t0), Some(t0 + Duration::from_secs(60)));
    }
}
