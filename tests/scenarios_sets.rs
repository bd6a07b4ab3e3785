//! Scenario tests of Set dispatch (issue 10, items 1 and 2) against fabric-sim: a group
//! whose Set the device refuses for good never holds back another group on its leaf, and a
//! replica that lost its Lease never gets a Set applied after its act-until instant.

#[path = "support/fake_lease_api.rs"]
mod fake_lease_api;
#[path = "support/scenario.rs"]
mod scenario;

use std::time::{Duration, Instant};

use fabric_sim::{Applied, Fault, SetOutcome, SetRecord, Timings};
use fake_lease_api::{FakeLeaseApi, Reach};
use opergroupd::config::LeaderElection;
use opergroupd::leader::{self, ClientSource};
use opergroupd::model::AdminState;
use opergroupd::policy::Health;
use opergroupd::status::Enforcement;
use scenario::*;
use tokio_util::sync::CancellationToken;

const LEAF: &str = "leaf1";
/// Sorts first, so name order alone would always try it first.
const BAD: &str = "leaf1-a";
const GOOD: &str = "leaf1-b";
const BAD_DOWNLINK: &str = "ethernet-1/1";
/// A second interface of the leaf stands in for a second client port: both groups follow
/// ethernet-1/49 alone, so one link event makes both want a Set at once.
const GOOD_DOWNLINK: &str = "ethernet-1/50";

fn admin_path(ifname: &str) -> String {
    opergroupd::srl_paths::admin_state(ifname)
}

fn yaml(lab: &Lab, groups: &[(&str, &str)]) -> String {
    let mut y = config_yaml(&lab.targets(), &[]);
    for (name, downlink) in groups {
        y.push_str(&format!(
            "  {name}:\n    target: {LEAF}\n    uplinks: [\"ethernet-1/49\"]\n    required-up: 1\n    downlinks: [\"{downlink}\"]\n"
        ));
    }
    y
}

fn touches(r: &SetRecord, path: &str) -> bool {
    triples(r).iter().any(|(_, p, _)| p == path)
}

/// From the uplink going down to the Set that disables `downlink` being accepted, in
/// fabric-sim's own clock.
async fn time_to_disable(lab: &Lab, down: Applied, downlink: &str) -> Duration {
    let path = admin_path(downlink);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let sets = lab.control.sets();
        if let Some(r) = sets.iter().find(|r| r.outcome == SetOutcome::Accepted && touches(r, &path)) {
            return Duration::from_nanos(r.received.mono_ns.saturating_sub(down.mono_ns));
        }
        assert!(Instant::now() < deadline, "{downlink} never disabled; Sets received: {sets:#?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_group_refused_for_good_does_not_hold_back_another_group_on_its_leaf() {
    // Alone: how long the good group's disable takes on this machine, now.
    let lab = Lab::start(1, Timings::fast()).await;
    let mut ctl = Ctl::start(&yaml(&lab, &[(GOOD, GOOD_DOWNLINK)]), CtlOptions::default());
    ctl.synced(&[LEAF]).await;
    ctl.verdict(GOOD, Health::Healthy, "1/1 uplinks up").await;
    let down = lab.link(LEAF, UP1, false);
    let alone = time_to_disable(&lab, down, GOOD_DOWNLINK).await;
    ctl.stop().await;
    lab.shutdown().await;

    // With a group beside it whose downlink the device refuses with INVALID_ARGUMENT.
    let lab = Lab::start(1, Timings::fast()).await;
    lab.fault(LEAF, Fault::RejectPath { path: admin_path(BAD_DOWNLINK) });
    let o = CtlOptions {
        set_backoff_min: Duration::from_millis(50),
        set_backoff_max: Duration::from_millis(100),
        ..CtlOptions::default()
    };
    let mut ctl = Ctl::start(&yaml(&lab, &[(BAD, BAD_DOWNLINK), (GOOD, GOOD_DOWNLINK)]), o);
    ctl.synced(&[LEAF]).await;
    ctl.verdict(GOOD, Health::Healthy, "1/1 uplinks up").await;
    let down = lab.link(LEAF, UP1, false);
    let beside = time_to_disable(&lab, down, GOOD_DOWNLINK).await;
    lab.wait_admin(LEAF, "enable").await; // ethernet-1/1 (the refused one) untouched
    // One extra round trip on loopback at most; generous for a loaded machine, and far
    // below what starvation (never) or a retry backoff would cost.
    assert!(
        beside <= alone + Duration::from_millis(500),
        "the good group's Set took {beside:?} beside a refused group, {alone:?} alone"
    );

    // The refused group is parked: status says set-refused with the device's message, and
    // it is not sent again while what it asks for is unchanged (the test's retry backoff
    // is 50-100 ms, so a group that was merely backing off would have been retried ~20
    // times in the window below).
    let (together, _) = ctl.set_finished(BAD).await;
    assert!(together.is_err(), "the request carrying both groups is refused: {together:?}");
    let (alone_result, parked_at) = ctl.set_finished(BAD).await;
    let e = alone_result.expect_err("the refused group's own Set is refused");
    assert!(e.contains("permanent"), "{e}");
    let deadline = Instant::now() + DEADLINE;
    let doc = loop {
        let doc = ctl.board.document(Instant::now());
        if doc.groups.iter().any(|g| g.name == BAD && g.enforcement == Enforcement::SetRefused) {
            break doc;
        }
        assert!(Instant::now() < deadline, "{BAD} never shown set-refused: {doc:#?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let bad = doc.groups.iter().find(|g| g.name == BAD).unwrap();
    assert!(bad.reason.contains("rejected"), "reason carries the device's message: {}", bad.reason);
    let good = doc.groups.iter().find(|g| g.name == GOOD).unwrap();
    assert_eq!(good.enforcement, Enforcement::Enforcing, "{good:?}");

    let watch_until = parked_at + Duration::from_secs(2);
    tokio::time::sleep_until(watch_until.into()).await;
    let tries = lab.control.sets().iter().filter(|r| touches(r, &admin_path(BAD_DOWNLINK))).count();
    // Once together with the good group, once alone: then parked.
    assert_eq!(tries, 2, "refused Set retried while parked: {:#?}", lab.control.sets());
    ctl.stop().await;
    lab.shutdown().await;
}

#[tokio::test]
async fn a_replica_that_lost_its_lease_never_has_a_set_applied_after_its_act_until() {
    const LEASE: Duration = Duration::from_secs(2);
    const RENEW: Duration = Duration::from_secs(1);
    const DEVICE_DELAY: Duration = Duration::from_secs(4);
    let fake = FakeLeaseApi::new();
    let cfg = LeaderElection {
        lease: "fencing".into(),
        namespace: "opergroupd".into(),
        identity: Some("a".into()),
        lease_duration: LEASE,
        renew_period: RENEW,
    };
    let lease_cancel = CancellationToken::new();
    let (elector, lease_task) = leader::start(&cfg, ClientSource::Given(fake.client("a").await), lease_cancel.clone())
        .await
        .expect("start elector");
    let deadline = Instant::now() + DEADLINE;
    while !elector.is_leader_now() {
        assert!(Instant::now() < deadline, "never became leader");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let lab = Lab::start(1, Timings::fast()).await;
    let mut ctl = Ctl::start_led(
        &config_yaml(&lab.targets(), &[GroupSpec::new(LEAF)]),
        CtlOptions::default(),
        Some(elector.clone()),
    );
    ctl.synced(&[LEAF]).await;
    ctl.verdict(&group_of(LEAF), Health::Healthy, "2/2 uplinks up").await;

    // The device holds every Set for longer than this replica may still act, and the
    // replica is cut off from the API server: it cannot renew.
    lab.fault(LEAF, Fault::DelaySets { delay_ms: DEVICE_DELAY.as_millis() as u64 });
    fake.set_reach("a", Reach::Blackhole);
    lab.uplinks(LEAF, false);
    let (intent, sent_at) = ctl.set_started(&group_of(LEAF)).await;
    assert_eq!(intent.changes, vec![(downlink_path(), AdminState::Disable)]);
    let act_until = elector.act_until();
    assert!(act_until.is_some(), "the Set went out while leading");

    let (result, answered_at) = ctl.set_finished(&group_of(LEAF)).await;
    let err = result.expect_err("the device would apply it only after the act-until instant");
    assert!(err.contains("fencing"), "{err}");
    assert!(!elector.is_leader_now(), "answered at the deadline, when the replica stopped leading");
    assert!(answered_at < sent_at + DEVICE_DELAY, "given up at the deadline, not after the device's delay");

    // Past the instant the device would have applied the Set: it never did.
    tokio::time::sleep_until((sent_at + DEVICE_DELAY + Duration::from_millis(500)).into()).await;
    assert_eq!(lab.admin(LEAF).as_deref(), Some("enable"), "a Set was applied after act-until");
    let applied: Vec<_> = lab.control.sets().into_iter().filter(|r| r.outcome == SetOutcome::Accepted).collect();
    assert!(applied.is_empty(), "Sets applied after the Lease was lost: {applied:#?}");

    ctl.stop().await;
    lease_cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(3), lease_task).await;
    lab.shutdown().await;
}
