//! The status board: the control loop records what it sees and does; HTTP handlers read.
//!
//! Every recording method is synchronous and cheap (one short mutex hold, counters bumped,
//! no formatting): it is called on the hot path. Wall-clock strings and the JSON document
//! are built only when someone asks (`document`, `metrics_text`).
//!
//! By concern: this file holds what the board keeps (its entries, created with their metric
//! series); `record.rs` the loop's recording calls; `mirror.rs` how a recorded evaluation
//! mirrors into the metrics; `health.rs` `/healthz` and `/readyz`; `snapshot.rs` the
//! `/status` document.

mod health;
mod mirror;
mod record;
mod snapshot;

pub use snapshot::rfc3339;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use super::document::*;
use super::metrics::{DownlinkLabels, GroupLabels, Metrics, SetLabels, TargetLabels};
use crate::config::override_file::Override;
use crate::config::{Config, HistogramScope};
use crate::model::{AdminState, Scalar, SourceEvent, WireEncoding};

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
    /// Canonical path, `/interface[name=ethernet-1/49]/oper-state`. Shared with the group's
    /// list of inputs: an evaluation copies a pointer, not the path.
    pub path: Arc<str>,
    /// None when absent (never reported, or deleted). Formatted only when `/status` is read.
    pub value: Option<Scalar>,
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
    /// Its place in `GroupSeries::sets`.
    fn index(&self) -> usize {
        match self {
            SetResult::Ok => 0,
            SetResult::DryRun => 1,
            SetResult::Failed(_) => 2,
            SetResult::Refused(_) => 3,
        }
    }

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
    role: ReplicaRole,
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
    series: GroupSeries,
}

/// Handles into the per-group metric families, so an evaluation or a Set costs no label
/// allocation and no family lookup (the storm profile had three lookups per evaluation).
struct GroupSeries {
    evaluations: Counter,
    decisions: Counter,
    retries: Counter,
    notification_to_decision: Histogram,
    decision_to_set: Histogram,
    /// `opergroupd_sets_total` by result, made on the first Set with that result.
    sets: [Option<Counter>; 4],
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
        Board::with_histograms(version, HistogramScope::PerGroup)
    }

    /// `new`, with the latency histograms per group or for the fleet (`metrics.histograms`).
    pub fn with_histograms(version: &str, histograms: HistogramScope) -> Board {
        let metrics = Metrics::new(version, histograms);
        metrics.set_role(ReplicaRole::Single);
        Board {
            shared: Arc::new(Shared {
                version: version.to_string(),
                started: Instant::now(),
                started_wall: SystemTime::now(),
                heartbeat_us: AtomicU64::new(0),
                heartbeat_timeout_ms: AtomicU64::new(DEFAULT_HEARTBEAT_TIMEOUT.as_millis() as u64),
                metrics,
                state: Mutex::new(State {
                    role: ReplicaRole::Single,
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
        let board = Board::with_histograms(version, config.histograms);
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
        board.set_role(if config.leader_election.is_some() { ReplicaRole::Standby } else { ReplicaRole::Single });
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
}

fn target_entry<'a>(st: &'a mut State, m: &Metrics, name: &str) -> &'a mut TargetEntry {
    entry_for(&mut st.targets, name, || {
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
    entry_for(&mut st.groups, name, || new_group_entry(m, name))
}

/// The entry for `name`, made by `make` the first time. Looked up before inserting: the
/// map's `entry` would allocate the name on every notification and evaluation.
fn entry_for<'a, V>(map: &'a mut BTreeMap<String, V>, name: &str, make: impl FnOnce() -> V) -> &'a mut V {
    if !map.contains_key(name) {
        map.insert(name.to_string(), make());
    }
    map.get_mut(name).expect("present or inserted above")
}

fn new_group_entry(m: &Metrics, name: &str) -> GroupEntry {
    let labels = GroupLabels { group: name.to_string() };
    // The per-group series exist from the start, so dashboards see zeros, not gaps.
    let series = GroupSeries {
        evaluations: m.evaluations.get_or_create_owned(&labels),
        decisions: m.decisions.get_or_create_owned(&labels),
        retries: m.retries.get_or_create_owned(&labels),
        notification_to_decision: m.notification_to_decision.for_group(&labels),
        decision_to_set: m.decision_to_set.for_group(&labels),
        sets: Default::default(),
    };
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
        series,
        stats: Stats::default(),
    }
}
