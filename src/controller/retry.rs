//! Backoff between attempts to change one target after a failed Set: exponential with
//! full jitter, reset by the first success. It schedules a re-evaluation, never a resend.

use std::time::{Duration, Instant};

pub struct Retry {
    min: Duration,
    max: Duration,
    failures: u32,
    not_before: Option<Instant>,
}

impl Retry {
    pub fn new(min: Duration, max: Duration) -> Self {
        Retry { min, max, failures: 0, not_before: None }
    }

    /// When the next attempt may start, if the last one failed.
    pub fn not_before(&self) -> Option<Instant> {
        self.not_before
    }

    /// The wait is over; the failure count stays until a success.
    pub fn clear_deadline(&mut self) {
        self.not_before = None;
    }

    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.not_before = None;
    }

    /// Record a failure at `now` and return how long to wait before the next attempt.
    pub fn failed(&mut self, now: Instant) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let ceiling = self.min.saturating_mul(1u32 << self.failures.min(16)).min(self.max);
        // Jitter between half and all of the ceiling: spread out, but never collapse to zero.
        let wait = ceiling.mul_f64(0.5 + 0.5 * jitter());
        self.not_before = Some(now + wait);
        wait
    }
}

/// A cheap uniform value in [0, 1) without a dependency: the sub-second clock is noise enough.
fn jitter() -> f64 {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    f64::from(nanos % 1000) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_resets_on_success() {
        let now = Instant::now();
        let mut r = Retry::new(Duration::from_millis(100), Duration::from_secs(1));
        let waits: Vec<Duration> = (0..8).map(|_| r.failed(now)).collect();
        assert!(waits[0] >= Duration::from_millis(100) && waits[0] <= Duration::from_millis(200));
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(1)));
        assert!(waits[7] >= Duration::from_millis(500), "capped ceiling keeps at least half: {:?}", waits[7]);
        assert!(r.not_before().is_some());
        r.succeeded();
        assert_eq!(r.not_before(), None);
        assert!(r.failed(now) <= Duration::from_millis(200));
    }
}
