//! Two electors against the fake Lease API (NOT a real API server; see
//! tests/support/fake_lease_api.rs): exactly one leads, a cancelled leader is replaced in
//! time, and a leader cut off from the API server stops acting before its Lease expires.
//!
//! Real clocks, short durations (lease 2 s, renew 1 s: kube-lease-manager counts whole
//! seconds), and every wait is a condition polled under a deadline.

#[path = "support/fake_lease_api.rs"]
mod fake_lease_api;
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use fake_lease_api::{FakeLeaseApi, Reach, expiry, holder};
use opergroupd::config::LeaderElection;
use opergroupd::leader::{self, ClientSource, Elector, RELEASE_BUDGET, Role};
use support::wait_until;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const NS: &str = "opergroupd";
const LEASE: Duration = Duration::from_secs(2);
const RENEW: Duration = Duration::from_secs(1);
/// (LEASE - RENEW) / 2, as the elector computes it.
const MARGIN: Duration = Duration::from_millis(500);

struct Replica {
    id: &'static str,
    elector: Elector,
    task: JoinHandle<()>,
    cancel: CancellationToken,
}

async fn replica(fake: &FakeLeaseApi, lease: &str, id: &'static str) -> Replica {
    let cfg = LeaderElection {
        lease: lease.into(),
        namespace: NS.into(),
        identity: Some(id.into()),
        lease_duration: LEASE,
        renew_period: RENEW,
    };
    let cancel = CancellationToken::new();
    let client = fake.client(id).await;
    let (elector, task) =
        leader::start(&cfg, ClientSource::Given(client), cancel.clone()).await.expect("start elector");
    Replica { id, elector, task, cancel }
}

/// Samples every replica's `is_leader_now()` (the Set gate) every 2 ms.
struct Monitor {
    seen: Arc<Mutex<Seen>>,
    stop: CancellationToken,
}

#[derive(Default)]
struct Seen {
    overlaps: usize,
    first_leader: HashMap<&'static str, SystemTime>,
    last_leader: HashMap<&'static str, SystemTime>,
}

impl Monitor {
    fn start(electors: Vec<(&'static str, Elector)>) -> Monitor {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = CancellationToken::new();
        let (out, done) = (seen.clone(), stop.clone());
        tokio::spawn(async move {
            while !done.is_cancelled() {
                let leaders: Vec<&'static str> =
                    electors.iter().filter(|(_, e)| e.is_leader_now()).map(|(id, _)| *id).collect();
                let now = SystemTime::now();
                {
                    let mut seen = out.lock().unwrap();
                    if leaders.len() > 1 {
                        seen.overlaps += 1;
                    }
                    for id in leaders {
                        seen.first_leader.entry(id).or_insert(now);
                        seen.last_leader.insert(id, now);
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        Monitor { seen, stop }
    }

    fn overlaps(&self) -> usize {
        self.seen.lock().unwrap().overlaps
    }
    fn first_leader(&self, id: &str) -> Option<SystemTime> {
        self.seen.lock().unwrap().first_leader.get(id).copied()
    }
    fn last_leader(&self, id: &str) -> Option<SystemTime> {
        self.seen.lock().unwrap().last_leader.get(id).copied()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn holder_seen_by(r: &Replica) -> Option<String> {
    r.elector.status().holder
}

/// `a` leads, `b` is Standby and has read that `a` holds the Lease.
async fn leader_and_standby(fake: &FakeLeaseApi, lease: &str) -> (Replica, Replica) {
    let a = replica(fake, lease, "a").await;
    wait_until("a leads", LEASE + RENEW, || a.elector.is_leader_now()).await;
    let b = replica(fake, lease, "b").await;
    wait_until("b reads a as holder", LEASE, || holder_seen_by(&b).as_deref() == Some("a")).await;
    assert!(!b.elector.is_leader_now());
    (a, b)
}

#[tokio::test]
async fn exactly_one_of_two_replicas_leads_and_keeps_leading() {
    let fake = FakeLeaseApi::new();
    let a = replica(&fake, "one", "a").await;
    let b = replica(&fake, "one", "b").await;
    let monitor = Monitor::start(vec![("a", a.elector.clone()), ("b", b.elector.clone())]);

    wait_until("a leader", LEASE + RENEW + Duration::from_secs(1), || {
        a.elector.is_leader_now() || b.elector.is_leader_now()
    })
    .await;
    let (leader, standby) = if a.elector.is_leader_now() { (&a, &b) } else { (&b, &a) };
    wait_until("standby reads the holder", LEASE, || holder_seen_by(standby).as_deref() == Some(leader.id)).await;
    let since = leader.elector.status().since;
    assert_eq!(leader.elector.status().role, Role::Leader);

    // Three more renewals accepted by the server: the leader never lets go meanwhile.
    let writes_by = |id: &str| fake.history().iter().filter(|w| w.client == id).count();
    let before = writes_by(leader.id);
    wait_until("three renewals", 3 * RENEW + Duration::from_secs(2), || writes_by(leader.id) >= before + 3).await;

    assert!(leader.elector.is_leader_now());
    assert!(!standby.elector.is_leader_now());
    assert_eq!(leader.elector.status().since, since, "the leader never changed role");
    assert_eq!(standby.elector.status().role, Role::Standby);
    let lease = fake.lease(NS, "one").expect("lease exists");
    assert_eq!(holder(&lease), Some(leader.id));
    assert_eq!(monitor.overlaps(), 0, "two replicas were allowed to Set at once");
    assert!(monitor.first_leader(standby.id).is_none(), "the standby was leader at some point");
}

#[tokio::test]
async fn a_cancelled_leader_stops_at_once_and_the_other_takes_over_within_lease_plus_renew() {
    let fake = FakeLeaseApi::new();
    let (a, b) = leader_and_standby(&fake, "handover").await;
    let monitor = Monitor::start(vec![("a", a.elector.clone()), ("b", b.elector.clone())]);
    let mut b_roles = b.elector.subscribe();

    let stopped = Instant::now();
    a.cancel.cancel();
    assert!(!a.elector.is_leader_now(), "a cancelled leader must stop acting at once");

    let took_over = wait_until("b takes over", LEASE + RENEW, || b.elector.is_leader_now()).await;
    println!("takeover after {:?} (bound {:?})", took_over - stopped, LEASE + RENEW);
    assert_eq!(*b_roles.borrow_and_update(), Role::Leader, "promotion is published for re-evaluation");
    tokio::time::timeout(RELEASE_BUDGET + Duration::from_secs(1), a.task)
        .await
        .expect("a's elector ends after cancel")
        .expect("a's elector task");
    assert_eq!(a.elector.status().role, Role::Standby);
    assert_eq!(holder(&fake.lease(NS, "handover").expect("lease")), Some("b"));
    assert_eq!(monitor.overlaps(), 0, "two replicas were allowed to Set at once");
    b.cancel.cancel();
}

async fn cut_off_leader_demotes_before_expiry(reach: Reach, lease: &str) {
    let fake = FakeLeaseApi::new();
    let (a, b) = leader_and_standby(&fake, lease).await;
    let monitor = Monitor::start(vec![("a", a.elector.clone()), ("b", b.elector.clone())]);
    let mut a_roles = a.elector.subscribe();

    fake.set_reach("a", reach);
    wait_until("a demotes itself", LEASE, || !a.elector.is_leader_now()).await;
    wait_until("a publishes Standby", Duration::from_millis(500), || *a_roles.borrow_and_update() == Role::Standby)
        .await;
    let demoted = a.elector.status().since;

    // The Lease as the server last accepted it from or for "a".
    let a_expiry = fake
        .history()
        .iter()
        .filter(|w| holder(&w.lease) == Some("a"))
        .filter_map(|w| expiry(&w.lease))
        .max()
        .expect("a held the lease");
    let last_acted = monitor.last_leader("a").expect("a was seen leading");
    assert!(
        last_acted + MARGIN <= a_expiry,
        "a acted until {last_acted:?}, within {MARGIN:?} of its lease expiry {a_expiry:?}"
    );
    assert!(demoted < a_expiry, "a published Standby at {demoted:?}, after its lease expired at {a_expiry:?}");

    // b takes over only once the lease has expired; never both at once.
    wait_until("b takes over", LEASE + RENEW + Duration::from_secs(1), || b.elector.is_leader_now()).await;
    wait_until("the monitor sees b lead", Duration::from_millis(500), || monitor.first_leader("b").is_some()).await;
    let b_first = monitor.first_leader("b").expect("b seen leading");
    assert!(b_first >= a_expiry, "b led at {b_first:?}, before a's lease expired at {a_expiry:?}");
    assert_eq!(monitor.overlaps(), 0, "two replicas were allowed to Set at once");

    // Reconnected, a learns that b holds the Lease and stays Standby.
    fake.set_reach("a", Reach::Up);
    wait_until("a reads b as holder", LEASE + RENEW, || holder_seen_by(&a).as_deref() == Some("b")).await;
    assert!(!a.elector.is_leader_now());
    assert_eq!(monitor.overlaps(), 0, "two replicas were allowed to Set at once");
    a.cancel.cancel();
    b.cancel.cancel();
}

#[tokio::test]
async fn a_leader_blackholed_from_the_api_server_demotes_before_its_lease_expires() {
    cut_off_leader_demotes_before_expiry(Reach::Blackhole, "blackhole").await;
}

#[tokio::test]
async fn a_leader_refused_by_the_api_server_demotes_before_its_lease_expires() {
    cut_off_leader_demotes_before_expiry(Reach::Refuse, "refuse").await;
}

#[tokio::test]
async fn an_unreachable_api_server_at_start_means_standby_until_it_answers() {
    let fake = FakeLeaseApi::new();
    let client = fake.client("a").await;
    fake.set_reach("a", Reach::Refuse);
    let cfg = LeaderElection {
        lease: "late".into(),
        namespace: NS.into(),
        identity: Some("a".into()),
        lease_duration: LEASE,
        renew_period: RENEW,
    };
    let cancel = CancellationToken::new();
    let (a, task) = leader::start(&cfg, ClientSource::Given(client), cancel.clone()).await.expect("start");
    wait_until("a tried the API", LEASE, || fake.refused("a") >= 2).await;
    assert!(!a.is_leader_now());
    assert_eq!(a.status().role, Role::Standby);
    fake.set_reach("a", Reach::Up);
    // The first retry comes after one renew period (plus jitter), then the Lease is free.
    wait_until("a leads", LEASE + RENEW + Duration::from_secs(2), || a.is_leader_now()).await;
    cancel.cancel();
    tokio::time::timeout(RELEASE_BUDGET + Duration::from_secs(1), task).await.expect("ends").expect("task");
    let lease = fake.lease(NS, "late").expect("lease");
    assert_eq!(holder(&lease), None, "a released the lease on shutdown");
}

#[tokio::test]
async fn bad_timing_is_refused_before_anything_starts() {
    let fake = FakeLeaseApi::new();
    let cfg = LeaderElection {
        lease: "bad".into(),
        namespace: NS.into(),
        identity: Some("a".into()),
        lease_duration: Duration::from_secs(2),
        renew_period: Duration::from_millis(500),
    };
    let err = leader::start(&cfg, ClientSource::Given(fake.client("a").await), CancellationToken::new())
        .await
        .err()
        .expect("fractional renew period refused");
    assert!(err.to_string().contains("leader-election.renew-period"), "{err}");
    assert!(fake.history().is_empty());
}

#[tokio::test]
async fn standalone_elector_always_leads() {
    let e = Elector::standalone("solo".into());
    assert!(e.is_leader_now());
    assert_eq!(*e.subscribe().borrow(), Role::Leader);
    assert_eq!(e.status().lease, None);
}
