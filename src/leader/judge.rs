//! Who may act, decided from what we know: no I/O, no clock reads (times are arguments).
//!
//! A replica is Leader only while all of these hold:
//! * kube-lease-manager says it holds the Lease (it acquires and renews);
//! * the Lease as last read from the API server names this replica as holder;
//! * `now` is before that Lease's `renewTime + leaseDurationSeconds - margin`.
//!
//! The last point is what makes a cut-off replica stop by itself: the crate keeps saying
//! "leader" while its renewals fail, but the deadline only moves when a renewal is read
//! back from the server.

use std::time::{Duration, Instant, SystemTime};

use super::Role;

/// The Lease as read from the API server, reduced to what the decision needs.
#[derive(Clone, Debug, PartialEq)]
pub struct LeaseView {
    pub holder: Option<String>,
    /// `renewTime + leaseDurationSeconds`, when both are set.
    pub expires: Option<SystemTime>,
}

#[derive(Debug)]
pub struct Judge {
    identity: String,
    margin: Duration,
    crate_holds: bool,
    holder: Option<String>,
    /// When this replica must stop acting, while the last read Lease names it.
    act_until: Option<Instant>,
    stopped: bool,
    /// No election: always Leader (until stopped).
    standalone: bool,
    role: Role,
    since: SystemTime,
}

impl Judge {
    pub fn new(identity: String, margin: Duration, now: SystemTime) -> Self {
        Judge {
            identity,
            margin,
            crate_holds: false,
            holder: None,
            act_until: None,
            stopped: false,
            standalone: false,
            role: Role::Standby,
            since: now,
        }
    }

    pub fn standalone(identity: String, now: SystemTime) -> Self {
        let holder = Some(identity.clone());
        Judge { standalone: true, holder, role: Role::Leader, ..Judge::new(identity, Duration::ZERO, now) }
    }

    pub fn crate_says(&mut self, holds: bool) {
        self.crate_holds = holds;
    }

    /// Records a Lease read back from the server. `now`/`wall` are the same instant on the
    /// monotonic and the wall clock; the deadline is converted once, here.
    pub fn observe(&mut self, lease: LeaseView, now: Instant, wall: SystemTime) {
        self.act_until = match (&lease.holder, lease.expires) {
            (Some(h), Some(expires)) if *h == self.identity => {
                let stop_at = expires.checked_sub(self.margin).unwrap_or(SystemTime::UNIX_EPOCH);
                // Already past: `now` itself is a deadline that has passed.
                Some(stop_at.duration_since(wall).map_or(now, |ahead| now + ahead))
            }
            _ => None,
        };
        self.holder = lease.holder;
    }

    pub fn stop(&mut self) {
        self.stopped = true;
    }

    pub fn role_at(&self, now: Instant) -> Role {
        let elected = self.crate_holds && self.act_until.is_some_and(|until| now < until);
        let acting = !self.stopped && (self.standalone || elected);
        if acting { Role::Leader } else { Role::Standby }
    }

    /// The instant a Leader must demote itself, if it is Leader now.
    pub fn deadline(&self, now: Instant) -> Option<Instant> {
        if self.role_at(now) == Role::Leader { self.act_until } else { None }
    }

    /// Re-evaluates the role; returns it when it changed since the last call.
    pub fn settle(&mut self, now: Instant, wall: SystemTime) -> Option<Role> {
        let role = self.role_at(now);
        if role == self.role {
            return None;
        }
        self.role = role;
        self.since = wall;
        Some(role)
    }

    pub fn holder(&self) -> Option<&str> {
        self.holder.as_deref()
    }

    /// The last settled role and when it began.
    pub fn settled(&self) -> (Role, SystemTime) {
        (self.role, self.since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARGIN: Duration = Duration::from_millis(500);

    fn judge() -> (Judge, Instant, SystemTime) {
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        (Judge::new("a".into(), MARGIN, wall), Instant::now(), wall)
    }

    fn held_by(who: &str, expires: SystemTime) -> LeaseView {
        LeaseView { holder: Some(who.into()), expires: Some(expires) }
    }

    #[test]
    fn leader_until_expiry_minus_margin_then_standby() {
        let (mut j, now, wall) = judge();
        j.crate_says(true);
        j.observe(held_by("a", wall + Duration::from_secs(2)), now, wall);
        assert_eq!(j.settle(now, wall), Some(Role::Leader));
        let stop = now + Duration::from_millis(1500);
        assert_eq!(j.deadline(now), Some(stop));
        assert_eq!(j.role_at(stop - Duration::from_millis(1)), Role::Leader);
        assert_eq!(j.role_at(stop), Role::Standby);
        assert_eq!(j.deadline(stop), None);
        assert_eq!(j.settle(stop, wall + Duration::from_millis(1500)), Some(Role::Standby));
        assert_eq!(j.settled().1, wall + Duration::from_millis(1500));
    }

    #[test]
    fn a_renewal_read_back_moves_the_deadline() {
        let (mut j, now, wall) = judge();
        j.crate_says(true);
        j.observe(held_by("a", wall + Duration::from_secs(2)), now, wall);
        let later = now + Duration::from_secs(1);
        j.observe(held_by("a", wall + Duration::from_secs(3)), later, wall + Duration::from_secs(1));
        assert_eq!(j.deadline(later), Some(now + Duration::from_millis(2500)));
    }

    #[test]
    fn crate_alone_or_lease_alone_is_not_enough() {
        let (mut j, now, wall) = judge();
        j.crate_says(true);
        assert_eq!(j.role_at(now), Role::Standby, "no lease read yet");
        j.observe(held_by("b", wall + Duration::from_secs(2)), now, wall);
        assert_eq!(j.role_at(now), Role::Standby, "held by another");
        assert_eq!(j.holder(), Some("b"));
        j.observe(held_by("a", wall + Duration::from_secs(2)), now, wall);
        j.crate_says(false);
        assert_eq!(j.role_at(now), Role::Standby, "crate lost it");
    }

    #[test]
    fn an_already_expired_lease_or_a_stop_means_standby() {
        let (mut j, now, wall) = judge();
        j.crate_says(true);
        j.observe(held_by("a", wall + Duration::from_millis(400)), now, wall);
        assert_eq!(j.role_at(now), Role::Standby, "inside the margin");
        j.observe(LeaseView { holder: Some("a".into()), expires: None }, now, wall);
        assert_eq!(j.role_at(now), Role::Standby, "no renewTime");
        j.observe(held_by("a", wall + Duration::from_secs(2)), now, wall);
        assert_eq!(j.role_at(now), Role::Leader);
        j.stop();
        assert_eq!(j.role_at(now), Role::Standby);
    }

    #[test]
    fn standalone_is_leader_without_a_lease_until_stopped() {
        let wall = SystemTime::UNIX_EPOCH;
        let mut j = Judge::standalone("solo".into(), wall);
        let later = Instant::now() + Duration::from_secs(3600 * 24 * 365);
        assert_eq!(j.role_at(later), Role::Leader);
        assert_eq!(j.deadline(later), None);
        assert_eq!(j.settled().0, Role::Leader);
        j.stop();
        assert_eq!(j.role_at(later), Role::Standby);
    }
}
