//! Notification decoding as SR Linux (and fabric-sim) send them: the path split between
//! `prefix` (up to the last keyed element) and `update.path`, JSON_IETF values.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use gnmi_proto::{Notification, Path, TypedValue, Update, typed_value::Value};
use opergroupd::gnmi::subscription::decode_notification;

/// A wire path from its string form, parsed by the controller's own parser (names are
/// kept as written, module prefixes included).
fn path(s: &str) -> Path {
    opergroupd::gnmi::path::parse(s).expect("benchmark path")
}

fn update(p: Path, json: &str) -> Update {
    Update {
        path: Some(p),
        val: Some(TypedValue { value: Some(Value::JsonIetfVal(json.as_bytes().to_vec())) }),
        ..Default::default()
    }
}

/// An uplink going down: prefix `/interface[name=ethernet-1/49]`, two updates
/// (oper-state, oper-down-reason) and the carrier-transitions counter (a JSON string).
fn interface_change(module_names: bool) -> Notification {
    let prefix = if module_names {
        "/srl_nokia-interfaces:interface[name=ethernet-1/49]"
    } else {
        "/interface[name=ethernet-1/49]"
    };
    Notification {
        timestamp: 1_795_557_058_779_450_942,
        prefix: Some(path(prefix)),
        update: vec![
            update(path("/oper-state"), r#""down""#),
            update(path("/oper-down-reason"), r#""lower-layer-down""#),
            update(path("/statistics/carrier-transitions"), r#""3""#),
        ],
        ..Default::default()
    }
}

/// EVPN routes arriving: prefix down to the keyed afi-safi, one update.
fn evpn_routes() -> Notification {
    Notification {
        timestamp: 1_795_557_058_779_450_942,
        prefix: Some(path(
            "/network-instance[name=default]/protocols/bgp/neighbor[peer-address=10.0.1.1]/afi-safi[afi-safi-name=evpn]",
        )),
        update: vec![update(path("/received-routes"), "10")],
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let plain = interface_change(false);
    let modules = interface_change(true);
    let routes = evpn_routes();
    assert_eq!(decode_notification(&plain).updates.len(), 3, "the fixture must decode");
    assert_eq!(decode_notification(&routes).updates.len(), 1, "the fixture must decode");
    c.bench_function("decode_notification interface (prefix + 3 JSON_IETF updates)", |b| {
        b.iter(|| decode_notification(black_box(&plain)))
    });
    c.bench_function("decode_notification interface, module-prefixed names", |b| {
        b.iter(|| decode_notification(black_box(&modules)))
    });
    c.bench_function("decode_notification EVPN received-routes (5-element prefix)", |b| {
        b.iter(|| decode_notification(black_box(&routes)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
