//! From events to verdicts: a round of source events and finished Sets, a timer, or an
//! override or role change makes the loop evaluate the groups of the targets concerned (or
//! all), log what changed, and hand intents on.

use std::collections::HashMap;
use std::time::Instant;

use tokio::sync::mpsc;
use tracing::{info, info_span, warn};

use crate::config::override_file::Override;
use crate::model::{AdminState, SourceEvent, TargetName};
use crate::policy::{self, Verdict};
use crate::status;

use super::dispatch::SetDone;
use super::options::LoopEvent;
use super::report::group_eval;
use super::runtime::Loop;

impl Loop {
    pub(super) fn evaluate_all(&mut self, done_tx: &mpsc::UnboundedSender<SetDone>) {
        let now = Instant::now();
        let ov = self.read_override();
        let names: Vec<TargetName> = self.targets.values().map(|t| t.name.clone()).collect();
        for target in names {
            self.evaluate_target(&target, now, None, &ov, done_tx);
        }
    }

    /// One round: the Set answers and source events already queued, decided once per target.
    /// Target by target, in the order they were first touched, its answers and events are
    /// taken in, in order, and its groups decided from everything known by then; so a burst
    /// (a leaf's uplinks and sessions going down in a few notifications, a storm's queue)
    /// is decided once instead of once per notification, and nothing is decided from less
    /// than was already received. Each target's decision and safety stage see the others
    /// as of their own last decision, exactly as if their events had come one target at a
    /// time (streams from different targets have no order between them anyway).
    pub(super) fn on_round(
        &mut self,
        dones: &mut Vec<SetDone>,
        events: &mut Vec<SourceEvent>,
        done_tx: &mpsc::UnboundedSender<SetDone>,
    ) {
        let mut round = Round::default();
        for done in dones.drain(..) {
            round.of(&done.target).dones.push(done);
        }
        for ev in events.drain(..) {
            round.of(ev.target()).events.push(ev);
        }
        let ov = self.read_override();
        for t in round.touched {
            // After a Set's answer, whatever happened, decide again from what is known now.
            let mut must = !t.dones.is_empty();
            for done in t.dones {
                self.finish(done);
            }
            let mut trigger: Option<Instant> = None;
            for ev in t.events {
                if let Some((received, stale)) = self.take_in(ev) {
                    trigger = trigger.into_iter().chain(received).min();
                    must |= stale;
                }
            }
            // Before sync the dump is incomplete: evaluating would only say "unknown" again.
            if must || self.state.target(&t.target).synced() {
                self.evaluate_target(&t.target, Instant::now(), trigger, &ov, done_tx);
            }
        }
    }

    /// Takes one source event into the state. Returns the notification's receive time, and
    /// whether its target must be decided again even while not synced (it went stale); None
    /// for facts that change no decision.
    fn take_in(&mut self, ev: SourceEvent) -> Option<(Option<Instant>, bool)> {
        if let Some(board) = &self.opts.board {
            board.source_event(&ev);
        }
        let taken = match &ev {
            SourceEvent::Connecting { .. } | SourceEvent::Subscribed { .. } => return None,
            SourceEvent::Notification { received, .. } => (Some(*received), false),
            SourceEvent::Synced { target, at } => {
                info!(target = %target, "synced: data is evidence from now on");
                // Open the Set channel now rather than at the first failover (measured by
                // opergroupd-bench: a cold first Set costs a TCP and HTTP/2 handshake).
                if let Some(t) = self.targets.get(target.as_ref())
                    && t.groups.iter().any(|&g| self.groups[g].spec.enforce)
                {
                    self.opts.actuator.warm(&t.spec);
                }
                if let Some(t) = self.targets.get(target.as_ref()) {
                    for &g in &t.groups {
                        self.groups[g].sets.target_resynced();
                    }
                }
                self.observe(LoopEvent::TargetSynced { target: target.clone(), at: *at });
                (None, false)
            }
            SourceEvent::Stale { target, at, error } => {
                warn!(target = %target, error = %error, "stale: holding every group of this target");
                self.observe(LoopEvent::TargetStale { target: target.clone(), error: error.clone(), at: *at });
                (None, true)
            }
        };
        self.forget_printed(&ev);
        self.state.apply(&ev);
        Some(taken)
    }

    pub(super) fn on_timer(&mut self, done_tx: &mpsc::UnboundedSender<SetDone>) {
        let now = Instant::now();
        // Targets in name order, as a full scan would visit them.
        let due: std::collections::BTreeSet<TargetName> = self
            .timers
            .take_due(now)
            .into_iter()
            .filter_map(|g| self.targets.get(self.groups[g].spec.target.as_str()).map(|t| t.name.clone()))
            .collect();
        if due.is_empty() {
            return;
        }
        let ov = self.read_override();
        for target in due {
            self.evaluate_target(&target, now, None, &ov, done_tx);
        }
    }

    /// Evaluates every group of `target`, then sends in one request what they want changed.
    pub(super) fn evaluate_target(
        &mut self,
        target: &TargetName,
        now: Instant,
        trigger: Option<Instant>,
        ov: &Override,
        done_tx: &mpsc::UnboundedSender<SetDone>,
    ) {
        let Some(t) = self.targets.get(target.as_ref()) else { return };
        // Nothing below changes it until dispatch: a Set on the wire stays there.
        let in_flight = t.in_flight;
        for g in t.groups.clone() {
            self.evaluate_group(g, now, trigger, ov, in_flight);
        }
        let released_elsewhere = self.apply_safety();
        self.dispatch(target, now, done_tx);
        self.reschedule(target);
        for other in released_elsewhere.iter().filter(|t| *t != target) {
            self.dispatch(other, now, done_tx);
            self.reschedule(other);
        }
    }

    /// `in_flight`: the group's target has a Set on the wire.
    fn evaluate_group(&mut self, g: usize, now: Instant, trigger: Option<Instant>, ov: &Override, in_flight: bool) {
        let group = &self.groups[g];
        let view = self.state.target(&group.spec.target);
        let verdict: Verdict = policy::evaluate(&group.spec, &view, &group.memory, now);
        let suspended = ov.suspends(&group.spec.name);
        // A standby decides like the leader (for status) but never counts or makes a Set.
        let intent = if suspended || !self.acting() {
            None
        } else if self.opts.actuator.is_dry_run() {
            // Decide as if every printed line had been applied: the device itself is untouched.
            let printed = self.printed.get(group.spec.target.as_str());
            let as_if = |path: &str| printed.and_then(|p| p.get(path).copied());
            policy::intent_as_if(&group.spec, &verdict, &view, as_if)
        } else {
            policy::intent(&group.spec, &verdict, &view)
        };
        let mut enforcement = status::Enforcement::of(group.spec.enforce, suspended);
        let mut reason = verdict.reason.clone();
        if let Some(why) = group.hold.as_ref().filter(|_| enforcement == status::Enforcement::Enforcing) {
            enforcement = status::Enforcement::Held;
            reason = why.clone();
        } else if let Some(refused) = intent.as_ref().and_then(|i| group.sets.refused_for(&i.changes, now)) {
            enforcement = status::Enforcement::SetRefused;
            reason = format!("{reason}; Set refused by {}: {}", group.spec.target, refused.message);
        }
        if let Some(board) = &self.opts.board {
            let eval = group_eval(group, &verdict, &view, enforcement, reason, intent.is_some(), trigger, now);
            board.group_evaluated(&group.spec.name, eval);
        }

        let summary = (verdict.health, verdict.desired, verdict.reason.clone());
        let changed = group.last.as_ref() != Some(&summary);
        // While a Set is on the wire the device cannot have reported it yet: the disable it
        // carries keeps counting (for the cap) until its answer, or a re-read in between would
        // free its place under the cap for another group while it is being applied.
        let keeps_disabled = (view.synced() && !in_flight).then(|| {
            let disabled = group
                .spec
                .downlinks
                .iter()
                .all(|d| view.admin_state(group.spec.profile, d) == Some(AdminState::Disable));
            disabled && (group.disabled_by_us || verdict.desired == Some(AdminState::Disable))
        });
        let group = &mut self.groups[g];
        if let Some(keeps) = keeps_disabled {
            group.disabled_by_us = keeps;
        }
        group.memory = verdict.memory;
        group.wake_at = verdict.wake_at;
        group.pending = intent;
        self.safety.touch(g);
        if changed {
            // The group's span carries its lines' context; made only when there is a line to
            // log (per evaluation it was a span allocation and two field formats for nothing).
            let _span = info_span!("group", group = %group.spec.name, target = %group.spec.target).entered();
            // Field names are documented in doc/operating.md ("Logs"): collectors index them.
            info!(decision = verdict.desired.map_or("hold", AdminState::as_str), health = verdict.health.as_str(),
                  reason = %verdict.reason, uplinks_up = verdict.uplinks_up, uplinks = verdict.uplinks_total,
                  required_up = group.spec.required_up, bgp_established = verdict.established,
                  evpn_routes = verdict.evpn_routes, enforcement = enforcement.as_str(), "decision");
            if verdict.health == policy::Health::Misconfigured {
                // The reason names the interfaces and the target; one WARN per change.
                warn!(reason = %verdict.reason, "misconfigured: a configured interface does not exist on the target; holding");
            }
            group.last = Some(summary);
            let ev = LoopEvent::Verdict {
                group: group.spec.name.clone(),
                health: verdict.health,
                desired: verdict.desired,
                reason: verdict.reason.clone(),
                at: now,
            };
            self.observe(ev);
        }
    }
}

/// The targets a round takes in and decides, in the order first touched, with what came
/// for each.
#[derive(Default)]
struct Round {
    touched: Vec<Touched>,
    /// Target -> its place in `touched` (a storm's round touches hundreds).
    at: HashMap<TargetName, usize>,
}

struct Touched {
    target: TargetName,
    dones: Vec<SetDone>,
    events: Vec<SourceEvent>,
}

impl Round {
    /// `target`'s place in the round, made at its first touch.
    fn of(&mut self, target: &TargetName) -> &mut Touched {
        let i = *self.at.entry(target.clone()).or_insert_with(|| {
            self.touched.push(Touched { target: target.clone(), dones: Vec::new(), events: Vec::new() });
            self.touched.len() - 1
        });
        &mut self.touched[i]
    }
}
