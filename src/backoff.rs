//! The one backoff of the project: exponential with jitter, never giving up (`backon`).
//! Reconnects, Lease retries, ExaBGP sessions and Set re-evaluations all use it, so
//! "how long until the next try" has one meaning everywhere.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// Doubling from `min` up to `max`, each delay with up to its own length of jitter added.
pub fn exponential(min: Duration, max: Duration) -> ExponentialBuilder {
    ExponentialBuilder::default().with_min_delay(min).with_max_delay(max).with_jitter().without_max_times()
}

/// A running backoff that can be reset after a success.
#[derive(Debug)]
pub struct Backoff {
    builder: ExponentialBuilder,
    delays: ExponentialBackoff,
    failures: u32,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        let builder = exponential(min, max);
        Backoff { delays: builder.build(), builder, failures: 0 }
    }

    /// Records a failure and returns how long to wait before the next attempt.
    pub fn failed(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        // `without_max_times` makes the iterator endless; the fallback is never reached.
        self.delays.next().unwrap_or(Duration::from_secs(1))
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    pub fn reset(&mut self) {
        self.delays = self.builder.build();
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_jitter_and_resets() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(1));
        let mut b = Backoff::new(min, max);
        let waits: Vec<Duration> = (0..10).map(|_| b.failed()).collect();
        assert!(waits[0] >= min && waits[0] <= 2 * min, "first wait {:?}", waits[0]);
        // Jitter adds at most the delay itself on top of the capped delay.
        assert!(waits.iter().all(|w| *w <= 2 * max), "{waits:?}");
        assert!(waits[9] >= max, "the cap is reached: {:?}", waits[9]);
        assert_eq!(b.failures(), 10);
        b.reset();
        assert_eq!(b.failures(), 0);
        assert!(b.failed() <= 2 * min);
    }
}
