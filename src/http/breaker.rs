//! A circuit breaker for one server: after enough failed attempts in a row that are the
//! server's doing (no answer, a timeout, a 5xx), further requests fail at once instead of
//! each spending its whole retry budget on a server that is down. One request, the probe,
//! is let through after a pause: if it gets an answer, the breaker closes and everything
//! goes on; if not, every request from then on fails at once.
//!
//! Only answers count as health: a 4xx is the server answering about one request, and
//! closes the breaker like a success. Which answers count is the caller's choice (the
//! targets count answers to writes only).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use crate::http::RetryPolicy;

/// Failed attempts in a row, across all requests to one server, that open the breaker.
pub const FAILURES_TO_OPEN: u32 = 10;

/// One server's breaker, shared by every request made to it.
#[derive(Debug)]
pub struct Breaker {
    in_a_row: AtomicU32,
    open: AtomicBool,
    probe_taken: AtomicBool,
    probe_after: Duration,
}

/// Whether a request may go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// It may (the breaker is closed, or this request is the probe).
    Go,
    /// It may not: the server failed this many attempts in a row, the probe included.
    Refuse(u32),
}

impl Breaker {
    /// A closed breaker whose probe waits eight first backoffs of `policy` (4 s by default,
    /// no more than its longest wait).
    pub fn new(policy: &RetryPolicy) -> Breaker {
        Breaker {
            in_a_row: AtomicU32::new(0),
            open: AtomicBool::new(false),
            probe_taken: AtomicBool::new(false),
            probe_after: policy.base_delay.saturating_mul(8).min(policy.max_delay),
        }
    }

    /// Waits for leave to send an attempt: at once while closed; the first request to ask
    /// once it is open becomes the probe and waits out the pause; the others are refused.
    pub async fn admit(&self) -> Admit {
        if !self.open.load(Ordering::SeqCst) {
            return Admit::Go;
        }
        if self.probe_taken.swap(true, Ordering::SeqCst) {
            return Admit::Refuse(self.in_a_row.load(Ordering::SeqCst));
        }
        tracing::warn!(
            failures = self.in_a_row.load(Ordering::SeqCst),
            "the server keeps failing; one last try in {:.0} s before giving up on it",
            self.probe_after.as_secs_f64()
        );
        tokio::time::sleep(self.probe_after).await;
        Admit::Go
    }

    /// An attempt got an answer: the server is up.
    pub fn answered(&self) {
        self.in_a_row.store(0, Ordering::SeqCst);
        if self.open.swap(false, Ordering::SeqCst) {
            tracing::info!("the server answers again");
        }
        self.probe_taken.store(false, Ordering::SeqCst);
    }

    /// An attempt failed through no fault of the request.
    pub fn failed(&self) {
        let in_a_row = self.in_a_row.fetch_add(1, Ordering::SeqCst) + 1;
        if in_a_row >= FAILURES_TO_OPEN {
            self.open.store(true, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick() -> RetryPolicy {
        RetryPolicy {
            base_delay: Duration::from_millis(1),
            ..RetryPolicy::default()
        }
    }

    #[tokio::test]
    async fn it_opens_after_failures_in_a_row_and_refuses_all_but_the_probe() {
        let breaker = Breaker::new(&quick());
        for _ in 0..FAILURES_TO_OPEN - 1 {
            breaker.failed();
        }
        assert_eq!(breaker.admit().await, Admit::Go);
        breaker.failed();
        // The probe goes; while it is out, and after it failed, the rest are refused.
        assert_eq!(breaker.admit().await, Admit::Go);
        assert_eq!(breaker.admit().await, Admit::Refuse(FAILURES_TO_OPEN));
        breaker.failed();
        assert_eq!(breaker.admit().await, Admit::Refuse(FAILURES_TO_OPEN + 1));
    }

    #[tokio::test]
    async fn an_answer_closes_it_and_resets_the_count() {
        let breaker = Breaker::new(&quick());
        for _ in 0..FAILURES_TO_OPEN {
            breaker.failed();
        }
        assert_eq!(breaker.admit().await, Admit::Go);
        breaker.answered();
        assert_eq!(breaker.admit().await, Admit::Go);
        for _ in 0..FAILURES_TO_OPEN - 1 {
            breaker.failed();
        }
        assert_eq!(breaker.admit().await, Admit::Go);
        assert_eq!(breaker.admit().await, Admit::Go);
    }
}
