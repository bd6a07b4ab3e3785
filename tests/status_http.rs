//! The operator surface through a real HTTP client: values change with the calls the
//! control loop makes on the Board.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use opergroupd::config::override_file::{self, Override};
use opergroupd::model::{AdminState, Scalar};
use opergroupd::status::{
    self, Board, DownlinkEval, Enforcement, GroupEval, Health, InputValue, Pending, SetResult, StatusDocument,
    http_get, serve,
};
use tokio_util::sync::CancellationToken;

const GROUP: &str = "leaf1-es1";

struct Server {
    addr: String,
    cancel: CancellationToken,
    task: status::ServerDone,
}

impl Server {
    async fn start(board: &Board) -> Server {
        let cancel = CancellationToken::new();
        let any: SocketAddr = "127.0.0.1:0".parse().expect("loopback address");
        let (bound, task) = serve(any, board.clone(), cancel.clone()).expect("serve");
        assert_ne!(bound.port(), 0, "serve must report the bound port");
        Server { addr: bound.to_string(), cancel, task }
    }

    async fn get(&self, path: &str) -> status::client::HttpResponse {
        http_get(&self.addr, path).await.unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    async fn status(&self) -> StatusDocument {
        let r = self.get("/status").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
        serde_json::from_str(&r.body).expect("status document decodes")
    }

    async fn metrics(&self) -> String {
        let r = self.get("/metrics").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type.as_deref(), Some(status::METRICS_CONTENT_TYPE));
        r.body
    }

    async fn stop(self) {
        self.cancel.cancel();
        let done = tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("server stops within 5 s after cancel");
        done.expect("server task joins").expect("server ends cleanly");
    }
}

/// The value of the sample `series` (`name{a="x",b="y"}`, labels in any order), or None.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    let want = parse_series(series);
    metrics.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        (parse_series(series) == want).then(|| value.parse().ok())?
    })
}

/// `name{a="x",b="y"}` -> (name, sorted labels). Label values here hold no quotes.
fn parse_series(series: &str) -> (String, Vec<(String, String)>) {
    let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
    let mut labels: Vec<(String, String)> = labels
        .trim_end_matches('}')
        .split("\",")
        .filter(|kv| !kv.is_empty())
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect();
    labels.sort();
    (name.to_string(), labels)
}

fn board_with_group() -> Board {
    let board = Board::new("test-version");
    board.declare_target("leaf1", false);
    board.declare_group(GROUP, "leaf1", &["ethernet-1/1".to_string()], true);
    board.set_config_loaded(true);
    board
}

fn uplinks_down_eval(at: Instant, enforcement: Enforcement) -> GroupEval {
    GroupEval {
        at,
        health: Health::Unhealthy,
        reason: "0/2 uplinks up, required 1".to_string(),
        enforcement,
        downlinks: vec![DownlinkEval {
            name: "ethernet-1/1".to_string(),
            desired: Some(AdminState::Disable),
            observed: Some(AdminState::Enable),
        }],
        pending: None,
        inputs: vec![
            InputValue {
                path: "/interface[name=ethernet-1/49]/oper-state".into(),
                value: Some(Scalar::Str("down".to_string())),
                received: Some(at - Duration::from_millis(3)),
            },
            InputValue {
                path: "/interface[name=ethernet-1/50]/oper-state".into(),
                value: Some(Scalar::Str("down".to_string())),
                received: Some(at - Duration::from_millis(2)),
            },
        ],
        decided: enforcement == Enforcement::Enforcing,
        trigger: Some(at - Duration::from_millis(2)),
    }
}

#[tokio::test]
async fn decision_and_set_show_in_status_and_metrics() {
    let board = board_with_group();
    let server = Server::start(&board).await;

    let before = server.status().await;
    let group = &before.groups[0];
    assert_eq!((group.name.as_str(), group.oper_state), (GROUP, Health::Unknown));
    assert_eq!(group.statistics.sets_sent, 0);
    let metrics_before = server.metrics().await;
    let count = r#"opergroupd_decision_to_set_seconds_count{group="leaf1-es1"}"#;
    let count_before = sample(&metrics_before, count).expect("histogram exists before any Set");
    let sets_ok = r#"opergroupd_sets_total{group="leaf1-es1",result="ok"}"#;
    assert_eq!(sample(&metrics_before, sets_ok), None, "no Set finished yet");

    let decided = Instant::now();
    board.target_synced("leaf1", decided - Duration::from_secs(1));
    board.group_evaluated(GROUP, uplinks_down_eval(decided, Enforcement::Enforcing));
    let line = "set leaf1 /interface[name=ethernet-1/1]/admin-state=disable".to_string();
    board.set_started(GROUP, line.clone(), decided + Duration::from_millis(1));
    board.set_finished(GROUP, SetResult::Ok, decided + Duration::from_millis(12));

    let after = server.status().await;
    let group = &after.groups[0];
    assert_eq!(group.oper_state, Health::Unhealthy);
    assert_eq!(group.reason, "0/2 uplinks up, required 1");
    assert_eq!(group.enforcement, Enforcement::Enforcing);
    assert_eq!(group.downlinks[0].desired.as_deref(), Some("disable"));
    assert_eq!(group.downlinks[0].observed.as_deref(), Some("enable"));
    let input = group.last_input.as_ref().expect("last input recorded");
    assert_eq!(input.values.len(), 2);
    assert_eq!(input.values[0].value.as_deref(), Some("down"));
    assert!(input.values[0].received_at.is_some());
    let output = group.last_output.as_ref().expect("last output recorded");
    assert_eq!((output.line.as_str(), output.result.as_str()), (line.as_str(), "ok"));
    let latency = output.latency_ms.expect("Set latency");
    assert!((latency - 11.0).abs() < 1e-6, "Set sent to answered is 11 ms, got {latency}");
    let s = &group.statistics;
    assert_eq!((s.evaluations, s.decisions, s.sets_sent, s.sets_failed), (1, 1, 1, 0));
    let d2s = s.last_decision_to_set_ms.expect("decision-to-set latency");
    assert!((d2s - 12.0).abs() < 1e-6, "decision to Set ack is 12 ms, got {d2s}");
    assert!(s.last_decision_at.is_some());

    let metrics = server.metrics().await;
    assert_eq!(sample(&metrics, sets_ok), Some(1.0));
    assert_eq!(sample(&metrics, count), Some(count_before + 1.0));
    // 12 ms lands above the 10 ms bucket and within the 25 ms one.
    let bucket = |le: &str| {
        sample(&metrics, &format!(r#"opergroupd_decision_to_set_seconds_bucket{{group="leaf1-es1",le="{le}"}}"#))
    };
    assert_eq!(bucket("0.01"), Some(0.0));
    assert_eq!(bucket("0.025"), Some(1.0));
    assert_eq!(sample(&metrics, r#"opergroupd_group_state{group="leaf1-es1",state="unhealthy"}"#), Some(1.0));
    assert_eq!(sample(&metrics, r#"opergroupd_group_state{group="leaf1-es1",state="unknown"}"#), Some(0.0));
    let downlink = r#"{group="leaf1-es1",target="leaf1",interface="ethernet-1/1"}"#;
    assert_eq!(sample(&metrics, &format!("opergroupd_downlink_desired_enabled{downlink}")), Some(0.0));
    assert_eq!(sample(&metrics, &format!("opergroupd_downlink_observed_enabled{downlink}")), Some(1.0));
    assert_eq!(sample(&metrics, r#"opergroupd_notification_to_decision_seconds_count{group="leaf1-es1"}"#), Some(1.0));

    // A failed Set after a retry counts as failed, not as latency.
    board.set_started(GROUP, line, decided + Duration::from_millis(20));
    board.set_retry(GROUP);
    board.set_finished(
        GROUP,
        SetResult::Failed("UNAVAILABLE: connection reset".into()),
        decided + Duration::from_millis(30),
    );
    let doc = server.status().await;
    let s = &doc.groups[0].statistics;
    assert_eq!((s.sets_sent, s.sets_failed, s.retries), (2, 1, 1));
    let output = doc.groups[0].last_output.as_ref().expect("last output");
    assert_eq!(output.result, "failed");
    assert_eq!(output.error.as_deref(), Some("UNAVAILABLE: connection reset"));
    let metrics = server.metrics().await;
    assert_eq!(sample(&metrics, r#"opergroupd_sets_total{group="leaf1-es1",result="failed"}"#), Some(1.0));
    assert_eq!(sample(&metrics, r#"opergroupd_set_retries_total{group="leaf1-es1"}"#), Some(1.0));
    assert_eq!(sample(&metrics, count), Some(count_before + 1.0), "failures add no latency sample");

    server.stop().await;
}

#[tokio::test]
async fn targets_report_connection_state_notifications_and_reconnects() {
    let board = board_with_group();
    let server = Server::start(&board).await;
    let t0 = Instant::now();
    board.target_connecting("leaf1", t0);
    board.target_synced("leaf1", t0 + Duration::from_millis(5));
    for i in 0..3 {
        board.notification("leaf1", t0 + Duration::from_millis(10 + i), 2);
    }
    let doc = server.status().await;
    let t = &doc.targets[0];
    assert_eq!((t.name.as_str(), t.state), ("leaf1", status::ConnState::Synced));
    assert_eq!((t.notifications, t.updates, t.reconnects), (3, 6, 0));
    assert!(t.synced_since.is_some() && t.ever_synced);

    board.target_stale("leaf1", t0 + Duration::from_millis(50), "stream closed: GOAWAY too_many_pings");
    board.target_connecting("leaf1", t0 + Duration::from_millis(60));
    let doc = server.status().await;
    let t = &doc.targets[0];
    assert_eq!(t.state, status::ConnState::Connecting);
    assert_eq!(t.reconnects, 1);
    assert_eq!(t.synced_since, None);
    assert_eq!(t.last_error.as_deref(), Some("stream closed: GOAWAY too_many_pings"));

    let metrics = server.metrics().await;
    assert_eq!(sample(&metrics, r#"opergroupd_notifications_total{target="leaf1"}"#), Some(3.0));
    assert_eq!(sample(&metrics, r#"opergroupd_notification_updates_total{target="leaf1"}"#), Some(6.0));
    assert_eq!(sample(&metrics, r#"opergroupd_target_reconnects_total{target="leaf1"}"#), Some(1.0));
    assert_eq!(sample(&metrics, r#"opergroupd_target_up{target="leaf1"}"#), Some(0.0));
    assert_eq!(sample(&metrics, r#"opergroupd_target_state{target="leaf1",state="connecting"}"#), Some(1.0));
    server.stop().await;
}

#[tokio::test]
async fn pending_timer_reports_wall_time_and_countdown() {
    let board = board_with_group();
    let server = Server::start(&board).await;
    let now = Instant::now();
    let mut eval = uplinks_down_eval(now, Enforcement::Enforcing);
    eval.decided = false;
    eval.pending = Some(Pending { action: AdminState::Disable, fires_at: now + Duration::from_secs(5) });
    board.group_evaluated(GROUP, eval);

    let doc = server.status().await;
    let pending = doc.groups[0].pending.as_ref().expect("pending timer shown");
    assert_eq!(pending.action, "disable");
    assert!((0..=5000).contains(&pending.fires_in_ms), "fires in {} ms", pending.fires_in_ms);
    let fires = time::OffsetDateTime::parse(&pending.fires_at, &time::format_description::well_known::Rfc3339)
        .expect("fires_at is RFC 3339");
    let generated = time::OffsetDateTime::parse(&doc.generated_at, &time::format_description::well_known::Rfc3339)
        .expect("generated_at is RFC 3339");
    let ahead = (fires - generated).whole_milliseconds();
    assert!((ahead - i128::from(pending.fires_in_ms)).abs() <= 2, "wall time and countdown agree");
    assert_eq!(doc.groups[0].statistics.decisions, 0);
    let metrics = server.metrics().await;
    assert_eq!(sample(&metrics, r#"opergroupd_group_pending{group="leaf1-es1",action="disable"}"#), Some(1.0));
    assert_eq!(sample(&metrics, r#"opergroupd_group_pending{group="leaf1-es1",action="enable"}"#), Some(0.0));
    server.stop().await;
}

#[tokio::test]
async fn override_file_suspends_within_one_evaluation_and_shows() {
    let dir = std::env::temp_dir().join(format!("opergroupd-status-override-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("maintenance");
    let _ = std::fs::remove_file(&path);

    let board = board_with_group();
    board.set_override_file(Some(path.clone()));
    let server = Server::start(&board).await;

    // What the loop does on every evaluation.
    let evaluate = |board: &Board| {
        let ov = override_file::read_override(&path);
        board.override_seen(&ov);
        let enforcement = Enforcement::of(true, ov.suspends(GROUP));
        board.group_evaluated(GROUP, uplinks_down_eval(Instant::now(), enforcement));
    };

    evaluate(&board);
    let doc = server.status().await;
    assert_eq!(doc.groups[0].enforcement, Enforcement::Enforcing);
    assert_eq!(doc.controller.maintenance.suspends, "none");

    std::fs::write(&path, "# RMA 1234\nleaf1-es1\n").expect("write override");
    evaluate(&board);
    let doc = server.status().await;
    assert_eq!(doc.groups[0].enforcement, Enforcement::Suspended);
    assert_eq!(doc.controller.maintenance.suspends, "groups");
    assert_eq!(doc.controller.maintenance.groups, vec![GROUP.to_string()]);
    assert_eq!(doc.controller.maintenance.override_file.as_deref(), Some(path.to_str().expect("utf-8 path")));
    let metrics = server.metrics().await;
    assert_eq!(sample(&metrics, r#"opergroupd_group_enforcement{group="leaf1-es1",state="suspended"}"#), Some(1.0));

    std::fs::remove_file(&path).expect("remove override");
    evaluate(&board);
    assert_eq!(server.status().await.groups[0].enforcement, Enforcement::Enforcing);
    assert_eq!(override_file::read_override(&path), Override::None);
    let _ = std::fs::remove_dir_all(&dir);
    server.stop().await;
}

#[tokio::test]
async fn healthz_follows_the_loop_heartbeat() {
    let board = board_with_group();
    let server = Server::start(&board).await;
    board.set_heartbeat_timeout(Duration::from_secs(60));
    board.heartbeat(Instant::now());
    let r = server.get("/healthz").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));

    // With no slack at all, the time since the last heartbeat is already too long.
    board.set_heartbeat_timeout(Duration::ZERO);
    let r = server.get("/healthz").await;
    assert_eq!(r.status, 503);
    assert!(r.body.contains("control loop silent"), "{}", r.body);

    board.set_heartbeat_timeout(Duration::from_secs(60));
    board.heartbeat(Instant::now());
    assert_eq!(server.get("/healthz").await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn readyz_waits_for_config_and_first_sync() {
    let board = Board::new("test-version");
    board.declare_target("leaf1", false);
    board.declare_target("leaf9", true);
    let server = Server::start(&board).await;

    let r = server.get("/readyz").await;
    assert_eq!((r.status, r.body.as_str()), (503, "configuration not loaded\n"));

    board.set_config_loaded(true);
    board.target_stale("leaf1", Instant::now(), "connection refused");
    let r = server.get("/readyz").await;
    assert_eq!(r.status, 503);
    assert!(r.body.contains("leaf1 (stale: connection refused)"), "{}", r.body);
    assert!(!r.body.contains("leaf9"), "allowed-absent target does not hold readiness: {}", r.body);

    board.target_synced("leaf1", Instant::now());
    assert_eq!(server.get("/readyz").await.status, 200);
    // Once synced, a later outage is a liveness/status matter, not readiness.
    board.target_stale("leaf1", Instant::now(), "stream closed");
    assert_eq!(server.get("/readyz").await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn status_client_reads_the_document_and_names_a_missing_server() {
    let board = board_with_group();
    board.set_role(status::ReplicaRole::Leader);
    let server = Server::start(&board).await;
    let doc = status::fetch_status(&server.addr).await.expect("fetch /status");
    assert_eq!(doc.controller.version, "test-version");
    assert_eq!(doc.controller.role, status::ReplicaRole::Leader);
    assert_eq!(doc.groups[0].name, GROUP);
    let table = status::render_table(&doc, false);
    assert!(table.contains("leaf1-es1  leaf1   unknown"), "{table}");
    assert!(!table.contains('\x1b'), "no colour when asked for none");
    server.stop().await;

    // Nothing listens on a port we just had and released.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let free = listener.local_addr().expect("local addr").to_string();
    drop(listener);
    let err = status::print_status(&free, false).await.expect_err("nothing listens");
    assert_eq!(err.to_string(), format!("no opergroupd at {free}: connection refused"));
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let board = board_with_group();
    let server = Server::start(&board).await;
    assert_eq!(server.get("/nope").await.status, 404);
    server.stop().await;
}

/// `opergroupd run` keeps its control loop on one thread; a scrape of 10,000 groups takes
/// ~0.3 s of CPU. The server must answer from its own thread: here the caller's (only)
/// runtime thread is blocked while another thread's GET is answered.
#[tokio::test(flavor = "current_thread")]
async fn the_server_answers_while_the_callers_runtime_thread_is_busy() {
    use std::io::{Read, Write};
    let server = Server::start(&board_with_group()).await;
    let addr = server.addr.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let answer = (|| -> std::io::Result<String> {
            let mut s = std::net::TcpStream::connect(&addr)?;
            s.set_read_timeout(Some(Duration::from_secs(3)))?;
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: opergroupd\r\nConnection: close\r\n\r\n")?;
            let mut head = [0u8; 12];
            s.read_exact(&mut head)?;
            Ok(String::from_utf8_lossy(&head).into_owned())
        })();
        let _ = tx.send(answer);
    });
    // Blocks this runtime's only thread until the GET is answered or gave up.
    let answer = rx.recv_timeout(Duration::from_secs(10)).expect("the client thread reports");
    let head = answer.expect("an answer while the runtime thread was blocked");
    assert!(head.starts_with("HTTP/1.1 "), "{head:?}");
    server.stop().await;
}
