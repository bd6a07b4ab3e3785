//! How a recorded evaluation mirrors into the metrics, and the `/metrics` body.

use super::*;

impl Board {
    /// `/metrics` body (OpenMetrics text).
    pub fn metrics_text(&self) -> String {
        self.metrics().render()
    }
}

/// Mirror `eval` into the gauges, given the group's `entry` before it is updated.
pub(super) fn mirror_evaluation(m: &Metrics, group: &str, entry: &GroupEntry, eval: &GroupEval) {
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
}
