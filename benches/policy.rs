//! The pure policy step on a realistic group and target view: one leaf of the reference
//! fabric (two uplinks, one downlink, readiness on two iBGP neighbors with an EVPN floor),
//! with every value the controller subscribes to, as the simulator's dump delivers them.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use opergroupd::config::{Group, Readiness};
use opergroupd::model::{Scalar, SourceEvent};
use opergroupd::policy::{self, GroupMemory};
use opergroupd::srl_paths;
use opergroupd::state::State;

const NI: &str = "default";
const PEERS: [&str; 2] = ["10.0.1.1", "10.0.1.2"];

fn group() -> Group {
    Group {
        name: "leaf1-es1".into(),
        target: "leaf1".into(),
        uplinks: vec!["ethernet-1/49".into(), "ethernet-1/50".into()],
        required_up: 1,
        downlinks: vec!["ethernet-1/1".into()],
        readiness: Some(Readiness {
            network_instance: NI.into(),
            bgp_neighbors: PEERS.iter().map(|p| p.to_string()).collect(),
            min_established: 1,
            evpn_min_received_routes: Some(1),
            when_not_ready: opergroupd::config::WhenNotReady::Hold,
            not_ready_delay: Duration::ZERO,
            protocol_name: "BGP".into(),
        }),
        down_delay: Duration::ZERO,
        up_delay: Duration::ZERO,
        enforce: true,
        profile: &opergroupd::profile::SRL,
    }
}

/// A synced leaf1 with the given uplink oper-states, downlink enabled, both iBGP sessions
/// established with 10 EVPN routes each.
fn state(uplinks: &str, now: Instant) -> State {
    let s = |v: &str| Scalar::Str(v.into());
    let mut updates =
        vec![(srl_paths::admin_state("ethernet-1/1"), s("enable")), (srl_paths::oper_state("ethernet-1/1"), s("up"))];
    for u in ["ethernet-1/49", "ethernet-1/50"] {
        updates.push((srl_paths::oper_state(u), s(uplinks)));
        updates.push((srl_paths::admin_state(u), s("enable")));
    }
    for p in PEERS {
        updates.push((srl_paths::session_state(NI, p), s("established")));
        updates.push((srl_paths::evpn_received_routes(NI, p), Scalar::Uint(10)));
    }
    let mut st = State::new();
    st.apply(&SourceEvent::Notification {
        target: "leaf1".into(),
        received: now,
        device_ns: 1,
        updates,
        deletes: vec![],
    });
    st.apply(&SourceEvent::Synced { target: "leaf1".into(), at: now });
    st
}

fn bench(c: &mut Criterion) {
    let g = group();
    let now = Instant::now();
    let healthy = state("up", now);
    let unhealthy = state("down", now);
    let memory = GroupMemory::default();

    c.bench_function("policy::evaluate healthy+ready (steady state)", |b| {
        let view = healthy.target("leaf1");
        b.iter(|| policy::evaluate(black_box(&g), black_box(&view), black_box(&memory), black_box(now)))
    });
    c.bench_function("policy::evaluate unhealthy (both uplinks down)", |b| {
        let view = unhealthy.target("leaf1");
        b.iter(|| policy::evaluate(black_box(&g), black_box(&view), black_box(&memory), black_box(now)))
    });
    c.bench_function("policy::evaluate + intent (uplinks down -> disable Set)", |b| {
        let view = unhealthy.target("leaf1");
        b.iter(|| {
            let v = policy::evaluate(black_box(&g), black_box(&view), black_box(&memory), black_box(now));
            policy::intent(&g, &v, &view)
        })
    });
    // The step the controller runs per notification: record the change, then decide.
    c.bench_function("state.apply(oper-state change) + evaluate + intent", |b| {
        let mut st = healthy.clone();
        let mut flip = false;
        b.iter(|| {
            flip = !flip;
            let v = if flip { "down" } else { "up" };
            st.apply(&SourceEvent::Notification {
                target: "leaf1".into(),
                received: now,
                device_ns: 2,
                updates: vec![(srl_paths::oper_state("ethernet-1/50"), Scalar::Str(v.into()))],
                deletes: vec![],
            });
            let view = st.target("leaf1");
            let verdict = policy::evaluate(&g, &view, &memory, now);
            policy::intent(&g, &verdict, &view)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
