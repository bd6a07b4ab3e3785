//! The gNMI surface of a leaf: Capabilities, Get, Set, Subscribe modes, auth, TLS.

mod common;

use std::time::Duration;

use common::*;
use fabric_sim::{SetOutcome, SimTls};
use gnmi_proto as pb;
use pb::subscription_list::Mode as ListMode;
use serde_json::json;
use tonic::Code;

const OPER49: &str = "/interface[name=ethernet-1/49]/oper-state";
const ADMIN1: &str = "/interface[name=ethernet-1/1]/admin-state";
const OPER1: &str = "/interface[name=ethernet-1/1]/oper-state";

#[tokio::test]
async fn capabilities_offer_json_ietf_proto_ascii_and_get_refuses_json() {
    let f = fabric().await;
    let mut c = leaf1(&f).await;
    let caps = c.capabilities(pb::CapabilityRequest {}).await.unwrap().into_inner();
    let mut encs = caps.supported_encodings.clone();
    encs.sort();
    assert_eq!(encs, vec![pb::Encoding::Proto as i32, pb::Encoding::Ascii as i32, pb::Encoding::JsonIetf as i32]);
    assert_eq!(caps.g_nmi_version, "0.10.0");
    let err = get(&mut c, OPER49, pb::Encoding::Json).await.unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    assert!(err.message().contains("JSON"), "{}", err.message());
    f.shutdown().await;
}

#[tokio::test]
async fn get_returns_typed_values_in_every_encoding() {
    let f = fabric().await;
    let mut c = leaf1(&f).await;
    let evs = get(&mut c, "/interface[name=ethernet-1/49]", pb::Encoding::JsonIetf).await.unwrap();
    assert_eq!(value_at(&evs, OPER49), Some(json!("up")));
    assert_eq!(value_at(&evs, "/interface[name=ethernet-1/49]/mtu"), Some(json!(9232)), "uint as a JSON number");
    assert_eq!(
        value_at(&evs, "/interface[name=ethernet-1/49]/statistics/carrier-transitions"),
        Some(json!("0")),
        "counter64 as a JSON string"
    );
    let evs = get(&mut c, OPER49, pb::Encoding::Proto).await.unwrap();
    assert_eq!(evs.len(), 1);
    assert_eq!(value_at(&evs, OPER49), Some(json!({"string": "up"})));
    let evs = get(&mut c, "/interface[name=ethernet-1/49]/mtu", pb::Encoding::Ascii).await.unwrap();
    assert_eq!(value_at(&evs, "/interface[name=ethernet-1/49]/mtu"), Some(json!({"ascii": "9232"})));
    let routes = "/network-instance[name=default]/protocols/bgp/neighbor[peer-address=*]/afi-safi[afi-safi-name=evpn]/received-routes";
    let evs = get(&mut c, routes, pb::Encoding::JsonIetf).await.unwrap();
    assert_eq!(evs.len(), 2, "two iBGP neighbors: {evs:?}");
    assert!(evs.iter().all(|e| matches!(e, Ev::Update { value, .. } if *value == json!(10))));
    let err = get(&mut c, "/interface[name=ethernet-1/7]/oper-state", pb::Encoding::JsonIetf).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = get(&mut c, "/interface[name=ethernet-1/1]/operstate", pb::Encoding::JsonIetf).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("oper-state"), "options listed: {}", err.message());
    f.shutdown().await;
}

#[tokio::test]
async fn wrong_credentials_are_unauthenticated_everywhere() {
    let f = fabric().await;
    let addr = f.leaf_addr("leaf1").unwrap();
    let mut c = client_as(addr, "admin", "wrong").await;
    assert_eq!(c.capabilities(pb::CapabilityRequest {}).await.unwrap_err().code(), Code::Unauthenticated);
    assert_eq!(get(&mut c, OPER49, pb::Encoding::JsonIetf).await.unwrap_err().code(), Code::Unauthenticated);
    assert_eq!(subscribe(&mut c, stream_list(&[OPER49])).await.err().unwrap().code(), Code::Unauthenticated);
    let err = set_updates(&mut c, vec![update(ADMIN1, json!("disable"))]).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let sets = f.control().wait_for_sets(1, WAIT).await.unwrap();
    assert_eq!(sets[0].outcome, SetOutcome::Rejected);
    assert_eq!(f.control().admin_state("leaf1", "ethernet-1/1").unwrap().as_deref(), Some("enable"));
    f.shutdown().await;
}

#[tokio::test]
async fn stream_dumps_then_syncs_then_sends_changes_split_at_the_prefix() {
    let f = fabric().await;
    let mut c = leaf1(&f).await;
    let mut s = subscribe(&mut c, stream_list(&["/interface[name=*]/oper-state"])).await.unwrap();
    let dump = s.until_sync().await;
    let ups: Vec<_> = dump.iter().filter(|e| matches!(e, Ev::Update { .. })).collect();
    assert_eq!(ups.len(), 3, "{dump:?}");
    let applied = f.control().link("leaf1", "ethernet-1/49", false).unwrap();
    let evs = s.until_value(OPER49, json!("down")).await;
    let Some(Ev::Update { ts, .. }) = evs.last() else { unreachable!() };
    assert!(*ts >= applied.unix_ns && *ts - applied.unix_ns < 1_000_000_000, "timestamp on the sim clock");
    // The wire shape: prefix /interface[name=...], update path oper-state.
    f.control().link("leaf1", "ethernet-1/49", true).unwrap();
    let r = tokio::time::timeout(WAIT, s.rx.message()).await.unwrap().unwrap().unwrap();
    let Some(pb::subscribe_response::Response::Update(n)) = r.response else { panic!("{r:?}") };
    let pre = n.prefix.unwrap();
    assert_eq!(pre.elem.len(), 1);
    assert_eq!(pre.elem[0].key["name"], "ethernet-1/49");
    assert_eq!(n.update[0].path.as_ref().unwrap().elem[0].name, "oper-state");
    assert_eq!(n.update[0].val, Some(json(json!("up"))));
    assert!(n.timestamp > 0);
    f.shutdown().await;
}

#[tokio::test]
async fn container_paths_module_prefixed_requests_and_updates_only() {
    let f = fabric().await;
    let mut c = leaf1(&f).await;
    let mut s = subscribe(&mut c, stream_list(&["/srl_nokia-interfaces:interface[name=ethernet-1/1]"])).await.unwrap();
    let dump = s.until_sync().await;
    for leaf in ["admin-state", "oper-state", "mtu", "statistics/carrier-transitions"] {
        assert!(value_at(&dump, &format!("/interface[name=ethernet-1/1]/{leaf}")).is_some(), "{leaf} in {dump:?}");
    }
    let mut l = stream_list(&[OPER1]);
    l.updates_only = true;
    let mut quiet = subscribe(&mut c, l).await.unwrap();
    let first = quiet.until_sync().await;
    assert_eq!(first, vec![Ev::Sync], "updates_only: no initial dump");
    f.control().link("leaf1", "ethernet-1/1", false).unwrap();
    quiet.until_value(OPER1, json!("down")).await;
    let evs = s.until_value("/interface[name=ethernet-1/1]/oper-down-reason", json!("lower-layer-down")).await;
    assert!(value_at(&evs, "/interface[name=ethernet-1/1]/statistics/carrier-transitions").is_some());
    f.shutdown().await;
}

#[tokio::test]
async fn once_ends_after_sync_and_poll_answers_each_poll() {
    let f = fabric().await;
    let mut c = leaf1(&f).await;
    let mut once =
        subscribe(&mut c, list(&[OPER49], ListMode::Once, pb::SubscriptionMode::TargetDefined)).await.unwrap();
    let evs = once.until_sync().await;
    assert_eq!(value_at(&evs, OPER49), Some(json!("up")));
    assert!(once.end().await.is_ok());

    let mut poll =
        subscribe(&mut c, list(&[OPER49], ListMode::Poll, pb::SubscriptionMode::TargetDefined)).await.unwrap();
    poll.until_sync().await;
    f.control().link("leaf1", "ethernet-1/49", false).unwrap();
    let poll_msg = pb::SubscribeRequest { request: Some(pb::subscribe_request::Request::Poll(pb::Poll {})) };
    poll.tx.send(poll_msg).await.unwrap();
    let evs = poll.until_sync().await;
    assert_eq!(value_at(&evs, OPER49), Some(json!("down")));
    f.shutdown().await;
}

#[tokio::test]
async fn sample_repeats_and_suppress_redundant_does_not() {
    let f = fabric().await;
    let mut c = leaf1(&f).await;
    let mut l = list(&[OPER49], ListMode::Stream, pb::SubscriptionMode::Sample);
    l.subscription[0].sample_interval = 20_000_000;
    let mut s = subscribe(&mut c, l).await.unwrap();
    s.until_sync().await;
    let mut n = 0;
    s.until("three samples", |e| {
        n += matches!(e, Ev::Update { .. }) as i32;
        n == 3
    })
    .await;

    let mut l = list(&[OPER49], ListMode::Stream, pb::SubscriptionMode::Sample);
    l.subscription[0].sample_interval = 20_000_000;
    l.subscription[0].suppress_redundant = true;
    let mut q = subscribe(&mut c, l).await.unwrap();
    q.until_sync().await;
    q.none_within(Duration::from_millis(120), |e| matches!(e, Ev::Update { .. })).await;
    f.control().link("leaf1", "ethernet-1/49", false).unwrap();
    q.until_value(OPER49, json!("down")).await;

    // ON_CHANGE with a heartbeat repeats unchanged values.
    let mut l = stream_list(&[OPER49]);
    l.subscription[0].heartbeat_interval = 20_000_000;
    let mut hb = subscribe(&mut c, l).await.unwrap();
    hb.until_sync().await;
    let mut n = 0;
    hb.until("two heartbeats", |e| {
        n += matches!(e, Ev::Update { value, .. } if value == "down") as i32;
        n == 2
    })
    .await;
    f.shutdown().await;
}

#[tokio::test]
async fn a_heartbeat_resends_its_own_subscription_and_no_other() {
    // As on a device: heartbeat_interval is per Subscription. A neighbour without one is
    // sent at sync and on change only, however often the other one's heartbeat fires.
    let f = fabric().await;
    let mut c = leaf1(&f).await;
    let mut l = stream_list(&[OPER49, ADMIN1]);
    l.subscription[0].heartbeat_interval = 20_000_000;
    let mut s = subscribe(&mut c, l).await.unwrap();
    let evs = s.until_sync().await;
    assert_eq!(value_at(&evs, ADMIN1), Some(json!("enable")));
    let mut heartbeats = 0;
    let evs = s
        .until("five heartbeats of the uplink", |e| {
            heartbeats += matches!(e, Ev::Update { path, .. } if path == OPER49) as i32;
            heartbeats == 5
        })
        .await;
    assert!(
        !evs.iter().any(|e| matches!(e, Ev::Update { path, .. } if path == ADMIN1)),
        "the subscription without a heartbeat was re-sent: {evs:?}"
    );
    f.shutdown().await;
}

#[tokio::test]
async fn set_admin_disable_turns_oper_down_and_is_recorded() {
    let f = fabric().await;
    let mut c = leaf1(&f).await;
    let mut s = subscribe(&mut c, stream_list(&["/interface[name=ethernet-1/1]"])).await.unwrap();
    s.until_sync().await;
    let resp = set_updates(&mut c, vec![update(ADMIN1, json!("disable"))]).await.unwrap();
    assert_eq!(resp.response.len(), 1);
    assert!(resp.timestamp > 0);
    let evs = s.until_value("/interface[name=ethernet-1/1]/oper-down-reason", json!("port-admin-disabled")).await;
    assert_eq!(value_at(&evs, OPER1), Some(json!("down")));
    assert_eq!(value_at(&evs, ADMIN1), Some(json!("disable")));
    let sets = f.control().sets();
    assert_eq!(sets.len(), 1);
    let r = &sets[0];
    assert_eq!((r.node.as_str(), r.outcome), ("leaf1", SetOutcome::Accepted));
    assert_eq!(r.updates[0].path, ADMIN1);
    assert_eq!(r.updates[0].value, json!("disable"));
    assert!(r.applied.unwrap().mono_ns >= r.received.mono_ns);
    f.shutdown().await;
}

#[tokio::test]
async fn set_errors_are_srl_like_and_nothing_is_applied() {
    let f = fabric().await;
    let mut c = leaf1(&f).await;
    let cases = [
        (
            vec![update("/interface[name=ethernet-1/1]/adminstate", json!("disable"))],
            Code::InvalidArgument,
            "unknown element 'adminstate'",
        ),
        (vec![update(ADMIN1, json!("down"))], Code::InvalidArgument, "[enable, disable]"),
        (vec![update(OPER1, json!("down"))], Code::InvalidArgument, "read-only"),
        (vec![update("/interface[name=ethernet-1/9]/admin-state", json!("disable"))], Code::NotFound, "ethernet-1/9"),
        (vec![update("/interface[name=*]/admin-state", json!("disable"))], Code::InvalidArgument, "Wildcards"),
        // Atomic: the good first update must not be applied either.
        (
            vec![update(ADMIN1, json!("disable")), update("/interface[name=ethernet-1/49]/mtu", json!(12))],
            Code::InvalidArgument,
            "1500..9500",
        ),
    ];
    for (ups, code, text) in cases {
        let err = set_updates(&mut c, ups).await.unwrap_err();
        assert_eq!(err.code(), code, "{}", err.message());
        assert!(err.message().contains(text), "{:?} lacks {text:?}", err.message());
    }
    let bad_json = pb::Update {
        path: Some(path(ADMIN1)),
        val: Some(pb::TypedValue { value: Some(pb::typed_value::Value::JsonIetfVal(b"{nope".to_vec())) }),
        ..Default::default()
    };
    assert_eq!(set_updates(&mut c, vec![bad_json]).await.unwrap_err().code(), Code::InvalidArgument);
    assert_eq!(f.control().admin_state("leaf1", "ethernet-1/1").unwrap().as_deref(), Some("enable"));
    let sets = f.control().wait_for_sets(7, WAIT).await.unwrap();
    assert!(sets.iter().all(|r| r.outcome == SetOutcome::Rejected && r.error.is_some() && r.applied.is_none()));
    f.shutdown().await;
}

#[tokio::test]
async fn set_replace_delete_and_prefixed_names() {
    let f = fabric().await;
    let mut c = leaf1(&f).await;
    let mut s = subscribe(
        &mut c,
        stream_list(&["/network-instance[name=default]/protocols/bgp/neighbor[peer-address=*]/session-state"]),
    )
    .await
    .unwrap();
    s.until_sync().await;
    // Replace at a container, addressed through a module-prefixed prefix and an empty path.
    let rep = pb::SetRequest {
        prefix: Some(path("/srl_nokia-interfaces:interface[name=ethernet-1/1]")),
        replace: vec![pb::Update {
            path: Some(pb::Path::default()),
            val: Some(json(json!({"srl_nokia-interfaces:admin-state": "disable", "description": "client1"}))),
            ..Default::default()
        }],
        ..Default::default()
    };
    let del = pb::SetRequest {
        delete: vec![path("/network-instance[name=default]/protocols/bgp/neighbor[peer-address=10.0.1.2]")],
        ..Default::default()
    };
    c.set(rep).await.unwrap();
    assert_eq!(f.control().admin_state("leaf1", "ethernet-1/1").unwrap().as_deref(), Some("disable"));
    assert_eq!(
        f.control().value("leaf1", "/interface[name=ethernet-1/1]/description").unwrap(),
        Some(json!("client1"))
    );
    c.set(del).await.unwrap();
    let evs = s.until("neighbor delete", |e| matches!(e, Ev::Delete { .. })).await;
    assert_eq!(
        evs.last(),
        Some(&Ev::Delete {
            path: "/network-instance[name=default]/protocols/bgp/neighbor[peer-address=10.0.1.2]".into(),
            raw: "/network-instance[name=default]/protocols/bgp/neighbor[peer-address=10.0.1.2]".into(),
        })
    );
    let sets = f.control().sets();
    assert_eq!(sets[0].replaces[0].path, "/interface[name=ethernet-1/1]");
    assert_eq!(
        sets[1].deletes,
        vec!["/network-instance[name=default]/protocols/bgp/neighbor[peer-address=10.0.1.2]".to_string()]
    );
    // Neighbor admin-state disable takes the session to idle at once; enable brings it back.
    let nb1 = "/network-instance[name=default]/protocols/bgp/neighbor[peer-address=10.0.1.1]";
    set_updates(&mut c, vec![update(&format!("{nb1}/admin-state"), json!("disable"))]).await.unwrap();
    s.until_value(&format!("{nb1}/session-state"), json!("idle")).await;
    set_updates(&mut c, vec![update(&format!("{nb1}/admin-state"), json!("enable"))]).await.unwrap();
    s.until_value(&format!("{nb1}/session-state"), json!("established")).await;
    // Delete of a config leaf restores its default.
    c.set(pb::SetRequest { delete: vec![path(ADMIN1)], ..Default::default() }).await.unwrap();
    assert_eq!(f.control().admin_state("leaf1", "ethernet-1/1").unwrap().as_deref(), Some("enable"));
    f.shutdown().await;
}

#[tokio::test]
async fn self_signed_tls_serves_with_the_published_certificate() {
    let f = fabric_with(SimTls::SelfSigned).await;
    let pem = f.ca_pem().expect("a certificate");
    let addr = f.leaf_addr("leaf2").unwrap();
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&pem))
        .domain_name("localhost");
    let ch = tonic::transport::Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = pb::g_nmi_client::GNmiClient::with_interceptor(ch, |mut r: tonic::Request<()>| {
        r.metadata_mut().insert("username", "admin".parse().unwrap());
        r.metadata_mut().insert("password", "NokiaSrl1!".parse().unwrap());
        Ok(r)
    });
    let caps = c.capabilities(pb::CapabilityRequest {}).await.unwrap().into_inner();
    assert_eq!(caps.supported_encodings.len(), 3);
    // Plaintext against a TLS leaf fails.
    let plain = tonic::transport::Channel::from_shared(format!("http://{addr}")).unwrap().connect().await;
    if let Ok(ch) = plain {
        assert!(pb::g_nmi_client::GNmiClient::new(ch).capabilities(pb::CapabilityRequest {}).await.is_err());
    }
    f.shutdown().await;
}

#[tokio::test]
async fn leaf_k_listens_on_base_port_plus_k() {
    // Find a free port P and run one leaf on base P-1; retry if someone takes P meanwhile.
    for _ in 0..5 {
        let p = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cfg = fabric_sim::SimConfig { leaves: 1, base_port: p - 1, ..Default::default() };
        match fabric_sim::start(cfg).await {
            Ok(f) => {
                assert_eq!(f.leaf_addr("leaf1").unwrap().port(), p);
                assert_eq!(f.leaf_names(), vec!["leaf1".to_string()]);
                assert!(f.control_addr().is_none() && f.ca_pem().is_none());
                f.shutdown().await;
                return;
            }
            Err(fabric_sim::SimError::Bind { .. }) => continue,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("no free port found in 5 tries");
}
