//! The `openconfig` profile: OpenConfig paths, names and value forms, typed values on
//! PROTO, module-prefixed identities, Set of config/enabled, and a mixed fabric.

mod common;

use common::*;
use fabric_sim::{Fault, Profiles, SimConfig, Timings};
use gnmi_proto as pb;
use serde_json::json;

const OPER49: &str = "/interfaces/interface[name=Ethernet49/1]/state/oper-status";
const ENABLED1: &str = "/interfaces/interface[name=Ethernet1]/state/enabled";
const CONFIG1: &str = "/interfaces/interface[name=Ethernet1]/config/enabled";
const OPER1: &str = "/interfaces/interface[name=Ethernet1]/state/oper-status";
const NEIGHBOR: &str = "/network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors/neighbor[neighbor-address=10.0.1.1]";

/// leaf1 SR Linux, leaf2 OpenConfig.
async fn mixed() -> fabric_sim::Fabric {
    fabric_sim::start(SimConfig {
        leaves: 2,
        base_port: 0,
        control: Some("127.0.0.1:0".parse().unwrap()),
        timings: Timings::fast(),
        profiles: Profiles::parse("leaf1=srl,leaf2=openconfig").unwrap(),
        ..Default::default()
    })
    .await
    .expect("fabric starts")
}

async fn leaf2(f: &fabric_sim::Fabric) -> Client {
    client(f.leaf_addr("leaf2").unwrap()).await
}

fn session() -> String {
    format!("{NEIGHBOR}/state/session-state")
}

fn evpn_received() -> String {
    format!("{NEIGHBOR}/afi-safis/afi-safi[afi-safi-name=L2VPN_EVPN]/state/prefixes/received")
}

#[tokio::test]
async fn a_mixed_fabric_serves_each_leaf_its_own_models() {
    let f = mixed().await;
    let caps = leaf2(&f).await.capabilities(pb::CapabilityRequest {}).await.unwrap().into_inner();
    let models: Vec<&str> = caps.supported_models.iter().map(|m| m.name.as_str()).collect();
    assert!(models.contains(&"openconfig-interfaces") && models.contains(&"openconfig-bgp"), "{models:?}");
    let caps1 = leaf1(&f).await.capabilities(pb::CapabilityRequest {}).await.unwrap().into_inner();
    assert!(caps1.supported_models.iter().all(|m| m.name.starts_with("srl_nokia")));

    // SR Linux paths stay SR Linux on leaf1, and are unknown on leaf2.
    let evs = get(&mut leaf1(&f).await, "/interface[name=ethernet-1/49]/oper-state", pb::Encoding::JsonIetf).await;
    assert_eq!(value_at(&evs.unwrap(), "/interface[name=ethernet-1/49]/oper-state"), Some(json!("up")));
    let err = get(&mut leaf2(&f).await, "/interface[name=ethernet-1/49]/oper-state", pb::Encoding::JsonIetf).await;
    assert!(err.unwrap_err().message().contains("unknown element 'interface'"));

    // JSON_IETF: enumerations, a bool, a uint32, identities with their module in keys and values.
    let mut c = leaf2(&f).await;
    let paths = [
        OPER49,
        ENABLED1,
        &session(),
        &evpn_received(),
        "/network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors/neighbor[neighbor-address=10.0.1.1]/afi-safis/afi-safi/state/afi-safi-name",
    ];
    let mut sub = subscribe(&mut c, stream_list(&paths)).await.unwrap();
    let dump = sub.until_sync().await;
    assert_eq!(value_at(&dump, OPER49), Some(json!("UP")));
    assert_eq!(value_at(&dump, ENABLED1), Some(json!(true)));
    assert_eq!(value_at(&dump, &session()), Some(json!("ESTABLISHED")));
    assert_eq!(value_at(&dump, &evpn_received()), Some(json!(10)));
    let raw: Vec<&str> =
        dump.iter().filter_map(|e| if let Ev::Update { raw, .. } = e { Some(raw.as_str()) } else { None }).collect();
    assert!(raw.iter().any(|r| r.contains("[identifier=openconfig-policy-types:BGP]")), "{raw:?}");
    assert!(raw.iter().any(|r| r.contains("[afi-safi-name=openconfig-bgp-types:L2VPN_EVPN]")), "{raw:?}");
    assert!(
        dump.iter()
            .any(|e| matches!(e, Ev::Update { value, .. } if *value == json!("openconfig-bgp-types:L2VPN_EVPN")))
    );

    // The control API names the leaf's own interfaces; a link down is LOWER_LAYER_DOWN.
    let ctl = f.control_addr().unwrap();
    let (code, _) =
        http(ctl, "POST", "/v1/link", Some(json!({"node":"leaf2","interface":"Ethernet49/1","state":"down"}))).await;
    assert_eq!(code, 200);
    sub.until_value(OPER49, json!("LOWER_LAYER_DOWN")).await;
    // spine1's port 2 is leaf2's uplink to spine1, whatever the leaf calls it.
    http(ctl, "POST", "/v1/link", Some(json!({"node":"spine1","interface":"ethernet-1/2","state":"up"}))).await;
    sub.until_value(OPER49, json!("UP")).await;
    let (code, body) =
        http(ctl, "POST", "/v1/link", Some(json!({"node":"leaf2","interface":"ethernet-1/49","state":"down"}))).await;
    assert_eq!(code, 404, "{body}");
    // BGP and EVPN controls.
    http(ctl, "POST", "/v1/bgp", Some(json!({"node":"leaf2","peer":"10.0.1.1","state":"active"}))).await;
    sub.until_value(&session(), json!("ACTIVE")).await;
    http(ctl, "POST", "/v1/bgp", Some(json!({"node":"leaf2","peer":"10.0.1.1","state":null}))).await;
    http(ctl, "POST", "/v1/evpn-routes", Some(json!({"node":"leaf2","peer":"10.0.1.1","routes":3}))).await;
    sub.until_value(&evpn_received(), json!(3)).await;
    let (code, body) =
        http(ctl, "GET", "/v1/value?node=leaf2&path=/interfaces/interface%5Bname=Ethernet1%5D/state/enabled", None)
            .await;
    assert_eq!((code, body), (200, json!({"value": true})));
    f.shutdown().await;
}

#[tokio::test]
async fn proto_subscriptions_carry_typed_values() {
    let f = mixed().await;
    let mut c = leaf2(&f).await;
    let mut l = stream_list(&[OPER49, ENABLED1, &evpn_received()]);
    l.encoding = pb::Encoding::Proto as i32;
    let mut sub = subscribe(&mut c, l).await.unwrap();
    let dump = sub.until_sync().await;
    assert_eq!(value_at(&dump, OPER49), Some(json!({"string": "UP"})));
    assert_eq!(value_at(&dump, ENABLED1), Some(json!({"bool": true})));
    assert_eq!(value_at(&dump, &evpn_received()), Some(json!({"uint": 10})));
    f.shutdown().await;
}

#[tokio::test]
async fn set_config_enabled_changes_state_enabled_and_oper_status() {
    let f = mixed().await;
    let mut c = leaf2(&f).await;
    let mut sub = subscribe(&mut c, stream_list(&[ENABLED1, OPER1])).await.unwrap();
    sub.until_sync().await;

    // A string is not a boolean: refused, nothing applied.
    let err = set_updates(&mut c, vec![update(CONFIG1, json!("false"))]).await.unwrap_err();
    assert!(err.message().contains("expected a boolean"), "{}", err.message());
    // state/enabled is read-only.
    let err = set_updates(&mut c, vec![update(ENABLED1, json!(false))]).await.unwrap_err();
    assert!(err.message().contains("read-only"), "{}", err.message());

    set_updates(&mut c, vec![update(CONFIG1, json!(false))]).await.unwrap();
    let evs = sub.until_value(ENABLED1, json!(false)).await;
    assert_eq!(value_at(&evs, OPER1), Some(json!("DOWN")), "one change: {evs:?}");
    assert_eq!(f.control().admin_state("leaf2", "Ethernet1").unwrap().as_deref(), Some("disable"));

    // A typed bool_val under origin "openconfig" and module-qualified names is the same Set.
    let mut p = path("/openconfig-interfaces:interfaces/interface[name=Ethernet1]/config/enabled");
    p.origin = "openconfig".into();
    let up = pb::Update {
        path: Some(p),
        val: Some(pb::TypedValue { value: Some(pb::typed_value::Value::BoolVal(true)) }),
        ..Default::default()
    };
    set_updates(&mut c, vec![up]).await.unwrap();
    let evs = sub.until_value(ENABLED1, json!(true)).await;
    assert_eq!(value_at(&evs, OPER1), Some(json!("UP")), "{evs:?}");

    // Replace of the config container resets what it does not name.
    let rep = pb::Update {
        path: Some(path("/interfaces/interface[name=Ethernet1]/config")),
        val: Some(json(json!({"openconfig-interfaces:enabled": false}))),
        ..Default::default()
    };
    c.set(pb::SetRequest { replace: vec![rep], ..Default::default() }).await.unwrap();
    sub.until_value(ENABLED1, json!(false)).await;
    let rec = f.control().sets();
    assert_eq!(rec.last().unwrap().replaces[0].path, "/interfaces/interface[name=Ethernet1]/config");
    f.shutdown().await;
}

#[tokio::test]
async fn a_proto_only_target_refuses_json_ietf_and_takes_typed_values() {
    let f = mixed().await;
    f.control().fault("leaf2", Fault::ProtoOnly { enabled: true }).unwrap();
    let mut c = leaf2(&f).await;
    let caps = c.capabilities(pb::CapabilityRequest {}).await.unwrap().into_inner();
    assert_eq!(caps.supported_encodings, vec![pb::Encoding::Proto as i32, pb::Encoding::Ascii as i32]);
    let mut sub = subscribe(&mut c, stream_list(&[ENABLED1])).await.unwrap();
    let err = sub.end().await.unwrap_err();
    assert!(err.message().contains("unsupported encoding JSON_IETF"), "{}", err.message());
    let err = set_updates(&mut c, vec![update(CONFIG1, json!(false))]).await.unwrap_err();
    assert!(err.message().contains("JSON_IETF"), "{}", err.message());
    let up = pb::Update {
        path: Some(path(CONFIG1)),
        val: Some(pb::TypedValue { value: Some(pb::typed_value::Value::BoolVal(false)) }),
        ..Default::default()
    };
    set_updates(&mut c, vec![up]).await.unwrap();
    assert_eq!(f.control().admin_state("leaf2", "Ethernet1").unwrap().as_deref(), Some("disable"));
    f.shutdown().await;
}

#[tokio::test]
async fn a_profile_for_a_leaf_that_does_not_exist_is_refused() {
    let cfg = SimConfig {
        leaves: 2,
        base_port: 0,
        profiles: Profiles::parse("leaf3=openconfig").unwrap(),
        ..Default::default()
    };
    let err = fabric_sim::start(cfg).await.err().expect("refused");
    assert!(err.to_string().contains("leaf3"), "{err}");
}
