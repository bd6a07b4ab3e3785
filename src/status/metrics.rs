//! Prometheus metrics (OpenMetrics text) through the `prometheus-client` crate.
//!
//! Every name starts with `opergroupd_`. Enumerations (target state, group health,
//! enforcement, role, service state) are exported as one gauge per possible value with a
//! `state`-like label, exactly one of them 1: this is what Grafana's state timeline wants.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use super::document::{ConnState, Enforcement, Health, ReplicaRole, ServiceState};
use crate::config::HistogramScope;

/// The content type `/metrics` answers with.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Latency buckets in seconds, 100 µs .. 10 s, roughly 1-2.5-5 per decade.
const LATENCY_BUCKETS: [f64; 16] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Series of one group's two latency histograms: buckets, `+Inf`, sum and count each.
pub const LATENCY_SERIES_PER_GROUP: usize = 2 * (LATENCY_BUCKETS.len() + 3);

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TargetLabels {
    pub target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TargetStateLabels {
    pub target: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct GroupLabels {
    pub group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct GroupStateLabels {
    pub group: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DownlinkLabels {
    pub group: String,
    pub target: String,
    pub interface: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct SetLabels {
    pub group: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PendingLabels {
    pub group: String,
    pub action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RoleLabels {
    pub role: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ServiceLabels {
    pub service: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// A latency histogram per group, or one for the whole fleet (`metrics.histograms`).
pub(crate) enum Latency {
    PerGroup(HistogramFamily<GroupLabels>),
    Fleet(Histogram),
}

impl Latency {
    fn new(scope: HistogramScope) -> Latency {
        match scope {
            HistogramScope::PerGroup => Latency::PerGroup(Family::new_with_constructor(latency_histogram)),
            HistogramScope::Fleet => Latency::Fleet(latency_histogram()),
        }
    }

    /// The histogram a group observes into.
    pub fn for_group(&self, labels: &GroupLabels) -> Histogram {
        match self {
            Latency::PerGroup(f) => f.get_or_create_owned(labels),
            Latency::Fleet(h) => h.clone(),
        }
    }

    fn register(&self, r: &mut Registry, name: &str, help: &str) {
        match self {
            Latency::PerGroup(f) => r.register(name, help, f.clone()),
            Latency::Fleet(h) => r.register(name, help, h.clone()),
        }
    }
}

pub(crate) struct Metrics {
    registry: Registry,
    pub target_up: Family<TargetLabels, Gauge>,
    pub target_state: Family<TargetStateLabels, Gauge>,
    pub reconnects: Family<TargetLabels, Counter>,
    pub notifications: Family<TargetLabels, Counter>,
    pub updates: Family<TargetLabels, Counter>,
    pub group_state: Family<GroupStateLabels, Gauge>,
    pub group_enforcement: Family<GroupStateLabels, Gauge>,
    pub group_pending: Family<PendingLabels, Gauge>,
    pub downlink_desired: Family<DownlinkLabels, Gauge>,
    pub downlink_observed: Family<DownlinkLabels, Gauge>,
    pub evaluations: Family<GroupLabels, Counter>,
    pub decisions: Family<GroupLabels, Counter>,
    pub sets: Family<SetLabels, Counter>,
    pub retries: Family<GroupLabels, Counter>,
    pub notification_to_decision: Latency,
    pub decision_to_set: Latency,
    pub role: Family<RoleLabels, Gauge>,
    pub service_state: Family<ServiceLabels, Gauge>,
}

impl Metrics {
    pub fn new(version: &str, histograms: HistogramScope) -> Metrics {
        let mut m = Metrics {
            target_up: Family::default(),
            target_state: Family::default(),
            reconnects: Family::default(),
            notifications: Family::default(),
            updates: Family::default(),
            group_state: Family::default(),
            group_enforcement: Family::default(),
            group_pending: Family::default(),
            downlink_desired: Family::default(),
            downlink_observed: Family::default(),
            evaluations: Family::default(),
            decisions: Family::default(),
            sets: Family::default(),
            retries: Family::default(),
            notification_to_decision: Latency::new(histograms),
            decision_to_set: Latency::new(histograms),
            role: Family::default(),
            service_state: Family::default(),
            registry: Registry::with_prefix("opergroupd"),
        };
        let r = &mut m.registry;
        r.register("build", "The running opergroupd version", Info::new(BuildLabels { version: version.to_string() }));
        r.register(
            "target_up",
            "1 while the target's subscription is live and synced (its data is evidence)",
            m.target_up.clone(),
        );
        r.register(
            "target_state",
            "Target connection state: 1 for the current state (connecting, synced, stale)",
            m.target_state.clone(),
        );
        r.register("target_reconnects", "Connection attempts to the target after the first", m.reconnects.clone());
        r.register("notifications", "gNMI notifications received from the target", m.notifications.clone());
        r.register(
            "notification_updates",
            "Updates and deletes carried by the target's notifications",
            m.updates.clone(),
        );
        r.register(
            "group_state",
            "Group oper-state: 1 for the current state (healthy, unhealthy, not-ready, unknown)",
            m.group_state.clone(),
        );
        r.register(
            "group_enforcement",
            "Group enforcement: 1 for the current mode (enforcing, observe-only, suspended)",
            m.group_enforcement.clone(),
        );
        r.register(
            "group_pending",
            "1 while a down-delay (action=disable) or up-delay (action=enable) timer runs",
            m.group_pending.clone(),
        );
        r.register(
            "downlink_desired_enabled",
            "Downlink admin-state the controller wants: 1 enable, 0 disable (absent: no opinion)",
            m.downlink_desired.clone(),
        );
        r.register(
            "downlink_observed_enabled",
            "Downlink admin-state the device reports: 1 enable, 0 disable (absent: unknown)",
            m.downlink_observed.clone(),
        );
        r.register("group_evaluations", "Group evaluations", m.evaluations.clone());
        r.register("group_decisions", "Evaluations that asked for a downlink admin-state change", m.decisions.clone());
        r.register("sets", "Sets finished, by result (ok, failed, dry-run)", m.sets.clone());
        r.register("set_retries", "Set attempts retried after a failure", m.retries.clone());
        m.notification_to_decision.register(
            r,
            "notification_to_decision_seconds",
            "From receiving the notification that triggered an evaluation to its decision",
        );
        m.decision_to_set.register(
            r,
            "decision_to_set_seconds",
            "From a decision to its Set being acknowledged (or printed in dry-run)",
        );
        r.register("role", "Controller role: 1 for the current role (leader, standby, single)", m.role.clone());
        r.register("service_state", "ExaBGP anycast service state: 1 for the current state", m.service_state.clone());
        m
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an encoder error would be a bug in a label.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            out = format!("# encoding metrics failed: {e}\n# EOF\n");
        }
        out
    }

    pub fn set_target_state(&self, target: &str, state: ConnState) {
        for s in ConnState::ALL {
            let labels = TargetStateLabels { target: target.to_string(), state: s.as_str().into() };
            self.target_state.get_or_create(&labels).set(i64::from(s == state));
        }
        let up = TargetLabels { target: target.to_string() };
        self.target_up.get_or_create(&up).set(i64::from(state == ConnState::Synced));
    }

    pub fn set_group_state(&self, group: &str, health: Health) {
        for s in Health::ALL {
            let labels = GroupStateLabels { group: group.to_string(), state: s.as_str().into() };
            self.group_state.get_or_create(&labels).set(i64::from(s == health));
        }
    }

    pub fn set_enforcement(&self, group: &str, mode: Enforcement) {
        for s in Enforcement::ALL {
            let labels = GroupStateLabels { group: group.to_string(), state: s.as_str().into() };
            self.group_enforcement.get_or_create(&labels).set(i64::from(s == mode));
        }
    }

    pub fn set_pending(&self, group: &str, action: Option<&str>) {
        for a in ["disable", "enable"] {
            let labels = PendingLabels { group: group.to_string(), action: a.into() };
            self.group_pending.get_or_create(&labels).set(i64::from(action == Some(a)));
        }
    }

    pub fn set_role(&self, role: ReplicaRole) {
        for r in ReplicaRole::ALL {
            let labels = RoleLabels { role: r.as_str().into() };
            self.role.get_or_create(&labels).set(i64::from(r == role));
        }
    }

    pub fn set_service_state(&self, service: &str, state: ServiceState) {
        for s in ServiceState::ALL {
            let labels = ServiceLabels { service: service.to_string(), state: s.as_str().into() };
            self.service_state.get_or_create(&labels).set(i64::from(s == state));
        }
    }

    /// Desired or observed admin-state; `None` removes the series (no opinion / unknown).
    pub fn set_downlink(family: &Family<DownlinkLabels, Gauge>, labels: DownlinkLabels, enabled: Option<bool>) {
        match enabled {
            Some(on) => {
                family.get_or_create(&labels).set(i64::from(on));
            }
            None => {
                family.remove(&labels);
            }
        }
    }
}
