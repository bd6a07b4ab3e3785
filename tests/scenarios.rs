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
    assert_eq!(v.desired, Some(AdminState::Enable), "{v:?}");
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
