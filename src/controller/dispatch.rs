//! From intents to Sets. Per target: at most one SetRequest on the wire, carrying the
//! pending changes of every group that may go now. Per group: its own backoff after a
//! failure, and a parking place for changes the device refused for good, so no group ever
//! waits on another group's error.
//!
//! * A retryable failure (unavailable, timeout) backs off each group of the request.
//! * A permanent failure (invalid argument, not found, permission denied, unimplemented,
//!   failed precondition) of a request that carried several groups says nothing about
//!   which group's part was wrong: each of them is then sent alone. A group whose own
//!   Set is refused for good is parked (`set-refused`): not sent again until what it asks
//!   for changes, its target re-syncs, or `set_refused_retry` passes.
//! * Fencing: every Set carries the instant until which this replica may act (leader
//!   election); connect and Set are bounded by it, and a Set that cannot be on the wire
//!   before it is abandoned and reported, never sent late.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::actuate::DryRunLine;
use crate::backoff::Backoff;
use crate::gnmi::set::SetError;
use crate::model::{AdminState, SetIntent, TargetName};
use crate::status::SetResult;

use super::options::LoopEvent;
use super::runtime::Loop;

/// A Set task's answer to the loop: one request, the groups it carried.
pub(super) struct SetDone {
    pub(super) target: TargetName,
    pub(super) parts: Vec<(usize, SetIntent)>,
    pub(super) started: Instant,
    pub(super) result: Result<(), SetError>,
}

/// One group's Set bookkeeping.
#[derive(Debug)]
pub(super) struct GroupSets {
    backoff: Backoff,
    /// After a retryable failure: not before this instant.
    not_before: Option<Instant>,
    /// Changes the device refused for good, and until when they are not tried again.
    refused: Option<Refused>,
    /// A request with this group and others was refused: send this group's part alone.
    alone: bool,
}

#[derive(Clone, Debug)]
pub(super) struct Refused {
    pub(super) changes: Vec<(String, AdminState)>,
    pub(super) message: String,
    pub(super) until: Instant,
}

impl GroupSets {
    pub(super) fn new(min: Duration, max: Duration) -> Self {
        GroupSets { backoff: Backoff::new(min, max), not_before: None, refused: None, alone: false }
    }

    /// The refusal that still holds `changes` back at `now`, if any.
    pub(super) fn refused_for(&self, changes: &[(String, AdminState)], now: Instant) -> Option<&Refused> {
        self.refused.as_ref().filter(|r| r.changes == changes && now < r.until)
    }

    /// When this group wants to be looked at again for its Set.
    pub(super) fn wake_at(&self) -> Option<Instant> {
        self.not_before.into_iter().chain(self.refused.as_ref().map(|r| r.until)).min()
    }

    /// The target re-synced: the device may have changed; refused changes may be tried again.
    pub(super) fn target_resynced(&mut self) {
        self.refused = None;
        self.alone = false;
    }
}

impl Loop {
    /// Sends what the groups of `target` have pending, unless a Set is on the wire for it.
    /// A group that may not go now (backing off, parked) is simply left out; it is looked
    /// at again when its wait ends or something changes.
    pub(super) fn dispatch(&mut self, target: &TargetName, now: Instant, done_tx: &mpsc::UnboundedSender<SetDone>) {
        let Some(t) = self.targets.get(target.as_ref()) else { return };
        if t.in_flight {
            return;
        }
        let mut ready = Vec::new();
        for &g in &t.groups {
            let group = &mut self.groups[g];
            let Some(intent) = &group.pending else { continue };
            if group.hold.is_some() {
                continue;
            }
            if group.sets.not_before.is_some_and(|at| at > now) {
                continue;
            }
            group.sets.not_before = None;
            if group.sets.refused_for(&intent.changes, now).is_some() {
                continue;
            }
            // What it asks for changed, or the long wait is over: try again.
            group.sets.refused = None;
            ready.push(g);
        }
        // A group under suspicion goes alone, the first in name order; the rest wait for
        // one round trip instead of being refused with it again.
        let parts: Vec<usize> = match ready.iter().find(|&&g| self.groups[g].sets.alone) {
            Some(&g) => vec![g],
            None => ready,
        };
        if parts.is_empty() {
            return;
        }
        // Fencing: the instant until which this replica may act. Past it nothing goes out.
        let deadline = match &self.opts.leader {
            None => None,
            Some(elector) => match elector.act_until() {
                Some(until) => Some(until),
                None => return,
            },
        };
        let parts: Vec<(usize, SetIntent)> =
            parts.into_iter().filter_map(|g| self.groups[g].pending.clone().map(|i| (g, i))).collect();
        let t = self.targets.get_mut(target.as_ref()).expect("looked up above");
        t.in_flight = true;
        let spec = t.spec.clone();
        for (g, intent) in &parts {
            // Counted for the blast-radius cap from the moment it is on the wire; the first
            // evaluation after its answer corrects it from what the device reports if the
            // Set failed (none before: see `evaluate_group`).
            if intent.changes.iter().any(|(_, v)| *v == AdminState::Disable) {
                self.groups[*g].disabled_by_us = true;
                self.safety.touch(*g);
            }
            info!(target = %intent.target, group = %intent.group, changes = ?intent.changes, reason = %intent.reason, "set");
            if let Some(board) = &self.opts.board {
                let line = DryRunLine::from_intent(intent)
                    .iter()
                    .map(|l| serde_json::to_string(l).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("\n");
                board.set_started(&intent.group, line, now);
            }
            self.observe(LoopEvent::SetStarted { intent: intent.clone(), at: now });
        }
        let actuator = self.opts.actuator.clone();
        let tx = done_tx.clone();
        let target = target.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let intents: Vec<SetIntent> = parts.iter().map(|(_, i)| i.clone()).collect();
            let result = actuator.apply(&spec, &intents, deadline).await;
            let _ = tx.send(SetDone { target, parts, started, result });
        });
    }

    /// Records a Set's answer: status, backoff or parking, and (after success) the values
    /// set, where the device has not reported anything newer.
    pub(super) fn finish(&mut self, done: SetDone) {
        let now = Instant::now();
        let SetDone { target, parts, started, result } = done;
        let Some(t) = self.targets.get_mut(target.as_ref()) else { return };
        t.in_flight = false;
        let latency_ms = now.duration_since(started).as_secs_f64() * 1e3;
        let several = parts.len() > 1;
        for (g, intent) in parts {
            let sets = &mut self.groups[g].sets;
            let outcome = match &result {
                Ok(()) => {
                    sets.backoff.reset();
                    sets.alone = false;
                    sets.refused = None;
                    info!(target = %intent.target, group = %intent.group, latency_ms, "set acknowledged");
                    if self.opts.actuator.is_dry_run() {
                        self.printed
                            .entry(intent.target.to_string())
                            .or_default()
                            .extend(intent.changes.iter().cloned());
                        SetResult::DryRun
                    } else {
                        // The device accepted it: count it as observed so the next evaluation
                        // does not send it again, unless the device already said something newer.
                        for (path, value) in &intent.changes {
                            let profile = crate::profile::of_set_path(path).unwrap_or(&crate::profile::SRL);
                            let observed = self.groups[g].spec.downlinks.iter().find(|d| profile.admin_set(d) == *path);
                            let at = observed.map_or_else(|| path.clone(), |d| profile.admin_observed(d));
                            self.state.acknowledge(&intent.target, &at, profile.admin_scalar(*value), started, now);
                        }
                        SetResult::Ok
                    }
                }
                Err(e) if e.fenced => {
                    warn!(target = %intent.target, group = %intent.group, error = %e, "set abandoned: this replica may no longer act");
                    SetResult::Failed(e.to_string())
                }
                Err(e) if !e.retryable && several => {
                    sets.alone = true;
                    warn!(target = %intent.target, group = %intent.group, error = %e,
                          "set refused for a request of several groups; sending each group's part alone");
                    SetResult::Failed(e.to_string())
                }
                Err(e) if !e.retryable => {
                    sets.alone = false;
                    let until = now + self.opts.set_refused_retry;
                    sets.refused = Some(Refused { changes: intent.changes.clone(), message: e.detail.clone(), until });
                    warn!(target = %intent.target, group = %intent.group, error = %e,
                          retry_in_s = self.opts.set_refused_retry.as_secs(),
                          "set refused for good; parked until what it asks for changes or the target re-syncs");
                    SetResult::Refused(e.detail.clone())
                }
                Err(e) => {
                    let wait = sets.backoff.failed();
                    sets.not_before = Some(now + wait);
                    warn!(target = %intent.target, group = %intent.group, error = %e, retry_in_ms = wait.as_millis() as u64,
                          "set failed; will re-evaluate from fresh state before trying again");
                    if let Some(board) = &self.opts.board {
                        board.set_retry(&intent.group);
                    }
                    SetResult::Failed(e.to_string())
                }
            };
            if let Some(board) = &self.opts.board {
                board.set_finished(&intent.group, outcome, now);
            }
            let result = result.clone().map_err(|e| e.to_string());
            self.observe(LoopEvent::SetFinished { intent, result, started, at: now });
        }
    }
}
