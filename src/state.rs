//! The latest value per (target, canonical path) and each target's freshness.
//!
//! Pure: events carry their own times. A target's values count as evidence only between
//! `Synced` and the next `Stale`; `Stale` drops them, and the resubscription's fresh dump
//! rebuilds them before the next `Synced`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use crate::model::{AdminState, Scalar, SourceEvent, TargetName};
use crate::profile::Profile;

/// One observed leaf value.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub value: Scalar,
    /// When the controller received it.
    pub received: Instant,
    /// Device timestamp, nanoseconds since the Unix epoch (0 when absent).
    pub device_ns: i64,
    /// Written from a Set's acknowledgement, not (yet) reported by the device's stream.
    pub acknowledged: bool,
}

#[derive(Clone, Debug, Default)]
struct TargetState {
    synced: bool,
    /// When the target last became synced or stale.
    since: Option<Instant>,
    /// Why it is not synced (the stream error), once it has been stale.
    stale_reason: Option<String>,
    values: BTreeMap<String, Entry>,
    /// The paths the initial dump held at the last `Synced`: what exists on the device.
    dump: HashSet<String>,
}

/// Everything observed, for every target.
#[derive(Clone, Debug, Default)]
pub struct State {
    /// Keyed by the events' own `TargetName`: finding a target's entry costs a reference
    /// count, not a copy of its name.
    targets: HashMap<TargetName, TargetState>,
}

impl State {
    pub fn new() -> Self {
        Self::default()
    }

    /// Apply one event.
    pub fn apply(&mut self, event: &SourceEvent) {
        match event {
            SourceEvent::Notification { target, received, device_ns, updates, deletes } => {
                let t = self.targets.entry(target.clone()).or_default();
                // Deletes first: a notification that deletes and re-adds keeps the new value.
                for path in deletes {
                    remove_subtree(&mut t.values, path);
                }
                for (path, value) in updates {
                    let entry =
                        Entry { value: value.clone(), received: *received, device_ns: *device_ns, acknowledged: false };
                    match t.values.get_mut(path) {
                        Some(known) => *known = entry,
                        None => {
                            t.values.insert(path.clone(), entry);
                        }
                    }
                }
            }
            SourceEvent::Synced { target, at } => {
                let t = self.targets.entry(target.clone()).or_default();
                t.synced = true;
                t.since = Some(*at);
                t.stale_reason = None;
                t.dump = t.values.keys().cloned().collect();
            }
            SourceEvent::Stale { target, at, error } => {
                let t = self.targets.entry(target.clone()).or_default();
                t.synced = false;
                t.since = Some(*at);
                t.stale_reason = Some(error.clone());
                t.values.clear();
                t.dump.clear();
            }
            // A connection attempt changes nothing: the target stays as stale as it was.
            SourceEvent::Connecting { .. } | SourceEvent::Subscribed { .. } => {}
        }
    }

    /// A Set of `path` to `value`, sent at `sent`, was acknowledged at `now`: count the value
    /// as observed until the stream says otherwise, so the next evaluation does not send it
    /// again. Never over a value the device reported after the Set was sent (someone may
    /// have changed it since: the device is right), and never into a target that is not
    /// synced or re-synced since (its values are not evidence, or are newer than the Set).
    pub fn acknowledge(&mut self, target: &str, path: &str, value: Scalar, sent: Instant, now: Instant) -> bool {
        let Some(t) = self.targets.get_mut(target) else { return false };
        if !t.synced || t.since.is_none_or(|since| since > sent) {
            return false;
        }
        if t.values.get(path).is_some_and(|e| e.received > sent) {
            return false;
        }
        t.values.insert(path.to_string(), Entry { value, received: now, device_ns: 0, acknowledged: true });
        true
    }

    /// A read view of one target (also for targets never heard from: not synced, empty).
    pub fn target<'a>(&'a self, name: &'a str) -> TargetView<'a> {
        TargetView { name, state: self.targets.get(name) }
    }
}

/// Remove `path` and everything below it: `path/...` for a container, `path[...]...`
/// for a whole list deleted without keys. `/` (or empty) is the whole tree.
fn remove_subtree(values: &mut BTreeMap<String, Entry>, path: &str) {
    let path = path.trim_end_matches('/');
    if path.is_empty() {
        values.clear();
        return;
    }
    values.remove(path);
    for sep in ['/', '['] {
        let prefix = format!("{path}{sep}");
        let doomed: Vec<String> = values
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            values.remove(&k);
        }
    }
}

/// What policy and status read about one target.
#[derive(Clone, Copy, Debug)]
pub struct TargetView<'a> {
    name: &'a str,
    state: Option<&'a TargetState>,
}

impl<'a> TargetView<'a> {
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// True between `Synced` and the next `Stale`: only then are values evidence.
    pub fn synced(&self) -> bool {
        self.state.is_some_and(|t| t.synced)
    }

    /// Why the target is not synced, for people.
    pub fn not_synced_reason(&self) -> Option<String> {
        match self.state {
            _ if self.synced() => None,
            None => Some("no subscription yet".into()),
            Some(t) => Some(t.stale_reason.clone().unwrap_or_else(|| "waiting for sync_response".into())),
        }
    }

    /// When the target last became synced or stale.
    pub fn since(&self) -> Option<Instant> {
        self.state.and_then(|t| t.since)
    }

    /// The path was in the initial dump of the current sync (it exists on the device).
    pub fn in_dump(&self, path: &str) -> bool {
        self.synced() && self.state.is_some_and(|t| t.dump.contains(path))
    }

    pub fn get(&self, path: &str) -> Option<&'a Scalar> {
        self.entry(path).map(|e| &e.value)
    }

    /// The admin state downlink `interface` reports, read through the target's profile.
    pub fn admin_state(&self, profile: &Profile, interface: &str) -> Option<AdminState> {
        self.get(&profile.admin_observed(interface)).and_then(|v| profile.observed_admin(v))
    }

    /// The value and when it was received.
    pub fn entry(&self, path: &str) -> Option<&'a Entry> {
        self.state.and_then(|t| t.values.get(path))
    }

    /// Every value, in path order.
    pub fn values(&self) -> impl Iterator<Item = (&'a str, &'a Entry)> + 'a {
        self.state.into_iter().flat_map(|t| t.values.iter().map(|(k, v)| (k.as_str(), v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::srl_paths;
    use std::time::Duration;

    fn note(t0: Instant, updates: &[(&str, Scalar)], deletes: &[&str]) -> SourceEvent {
        SourceEvent::Notification {
            target: "leaf1".into(),
            received: t0,
            device_ns: 7,
            updates: updates.iter().map(|(p, v)| (p.to_string(), v.clone())).collect(),
            deletes: deletes.iter().map(|d| d.to_string()).collect(),
        }
    }

    fn s(v: &str) -> Scalar {
        Scalar::Str(v.into())
    }

    #[test]
    fn an_acknowledged_set_never_overwrites_a_newer_device_value_nor_a_stale_target() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let admin = srl_paths::admin_state("ethernet-1/1");
        let mut st = State::new();
        st.apply(&note(t0, &[(&admin, s("enable"))], &[]));
        st.apply(&SourceEvent::Synced { target: "leaf1".into(), at: ms(1) });

        // Sent at 10, acknowledged at 20, nothing newer from the device: counts as observed.
        assert!(st.acknowledge("leaf1", &admin, Scalar::Str("disable".into()), ms(10), ms(20)));
        assert_eq!(st.target("leaf1").get(&admin), Some(&s("disable")));

        // Sent at 30; the device reported `enable` at 35 (someone re-enabled the port);
        // the acknowledgement arriving at 40 must not hide that.
        st.apply(&note(ms(35), &[(&admin, s("enable"))], &[]));
        assert!(!st.acknowledge("leaf1", &admin, Scalar::Str("disable".into()), ms(30), ms(40)));
        assert_eq!(st.target("leaf1").get(&admin), Some(&s("enable")));

        // A target that went stale, or re-synced after the Set was sent, gets nothing written.
        st.apply(&SourceEvent::Stale { target: "leaf1".into(), at: ms(50), error: "reset".into() });
        assert!(!st.acknowledge("leaf1", &admin, Scalar::Str("disable".into()), ms(45), ms(55)));
        assert_eq!(st.target("leaf1").get(&admin), None);
        st.apply(&note(ms(60), &[(&admin, s("enable"))], &[]));
        st.apply(&SourceEvent::Synced { target: "leaf1".into(), at: ms(61) });
        assert!(!st.acknowledge("leaf1", &admin, Scalar::Str("disable".into()), ms(45), ms(70)));
        assert_eq!(st.target("leaf1").get(&admin), Some(&s("enable")));
        assert!(!st.acknowledge("leaf9", &admin, Scalar::Str("disable".into()), ms(45), ms(70)), "unknown target");
    }

    #[test]
    fn values_become_evidence_at_sync_and_stop_at_stale() {
        let t0 = Instant::now();
        let mut st = State::new();
        assert!(!st.target("leaf1").synced());
        assert_eq!(st.target("leaf1").not_synced_reason().as_deref(), Some("no subscription yet"));
        let up = srl_paths::oper_state("ethernet-1/49");
        st.apply(&note(t0, &[(&up, s("up"))], &[]));
        let v = st.target("leaf1");
        assert!(!v.synced());
        assert_eq!(v.get(&up), Some(&s("up")));
        assert_eq!(v.not_synced_reason().as_deref(), Some("waiting for sync_response"));

        let t1 = t0 + Duration::from_millis(5);
        st.apply(&SourceEvent::Synced { target: "leaf1".into(), at: t1 });
        let v = st.target("leaf1");
        assert!(v.synced());
        assert_eq!(v.since(), Some(t1));
        assert_eq!(v.entry(&up), Some(&Entry { value: s("up"), received: t0, device_ns: 7, acknowledged: false }));
        assert!(v.in_dump(&up));
        assert!(!v.in_dump(&srl_paths::oper_state("ethernet-1/50")));
        assert!(!st.target("leaf2").synced());

        st.apply(&SourceEvent::Stale { target: "leaf1".into(), at: t1, error: "stream reset".into() });
        let v = st.target("leaf1");
        assert!(!v.synced());
        assert_eq!(v.get(&up), None, "stale data is dropped");
        assert_eq!(v.not_synced_reason().as_deref(), Some("stream reset"));
        assert!(!v.in_dump(&up), "the dump is forgotten with the data");
        // The next dump repopulates, and counts once synced again.
        st.apply(&note(t1, &[(&up, s("down"))], &[]));
        st.apply(&SourceEvent::Synced { target: "leaf1".into(), at: t1 });
        assert_eq!(st.target("leaf1").get(&up), Some(&s("down")));
    }

    #[test]
    fn a_deleted_container_removes_every_leaf_below_it() {
        let t0 = Instant::now();
        let mut st = State::new();
        let n1 = ("default", "10.0.1.1");
        let n2 = ("default", "10.0.1.2");
        let n11 = ("default", "10.0.1.11");
        let keep = srl_paths::oper_state("ethernet-1/1");
        st.apply(&note(
            t0,
            &[
                (&srl_paths::session_state(n1.0, n1.1), s("established")),
                (&srl_paths::evpn_received_routes(n1.0, n1.1), Scalar::Uint(4)),
                (&srl_paths::session_state(n2.0, n2.1), s("established")),
                (&srl_paths::session_state(n11.0, n11.1), s("established")),
                (&keep, s("up")),
            ],
            &[],
        ));
        st.apply(&note(t0, &[], &[&srl_paths::neighbor(n1.0, n1.1)]));
        let v = st.target("leaf1");
        assert_eq!(v.get(&srl_paths::session_state(n1.0, n1.1)), None);
        assert_eq!(v.get(&srl_paths::evpn_received_routes(n1.0, n1.1)), None);
        // Siblings, including one whose key merely starts the same, stay.
        assert!(v.get(&srl_paths::session_state(n2.0, n2.1)).is_some());
        assert!(v.get(&srl_paths::session_state(n11.0, n11.1)).is_some());
        assert!(v.get(&keep).is_some());

        // A keyless list delete removes every entry of the list.
        st.apply(&note(t0, &[], &["/network-instance[name=default]/protocols/bgp/neighbor"]));
        assert_eq!(st.target("leaf1").values().count(), 1);
        // A leaf delete removes the leaf; a root delete removes everything.
        st.apply(&note(t0, &[], &[&keep]));
        assert_eq!(st.target("leaf1").values().count(), 0);
        st.apply(&note(t0, &[(&keep, s("up"))], &[]));
        st.apply(&note(t0, &[], &["/"]));
        assert_eq!(st.target("leaf1").values().count(), 0);
    }

    #[test]
    fn deletes_apply_before_updates_in_one_notification() {
        let t0 = Instant::now();
        let mut st = State::new();
        let p = srl_paths::session_state("default", "10.0.1.1");
        st.apply(&note(t0, &[(&p, s("active"))], &[]));
        st.apply(&note(t0, &[(&p, s("established"))], &[&srl_paths::neighbor("default", "10.0.1.1")]));
        assert_eq!(st.target("leaf1").get(&p), Some(&s("established")));
    }
}
