//! The gNMI client against a scripted gNMI server on 127.0.0.1 (ephemeral ports).

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gnmi_proto::{Encoding, subscribe_request, subscription_list, typed_value::Value};
use opergroupd::config::{ClientCert, Secret, Target, Tls};
use opergroupd::gnmi::subscription::Subscriptions;
use opergroupd::gnmi::{self, ConnectOptions, ErrorKind, Setter, SourceOptions, spawn_source};
use opergroupd::model::{AdminState, Scalar, SourceEvent, WireEncoding};
use opergroupd::srl_paths;
use support::*;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

fn target_at(addr: &str, password: &str, tls: Tls) -> Target {
    Target {
        name: "leaf1".into(),
        address: addr.into(),
        username: Some(USER.into()),
        password: Some(Secret::new(password.into())),
        tls,
        liveness: None,
        reconnect_max: std::time::Duration::from_secs(2),
    }
}

fn target(server: &TestServer) -> Arc<Target> {
    Arc::new(target_at(&server.addr.to_string(), PASSWORD, Tls::Insecure))
}

fn opts() -> SourceOptions {
    SourceOptions {
        sync_timeout: Duration::from_secs(5),
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        stable_after: Duration::from_secs(60),
        connect_timeout: Duration::from_secs(5),
        ..SourceOptions::default()
    }
}

fn subscribed_paths() -> Vec<String> {
    vec![
        srl_paths::oper_state("ethernet-1/49"),
        srl_paths::admin_state("ethernet-1/1"),
        srl_paths::neighbor("default", "10.0.1.1"),
    ]
}

struct Running {
    rx: mpsc::Receiver<SourceEvent>,
    cancel: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
}

fn run(target: Arc<Target>, opts: SourceOptions) -> Running {
    let (tx, rx) = mpsc::channel(256);
    let cancel = CancellationToken::new();
    let handle = spawn_source(target, Subscriptions::every_path(subscribed_paths()), tx, opts, cancel.clone());
    Running { rx, cancel, handle }
}

impl Running {
    async fn until(&mut self, what: &str, pred: impl FnMut(&SourceEvent) -> bool) -> Vec<SourceEvent> {
        recv_until(&mut self.rx, what, WAIT, pred).await
    }

    async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(WAIT, self.handle)
            .await
            .expect("source exits on cancel")
            .expect("source task did not panic");
    }
}

fn is_synced(ev: &SourceEvent) -> bool {
    matches!(ev, SourceEvent::Synced { .. })
}

fn stale_error(ev: &SourceEvent) -> Option<&str> {
    match ev {
        SourceEvent::Stale { error, .. } => Some(error),
        _ => None,
    }
}

fn all_updates(events: &[SourceEvent]) -> (Vec<(String, Scalar)>, Vec<String>) {
    let (mut ups, mut dels) = (Vec::new(), Vec::new());
    for ev in events {
        if let SourceEvent::Notification { updates, deletes, .. } = ev {
            ups.extend(updates.iter().cloned());
            dels.extend(deletes.iter().cloned());
        }
    }
    (ups, dels)
}

#[tokio::test]
async fn initial_dump_is_decoded_then_synced_and_request_stream_stays_open() {
    let nbr = "/network-instance[name=default]/protocols/bgp/neighbor[peer-address=10.0.1.1]";
    let script = Script {
        initial: vec![
            // Prefix/path split with module prefixes.
            notification(
                Some(path("/srl_nokia-interfaces:interface[srl_nokia-interfaces:name=ethernet-1/49]")),
                vec![json_update(path("/srl_nokia-interfaces:oper-state"), r#""up""#)],
                vec![],
            ),
            // Many updates, one malformed (skipped alone), counter64 as a string, a delete.
            notification(
                None,
                vec![
                    json_update(path("/interface[name=ethernet-1/1]/admin-state"), "{not json"),
                    json_update(path(&format!("{nbr}/session-state")), r#""established""#),
                    json_update(path(&format!("{nbr}/afi-safi[afi-safi-name=evpn]/received-routes")), r#""12""#),
                ],
                vec![path("/network-instance[name=default]/protocols/bgp/neighbor[peer-address=10.0.1.2]")],
            ),
        ],
        ..Script::default()
    };
    let server = TestServer::start(script).await;
    let mut src = run(target(&server), opts());
    let events = src.until("Synced", is_synced).await;
    assert!(matches!(events[0], SourceEvent::Connecting { attempt: 1, .. }), "{events:?}");
    let (updates, deletes) = all_updates(&events);
    assert_eq!(
        updates,
        vec![
            ("/interface[name=ethernet-1/49]/oper-state".to_string(), Scalar::Str("up".into())),
            (format!("{nbr}/session-state"), Scalar::Str("established".into())),
            (format!("{nbr}/afi-safi[afi-safi-name=evpn]/received-routes"), Scalar::Str("12".into())),
        ]
    );
    assert_eq!(updates[2].1.as_u64(), Some(12));
    assert_eq!(
        deletes,
        vec!["/network-instance[name=default]/protocols/bgp/neighbor[peer-address=10.0.1.2]".to_string()]
    );

    // The request the server got: STREAM, ON_CHANGE per path, JSON_IETF.
    let req = server.seen.subscribe_requests.lock().unwrap()[0].clone();
    let Some(subscribe_request::Request::Subscribe(list)) = req.request else { panic!("no SubscriptionList: {req:?}") };
    assert_eq!(list.mode, subscription_list::Mode::Stream as i32);
    assert_eq!(list.encoding, Encoding::JsonIetf as i32);
    let got: Vec<String> =
        list.subscription.iter().map(|s| gnmi::path::to_string(s.path.as_ref().unwrap()).unwrap()).collect();
    assert_eq!(got, subscribed_paths());

    // After sync a change still arrives, and by then the server has seen no half-close.
    server
        .push(notification(
            None,
            vec![json_update(path("/interface[name=ethernet-1/49]/oper-state"), r#""down""#)],
            vec![],
        ))
        .await;
    let events = src.until("post-sync notification", |e| matches!(e, SourceEvent::Notification { .. })).await;
    assert_eq!(
        all_updates(&events).0,
        vec![("/interface[name=ethernet-1/49]/oper-state".to_string(), Scalar::Str("down".into()))]
    );
    let half_closed = server.seen.half_closed.lock().unwrap()[0].load(Ordering::SeqCst);
    assert!(!half_closed, "client half-closed its Subscribe request stream");
    src.stop().await;
}

#[tokio::test]
async fn stall_before_sync_is_stale_after_the_deadline_then_reconnects() {
    let server = TestServer::start(Script { sync: false, ..Script::default() }).await;
    let started = Instant::now();
    let mut src = run(target(&server), SourceOptions { sync_timeout: Duration::from_millis(300), ..opts() });
    let events = src.until("Stale", |e| stale_error(e).is_some()).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(!events.iter().any(is_synced), "{events:?}");
    let err = stale_error(events.last().unwrap()).unwrap();
    assert!(err.starts_with(&format!("leaf1 ({}): no sync_response", server.addr)), "{err}");
    src.until("second attempt", |e| matches!(e, SourceEvent::Connecting { attempt: 2, .. })).await;
    wait_until("second Subscribe", WAIT, || server.subscribes() >= 2).await;
    // The stalled session was torn down, not left open beside the new one.
    wait_until("first session closed", WAIT, || server.seen.sessions_closed() >= 1).await;
    src.stop().await;
}

#[tokio::test]
async fn stream_end_is_stale_then_resynced_on_a_new_session() {
    let server = TestServer::start(Script { close_after_sync: 1, ..Script::default() }).await;
    let mut src = run(target(&server), opts());
    src.until("first Synced", is_synced).await;
    let events = src.until("Stale", |e| stale_error(e).is_some()).await;
    let err = stale_error(events.last().unwrap()).unwrap();
    assert!(err.contains("stream closed by the target"), "{err}");
    src.until("second Synced", is_synced).await;
    assert_eq!(server.subscribes(), 2);
    src.stop().await;
}

#[tokio::test]
async fn stream_error_status_is_stale_then_resynced() {
    let server = TestServer::start(Script::default()).await;
    let mut src = run(target(&server), opts());
    src.until("first Synced", is_synced).await;
    server.fail_sessions(tonic::Status::unavailable("target restarting")).await;
    let events = src.until("Stale", |e| stale_error(e).is_some()).await;
    let err = stale_error(events.last().unwrap()).unwrap();
    assert!(err.contains("target restarting"), "{err}");
    src.until("second Synced", is_synced).await;
    assert_eq!(server.subscribes(), 2);
    src.stop().await;
}

#[tokio::test]
async fn backoff_grows_over_short_sessions_and_resets_after_a_stable_one() {
    // Three sessions end right after sync, the fourth stays up.
    let server = TestServer::start(Script { close_after_sync: 3, ..Script::default() }).await;
    let o = SourceOptions {
        backoff_min: Duration::from_millis(200),
        backoff_max: Duration::from_secs(10),
        stable_after: Duration::from_millis(50),
        ..opts()
    };
    let mut src = run(target(&server), o);
    // Retry gap after the n-th failure: from its Stale to the next Connecting.
    let mut gaps = Vec::new();
    for attempt in 2..=4 {
        let stale = src.until("Stale", |e| stale_error(e).is_some()).await;
        assert!(stale.iter().any(is_synced), "each short session synced first: {stale:?}");
        let at = Instant::now();
        src.until("reconnect", |e| matches!(e, SourceEvent::Connecting { attempt: a, .. } if *a == attempt)).await;
        gaps.push(at.elapsed());
    }
    // 200·2^n ms plus up to 100 % jitter: the third delay is at least 800 ms.
    assert!(gaps[2] >= Duration::from_millis(800), "{gaps:?}");
    let synced = src.until("fourth Synced", is_synced).await;
    assert!(!synced.iter().any(|e| stale_error(e).is_some()));
    let synced_at = Instant::now();
    wait_until("the session to count as stable", WAIT, || synced_at.elapsed() >= Duration::from_millis(60)).await;
    server.fail_sessions(tonic::Status::unavailable("bye")).await;
    src.until("Stale", |e| stale_error(e).is_some()).await;
    let at = Instant::now();
    src.until("reconnect", |e| matches!(e, SourceEvent::Connecting { attempt: 5, .. })).await;
    // Reset to 200..400 ms; without the reset it would be at least 1600 ms.
    assert!(
        at.elapsed() < Duration::from_millis(1000),
        "{:?} after a stable session (earlier gaps {gaps:?})",
        at.elapsed()
    );
    src.stop().await;
}

#[tokio::test]
async fn wrong_password_gives_a_clear_error_and_retries() {
    let server = TestServer::start(Script::default()).await;
    let t = Arc::new(target_at(&server.addr.to_string(), "wrong-password", Tls::Insecure));
    let mut src = run(t, opts());
    let events = src.until("Stale", |e| stale_error(e).is_some()).await;
    let err = stale_error(events.last().unwrap()).unwrap();
    assert_eq!(err, format!("leaf1 ({}): authentication refused: invalid username or password", server.addr));
    src.until("third attempt", |e| matches!(e, SourceEvent::Connecting { attempt: 3, .. })).await;
    wait_until("refusals on the server", WAIT, || server.seen.auth_refused.load(Ordering::SeqCst) >= 2).await;
    assert!(!src.handle.is_finished());
    src.stop().await;
}

#[tokio::test]
async fn without_json_ietf_the_subscription_asks_for_proto_and_says_so() {
    let server =
        TestServer::start(Script { encodings: vec![Encoding::Proto, Encoding::Ascii], ..Script::default() }).await;
    let mut src = run(target(&server), opts());
    let events = src.until("Subscribed", |e| matches!(e, SourceEvent::Subscribed { .. })).await;
    assert!(matches!(events.last(), Some(SourceEvent::Subscribed { encoding: WireEncoding::Proto, .. })), "{events:?}");
    let sent = server.seen.subscribe_requests.lock().unwrap().clone();
    let encodings: Vec<i32> = sent
        .iter()
        .filter_map(|r| match &r.request {
            Some(subscribe_request::Request::Subscribe(list)) => Some(list.encoding),
            _ => None,
        })
        .collect();
    assert_eq!(encodings, vec![Encoding::Proto as i32], "the SubscriptionList asks for PROTO");
    src.stop().await;
}

#[tokio::test]
async fn neither_json_ietf_nor_proto_is_a_clear_error() {
    let server =
        TestServer::start(Script { encodings: vec![Encoding::Json, Encoding::Ascii], ..Script::default() }).await;
    let mut src = run(target(&server), opts());
    let events = src.until("Stale", |e| stale_error(e).is_some()).await;
    let err = stale_error(events.last().unwrap()).unwrap();
    assert!(err.contains("neither JSON_IETF nor PROTO encoding is offered (offered: JSON, ASCII)"), "{err}");
    assert_eq!(server.subscribes(), 0);
    src.stop().await;
}

#[tokio::test]
async fn unreachable_target_retries_with_growing_intervals() {
    // A port nobody listens on: bind, note it, close.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let t = Arc::new(target_at(&addr.to_string(), PASSWORD, Tls::Insecure));
    let o = SourceOptions { backoff_min: Duration::from_millis(50), backoff_max: Duration::from_secs(2), ..opts() };
    let mut src = run(t, o);
    let mut attempts: Vec<Instant> = Vec::new();
    let mut errors = Vec::new();
    while attempts.len() < 5 {
        let ev = src.until("events", |_| true).await.pop().unwrap();
        match ev {
            SourceEvent::Connecting { .. } => attempts.push(Instant::now()),
            SourceEvent::Stale { error, .. } => errors.push(error),
            other => panic!("unexpected {other:?}"),
        }
    }
    let prefix = format!("leaf1 ({addr}): connection failed: ");
    assert!(errors[0].starts_with(&prefix) && errors[0].to_lowercase().contains("connection refused"), "{}", errors[0]);
    let gap = |i: usize| attempts[i + 1] - attempts[i];
    // Delays are 50·2^n ms plus up to 100 % jitter: the 4th is at least 400 ms.
    assert!(gap(3) >= Duration::from_millis(400), "{:?}", gap(3));
    assert!(gap(0) < gap(3), "{:?} vs {:?}", gap(0), gap(3));
    src.stop().await;
}

#[tokio::test]
async fn cancel_ends_a_synced_source() {
    let server = TestServer::start(Script::default()).await;
    let mut src = run(target(&server), opts());
    src.until("Synced", is_synced).await;
    src.stop().await;
    wait_until("server sees the subscription go away", WAIT, || server.seen.sessions_closed() >= 1).await;
}

fn set_value(u: &gnmi_proto::Update) -> Vec<u8> {
    match u.val.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::JsonIetfVal(b)) => b.clone(),
        other => panic!("not json_ietf: {other:?}"),
    }
}

#[tokio::test]
async fn set_sends_one_request_with_exact_json_ietf_bytes() {
    let server = TestServer::start(Script::default()).await;
    let setter = Setter::new(ConnectOptions::default(), Duration::from_secs(5));
    let changes = vec![
        (srl_paths::admin_state("ethernet-1/1"), AdminState::Disable),
        (srl_paths::admin_state("ethernet-1/2"), AdminState::Enable),
    ];
    let ack = setter.set(&target(&server), &changes, None).await.expect("set accepted");
    assert_eq!(ack.timestamp_ns, 42);
    let sets = server.seen.sets.lock().unwrap().clone();
    assert_eq!(sets.len(), 1);
    let req = &sets[0];
    assert!(req.replace.is_empty() && req.delete.is_empty());
    let got: Vec<(String, Vec<u8>)> =
        req.update.iter().map(|u| (gnmi::path::to_string(u.path.as_ref().unwrap()).unwrap(), set_value(u))).collect();
    assert_eq!(
        got,
        vec![
            ("/interface[name=ethernet-1/1]/admin-state".to_string(), b"\"disable\"".to_vec()),
            ("/interface[name=ethernet-1/2]/admin-state".to_string(), b"\"enable\"".to_vec()),
        ]
    );
    // The channel is reused for the next Set.
    setter.set(&target(&server), &changes[..1], None).await.expect("second set");
    assert_eq!(server.seen.sets.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn sets_share_the_subscription_connection_when_channels_are_shared() {
    let server = TestServer::start(Script::default()).await;
    let channels = gnmi::channels::Channels::default();
    let mut src = run(target(&server), SourceOptions { channels: Some(channels.clone()), ..opts() });
    src.until("Synced", is_synced).await;
    let setter = Setter::sharing(ConnectOptions::default(), Duration::from_secs(5), channels);
    setter.warm(&target(&server)).await;
    let changes = vec![(srl_paths::admin_state("ethernet-1/1"), AdminState::Disable)];
    setter.set(&target(&server), &changes, None).await.expect("set accepted");
    assert_eq!(server.seen.sets.lock().unwrap().len(), 1);
    // Capabilities, Subscribe and Set on one HTTP/2 connection.
    assert_eq!(server.seen.connections.load(Ordering::Relaxed), 1);
    src.stop().await;
}

#[tokio::test]
async fn a_setter_of_its_own_opens_a_second_connection() {
    let server = TestServer::start(Script::default()).await;
    let mut src = run(target(&server), opts());
    src.until("Synced", is_synced).await;
    let setter = Setter::new(ConnectOptions::default(), Duration::from_secs(5));
    let changes = vec![(srl_paths::admin_state("ethernet-1/1"), AdminState::Disable)];
    setter.set(&target(&server), &changes, None).await.expect("set accepted");
    assert_eq!(server.seen.connections.load(Ordering::Relaxed), 2);
    src.stop().await;
}

#[tokio::test]
async fn warm_opens_the_set_channel_before_any_set() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let setter = Arc::new(Setter::new(ConnectOptions::default(), Duration::from_secs(5)));
    let warming = {
        let setter = setter.clone();
        let t = target_at(&addr, PASSWORD, Tls::Insecure);
        tokio::spawn(async move { setter.warm(&t).await })
    };
    let accepted = tokio::time::timeout(WAIT, listener.accept()).await;
    assert!(matches!(accepted, Ok(Ok(_))), "warm() did not connect to {addr}: {accepted:?}");
    warming.abort();
}

#[tokio::test]
async fn set_errors_say_whether_to_retry_and_name_target_and_paths() {
    let changes = vec![(srl_paths::admin_state("ethernet-1/1"), AdminState::Disable)];
    let setter = Setter::new(ConnectOptions::default(), Duration::from_secs(5));

    let bad = TestServer::start(Script { set_error: Some(tonic::Code::InvalidArgument), ..Script::default() }).await;
    let e = setter.set(&target(&bad), &changes, None).await.unwrap_err();
    assert!(!e.retryable, "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("leaf1 ({}): Set of /interface[name=ethernet-1/1]/admin-state failed", bad.addr)),
        "{text}"
    );
    assert!(text.contains("scripted Set failure"), "{text}");

    let busy = TestServer::start(Script { set_error: Some(tonic::Code::Unavailable), ..Script::default() }).await;
    let e = setter.set(&target(&busy), &changes, None).await.unwrap_err();
    assert!(e.retryable, "{e}");

    let auth = TestServer::start(Script { password: "other".into(), ..Script::default() }).await;
    let e = setter.set(&target(&auth), &changes, None).await.unwrap_err();
    assert!(!e.retryable, "{e}");

    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let e = setter.set(&target_at(&addr.to_string(), PASSWORD, Tls::Insecure), &changes, None).await.unwrap_err();
    assert!(e.retryable, "{e}");
    assert!(e.to_string().to_lowercase().contains("connection refused"), "{e}");
}

#[tokio::test]
async fn set_that_gets_no_answer_times_out_as_retryable() {
    let server = TestServer::start(Script { set_stall: true, ..Script::default() }).await;
    let setter = Setter::new(ConnectOptions::default(), Duration::from_millis(300));
    let started = Instant::now();
    let e = setter
        .set(&target(&server), &[(srl_paths::admin_state("ethernet-1/1"), AdminState::Enable)], None)
        .await
        .unwrap_err();
    assert!(e.retryable, "{e}");
    assert!(started.elapsed() >= Duration::from_millis(300) && started.elapsed() < WAIT, "{:?}", started.elapsed());
    assert_eq!(server.seen.sets.lock().unwrap().len(), 1, "the request did reach the target");
}

#[tokio::test]
async fn connect_gives_up_after_the_connect_timeout() {
    // Accepts TCP and then says nothing: the TLS handshake never completes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut socks = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            socks.push(s);
        }
    });
    let t = target_at(&addr.to_string(), PASSWORD, Tls::SkipVerify { client: None, server_name: None });
    let opts = ConnectOptions { connect_timeout: Duration::from_millis(300), ..ConnectOptions::default() };
    let started = Instant::now();
    let e = gnmi::connect(&t, &opts).await.expect_err("handshake cannot finish");
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(started.elapsed() < WAIT);
    held.abort();
}

// ---- TLS ----

/// A fresh directory for PEM files of one test.
fn pem_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("opergroupd-gnmi-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &std::path::Path, name: &str, pem: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, pem).unwrap();
    p
}

async fn connect_and_check(t: &Target) -> Result<(), gnmi::GnmiError> {
    let opts = ConnectOptions { connect_timeout: Duration::from_secs(5), ..ConnectOptions::default() };
    let mut client = gnmi::connect(t, &opts).await?;
    gnmi::check_capabilities(&mut client, t, Duration::from_secs(5)).await.map(|_| ())
}

#[tokio::test]
async fn skip_verify_accepts_a_self_signed_certificate() {
    let cert = self_signed(&["some-other-name.example"]);
    let server = TestServer::start_with(
        Script::default(),
        Some(ServerTls { cert_pem: cert.cert_pem, key_pem: cert.key_pem, client_ca_pem: None }),
    )
    .await;
    let t = target_at(&server.addr.to_string(), PASSWORD, Tls::SkipVerify { client: None, server_name: None });
    connect_and_check(&t).await.expect("skip-verify connects");

    // The same server fails CA verification against the system roots.
    let t =
        target_at(&server.addr.to_string(), PASSWORD, Tls::Verify { ca_file: None, client: None, server_name: None });
    let e = connect_and_check(&t).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Tls, "{e}");
}

#[tokio::test]
async fn ca_verification_accepts_the_right_ca_and_rejects_a_wrong_one() {
    let dir = pem_dir("ca");
    let pki = Pki::new("lab CA");
    let cert = pki.issue(&["127.0.0.1", "leaf1.lab"]);
    let server = TestServer::start_with(
        Script::default(),
        Some(ServerTls { cert_pem: cert.cert_pem, key_pem: cert.key_pem, client_ca_pem: None }),
    )
    .await;
    let right = write(&dir, "right.pem", &pki.ca_pem());
    let wrong = write(&dir, "wrong.pem", &Pki::new("other CA").ca_pem());

    let verify = |ca: &PathBuf, name: Option<&str>| {
        target_at(
            &server.addr.to_string(),
            PASSWORD,
            Tls::Verify { ca_file: Some(ca.clone()), client: None, server_name: name.map(String::from) },
        )
    };
    connect_and_check(&verify(&right, None)).await.expect("right CA verifies 127.0.0.1");
    connect_and_check(&verify(&right, Some("leaf1.lab"))).await.expect("server-name override verifies");

    let e = connect_and_check(&verify(&wrong, None)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Tls, "{e}");
    assert!(e.to_string().starts_with(&format!("leaf1 ({}): TLS handshake failed: ", server.addr)), "{e}");
    let e = connect_and_check(&verify(&right, Some("leaf9.lab"))).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Tls, "{e}");

    let missing = dir.join("missing.pem");
    let e = connect_and_check(&verify(&missing, None)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("missing.pem"), "{e}");
}

#[tokio::test]
async fn mtls_presents_the_client_certificate() {
    let dir = pem_dir("mtls");
    let pki = Pki::new("lab CA");
    let server_cert = pki.issue(&["127.0.0.1"]);
    let client_cert = pki.issue(&["opergroupd"]);
    let server = TestServer::start_with(
        Script::default(),
        Some(ServerTls {
            cert_pem: server_cert.cert_pem,
            key_pem: server_cert.key_pem,
            client_ca_pem: Some(pki.ca_pem()),
        }),
    )
    .await;
    let ca = write(&dir, "ca.pem", &pki.ca_pem());
    let client = ClientCert {
        cert_file: write(&dir, "client.pem", &client_cert.cert_pem),
        key_file: write(&dir, "client.key", &client_cert.key_pem),
    };
    let with = target_at(
        &server.addr.to_string(),
        PASSWORD,
        Tls::Verify { ca_file: Some(ca.clone()), client: Some(client), server_name: None },
    );
    connect_and_check(&with).await.expect("mTLS connects");

    let without = target_at(
        &server.addr.to_string(),
        PASSWORD,
        Tls::Verify { ca_file: Some(ca), client: None, server_name: None },
    );
    let e = connect_and_check(&without).await.expect_err("server requires a client certificate");
    assert_eq!(e.kind, ErrorKind::Tls, "{e}");
}

// ---- GOAWAY too_many_pings ----

/// A bare HTTP/2 server that answers Capabilities and then, on Subscribe, sends GOAWAY
/// ENHANCE_YOUR_CALM the way grpc-go does when a client pings too often.
async fn goaway_server() -> std::net::SocketAddr {
    use prost::Message;
    use tonic::codegen::http;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(sock).await else { return };
                while let Some(Ok((req, mut respond))) = conn.accept().await {
                    let headers = http::Response::builder()
                        .status(200)
                        .header("content-type", "application/grpc")
                        .body(())
                        .unwrap();
                    let Ok(mut send) = respond.send_response(headers, false) else { return };
                    if req.uri().path().ends_with("/Capabilities") {
                        let body = gnmi_proto::CapabilityResponse {
                            supported_encodings: vec![Encoding::JsonIetf as i32],
                            ..Default::default()
                        }
                        .encode_to_vec();
                        let mut frame = vec![0u8];
                        frame.extend((body.len() as u32).to_be_bytes());
                        frame.extend(body);
                        let _ = send.send_data(frame.into(), false);
                        let mut trailers = http::HeaderMap::new();
                        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                        let _ = send.send_trailers(trailers);
                    } else {
                        conn.abrupt_shutdown(h2::Reason::ENHANCE_YOUR_CALM);
                        while conn.accept().await.is_some() {}
                        drop(send);
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn goaway_too_many_pings_is_recognised_and_retried() {
    let addr = goaway_server().await;
    let mut src = run(Arc::new(target_at(&addr.to_string(), PASSWORD, Tls::Insecure)), opts());
    let events = src.until("Stale", |e| stale_error(e).is_some()).await;
    let err = stale_error(events.last().unwrap()).unwrap();
    assert!(err.starts_with(&format!("leaf1 ({addr}): target sent GOAWAY too_many_pings")), "{err}");
    src.until("reconnect", |e| matches!(e, SourceEvent::Connecting { attempt: 2, .. })).await;
    src.stop().await;
}
