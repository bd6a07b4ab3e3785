//! The agent's gNMI service over a real socket, with its store fed by hand (no netlink,
//! no FRR, no root): auth, Capabilities, Get, Subscribe ON_CHANGE + sync_response +
//! heartbeats, and Sets refused whole for bad input.

use std::time::Duration;

use gnmi_proto as pb;
use netns_agent::server::Leaf;
use netns_agent::store::Store;
use opergroupd::gnmi::path;
use pb::g_nmi_client::GNmiClient;
use pb::subscribe_response::Response as SubResp;
use serde_json::json;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Channel;

const OPER: &str = "/interface[name=ethernet-1/49]/oper-state";
const ADMIN: &str = "/interface[name=ethernet-1/49]/admin-state";
const SESSION: &str = "/network-instance[name=default]/protocols/bgp/neighbor[peer-address=10.0.1.1]/session-state";
const DEADLINE: Duration = Duration::from_secs(10);

async fn serve() -> (std::sync::Arc<Store>, GNmiClient<Channel>) {
    let store = Store::new();
    store.apply(vec![
        (OPER.into(), Some(json!("up"))),
        (ADMIN.into(), Some(json!("enable"))),
        (SESSION.into(), Some(json!("established"))),
    ]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let leaf = Leaf { store: store.clone(), credentials: Some(("admin".into(), "pw".into())) };
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(pb::g_nmi_server::GNmiServer::new(leaf))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    (store, GNmiClient::new(channel))
}

fn authed<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert("username", "admin".parse().unwrap());
    r.metadata_mut().insert("password", "pw".parse().unwrap());
    r
}

fn updates(n: &pb::Notification) -> Vec<(String, serde_json::Value)> {
    n.update
        .iter()
        .map(|u| {
            let p = path::join_to_string(n.prefix.as_ref(), u.path.as_ref()).unwrap();
            let Some(pb::typed_value::Value::JsonIetfVal(b)) = u.val.as_ref().and_then(|v| v.value.as_ref()) else {
                panic!("not JSON_IETF: {u:?}")
            };
            (p, serde_json::from_slice(b).unwrap())
        })
        .collect()
}

#[tokio::test]
async fn wrong_credentials_are_refused_and_capabilities_offer_json_ietf() {
    let (_store, mut c) = serve().await;
    let err = c.capabilities(pb::CapabilityRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let caps = c.capabilities(authed(pb::CapabilityRequest::default())).await.unwrap().into_inner();
    assert_eq!(caps.supported_encodings, vec![pb::Encoding::JsonIetf as i32]);
}

#[tokio::test]
async fn get_returns_values_and_names_a_missing_path() {
    let (_store, mut c) = serve().await;
    let req = |p: &str| pb::GetRequest {
        path: vec![path::parse(p).unwrap()],
        encoding: pb::Encoding::JsonIetf as i32,
        ..Default::default()
    };
    let got = c.get(authed(req(OPER))).await.unwrap().into_inner();
    assert_eq!(updates(&got.notification[0]), vec![(OPER.to_string(), json!("up"))]);
    let missing = "/interface[name=ethernet-1/7]/oper-state";
    let err = c.get(authed(req(missing))).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert!(err.message().contains("ethernet-1/7"), "{}", err.message());
}

#[tokio::test]
async fn subscribe_syncs_streams_changes_and_resends_on_heartbeat() {
    let (store, mut c) = serve().await;
    let sub = |p: &str, heartbeat: u64| pb::Subscription {
        path: Some(path::parse(p).unwrap()),
        mode: pb::SubscriptionMode::OnChange as i32,
        heartbeat_interval: heartbeat,
        ..Default::default()
    };
    let list = pb::SubscriptionList {
        subscription: vec![sub(OPER, 0), sub(SESSION, 300_000_000)],
        mode: pb::subscription_list::Mode::Stream as i32,
        encoding: pb::Encoding::JsonIetf as i32,
        ..Default::default()
    };
    let first = pb::SubscribeRequest { request: Some(pb::subscribe_request::Request::Subscribe(list)) };
    // The request stream stays open for the life of the subscription, as the contract asks.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(first).await.unwrap();
    let mut stream = c.subscribe(authed(tokio_stream::wrappers::ReceiverStream::new(rx))).await.unwrap().into_inner();
    let mut next = async || {
        let r = tokio::time::timeout(DEADLINE, stream.next()).await.expect("a response in time");
        r.expect("stream open").expect("no error").response.expect("a response")
    };
    let mut initial = Vec::new();
    loop {
        match next().await {
            SubResp::Update(n) => initial.extend(updates(&n)),
            SubResp::SyncResponse(true) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    initial.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(initial, vec![(OPER.into(), json!("up")), (SESSION.into(), json!("established"))]);

    store.apply(vec![(OPER.into(), Some(json!("down")))]);
    // Heartbeats of SESSION may come first; the change must come, and only the change of OPER.
    let mut saw_change = false;
    let mut heartbeats = 0;
    while !(saw_change && heartbeats >= 2) {
        let SubResp::Update(n) = next().await else { panic!("only updates after sync") };
        for (p, v) in updates(&n) {
            if p == OPER {
                assert_eq!(v, json!("down"));
                assert!(!saw_change, "one change, one update");
                saw_change = true;
            } else {
                assert_eq!((p.as_str(), v), (SESSION, json!("established")), "a heartbeat re-sends the value");
                heartbeats += 1;
            }
        }
    }
    drop(tx);
}

#[tokio::test]
async fn a_set_with_one_bad_update_changes_nothing_and_names_the_path() {
    let (_store, mut c) = serve().await;
    let up = |p: &str, v: &str| pb::Update {
        path: Some(path::parse(p).unwrap()),
        val: Some(pb::TypedValue { value: Some(pb::typed_value::Value::JsonIetfVal(v.as_bytes().to_vec())) }),
        ..Default::default()
    };
    let req = pb::SetRequest {
        update: vec![
            up("/interface[name=ethernet-1/49]/admin-state", "\"disable\""),
            up("/interface[name=ethernet-1/49]/mtu", "9000"),
        ],
        ..Default::default()
    };
    // Validated whole before any link is touched: had the first update been applied, the
    // missing Linux link e1-49 would have answered INTERNAL, not INVALID_ARGUMENT.
    let err = c.set(authed(req)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("/interface[name=ethernet-1/49]/mtu"), "{}", err.message());

    let req = pb::SetRequest {
        update: vec![up("/interface[name=ethernet-1/9]/admin-state", "\"disable\"")],
        ..Default::default()
    };
    let err = c.set(authed(req)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert!(err.message().contains("ethernet-1/9"), "{}", err.message());
}
