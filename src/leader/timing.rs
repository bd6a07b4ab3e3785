//! The election's clock arithmetic, derived from `leader-election:` and checked once.
//!
//! The holder renews `renew_period` after its last renewal; the Lease expires, for everybody
//! else, `lease_duration` after that renewal. The gap between the two (`slack`) is split in
//! half:
//!
//! * the first half is the renewal's own budget: the PATCH, its retries and our read of the
//!   result must land within it, or the replica demotes itself;
//! * the second half (`margin`) is what is left between the instant a replica stops acting
//!   and the instant any other replica may consider the Lease expired. It absorbs clock skew
//!   between nodes and a gNMI Set admitted just before the deadline still being in flight.
//!
//! So a replica acts only while `now < renewTime + lease_duration - margin`, checked at the
//! instant of every Set, with `margin = (lease_duration - renew_period) / 2`. With the
//! defaults we suggest (15 s lease, 5 s renew) the margin is 5 s.

use std::time::Duration;

use super::LeaderError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub lease_duration: Duration,
    pub renew_period: Duration,
    /// Time between self-demotion and the Lease's expiry (see the module doc).
    pub margin: Duration,
    /// How often the Lease is read back to learn when it was last renewed. Half the margin,
    /// so a renewal is seen well before the previous deadline.
    pub poll: Duration,
}

impl Timing {
    /// kube-lease-manager counts in whole seconds and needs `0 < renew < lease`, so the
    /// config must say so; a clear error here beats a silently rounded lease.
    pub fn new(lease_duration: Duration, renew_period: Duration) -> Result<Self, LeaderError> {
        whole_seconds("lease-duration", lease_duration)?;
        whole_seconds("renew-period", renew_period)?;
        if renew_period >= lease_duration {
            return Err(LeaderError::Config {
                key: "renew-period",
                message: format!(
                    "must be shorter than lease-duration ({}s), got {}s",
                    lease_duration.as_secs(),
                    renew_period.as_secs()
                ),
            });
        }
        let margin = (lease_duration - renew_period) / 2;
        Ok(Timing { lease_duration, renew_period, margin, poll: margin / 2 })
    }

    pub fn lease_seconds(&self) -> u64 {
        self.lease_duration.as_secs()
    }

    /// kube-lease-manager's "grace": how long before expiry the holder renews.
    pub fn grace_seconds(&self) -> u64 {
        (self.lease_duration - self.renew_period).as_secs()
    }
}

fn whole_seconds(key: &'static str, d: Duration) -> Result<(), LeaderError> {
    if d.subsec_nanos() != 0 || d.is_zero() {
        return Err(LeaderError::Config {
            key,
            message: format!("must be a whole number of seconds, at least 1s, got {d:?}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn margin_is_half_the_slack_and_poll_half_the_margin() {
        let t = Timing::new(secs(15), secs(5)).expect("valid");
        assert_eq!(t.margin, secs(5));
        assert_eq!(t.poll, Duration::from_millis(2500));
        assert_eq!(t.grace_seconds(), 10);
        let t = Timing::new(secs(2), secs(1)).expect("valid");
        assert_eq!(t.margin, Duration::from_millis(500));
        assert_eq!(t.poll, Duration::from_millis(250));
    }

    #[test]
    fn renew_not_shorter_than_lease_is_refused_naming_the_key() {
        let err = Timing::new(secs(5), secs(5)).expect_err("renew == lease");
        assert!(err.to_string().contains("leader-election.renew-period"), "{err}");
        assert!(Timing::new(secs(5), secs(6)).is_err());
    }

    #[test]
    fn fractional_or_zero_durations_are_refused_naming_the_key() {
        let err = Timing::new(Duration::from_millis(2500), secs(1)).expect_err("fractional");
        assert!(err.to_string().contains("leader-election.lease-duration"), "{err}");
        let err = Timing::new(secs(2), Duration::from_millis(500)).expect_err("fractional");
        assert!(err.to_string().contains("leader-election.renew-period"), "{err}");
        assert!(Timing::new(secs(2), Duration::ZERO).is_err());
    }
}
