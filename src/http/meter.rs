//! What the requests to one server cost: how long each attempt took, in a fixed set of
//! buckets, and how many the server answered 429 (too many requests). [`run`](super::run)
//! feeds the meter an [`Exchange`](super::Exchange) names; the run's metrics read it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The upper bounds, in seconds, of the latency buckets (a last bucket takes the rest).
pub const BUCKETS: [f64; 10] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The latencies and 429s of the attempts sent to one server, shared by every request.
#[derive(Debug, Default)]
pub struct Meter {
    /// Attempts per bucket (not cumulative); the last is for those above every bound.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    /// The attempts' time in all, in microseconds.
    micros: AtomicU64,
    /// Attempts answered 429.
    throttled: AtomicU64,
}

/// A meter's figures at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Latency {
    /// Attempts per bucket of [`BUCKETS`], not cumulative, and one more for the rest.
    pub buckets: Vec<u64>,
    /// The attempts' time in all, in seconds.
    pub seconds: f64,
    /// Attempts answered 429.
    pub throttled: u64,
}

impl Latency {
    /// How many attempts were timed.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Adds `other`'s figures to these.
    pub fn add(&mut self, other: &Latency) {
        self.buckets.resize(BUCKETS.len() + 1, 0);
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
        self.seconds += other.seconds;
        self.throttled += other.throttled;
    }
}

impl Meter {
    /// Notes one attempt that took `took`.
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Notes one attempt the server answered 429.
    pub fn throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    /// The figures so far.
    pub fn read(&self) -> Latency {
        Latency {
            buckets: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            seconds: self.micros.load(Ordering::Relaxed) as f64 / 1e6,
            throttled: self.throttled.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_land_in_their_bucket_and_add_up() {
        let meter = Meter::default();
        meter.observe(Duration::from_millis(5));
        meter.observe(Duration::from_millis(100));
        meter.observe(Duration::from_secs(60));
        meter.throttled();
        let read = meter.read();
        assert_eq!(read.buckets.len(), BUCKETS.len() + 1);
        assert_eq!(
            (read.buckets[0], read.buckets[3], read.buckets[10]),
            (1, 1, 1)
        );
        assert_eq!((read.count(), read.throttled), (3, 1));
        assert!((read.seconds - 60.105).abs() < 1e-6);
        let mut total = Latency::default();
        total.add(&read);
        total.add(&read);
        assert_eq!((total.count(), total.throttled), (6, 2));
    }
}
