//! Every metric family rendered through the real `/metrics` endpoint, the dashboard
//! checked against what is exported, and a sample written for the Python parser test
//! (tests/python/test_metrics_parse.py): to `$OPERGROUPD_METRICS_SAMPLE` when set,
//! else `target/metrics-sample.txt`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use opergroupd::model::{AdminState, Scalar};
use opergroupd::status::{
    self, Board, DownlinkEval, Enforcement, GroupEval, Health, InputValue, Pending, ReplicaRole, ServiceState,
    SetResult,
};
use tokio_util::sync::CancellationToken;

/// Drive the board through every kind of call, so every family has series.
fn busy_board() -> Board {
    let board = Board::new("0.1.0-test");
    board.declare_target("leaf1", false);
    board.declare_target("leaf2", true);
    board.declare_group("leaf1-es1", "leaf1", &["ethernet-1/1".to_string()], true);
    board.declare_group("leaf2-es1", "leaf2", &["ethernet-1/1".to_string()], false);
    board.set_config_loaded(true);
    board.set_role(ReplicaRole::Leader);

    let t0 = Instant::now();
    board.target_connecting("leaf1", t0);
    board.target_synced("leaf1", t0 + Duration::from_millis(5));
    board.notification("leaf1", t0 + Duration::from_millis(10), 2);
    board.target_connecting("leaf2", t0);
    board.target_stale("leaf2", t0 + Duration::from_millis(20), "connection refused");
    board.target_connecting("leaf2", t0 + Duration::from_millis(30));

    let at = t0 + Duration::from_millis(11);
    board.group_evaluated(
        "leaf1-es1",
        GroupEval {
            at,
            health: Health::Unhealthy,
            reason: "0/2 uplinks up, required 1".to_string(),
            enforcement: Enforcement::Enforcing,
            downlinks: vec![DownlinkEval {
                name: "ethernet-1/1".to_string(),
                desired: Some(AdminState::Disable),
                observed: Some(AdminState::Enable),
            }],
            pending: None,
            inputs: vec![InputValue {
                path: "/interface[name=ethernet-1/49]/oper-state".into(),
                value: Some(Scalar::Str("down".to_string())),
                received: Some(t0 + Duration::from_millis(10)),
            }],
            decided: true,
            trigger: Some(t0 + Duration::from_millis(10)),
        },
    );
    board.set_started("leaf1-es1", "set leaf1 ethernet-1/1 disable".to_string(), at);
    board.set_retry("leaf1-es1");
    board.set_finished("leaf1-es1", SetResult::Ok, at + Duration::from_millis(7));
    board.set_started("leaf1-es1", "set leaf1 ethernet-1/1 disable".to_string(), at);
    board.set_finished("leaf1-es1", SetResult::Failed("deadline exceeded".to_string()), at);
    board.set_started("leaf1-es1", "{\"target\":\"leaf1\"}".to_string(), at);
    board.set_finished("leaf1-es1", SetResult::DryRun, at);
    board.group_evaluated(
        "leaf2-es1",
        GroupEval {
            at,
            health: Health::NotReady,
            reason: "2/2 uplinks up; 0/2 BGP neighbors established, required 1".to_string(),
            enforcement: Enforcement::ObserveOnly,
            downlinks: vec![DownlinkEval {
                name: "ethernet-1/1".to_string(),
                desired: Some(AdminState::Enable),
                observed: Some(AdminState::Disable),
            }],
            pending: Some(Pending { action: AdminState::Enable, fires_at: at + Duration::from_secs(30) }),
            inputs: Vec::new(),
            decided: false,
            trigger: None,
        },
    );
    board.service("dns-anycast", ServiceState::Up, Some(at), Some("3/3 checks passed".to_string()));
    board
}

async fn rendered_metrics(board: &Board) -> String {
    let cancel = CancellationToken::new();
    let any: SocketAddr = "127.0.0.1:0".parse().expect("loopback address");
    let (bound, task) = status::serve(any, board.clone(), cancel.clone()).expect("serve");
    let r = status::http_get(&bound.to_string(), "/metrics").await.expect("GET /metrics");
    cancel.cancel();
    let _ = task.await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type.as_deref(), Some(status::METRICS_CONTENT_TYPE));
    r.body
}

/// Sample names (`opergroupd_sets_total`, `..._bucket`) in a rendered exposition.
fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

fn sample_path() -> PathBuf {
    match std::env::var_os("OPERGROUPD_METRICS_SAMPLE") {
        Some(path) => PathBuf::from(path),
        // CARGO_TARGET_TMPDIR is <target>/tmp.
        None => PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .map_or_else(|| PathBuf::from("target"), PathBuf::from)
            .join("metrics-sample.txt"),
    }
}

#[tokio::test]
async fn every_family_renders_and_a_sample_is_written() {
    let text = rendered_metrics(&busy_board()).await;
    assert!(text.ends_with("# EOF\n"), "OpenMetrics text ends with # EOF");
    let names = sample_names(&text);
    for name in [
        "opergroupd_build_info",
        "opergroupd_target_up",
        "opergroupd_target_state",
        "opergroupd_target_reconnects_total",
        "opergroupd_notifications_total",
        "opergroupd_notification_updates_total",
        "opergroupd_group_state",
        "opergroupd_group_enforcement",
        "opergroupd_group_pending",
        "opergroupd_downlink_desired_enabled",
        "opergroupd_downlink_observed_enabled",
        "opergroupd_group_evaluations_total",
        "opergroupd_group_decisions_total",
        "opergroupd_sets_total",
        "opergroupd_set_retries_total",
        "opergroupd_notification_to_decision_seconds_bucket",
        "opergroupd_decision_to_set_seconds_bucket",
        "opergroupd_decision_to_set_seconds_count",
        "opergroupd_role",
        "opergroupd_service_state",
    ] {
        assert!(names.contains(name), "{name} missing from /metrics:\n{text}");
    }
    assert!(names.iter().all(|n| n.starts_with("opergroupd_")), "unprefixed metric in {names:?}");

    let path = sample_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    }
    std::fs::write(&path, &text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Every `opergroupd_*` name in the dashboard's `expr` strings.
fn dashboard_metric_names(value: &serde_json::Value, out: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", serde_json::Value::String(expr)) => {
                        let mut rest = expr.as_str();
                        while let Some(start) = rest.find("opergroupd_") {
                            let tail = &rest[start..];
                            let end = tail
                                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                                .unwrap_or(tail.len());
                            out.insert(tail[..end].to_string());
                            rest = &tail[end..];
                        }
                    }
                    _ => dashboard_metric_names(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| dashboard_metric_names(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn dashboard_references_only_exported_metrics() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/grafana/opergroupd.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let dashboard: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not valid JSON: {e}"));
    assert_eq!(dashboard["uid"], "opergroupd");
    let panels = dashboard["panels"].as_array().expect("dashboard has panels");
    assert!(panels.len() >= 5, "health, downlinks, Set latency, reconnects, notifications");

    let mut referenced = BTreeSet::new();
    dashboard_metric_names(&dashboard, &mut referenced);
    let exported = sample_names(&rendered_metrics(&busy_board()).await);
    let missing: Vec<_> = referenced.difference(&exported).collect();
    assert!(missing.is_empty(), "dashboard references metrics not exported: {missing:?}");
    for needed in [
        "opergroupd_group_state",
        "opergroupd_downlink_observed_enabled",
        "opergroupd_decision_to_set_seconds_bucket",
        "opergroupd_target_reconnects_total",
        "opergroupd_notifications_total",
    ] {
        assert!(referenced.contains(needed), "dashboard does not chart {needed}");
    }
}

/// The group gauges follow every change across successive evaluations (the board only
/// touches a gauge when its value changes), including back to the first state.
#[test]
fn group_gauges_follow_successive_evaluations() {
    let board = Board::new("0.1.0-test");
    board.declare_target("leaf1", false);
    board.declare_group("leaf1-es1", "leaf1", &["ethernet-1/1".to_string()], true);
    let t0 = Instant::now();
    let eval = |health, observed, pending: Option<AdminState>| GroupEval {
        at: t0,
        health,
        reason: String::new(),
        enforcement: Enforcement::Enforcing,
        downlinks: vec![DownlinkEval { name: "ethernet-1/1".to_string(), desired: Some(AdminState::Enable), observed }],
        pending: pending.map(|action| Pending { action, fires_at: t0 + Duration::from_secs(1) }),
        inputs: Vec::new(),
        decided: false,
        trigger: None,
    };
    let sample = |text: &str, prefix: &str| -> Option<String> {
        text.lines().find(|l| l.starts_with(prefix)).map(|l| l.rsplit(' ').next().unwrap_or_default().to_string())
    };
    let check = |health: &str, observed: Option<&str>, pending_enable: &str| {
        let text = board.metrics_text();
        for h in ["healthy", "unhealthy", "not-ready", "unknown", "misconfigured"] {
            let want = if h == health { "1" } else { "0" };
            let line = format!("opergroupd_group_state{{group=\"leaf1-es1\",state=\"{h}\"}}");
            assert_eq!(sample(&text, &line).as_deref(), Some(want), "{line} in\n{text}");
        }
        let observed_line = "opergroupd_downlink_observed_enabled{";
        let got = text.lines().find(|l| l.starts_with(observed_line)).map(|l| l.rsplit(' ').next().unwrap_or_default());
        assert_eq!(got, observed, "{text}");
        let line = "opergroupd_group_pending{group=\"leaf1-es1\",action=\"enable\"}";
        assert_eq!(sample(&text, line).as_deref(), Some(pending_enable), "{text}");
    };
    board.group_evaluated("leaf1-es1", eval(Health::Healthy, Some(AdminState::Enable), None));
    check("healthy", Some("1"), "0");
    board.group_evaluated("leaf1-es1", eval(Health::Healthy, Some(AdminState::Enable), None));
    check("healthy", Some("1"), "0");
    board.group_evaluated("leaf1-es1", eval(Health::Unhealthy, Some(AdminState::Disable), None));
    check("unhealthy", Some("0"), "0");
    board.group_evaluated("leaf1-es1", eval(Health::NotReady, None, Some(AdminState::Enable)));
    check("not-ready", None, "1");
    board.group_evaluated("leaf1-es1", eval(Health::Misconfigured, Some(AdminState::Enable), None));
    check("misconfigured", Some("1"), "0");
    board.group_evaluated("leaf1-es1", eval(Health::Healthy, Some(AdminState::Enable), None));
    check("healthy", Some("1"), "0");
}

/// `metrics.histograms: fleet`: one series of each latency histogram for the whole fleet,
/// without the `group` label, counting every group's observations; per group (the
/// default) one per group.
#[test]
fn fleet_histograms_count_every_group_in_one_series() {
    use opergroupd::config::HistogramScope;
    let count_lines = |scope| {
        let board = Board::with_histograms("0.1.0-test", scope);
        let t0 = Instant::now();
        for g in ["leaf1-es1", "leaf2-es1", "leaf3-es1"] {
            board.declare_group(g, "leaf1", &["ethernet-1/1".to_string()], true);
            let eval = GroupEval {
                at: t0 + Duration::from_millis(2),
                health: Health::Healthy,
                reason: "2/2 uplinks up, required 1".to_string(),
                enforcement: Enforcement::Enforcing,
                downlinks: Vec::new(),
                pending: None,
                inputs: Vec::new(),
                decided: false,
                trigger: Some(t0),
            };
            board.group_evaluated(g, eval);
        }
        let text = board.metrics_text();
        let lines: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with("opergroupd_notification_to_decision_seconds_count"))
            .map(str::to_string)
            .collect();
        (lines, text.len())
    };
    let (fleet, fleet_bytes) = count_lines(HistogramScope::Fleet);
    assert_eq!(fleet, ["opergroupd_notification_to_decision_seconds_count 3"], "one series, every group counted");
    let (per_group, per_group_bytes) = count_lines(HistogramScope::PerGroup);
    assert_eq!(per_group.len(), 3, "{per_group:?}");
    assert!(per_group.iter().all(|l| l.contains("group=\"leaf") && l.ends_with(" 1")), "{per_group:?}");
    assert!(fleet_bytes < per_group_bytes, "fleet {fleet_bytes} bytes, per group {per_group_bytes}");
}
