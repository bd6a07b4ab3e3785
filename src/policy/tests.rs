//! The policy rules that a table does not say better: a minute of flapping driven by a
//! loop, and `changes` asked for both admin states of one view. Every other rule is a case
//! in `tests/policy/*.yaml`, run by `tests/policy.rs` through the same pure API.

use std::time::{Duration, Instant};

use super::*;
use crate::model::{Scalar, SourceEvent};
use crate::srl_paths;
use crate::state::State;

fn group(down_ms: u64, up_ms: u64) -> Group {
    Group {
        name: "leaf1-es1".into(),
        target: "leaf1".into(),
        uplinks: vec!["ethernet-1/49".into(), "ethernet-1/50".into()],
        required_up: 1,
        downlinks: vec!["ethernet-1/1".into(), "ethernet-1/2".into()],
        readiness: None,
        down_delay: Duration::from_millis(down_ms),
        up_delay: Duration::from_millis(up_ms),
        enforce: true,
        profile: &crate::profile::SRL,
    }
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
                (&srl_paths::oper_state("ethernet-1/49"), s(up49)),
                (&srl_paths::oper_state("ethernet-1/50"), s(up50)),
                (&srl_paths::admin_state("ethernet-1/1"), s("enable")),
                (&srl_paths::admin_state("ethernet-1/2"), s("enable")),
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
        self.set(
            ms,
            &[(&srl_paths::oper_state("ethernet-1/49"), s(up49)), (&srl_paths::oper_state("ethernet-1/50"), s(up50))],
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
fn an_uplink_flapping_faster_than_up_delay_never_re_enables() {
    let g = group(0, 5000);
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
fn changes_lists_only_downlinks_that_differ() {
    let g = group(0, 0);
    let mut sim = Sim::new("down", "down");
    sim.set(0, &[(&srl_paths::admin_state("ethernet-1/1"), s("srl_nokia-common:disable"))]);
    let view = sim.state.target("leaf1");
    assert_eq!(
        changes(&g, AdminState::Disable, &view),
        [(srl_paths::admin_state("ethernet-1/2"), AdminState::Disable)]
    );
    assert_eq!(changes(&g, AdminState::Enable, &view), [(srl_paths::admin_state("ethernet-1/1"), AdminState::Enable)]);
    // Absent counts as differing.
    sim.event(1, &[], &[&srl_paths::admin_state("ethernet-1/2")]);
    let view = sim.state.target("leaf1");
    assert_eq!(changes(&g, AdminState::Enable, &view).len(), 2);
}

#[test]
fn the_dump_is_checked_once_per_sync_and_again_after_a_resync() {
    let g = group(0, 0);
    let mut sim = Sim::new("up", "up");
    assert_eq!(sim.eval(&g, 1).health, Health::Healthy);
    assert_eq!(sim.memory.dump_checked, Some(sim.at(0)), "the sync whose dump held every interface");
    // The stream breaks; the device comes back without ethernet-1/50 (a new config).
    let stale = SourceEvent::Stale { target: "leaf1".into(), at: sim.at(10), error: "stream closed".into() };
    sim.state.apply(&stale);
    sim.set(
        20,
        &[
            (&srl_paths::oper_state("ethernet-1/49"), s("up")),
            (&srl_paths::admin_state("ethernet-1/1"), s("enable")),
            (&srl_paths::admin_state("ethernet-1/2"), s("enable")),
        ],
    );
    sim.state.apply(&SourceEvent::Synced { target: "leaf1".into(), at: sim.at(30) });
    let v = sim.eval(&g, 31);
    assert_eq!(v.health, Health::Misconfigured, "{}", v.reason);
    assert!(v.reason.contains("uplink ethernet-1/50"), "{}", v.reason);
    assert_eq!(sim.memory.dump_checked, None, "checked again at the next evaluation");
}
