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
mod tests;
