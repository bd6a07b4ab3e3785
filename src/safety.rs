//! Fabric-wide safety: the stage after the per-group verdicts that no on-box script can
//! have. Pure: every enforcing group's wish and what the devices report in, the disables
//! that must wait (and why, in words) out. `policy::evaluate` stays per group.
//!
//! * **Ethernet Segments.** A member's downlinks are disabled only while at least one
//!   *other* member of its segment can carry the client: healthy, its target synced (and
//!   live), its downlinks enabled as the device reports, and not itself being disabled.
//!   Otherwise the disable is held. So a telemetry fault or a fabric-wide event never cuts
//!   a multi-homed client off from every leaf at once (the idea of MLAG's backup-link check).
//! * **Blast-radius cap** (`safety.max-disabled`). A disable that would take the number of
//!   groups the controller keeps disabled above the cap is held.
//!
//! Order: candidates are judged in group-name order, each seeing the disables granted
//! before it in the same round, so the outcome never depends on which notification
//! arrived first within one evaluation, and holds release in that same order as groups
//! recover. When members of one segment are seen failing one after another, the first seen
//! is disabled while its peer still forwards, and the later ones are held; when they are
//! seen failing in the same round, none has a peer that can forward, so every one is held
//! and the client keeps all its links until one member recovers.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::Group;
use crate::config::safety::Cap;
use crate::model::{AdminState, SetIntent};
use crate::policy::Health;
use crate::state::TargetView;

/// One enforcing group as the safety stage sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub name: String,
    /// The group's verdict wants its downlinks disabled, and a Set would change something.
    pub wants_disable: bool,
    /// Verdict healthy (uplinks and readiness).
    pub healthy: bool,
    /// Its target is synced and live: its values are evidence.
    pub live: bool,
    /// Every downlink reported `enable` by the device (evidence only while `live`).
    pub downlinks_enabled: bool,
    /// The controller disabled its downlinks and keeps them disabled (counts for the cap,
    /// whatever its target's freshness).
    pub disabled_by_us: bool,
}

impl Member {
    /// A group as the safety stage sees it: its verdict's `health`, the Set it would make
    /// (`pending`), what its target reports, and whether the controller keeps its downlinks
    /// disabled. Downlinks count as enabled only as the device's stream reports them, not
    /// from our own Set's acknowledgement.
    pub fn of(
        group: &Group,
        view: &TargetView<'_>,
        health: Health,
        pending: Option<&SetIntent>,
        disabled_by_us: bool,
    ) -> Member {
        let live = view.synced();
        let p = group.profile;
        let reported_enabled = |d: &String| {
            view.entry(&p.admin_observed(d))
                .is_some_and(|e| !e.acknowledged && p.observed_admin(&e.value) == Some(AdminState::Enable))
        };
        Member {
            name: group.name.clone(),
            wants_disable: pending.is_some_and(|i| i.changes.iter().any(|(_, v)| *v == AdminState::Disable)),
            healthy: health == Health::Healthy,
            live,
            downlinks_enabled: live && group.downlinks.iter().all(reported_enabled),
            disabled_by_us,
        }
    }
}

/// The rules, from the config.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rules {
    /// Segment name -> member group names.
    pub segments: BTreeMap<String, Vec<String>>,
    pub max_disabled: Option<Cap>,
}

impl Rules {
    pub fn from_config(config: &crate::config::Config) -> Rules {
        Rules { segments: config.segments.clone(), max_disabled: config.max_disabled }
    }

    /// Nothing to check: the stage can be skipped.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty() && self.max_disabled.is_none()
    }
}

/// Why a group's disable waits, in words for status and logs.
pub type Holds = BTreeMap<String, String>;

/// The disables among `members` that must wait, with the reason. `members` are every
/// enforcing group of the fabric; any order.
pub fn holds(rules: &Rules, members: &[Member]) -> Holds {
    let mut out = Holds::new();
    if rules.is_empty() {
        return out;
    }
    let by_name: BTreeMap<&str, &Member> = members.iter().map(|m| (m.name.as_str(), m)).collect();
    let segment_of: BTreeMap<&str, (&str, &[String])> = rules
        .segments
        .iter()
        .flat_map(|(seg, names)| names.iter().map(move |n| (n.as_str(), (seg.as_str(), names.as_slice()))))
        .collect();
    let limit = rules.max_disabled.map(|c| c.limit(members.len()));
    let mut disabled = members.iter().filter(|m| m.disabled_by_us).count();
    let mut granted: BTreeSet<&str> = BTreeSet::new();

    for m in by_name.values().filter(|m| m.wants_disable) {
        if let Some((seg, names)) = segment_of.get(m.name.as_str()) {
            let peers: Vec<&Member> =
                names.iter().filter(|n| **n != m.name).filter_map(|n| by_name.get(n.as_str()).copied()).collect();
            let can_forward = |p: &&Member| {
                p.healthy && p.live && p.downlinks_enabled && !p.wants_disable && !granted.contains(p.name.as_str())
            };
            if !peers.iter().any(can_forward) {
                let why = peers.iter().map(|p| format!("{} {}", p.name, unable(p, &granted))).collect::<Vec<_>>();
                out.insert(m.name.clone(), format!("last member of {seg} able to forward: {}", why.join(", ")));
                continue;
            }
        }
        if let (Some(limit), Some(cap)) = (limit, rules.max_disabled)
            && !m.disabled_by_us
        {
            if disabled + 1 > limit {
                out.insert(
                    m.name.clone(),
                    format!(
                        "blast-radius cap max-disabled {cap} ({limit} of {} groups) reached: {disabled} disabled",
                        members.len()
                    ),
                );
                continue;
            }
            disabled += 1;
        }
        granted.insert(m.name.as_str());
    }
    out
}

/// Why a peer cannot carry the client, in words.
fn unable(p: &Member, granted: &BTreeSet<&str>) -> &'static str {
    if !p.live {
        "has no live data (target not synced)"
    } else if !p.healthy {
        "is unhealthy"
    } else if p.wants_disable || granted.contains(p.name.as_str()) {
        "is being disabled"
    } else if !p.downlinks_enabled {
        "has its downlinks disabled"
    } else {
        "cannot forward"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A member from a compact spec: `name:flags` with w = wants disable, h = healthy,
    /// l = live, e = downlinks enabled, d = disabled by us.
    fn m(spec: &str) -> Member {
        let (name, flags) = spec.split_once(':').unwrap();
        Member {
            name: name.into(),
            wants_disable: flags.contains('w'),
            healthy: flags.contains('h'),
            live: flags.contains('l'),
            downlinks_enabled: flags.contains('e'),
            disabled_by_us: flags.contains('d'),
        }
    }

    fn es1() -> Rules {
        Rules {
            segments: BTreeMap::from([("es1".into(), vec!["leaf1-es1".into(), "leaf2-es1".into()])]),
            max_disabled: None,
        }
    }

    fn held(rules: &Rules, members: &[&str]) -> Vec<(String, String)> {
        holds(rules, &members.iter().map(|s| m(s)).collect::<Vec<_>>()).into_iter().collect()
    }

    #[test]
    fn segments_table() {
        // (members, groups held, a word the reason must contain)
        let cases: &[(&[&str], &[&str], &str)] = &[
            // Peer healthy, live, enabled: the disable goes.
            (&["leaf1-es1:wl", "leaf2-es1:hle"], &[], ""),
            // Peer unhealthy.
            (&["leaf1-es1:wl", "leaf2-es1:l"], &["leaf1-es1"], "leaf2-es1 is unhealthy"),
            // Peer already disabled (the first failure): the second member is held.
            (&["leaf1-es1:ld", "leaf2-es1:wl"], &["leaf2-es1"], "leaf1-es1 is unhealthy"),
            // Peer's target stale: never disable on stale evidence of the peer.
            (&["leaf1-es1:wl", "leaf2-es1:he"], &["leaf1-es1"], "no live data"),
            // Peer healthy but its downlinks disabled (by hand, or not yet re-enabled).
            (&["leaf1-es1:wl", "leaf2-es1:hl"], &["leaf1-es1"], "downlinks disabled"),
            // Both fail in the same round: neither has a peer that forwards.
            (&["leaf1-es1:wl", "leaf2-es1:wl"], &["leaf1-es1", "leaf2-es1"], "unhealthy"),
            // A group outside any segment is never held by one.
            (&["leaf3-es2:wl"], &[], ""),
        ];
        for (members, want, word) in cases {
            let got = held(&es1(), members);
            let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(&names, want, "{members:?}");
            for (_, why) in &got {
                assert!(why.contains(word) && why.contains("last member of es1"), "{members:?}: {why}");
            }
        }
    }

    #[test]
    fn a_peer_granted_earlier_in_the_round_does_not_count_as_forwarding() {
        // Three members, two fail at once with the third healthy: both go (the third
        // carries the client). With the third also failing, all are held.
        let rules = Rules {
            segments: BTreeMap::from([("es1".into(), vec!["a".into(), "b".into(), "c".into()])]),
            max_disabled: None,
        };
        assert!(held(&rules, &["a:wl", "b:wl", "c:hle"]).is_empty());
        assert_eq!(held(&rules, &["a:wl", "b:wl", "c:wl"]).len(), 3);
        // Two members healthy-looking only to each other: a is granted first (name order),
        // so b must not count a as able to forward.
        let two =
            Rules { segments: BTreeMap::from([("es1".into(), vec!["a".into(), "b".into()])]), max_disabled: None };
        assert!(held(&two, &["a:wl", "b:hle"]).is_empty());
    }

    #[test]
    fn cap_table() {
        let count = |n| Rules { segments: BTreeMap::new(), max_disabled: Some(Cap::Count(n)) };
        let pct = |p| Rules { segments: BTreeMap::new(), max_disabled: Some(Cap::Percent(p)) };
        // (rules, members, groups held)
        let cases: Vec<(Rules, Vec<&str>, Vec<&str>)> = vec![
            // 4 groups, max 1: the first in name order goes, the rest wait.
            (count(1), vec!["g1:wl", "g2:wl", "g3:wl", "g4:hle"], vec!["g2", "g3"]),
            // One already disabled by us: nothing more.
            (count(1), vec!["g1:ld", "g2:wl", "g3:hle", "g4:hle"], vec!["g2"]),
            // Disabled by us on a stale target still counts.
            (count(1), vec!["g1:d", "g2:wl", "g3:hle", "g4:hle"], vec!["g2"]),
            // Re-asserting a disable already counted is not a new one.
            (count(1), vec!["g1:wld", "g2:hle", "g3:hle", "g4:hle"], vec![]),
            // 50% of 4 = 2.
            (pct(50.0), vec!["g1:wl", "g2:wl", "g3:wl", "g4:wl"], vec!["g3", "g4"]),
            // 25% of 3 = 0 (rounded down): nothing may be disabled.
            (pct(25.0), vec!["g1:wl", "g2:hle", "g3:hle"], vec!["g1"]),
            // Under the cap: nothing held.
            (count(3), vec!["g1:wl", "g2:wl", "g3:hle", "g4:hle"], vec![]),
        ];
        for (rules, members, want) in cases {
            let got = held(&rules, &members);
            let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, want, "{:?} {members:?}", rules.max_disabled);
            for (_, why) in &got {
                assert!(why.contains("blast-radius cap"), "{why}");
            }
        }
    }

    #[test]
    fn no_rules_no_holds() {
        assert!(held(&Rules::default(), &["g1:wl", "g2:wl"]).is_empty());
    }
}
