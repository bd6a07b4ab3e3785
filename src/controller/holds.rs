//! The fabric-wide safety stage in the loop: after a target's groups are evaluated, judge
//! every enforcing group's wish against segments and the blast-radius cap
//! (`crate::safety`, pure), and record holds that changed: one log line per change,
//! status, and the targets whose groups may now send.

use tracing::{info, warn};

use crate::model::TargetName;
use crate::policy::Health;
use crate::safety::{self, Member};

use super::options::LoopEvent;
use super::runtime::Loop;

impl Loop {
    /// Returns the targets of groups whose hold changed.
    pub(super) fn apply_safety(&mut self) -> Vec<TargetName> {
        if self.rules.is_empty() {
            return Vec::new();
        }
        let members: Vec<Member> = self
            .groups
            .iter()
            .filter(|g| g.spec.enforce)
            .map(|g| {
                let health = g.last.as_ref().map_or(Health::Unknown, |(h, _, _)| *h);
                let view = self.state.target(&g.spec.target);
                Member::of(&g.spec, &view, health, g.pending.as_ref(), g.disabled_by_us)
            })
            .collect();
        let holds = safety::holds(&self.rules, &members);
        let mut changed = Vec::new();
        let now = std::time::Instant::now();
        let mut events = Vec::new();
        for g in self.groups.iter_mut().filter(|g| g.spec.enforce) {
            let hold = holds.get(&g.spec.name).cloned();
            if hold == g.hold {
                continue;
            }
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
}
