//! The loop's recording calls: configuration, every turn, targets, groups, Sets, services.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::mirror::mirror_evaluation;
use super::*;

impl Board {
    // ---- configuration -------------------------------------------------------------

    /// Declare a target; `allow_absent` targets do not hold back `/readyz`.
    pub fn declare_target(&self, name: &str, allow_absent: bool) {
        let mut st = self.state();
        let entry = target_entry(&mut st, self.metrics(), name);
        entry.allow_absent = allow_absent;
    }

    /// Declare a group with its downlinks; `admin_enabled` is config `admin-state: enable`.
    pub fn declare_group(&self, name: &str, target: &str, downlinks: &[String], admin_enabled: bool) {
        let enforcement = Enforcement::of(admin_enabled, false);
        let mut st = self.state();
        let entry = group_entry(&mut st, self.metrics(), name);
        entry.target = target.to_string();
        entry.enforcement = enforcement;
        entry.downlinks =
            downlinks.iter().map(|d| DownlinkEval { name: d.clone(), desired: None, observed: None }).collect();
        self.metrics().set_enforcement(name, enforcement);
    }

    pub fn set_config_loaded(&self, loaded: bool) {
        self.state().config_loaded = loaded;
    }

    pub fn set_dry_run(&self, dry_run: bool) {
        self.state().dry_run = dry_run;
    }

    pub fn set_override_file(&self, path: Option<PathBuf>) {
        self.state().override_file = path;
    }

    pub fn set_heartbeat_timeout(&self, timeout: Duration) {
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.shared.heartbeat_timeout_ms.store(ms, Ordering::Relaxed);
    }

    // ---- the loop, every turn --------------------------------------------------------

    /// The loop turns. Call at least once per second (e.g. on its timer tick).
    pub fn heartbeat(&self, now: Instant) {
        let us = now.saturating_duration_since(self.shared.started).as_micros();
        self.shared.heartbeat_us.store(u64::try_from(us).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// What the override file said at the last read (see `config::override_file::read_override`). True when that
    /// differs from the read before (the caller logs the change).
    pub fn override_seen(&self, ov: &Override) -> bool {
        let mut st = self.state();
        let changed = st.override_now != *ov;
        if changed {
            st.override_now = ov.clone();
        }
        changed
    }

    pub fn set_role(&self, role: ReplicaRole) {
        self.state().role = role;
        self.metrics().set_role(role);
    }

    /// The Lease as this replica last saw it (the loop refreshes it every second).
    pub fn set_leader_election(&self, status: Option<LeaderElectionStatus>) {
        self.state().leader_election = status;
    }

    // ---- targets --------------------------------------------------------------------

    /// A connection attempt starts (the first, or a reconnect).
    pub fn target_connecting(&self, target: &str, at: Instant) {
        let mut st = self.state();
        let entry = target_entry(&mut st, self.metrics(), target);
        entry.connects += 1;
        if entry.connects > 1 {
            entry.reconnects_counter.inc();
        }
        entry.state = ConnState::Connecting;
        entry.since = Some(at);
        entry.synced_since = None;
        drop(st);
        self.metrics().set_target_state(target, ConnState::Connecting);
    }

    /// The target accepted the subscription in `encoding`.
    pub fn target_subscribed(&self, target: &str, encoding: WireEncoding) {
        let mut st = self.state();
        target_entry(&mut st, self.metrics(), target).encoding = Some(encoding);
    }

    /// `sync_response` arrived: the target's data is evidence from now on.
    pub fn target_synced(&self, target: &str, at: Instant) {
        let mut st = self.state();
        let entry = target_entry(&mut st, self.metrics(), target);
        entry.state = ConnState::Synced;
        entry.since = Some(at);
        entry.synced_since = Some(at);
        entry.ever_synced = true;
        drop(st);
        self.metrics().set_target_state(target, ConnState::Synced);
    }

    /// The stream is gone or never synced in time.
    pub fn target_stale(&self, target: &str, at: Instant, error: &str) {
        let mut st = self.state();
        let entry = target_entry(&mut st, self.metrics(), target);
        entry.state = ConnState::Stale;
        entry.since = Some(at);
        entry.synced_since = None;
        entry.last_error = Some((at, error.to_string()));
        drop(st);
        self.metrics().set_target_state(target, ConnState::Stale);
    }

    /// One notification carrying `updates` updates and deletes. Hot path.
    pub fn notification(&self, target: &str, received: Instant, updates: usize) {
        let count = |entry: &mut TargetEntry| {
            entry.notifications += 1;
            entry.updates += updates as u64;
            entry.last_notification = Some(received);
            entry.notifications_counter.inc();
            entry.updates_counter.inc_by(updates as u64);
        };
        let mut st = self.state();
        // Known targets are looked up by &str: no allocation on the hot path.
        if let Some(entry) = st.targets.get_mut(target) {
            count(entry);
        } else {
            count(target_entry(&mut st, self.metrics(), target));
        }
    }

    /// Record a source event as it passes through the loop (notification, synced, stale).
    pub fn source_event(&self, event: &SourceEvent) {
        match event {
            SourceEvent::Notification { target, received, updates, deletes, .. } => {
                self.notification(target, *received, updates.len() + deletes.len())
            }
            SourceEvent::Synced { target, at } => self.target_synced(target, *at),
            SourceEvent::Stale { target, at, error } => self.target_stale(target, *at, error),
            SourceEvent::Connecting { target, at, .. } => self.target_connecting(target, *at),
            SourceEvent::Subscribed { target, encoding, .. } => self.target_subscribed(target, *encoding),
        }
    }

    // ---- groups ---------------------------------------------------------------------

    pub fn group_evaluated(&self, group: &str, eval: GroupEval) {
        let m = self.metrics();
        let mut st = self.state();
        let entry = group_entry(&mut st, m, group);
        entry.series.evaluations.inc();
        if let Some(trigger) = eval.trigger {
            let secs = eval.at.saturating_duration_since(trigger).as_secs_f64();
            entry.series.notification_to_decision.observe(secs);
        }
        if eval.decided {
            entry.series.decisions.inc();
        }
        mirror_evaluation(m, group, entry, &eval);
        entry.health = eval.health;
        entry.reason = eval.reason;
        entry.enforcement = eval.enforcement;
        entry.downlinks = eval.downlinks;
        entry.pending = eval.pending;
        entry.evaluated_at = Some(eval.at);
        entry.inputs = eval.inputs;
        entry.stats.evaluations += 1;
        if eval.decided {
            entry.stats.decisions += 1;
            entry.stats.last_decision = Some(eval.at);
        }
    }

    /// The fabric-wide safety stage held back (or released) `group`'s disable after its last
    /// evaluation was recorded: show it now rather than at the next evaluation.
    pub fn group_held(&self, group: &str, hold: Option<&str>, reason_if_released: &str) {
        let m = self.metrics();
        let mut st = self.state();
        let entry = group_entry(&mut st, m, group);
        let enforcement = if hold.is_some() { Enforcement::Held } else { Enforcement::Enforcing };
        if entry.enforcement != enforcement {
            m.set_enforcement(group, enforcement);
        }
        entry.enforcement = enforcement;
        entry.reason = match hold {
            Some(why) => why.to_string(),
            None => reason_if_released.to_string(),
        };
    }

    /// A Set (or its dry-run line) for `group` goes out; `line` says what, for people.
    pub fn set_started(&self, group: &str, line: String, at: Instant) {
        let mut st = self.state();
        let entry = group_entry(&mut st, self.metrics(), group);
        entry.stats.sets_sent += 1;
        entry.output = Some(Output { line, started: at, finished: None });
    }

    /// An attempt failed and will be retried.
    pub fn set_retry(&self, group: &str) {
        let mut st = self.state();
        let entry = group_entry(&mut st, self.metrics(), group);
        entry.series.retries.inc();
        entry.stats.retries += 1;
    }

    /// The Set started last for `group` ended (after any retries).
    pub fn set_finished(&self, group: &str, result: SetResult, at: Instant) {
        let m = self.metrics();
        let mut st = self.state();
        let entry = group_entry(&mut st, m, group);
        entry.series.sets[result.index()]
            .get_or_insert_with(|| {
                m.sets.get_or_create_owned(&SetLabels { group: group.to_string(), result: result.as_str().into() })
            })
            .inc();
        if matches!(result, SetResult::Failed(_) | SetResult::Refused(_)) {
            entry.stats.sets_failed += 1;
        } else if let Some(decided) = entry.stats.last_decision {
            let latency = at.saturating_duration_since(decided);
            entry.stats.last_decision_to_set = Some(latency);
            entry.series.decision_to_set.observe(latency.as_secs_f64());
        }
        match &mut entry.output {
            Some(out) => out.finished = Some((at, result)),
            None => entry.output = Some(Output { line: String::new(), started: at, finished: Some((at, result)) }),
        }
    }

    // ---- services (issue 7) -----------------------------------------------------------

    pub fn service(&self, name: &str, state: ServiceState, at: Option<Instant>, detail: Option<String>) {
        self.metrics().set_service_state(name, state);
        let mut st = self.state();
        let entry =
            st.services.entry(name.to_string()).or_insert(ServiceEntry { state, last_check: None, detail: None });
        entry.state = state;
        if at.is_some() {
            entry.last_check = at;
        }
        if detail.is_some() {
            entry.detail = detail;
        }
    }
}
