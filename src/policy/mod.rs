//! The pure core: from a group, what its target reports and the time, decide what the
//! group's downlinks should be. No I/O, no clocks, no runtime: timers are data
//! (`GroupMemory`) passed in and handed back, so every rule is testable with explicit
//! `Instant`s.
//!
//! The rules (contract section 2):
//! * **healthy**: at least `required-up` uplinks have oper-state `up` (no value = not up);
//! * unhealthy continuously for `down-delay` -> every downlink `disable`;
//! * healthy and ready (readiness: at least `min-established` listed neighbors
//!   `established`, and the EVPN floor summed over those established neighbors)
//!   continuously for `up-delay` -> every downlink `enable`;
//! * readiness only gates re-enabling: healthy but not ready holds, never disables —
//!   unless `when-not-ready: disable`: then not ready continuously for `not-ready-delay`
//!   disables too (downlinks up only while healthy and ready; contract section 6);
//! * a configured uplink or downlink that was not in the target's initial dump does not
//!   exist there: the group is Misconfigured and holds (a typo must not disable a healthy
//!   leaf); re-checked at every sync. A listed BGP neighbor that does not exist only counts
//!   as not established, with a warning in the reason;
//! * a target that is not synced is Unknown: hold, and both timers restart from scratch;
//! * any drop of health or readiness restarts the up timer, so an uplink flapping faster
//!   than `up-delay` never re-enables.

use std::time::{Duration, Instant};

use crate::config::{Group, WhenNotReady, duration};
use crate::model::{AdminState, SetIntent};
use crate::state::TargetView;

/// What a group remembers between evaluations: since when each condition has held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupMemory {
    /// Since when the group has been unhealthy without interruption.
    pub unhealthy_since: Option<Instant>,
    /// Since when the group has been healthy and ready without interruption.
    pub ready_since: Option<Instant>,
    /// Since when the group has been healthy but not ready (only with `when-not-ready: disable`).
    pub not_ready_since: Option<Instant>,
    /// The sync (`TargetView::since`) whose initial dump was found to hold every configured
    /// interface. The check formats and looks up each interface's paths; its answer changes
    /// only with a new dump, so it runs once per sync, not once per notification.
    pub dump_checked: Option<Instant>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Health {
    /// Enough uplinks up (and ready, when readiness is configured).
    Healthy,
    /// Fewer than `required-up` uplinks up.
    Unhealthy,
    /// Enough uplinks up, but readiness not met: downlinks are held as they are.
    NotReady,
    /// The target is not synced: nothing is known.
    Unknown,
    /// A configured interface does not exist on the target: hold, never Set.
    Misconfigured,
}

impl Health {
    pub const ALL: [Health; 5] =
        [Health::Healthy, Health::Unhealthy, Health::NotReady, Health::Unknown, Health::Misconfigured];

    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
            Health::NotReady => "not-ready",
            Health::Unknown => "unknown",
            Health::Misconfigured => "misconfigured",
        }
    }
}

/// One evaluation's outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub health: Health,
    /// What the downlinks should be now; `None` = hold, touch nothing.
    pub desired: Option<AdminState>,
    /// For people: "0/2 uplinks up, required 1".
    pub reason: String,
    /// When a running timer would change the verdict: evaluate again then.
    pub wake_at: Option<Instant>,
    /// What happens at `wake_at` unless the inputs change.
    pub pending: Option<AdminState>,
    /// Pass this to the next evaluation.
    pub memory: GroupMemory,
    pub uplinks_up: usize,
    pub uplinks_total: usize,
    /// Listed neighbors `established`; `None` without readiness or when not synced.
    pub established: Option<usize>,
    /// Received EVPN routes summed over established listed neighbors; `None` as above.
    pub evpn_routes: Option<u64>,
}

/// Decide for one group. `view` is the group's target.
pub fn evaluate(group: &Group, view: &TargetView<'_>, memory: &GroupMemory, now: Instant) -> Verdict {
    let uplinks_total = group.uplinks.len();
    if !view.synced() {
        let why = view.not_synced_reason().unwrap_or_default();
        return Verdict {
            health: Health::Unknown,
            desired: None,
            reason: format!("target {} not synced: {why}", group.target),
            wake_at: None,
            pending: None,
            memory: GroupMemory::default(),
            uplinks_up: 0,
            uplinks_total,
            established: None,
            evpn_routes: None,
        };
    }

    let missing = if memory.dump_checked.is_some() && memory.dump_checked == view.since() {
        Vec::new()
    } else {
        missing_interfaces(group, view)
    };
    if !missing.is_empty() {
        return Verdict {
            health: Health::Misconfigured,
            desired: None,
            reason: format!(
                "{} not found on target {} (not in its initial dump): holding, never Set; re-checked at the next sync",
                missing.join(", "),
                group.target
            ),
            wake_at: None,
            pending: None,
            memory: GroupMemory::default(),
            uplinks_up: 0,
            uplinks_total,
            established: None,
            evpn_routes: None,
        };
    }

    let uplinks_up = group
        .uplinks
        .iter()
        .filter(|u| view.get(&group.profile.oper_state(u)).is_some_and(|v| group.profile.is_up(v)))
        .count();
    let uplinks = format!("{uplinks_up}/{uplinks_total} uplinks up");
    let mut verdict = Verdict {
        health: Health::Unhealthy,
        desired: None,
        reason: String::new(),
        wake_at: None,
        pending: None,
        memory: GroupMemory { dump_checked: view.since(), ..GroupMemory::default() },
        uplinks_up,
        uplinks_total,
        established: None,
        evpn_routes: None,
    };

    if uplinks_up < group.required_up {
        // Not ready (with when-not-ready: disable) and then unhealthy is one bad spell.
        let since = memory.unhealthy_since.or(memory.not_ready_since).unwrap_or(now);
        verdict.memory.unhealthy_since = Some(since);
        verdict.reason = format!("{uplinks}, required {}", group.required_up);
        match remaining(since, group.down_delay, now) {
            None => verdict.desired = Some(AdminState::Disable),
            Some(left) => {
                verdict.wake_at = Some(since + group.down_delay);
                verdict.pending = Some(AdminState::Disable);
                verdict.reason += &format!(
                    "; disabling after down-delay {} ({} left)",
                    duration::format(group.down_delay),
                    duration::format(left)
                );
            }
        }
        return verdict;
    }

    let (ready, mut detail) = match &group.readiness {
        None => (true, format!("{uplinks}, required {}", group.required_up)),
        Some(r) => {
            let established: Vec<&String> = r
                .bgp_neighbors
                .iter()
                .filter(|n| {
                    let path = group.profile.session_state(&r.network_instance, &r.protocol_name, n);
                    view.get(&path).is_some_and(|v| group.profile.is_established(v))
                })
                .collect();
            let routes: u64 = established
                .iter()
                .filter_map(|n| {
                    let path = group.profile.evpn_received_routes(&r.network_instance, &r.protocol_name, n);
                    view.get(&path).and_then(|v| v.as_u64())
                })
                .fold(0, u64::saturating_add);
            verdict.established = Some(established.len());
            verdict.evpn_routes = Some(routes);
            let mut detail = format!(
                "{uplinks}; {}/{} iBGP established (need {})",
                established.len(),
                r.bgp_neighbors.len(),
                r.min_established
            );
            let mut ready = established.len() >= r.min_established;
            if let Some(floor) = r.evpn_min_received_routes {
                detail += &format!("; {routes} EVPN routes (need {floor})");
                ready &= routes >= floor;
            }
            (ready, detail)
        }
    };
    if let Some(r) = &group.readiness {
        let absent: Vec<&str> = r
            .bgp_neighbors
            .iter()
            .filter(|n| !view.in_dump(&group.profile.session_state(&r.network_instance, &r.protocol_name, n)))
            .map(String::as_str)
            .collect();
        if !absent.is_empty() {
            detail += &format!(
                "; warning: BGP neighbor {} not found on target {} (counts as not established)",
                absent.join(", "),
                group.target
            );
        }
    }
    verdict.reason = detail;
    if !ready {
        verdict.health = Health::NotReady;
        let Some(r) = group.readiness.as_ref().filter(|r| r.when_not_ready == WhenNotReady::Disable) else {
            return verdict;
        };
        let since = memory.not_ready_since.or(memory.unhealthy_since).unwrap_or(now);
        verdict.memory.not_ready_since = Some(since);
        match remaining(since, r.not_ready_delay, now) {
            None => {
                verdict.desired = Some(AdminState::Disable);
                verdict.reason += "; not ready: downlinks disabled (when-not-ready: disable)";
            }
            Some(left) => {
                verdict.wake_at = Some(since + r.not_ready_delay);
                verdict.pending = Some(AdminState::Disable);
                verdict.reason += &format!(
                    "; disabling after not-ready-delay {} ({} left)",
                    duration::format(r.not_ready_delay),
                    duration::format(left)
                );
            }
        }
        return verdict;
    }

    verdict.health = Health::Healthy;
    let since = memory.ready_since.unwrap_or(now);
    verdict.memory.ready_since = Some(since);
    match remaining(since, group.up_delay, now) {
        None => verdict.desired = Some(AdminState::Enable),
        Some(left) => {
            verdict.wake_at = Some(since + group.up_delay);
            verdict.pending = Some(AdminState::Enable);
            verdict.reason += &format!(
                "; enabling after up-delay {} ({} left)",
                duration::format(group.up_delay),
                duration::format(left)
            );
        }
    }
    verdict
}

/// Configured uplinks and downlinks the target's initial dump did not hold (`ethernet-1/5O
/// (uplink)`), in config order. An uplink exists when its oper-state was dumped, a
/// downlink when its admin-state or oper-state was.
pub fn missing_interfaces(group: &Group, view: &TargetView<'_>) -> Vec<String> {
    let uplinks =
        group.uplinks.iter().filter(|u| !view.in_dump(&group.profile.oper_state(u))).map(|u| format!("uplink {u}"));
    let downlinks = group
        .downlinks
        .iter()
        .filter(|d| !view.in_dump(&group.profile.admin_observed(d)) && !view.in_dump(&group.profile.oper_state(d)))
        .map(|d| format!("downlink {d}"));
    uplinks.chain(downlinks).collect()
}

/// Time left until `since + delay`, or `None` once it has passed.
fn remaining(since: Instant, delay: Duration, now: Instant) -> Option<Duration> {
    let elapsed = now.saturating_duration_since(since);
    (elapsed < delay).then(|| delay - elapsed)
}

/// The downlinks whose observed admin-state differs from `desired` (absent counts as
/// differing), as (admin-state path, value), in downlink order.
pub fn changes(group: &Group, desired: AdminState, view: &TargetView<'_>) -> Vec<(String, AdminState)> {
    changes_as_if(group, desired, view, |_| None)
}

/// `changes`, where `as_if(path)` (when it answers) stands in for what the device reports.
fn changes_as_if(
    group: &Group,
    desired: AdminState,
    view: &TargetView<'_>,
    as_if: impl Fn(&str) -> Option<AdminState>,
) -> Vec<(String, AdminState)> {
    let p = group.profile;
    group
        .downlinks
        .iter()
        .filter(|d| {
            let observed = || view.admin_state(p, d);
            as_if(&p.admin_set(d)).or_else(observed) != Some(desired)
        })
        .map(|d| (p.admin_set(d), desired))
        .collect()
}

/// The Set to make for this verdict, if any. `None` when holding, when the device
/// already matches, when the target is not synced, and always for a group with
/// `admin-state: disable` (observe and report only).
pub fn intent(group: &Group, verdict: &Verdict, view: &TargetView<'_>) -> Option<SetIntent> {
    intent_as_if(group, verdict, view, |_| None)
}

/// `intent` for dry-run: decide as if the device had applied what `as_if(path)` answers
/// (the lines already printed), so each line is printed once and a later opposite decision
/// (the re-enable) is printed although the device itself never changed.
pub fn intent_as_if(
    group: &Group,
    verdict: &Verdict,
    view: &TargetView<'_>,
    as_if: impl Fn(&str) -> Option<AdminState>,
) -> Option<SetIntent> {
    let desired = verdict.desired?;
    if !group.enforce || !view.synced() {
        return None;
    }
    let changes = changes_as_if(group, desired, view, as_if);
    if changes.is_empty() {
        return None;
    }
    Some(SetIntent {
        target: group.target.as_str().into(),
        group: group.name.clone(),
        changes,
        reason: verdict.reason.clone(),
    })
}

#[cfg(test)]
mod tests;
