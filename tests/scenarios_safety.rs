//! Scenario tests of fabric-wide safety (issue 11) against fabric-sim: Ethernet Segments
//! (a member is disabled only while another member can carry the client) and the
//! blast-radius cap. Waits are on loop events and fabric values, with deadlines.

#[path = "support/scenario.rs"]
mod scenario;

use fabric_sim::{Fault, SetOutcome, SetRecord, Timings};
use opergroupd::controller::LoopEvent;
use opergroupd::model::AdminState;
use opergroupd::policy::Health;
use opergroupd::status::Enforcement;
use scenario::*;

fn config(lab: &Lab, leaves: usize, extra: &str) -> String {
    let groups: Vec<GroupSpec> = (1..=leaves).map(|k| GroupSpec::new(&format!("leaf{k}"))).collect();
    format!("{}{extra}", config_yaml(&lab.targets(), &groups))
}

const ES1: &str = "segments:\n  es1: [leaf1-es1, leaf2-es1]\n";

async fn start(leaves: usize, extra: &str) -> (Lab, Ctl) {
    let lab = Lab::start(leaves, Timings::fast()).await;
    let mut ctl = Ctl::start(&config(&lab, leaves, extra), CtlOptions::default());
    // Targets sync in any order, each followed by its group's first verdict.
    let groups: Vec<String> = (1..=leaves).map(|k| group_of(&format!("leaf{k}"))).collect();
    ctl.verdicts(&groups.iter().map(String::as_str).collect::<Vec<_>>(), Health::Healthy, "2/2 uplinks up").await;
    (lab, ctl)
}

async fn held(ctl: &mut Ctl, group: &str, reason_has: &str) {
    let ev = ctl
        .expect(
            &format!("{group} held ({reason_has})"),
            |e| matches!(e, LoopEvent::Held { group: g, reason: Some(r), .. } if g == group && r.contains(reason_has)),
        )
        .await;
    let LoopEvent::Held { reason: Some(reason), .. } = ev else { unreachable!() };
    let doc = ctl.board.document(std::time::Instant::now());
    let g = doc.groups.iter().find(|g| g.name == group).expect("group in status");
    assert_eq!(g.enforcement, Enforcement::Held, "{g:?}");
    assert_eq!(g.reason, reason);
}

fn disables(sets: &[SetRecord]) -> Vec<String> {
    sets.iter()
        .filter(|r| r.outcome == SetOutcome::Accepted && triples(r).iter().any(|(_, _, v)| v == "disable"))
        .map(|r| r.node.clone())
        .collect()
}

#[tokio::test]
async fn the_second_member_to_fail_is_held_and_disabled_only_after_the_first_is_back_and_confirmed() {
    let (lab, mut ctl) = start(2, ES1).await;
    lab.uplinks("leaf1", false);
    ctl.enforced("leaf1-es1", AdminState::Disable).await;
    lab.wait_admin("leaf1", "disable").await;

    let mark = ctl.mark();
    lab.uplinks("leaf2", false);
    ctl.verdict("leaf2-es1", Health::Unhealthy, "0/2 uplinks up").await;
    held(&mut ctl, "leaf2-es1", "last member of es1 able to forward: leaf1-es1 is unhealthy").await;
    ctl.assert_no_set_since(mark, "leaf2 is the last member that can forward");
    assert_eq!(lab.admin("leaf2").as_deref(), Some("enable"), "the client keeps one link");

    // leaf1 recovers: first its downlink is re-enabled, and only once the device reports it
    // enabled is leaf2 (still unhealthy) disabled.
    lab.uplinks("leaf1", true);
    ctl.enforced("leaf1-es1", AdminState::Enable).await;
    ctl.enforced("leaf2-es1", AdminState::Disable).await;
    lab.wait_admin("leaf2", "disable").await;
    let sets = lab.sets(3).await;
    let order: Vec<(String, String)> = sets.iter().flat_map(triples).map(|(node, _, value)| (node, value)).collect();
    assert_eq!(
        order,
        vec![("leaf1".into(), "disable".into()), ("leaf1".into(), "enable".into()), ("leaf2".into(), "disable".into())]
    );
    let enable = &sets[1];
    let leaf2 = &sets[2];
    assert!(leaf2.received.mono_ns > enable.applied.expect("applied").mono_ns, "{sets:#?}");
    ctl.stop().await;

    // A restarted controller rebuilds the same hold from the devices and sends nothing.
    lab.uplinks("leaf1", false);
    lab.wait_admin("leaf1", "enable").await;
    lab.control.clear_sets();
    let mut ctl = Ctl::start(&config(&lab, 2, ES1), CtlOptions::default());
    ctl.synced(&["leaf1", "leaf2"]).await;
    // leaf2 disabled by the previous run, leaf1 now failing too: leaf1 is the last member
    // with its downlinks up, so it is held.
    // (The reason proves leaf2 was evaluated too.)
    held(&mut ctl, "leaf1-es1", "leaf2-es1 is unhealthy").await;
    assert!(lab.control.sets().is_empty(), "a restart sent {:?}", lab.control.sets());
    ctl.stop().await;
    lab.shutdown().await;
}

#[tokio::test]
async fn members_failing_at_once_leave_exactly_one_member_with_its_downlinks() {
    let (lab, mut ctl) = start(2, ES1).await;
    lab.uplinks("leaf1", false);
    lab.uplinks("leaf2", false);
    let mark = ctl.mark();
    ctl.verdicts(&["leaf1-es1", "leaf2-es1"], Health::Unhealthy, "0/2 uplinks up").await;
    // Which one goes depends on which leaf's notification the loop sees first; exactly one.
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let doc = ctl.board.document(std::time::Instant::now());
        let held = doc.groups.iter().filter(|g| g.enforcement == Enforcement::Held).count();
        if held == 1 && disables(&lab.control.sets()).len() == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "held {held}: {:#?}", lab.control.sets());
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let sets = ctl.sets_since(mark);
    assert_eq!(sets.len(), 1, "{sets:#?}");
    let intent = &sets[0];
    assert_eq!(intent.changes, vec![(downlink_path(), AdminState::Disable)]);
    let kept = if &*intent.target == "leaf1" { "leaf2" } else { "leaf1" };
    lab.wait_admin(&intent.target, "disable").await;
    assert_eq!(lab.admin(kept).as_deref(), Some("enable"));
    assert_eq!(disables(&lab.control.sets()), vec![intent.target.to_string()]);
    ctl.stop().await;
    lab.shutdown().await;
}

#[tokio::test]
async fn a_member_whose_peer_is_stale_is_not_disabled_on_stale_evidence() {
    let (lab, mut ctl) = start(2, ES1).await;
    // leaf2's stream dies and its resubscription never syncs: its data is no evidence.
    lab.fault("leaf2", Fault::StallSync { stall: true });
    lab.fault("leaf2", Fault::DropStreams);
    ctl.expect("leaf2 stale", |e| matches!(e, LoopEvent::TargetStale { target, .. } if &**target == "leaf2")).await;
    let mark = ctl.mark();
    lab.uplinks("leaf1", false);
    ctl.verdict("leaf1-es1", Health::Unhealthy, "0/2 uplinks up").await;
    held(&mut ctl, "leaf1-es1", "leaf2-es1 has no live data").await;
    ctl.assert_no_set_since(mark, "the peer's health is unknown");
    ctl.stop().await;
    lab.shutdown().await;
}

#[tokio::test]
async fn the_cap_holds_disables_past_max_disabled_and_releases_in_name_order() {
    let (lab, mut ctl) = start(4, "safety:\n  max-disabled: 1\n").await;
    lab.uplinks("leaf1", false);
    ctl.enforced("leaf1-es1", AdminState::Disable).await;
    lab.wait_admin("leaf1", "disable").await;
    let mark = ctl.mark();
    lab.uplinks("leaf3", false);
    held(&mut ctl, "leaf3-es1", "blast-radius cap max-disabled 1").await;
    lab.uplinks("leaf2", false);
    held(&mut ctl, "leaf2-es1", "blast-radius cap").await;
    ctl.assert_no_set_since(mark, "one group is already disabled");

    // leaf1 recovers: its enable goes, then the first held group in name order (leaf2).
    lab.uplinks("leaf1", true);
    ctl.enforced("leaf1-es1", AdminState::Enable).await;
    ctl.enforced("leaf2-es1", AdminState::Disable).await;
    lab.wait_admin("leaf2", "disable").await;
    assert_eq!(lab.admin("leaf3").as_deref(), Some("enable"), "still held: the cap is reached again");
    assert_eq!(disables(&lab.control.sets()), vec!["leaf1".to_string(), "leaf2".to_string()]);
    ctl.stop().await;
    lab.shutdown().await;
}

#[tokio::test]
async fn a_percentage_cap_of_half_the_groups_lets_two_of_four_go() {
    let (lab, mut ctl) = start(4, "safety:\n  max-disabled: 50%\n").await;
    for k in 1..=4 {
        lab.uplinks(&format!("leaf{k}"), false);
    }
    ctl.verdicts(&["leaf1-es1", "leaf2-es1", "leaf3-es1", "leaf4-es1"], Health::Unhealthy, "0/2 uplinks up").await;
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let doc = ctl.board.document(std::time::Instant::now());
        let held = doc.groups.iter().filter(|g| g.enforcement == Enforcement::Held).count();
        let disabled = disables(&lab.control.sets()).len();
        if held == 2 && disabled == 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "held {held}, disabled {disabled}: {:#?}", doc.groups);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    ctl.stop().await;
    lab.shutdown().await;
}

#[tokio::test]
async fn in_dry_run_a_held_disable_prints_nothing() {
    let lab = Lab::start(2, Timings::fast()).await;
    let o = CtlOptions { mode: Mode::DryRun, ..CtlOptions::default() };
    let mut ctl = Ctl::start(&config(&lab, 2, ES1), o);
    ctl.verdicts(&["leaf1-es1", "leaf2-es1"], Health::Healthy, "2/2 uplinks up").await;
    lab.uplinks("leaf1", false);
    let (intent, _) = ctl.set_started("leaf1-es1").await;
    assert_eq!(intent.changes, vec![(downlink_path(), AdminState::Disable)]);
    // leaf1's device is untouched in dry-run, so leaf1 is unhealthy with its downlink still
    // reported enabled: it cannot forward, and leaf2 failing now is held.
    lab.uplinks("leaf2", false);
    held(&mut ctl, "leaf2-es1", "leaf1-es1 is unhealthy").await;
    let mut lines = Vec::new();
    let dry = ctl.dry.as_mut().expect("dry-run sink");
    while let Ok(line) = dry.try_recv() {
        lines.push(line);
    }
    assert_eq!(lines.len(), 1, "only leaf1's line: {lines:#?}");
    assert_eq!(lines[0].target, "leaf1");
    assert!(lab.control.sets().is_empty(), "dry-run sends nothing");
    ctl.stop().await;
    lab.shutdown().await;
}

/// The group's evaluations so far, as /status counts them.
fn evaluations(ctl: &Ctl, group: &str) -> u64 {
    let doc = ctl.board.document(std::time::Instant::now());
    doc.groups.iter().find(|g| g.name == group).map_or(0, |g| g.statistics.evaluations)
}

#[tokio::test]
async fn a_disable_on_the_wire_keeps_its_place_under_the_cap_while_its_leaf_reports_more() {
    // With readiness, so the iBGP sessions are inputs: a change of one is decided on.
    let lab = Lab::start(2, Timings::fast()).await;
    let groups = [GroupSpec::new("leaf1").readiness(), GroupSpec::new("leaf2").readiness()];
    let config = format!("{}safety:\n  max-disabled: 1\n", config_yaml(&lab.targets(), &groups));
    let mut ctl = Ctl::start(&config, CtlOptions::default());
    ctl.verdicts(&["leaf1-es1", "leaf2-es1"], Health::Healthy, "uplinks up").await;
    // leaf2's disable takes the cap's one place and stays on the wire for a while.
    lab.fault("leaf2", Fault::DelaySets { delay_ms: 1500 });
    lab.uplinks("leaf2", false);
    ctl.set_started("leaf2-es1").await;
    // Meanwhile leaf2 reports more (its sessions flap; one of the two pins is a change
    // whatever they were), and is decided again from it.
    let before = evaluations(&ctl, "leaf2-es1");
    lab.pin_ibgp("leaf2", Some(fabric_sim::SessionState::Established));
    lab.pin_ibgp("leaf2", Some(fabric_sim::SessionState::Idle));
    let deadline = std::time::Instant::now() + DEADLINE;
    while evaluations(&ctl, "leaf2-es1") == before {
        assert!(std::time::Instant::now() < deadline, "leaf2-es1 not evaluated after its sessions went down");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // leaf1 (first in name order) fails now: the place is taken, whatever leaf2 reported
    // since. Re-read from the device while the Set was still unanswered, leaf2's disable
    // no longer counted, leaf1 got the place as well, and two groups ended up disabled
    // under a cap of one.
    let mark = ctl.mark();
    lab.uplinks("leaf1", false);
    held(&mut ctl, "leaf1-es1", "blast-radius cap max-disabled 1").await;
    lab.wait_admin("leaf2", "disable").await;
    ctl.assert_no_set_since(mark, "the cap's one place is leaf2's");
    assert_eq!(lab.admin("leaf1").as_deref(), Some("enable"));
    ctl.stop().await;
    lab.shutdown().await;
}
