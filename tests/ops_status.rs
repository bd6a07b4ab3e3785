//! Issue 4 end to end: the real controller loop against fabric-sim (real gNMI on loopback),
//! its Board served by `status::serve`, and /status, /metrics, /healthz, /readyz read
//! through hyper's HTTP client while the scenario runs.
//!
//! Set `OPERGROUPD_LIVE_METRICS_SAMPLE=FILE` to keep the /metrics text captured at the end
//! of the outage scenario (tests/python/test_metrics_parse.py parses it with
//! prometheus_client).

#[path = "support/ops.rs"]
mod ops;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fabric_sim::{Control, Fabric, Fault, SetOutcome, SimConfig, Timings};
use opergroupd::actuate::{Actuator, SET_TIMEOUT};
use opergroupd::controller::{self, RunOptions};
use opergroupd::gnmi::connect::ConnectOptions;
use opergroupd::gnmi::set::Setter;
use opergroupd::status::{Board, ConnState, Enforcement, Health, serve};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use ops::{eventually, get, group, metrics, sample, status, target};

const STEP: Duration = Duration::from_secs(10);
const DOWNLINK_ADMIN: &str = "/interface[name=ethernet-1/1]/admin-state";

/// fabric-sim, the controller loop and its status server, all in this process.
struct Rig {
    fabric: Option<Fabric>,
    ctl: Control,
    http: SocketAddr,
    cancel: CancellationToken,
    loop_task: Option<JoinHandle<Result<(), controller::RunError>>>,
}

impl Rig {
    /// `prepare` runs on the fabric before the controller starts (e.g. to stall a sync).
    async fn start(leaves: usize, extra_yaml: &str, prepare: impl FnOnce(&Control)) -> Rig {
        let fabric =
            fabric_sim::start(SimConfig { leaves, base_port: 0, timings: Timings::fast(), ..SimConfig::default() })
                .await
                .expect("start fabric-sim");
        let ctl = fabric.control();
        prepare(&ctl);
        let addrs: Vec<(String, SocketAddr)> =
            fabric.leaf_names().into_iter().map(|n| (n.clone(), fabric.leaf_addr(&n).expect("leaf addr"))).collect();
        let yaml = ops::fabric_config(&addrs, extra_yaml);
        let config = opergroupd::config::parse(&yaml, "<ops_status>").unwrap_or_else(|e| panic!("{e}\n{yaml}"));

        let cancel = CancellationToken::new();
        let board = Board::from_config(&config, "ops-test", false);
        let (http, _server) =
            serve("127.0.0.1:0".parse().expect("addr"), board.clone(), cancel.clone()).expect("status server");
        let setter = Setter::new(ConnectOptions::default(), SET_TIMEOUT);
        let mut opts = RunOptions::new(Actuator::Gnmi(Arc::new(setter)));
        opts.board = Some(board);
        // Reconnect quickly after an injected stream drop.
        opts.source.backoff_min = Duration::from_millis(50);
        opts.source.backoff_max = Duration::from_millis(200);
        let loop_task = tokio::spawn(controller::run(config, opts, cancel.clone()));
        Rig { fabric: Some(fabric), ctl, http, cancel, loop_task: Some(loop_task) }
    }

    async fn probe(&self, path: &str) -> (u16, String) {
        let r = get(self.http, path).await.unwrap_or_else(|e| panic!("{e}"));
        (r.status, r.body)
    }

    async fn wait_group(
        &self,
        what: &str,
        name: &str,
        cond: impl Fn(&opergroupd::status::document::GroupStatus) -> bool,
    ) -> opergroupd::status::StatusDocument {
        eventually(what, STEP, || async {
            let doc = status(self.http).await;
            let g = group(&doc, name);
            if cond(g) { Ok(doc.clone()) } else { Err(format!("{g:?}")) }
        })
        .await
    }

    async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.loop_task.take() {
            let ended = tokio::time::timeout(Duration::from_secs(5), task).await.expect("loop stops within 5 s");
            ended.expect("loop task joins").expect("loop ends cleanly");
        }
        if let Some(fabric) = self.fabric.take() {
            fabric.shutdown().await;
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        // A failed assertion lands here: stop the loop's tasks with the test.
        self.cancel.cancel();
    }
}

fn fail_both_uplinks(ctl: &Control, leaf: &str) {
    ctl.link(leaf, "ethernet-1/49", false).expect("link down");
    ctl.link(leaf, "ethernet-1/50", false).expect("link down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_an_outage_and_a_reconnect_show_in_status_and_metrics() {
    // leaf2 sends its dump but no sync_response until released: the process is not ready.
    let rig = Rig::start(2, "", |ctl| {
        ctl.fault("leaf2", Fault::StallSync { stall: true }).expect("stall leaf2");
    })
    .await;

    let waiting = eventually("leaf1 synced while /readyz waits for leaf2", STEP, || async {
        let doc = status(rig.http).await;
        let (code, body) = rig.probe("/readyz").await;
        let leaf1 = target(&doc, "leaf1");
        if leaf1.state == ConnState::Synced && code == 503 {
            Ok(body)
        } else {
            Err(format!("leaf1 {:?}, /readyz {code} {body}", leaf1.state))
        }
    })
    .await;
    assert!(waiting.contains("leaf2") && !waiting.contains("leaf1"), "/readyz names what it waits for: {waiting}");
    assert_eq!(rig.probe("/healthz").await.0, 200, "the loop turns while not ready");

    rig.ctl.fault("leaf2", Fault::StallSync { stall: false }).expect("release leaf2");
    eventually("/readyz 200 once every target synced", STEP, || async {
        match rig.probe("/readyz").await {
            (200, _) => Ok(()),
            (code, body) => Err(format!("{code} {body}")),
        }
    })
    .await;
    rig.wait_group("leaf1-es1 healthy", "leaf1-es1", |g| g.oper_state == Health::Healthy).await;

    let before = status(rig.http).await;
    let m0 = metrics(rig.http).await;
    let sets_ok = r#"opergroupd_sets_total{group="leaf1-es1",result="ok"}"#;
    let latency_count = r#"opergroupd_decision_to_set_seconds_count{group="leaf1-es1"}"#;
    let ok0 = sample(&m0, sets_ok).unwrap_or(0.0);
    let count0 = sample(&m0, latency_count).expect("the latency histogram exists before any Set");
    assert_eq!(group(&before, "leaf1-es1").statistics.sets_sent, 0);
    assert_eq!(sample(&m0, r#"opergroupd_target_up{target="leaf1"}"#), Some(1.0));
    assert!(rig.ctl.sets().is_empty(), "a healthy fabric gets no Set: {:?}", rig.ctl.sets());

    // Both uplinks of leaf1 fail: one Set disables its downlink.
    fail_both_uplinks(&rig.ctl, "leaf1");
    rig.ctl.wait_for_sets(1, STEP).await.expect("the controller Sets leaf1's downlink");
    let after = rig
        .wait_group("leaf1-es1 unhealthy, its Set answered and the device reporting disable", "leaf1-es1", |g| {
            g.oper_state == Health::Unhealthy
                && g.last_output.as_ref().is_some_and(|o| o.result == "ok")
                && g.downlinks.iter().all(|d| d.observed.as_deref() == Some("disable"))
        })
        .await;
    let g = group(&after, "leaf1-es1");
    assert!(g.reason.contains("0/2 uplinks up"), "reason names 0/2 uplinks: {}", g.reason);
    assert_eq!(g.statistics.sets_sent, 1, "{:?}", g.statistics);
    assert_eq!(g.statistics.sets_failed, 0);
    assert!(g.statistics.last_decision_to_set_ms.is_some_and(|ms| ms > 0.0 && ms < 5000.0), "{:?}", g.statistics);
    let output = g.last_output.as_ref().expect("last output");
    assert!(output.line.contains("ethernet-1/1") && output.line.contains("disable"), "{}", output.line);
    let inputs = &g.last_input.as_ref().expect("last input").values;
    for uplink in ["ethernet-1/49", "ethernet-1/50"] {
        let path = format!("/interface[name={uplink}]/oper-state");
        let v = inputs.iter().find(|v| v.path == path).unwrap_or_else(|| panic!("no input {path}: {inputs:?}"));
        assert_eq!(v.value.as_deref(), Some("down"), "{path}");
        assert!(v.received_at.is_some());
    }
    assert_eq!(group(&after, "leaf2-es1").oper_state, Health::Healthy, "leaf2 is untouched");

    let m1 = metrics(rig.http).await;
    assert_eq!(sample(&m1, sets_ok), Some(ok0 + 1.0), "Sets ok went up by exactly one");
    assert_eq!(sample(&m1, latency_count), Some(count0 + 1.0), "exactly one more latency sample");
    assert_eq!(sample(&m1, r#"opergroupd_group_state{group="leaf1-es1",state="unhealthy"}"#), Some(1.0));
    assert_eq!(sample(&m1, r#"opergroupd_group_state{group="leaf1-es1",state="healthy"}"#), Some(0.0));
    let downlink = r#"{group="leaf1-es1",target="leaf1",interface="ethernet-1/1"}"#;
    assert_eq!(sample(&m1, &format!("opergroupd_downlink_desired_enabled{downlink}")), Some(0.0));
    assert_eq!(sample(&m1, &format!("opergroupd_downlink_observed_enabled{downlink}")), Some(0.0));

    let sets = rig.ctl.sets();
    assert_eq!(sets.len(), 1, "exactly one Set reached the fabric: {sets:?}");
    assert_eq!((sets[0].node.as_str(), sets[0].outcome), ("leaf1", SetOutcome::Accepted));
    let changed: Vec<(&str, &serde_json::Value)> =
        sets[0].updates.iter().chain(&sets[0].replaces).map(|u| (u.path.as_str(), &u.value)).collect();
    assert_eq!(changed, vec![(DOWNLINK_ADMIN, &serde_json::json!("disable"))]);

    // The target's connection as /status shows it, then a dropped stream and a reconnect.
    let leaf1 = target(&after, "leaf1");
    assert_eq!((leaf1.state, leaf1.ever_synced, leaf1.reconnects), (ConnState::Synced, true, 0));
    assert!(leaf1.synced_since.is_some() && leaf1.notifications > 0);
    let leaf2 = target(&after, "leaf2");
    assert_eq!((leaf2.state, leaf2.ever_synced), (ConnState::Synced, true));
    let reconnects = r#"opergroupd_target_reconnects_total{target="leaf1"}"#;
    let r0 = sample(&m1, reconnects).expect("reconnect counter exists");

    rig.ctl.fault("leaf1", Fault::DropStreams).expect("drop leaf1's streams");
    let back = eventually("leaf1 reconnected and synced again", STEP, || async {
        let doc = status(rig.http).await;
        let t = target(&doc, "leaf1");
        if t.reconnects >= 1 && t.state == ConnState::Synced { Ok(doc.clone()) } else { Err(format!("{t:?}")) }
    })
    .await;
    let t = target(&back, "leaf1");
    assert_eq!(t.reconnects, 1, "{t:?}");
    assert!(t.last_error.is_some(), "the drop is remembered: {t:?}");
    let m2 = metrics(rig.http).await;
    assert_eq!(sample(&m2, reconnects), Some(r0 + 1.0), "the reconnect counter increased by one");
    assert_eq!(sample(&m2, r#"opergroupd_target_up{target="leaf1"}"#), Some(1.0));
    // Re-synced state already matches the decision: nothing more is sent.
    assert_eq!(group(&back, "leaf1-es1").statistics.sets_sent, 1);
    assert_eq!(rig.ctl.sets().len(), 1, "{:?}", rig.ctl.sets());
    assert_eq!(rig.probe("/readyz").await.0, 200, "a target that synced once does not make the process unready");
    assert_eq!(rig.probe("/healthz").await.0, 200);

    if let Ok(path) = std::env::var("OPERGROUPD_LIVE_METRICS_SAMPLE") {
        std::fs::write(&path, &m2).unwrap_or_else(|e| panic!("write {path}: {e}"));
    }
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_override_file_suspends_within_one_evaluation_and_its_removal_sends_the_pending_set() {
    let dir = ops::TempDir::new("override");
    let file = dir.path("maintenance");
    let rig = Rig::start(1, &format!("override-file: \"{}\"\n", file.display()), |_| {}).await;

    let ready = rig.wait_group("leaf1-es1 healthy", "leaf1-es1", |g| g.oper_state == Health::Healthy).await;
    assert_eq!(ready.controller.maintenance.override_file.as_deref(), Some(file.to_str().expect("utf-8 path")));
    assert_eq!(ready.controller.maintenance.suspends, "none");
    assert_eq!(group(&ready, "leaf1-es1").enforcement, Enforcement::Enforcing);

    // `touch`: every evaluation that starts after the file exists must see it.
    std::fs::write(&file, "").expect("create the override file");
    let n = group(&status(rig.http).await, "leaf1-es1").statistics.evaluations;
    let suspended =
        rig.wait_group("an evaluation after the file appeared", "leaf1-es1", |g| g.statistics.evaluations > n).await;
    assert_eq!(
        group(&suspended, "leaf1-es1").enforcement,
        Enforcement::Suspended,
        "the first evaluation after touch suspends"
    );
    assert_eq!(suspended.controller.maintenance.suspends, "all");
    let m = metrics(rig.http).await;
    assert_eq!(sample(&m, r#"opergroupd_group_enforcement{group="leaf1-es1",state="suspended"}"#), Some(1.0));

    // An outage while suspended: evaluated and shown, never Set.
    fail_both_uplinks(&rig.ctl, "leaf1");
    let seen = rig
        .wait_group("leaf1-es1 unhealthy while suspended", "leaf1-es1", |g| {
            g.oper_state == Health::Unhealthy && g.reason.contains("0/2 uplinks up")
        })
        .await;
    let g = group(&seen, "leaf1-es1");
    assert_eq!(g.enforcement, Enforcement::Suspended);
    assert!(
        g.downlinks.iter().all(|d| d.desired.as_deref() == Some("disable") && d.observed.as_deref() == Some("enable")),
        "{:?}",
        g.downlinks
    );
    // One more evaluation after that one (the once-a-second pass), then nothing was sent.
    let e = g.statistics.evaluations;
    let later = rig.wait_group("another evaluation", "leaf1-es1", |g| g.statistics.evaluations > e).await;
    let stats = &group(&later, "leaf1-es1").statistics;
    assert_eq!((stats.sets_sent, stats.decisions), (0, 0), "{stats:?}");
    assert!(rig.ctl.sets().is_empty(), "no Set while suspended: {:?}", rig.ctl.sets());
    assert_eq!(rig.ctl.admin_state("leaf1", "ethernet-1/1").expect("leaf1").as_deref(), Some("enable"));

    // `rm`: enforcement resumes and the pending disable goes out, once.
    std::fs::remove_file(&file).expect("remove the override file");
    let sets = rig.ctl.wait_for_sets(1, Duration::from_secs(5)).await.expect("the pending disable is sent after rm");
    let resumed = rig
        .wait_group("leaf1-es1 enforcing, its Set answered", "leaf1-es1", |g| {
            g.enforcement == Enforcement::Enforcing && g.last_output.as_ref().is_some_and(|o| o.result == "ok")
        })
        .await;
    assert_eq!(resumed.controller.maintenance.suspends, "none");
    assert_eq!(group(&resumed, "leaf1-es1").statistics.sets_sent, 1);
    assert_eq!(sets.len(), 1, "{sets:?}");
    assert_eq!(
        sets[0].updates.iter().chain(&sets[0].replaces).map(|u| u.path.as_str()).collect::<Vec<_>>(),
        vec![DOWNLINK_ADMIN]
    );
    assert_eq!(rig.ctl.admin_state("leaf1", "ethernet-1/1").expect("leaf1").as_deref(), Some("disable"));
    rig.stop().await;
}
