//! The fabric-wide safety stage in the loop: after a target's groups are evaluated, judge
//! every enforcing group's wish against segments and the blast-radius cap
//! (`crate::safety`, pure), and record holds that changed: one log line per change,
//! status, and the targets whose groups may now send.
//!
//! The stage keeps its view of the fabric between rounds and re-reads only the groups the
//! loop touched since the last round (evaluated, or a disable put on the wire), so a round
//! costs what changed and what wants a disable, not the number of groups.

use tracing::{info, warn};

use crate::model::TargetName;
use crate::policy::Health;
use crate::safety::{Fabric, Member, Rules};
use crate::state::State;

use super::options::LoopEvent;
use super::runtime::{GroupRuntime, Loop};

pub(super) struct SafetyStage {
    rules: Rules,
    fabric: Fabric,
    /// Group index -> member index (enforcing groups only).
    member_of: Vec<Option<usize>>,
    /// Member index -> group index.
    group_of: Vec<usize>,
    /// Groups whose verdict, pending Set, `disabled_by_us` or target may have changed since
    /// the last round.
    touched: Vec<usize>,
}

impl SafetyStage {
    pub(super) fn new(rules: Rules, groups: &[GroupRuntime]) -> SafetyStage {
        let enforcing: Vec<usize> = (0..groups.len()).filter(|&g| groups[g].spec.enforce).collect();
        let fabric = Fabric::new(&rules, enforcing.iter().map(|&g| Member::named(&groups[g].spec.name)).collect());
        // The fabric keeps its members in name order; map both ways by name.
        let mut member_of = vec![None; groups.len()];
        let mut group_of = vec![0; enforcing.len()];
        for &g in &enforcing {
            let name = groups[g].spec.name.as_str();
            let i = fabric
                .members()
                .binary_search_by(|m| m.name.as_str().cmp(name))
                .expect("every enforcing group is a member");
            member_of[g] = Some(i);
            group_of[i] = g;
        }
        SafetyStage { rules, fabric, member_of, group_of, touched: Vec::new() }
    }

    /// Group `g` changed in a way the next round must re-read.
    pub(super) fn touch(&mut self, g: usize) {
        if !self.rules.is_empty() && self.member_of[g].is_some() {
            self.touched.push(g);
        }
    }
}

impl Loop {
    /// Returns the targets of groups whose hold changed.
    pub(super) fn apply_safety(&mut self) -> Vec<TargetName> {
        let stage = &mut self.safety;
        if stage.rules.is_empty() {
            return Vec::new();
        }
        let mut changed_members = false;
        for g in std::mem::take(&mut stage.touched) {
            let i = stage.member_of[g].expect("touched groups are members");
            changed_members |= stage.fabric.update(i, |m| reread(m, &self.groups[g], &self.state));
        }
        #[cfg(debug_assertions)]
        self.assert_fabric_current();
        let stage = &mut self.safety;
        // Same members, same holds: the judgement is a function of them alone.
        if !changed_members {
            return Vec::new();
        }
        let moved = stage.fabric.judge(&stage.rules);
        let total = stage.fabric.members().len();
        let mut changed = Vec::new();
        let now = std::time::Instant::now();
        let mut events = Vec::new();
        for (i, hold) in moved {
            let g = &mut self.groups[stage.group_of[i]];
            let hold = hold.map(|h| h.words(&stage.rules, total));
            match &hold {
                Some(why) => {
                    warn!(group = %g.spec.name, target = %g.spec.target, reason = %why, "held: disable not sent")
                }
                None => info!(group = %g.spec.name, target = %g.spec.target, "hold released"),
            }
            if let Some(board) = &self.opts.board {
                let verdict_reason = g.last.as_ref().map(|(_, _, r)| r.as_str()).unwrap_or_default();
                board.group_held(&g.spec.name, hold.as_deref(), verdict_reason);
            }
            events.push(LoopEvent::Held { group: g.spec.name.clone(), reason: hold.clone(), at: now });
            g.hold = hold;
            let target = TargetName::from(g.spec.target.as_str());
            if !changed.contains(&target) {
                changed.push(target);
            }
        }
        for ev in events {
            self.observe(ev);
        }
        changed
    }

    /// The kept fabric must equal every member re-read afresh: a group changed without
    /// being touched would be judged on old facts (a cap counted short lets one disable
    /// too many through). Checked in every debug build, so every loop test checks it.
    #[cfg(debug_assertions)]
    fn assert_fabric_current(&self) {
        let stage = &self.safety;
        for (i, kept) in stage.fabric.members().iter().enumerate() {
            let group = &self.groups[stage.group_of[i]];
            let mut afresh = Member::named(&group.spec.name);
            reread(&mut afresh, group, &self.state);
            assert_eq!(kept, &afresh, "safety stage out of date for group {}", group.spec.name);
        }
    }
}

/// Brings `member` to `group` as the safety stage sees it now: the last verdict's health,
/// the pending Set, what the target reports, and whether we keep its downlinks disabled.
fn reread(member: &mut Member, group: &GroupRuntime, state: &State) {
    let view = state.target(&group.spec.target);
    let health = group.last.as_ref().map_or(Health::Unknown, |(h, _, _)| *h);
    member.assess(&group.spec, &view, health, group.pending.as_ref(), group.disabled_by_us);
}
