//! The read side of a running actuator: per-service snapshots and session counters for
//! /status and /metrics, and the oper-group input.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;

use super::config::Service;
use super::machine::{self, Desired, State};
use super::protocol;

/// The state of one service, for /status and /metrics.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ServiceSnapshot {
    pub name: String,
    pub prefix: String,
    /// init | rising | up | falling | down | disabled
    pub state: machine::Phase,
    /// Consecutive results in the current direction while rising/falling.
    pub consecutive: u32,
    /// The followed oper-group's decision as last fed in: true = enable (`None`: not followed or none yet).
    pub group_enabled: Option<bool>,
    /// What should be in ExaBGP: "undecided", "withdrawn" or the announce command.
    pub desired: String,
    /// What ExaBGP acknowledged: "unknown", "withdrawn" or the announce command.
    pub in_place: String,
    /// Result of the last round of checks ("ok" or the first failure).
    pub last_check: Option<String>,
    pub checks_run: u64,
    pub checks_failed: u64,
    pub transitions: u64,
}

/// Counters of the ExaBGP session, for /status and /metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SessionStatus {
    pub commands_sent: u64,
    pub errors: u64,
    pub ack_timeouts: u64,
    /// ACKs given up as lost after `resend_after` (their commands were sent again).
    pub lost_acks: u64,
    /// An ACK is overdue right now.
    pub unresponsive: bool,
    pub neighbor_ups: u64,
}

#[derive(Clone, Debug)]
pub(super) struct ProbeStatus {
    pub(super) state: State,
    pub(super) desired: Desired,
    pub(super) group_enabled: Option<bool>,
    pub(super) last_check: Option<String>,
    pub(super) checks_run: u64,
    pub(super) checks_failed: u64,
    pub(super) transitions: u64,
}

/// Read side of a running actuator: status snapshots and the oper-group input.
/// Cheap to clone.
#[derive(Clone)]
pub struct Handle {
    pub(super) services: Arc<Vec<(Service, watch::Receiver<ProbeStatus>)>>,
    pub(super) in_place: watch::Receiver<Vec<String>>,
    pub(super) session: watch::Receiver<SessionStatus>,
    pub(super) groups: Arc<watch::Sender<BTreeMap<String, bool>>>,
}

impl Handle {
    /// Per-service state, in configuration order.
    pub fn snapshot(&self) -> Vec<ServiceSnapshot> {
        let in_place = self.in_place.borrow().clone();
        self.services
            .iter()
            .enumerate()
            .map(|(i, (svc, rx))| {
                let p = rx.borrow().clone();
                ServiceSnapshot {
                    name: svc.name.clone(),
                    prefix: svc.prefix.to_string(),
                    state: p.state.phase,
                    consecutive: p.state.count,
                    group_enabled: p.group_enabled,
                    desired: match &p.desired {
                        Desired::Undecided => "undecided".into(),
                        Desired::Withdrawn => "withdrawn".into(),
                        Desired::Announced(r) => protocol::announce(r),
                    },
                    in_place: in_place.get(i).cloned().unwrap_or_else(|| "unknown".into()),
                    last_check: p.last_check,
                    checks_run: p.checks_run,
                    checks_failed: p.checks_failed,
                    transitions: p.transitions,
                }
            })
            .collect()
    }

    pub fn session(&self) -> SessionStatus {
        self.session.borrow().clone()
    }

    /// Feed an oper-group's decision, the one its downlinks follow (after down-delay and
    /// up-delay): `true` = enable, `false` = disable. Services with `group: NAME` announce
    /// as up only while it is `true`; a group never fed has no effect.
    pub fn set_group_decision(&self, group: &str, enabled: bool) {
        self.groups.send_modify(|g| {
            g.insert(group.to_string(), enabled);
        });
    }
}
