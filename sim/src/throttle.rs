//! A per-window request limit, as asset systems put on their APIs, with the headers each
//! vendor answers with.
//!
//! The window is fixed, as Laravel's throttle keeps it: it opens with the first request and
//! lasts its length; past the limit every request is answered 429 with `Retry-After` until
//! it closes, and the next request opens a new one. The window's length is an option, so
//! that a test can have a short one and see a client wait it out without sleeping itself.

use std::time::{Duration, Instant, SystemTime};

use serde_json::json;

use crate::server::Reply;

/// Whose headers the limit is told in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Laravel's throttle (Snipe-IT): `X-RateLimit-Limit` and `X-RateLimit-Remaining` on
    /// every answer, and on a 429 `Retry-After` and `X-RateLimit-Reset` (epoch seconds).
    Laravel,
    /// Freshservice: `X-Ratelimit-Total`, `X-Ratelimit-Remaining` and
    /// `X-Ratelimit-Used-CurrentRequest` on every answer, and `Retry-After` on a 429.
    Freshservice,
}

/// A limit of requests per window, and the window now open.
#[derive(Debug, Clone)]
pub struct Throttle {
    /// Requests allowed in one window.
    pub limit: u64,
    /// How long a window lasts (a minute for Laravel and Freshservice).
    pub window: Duration,
    /// Whose headers answer.
    pub style: Style,
    /// Requests answered 429 so far.
    pub refused: u64,
    /// When the open window started, and the requests it let through.
    open: Option<(Instant, u64)>,
}

impl Throttle {
    /// `limit` requests a minute, told in Laravel's headers.
    pub fn per_minute(limit: u64) -> Throttle {
        Throttle {
            limit,
            window: Duration::from_secs(60),
            style: Style::Laravel,
            refused: 0,
            open: None,
        }
    }

    /// Snipe-IT's default: 120 requests a minute (`API_THROTTLE_PER_MINUTE`).
    pub fn snipeit() -> Throttle {
        Throttle::per_minute(120)
    }

    /// So many requests a minute that no test meets the limit, with the headers all the
    /// same.
    pub fn generous() -> Throttle {
        Throttle::per_minute(1_000_000)
    }

    /// The same limit over windows of `window`.
    pub fn window(self, window: Duration) -> Throttle {
        Throttle { window, ..self }
    }

    /// The same limit told in `style`'s headers.
    pub fn style(self, style: Style) -> Throttle {
        Throttle { style, ..self }
    }

    /// Counts a request arriving at `now`: the headers its answer carries, or the 429 that
    /// answers it instead.
    pub fn admit(&mut self, now: Instant) -> Result<Vec<(&'static str, String)>, Reply> {
        let (started, used) = match self.open {
            Some((started, used)) if now < started + self.window => (started, used),
            _ => (now, 0),
        };
        if used >= self.limit {
            self.refused += 1;
            self.open = Some((started, used));
            let left = (started + self.window).saturating_duration_since(now);
            let retry_after = left.as_secs_f64().ceil().max(1.0) as u64;
            let mut reply = Reply::json(429, json!({"message": "Too Many Attempts."}));
            reply.headers = self.headers(0);
            reply.headers.push(("retry-after", retry_after.to_string()));
            if self.style == Style::Laravel {
                let epoch = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs();
                reply
                    .headers
                    .push(("x-ratelimit-reset", (epoch + retry_after).to_string()));
            }
            return Err(reply);
        }
        self.open = Some((started, used + 1));
        Ok(self.headers(self.limit - used - 1))
    }

    fn headers(&self, remaining: u64) -> Vec<(&'static str, String)> {
        match self.style {
            Style::Laravel => vec![
                ("x-ratelimit-limit", self.limit.to_string()),
                ("x-ratelimit-remaining", remaining.to_string()),
            ],
            Style::Freshservice => vec![
                ("x-ratelimit-total", self.limit.to_string()),
                ("x-ratelimit-remaining", remaining.to_string()),
                ("x-ratelimit-used-currentrequest", "1".to_string()),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(headers: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_window_lets_its_limit_through_then_answers_429_until_it_closes() {
        let t0 = Instant::now();
        let mut throttle = Throttle::per_minute(2).window(Duration::from_secs(10));
        let first = throttle.admit(t0).unwrap();
        assert_eq!(header(&first, "x-ratelimit-limit"), Some("2"));
        assert_eq!(header(&first, "x-ratelimit-remaining"), Some("1"));
        let second = throttle.admit(t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(header(&second, "x-ratelimit-remaining"), Some("0"));
        let refused = throttle
            .admit(t0 + Duration::from_millis(2500))
            .unwrap_err();
        assert_eq!(refused.status, 429);
        assert_eq!(header(&refused.headers, "retry-after"), Some("8"));
        assert!(header(&refused.headers, "x-ratelimit-reset").is_some());
        assert_eq!(throttle.refused, 1);
        let next = throttle.admit(t0 + Duration::from_secs(10)).unwrap();
        assert_eq!(header(&next, "x-ratelimit-remaining"), Some("1"));
    }

    #[test]
    fn freshservice_names_its_headers_its_own_way() {
        let t0 = Instant::now();
        let mut throttle = Throttle::per_minute(1).style(Style::Freshservice);
        let first = throttle.admit(t0).unwrap();
        assert_eq!(header(&first, "x-ratelimit-total"), Some("1"));
        assert_eq!(header(&first, "x-ratelimit-used-currentrequest"), Some("1"));
        let refused = throttle.admit(t0).unwrap_err();
        assert_eq!(header(&refused.headers, "retry-after"), Some("60"));
        assert_eq!(header(&refused.headers, "x-ratelimit-reset"), None);
    }
}
