//! What the loop owns: every group's spec, memory and timer, every target's Set slot.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use crate::config::{Config, Group, Target};
use crate::leader::Elector;
use crate::model::{AdminState, SetIntent, TargetName};
use crate::policy::{GroupMemory, Health};
use crate::state::State;

use super::dispatch::GroupSets;
use super::holds::SafetyStage;
use super::options::{LoopEvent, RunOptions};
use super::timers::Timers;

pub(super) struct GroupRuntime {
    pub(super) spec: Group,
    /// The paths this group's decisions read (shown as its last input); fixed by the config.
    pub(super) inputs: Vec<Arc<str>>,
    pub(super) memory: GroupMemory,
    pub(super) last: Option<(Health, Option<AdminState>, String)>,
    pub(super) wake_at: Option<Instant>,
    /// What the last evaluation wants sent; None when the device matches, or this
    /// replica may not act on the group now.
    pub(super) pending: Option<SetIntent>,
    pub(super) sets: GroupSets,
    /// The fabric-wide safety stage holds this group's disable back, and why.
    pub(super) hold: Option<String>,
    /// The controller disabled the downlinks and keeps them disabled (for the cap).
    pub(super) disabled_by_us: bool,
}

pub(super) struct TargetRuntime {
    pub(super) name: TargetName,
    pub(super) spec: Arc<Target>,
    pub(super) groups: Vec<usize>,
    /// At most one Set on the wire per target; the next one waits for its answer.
    pub(super) in_flight: bool,
}

pub(super) struct Loop {
    pub(super) opts: RunOptions,
    /// The override file's latest content, kept current by `config::override_file::watch_override`.
    pub(super) override_rx: Option<tokio::sync::watch::Receiver<crate::config::override_file::Override>>,
    pub(super) state: State,
    pub(super) groups: Vec<GroupRuntime>,
    pub(super) targets: BTreeMap<String, TargetRuntime>,
    /// Dry-run only: what was already printed per target and path, so a line is not printed
    /// again while nothing changed. Kept apart from `state`, which holds only what devices
    /// report (status shows the device's real admin-state, not the one we would set).
    pub(super) printed: HashMap<String, HashMap<String, AdminState>>,
    /// Segments and the blast-radius cap (see `crate::safety`), and its view of the fabric.
    pub(super) safety: SafetyStage,
    /// Every group's next wake-up: its policy timer, or its Set backoff while it has a Set to make.
    pub(super) timers: Timers,
}

impl Loop {
    pub(super) fn new(
        config: &Config,
        opts: RunOptions,
        override_rx: Option<tokio::sync::watch::Receiver<crate::config::override_file::Override>>,
    ) -> Self {
        let mut targets: BTreeMap<String, TargetRuntime> = config
            .targets
            .iter()
            .map(|(name, t)| {
                let rt = TargetRuntime {
                    name: TargetName::from(name.as_str()),
                    spec: Arc::new(t.clone()),
                    groups: Vec::new(),
                    in_flight: false,
                };
                (name.clone(), rt)
            })
            .collect();
        let mut groups = Vec::new();
        for spec in config.groups.values() {
            if let Some(t) = targets.get_mut(&spec.target) {
                t.groups.push(groups.len());
            }
            let inputs = crate::plan::group_subscriptions(spec).into_iter().map(Arc::from).collect();
            groups.push(GroupRuntime {
                spec: spec.clone(),
                inputs,
                memory: GroupMemory::default(),
                last: None,
                wake_at: None,
                pending: None,
                sets: GroupSets::new(opts.set_backoff_min, opts.set_backoff_max),
                hold: None,
                disabled_by_us: false,
            });
        }
        let printed = HashMap::new();
        let safety = SafetyStage::new(crate::safety::Rules::from_config(config), &groups);
        let timers = Timers::new(groups.len());
        Loop { opts, override_rx, state: State::new(), groups, targets, printed, safety, timers }
    }

    pub(super) fn next_wake(&mut self) -> Option<Instant> {
        self.timers.next()
    }

    /// Re-files the wake-ups of `target`'s groups after their memory or Sets changed.
    pub(super) fn reschedule(&mut self, target: &str) {
        let Some(t) = self.targets.get(target) else { return };
        for &g in &t.groups {
            let group = &self.groups[g];
            // While a Set is on the wire its answer re-decides the target; waking for a
            // backoff that ended meanwhile would only find the target busy, again and again.
            let set_wait = group.pending.as_ref().filter(|_| !t.in_flight).and(group.sets.wake_at());
            let due = group.wake_at.into_iter().chain(set_wait).min();
            self.timers.set(g, due);
        }
    }

    pub(super) fn observe(&self, ev: LoopEvent) {
        if let Some(tx) = &self.opts.observer {
            let _ = tx.send(ev);
        }
    }

    /// May this replica act right now? Asked at the moment of each Set.
    pub(super) fn acting(&self) -> bool {
        self.opts.leader.as_ref().is_none_or(Elector::is_leader_now)
    }
}
