//! Scenarios of issue 10 against the simulated fabric: a frozen leaf goes stale within its
//! liveness and is never acted on (item 3); a configured interface the leaf does not have
//! makes the group misconfigured, never a Set (item 4); a leaf rebooting from startup config
//! with its downlinks enabled, under `when-not-ready: hold` and `disable` (item 7).

#[path = "support/scenario.rs"]
mod scenario;

use std::time::{Duration, Instant};

use fabric_sim::{Fault, SessionState, Timings};
use opergroupd::controller::LoopEvent;
use opergroupd::model::AdminState;
use opergroupd::policy::Health;
use scenario::*;

const LEAF: &str = "leaf1";

fn g() -> String {
    group_of(LEAF)
}

/// `config_yaml` with extra lines under `defaults:`.
fn with_defaults(yaml: &str, lines: &str) -> String {
    yaml.replacen("defaults:\n", &format!("defaults:\n{lines}"), 1)
}

#[tokio::test]
async fn a_frozen_leaf_goes_stale_within_liveness_and_its_running_down_delay_never_fires() {
    let lab = Lab::start(1, Timings::fast()).await;
    let liveness = Duration::from_secs(2);
    let group = GroupSpec::new(LEAF).down_delay(Duration::from_secs(3));
    let yaml = with_defaults(&config_yaml(&lab.targets(), &[group]), "  liveness: 2s\n");
    let mut ctl = Ctl::start(&yaml, CtlOptions::default());
    ctl.synced(&[LEAF]).await;
    ctl.verdict(&g(), Health::Healthy, "2/2 uplinks up").await;

    // Quiet but alive: heartbeats keep the target synced past its liveness.
    let quiet = Instant::now();
    lab.link(LEAF, UP1, false);
    ctl.verdict(&g(), Health::Healthy, "1/2 uplinks up").await;
    while quiet.elapsed() < liveness * 2 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mark = ctl.mark();
    assert!(
        !ctl.seen[..mark].iter().any(|e| matches!(e, LoopEvent::TargetStale { .. })),
        "a live, quiet leaf went stale"
    );

    // The down-delay starts, then the leaf's gNMI process wedges and the uplinks come back unseen.
    lab.link(LEAF, UP2, false);
    ctl.verdict(&g(), Health::Unhealthy, "disabling after down-delay 3s").await;
    let frozen = Instant::now();
    lab.fault(LEAF, Fault::Freeze { frozen: true });
    lab.uplinks(LEAF, true);
    let stale = ctl.expect("leaf1 stale by liveness", |e| matches!(e, LoopEvent::TargetStale { .. })).await;
    let LoopEvent::TargetStale { error, .. } = stale else { unreachable!() };
    assert!(error.contains("liveness"), "{error}");
    let v = ctl.verdict(&g(), Health::Unknown, "not synced").await;
    assert!(
        v.at.duration_since(frozen) <= liveness + Duration::from_secs(1),
        "unknown {:?} after the freeze; liveness is {liveness:?}",
        v.at.duration_since(frozen)
    );

    // Well past the down-delay's deadline, then the process recovers: healthy, never a Set.
    while frozen.elapsed() < Duration::from_secs(4) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    lab.fault(LEAF, Fault::Freeze { frozen: false });
    ctl.synced(&[LEAF]).await;
    ctl.verdict(&g(), Health::Healthy, "2/2 uplinks up").await;
    ctl.assert_no_set_since(0, "a frozen down must never be acted on");
    assert!(lab.control.sets().is_empty(), "the leaf received a Set: {:?}", lab.control.sets());
    assert_eq!(lab.admin(LEAF).as_deref(), Some("enable"));
    ctl.stop().await;
    lab.shutdown().await;
}

#[tokio::test]
async fn a_typo_in_an_uplink_is_misconfigured_named_and_never_disables() {
    let lab = Lab::start(1, Timings::fast()).await;
    let target = &lab.targets()[0];
    // es1 has a typo (letter O); `watch` shares ethernet-1/49 and only observes, so its
    // verdict proves the loop evaluated leaf1 after each change.
    let yaml = format!(
        "defaults: {{ username: admin, password: \"{PASSWORD}\", tls: {{ insecure: true }} }}\n\
         targets:\n  leaf1: {{ address: \"{}\" }}\n\
         groups:\n\
         \x20 leaf1-es1: {{ target: leaf1, uplinks: [ethernet-1/49, ethernet-1/5O], downlinks: [ethernet-1/1] }}\n\
         \x20 leaf1-watch: {{ target: leaf1, uplinks: [ethernet-1/49], downlinks: [ethernet-1/50], admin-state: disable }}\n",
        target.address
    );
    let logs = LogCapture::default();
    let _guard = logs.install("info");
    let mut ctl = Ctl::start(&yaml, CtlOptions::default());
    ctl.synced(&[LEAF]).await;
    let v = ctl.verdict(&g(), Health::Misconfigured, "uplink ethernet-1/5O not found on target leaf1").await;
    assert_eq!(v.desired, None);
    logs.wait_line("the misconfiguration WARN", |l| {
        l.contains("WARN") && l.contains("misconfigured") && l.contains("ethernet-1/5O") && l.contains("leaf1")
    })
    .await;

    // Only ethernet-1/49 really carries traffic; it goes down. The typo must not count as a
    // second uplink down: no Set, ever.
    let mark = ctl.mark();
    lab.link(LEAF, UP1, false);
    ctl.verdict("leaf1-watch", Health::Unhealthy, "0/1 uplinks up").await;
    ctl.assert_no_set_since(mark, "a misconfigured group never Sets");
    assert!(lab.control.sets().is_empty(), "the leaf received a Set: {:?}", lab.control.sets());
    ctl.stop().await;
    lab.shutdown().await;
}

/// Runs `uplinks` (the YAML list) on one leaf with `liveness: 1s` until the leaf has been
/// synced for three liveness periods, and returns the control loop's events. Passes only if
/// the leaf never went stale after its first sync (its heartbeats came) and `warn` was
/// logged; the group is misconfigured (a typo) and never Sets.
async fn heartbeats_with_uplinks(uplinks: &str, warn: &str) -> Vec<LoopEvent> {
    let lab = Lab::start(1, Timings::fast()).await;
    let liveness = Duration::from_secs(1);
    let yaml = with_defaults(&config_yaml(&lab.targets(), &[GroupSpec::new(LEAF)]), "  liveness: 1s\n")
        .replace("\"ethernet-1/{49..50}\"", uplinks);
    assert!(yaml.contains(&format!("uplinks: [{uplinks}]")), "{yaml}");
    let logs = LogCapture::default();
    let _guard = logs.install("info");
    let mut ctl = Ctl::start(&yaml, CtlOptions::default());
    ctl.synced(&[LEAF]).await;
    logs.wait_line("the heartbeat WARN", |l| l.contains("WARN") && l.contains(warn)).await;
    let synced = ctl.mark();
    let quiet = Instant::now();
    while quiet.elapsed() < liveness * 3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ctl.drain();
    let stale_after_sync = ctl.seen[synced..].iter().find(|e| matches!(e, LoopEvent::TargetStale { .. }));
    assert!(stale_after_sync.is_none(), "the quiet leaf went stale after its sync: {stale_after_sync:?}");
    ctl.verdict(&g(), Health::Misconfigured, "not found on target leaf1").await;
    assert!(lab.control.sets().is_empty(), "the leaf received a Set: {:?}", lab.control.sets());
    let seen = ctl.seen.clone();
    ctl.stop().await;
    lab.shutdown().await;
    seen
}

/// The stale events before the first sync name the missing heartbeat path, never a silence.
fn assert_never_silent(seen: &[LoopEvent]) {
    for e in seen {
        if let LoopEvent::TargetStale { error, .. } = e {
            assert!(error.contains("not in the initial dump"), "{error}");
        }
    }
}

#[tokio::test]
async fn a_first_uplink_missing_from_the_dump_moves_the_heartbeat_to_the_next_before_sync() {
    // Heartbeats ride on the first uplink's oper-state; here it is a typo. The dump says so:
    // the session ends before it reports the leaf synced and the next asks on ethernet-1/50.
    let seen = heartbeats_with_uplinks("ethernet-1/4O, ethernet-1/50", "asking on another uplink").await;
    assert_never_silent(&seen);
}

#[tokio::test]
async fn a_leaf_without_any_configured_uplink_falls_back_to_heartbeats_on_every_path() {
    // With every uplink a typo there is nothing to re-send: known from the dump, the next
    // session asks every subscription for heartbeats, and the leaf stays synced.
    let seen = heartbeats_with_uplinks("ethernet-1/4O, ethernet-1/5O", "every subscription for heartbeats").await;
    assert_never_silent(&seen);
}

/// One readiness group on leaf1 with `when-not-ready` set, synced and healthy.
async fn reboot_setup(when_not_ready: &str) -> (Lab, Ctl) {
    let lab = Lab::start(1, bgp_timings()).await;
    let group = GroupSpec::new(LEAF).readiness().up_delay(Duration::from_millis(300));
    let yaml = config_yaml(&lab.targets(), &[group]).replace(
        "      evpn-min-received-routes: 1\n",
        &format!(
            "      evpn-min-received-routes: 1\n      when-not-ready: {when_not_ready}\n      not-ready-delay: 200ms\n"
        ),
    );
    assert!(yaml.contains("when-not-ready"), "{yaml}");
    let mut ctl = Ctl::start(&yaml, CtlOptions::default());
    ctl.synced(&[LEAF]).await;
    ctl.verdict(&g(), Health::Healthy, "2/2 uplinks up").await;
    (lab, ctl)
}

const REBOOT: Fault = Fault::Reboot { down_ms: 300, ibgp_down_ms: 1500 };

#[tokio::test]
async fn reboot_with_when_not_ready_hold_leaves_the_booted_downlinks_enabled_until_ready() {
    let (lab, mut ctl) = reboot_setup("hold").await;
    lab.fault(LEAF, REBOOT);
    ctl.verdict(&g(), Health::Unknown, "not synced").await;
    ctl.synced(&[LEAF]).await;
    ctl.verdict(&g(), Health::NotReady, "0/2 iBGP established").await;
    // The documented blackhole window of `hold`: enabled from startup config, iBGP down.
    assert_eq!(lab.admin(LEAF).as_deref(), Some("enable"));
    lab.wait_ibgp(LEAF, SessionState::Established).await;
    ctl.verdict(&g(), Health::Healthy, "2/2 iBGP established").await;
    ctl.assert_no_set_since(0, "hold never disables, and the booted leaf is already enabled");
    assert!(lab.control.sets().is_empty(), "the leaf received a Set: {:?}", lab.control.sets());
    ctl.stop().await;
    lab.shutdown().await;
}

#[tokio::test]
async fn reboot_with_when_not_ready_disable_disables_until_ibgp_and_routes_are_back() {
    let (lab, mut ctl) = reboot_setup("disable").await;
    lab.fault(LEAF, REBOOT);
    ctl.verdict(&g(), Health::Unknown, "not synced").await;
    ctl.synced(&[LEAF]).await;
    ctl.verdict(&g(), Health::NotReady, "disabling after not-ready-delay 200ms").await;
    ctl.enforced(&g(), AdminState::Disable).await;
    lab.wait_admin(LEAF, "disable").await;
    let disabled = lab.control.now();

    lab.wait_ibgp(LEAF, SessionState::Established).await;
    ctl.verdict(&g(), Health::Healthy, "enabling after up-delay").await;
    ctl.enforced(&g(), AdminState::Enable).await;
    lab.wait_admin(LEAF, "enable").await;

    let sets = lab.sets(2).await;
    let values: Vec<String> = sets.iter().flat_map(triples).map(|(_, _, v)| v).collect();
    assert_eq!(values, ["disable", "enable"], "{sets:#?}");
    // The disable came while iBGP was still held down (1.5 s after the port reopened).
    assert!(sets[0].received.mono_ns <= disabled.mono_ns);
    let established = lab.control.value(LEAF, &opergroupd::srl_paths::session_state("default", SPINES[0])).unwrap();
    assert_eq!(established, Some(serde_json::json!("established")));
    ctl.stop().await;
    lab.shutdown().await;
}

#[tokio::test]
async fn a_value_that_returns_to_its_heartbeat_value_is_news() {
    // Heartbeats re-send the first uplink's `up` every liveness/3; re-sent values that did
    // not change are dropped at the source. The uplink then goes down and comes back: the
    // second `up` is the same notification as the heartbeats, and must count. (Guards any
    // cheaper repeat check: one that kept the last quiet notification without forgetting it
    // on a change failed here; BENCHMARKS.md round five.)
    let lab = Lab::start(1, Timings::fast()).await;
    let yaml = with_defaults(&config_yaml(&lab.targets(), &[GroupSpec::new(LEAF)]), "  liveness: 1s\n");
    let mut ctl = Ctl::start(&yaml, CtlOptions::default());
    ctl.synced(&[LEAF]).await;
    ctl.verdict(&g(), Health::Healthy, "2/2 uplinks up").await;
    // Two heartbeats (every 333 ms) go by, the second one an exact repeat.
    let quiet = Instant::now();
    while quiet.elapsed() < Duration::from_millis(800) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    lab.link(LEAF, UP1, false);
    ctl.verdict(&g(), Health::Healthy, "1/2 uplinks up").await;
    lab.link(LEAF, UP1, true);
    ctl.verdict(&g(), Health::Healthy, "2/2 uplinks up").await;
    ctl.stop().await;
    lab.shutdown().await;
}
