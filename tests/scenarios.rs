//! Scenario tests of the core (issue 3) against the simulated fabric: the tutorial's
//! scenarios, delays, flapping, stale and stalled streams, refused Sets, drift, restarts,
//! bad data and bad targets. Each test drives fabric-sim in-process and the controller
//! built from YAML, and waits on events with deadlines; "nothing happened" is asserted
//! only after a later verdict proves the loop evaluated the state in question.

#[path = "support/scenario.rs"]
mod scenario;

use std::time::{Duration, Instant};

use fabric_sim::{Fault, SessionState, SetOutcome, Timings};
use opergroupd::controller::LoopEvent;
use opergroupd::model::AdminState;
use opergroupd::policy::Health;
use scenario::*;

const LEAF: &str = "leaf1";

fn g() -> String {
    group_of(LEAF)
}

/// A fabric of `leaves`, and a controller with one group on leaf1, synced and healthy.
async fn setup(leaves: usize, timings: Timings, group: GroupSpec, o: CtlOptions) -> (Lab, Ctl) {
    let lab = Lab::start(leaves, timings).await;
    let ctl = Ctl::start(&config_yaml(&lab.targets(), &[group]), o);
    let mut ctl = ctl;
    ctl.synced(&[LEAF]).await;
    ctl.verdict(&g(), Health::Healthy, "2/2 uplinks up").await;
    (lab, ctl)
}

/// Tutorial scenarios 1 and 2: one uplink down changes nothing; both down disables the downlink.
async fn outage(lab: &Lab, ctl: &mut Ctl) {
    let mark = ctl.mark();
    lab.link(LEAF, UP1, false);
    let v = ctl.verdict(&g(), Health::Healthy, "1/2 uplinks up").await;
    assert_ne!(v.desired, Some(AdminState::Disable), "{v:?}");
    ctl.assert_no_set_since(mark, "one uplink is still up");
    assert!(lab.control.sets().is_empty(), "the leaf received a Set: {:?}", lab.control.sets());

    lab.link(LEAF, UP2, false);
    let v = ctl.verdict(&g(), Health::Unhealthy, "0/2 uplinks up, required 1").await;
    assert_eq!(v.desired, Some(AdminState::Disable));
    ctl.enforced(&g(), AdminState::Disable).await;
    lab.wait_admin(LEAF, "disable").await;
    let sets = lab.sets(1).await;
    assert_eq!(triples(&sets[0]), vec![(LEAF.into(), downlink_path(), "disable".into())]);
    assert_eq!(sets[0].outcome, SetOutcome::Accepted);
}

#[tokio::test]
async fn tutorial_with_readiness_reenables_only_after_ibgp_and_evpn_routes() {
    let t = bgp_timings();
    let (lab, mut ctl) = setup(1, t, GroupSpec::new(LEAF).readiness(), CtlOptions::default()).await;
    outage(&lab, &mut ctl).await;

    // Let the overlay drop (hold time), as it does on the real fabric after a full outage.
    lab.wait_ibgp(LEAF, SessionState::Active).await;
    let back = lab.link(LEAF, UP1, true);
    lab.link(LEAF, UP2, true);
    ctl.verdict(&g(), Health::NotReady, "0/2 iBGP established").await;
    ctl.enforced(&g(), AdminState::Enable).await;
    lab.wait_admin(LEAF, "enable").await;

    let sets = lab.sets(2).await;
    assert_eq!(sets.len(), 2, "{sets:#?}");
    assert_eq!(triples(&sets[1]), vec![(LEAF.into(), downlink_path(), "enable".into())]);
    // iBGP establishes ibgp_up after the uplink returns and EVPN routes arrive evpn_routes
    // later: the enable cannot have been received before both.
    let ready_at = back.mono_ns + (t.ibgp_up + t.evpn_routes).as_nanos() as u64;
    assert!(
        sets[1].received.mono_ns >= ready_at,
        "enable received {} ms after the uplink returned, before iBGP+EVPN ({} ms)",
        (sets[1].received.mono_ns - back.mono_ns) / 1_000_000,
        (t.ibgp_up + t.evpn_routes).as_millis()
    );
    ctl.stop().await;
    lab.shutdown().await;
}

#[tokio::test]
async fn tutorial_without_readiness_reenables_as_soon_as_an_uplink_is_up() {
    let (lab, mut ctl) = setup(1, bgp_timings(), GroupSpec::new(LEAF), CtlOptions::default()).await;
    outage(&lab, &mut ctl).await;

    // The overlay stays down; without readiness configured that must not matter.
    lab.pin_ibgp(LEAF, Some(SessionState::Active));
    lab.link(LEAF, UP1, true);
    let v = ctl.verdict(&g(), Health::Healthy, "1/2 uplinks up").await;
    assert_eq!(v.desired, Some(AdminState::Enable));
    ctl.enforced(&g(), AdminState::Enable).await;
    lab.wait_admin(LEAF, "enable").await;
    for peer in SPINES {
        let state = lab.control.value(LEAF, &opergroupd::srl_paths::session_state("default", peer)).unwrap();
        assert_eq!(state, Some("active".into()), "iBGP to {peer} was down all along");
    }
    assert_eq!(lab.sets(2).await.len(), 2);
    ctl.stop().await;
    lab.shutdown().await;
}

#[tokio::test]
async fn readiness_holds_until_ibgp_is_established_and_the_evpn_floor_is_met() {
    let (lab, mut ctl) = setup(1, Timings::fast(), GroupSpec::new(LEAF).readiness(), CtlOptions::default()).await;
    outage(&lab, &mut ctl).await;

    let mark = ctl.mark();
    lab.pin_ibgp(LEAF, Some(SessionState::Active));
    for peer in SPINES {
        lab.control.evpn_routes(LEAF, peer, 0).unwrap();
    }
    lab.uplinks(LEAF, true);
    ctl.verdict(&g(), Health::NotReady, "2/2 uplinks up; 0/2 iBGP established (need 1)").await;
    ctl.assert_no_set_since(mark, "uplinks are back but iBGP is down");

    lab.pin_ibgp(LEAF, Some(SessionState::Established));
    ctl.verdict(&g(), Health::NotReady, "2/2 iBGP established (need 1); 0 EVPN routes (need 1)").await;
    ctl.assert_no_set_since(mark, "iBGP is up but no EVPN routes are in");

    lab.control.evpn_routes(LEAF, SPINES[0], 3).unwrap();
    let v = ctl.verdict(&g(), Health::Healthy, "3 EVPN routes (need 1)").await;
    assert_eq!(v.desired, Some(AdminState::Enable));
    ctl.enforced(&g(), AdminState::Enable).await;
    lab.wait_admin(LEAF, "enable").await;
    ctl.stop().await;
    lab.shutdown().await;
}

#[tokio::test]
async fn down_delay_defers_the_disable_and_a_shorter_outage_sends_nothing() {
    let delay = Duration::from_millis(800);
    let (lab, mut ctl) = setup(1, Timings::fast(), GroupSpec::new(LEAF).down_delay(delay), CtlOptions::default()).await;

    let mark = ctl.mark();
    let down = lab.uplinks(LEAF, false);
    let v = ctl.verdict(&g(), Health::Unhealthy, "disabling after down-delay 800ms").await;
    assert_eq!(v.desired, None, "held during down-delay");
    lab.link(LEAF, UP1, true);
    ctl.verdict(&g(), Health::Healthy, "1/2 uplinks up").await;
    // Past the moment the disable would have fired, then fresh evidence from the loop.
    tokio::time::sleep_until((lab.instant(down) + delay + Duration::from_millis(300)).into()).await;
    lab.link(LEAF, UP2, true);
    ctl.verdict(&g(), Health::Healthy, "2/2 uplinks up").await;
    ctl.assert_no_set_since(mark, "the outage was shorter than down-delay");
    assert!(lab.control.sets().is_empty(), "{:?}", lab.control.sets());

    // A real outage: disabled once down-delay has passed, not before.
    let down = lab.uplinks(LEAF, false);
    ctl.enforced(&g(), AdminState::Disable).await;
    let sets = lab.sets(1).await;
    let waited = Duration::from_nanos(sets[0].received.mono_ns - down.mono_ns);
    assert!(waited >= delay, "disable received {waited:?} after the outage began, down-delay is {delay:?}");
    ctl.stop().await;
    lab.shutdown().await;
}

#[tokio::test]
async fn up_delay_defers_the_reenable() {
    let delay = Duration::from_millis(800);
    let (lab, mut ctl) = setup(1, Timings::fast(), GroupSpec::new(LEAF).up_delay(delay), CtlOptions::default()).await;
    outage(&lab, &mut ctl).await;

    let back = lab.link(LEAF, UP1, true);
    let v = ctl.verdict(&g(), Health::Healthy, "enabling after up-delay 800ms").await;
    assert_eq!(v.desired, None, "held during up-delay");
    ctl.enforced(&g(), AdminState::Enable).await;
    let sets = lab.sets(2).await;
    let waited = Duration::from_nanos(sets[1].received.mono_ns - back.mono_ns);
    assert!(waited >= delay, "enable received {waited:?} after the uplink returned, up-delay is {delay:?}");
    ctl.stop().await;
    lab.shutdown().await;
}

#[tokio::test]
async fn an_uplink_flapping_faster_than_up_delay_never_reenables() {
    let delay = Duration::from_secs(1);
    let (lab, mut ctl) = setup(1, Timings::fast(), GroupSpec::new(LEAF).up_delay(delay), CtlOptions::default()).await;
    outage(&lab, &mut ctl).await;

    let mark = ctl.mark();
    let start = Instant::now();
    let mut flaps = 0;
    // Up ~100 ms, down ~100 ms, for well over up-delay in total.
    while start.elapsed() < delay * 8 / 5 {
        lab.link(LEAF, UP1, true);
        ctl.verdict(&g(), Health::Healthy, "enabling after up-delay").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        lab.link(LEAF, UP1, false);
        ctl.verdict(&g(), Health::Unhealthy, "0/2 uplinks up").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        flaps += 1;
    }
    ctl.assert_no_set_since(mark, &format!("{flaps} flaps, each shorter than up-delay"));
    assert_eq!(lab.control.sets().len(), 1, "only the disable: {:?}", lab.control.sets());
    assert_eq!(lab.admin(LEAF).as_deref(), Some("disable"));

    // Once it stays up for up-delay, the downlink comes back.
    let back = lab.link(LEAF, UP1, true);
    ctl.enforced(&g(), AdminState::Enable).await;
    let sets = lab.sets(2).await;
    assert!(Duration::from_nanos(sets[1].received.mono_ns - back.mono_ns) >= delay);
    ctl.stop().await;
    lab.shutdown().await;
}

fn is_stale(e: &LoopEvent, leaf: &str, has: &str) -> bool {
    matches!(e, LoopEvent::TargetStale { target, error, .. } if &**target == leaf && error.contains(has))
}

fn position(ctl: &Ctl, from: usize, want: impl Fn(&LoopEvent) -> bool) -> Option<usize> {
    ctl.seen[from..].iter().position(want).map(|i| i + from)
}

#[tokio::test]
async fn a_leaf_stalled_before_sync_is_never_acted_on_until_it_syncs() {
    let lab = Lab::start(2, Timings::fast()).await;
    lab.fault(LEAF, Fault::StallSync { stall: true });
    lab.uplinks(LEAF, false);
    let o = CtlOptions { sync_timeout: Duration::from_millis(300), ..CtlOptions::default() };
    let mut ctl = Ctl::start(&config_yaml(&lab.targets(), &[GroupSpec::new(LEAF), GroupSpec::new("leaf2")]), o);

    // Its dump (both uplinks down) arrives, sync_response never does: twice out of time.
    ctl.expect("leaf1 out of time for sync", |e| is_stale(e, LEAF, "no sync_response")).await;
    let v = ctl.verdict(&g(), Health::Unknown, "not synced").await;
    assert_eq!(v.desired, None);
    ctl.expect("leaf1 out of time again", |e| is_stale(e, LEAF, "no sync_response")).await;
    ctl.assert_no_set_since(0, "leaf1 never synced");
    assert!(lab.control.sets().is_empty(), "{:?}", lab.control.sets());

    lab.fault(LEAF, Fault::StallSync { stall: false });
    ctl.synced(&[LEAF]).await;
    ctl.verdict(&g(), Health::Unhealthy, "0/2 uplinks up").await;
    ctl.enforced(&g(), AdminState::Disable).await;
    lab.wait_admin(LEAF, "disable").await;
    let sets = lab.sets(1).await;
    assert_eq!(sets.len(), 1, "{sets:#?}");
    assert_eq!(sets[0].node, LEAF);
    assert_eq!(lab.admin("leaf2").as_deref(), Some("enable"));
    ctl.stop().await;
    lab.shutdown().await;
}

#[tokio::test]
async fn a_dropped_stream_is_stale_no_timer_fires_from_it_and_it_resyncs() {
    let delay = Duration::from_millis(700);
    let o = CtlOptions { sync_timeout: Duration::from_millis(300), ..CtlOptions::default() };
    let (lab, mut ctl) = setup(1, Timings::fast(), GroupSpec::new(LEAF).down_delay(delay), o).await;

    let mark = ctl.mark();
    let down = lab.uplinks(LEAF, false);
    ctl.verdict(&g(), Health::Unhealthy, "disabling after down-delay").await;
    // The stream dies with the disable pending, and cannot re-sync for a while.
    lab.fault(LEAF, Fault::StallSync { stall: true });
    lab.fault(LEAF, Fault::DropStreams);
    ctl.expect("leaf1 stale after the drop", |e| is_stale(e, LEAF, "streams dropped")).await;
    ctl.verdict(&g(), Health::Unknown, "not synced").await;
    // The outage ends while the controller cannot see it; the pending disable's moment passes.
    lab.uplinks(LEAF, true);
    tokio::time::sleep_until((lab.instant(down) + delay + Duration::from_millis(300)).into()).await;

    lab.fault(LEAF, Fault::StallSync { stall: false });
    ctl.synced(&[LEAF]).await;
    ctl.verdict(&g(), Health::Healthy, "2/2 uplinks up").await;
    ctl.assert_no_set_since(mark, "the disable was due only by stale data");
    assert!(lab.control.sets().is_empty(), "{:?}", lab.control.sets());

    // Re-evaluated on fresh data: a new outage is acted on.
    lab.uplinks(LEAF, false);
    ctl.enforced(&g(), AdminState::Disable).await;
    lab.wait_admin(LEAF, "disable").await;
    ctl.stop().await;
    lab.shutdown().await;
}

#[tokio::test]
async fn a_restarted_leaf_is_resynced_and_its_reverted_downlink_disabled_again() {
    let (lab, mut ctl) = setup(1, Timings::fast(), GroupSpec::new(LEAF), CtlOptions::default()).await;
    outage(&lab, &mut ctl).await;

    let mark = ctl.mark();
    lab.fault(LEAF, Fault::Restart { down_ms: 300 });
    assert_eq!(lab.admin(LEAF).as_deref(), Some("enable"), "the reboot restores the startup config");
    ctl.expect("leaf1 stale after the restart", |e| is_stale(e, LEAF, "restarting")).await;
    ctl.verdict(&g(), Health::Unknown, "not synced").await;
    ctl.synced(&[LEAF]).await;
    ctl.verdict(&g(), Health::Unhealthy, "0/2 uplinks up").await;
    ctl.enforced(&g(), AdminState::Disable).await;
    lab.wait_admin(LEAF, "disable").await;

    let synced = position(&ctl, mark, |e| matches!(e, LoopEvent::TargetSynced { .. })).unwrap();
    let first_set = position(&ctl, mark, |e| matches!(e, LoopEvent::SetStarted { .. })).unwrap();
    assert!(first_set > synced, "a Set before the leaf re-synced");
    let sets = lab.sets(2).await;
    assert_eq!(sets.len(), 2, "{sets:#?}");
    assert_eq!(triples(&sets[1]), vec![(LEAF.into(), downlink_path(), "disable".into())]);
    ctl.stop().await;
    lab.shutdown().await;
}

#[tokio::test]
async fn refused_sets_are_retried_until_the_fault_clears() {
    let (lab, mut ctl) = setup(1, Timings::fast(), GroupSpec::new(LEAF), CtlOptions::default()).await;
    lab.fault(LEAF, Fault::RefuseSets { count: 2 });
    lab.uplinks(LEAF, false);
    for _ in 0..2 {
        ctl.set_started(&g()).await;
        let (result, _) = ctl.set_finished(&g()).await;
        let e = result.expect_err("refused");
        assert!(e.contains(LEAF) && e.contains("will retry"), "{e}");
    }
    ctl.enforced(&g(), AdminState::Disable).await;
    lab.wait_admin(LEAF, "disable").await;
    let sets = lab.sets(3).await;
    let outcomes: Vec<SetOutcome> = sets.iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, [SetOutcome::Refused, SetOutcome::Refused, SetOutcome::Accepted]);
    assert!(sets.iter().all(|r| triples(r) == [(LEAF.into(), downlink_path(), "disable".into())]));
    ctl.stop().await;
    lab.shutdown().await;
}

#[tokio::test]
async fn shutdown_lets_a_set_already_on_the_wire_finish() {
    let (lab, mut ctl) = setup(1, Timings::fast(), GroupSpec::new(LEAF), CtlOptions::default()).await;
    // The leaf answers Sets only after 800 ms: stop the controller while one is on the wire.
    lab.fault(LEAF, Fault::DelaySets { delay_ms: 800 });
    lab.uplinks(LEAF, false);
    ctl.set_started(&g()).await;
    let stopping = std::time::Instant::now();
    ctl.stop().await; // within 5 s, cleanly (asserted inside)
    let took = stopping.elapsed();
    // Not abandoned half-way, not cut short: the one Set reached the leaf whole and was applied
    // before the controller returned, and nothing else was sent.
    let sets = lab.control.sets();
    assert_eq!(sets.len(), 1, "{sets:#?}");
    assert_eq!(sets[0].outcome, SetOutcome::Accepted);
    assert_eq!(lab.admin(LEAF).as_deref(), Some("disable"));
    assert!(took >= Duration::from_millis(500), "returned after {took:?}: it did not wait for the Set's answer");
    lab.shutdown().await;
}

#[tokio::test]
async fn a_retry_that_became_wrong_is_not_sent() {
    let o = CtlOptions {
        set_backoff_min: Duration::from_secs(1),
        set_backoff_max: Duration::from_secs(2),
        ..CtlOptions::default()
    };
    let (lab, mut ctl) = setup(1, Timings::fast(), GroupSpec::new(LEAF), o).await;
    lab.fault(LEAF, Fault::RefuseSets { count: 1 });
    lab.uplinks(LEAF, false);
    ctl.set_started(&g()).await;
    let (result, refused_at) = ctl.set_finished(&g()).await;
    assert!(result.is_err());
    // Back before the retry (1-2 s away): the disable is no longer right.
    lab.link(LEAF, UP1, true);
    ctl.verdict(&g(), Health::Healthy, "1/2 uplinks up").await;
    tokio::time::sleep_until((refused_at + Duration::from_millis(2300)).into()).await;
    lab.link(LEAF, UP2, true);
    ctl.verdict(&g(), Health::Healthy, "2/2 uplinks up").await;

    let sets = lab.control.sets();
    assert_eq!(sets.len(), 1, "only the refused Set: {sets:#?}");
    assert_eq!(sets[0].outcome, SetOutcome::Refused);
    ctl.drain();
    let started = ctl.seen.iter().filter(|e| matches!(e, LoopEvent::SetStarted { .. })).count();
    assert_eq!(started, 1, "the disable was tried again after the uplink returned");
    assert_eq!(lab.admin(LEAF).as_deref(), Some("enable"));
    ctl.stop().await;
    lab.shutdown().await;
}

#[tokio::test]
async fn a_manual_reenable_during_an_outage_is_corrected() {
    let (lab, mut ctl) = setup(1, Timings::fast(), GroupSpec::new(LEAF), CtlOptions::default()).await;
    outage(&lab, &mut ctl).await;

    manual_set(&ctl.config, LEAF, AdminState::Enable).await;
    let (intent, _) = ctl.set_started(&g()).await;
    assert_eq!(intent.changes, vec![(downlink_path(), AdminState::Disable)]);
    lab.wait_admin(LEAF, "disable").await;
    let sets = lab.sets(3).await;
    let values: Vec<String> = sets.iter().map(|r| triples(r)[0].2.clone()).collect();
    assert_eq!(values, ["disable", "enable", "disable"], "controller, operator, controller");
    assert!(accepted(&sets).len() == 3);
    ctl.stop().await;
    lab.shutdown().await;
}

#[tokio::test]
async fn a_controller_restarted_mid_outage_sends_nothing_when_the_devices_match() {
    let yaml_of = |lab: &Lab| config_yaml(&lab.targets(), &[GroupSpec::new(LEAF).readiness()]);
    let (lab, mut ctl) = setup(1, Timings::fast(), GroupSpec::new(LEAF).readiness(), CtlOptions::default()).await;
    outage(&lab, &mut ctl).await;
    ctl.stop().await;
    lab.control.clear_sets();

    // Mid-outage: the downlink is already disabled.
    let mut ctl = Ctl::start(&yaml_of(&lab), CtlOptions::default());
    ctl.synced(&[LEAF]).await;
    let v = ctl.verdict(&g(), Health::Unhealthy, "0/2 uplinks up").await;
    assert_eq!(v.desired, Some(AdminState::Disable));
    ctl.assert_no_set_since(0, "the downlink is already disabled");

    // Uplinks back but the overlay is not: still disabled, and still nothing to send.
    lab.pin_ibgp(LEAF, Some(SessionState::Active));
    lab.uplinks(LEAF, true);
    ctl.verdict(&g(), Health::NotReady, "2/2 uplinks up; 0/2 iBGP").await;
    ctl.stop().await;
    let mut ctl = Ctl::start(&yaml_of(&lab), CtlOptions::default());
    ctl.synced(&[LEAF]).await;
    ctl.verdict(&g(), Health::NotReady, "2/2 uplinks up; 0/2 iBGP").await;
    ctl.assert_no_set_since(0, "not ready: hold");
    assert!(lab.control.sets().is_empty(), "{:?}", lab.control.sets());
    assert_eq!(lab.admin(LEAF).as_deref(), Some("disable"));
    ctl.stop().await;
    lab.shutdown().await;
}

#[tokio::test]
async fn malformed_values_and_unknown_paths_are_logged_and_skipped() {
    let logs = LogCapture::default();
    let _guard = logs.install("opergroupd=debug");
    let (lab, mut ctl) = setup(1, Timings::fast(), GroupSpec::new(LEAF), CtlOptions::default()).await;

    lab.fault(LEAF, Fault::MalformedValue { path: Some(opergroupd::srl_paths::oper_state(UP1)) });
    let line = logs
        .wait_line("the malformed value skipped", |l| l.contains("skipping update") && l.contains("ethernet-1/49"))
        .await;
    assert!(line.contains("WARN") && line.contains(LEAF), "{line}");
    // The same notification again (a later timestamp) is not taken for a heartbeat re-send:
    // what was skipped is decoded, and warned about, every time.
    lab.fault(LEAF, Fault::MalformedValue { path: Some(opergroupd::srl_paths::oper_state(UP1)) });
    logs.wait_lines("the malformed value skipped again", 2, |l| {
        l.contains("skipping update") && l.contains("ethernet-1/49")
    })
    .await;
    lab.fault(LEAF, Fault::UnknownPath);
    let line = logs
        .wait_line("the unknown path skipped", |l| l.contains("skipping update") && l.contains("fabric-sim-unknown"))
        .await;
    assert!(line.contains(LEAF), "{line}");

    // Still working, and ethernet-1/49 still counts as up (the bad value did not replace it).
    lab.link(LEAF, UP2, false);
    ctl.verdict(&g(), Health::Healthy, "1/2 uplinks up").await;
    ctl.assert_no_set_since(0, "ethernet-1/49 is up");
    lab.link(LEAF, UP1, false);
    ctl.enforced(&g(), AdminState::Disable).await;
    lab.wait_admin(LEAF, "disable").await;
    assert!(ctl.stale_errors(LEAF).is_empty(), "bad data does not kill the stream");
    ctl.stop().await;
    lab.shutdown().await;
}

#[tokio::test]
async fn wrong_credentials_and_an_unreachable_target_get_clear_errors_and_retries() {
    let lab = Lab::start(2, Timings::fast()).await;
    // A port nobody listens on: bind, note it, close it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut wrong = TargetSpec::new("leaf2", lab.addr("leaf2"));
    wrong.password = Some("not-the-password".into());
    let targets = [TargetSpec::new(LEAF, lab.addr(LEAF)), wrong, TargetSpec::new("leaf3", closed)];
    let groups = [GroupSpec::new(LEAF), GroupSpec::new("leaf2"), GroupSpec::new("leaf3")];
    let mut ctl = Ctl::start(&config_yaml(&targets, &groups), CtlOptions::default());

    ctl.synced(&[LEAF]).await;
    for _ in 0..2 {
        ctl.expect("leaf2 refused", |e| is_stale(e, "leaf2", "")).await;
        ctl.expect("leaf3 unreachable", |e| is_stale(e, "leaf3", "")).await;
    }
    let leaf2 = ctl.stale_errors("leaf2");
    assert!(leaf2.iter().all(|e| e.starts_with("leaf2 (") && e.contains("authentication")), "{leaf2:#?}");
    let leaf3 = ctl.stale_errors("leaf3");
    assert!(leaf3.iter().all(|e| e.starts_with(&format!("leaf3 ({closed})"))), "{leaf3:#?}");
    assert!(ctl.is_running());

    // The good leaf's group works all along.
    lab.uplinks(LEAF, false);
    ctl.enforced(&g(), AdminState::Disable).await;
    lab.wait_admin(LEAF, "disable").await;
    let sets = lab.control.sets();
    assert!(sets.iter().all(|r| r.node == LEAF), "{sets:#?}");
    assert!(ctl.is_running());
    ctl.stop().await;
    lab.shutdown().await;
}

#[tokio::test]
async fn module_prefixed_names_are_handled() {
    let lab = Lab::start(1, Timings::fast()).await;
    lab.fault(LEAF, Fault::ModuleNames { enabled: true });
    let mut ctl = Ctl::start(&config_yaml(&lab.targets(), &[GroupSpec::new(LEAF).readiness()]), CtlOptions::default());
    ctl.synced(&[LEAF]).await;
    // Every input was recognised under its module-prefixed name.
    ctl.verdict(&g(), Health::Healthy, "2/2 uplinks up; 2/2 iBGP established (need 1); 20 EVPN routes").await;
    lab.uplinks(LEAF, false);
    ctl.enforced(&g(), AdminState::Disable).await;
    lab.wait_admin(LEAF, "disable").await;
    lab.uplinks(LEAF, true);
    ctl.enforced(&g(), AdminState::Enable).await;
    lab.wait_admin(LEAF, "enable").await;
    ctl.stop().await;
    lab.shutdown().await;
}

/// One step of the dry-run/run comparison, waited on the same way in both modes.
enum Step {
    Link(&'static str, &'static str, bool),
    /// The loop decided a Set for this leaf's group, and the actuator answered.
    Set(&'static str),
    /// The verdict for this leaf's group says this (and nothing was set for it).
    Verdict(&'static str, Health, &'static str),
}

const SCRIPT: &[Step] = &[
    Step::Link("leaf1", UP1, false),
    Step::Verdict("leaf1", Health::Healthy, "1/2 uplinks up"),
    Step::Link("leaf1", UP2, false),
    Step::Set("leaf1"),
    Step::Link("leaf2", UP2, false),
    Step::Verdict("leaf2", Health::Healthy, "1/2 uplinks up"),
    Step::Link("leaf2", UP1, false),
    Step::Set("leaf2"),
    Step::Link("leaf1", UP2, true),
    Step::Set("leaf1"),
    Step::Link("leaf2", UP1, true),
    Step::Set("leaf2"),
    Step::Link("leaf2", UP2, true),
    Step::Verdict("leaf2", Health::Healthy, "2/2 uplinks up"),
    Step::Link("leaf2", UP1, false),
    Step::Verdict("leaf2", Health::Healthy, "1/2 uplinks up"),
    Step::Link("leaf2", UP2, false),
    Step::Set("leaf2"),
];

/// (target, group, path, value) per path set, in order.
type Decision = (String, String, String, String);

/// Plays SCRIPT on a fresh fabric in `mode`; returns what the controller decided (from its
/// SetStarted events) and what actually happened (dry-run lines, or the leaves' Set records).
async fn play(mode: Mode) -> (Vec<Decision>, Vec<Decision>) {
    let lab = Lab::start(2, Timings::fast()).await;
    let groups = [GroupSpec::new("leaf1").readiness(), GroupSpec::new("leaf2")];
    let mut ctl = Ctl::start(&config_yaml(&lab.targets(), &groups), CtlOptions { mode, ..CtlOptions::default() });
    // A healthy verdict comes only from synced data.
    ctl.verdicts(&["leaf1-es1", "leaf2-es1"], Health::Healthy, "2/2 uplinks up").await;
    let mut decided = Vec::new();
    for step in SCRIPT {
        match step {
            Step::Link(leaf, iface, up) => {
                lab.link(leaf, iface, *up);
            }
            Step::Set(leaf) => {
                let (intent, _) = ctl.set_started(&group_of(leaf)).await;
                let (result, _) = ctl.set_finished(&group_of(leaf)).await;
                result.unwrap_or_else(|e| panic!("{mode:?}: Set on {leaf} failed: {e}"));
                for (path, value) in &intent.changes {
                    decided.push((
                        intent.target.to_string(),
                        intent.group.clone(),
                        path.clone(),
                        value.as_str().to_string(),
                    ));
                }
            }
            Step::Verdict(leaf, health, reason) => {
                let mark = ctl.mark();
                ctl.verdict(&group_of(leaf), *health, reason).await;
                ctl.assert_no_set_since(mark, &format!("{mode:?}: {leaf} {reason}"));
            }
        }
    }
    let sets = lab.control.sets();
    let happened = match mode {
        Mode::DryRun => {
            assert!(sets.is_empty(), "dry-run sent Sets: {sets:#?}");
            assert_eq!(lab.admin("leaf1").as_deref(), Some("enable"));
            let rx = ctl.dry.as_mut().expect("dry-run channel");
            let mut lines = Vec::new();
            while let Ok(l) = rx.try_recv() {
                lines.push((l.target, l.group, l.path, l.value));
            }
            lines
        }
        Mode::Gnmi => {
            assert!(sets.iter().all(|r| r.outcome == SetOutcome::Accepted), "{sets:#?}");
            // A Set record has no group; each leaf here has exactly one.
            sets.iter()
                .flat_map(triples)
                .map(|(node, path, value)| (node.clone(), group_of(&node), path, value))
                .collect()
        }
    };
    ctl.stop().await;
    lab.shutdown().await;
    (decided, happened)
}

#[tokio::test]
async fn dry_run_prints_exactly_the_sets_that_run_sends() {
    let (dry_decided, dry_lines) = play(Mode::DryRun).await;
    let (run_decided, run_sets) = play(Mode::Gnmi).await;
    assert_eq!(dry_lines, dry_decided, "dry-run printed what it decided, in order");
    assert_eq!(run_sets, run_decided, "run sent what it decided, in order");
    assert_eq!(dry_lines, run_sets, "dry-run and run: same targets, paths, values, order");
    let values: Vec<&str> = run_sets.iter().map(|d| d.3.as_str()).collect();
    assert_eq!(values, ["disable", "disable", "enable", "enable", "disable"]);
}

#[tokio::test]
async fn a_deleted_neighbor_counts_as_not_established() {
    let (lab, mut ctl) = setup(1, Timings::fast(), GroupSpec::new(LEAF).readiness(), CtlOptions::default()).await;
    outage(&lab, &mut ctl).await;

    // Both route reflectors removed from the leaf's config: subscribers get deletes.
    let mark = ctl.mark();
    for peer in SPINES {
        lab.control.remove_neighbor(LEAF, peer).unwrap();
    }
    lab.uplinks(LEAF, true);
    ctl.verdict(&g(), Health::NotReady, "2/2 uplinks up; 0/2 iBGP established (need 1); 0 EVPN routes").await;
    ctl.assert_no_set_since(mark, "the listed neighbors are gone");

    // One comes back and establishes through the model: ready again.
    lab.control.add_neighbor(LEAF, SPINES[1]).unwrap();
    ctl.verdict(&g(), Health::Healthy, "1/2 iBGP established (need 1)").await;
    ctl.enforced(&g(), AdminState::Enable).await;
    lab.wait_admin(LEAF, "enable").await;
    ctl.stop().await;
    lab.shutdown().await;
}
