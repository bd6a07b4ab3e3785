//! Every policy rule, with explicit instants: no runtime, no sleeping.

use std::time::{Duration, Instant};

use super::*;
use crate::config::Readiness;
use crate::model::{Scalar, SourceEvent};
use crate::paths;
use crate::state::State;

const NI: &str = "default";
const N1: &str = "10.0.1.1";
const N2: &str = "10.0.1.2";

fn group(down_ms: u64, up_ms: u64, readiness: Option<Readiness>) -> Group {
    Group {
        name: "leaf1-es1".into(),
        target: "leaf1".into(),
        uplinks: vec!["ethernet-1/49".into(), "ethernet-1/50".into()],
        required_up: 1,
        downlinks: vec!["ethernet-1/1".into(), "ethernet-1/2".into()],
        readiness,
        down_delay: Duration::from_millis(down_ms),
        up_delay: Duration::from_millis(up_ms),
        enforce: true,
        profile: &crate::profile::SRL,
    }
}

fn readiness(min: usize, floor: Option<u64>) -> Option<Readiness> {
    Some(Readiness {
        network_instance: NI.into(),
        bgp_neighbors: vec![N1.into(), N2.into()],
        min_established: min,
        evpn_min_received_routes: floor,
        when_not_ready: crate::config::WhenNotReady::Hold,
        not_ready_delay: Duration::ZERO,
        protocol_name: "BGP".into(),
    })
}

/// A target's state driven by events, plus the group's memory, evaluated step by step.
struct Sim {
    state: State,
    memory: GroupMemory,
    t0: Instant,
}

impl Sim {
    /// A synced leaf1 with the given uplink states and downlinks enabled.
    fn new(up49: &str, up50: &str) -> Self {
        let t0 = Instant::now();
        let mut sim = Sim { state: State::new(), memory: GroupMemory::default(), t0 };
        sim.set(
            0,
            &[
                (&paths::oper_state("ethernet-1/49"), s(up49)),
                (&paths::oper_state("ethernet-1/50"), s(up50)),
                (&paths::admin_state("ethernet-1/1"), s("enable")),
                (&paths::admin_state("ethernet-1/2"), s("enable")),
                // Both neighbors exist (configured, not up yet).
                (&paths::session_state(NI, N1), s("active")),
                (&paths::session_state(NI, N2), s("active")),
            ],
        );
        sim.state.apply(&SourceEvent::Synced { target: "leaf1".into(), at: t0 });
        sim
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn event(&mut self, ms: u64, updates: &[(&str, Scalar)], deletes: &[&str]) {
        self.state.apply(&SourceEvent::Notification {
            target: "leaf1".into(),
            received: self.at(ms),
            device_ns: 0,
            updates: updates.iter().map(|(p, v)| (p.to_string(), v.clone())).collect(),
            deletes: deletes.iter().map(|d| d.to_string()).collect(),
        });
    }

    fn set(&mut self, ms: u64, updates: &[(&str, Scalar)]) {
        self.event(ms, updates, &[]);
    }

    fn uplinks(&mut self, ms: u64, up49: &str, up50: &str) {
        self.set(ms, &[(&paths::oper_state("ethernet-1/49"), s(up49)), (&paths::oper_state("ethernet-1/50"), s(up50))]);
    }

    fn neighbor(&mut self, ms: u64, peer: &str, session: &str, routes: Scalar) {
        self.set(
            ms,
            &[(&paths::session_state(NI, peer), s(session)), (&paths::evpn_received_routes(NI, peer), routes)],
        );
    }

    /// Evaluate at `ms` and carry the memory forward, as the controller does.
    fn eval(&mut self, g: &Group, ms: u64) -> Verdict {
        let v = evaluate(g, &self.state.target("leaf1"), &self.memory, self.at(ms));
        self.memory = v.memory;
        v
    }
}

fn s(v: &str) -> Scalar {
    Scalar::Str(v.into())
}

#[test]
fn healthy_group_wants_downlinks_enabled_and_the_device_already_matches() {
    let g = group(0, 0, None);
    let mut sim = Sim::new("up", "up");
    let v = sim.eval(&g, 0);
    assert_eq!((v.health, v.desired), (Health::Healthy, Some(AdminState::Enable)));
    assert_eq!(v.reason, "2/2 uplinks up, required 1");
    assert_eq!((v.uplinks_up, v.uplinks_total, v.established, v.evpn_routes), (2, 2, None, None));
    assert_eq!(v.wake_at, None);
    assert!(changes(&g, AdminState::Enable, &sim.state.target("leaf1")).is_empty());
    assert_eq!(intent(&g, &v, &sim.state.target("leaf1")), None);
}

#[test]
fn one_uplink_down_is_still_healthy() {
    let g = group(0, 0, None);
    let v = Sim::new("up", "down").eval(&g, 0);
    assert_eq!((v.health, v.desired), (Health::Healthy, Some(AdminState::Enable)));
    assert_eq!(v.reason, "1/2 uplinks up, required 1");
}

#[test]
fn all_uplinks_down_disables_every_downlink() {
    let g = group(0, 0, None);
    let mut sim = Sim::new("down", "down");
    let v = sim.eval(&g, 0);
    assert_eq!((v.health, v.desired), (Health::Unhealthy, Some(AdminState::Disable)));
    assert_eq!(v.reason, "0/2 uplinks up, required 1");
    let intent = intent(&g, &v, &sim.state.target("leaf1")).expect("a Set");
    assert_eq!(&*intent.target, "leaf1");
    assert_eq!(intent.group, "leaf1-es1");
    assert_eq!(intent.reason, "0/2 uplinks up, required 1");
    assert_eq!(
        intent.changes,
        [
            ("/interface[name=ethernet-1/1]/admin-state".to_string(), AdminState::Disable),
            ("/interface[name=ethernet-1/2]/admin-state".to_string(), AdminState::Disable),
        ]
    );
}

#[test]
fn required_up_counts_and_missing_or_odd_values_are_not_up() {
    let mut g = group(0, 0, None);
    g.required_up = 2;
    let mut sim = Sim::new("up", "up");
    assert_eq!(sim.eval(&g, 0).health, Health::Healthy);
    // A leaf that never reported an uplink after sync: not up.
    sim.event(1, &[], &[&paths::oper_state("ethernet-1/50")]);
    let v = sim.eval(&g, 1);
    assert_eq!((v.health, v.reason.as_str()), (Health::Unhealthy, "1/2 uplinks up, required 2"));
    // Module-prefixed values are understood; non-enums are not up.
    sim.set(2, &[(&paths::oper_state("ethernet-1/50"), s("srl_nokia-interfaces:up"))]);
    assert_eq!(sim.eval(&g, 2).health, Health::Healthy);
    sim.set(3, &[(&paths::oper_state("ethernet-1/50"), Scalar::Bool(true))]);
    assert_eq!(sim.eval(&g, 3).health, Health::Unhealthy);
}

#[test]
fn down_delay_holds_then_disables() {
    let g = group(3000, 0, None);
    let mut sim = Sim::new("down", "down");
    let v = sim.eval(&g, 0);
    assert_eq!((v.health, v.desired, v.wake_at), (Health::Unhealthy, None, Some(sim.at(3000))));
    assert_eq!(v.reason, "0/2 uplinks up, required 1; disabling after down-delay 3s (3s left)");
    assert_eq!(intent(&g, &v, &sim.state.target("leaf1")), None);
    let v = sim.eval(&g, 2999);
    assert_eq!((v.desired, v.wake_at), (None, Some(sim.at(3000))));
    assert!(v.reason.ends_with("(1ms left)"), "{}", v.reason);
    let v = sim.eval(&g, 3000);
    assert_eq!((v.desired, v.wake_at), (Some(AdminState::Disable), None));
    assert_eq!(v.reason, "0/2 uplinks up, required 1");
}

#[test]
fn recovering_inside_down_delay_restarts_it() {
    let g = group(3000, 0, None);
    let mut sim = Sim::new("down", "down");
    sim.eval(&g, 0);
    sim.uplinks(1000, "up", "down");
    assert_eq!(sim.eval(&g, 1000).desired, Some(AdminState::Enable));
    sim.uplinks(2000, "down", "down");
    let v = sim.eval(&g, 2000);
    assert_eq!((v.desired, v.wake_at), (None, Some(sim.at(5000))));
    assert_eq!(sim.eval(&g, 4999).desired, None);
    assert_eq!(sim.eval(&g, 5000).desired, Some(AdminState::Disable));
}

#[test]
fn up_delay_holds_then_enables() {
    let g = group(0, 5000, None);
    let mut sim = Sim::new("down", "down");
    assert_eq!(sim.eval(&g, 0).desired, Some(AdminState::Disable));
    sim.set(
        0,
        &[(&paths::admin_state("ethernet-1/1"), s("disable")), (&paths::admin_state("ethernet-1/2"), s("disable"))],
    );
    sim.uplinks(1000, "up", "up");
    let v = sim.eval(&g, 1000);
    assert_eq!((v.health, v.desired, v.wake_at), (Health::Healthy, None, Some(sim.at(6000))));
    assert_eq!(v.reason, "2/2 uplinks up, required 1; enabling after up-delay 5s (5s left)");
    assert_eq!(sim.eval(&g, 5999).desired, None);
    let v = sim.eval(&g, 6000);
    assert_eq!((v.desired, v.wake_at), (Some(AdminState::Enable), None));
    let intent = intent(&g, &v, &sim.state.target("leaf1")).expect("a Set");
    assert_eq!(intent.changes.len(), 2);
    assert!(intent.changes.iter().all(|(_, a)| *a == AdminState::Enable));
}

#[test]
fn an_uplink_flapping_faster_than_up_delay_never_re_enables() {
    let g = group(0, 5000, None);
    let mut sim = Sim::new("down", "down");
    let mut disables = 0;
    // Down 1 s, up 4 s, for a minute; evaluated every 250 ms and on every change.
    for ms in (0..60_000).step_by(250) {
        let phase = ms % 5000;
        if phase == 0 {
            sim.uplinks(ms, "down", "down");
        } else if phase == 1000 {
            sim.uplinks(ms, "up", "down");
        }
        let v = sim.eval(&g, ms);
        assert_ne!(v.desired, Some(AdminState::Enable), "re-enabled at {ms} ms: {}", v.reason);
        disables += usize::from(v.desired == Some(AdminState::Disable));
    }
    assert!(disables > 0, "the outages must disable");
    // Once it stays up for the whole up-delay, it re-enables.
    sim.uplinks(60_000, "up", "up");
    assert_eq!(sim.eval(&g, 60_000).desired, None);
    assert_eq!(sim.eval(&g, 65_000).desired, Some(AdminState::Enable));
}

#[test]
fn readiness_gates_re_enable_and_never_disables() {
    let g = group(0, 0, readiness(2, None));
    let mut sim = Sim::new("up", "up");
    sim.neighbor(0, N1, "established", Scalar::Uint(0));
    sim.neighbor(0, N2, "active", Scalar::Uint(0));
    let v = sim.eval(&g, 0);
    assert_eq!((v.health, v.desired, v.wake_at), (Health::NotReady, None, None));
    assert_eq!(v.reason, "2/2 uplinks up; 1/2 iBGP established (need 2)");
    assert_eq!(v.established, Some(1));
    assert_eq!(intent(&g, &v, &sim.state.target("leaf1")), None);

    sim.neighbor(10, N2, "srl_nokia-bgp:established", Scalar::Uint(0));
    let v = sim.eval(&g, 10);
    assert_eq!((v.health, v.desired), (Health::Healthy, Some(AdminState::Enable)));
    assert_eq!(v.reason, "2/2 uplinks up; 2/2 iBGP established (need 2)");

    // Uplinks gone: unhealthy wins over readiness.
    sim.uplinks(20, "down", "down");
    assert_eq!(sim.eval(&g, 20).desired, Some(AdminState::Disable));
}

#[test]
fn evpn_floor_sums_routes_of_established_listed_neighbors_only() {
    let g = group(0, 0, readiness(1, Some(5)));
    let mut sim = Sim::new("up", "up");
    sim.neighbor(0, N1, "established", Scalar::Str("3".into())); // counter64 as a string
    sim.neighbor(0, N2, "idle", Scalar::Uint(100)); // not established: not counted
    let v = sim.eval(&g, 0);
    assert_eq!((v.health, v.evpn_routes), (Health::NotReady, Some(3)));
    assert_eq!(v.reason, "2/2 uplinks up; 1/2 iBGP established (need 1); 3 EVPN routes (need 5)");
    sim.neighbor(1, N2, "established", Scalar::Uint(2));
    let v = sim.eval(&g, 1);
    assert_eq!((v.health, v.desired, v.evpn_routes), (Health::Healthy, Some(AdminState::Enable), Some(5)));
    // A malformed count counts as nothing.
    sim.set(2, &[(&paths::evpn_received_routes(NI, N1), s("lots"))]);
    assert_eq!(sim.eval(&g, 2).evpn_routes, Some(2));
}

#[test]
fn a_deleted_or_unknown_neighbor_is_not_established() {
    let g = group(0, 0, readiness(2, Some(1)));
    let mut sim = Sim::new("up", "up");
    // N2 never reported.
    sim.neighbor(0, N1, "established", Scalar::Uint(4));
    assert_eq!(sim.eval(&g, 0).health, Health::NotReady);
    sim.neighbor(1, N2, "established", Scalar::Uint(4));
    assert_eq!(sim.eval(&g, 1).health, Health::Healthy);
    // N1 deleted as a container: gone, with its routes.
    sim.event(2, &[], &[&paths::neighbor(NI, N1)]);
    let v = sim.eval(&g, 2);
    assert_eq!((v.health, v.established, v.evpn_routes), (Health::NotReady, Some(1), Some(4)));
}

#[test]
fn a_readiness_drop_restarts_the_up_timer() {
    let g = group(0, 5000, readiness(2, None));
    let mut sim = Sim::new("up", "up");
    sim.neighbor(0, N1, "established", Scalar::Uint(1));
    sim.neighbor(0, N2, "established", Scalar::Uint(1));
    assert_eq!(sim.eval(&g, 0).wake_at, Some(sim.at(5000)));
    sim.neighbor(2000, N2, "active", Scalar::Uint(0));
    assert_eq!(sim.eval(&g, 2000).health, Health::NotReady);
    sim.neighbor(3000, N2, "established", Scalar::Uint(1));
    assert_eq!(sim.eval(&g, 3000).wake_at, Some(sim.at(8000)));
    assert_eq!(sim.eval(&g, 5000).desired, None);
    assert_eq!(sim.eval(&g, 8000).desired, Some(AdminState::Enable));
}

#[test]
fn an_unsynced_target_is_unknown_holds_and_resets_timers() {
    let g = group(3000, 0, None);
    let mut sim = Sim::new("down", "down");
    assert_eq!(sim.eval(&g, 0).wake_at, Some(sim.at(3000)));
    sim.state.apply(&SourceEvent::Stale { target: "leaf1".into(), at: sim.at(2000), error: "stream reset".into() });
    let v = sim.eval(&g, 2000);
    assert_eq!((v.health, v.desired, v.wake_at), (Health::Unknown, None, None));
    assert_eq!(v.reason, "target leaf1 not synced: stream reset");
    assert_eq!(v.memory, GroupMemory::default());
    // Past the original deadline, still nothing: stale data is not evidence.
    assert_eq!(sim.eval(&g, 4000).desired, None);
    // The fresh dump arrives; the down-delay starts from scratch.
    sim.uplinks(4500, "down", "down");
    sim.set(
        4500,
        &[(&paths::admin_state("ethernet-1/1"), s("enable")), (&paths::admin_state("ethernet-1/2"), s("enable"))],
    );
    assert_eq!(sim.eval(&g, 4500).health, Health::Unknown, "not synced yet");
    sim.state.apply(&SourceEvent::Synced { target: "leaf1".into(), at: sim.at(5000) });
    assert_eq!(sim.eval(&g, 5000).wake_at, Some(sim.at(8000)));
    assert_eq!(sim.eval(&g, 7999).desired, None);
    assert_eq!(sim.eval(&g, 8000).desired, Some(AdminState::Disable));
}

#[test]
fn a_target_never_heard_from_is_unknown() {
    let g = group(0, 0, None);
    let state = State::new();
    let v = evaluate(&g, &state.target("leaf1"), &GroupMemory::default(), Instant::now());
    assert_eq!((v.health, v.desired), (Health::Unknown, None));
    assert_eq!(v.reason, "target leaf1 not synced: no subscription yet");
}

#[test]
fn changes_lists_only_downlinks_that_differ() {
    let g = group(0, 0, None);
    let mut sim = Sim::new("down", "down");
    sim.set(0, &[(&paths::admin_state("ethernet-1/1"), s("srl_nokia-common:disable"))]);
    let view = sim.state.target("leaf1");
    assert_eq!(changes(&g, AdminState::Disable, &view), [(paths::admin_state("ethernet-1/2"), AdminState::Disable)]);
    assert_eq!(changes(&g, AdminState::Enable, &view), [(paths::admin_state("ethernet-1/1"), AdminState::Enable)]);
    // Absent counts as differing.
    sim.event(1, &[], &[&paths::admin_state("ethernet-1/2")]);
    let view = sim.state.target("leaf1");
    assert_eq!(changes(&g, AdminState::Enable, &view).len(), 2);
}

#[test]
fn an_observe_only_group_decides_but_never_sets() {
    let mut g = group(0, 0, None);
    g.enforce = false;
    let mut sim = Sim::new("down", "down");
    let v = sim.eval(&g, 0);
    assert_eq!(v.desired, Some(AdminState::Disable), "the decision is still computed for status");
    assert_eq!(intent(&g, &v, &sim.state.target("leaf1")), None);
}

fn sync(sim: &mut Sim, ms: u64) {
    sim.state.apply(&SourceEvent::Synced { target: "leaf1".into(), at: sim.at(ms) });
}

#[test]
fn a_configured_uplink_missing_from_the_dump_is_misconfigured_and_never_sets() {
    let mut g = group(0, 0, None);
    // A typo: letter O instead of zero. The leaf is healthy on ethernet-1/49 alone.
    g.uplinks = vec!["ethernet-1/49".into(), "ethernet-1/5O".into()];
    g.required_up = 2;
    let mut sim = Sim::new("up", "up");
    let v = sim.eval(&g, 0);
    assert_eq!((v.health, v.desired, v.wake_at), (Health::Misconfigured, None, None));
    assert!(v.reason.contains("uplink ethernet-1/5O not found on target leaf1"), "{}", v.reason);
    assert_eq!(intent(&g, &v, &sim.state.target("leaf1")), None);
    // An update for the path after the sync does not count: existence is a fact of the dump...
    sim.set(10, &[(&paths::oper_state("ethernet-1/5O"), s("up"))]);
    assert_eq!(sim.eval(&g, 10).health, Health::Misconfigured);
    // ...re-checked at the next sync.
    sync(&mut sim, 20);
    assert_eq!(sim.eval(&g, 20).health, Health::Healthy);
}

#[test]
fn a_missing_downlink_is_misconfigured_and_named() {
    let mut g = group(0, 0, None);
    g.downlinks = vec!["ethernet-1/1".into(), "ethernet-1/9".into()];
    let v = Sim::new("down", "down").eval(&g, 0);
    assert_eq!((v.health, v.desired), (Health::Misconfigured, None));
    assert!(v.reason.starts_with("downlink ethernet-1/9 not found on target leaf1"), "{}", v.reason);
    assert!(!v.reason.contains("ethernet-1/1 "), "{}", v.reason);
}

#[test]
fn a_missing_bgp_neighbor_is_not_established_with_a_warning() {
    let mut g = group(0, 0, readiness(1, None));
    g.readiness.as_mut().unwrap().bgp_neighbors.push("10.0.1.9".into());
    let mut sim = Sim::new("up", "up");
    sim.neighbor(1, N1, "established", Scalar::Uint(3));
    let v = sim.eval(&g, 1);
    assert_eq!((v.health, v.desired, v.established), (Health::Healthy, Some(AdminState::Enable), Some(1)));
    assert!(v.reason.contains("warning: BGP neighbor 10.0.1.9 not found on target leaf1"), "{}", v.reason);
}

fn disable_when_not_ready(not_ready_ms: u64, up_ms: u64) -> Group {
    let mut g = group(0, up_ms, readiness(2, None));
    let r = g.readiness.as_mut().unwrap();
    r.when_not_ready = crate::config::WhenNotReady::Disable;
    r.not_ready_delay = Duration::from_millis(not_ready_ms);
    g
}

#[test]
fn when_not_ready_hold_never_disables_a_booted_leaf() {
    // A rebooted leaf: downlinks enabled from startup config, uplinks up, iBGP down.
    let g = group(0, 0, readiness(2, None));
    let mut sim = Sim::new("up", "up");
    for ms in [0, 1000, 60_000] {
        let v = sim.eval(&g, ms);
        assert_eq!((v.health, v.desired, v.wake_at), (Health::NotReady, None, None));
    }
}

#[test]
fn when_not_ready_disable_disables_after_not_ready_delay_and_enables_once_ready() {
    let g = disable_when_not_ready(2000, 1000);
    let mut sim = Sim::new("up", "up");
    let v = sim.eval(&g, 0);
    assert_eq!(
        (v.health, v.desired, v.wake_at, v.pending),
        (Health::NotReady, None, Some(sim.at(2000)), Some(AdminState::Disable))
    );
    assert!(v.reason.ends_with("disabling after not-ready-delay 2s (2s left)"), "{}", v.reason);
    assert_eq!(sim.eval(&g, 1999).desired, None);
    let v = sim.eval(&g, 2000);
    assert_eq!((v.health, v.desired, v.wake_at), (Health::NotReady, Some(AdminState::Disable), None));
    let intent = intent(&g, &v, &sim.state.target("leaf1")).expect("a Set");
    assert_eq!(intent.changes.len(), 2);
    // iBGP comes up: up-delay, then enable.
    sim.neighbor(3000, N1, "established", Scalar::Uint(1));
    sim.neighbor(3000, N2, "established", Scalar::Uint(1));
    let v = sim.eval(&g, 3000);
    assert_eq!((v.health, v.desired, v.pending), (Health::Healthy, None, Some(AdminState::Enable)));
    assert_eq!(sim.eval(&g, 4000).desired, Some(AdminState::Enable));
    // A blip of not-ready shorter than the delay changes nothing; the timer restarts after it.
    sim.neighbor(5000, N2, "active", Scalar::Uint(0));
    assert_eq!(sim.eval(&g, 5000).wake_at, Some(sim.at(7000)));
    sim.neighbor(6000, N2, "established", Scalar::Uint(1));
    assert_eq!(sim.eval(&g, 6000).health, Health::Healthy);
    sim.neighbor(6500, N2, "active", Scalar::Uint(0));
    assert_eq!(sim.eval(&g, 6500).wake_at, Some(sim.at(8500)));
}

#[test]
fn not_ready_then_unhealthy_is_one_bad_spell() {
    let mut g = disable_when_not_ready(2000, 0);
    g.down_delay = Duration::from_millis(3000);
    let mut sim = Sim::new("up", "up");
    assert_eq!(sim.eval(&g, 0).wake_at, Some(sim.at(2000)));
    sim.uplinks(1000, "down", "down");
    let v = sim.eval(&g, 1000);
    assert_eq!((v.health, v.wake_at), (Health::Unhealthy, Some(sim.at(3000))), "the down-delay counts from 0");
    assert_eq!(sim.eval(&g, 3000).desired, Some(AdminState::Disable));
}
