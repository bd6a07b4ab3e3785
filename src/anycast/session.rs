//! Bookkeeping of what ExaBGP holds for each service versus what should be there, and
//! which command to send next. No I/O and no clock reads: `now` is passed in, so ACK
//! timeouts, errors and retries are unit-tested without sleeping.
//!
//! Rules:
//! * one command in flight at a time (ExaBGP answers in order, one `done`/`error` each);
//! * a command is sent only when the desired route differs from what is in place, so an
//!   announcement already in place is never repeated;
//! * `error` keeps the old in-place value and retries after a backoff (1 s doubling to
//!   `retry_max`);
//! * an ACK that does not come within `ack_timeout` is reported (and the session marked
//!   unresponsive) but the command stays outstanding: since ExaBGP answers in order, a late
//!   ACK still belongs to it, whereas sending more would pair later ACKs with the wrong
//!   commands. Newer desired states are coalesced meanwhile (only the latest is sent).

use std::time::{Duration, Instant};

use super::protocol;
use super::machine::{Desired, Route};

/// What ExaBGP holds for a service, as far as we know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InPlace {
    /// At start (a previous incarnation may have left a route) and after a neighbor
    /// came back up (ExaBGP may have lost it).
    Unknown,
    Withdrawn,
    Announced(Route),
}

impl InPlace {
    pub fn describe(&self) -> String {
        match self {
            InPlace::Unknown => "unknown".into(),
            InPlace::Withdrawn => "withdrawn".into(),
            InPlace::Announced(r) => protocol::announce(r),
        }
    }
}

#[derive(Clone, Debug)]
struct Slot {
    desired: Desired,
    in_place: InPlace,
    /// Used to withdraw a route whose in-place value is unknown.
    template: Route,
    errors: u32,
    retry_at: Option<Instant>,
}

#[derive(Clone, Debug)]
struct InFlight {
    slot: usize,
    /// In place once ExaBGP says `done`.
    outcome: InPlace,
    sent_at: Instant,
    /// ACK timeouts reported so far for this command.
    timeouts: u32,
}

/// What happened to an ACK, for logging and counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AckOutcome {
    Applied {
        slot: usize,
    },
    Failed {
        slot: usize,
        retry_in: Duration,
    },
    /// An ACK with nothing outstanding (ExaBGP was answering a command of an earlier
    /// incarnation, or acks were assumed off).
    Unexpected,
}

#[derive(Clone, Debug)]
pub struct Session {
    slots: Vec<Slot>,
    in_flight: Option<InFlight>,
    ack_timeout: Duration,
    retry_max: Duration,
    draining: bool,
    pub commands_sent: u64,
    pub errors: u64,
    pub ack_timeouts: u64,
}

impl Session {
    /// `templates[i]` is service i's up route (same prefix and next-hop as all its routes).
    pub fn new(templates: Vec<Route>, ack_timeout: Duration, retry_max: Duration) -> Self {
        let slots = templates
            .into_iter()
            .map(|template| Slot {
                desired: Desired::Undecided,
                in_place: InPlace::Unknown,
                template,
                errors: 0,
                retry_at: None,
            })
            .collect();
        Session {
            slots,
            in_flight: None,
            ack_timeout,
            retry_max,
            draining: false,
            commands_sent: 0,
            errors: 0,
            ack_timeouts: 0,
        }
    }

    pub fn set_desired(&mut self, slot: usize, desired: Desired) {
        if self.draining {
            return;
        }
        if let Some(s) = self.slots.get_mut(slot)
            && s.desired != desired
        {
            s.desired = desired;
            // A new wish is not held back by the backoff of an old one that failed.
            s.retry_at = None;
            s.errors = 0;
        }
    }

    /// Everything we announced may be gone (a neighbor came back up): announce it again.
    pub fn neighbor_up(&mut self) {
        for s in &mut self.slots {
            if matches!(s.in_place, InPlace::Announced(_)) {
                s.in_place = InPlace::Unknown;
            }
        }
    }

    /// SIGTERM: from now on everything should be withdrawn, including unknown ones.
    pub fn drain(&mut self) {
        self.draining = true;
        for s in &mut self.slots {
            s.desired = Desired::Withdrawn;
            s.retry_at = None;
        }
    }

    /// The next command to write, if one is due; it becomes the command in flight.
    pub fn next_command(&mut self, now: Instant) -> Option<String> {
        if self.in_flight.is_some() {
            return None;
        }
        for (i, s) in self.slots.iter_mut().enumerate() {
            if s.retry_at.is_some_and(|t| t > now) {
                continue;
            }
            let (line, outcome) = match (&s.desired, &s.in_place) {
                (Desired::Undecided, _) | (Desired::Withdrawn, InPlace::Withdrawn) => continue,
                (Desired::Announced(want), InPlace::Announced(have)) if want == have => continue,
                (Desired::Announced(want), _) => (protocol::announce(want), InPlace::Announced(want.clone())),
                (Desired::Withdrawn, InPlace::Announced(have)) => (protocol::withdraw(have), InPlace::Withdrawn),
                (Desired::Withdrawn, InPlace::Unknown) => (protocol::withdraw(&s.template), InPlace::Withdrawn),
            };
            self.in_flight = Some(InFlight { slot: i, outcome, sent_at: now, timeouts: 0 });
            self.commands_sent += 1;
            return Some(line);
        }
        None
    }

    /// `done` (ok) or `error` from ExaBGP.
    pub fn ack(&mut self, ok: bool, now: Instant) -> AckOutcome {
        let Some(f) = self.in_flight.take() else {
            return AckOutcome::Unexpected;
        };
        let s = &mut self.slots[f.slot];
        if ok {
            s.in_place = f.outcome;
            s.errors = 0;
            s.retry_at = None;
            AckOutcome::Applied { slot: f.slot }
        } else {
            self.errors += 1;
            let retry_in = backoff(s.errors, self.retry_max);
            s.errors = s.errors.saturating_add(1);
            s.retry_at = Some(now + retry_in);
            AckOutcome::Failed { slot: f.slot, retry_in }
        }
    }

    /// For sessions without ACKs (`api.ack = false`): the write itself counts as applied.
    pub fn assume_applied(&mut self, now: Instant) {
        let _ = self.ack(true, now);
    }

    /// If the command in flight has waited another `ack_timeout`, count and report it
    /// (returns its slot and how long it has waited).
    pub fn check_ack_timeout(&mut self, now: Instant) -> Option<(usize, Duration)> {
        let f = self.in_flight.as_mut()?;
        let waited = now.saturating_duration_since(f.sent_at);
        if waited >= self.ack_timeout * (f.timeouts + 1) {
            f.timeouts += 1;
            self.ack_timeouts += 1;
            return Some((f.slot, waited));
        }
        None
    }

    /// True while the command in flight is overdue.
    pub fn unresponsive(&self) -> bool {
        self.in_flight.as_ref().is_some_and(|f| f.timeouts > 0)
    }

    /// When the loop must wake up without input: a retry or an ACK deadline.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let ack = self.in_flight.as_ref().map(|f| f.sent_at + self.ack_timeout * (f.timeouts + 1));
        let retry = if self.in_flight.is_none() { self.slots.iter().filter_map(|s| s.retry_at).min() } else { None };
        [ack, retry].into_iter().flatten().min()
    }

    /// Draining and nothing left to withdraw or wait for.
    pub fn drained(&self) -> bool {
        self.draining && self.in_flight.is_none() && self.slots.iter().all(|s| s.in_place == InPlace::Withdrawn)
    }

    pub fn in_place(&self, slot: usize) -> Option<&InPlace> {
        self.slots.get(slot).map(|s| &s.in_place)
    }
}

fn backoff(errors: u32, max: Duration) -> Duration {
    Duration::from_secs(1).saturating_mul(1u32 << errors.min(16)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anycast::config::{Attributes, NextHop};

    fn route(med: u32) -> Route {
        Route {
            prefix: "192.0.2.1/32".parse().unwrap(),
            next_hop: NextHop::SelfAddress,
            attrs: Attributes { med: Some(med), ..Default::default() },
        }
    }

    fn session() -> Session {
        Session::new(vec![route(100)], Duration::from_secs(5), Duration::from_secs(30))
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn undecided_sends_nothing_then_announces_once() {
        let t = Instant::now();
        let mut s = session();
        assert_eq!(s.next_command(t), None);
        s.set_desired(0, Desired::Announced(route(100)));
        assert_eq!(s.next_command(t).as_deref(), Some("announce route 192.0.2.1/32 next-hop self med 100"));
        assert_eq!(s.next_command(t), None, "one command in flight");
        assert_eq!(s.ack(true, t), AckOutcome::Applied { slot: 0 });
        // Same wish again: never repeated.
        s.set_desired(0, Desired::Announced(route(100)));
        assert_eq!(s.next_command(t), None);
        assert_eq!(s.commands_sent, 1);
    }

    #[test]
    fn withdraw_uses_what_was_announced_and_unknown_uses_the_template() {
        let t = Instant::now();
        let mut s = session();
        s.set_desired(0, Desired::Withdrawn);
        assert_eq!(s.next_command(t).as_deref(), Some("withdraw route 192.0.2.1/32 next-hop self med 100"));
        s.ack(true, t);
        assert_eq!(s.next_command(t), None);
        s.set_desired(0, Desired::Announced(route(1000)));
        s.next_command(t);
        s.ack(true, t);
        s.set_desired(0, Desired::Withdrawn);
        assert_eq!(s.next_command(t).as_deref(), Some("withdraw route 192.0.2.1/32 next-hop self med 1000"));
    }

    #[test]
    fn error_keeps_old_state_and_retries_with_backoff() {
        let t = Instant::now();
        let mut s = session();
        s.set_desired(0, Desired::Announced(route(100)));
        s.next_command(t).unwrap();
        assert_eq!(s.ack(false, t), AckOutcome::Failed { slot: 0, retry_in: S });
        assert_eq!(s.in_place(0), Some(&InPlace::Unknown));
        assert_eq!(s.next_command(t), None, "backing off");
        assert_eq!(s.next_wakeup(), Some(t + S));
        let line = s.next_command(t + S).unwrap();
        assert!(line.starts_with("announce"));
        assert_eq!(s.ack(false, t + S), AckOutcome::Failed { slot: 0, retry_in: 2 * S });
        assert_eq!(s.next_command(t + 2 * S), None);
        s.next_command(t + 3 * S).unwrap();
        assert_eq!(s.ack(true, t + 3 * S), AckOutcome::Applied { slot: 0 });
        assert_eq!(s.errors, 2);
    }

    #[test]
    fn backoff_is_capped() {
        assert_eq!(backoff(0, 30 * S), S);
        assert_eq!(backoff(4, 30 * S), 16 * S);
        assert_eq!(backoff(5, 30 * S), 30 * S);
        assert_eq!(backoff(400, 30 * S), 30 * S);
    }

    #[test]
    fn ack_timeout_is_reported_and_a_late_ack_still_matches() {
        let t = Instant::now();
        let mut s = session();
        s.set_desired(0, Desired::Announced(route(100)));
        s.next_command(t).unwrap();
        assert_eq!(s.check_ack_timeout(t + 4 * S), None);
        assert_eq!(s.next_wakeup(), Some(t + 5 * S));
        assert_eq!(s.check_ack_timeout(t + 5 * S), Some((0, 5 * S)));
        assert!(s.unresponsive());
        assert_eq!(s.check_ack_timeout(t + 6 * S), None, "reported once per timeout period");
        assert_eq!(s.next_wakeup(), Some(t + 10 * S));
        // A newer wish is held (coalesced) while the old command is outstanding.
        s.set_desired(0, Desired::Withdrawn);
        assert_eq!(s.next_command(t + 7 * S), None);
        assert_eq!(s.ack(true, t + 8 * S), AckOutcome::Applied { slot: 0 });
        assert!(!s.unresponsive());
        assert_eq!(s.in_place(0), Some(&InPlace::Announced(route(100))));
        assert_eq!(s.next_command(t + 8 * S).as_deref(), Some("withdraw route 192.0.2.1/32 next-hop self med 100"));
        assert_eq!(s.ack_timeouts, 1);
    }

    #[test]
    fn unexpected_ack_is_ignored() {
        let mut s = session();
        assert_eq!(s.ack(true, Instant::now()), AckOutcome::Unexpected);
    }

    #[test]
    fn neighbor_up_reannounces_only_what_was_announced() {
        let t = Instant::now();
        let mut s = Session::new(vec![route(100), route(100)], 5 * S, 30 * S);
        s.set_desired(0, Desired::Announced(route(100)));
        s.set_desired(1, Desired::Withdrawn);
        for _ in 0..2 {
            s.next_command(t).unwrap();
            s.ack(true, t);
        }
        assert_eq!(s.next_command(t), None);
        s.neighbor_up();
        assert_eq!(s.next_command(t).as_deref(), Some("announce route 192.0.2.1/32 next-hop self med 100"));
        s.ack(true, t);
        assert_eq!(s.next_command(t), None, "the withdrawn one is not re-sent");
    }

    #[test]
    fn drain_withdraws_everything_and_ignores_new_wishes() {
        let t = Instant::now();
        let mut s = Session::new(vec![route(100), route(200)], 5 * S, 30 * S);
        s.set_desired(0, Desired::Announced(route(100)));
        s.next_command(t).unwrap();
        s.ack(true, t);
        s.drain();
        s.set_desired(0, Desired::Announced(route(100)));
        let mut lines = vec![];
        while let Some(l) = s.next_command(t) {
            lines.push(l);
            assert!(!s.drained());
            s.ack(true, t);
        }
        assert_eq!(
            lines,
            vec![
                "withdraw route 192.0.2.1/32 next-hop self med 100",
                // Never settled, so unknown: withdrawn with the template to be sure.
                "withdraw route 192.0.2.1/32 next-hop self med 200",
            ]
        );
        assert!(s.drained());
    }
}
