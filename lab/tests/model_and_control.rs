//! The fabric model seen through gNMI, every control operation and fault, and the HTTP API.

mod common;

use std::time::Duration;

use common::*;
use fabric_sim::{Fault, SessionState, SetOutcome};
use gnmi_proto as pb;
use serde_json::json;
use tonic::Code;

const NB: &str = "/network-instance[name=default]/protocols/bgp/neighbor";

fn session(peer: &str) -> String {
    format!("{NB}[peer-address={peer}]/session-state")
}

fn evpn(peer: &str) -> String {
    format!("{NB}[peer-address={peer}]/afi-safi[afi-safi-name=evpn]/received-routes")
}

const BGP_ALL: &str = "/network-instance[name=default]/protocols/bgp/neighbor[peer-address=*]";

#[tokio::test]
async fn losing_both_uplinks_drops_ebgp_at_once_and_ibgp_after_hold_time_then_recovers_in_order() {
    let f = fabric().await;
    let ctl = f.control();
    let mut c = leaf1(&f).await;
    let mut s = subscribe(&mut c, stream_list(&[BGP_ALL, "/interface[name=*]/oper-state"])).await.unwrap();
    s.until_sync().await;

    let down49 = ctl.link("leaf1", "ethernet-1/49", false).unwrap();
    let evs = s.until_value(&session("192.168.11.1"), json!("active")).await;
    assert_eq!(value_at(&evs, &session("10.0.1.1")), None, "one uplink left: iBGP stays up");
    let down50 = ctl.link("spine2", "ethernet-1/1", false).unwrap();
    assert_eq!(ctl.value("leaf1", "/interface[name=ethernet-1/50]/oper-state").unwrap(), Some(json!("down")));
    let evs = s.until_value(&session("10.0.1.1"), json!("active")).await;
    let Some(Ev::Update { ts, .. }) =
        evs.iter().rev().find(|e| matches!(e, Ev::Update { path, .. } if *path == session("10.0.1.1")))
    else {
        unreachable!()
    };
    let held = (*ts - down50.unix_ns) as u128;
    assert!(
        held >= fabric_sim::Timings::fast().hold_time.as_nanos(),
        "dropped after the hold time, not before ({held} ns)"
    );
    assert!(down49.mono_ns < down50.mono_ns);
    s.until_value(&evpn("10.0.1.2"), json!(0)).await;

    // One uplink back: eBGP on it, then iBGP established, then EVPN routes arrive.
    ctl.link("leaf1", "ethernet-1/50", true).unwrap();
    let evs = s.until_value(&evpn("10.0.1.1"), json!(10)).await;
    let pos = |p: &str, v: serde_json::Value| {
        evs.iter().position(|e| matches!(e, Ev::Update { path, value, .. } if path == p && *value == v))
    };
    let established = pos(&session("10.0.1.1"), json!("established")).expect("established before routes");
    assert!(pos(&session("192.168.11.5"), json!("established")).unwrap() < established);
    assert!(established < pos(&evpn("10.0.1.1"), json!(10)).unwrap());
    assert_eq!(
        ctl.value("leaf1", &session("192.168.11.1")).unwrap(),
        Some(json!("active")),
        "eBGP follows its own link"
    );
    f.shutdown().await;
}

#[tokio::test]
async fn bgp_override_evpn_routes_and_neighbor_removal() {
    let f = fabric().await;
    let ctl = f.control();
    let mut c = leaf1(&f).await;
    let mut s = subscribe(&mut c, stream_list(&[BGP_ALL])).await.unwrap();
    s.until_sync().await;

    ctl.bgp_session("leaf1", "10.0.1.2", Some(SessionState::Idle)).unwrap();
    s.until_value(&evpn("10.0.1.2"), json!(0)).await;
    assert_eq!(ctl.value("leaf1", &session("10.0.1.2")).unwrap(), Some(json!("idle")));
    ctl.bgp_session("leaf1", "10.0.1.2", None).unwrap();
    s.until_value(&evpn("10.0.1.2"), json!(10)).await;

    ctl.evpn_routes("leaf1", "10.0.1.1", 250).unwrap();
    s.until_value(&evpn("10.0.1.1"), json!(250)).await;

    ctl.remove_neighbor("leaf1", "10.0.1.1").unwrap();
    let evs = s.until("neighbor delete", |e| matches!(e, Ev::Delete { .. })).await;
    assert!(evs.contains(&Ev::Delete {
        path: format!("{NB}[peer-address=10.0.1.1]"),
        raw: format!("{NB}[peer-address=10.0.1.1]")
    }));
    assert!(matches!(ctl.remove_neighbor("leaf1", "10.0.1.1"), Err(fabric_sim::SimError::UnknownNeighbor { .. })));

    // Back as in the startup config, through idle, established, then routes.
    ctl.add_neighbor("leaf1", "10.0.1.1").unwrap();
    let evs = s.until_value(&evpn("10.0.1.1"), json!(10)).await;
    assert!(
        evs.iter()
            .any(|e| matches!(e, Ev::Update { path, value, .. } if *path == session("10.0.1.1") && value == "idle"))
    );
    ctl.add_neighbor("leaf1", "10.0.9.9").unwrap();
    s.until_value(&session("10.0.9.9"), json!("established")).await;

    assert!(matches!(ctl.link("leaf9", "ethernet-1/1", false), Err(fabric_sim::SimError::UnknownNode(_))));
    assert!(matches!(ctl.link("leaf1", "ethernet-1/2", false), Err(fabric_sim::SimError::UnknownInterface { .. })));
    f.shutdown().await;
}

#[tokio::test]
async fn drop_streams_ends_every_stream_with_unavailable() {
    let f = fabric().await;
    let mut c = leaf1(&f).await;
    let mut a = subscribe(&mut c, stream_list(&["/interface"])).await.unwrap();
    let mut b = subscribe(&mut c, stream_list(&[BGP_ALL])).await.unwrap();
    a.until_sync().await;
    b.until_sync().await;
    f.control().fault("leaf1", Fault::DropStreams).unwrap();
    assert_eq!(a.end().await.unwrap_err().code(), Code::Unavailable);
    assert_eq!(b.end().await.unwrap_err().code(), Code::Unavailable);
    // The leaf still serves new streams.
    let mut again = subscribe(&mut c, stream_list(&["/interface"])).await.unwrap();
    again.until_sync().await;
    f.shutdown().await;
}

#[tokio::test]
async fn refuse_sets_refuses_exactly_n_then_applies() {
    let f = fabric().await;
    let ctl = f.control();
    let mut c = leaf1(&f).await;
    ctl.fault("leaf1", Fault::RefuseSets { count: 2 }).unwrap();
    for _ in 0..2 {
        let err = set_updates(&mut c, vec![update("/interface[name=ethernet-1/1]/admin-state", json!("disable"))])
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);
        assert_eq!(ctl.admin_state("leaf1", "ethernet-1/1").unwrap().as_deref(), Some("enable"));
    }
    set_updates(&mut c, vec![update("/interface[name=ethernet-1/1]/admin-state", json!("disable"))]).await.unwrap();
    let sets = ctl.wait_for_sets(3, WAIT).await.unwrap();
    let outcomes: Vec<_> = sets.iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, vec![SetOutcome::Refused, SetOutcome::Refused, SetOutcome::Accepted]);
    assert!(sets.windows(2).all(|w| w[0].seq < w[1].seq));
    ctl.clear_sets();
    assert!(ctl.sets().is_empty());
    let err = ctl.wait_for_sets(1, Duration::from_millis(50)).await.unwrap_err();
    assert!(matches!(err, fabric_sim::SimError::Timeout { .. }));
    f.shutdown().await;
}

#[tokio::test]
async fn delay_sets_holds_the_set_and_the_record_shows_it() {
    let f = fabric().await;
    let ctl = f.control();
    let mut c = leaf1(&f).await;
    ctl.fault("leaf1", Fault::DelaySets { delay_ms: 150 }).unwrap();
    let waiter = {
        let ctl = ctl.clone();
        tokio::spawn(async move { ctl.wait_for_sets(1, WAIT).await })
    };
    set_updates(&mut c, vec![update("/interface[name=ethernet-1/1]/admin-state", json!("disable"))]).await.unwrap();
    let sets = waiter.await.unwrap().unwrap();
    let r = &sets[0];
    assert!(r.applied.unwrap().mono_ns - r.received.mono_ns >= 150_000_000, "{r:?}");
    ctl.fault("leaf1", Fault::Clear).unwrap();
    let t0 = std::time::Instant::now();
    set_updates(&mut c, vec![update("/interface[name=ethernet-1/1]/admin-state", json!("enable"))]).await.unwrap();
    assert!(t0.elapsed() < Duration::from_millis(150), "cleared");
    f.shutdown().await;
}

#[tokio::test]
async fn stall_sync_holds_sync_response_until_cleared() {
    let f = fabric().await;
    let ctl = f.control();
    let mut c = leaf1(&f).await;
    ctl.fault("leaf1", Fault::StallSync { stall: true }).unwrap();
    let mut s = subscribe(&mut c, stream_list(&["/interface[name=ethernet-1/49]/oper-state"])).await.unwrap();
    s.until("initial dump", |e| matches!(e, Ev::Update { .. })).await;
    s.none_within(Duration::from_millis(150), |e| *e == Ev::Sync).await;
    // Changes still flow before the sync.
    ctl.link("leaf1", "ethernet-1/49", false).unwrap();
    s.until_value("/interface[name=ethernet-1/49]/oper-state", json!("down")).await;
    ctl.fault("leaf1", Fault::StallSync { stall: false }).unwrap();
    s.until_sync().await;
    f.shutdown().await;
}

#[tokio::test]
async fn malformed_value_unknown_path_and_module_names() {
    let f = fabric().await;
    let ctl = f.control();
    let mut c = leaf1(&f).await;
    let mut s = subscribe(&mut c, stream_list(&["/interface[name=ethernet-1/49]/oper-state", BGP_ALL])).await.unwrap();
    s.until_sync().await;
    ctl.fault("leaf1", Fault::MalformedValue { path: None }).unwrap();
    s.until(
        "malformed value",
        |e| matches!(e, Ev::Update { value, .. } if value.as_str().is_some_and(|v| v.starts_with("MALFORMED:"))),
    )
    .await;
    ctl.fault("leaf1", Fault::UnknownPath).unwrap();
    s.until("unknown path", |e| matches!(e, Ev::Update { path, .. } if path.contains("fabric-sim-unknown"))).await;

    ctl.fault("leaf1", Fault::ModuleNames { enabled: true }).unwrap();
    ctl.link("leaf1", "ethernet-1/49", false).unwrap();
    let evs = s.until_value("/interface[name=ethernet-1/49]/oper-state", json!("down")).await;
    let Some(Ev::Update { raw, .. }) = evs.last() else { unreachable!() };
    assert_eq!(raw, "/srl_nokia-interfaces:interface[name=ethernet-1/49]/oper-state");
    ctl.evpn_routes("leaf1", "10.0.1.1", 3).unwrap();
    let evs = s.until_value(&evpn("10.0.1.1"), json!(3)).await;
    let Some(Ev::Update { raw, .. }) = evs.last() else { unreachable!() };
    assert!(raw.starts_with("/srl_nokia-network-instance:network-instance[name=default]"), "{raw}");
    assert!(raw.contains("srl_nokia-bgp:bgp") && raw.contains("[afi-safi-name=srl_nokia-common:evpn]"), "{raw}");
    f.shutdown().await;
}

#[tokio::test]
async fn restart_kills_streams_refuses_while_down_and_returns_to_startup_config() {
    let f = fabric().await;
    let ctl = f.control();
    let mut c = leaf1(&f).await;
    set_updates(&mut c, vec![update("/interface[name=ethernet-1/1]/admin-state", json!("disable"))]).await.unwrap();
    ctl.remove_neighbor("leaf1", "10.0.1.2").unwrap();
    let mut s = subscribe(&mut c, stream_list(&["/interface"])).await.unwrap();
    s.until_sync().await;

    ctl.fault("leaf1", Fault::Restart { down_ms: 300 }).unwrap();
    assert_eq!(s.end().await.unwrap_err().code(), Code::Unavailable);
    let err = c.capabilities(pb::CapabilityRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "still rebooting");
    let err = set_updates(&mut c, vec![update("/interface[name=ethernet-1/1]/admin-state", json!("disable"))])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);

    assert_eq!(ctl.admin_state("leaf1", "ethernet-1/1").unwrap().as_deref(), Some("enable"), "startup config");
    ctl.wait_for_value("leaf1", &evpn("10.0.1.2"), &json!(10), WAIT).await.unwrap();
    ctl.wait_for_value("leaf1", &session("192.168.11.1"), &json!("established"), WAIT).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while c.capabilities(pb::CapabilityRequest {}).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "leaf back after its down time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f.shutdown().await;
}

#[tokio::test]
async fn http_control_api_mirrors_control() {
    let f = fabric().await;
    let api = f.control_addr().expect("control API");
    let (code, body) =
        http(api, "POST", "/v1/link", Some(json!({"node": "leaf2", "interface": "ethernet-1/49", "state": "down"})))
            .await;
    assert_eq!(code, 200, "{body}");
    assert!(body["applied"]["unix_ns"].as_i64().unwrap() > 0 && body["applied"]["mono_ns"].is_u64(), "{body}");
    assert_eq!(f.control().value("leaf2", "/interface[name=ethernet-1/49]/oper-state").unwrap(), Some(json!("down")));

    // `curl -d '{...}'` without -H sends a form Content-Type: the JSON body is still read.
    let link = r#"{"node":"leaf1","interface":"ethernet-1/50","state":"down"}"#;
    let (code, body) = http_raw(api, "POST", "/v1/link", "application/x-www-form-urlencoded", link).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(f.control().value("leaf1", "/interface[name=ethernet-1/50]/oper-state").unwrap(), Some(json!("down")));
    let (code, body) = http_raw(api, "POST", "/v1/link", "application/json", "{not json").await;
    assert_eq!(code, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("not the expected JSON"), "{body}");

    let (code, body) =
        http(api, "GET", "/v1/value?node=leaf2&path=/interface%5Bname=ethernet-1/49%5D/oper-down-reason", None).await;
    assert_eq!((code, body), (200, json!({"value": "lower-layer-down"})));

    let posts = [
        ("/v1/bgp", json!({"node": "leaf2", "peer": "10.0.1.1", "state": "active"})),
        ("/v1/bgp", json!({"node": "leaf2", "peer": "10.0.1.1", "state": null})),
        ("/v1/evpn-routes", json!({"node": "leaf2", "peer": "10.0.1.2", "routes": 42})),
        ("/v1/neighbor/remove", json!({"node": "leaf2", "peer": "10.0.1.1"})),
        ("/v1/neighbor/add", json!({"node": "leaf2", "peer": "10.0.1.1"})),
        ("/v1/fault", json!({"node": "leaf2", "fault": "refuse-sets", "count": 1})),
        ("/v1/fault", json!({"node": "leaf2", "fault": "delay-sets", "delay-ms": 0})),
        ("/v1/fault", json!({"node": "leaf2", "fault": "stall-sync", "stall": false})),
        ("/v1/fault", json!({"node": "leaf2", "fault": "module-names", "enabled": false})),
        ("/v1/fault", json!({"node": "leaf2", "fault": "malformed-value"})),
        ("/v1/fault", json!({"node": "leaf2", "fault": "unknown-path"})),
        ("/v1/fault", json!({"node": "leaf2", "fault": "drop-streams"})),
    ];
    for (target, body) in posts {
        let (code, resp) = http(api, "POST", target, Some(body.clone())).await;
        assert_eq!(code, 200, "{target} {body}: {resp}");
    }
    assert_eq!(f.control().value("leaf2", &evpn("10.0.1.2")).unwrap(), Some(json!(42)));

    // The refuse-sets fault above applies to the next Set; the log shows both.
    let mut c = client(f.leaf_addr("leaf2").unwrap()).await;
    let up = || vec![update("/interface[name=ethernet-1/1]/admin-state", json!("disable"))];
    assert_eq!(set_updates(&mut c, up()).await.unwrap_err().code(), Code::Unavailable);
    set_updates(&mut c, up()).await.unwrap();
    let (code, sets) = http(api, "GET", "/v1/sets", None).await;
    assert_eq!(code, 200);
    let sets = sets.as_array().unwrap();
    assert_eq!(sets.len(), 2);
    assert_eq!(sets[0]["outcome"], "refused");
    assert_eq!(sets[1]["outcome"], "accepted");
    assert_eq!(sets[1]["updates"][0], json!({"path": "/interface[name=ethernet-1/1]/admin-state", "value": "disable"}));
    assert!(sets[1]["received"]["mono_ns"].is_u64());
    assert_eq!(http(api, "GET", "/v1/sets/count", None).await, (200, json!({"count": 2})));
    let (code, _) = http(api, "DELETE", "/v1/sets", None).await;
    assert_eq!(code, 204);
    assert!(f.control().sets().is_empty());
    assert_eq!(http(api, "GET", "/v1/sets/count", None).await, (200, json!({"count": 0})));

    let (code, body) =
        http(api, "POST", "/v1/link", Some(json!({"node": "leaf7", "interface": "ethernet-1/49", "state": "down"})))
            .await;
    assert_eq!(code, 404, "{body}");
    assert!(body["error"].as_str().unwrap().contains("leaf7"));
    let (code, _) = http(
        api,
        "POST",
        "/v1/link",
        Some(json!({"node": "leaf1", "interface": "ethernet-1/49", "state": "sideways"})),
    )
    .await;
    assert!((400..500).contains(&code));
    let (code, body) = http(api, "GET", "/v1/leaves", None).await;
    assert_eq!(code, 200);
    assert_eq!(body["leaves"].as_array().unwrap().len(), 2);
    let (code, body) = http(api, "GET", "/v1/state/leaf1", None).await;
    assert_eq!(code, 200);
    assert_eq!(body["/interface[name=ethernet-1/1]/admin-state"], "enable");
    let (code, _) =
        http(api, "POST", "/v1/fault", Some(json!({"node": "leaf2", "fault": "restart", "down-ms": 10}))).await;
    assert_eq!(code, 200);
    f.shutdown().await;
}

#[tokio::test]
async fn links_applies_a_batch_in_order_or_nothing_at_all() {
    let f = fabric().await;
    let api = f.control_addr().expect("control API");
    let oper =
        |leaf: &str, iface: &str| f.control().value(leaf, &format!("/interface[name={iface}]/oper-state")).unwrap();
    let batch = json!({"links": [
        {"node": "leaf1", "interface": "ethernet-1/49", "state": "down"},
        {"node": "spine2", "interface": "ethernet-1/2", "state": "down"},
    ]});
    let (code, body) = http(api, "POST", "/v1/links", Some(batch)).await;
    assert_eq!(code, 200, "{body}");
    let applied = body["applied"].as_array().expect("one applied moment per link");
    assert_eq!(applied.len(), 2, "{body}");
    assert!(applied[0]["mono_ns"].as_u64() < applied[1]["mono_ns"].as_u64(), "applied in order: {body}");
    assert_eq!(oper("leaf1", "ethernet-1/49"), Some(json!("down")));
    assert_eq!(oper("leaf2", "ethernet-1/50"), Some(json!("down")), "spine2 ethernet-1/2 is leaf2's second uplink");

    // One bad link fails the batch before anything is applied.
    for bad in [
        json!({"node": "leaf7", "interface": "ethernet-1/49", "state": "down"}),
        json!({"node": "leaf1", "interface": "ethernet-1/9", "state": "down"}),
    ] {
        let batch = json!({"links": [{"node": "leaf1", "interface": "ethernet-1/50", "state": "down"}, bad]});
        let (code, body) = http(api, "POST", "/v1/links", Some(batch)).await;
        assert_eq!(code, 404, "{body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(bad["node"].as_str().unwrap()), "{body}");
        assert_eq!(oper("leaf1", "ethernet-1/50"), Some(json!("up")), "nothing of a failed batch applied");
    }
    f.shutdown().await;
}

#[tokio::test]
async fn freeze_keeps_streams_open_but_silent_heartbeats_included_until_thawed() {
    let f = fabric().await;
    let ctl = f.control();
    let mut c = leaf1(&f).await;
    let oper49 = "/interface[name=ethernet-1/49]/oper-state";
    let mut l = stream_list(&[oper49]);
    l.subscription[0].heartbeat_interval = 20_000_000;
    let mut s = subscribe(&mut c, l).await.unwrap();
    s.until_sync().await;
    s.until_value(oper49, json!("up")).await;

    ctl.fault("leaf1", Fault::Freeze { frozen: true }).unwrap();
    // Whatever was already queued may still arrive; after that, silence.
    s.none_within(Duration::from_millis(100), |_| false).await;
    ctl.link("leaf1", "ethernet-1/49", false).unwrap();
    s.none_within(Duration::from_millis(300), |_| true).await;
    // The transport is alive: another RPC on the same connection is answered.
    c.capabilities(pb::CapabilityRequest {}).await.expect("transport answers");

    ctl.fault("leaf1", Fault::Freeze { frozen: false }).unwrap();
    s.until_value(oper49, json!("down")).await;
    f.shutdown().await;
}

#[tokio::test]
async fn reboot_closes_the_port_and_returns_with_downlinks_enabled_and_ibgp_down() {
    let f = fabric().await;
    let ctl = f.control();
    let addr = f.leaf_addr("leaf1").unwrap();
    let mut c = leaf1(&f).await;
    set_updates(&mut c, vec![update("/interface[name=ethernet-1/1]/admin-state", json!("disable"))]).await.unwrap();
    let mut s = subscribe(&mut c, stream_list(&["/interface"])).await.unwrap();
    s.until_sync().await;

    ctl.fault("leaf1", Fault::Reboot { down_ms: 400, ibgp_down_ms: 600 }).unwrap();
    assert_eq!(s.end().await.unwrap_err().code(), Code::Unavailable);
    // Like a device that is down: nothing listens on its port.
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "port still open during the reboot");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(ctl.admin_state("leaf1", "ethernet-1/1").unwrap().as_deref(), Some("enable"), "startup config");

    // Back: gNMI answers on the same port, downlinks enabled, iBGP still down for a while.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut c = loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            break client(addr).await;
        }
        assert!(tokio::time::Instant::now() < deadline, "leaf back after its down time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut s = subscribe(&mut c, stream_list(&["/interface[name=ethernet-1/1]/admin-state", &session("10.0.1.1")]))
        .await
        .unwrap();
    let dump = s.until_sync().await;
    assert_eq!(value_at(&dump, "/interface[name=ethernet-1/1]/admin-state"), Some(json!("enable")));
    assert_ne!(value_at(&dump, &session("10.0.1.1")), Some(json!("established")), "iBGP down at boot");
    s.until_value(&session("10.0.1.1"), json!("established")).await;
    f.shutdown().await;
}
