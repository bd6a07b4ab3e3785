//! Bookkeeping of what ExaBGP holds for each service versus what should be there, and
//! which command to send next. No I/O and no clock reads: `now` is passed in, so ACK
//! timeouts, errors and retries are unit-tested without sleeping.
//!
//! Rules:
//! * one command in flight at a time (ExaBGP answers in order, one `done`/`error` each);
//! * a command is sent only when the desired route differs from what is in place, so an
//!   announcement already in place is never repeated;
//! * `error` keeps the old in-place value and retries after a backoff (backon's
//!   exponential with jitter from 1 s to `retry_max`: `crate::backoff`, as everywhere);
//! * an ACK that does not come within `ack_timeout` is reported (and the session marked
//!   unresponsive) but the command stays outstanding: since ExaBGP answers in order, a late
//!   ACK still belongs to it, whereas sending more would pair later ACKs with the wrong
//!   commands. Newer desired states are coalesced meanwhile (only the latest is sent);
//! * an ACK still missing after `resend_after`, or when ExaBGP shows it is alive again (a
//!   neighbor came up) while an ACK is overdue, is given up as lost: what that command
//!   changed counts as unknown, so the latest desired state is sent again, and the other
//!   services' commands flow again. One lost ACK never stops the session. (Should the lost
//!   ACK still arrive, it is taken for the resend's; the resend's own ACK then finds
//!   nothing outstanding and is ignored.)
//! * services take turns (round robin), so one that keeps failing never starves the others.

use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

use super::machine::{Desired, Route};
use super::protocol;

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

#[derive(Debug)]
struct Slot {
    desired: Desired,
    in_place: InPlace,
    /// Used to withdraw a route whose in-place value is unknown.
    template: Route,
    /// The delays after `error`s of the current wish; `None` until the first one.
    retry: Option<ExponentialBackoff>,
    retry_at: Option<Instant>,
}

#[derive(Debug)]
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
    /// incarnation or one given up as lost, or acks were assumed off).
    Unexpected,
}

/// An overdue ACK, for logging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Overdue {
    /// Still waiting: reported once per `ack_timeout`.
    Waiting { slot: usize, waited: Duration },
    /// Given up as lost: the slot's state is unknown and its desired state is sent again.
    GivenUp { slot: usize, waited: Duration },
}

/// Timings of a session.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// An ACK later than this is reported (once per period) and the session unresponsive.
    pub ack_timeout: Duration,
    /// An ACK later than this is given up as lost and the command's effect taken as unknown.
    pub resend_after: Duration,
    /// Cap of the retry backoff after `error`.
    pub retry_max: Duration,
}

#[derive(Debug)]
pub struct Session {
    slots: Vec<Slot>,
    in_flight: Option<InFlight>,
    timing: Timing,
    backoff: ExponentialBuilder,
    /// Where the next search for a due command starts (round robin).
    cursor: usize,
    /// An ACK was given up as lost and none has arrived since.
    lost_ack: bool,
    draining: bool,
    pub commands_sent: u64,
    pub errors: u64,
    pub ack_timeouts: u64,
    /// ACKs given up as lost (each one's command was sent again).
    pub lost_acks: u64,
}

impl Session {
    /// `templates[i]` is service i's up route (same prefix and next-hop as all its routes).
    pub fn new(templates: Vec<Route>, timing: Timing) -> Self {
        let slots = templates
            .into_iter()
            .map(|template| Slot {
                desired: Desired::Undecided,
                in_place: InPlace::Unknown,
                template,
                retry: None,
                retry_at: None,
            })
            .collect();
        // The project's one backoff, as for reconnects and Lease retries.
        let backoff = crate::backoff::exponential(Duration::from_secs(1).min(timing.retry_max), timing.retry_max);
        Session {
            slots,
            in_flight: None,
            timing,
            backoff,
            cursor: 0,
            lost_ack: false,
            draining: false,
            commands_sent: 0,
            errors: 0,
            ack_timeouts: 0,
            lost_acks: 0,
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
            s.retry = None;
        }
    }

    /// Everything we announced may be gone (a neighbor came back up): announce it again.
    /// ExaBGP is evidently alive, so an ACK already overdue is given up as lost (its
    /// command is sent again) rather than waited for.
    pub fn neighbor_up(&mut self) {
        if self.in_flight.as_ref().is_some_and(|f| f.timeouts > 0) {
            self.give_up();
        }
        for s in &mut self.slots {
            if matches!(s.in_place, InPlace::Announced(_)) {
                s.in_place = InPlace::Unknown;
            }
        }
    }

    /// SIGTERM: from now on everything should be withdrawn, including unknown ones.
    pub fn drain(&mut self) {
        self.draining = true;
        self.cursor = 0;
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
        let n = self.slots.len();
        for i in (0..n).map(|k| (self.cursor + k) % n) {
            let s = &mut self.slots[i];
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
            self.cursor = (i + 1) % n;
            self.commands_sent += 1;
            return Some(line);
        }
        None
    }

    /// `done` (ok) or `error` from ExaBGP.
    pub fn ack(&mut self, ok: bool, now: Instant) -> AckOutcome {
        self.lost_ack = false;
        let Some(f) = self.in_flight.take() else {
            return AckOutcome::Unexpected;
        };
        let s = &mut self.slots[f.slot];
        if ok {
            s.in_place = f.outcome;
            s.retry = None;
            s.retry_at = None;
            AckOutcome::Applied { slot: f.slot }
        } else {
            self.errors += 1;
            let max = self.timing.retry_max;
            let retry_in = s.retry.get_or_insert_with(|| self.backoff.build()).next().unwrap_or(max);
            s.retry_at = Some(now + retry_in);
            AckOutcome::Failed { slot: f.slot, retry_in }
        }
    }

    /// For sessions without ACKs (`api.ack = false`): the write itself counts as applied.
    pub fn assume_applied(&mut self, now: Instant) {
        let _ = self.ack(true, now);
    }

    /// If the command in flight has waited another `ack_timeout`, count and report it;
    /// after `resend_after`, give it up as lost.
    pub fn check_ack_timeout(&mut self, now: Instant) -> Option<Overdue> {
        let f = self.in_flight.as_mut()?;
        let slot = f.slot;
        let waited = now.saturating_duration_since(f.sent_at);
        if waited >= self.timing.resend_after {
            if f.timeouts == 0 {
                self.ack_timeouts += 1;
            }
            self.give_up();
            return Some(Overdue::GivenUp { slot, waited });
        }
        if waited >= self.timing.ack_timeout * (f.timeouts + 1) {
            f.timeouts += 1;
            self.ack_timeouts += 1;
            return Some(Overdue::Waiting { slot, waited });
        }
        None
    }

    /// The ACK of the command in flight is taken as lost: whatever it changed is unknown,
    /// so the slot's desired state will be asserted again.
    fn give_up(&mut self) {
        if let Some(f) = self.in_flight.take() {
            self.slots[f.slot].in_place = InPlace::Unknown;
            self.lost_acks += 1;
            self.lost_ack = true;
        }
    }

    /// True while the command in flight is overdue, and after an ACK was given up as lost
    /// until the next ACK arrives.
    pub fn unresponsive(&self) -> bool {
        self.lost_ack || self.in_flight.as_ref().is_some_and(|f| f.timeouts > 0)
    }

    /// When the loop must wake up without input: a retry or an ACK deadline.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let t = self.timing;
        let ack = self
            .in_flight
            .as_ref()
            .map(|f| (f.sent_at + t.ack_timeout * (f.timeouts + 1)).min(f.sent_at + t.resend_after));
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

    const S: Duration = Duration::from_secs(1);
    const TIMING: Timing = Timing {
        ack_timeout: Duration::from_secs(5),
        resend_after: Duration::from_secs(15),
        retry_max: Duration::from_secs(30),
    };

    fn sessions(routes: Vec<Route>) -> Session {
        Session::new(routes, TIMING)
    }

    fn session() -> Session {
        sessions(vec![route(100)])
    }

    /// A retry delay of the `n`th error in a row (from 1): 2^(n-1) s, capped, plus jitter.
    fn assert_retry(d: Duration, n: u32) {
        let base = (S * (1 << (n - 1))).min(TIMING.retry_max);
        assert!(d >= base && d < base * 2, "retry {n}: {d:?} not in [{base:?}, {:?})", base * 2);
    }

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
        let AckOutcome::Failed { slot: 0, retry_in: first } = s.ack(false, t) else { panic!("failed") };
        assert_retry(first, 1);
        assert_eq!(s.in_place(0), Some(&InPlace::Unknown));
        assert_eq!(s.next_command(t + first - Duration::from_millis(1)), None, "backing off");
        assert_eq!(s.next_wakeup(), Some(t + first));
        let t1 = t + first;
        let line = s.next_command(t1).unwrap();
        assert!(line.starts_with("announce"));
        let AckOutcome::Failed { retry_in: second, .. } = s.ack(false, t1) else { panic!("failed") };
        assert_retry(second, 2);
        assert_eq!(s.next_command(t1 + second - Duration::from_millis(1)), None);
        s.next_command(t1 + second).unwrap();
        assert_eq!(s.ack(true, t1 + second), AckOutcome::Applied { slot: 0 });
        assert_eq!(s.errors, 2);
    }

    #[test]
    fn backoff_is_capped_and_reset_by_a_new_wish() {
        let mut t = Instant::now();
        let mut s = session();
        s.set_desired(0, Desired::Announced(route(100)));
        for n in 1..=8 {
            s.next_command(t).unwrap();
            let AckOutcome::Failed { retry_in, .. } = s.ack(false, t) else { panic!("failed") };
            assert_retry(retry_in, n);
            t += retry_in;
        }
        s.set_desired(0, Desired::Withdrawn);
        s.next_command(t).unwrap();
        let AckOutcome::Failed { retry_in, .. } = s.ack(false, t) else { panic!("failed") };
        assert_retry(retry_in, 1);
    }

    #[test]
    fn ack_timeout_is_reported_and_a_late_ack_still_matches() {
        let t = Instant::now();
        let mut s = session();
        s.set_desired(0, Desired::Announced(route(100)));
        s.next_command(t).unwrap();
        assert_eq!(s.check_ack_timeout(t + 4 * S), None);
        assert_eq!(s.next_wakeup(), Some(t + 5 * S));
        assert_eq!(s.check_ack_timeout(t + 5 * S), Some(Overdue::Waiting { slot: 0, waited: 5 * S }));
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
    fn a_lost_ack_is_given_up_and_the_latest_wish_sent_again() {
        let t = Instant::now();
        let mut s = sessions(vec![route(100), route(200)]);
        s.set_desired(0, Desired::Announced(route(100)));
        assert_eq!(s.next_command(t).as_deref(), Some("announce route 192.0.2.1/32 next-hop self med 100"));
        // Meanwhile both services change their minds; nothing is sent over the silence.
        s.set_desired(0, Desired::Withdrawn);
        s.set_desired(1, Desired::Announced(route(200)));
        assert_eq!(s.check_ack_timeout(t + 5 * S), Some(Overdue::Waiting { slot: 0, waited: 5 * S }));
        assert_eq!(s.check_ack_timeout(t + 10 * S), Some(Overdue::Waiting { slot: 0, waited: 10 * S }));
        assert_eq!(s.next_command(t + 14 * S), None);
        assert_eq!(s.next_wakeup(), Some(t + 15 * S), "wakes up to give up");
        assert_eq!(s.check_ack_timeout(t + 15 * S), Some(Overdue::GivenUp { slot: 0, waited: 15 * S }));
        assert!(s.unresponsive(), "until an ACK arrives again");
        assert_eq!(s.in_place(0), Some(&InPlace::Unknown), "the announce may or may not be in place");
        // The session goes on: the other service's turn first, then the latest wish of the first.
        assert_eq!(s.next_command(t + 15 * S).as_deref(), Some("announce route 192.0.2.1/32 next-hop self med 200"));
        assert_eq!(s.ack(true, t + 15 * S), AckOutcome::Applied { slot: 1 });
        assert!(!s.unresponsive());
        assert_eq!(s.next_command(t + 15 * S).as_deref(), Some("withdraw route 192.0.2.1/32 next-hop self med 100"));
        assert_eq!(s.ack(true, t + 15 * S), AckOutcome::Applied { slot: 0 });
        assert_eq!(s.in_place(0), Some(&InPlace::Withdrawn));
        assert_eq!((s.lost_acks, s.ack_timeouts), (1, 2));
    }

    #[test]
    fn a_neighbor_up_gives_up_an_overdue_ack_and_resends() {
        let t = Instant::now();
        let mut s = session();
        s.set_desired(0, Desired::Announced(route(100)));
        s.next_command(t).unwrap();
        // Not overdue yet: a neighbor coming up does not touch the command in flight.
        s.neighbor_up();
        assert_eq!(s.next_command(t), None);
        s.check_ack_timeout(t + 5 * S).unwrap();
        s.neighbor_up();
        assert_eq!(s.next_command(t + 6 * S).as_deref(), Some("announce route 192.0.2.1/32 next-hop self med 100"));
        assert_eq!(s.ack(true, t + 6 * S), AckOutcome::Applied { slot: 0 });
        assert_eq!(s.lost_acks, 1);
    }

    #[test]
    fn services_take_turns() {
        let t = Instant::now();
        let mut s = sessions(vec![route(100), route(200)]);
        s.set_desired(0, Desired::Announced(route(100)));
        s.set_desired(1, Desired::Announced(route(200)));
        // Service 0 keeps failing; service 1 still gets its turn right after.
        assert!(s.next_command(t).unwrap().ends_with("med 100"));
        s.ack(false, t);
        assert!(s.next_command(t).unwrap().ends_with("med 200"));
    }

    #[test]
    fn unexpected_ack_is_ignored() {
        let mut s = session();
        assert_eq!(s.ack(true, Instant::now()), AckOutcome::Unexpected);
    }

    #[test]
    fn neighbor_up_reannounces_only_what_was_announced() {
        let t = Instant::now();
        let mut s = sessions(vec![route(100), route(100)]);
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
        let mut s = sessions(vec![route(100), route(200)]);
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
