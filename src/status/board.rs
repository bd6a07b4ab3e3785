//! The status board: the control loop records what it sees and does; HTTP handlers read.
//!
//! Every recording method is synchronous and cheap (one short mutex hold, counters bumped,
//! no formatting): it is called on the hot path. Wall-clock strings and the JSON document
//! are built only when someone asks (`document`, `metrics_text`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use prometheus_client::metrics::counter::Counter;

use super::document::*;
use super::metrics::{DownlinkLabels, GroupLabels, Metrics, SetLabels, TargetLabels};
use super::override_file::Override;
use crate::config::Config;
use crate::model::{AdminState, SourceEvent, WireEncoding};

/// `/healthz` fails when the loop has not called `heartbeat` for this long.
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(10);

/// One evaluation of one group, as the loop hands it over.
#[derive(Clone, Debug)]
pub struct GroupEval {
    /// When the evaluation ran.
    pub at: Instant,
    pub health: Health,
    /// In words: "0/2 uplinks up, required 1".
    pub reason: String,
    pub enforcement: Enforcement,
    pub downlinks: Vec<DownlinkEval>,
    /// A down-delay or up-delay timer that runs after this evaluation.
    pub pending: Option<Pending>,
    /// The monitored values this evaluation used.
    pub inputs: Vec<InputValue>,
    /// True when the evaluation asked for a downlink admin-state change.
    pub decided: bool,
    /// Receive time of the notification that triggered this evaluation (None for timer or
    /// periodic evaluations): feeds the notification-to-decision histogram.
    pub trigger: Option<Instant>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DownlinkEval {
    pub name: String,
    /// What the controller wants; None while it has no opinion (no evidence yet).
    pub desired: Option<AdminState>,
    /// What the device last reported; None when unknown.
    pub observed: Option<AdminState>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Pending {
    /// `Disable` for a running down-delay, `Enable` for an up-delay.
    pub action: AdminState,
    pub fires_at: Instant,
}

#[derive(Clone, Debug, PartialEq)]
pub struct InputValue {
    /// Canonical path, `/interface[name=ethernet-1/49]/oper-state`.
    pub path: String,
    /// None when absent (never reported, or deleted).
    pub value: Option<String>,
    pub received: Option<Instant>,
}

/// How a Set (or its dry-run line) ended.
#[derive(Clone, Debug, PartialEq)]
pub enum SetResult {
    Ok,
    DryRun,
    Failed(String),
    /// Refused for good by the device (its message); the group is parked.
    Refused(String),
}

impl SetResult {
    fn as_str(&self) -> &'static str {
        match self {
            SetResult::Ok => "ok",
            SetResult::DryRun => "dry-run",
            SetResult::Failed(_) => "failed",
            SetResult::Refused(_) => "refused",
        }
    }
}

/// Cheap to clone; every clone records into and reads from the same board.
#[derive(Clone)]
pub struct Board {
    shared: Arc<Shared>,
}

struct Shared {
    version: String,
    started: Instant,
    started_wall: SystemTime,
    /// Microseconds after `started` of the last heartbeat.
    heartbeat_us: AtomicU64,
    heartbeat_timeout_ms: AtomicU64,
    metrics: Metrics,
    state: Mutex<State>,
}

struct State {
    role: Role,
    leader_election: Option<LeaderElectionStatus>,
    config_loaded: bool,
    dry_run: bool,
    override_file: Option<PathBuf>,
    override_now: Override,
    targets: BTreeMap<String, TargetEntry>,
    groups: BTreeMap<String, GroupEntry>,
    services: BTreeMap<String, ServiceEntry>,
}

struct TargetEntry {
    state: ConnState,
    since: Option<Instant>,
    synced_since: Option<Instant>,
    ever_synced: bool,
    allow_absent: bool,
    connects: u64,
    /// The encoding of the current (or last) subscription.
    encoding: Option<WireEncoding>,
    last_error: Option<(Instant, String)>,
    notifications: u64,
    updates: u64,
    last_notification: Option<Instant>,
    // Handles into the metric families, so a notification costs no label lookup.
    notifications_counter: Counter,
    updates_counter: Counter,
    reconnects_counter: Counter,
}

struct GroupEntry {
    target: String,
    health: Health,
    reason: String,
    enforcement: Enforcement,
    downlinks: Vec<DownlinkEval>,
    pending: Option<Pending>,
    evaluated_at: Option<Instant>,
    inputs: Vec<InputValue>,
    output: Option<Output>,
    stats: Stats,
}

struct Output {
    line: String,
    started: Instant,
    finished: Option<(Instant, SetResult)>,
}

#[derive(Default)]
struct Stats {
    evaluations: u64,
    decisions: u64,
    sets_sent: u64,
    sets_failed: u64,
    retries: u64,
    last_decision: Option<Instant>,
    last_decision_to_set: Option<Duration>,
}

struct ServiceEntry {
    state: ServiceState,
    last_check: Option<Instant>,
    detail: Option<String>,
}

impl Board {
    /// An empty board: no targets, no groups, config not loaded, role `single`.
    pub fn new(version: &str) -> Board {
        let metrics = Metrics::new(version);
        metrics.set_role(Role::Single);
        Board {
            shared: Arc::new(Shared {
                version: version.to_string(),
                started: Instant::now(),
                started_wall: SystemTime::now(),
                heartbeat_us: AtomicU64::new(0),
                heartbeat_timeout_ms: AtomicU64::new(DEFAULT_HEARTBEAT_TIMEOUT.as_millis() as u64),
                metrics,
                state: Mutex::new(State {
                    role: Role::Single,
                    leader_election: None,
                    config_loaded: false,
                    dry_run: false,
                    override_file: None,
                    override_now: Override::None,
                    targets: BTreeMap::new(),
                    groups: BTreeMap::new(),
                    services: BTreeMap::new(),
                }),
            }),
        }
    }

    /// A board declaring every target, group and service of `config`, marked loaded.
    /// With leader election configured the role starts as `standby`.
    pub fn from_config(config: &Config, version: &str, dry_run: bool) -> Board {
        let board = Board::new(version);
        for name in config.targets.keys() {
            board.declare_target(name, false);
        }
        for (name, group) in &config.groups {
            board.declare_group(name, &group.target, &group.downlinks, group.enforce);
        }
        for name in config.services.keys() {
            board.service(name, ServiceState::Init, None, None);
        }
        board.set_override_file(config.override_file.clone());
        board.set_dry_run(dry_run);
        board.set_role(if config.leader_election.is_some() { Role::Standby } else { Role::Single });
        board.set_config_loaded(true);
        board
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves plain data behind; keep serving it.
        self.shared.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

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

    /// What the override file said at the last read (see `read_override`). True when that
    /// differs from the read before (the caller logs the change).
    pub fn override_seen(&self, ov: &Override) -> bool {
        let mut st = self.state();
        let changed = st.override_now != *ov;
        if changed {
            st.override_now = ov.clone();
        }
        changed
    }

    pub fn set_role(&self, role: Role) {
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
        let labels = GroupLabels { group: group.to_string() };
        m.evaluations.get_or_create(&labels).inc();
        if let Some(trigger) = eval.trigger {
            let secs = eval.at.saturating_duration_since(trigger).as_secs_f64();
            m.notification_to_decision.get_or_create(&labels).observe(secs);
        }
        if eval.decided {
            m.decisions.get_or_create(&labels).inc();
        }

        let mut st = self.state();
        let entry = group_entry(&mut st, m, group);
        // The gauges mirror the entry (set together since it was created): touch them only
        // when a value changes. Every notification re-evaluates its groups and almost none
        // change anything, while each gauge update allocates and hashes its labels; this was
        // ~14 % of the controller's CPU in opergroupd-bench's 1000-leaf storm.
        if entry.health != eval.health {
            m.set_group_state(group, eval.health);
        }
        if entry.enforcement != eval.enforcement {
            m.set_enforcement(group, eval.enforcement);
        }
        let action = |p: &Option<Pending>| p.as_ref().map(|p| p.action);
        if action(&entry.pending) != action(&eval.pending) {
            m.set_pending(group, eval.pending.as_ref().map(|p| p.action.as_str()));
        }
        for d in &eval.downlinks {
            let before = entry.downlinks.iter().find(|b| b.name == d.name);
            let desired_changed = before.is_none_or(|b| b.desired != d.desired);
            let observed_changed = before.is_none_or(|b| b.observed != d.observed);
            if !desired_changed && !observed_changed {
                continue;
            }
            let labels =
                DownlinkLabels { group: group.to_string(), target: entry.target.clone(), interface: d.name.clone() };
            let enabled = |s: Option<AdminState>| s.map(|s| s == AdminState::Enable);
            if desired_changed {
                Metrics::set_downlink(&m.downlink_desired, labels.clone(), enabled(d.desired));
            }
            if observed_changed {
                Metrics::set_downlink(&m.downlink_observed, labels, enabled(d.observed));
            }
        }
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
        let labels = GroupLabels { group: group.to_string() };
        self.metrics().retries.get_or_create(&labels).inc();
        let mut st = self.state();
        group_entry(&mut st, self.metrics(), group).stats.retries += 1;
    }

    /// The Set started last for `group` ended (after any retries).
    pub fn set_finished(&self, group: &str, result: SetResult, at: Instant) {
        let m = self.metrics();
        let set_labels = SetLabels { group: group.to_string(), result: result.as_str().into() };
        m.sets.get_or_create(&set_labels).inc();
        let mut st = self.state();
        let entry = group_entry(&mut st, m, group);
        if matches!(result, SetResult::Failed(_) | SetResult::Refused(_)) {
            entry.stats.sets_failed += 1;
        } else if let Some(decided) = entry.stats.last_decision {
            let latency = at.saturating_duration_since(decided);
            entry.stats.last_decision_to_set = Some(latency);
            let labels = GroupLabels { group: group.to_string() };
            m.decision_to_set.get_or_create(&labels).observe(latency.as_secs_f64());
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

    // ---- readers ----------------------------------------------------------------------

    /// `/metrics` body (OpenMetrics text).
    pub fn metrics_text(&self) -> String {
        self.metrics().render()
    }

    /// `/healthz`: Ok while the loop has called `heartbeat` recently (counting from the
    /// board's creation, so a starting process is not declared dead).
    pub fn liveness(&self, now: Instant) -> Result<(), String> {
        let last = Duration::from_micros(self.shared.heartbeat_us.load(Ordering::Relaxed));
        let age = now.saturating_duration_since(self.shared.started).saturating_sub(last);
        let limit = Duration::from_millis(self.shared.heartbeat_timeout_ms.load(Ordering::Relaxed));
        if age > limit {
            Err(format!("control loop silent for {} ms (limit {} ms)", age.as_millis(), limit.as_millis()))
        } else {
            Ok(())
        }
    }

    /// `/readyz`: Ok once the config is loaded and every target not allowed to be absent
    /// has synced at least once.
    pub fn readiness(&self) -> Result<(), String> {
        let st = self.state();
        if !st.config_loaded {
            return Err("configuration not loaded".to_string());
        }
        let waiting: Vec<String> = st
            .targets
            .iter()
            .filter(|(_, t)| !t.ever_synced && !t.allow_absent)
            .map(|(name, t)| match &t.last_error {
                Some((_, e)) => format!("{name} ({}: {e})", t.state.as_str()),
                None => format!("{name} ({})", t.state.as_str()),
            })
            .collect();
        if waiting.is_empty() { Ok(()) } else { Err(format!("waiting for first sync of {}", waiting.join(", "))) }
    }

    /// The `/status` document as of `now`.
    pub fn document(&self, now: Instant) -> StatusDocument {
        let clock = Clock { started: self.shared.started, started_wall: self.shared.started_wall };
        let heartbeat = Duration::from_micros(self.shared.heartbeat_us.load(Ordering::Relaxed));
        let since_start = now.saturating_duration_since(self.shared.started);
        let st = self.state();
        let at = |i: Option<Instant>| i.map(|i| clock.rfc3339(i));
        let targets = st
            .targets
            .iter()
            .map(|(name, t)| TargetStatus {
                name: name.clone(),
                state: t.state,
                since: at(t.since),
                synced_since: at(t.synced_since),
                ever_synced: t.ever_synced,
                allow_absent: t.allow_absent,
                last_error: t.last_error.as_ref().map(|(_, e)| e.clone()),
                last_error_at: at(t.last_error.as_ref().map(|(i, _)| *i)),
                reconnects: t.connects.saturating_sub(1),
                encoding: t.encoding.map(|e| e.as_str().to_string()),
                notifications: t.notifications,
                updates: t.updates,
                last_notification_at: at(t.last_notification),
            })
            .collect();
        let groups = st
            .groups
            .iter()
            .map(|(name, g)| GroupStatus {
                name: name.clone(),
                target: g.target.clone(),
                oper_state: g.health,
                reason: g.reason.clone(),
                enforcement: g.enforcement,
                downlinks: g
                    .downlinks
                    .iter()
                    .map(|d| DownlinkStatus {
                        name: d.name.clone(),
                        desired: d.desired.map(|s| s.as_str().to_string()),
                        observed: d.observed.map(|s| s.as_str().to_string()),
                    })
                    .collect(),
                pending: g.pending.as_ref().map(|p| PendingStatus {
                    action: p.action.as_str().to_string(),
                    fires_at: clock.rfc3339(p.fires_at),
                    fires_in_ms: signed_ms(now, p.fires_at),
                }),
                last_input: g.evaluated_at.map(|evaluated| InputStatus {
                    evaluated_at: clock.rfc3339(evaluated),
                    values: g
                        .inputs
                        .iter()
                        .map(|v| InputValueStatus {
                            path: v.path.clone(),
                            value: v.value.clone(),
                            received_at: at(v.received),
                        })
                        .collect(),
                }),
                last_output: g.output.as_ref().map(|o| OutputStatus {
                    line: o.line.clone(),
                    started_at: clock.rfc3339(o.started),
                    result: o.finished.as_ref().map_or("in-flight", |(_, r)| r.as_str()).to_string(),
                    error: match &o.finished {
                        Some((_, SetResult::Failed(e) | SetResult::Refused(e))) => Some(e.clone()),
                        _ => None,
                    },
                    finished_at: at(o.finished.as_ref().map(|(i, _)| *i)),
                    latency_ms: o.finished.as_ref().map(|(i, _)| ms(i.saturating_duration_since(o.started))),
                }),
                statistics: GroupStatistics {
                    evaluations: g.stats.evaluations,
                    decisions: g.stats.decisions,
                    sets_sent: g.stats.sets_sent,
                    sets_failed: g.stats.sets_failed,
                    retries: g.stats.retries,
                    last_decision_at: at(g.stats.last_decision),
                    last_decision_to_set_ms: g.stats.last_decision_to_set.map(ms),
                },
            })
            .collect();
        let services = st
            .services
            .iter()
            .map(|(name, s)| ServiceStatus {
                name: name.clone(),
                state: s.state,
                last_check: at(s.last_check),
                detail: s.detail.clone(),
            })
            .collect();
        let suspends = st.override_now.as_str();
        let suspended_groups = match &st.override_now {
            Override::Groups(g) => g.iter().cloned().collect(),
            Override::None | Override::All => Vec::new(),
        };
        StatusDocument {
            generated_at: clock.rfc3339(now),
            controller: ControllerStatus {
                version: self.shared.version.clone(),
                role: st.role,
                leader_election: st.leader_election.clone(),
                started_at: clock.rfc3339(self.shared.started),
                uptime_ms: u64::try_from(since_start.as_millis()).unwrap_or(u64::MAX),
                last_heartbeat_ms_ago: (heartbeat > Duration::ZERO)
                    .then(|| u64::try_from(since_start.saturating_sub(heartbeat).as_millis()).unwrap_or(u64::MAX)),
                config_loaded: st.config_loaded,
                dry_run: st.dry_run,
                maintenance: MaintenanceStatus {
                    override_file: st.override_file.as_ref().map(|p| p.display().to_string()),
                    suspends: suspends.to_string(),
                    groups: suspended_groups,
                },
            },
            targets,
            groups,
            services,
        }
    }
}

fn target_entry<'a>(st: &'a mut State, m: &Metrics, name: &str) -> &'a mut TargetEntry {
    st.targets.entry(name.to_string()).or_insert_with(|| {
        let labels = TargetLabels { target: name.to_string() };
        m.set_target_state(name, ConnState::Connecting);
        TargetEntry {
            state: ConnState::Connecting,
            since: None,
            synced_since: None,
            ever_synced: false,
            allow_absent: false,
            connects: 0,
            encoding: None,
            last_error: None,
            notifications: 0,
            updates: 0,
            last_notification: None,
            notifications_counter: m.notifications.get_or_create_owned(&labels),
            updates_counter: m.updates.get_or_create_owned(&labels),
            reconnects_counter: m.reconnects.get_or_create_owned(&labels),
        }
    })
}

fn group_entry<'a>(st: &'a mut State, m: &Metrics, name: &str) -> &'a mut GroupEntry {
    st.groups.entry(name.to_string()).or_insert_with(|| {
        let labels = GroupLabels { group: name.to_string() };
        // Create the per-group series up front, so dashboards see zeros, not gaps.
        let _ = m.evaluations.get_or_create(&labels);
        let _ = m.decisions.get_or_create(&labels);
        let _ = m.retries.get_or_create(&labels);
        let _ = m.notification_to_decision.get_or_create(&labels);
        let _ = m.decision_to_set.get_or_create(&labels);
        m.set_group_state(name, Health::Unknown);
        m.set_enforcement(name, Enforcement::Enforcing);
        m.set_pending(name, None);
        GroupEntry {
            target: String::new(),
            health: Health::Unknown,
            reason: "not evaluated yet".to_string(),
            enforcement: Enforcement::Enforcing,
            downlinks: Vec::new(),
            pending: None,
            evaluated_at: None,
            inputs: Vec::new(),
            output: None,
            stats: Stats::default(),
        }
    })
}

/// Turns monotonic instants into wall-clock strings, anchored at the board's creation.
struct Clock {
    started: Instant,
    started_wall: SystemTime,
}

impl Clock {
    fn wall(&self, i: Instant) -> SystemTime {
        match i.checked_duration_since(self.started) {
            Some(after) => self.started_wall + after,
            None => self.started_wall - self.started.duration_since(i),
        }
    }

    fn rfc3339(&self, i: Instant) -> String {
        rfc3339(self.wall(i))
    }
}

/// RFC 3339 in UTC with millisecond precision: `2026-11-01T10:00:03.250Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    let dt = dt.replace_nanosecond(dt.nanosecond() / 1_000_000 * 1_000_000).unwrap_or(dt);
    dt.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| "invalid-time".to_string())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn signed_ms(now: Instant, at: Instant) -> i64 {
    match at.checked_duration_since(now) {
        Some(ahead) => i64::try_from(ahead.as_millis()).unwrap_or(i64::MAX),
        None => -i64::try_from(now.duration_since(at).as_millis()).unwrap_or(i64::MAX),
    }
}
