//! What the loop tells status and people: leader state, role, the override file, and
//! the /status view of one evaluation.

use std::time::Instant;

use tracing::info;

use crate::config::override_file::Override;
use crate::leader::Role;
use crate::policy::Verdict;
use crate::state::TargetView;
use crate::status::{self, GroupEval};

use super::runtime::{GroupRuntime, Loop};

impl Loop {
    pub(super) fn on_heartbeat(&mut self) {
        if let Some(board) = &self.opts.board {
            board.heartbeat(Instant::now());
            if let Some(elector) = &self.opts.leader {
                let s = elector.status();
                board.set_leader_election(Some(status::LeaderElectionStatus {
                    lease: s.lease.unwrap_or_default(),
                    identity: s.identity,
                    holder: s.holder,
                    role_since: status::rfc3339(s.since),
                }));
            }
        }
    }

    pub(super) fn role_changed(&self, role: Option<Role>) {
        let shown = match role {
            None => status::ReplicaRole::Single,
            Some(Role::Leader) => status::ReplicaRole::Leader,
            Some(Role::Standby) => status::ReplicaRole::Standby,
        };
        info!(role = shown.as_str(), "role changed");
        if let Some(board) = &self.opts.board {
            board.set_role(shown);
        }
    }

    /// The override file as last read by its watcher (no I/O here), taken once per loop
    /// turn and shared by every target that turn evaluates.
    pub(super) fn read_override(&self) -> Override {
        let ov = match &self.override_rx {
            Some(rx) => rx.borrow().clone(),
            None => Override::None,
        };
        let changed = match &self.opts.board {
            Some(board) => board.override_seen(&ov),
            None => false,
        };
        if changed {
            let groups = match &ov {
                Override::Groups(g) => Some(g.iter().cloned().collect::<Vec<_>>().join(",")),
                Override::None | Override::All => None,
            };
            info!(suspends = ov.as_str(), groups = groups.as_deref(), "override file");
        }
        ov
    }
}

/// What /status shows of one evaluation.
#[allow(clippy::too_many_arguments)]
pub(super) fn group_eval(
    group: &GroupRuntime,
    verdict: &Verdict,
    view: &TargetView<'_>,
    enforcement: status::Enforcement,
    reason: String,
    decided: bool,
    trigger: Option<Instant>,
    now: Instant,
) -> GroupEval {
    let observed = |ifname: &str| view.admin_state(group.spec.profile, ifname);
    let spec = &group.spec;
    let downlinks = spec
        .downlinks
        .iter()
        .map(|d| status::DownlinkEval { name: d.clone(), desired: verdict.desired, observed: observed(d) })
        .collect();
    let inputs = group
        .inputs
        .iter()
        .map(|path| {
            let entry = view.entry(path);
            let (value, received) = (entry.map(|e| e.value.clone()), entry.map(|e| e.received));
            status::InputValue { value, received, path: path.clone() }
        })
        .collect();
    let pending = verdict.wake_at.zip(verdict.pending).map(|(fires_at, action)| status::Pending { action, fires_at });
    GroupEval { at: now, health: verdict.health, reason, enforcement, downlinks, pending, inputs, decided, trigger }
}
