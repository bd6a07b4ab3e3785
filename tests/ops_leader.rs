//! Issue 6 end to end: two `opergroupd run` processes (the real binary) with
//! `leader-election:`, each with a KUBECONFIG pointing at its own listener of one fake
//! Lease API, against one fabric-sim in this process.
//!
//! The fake (tests/support/fake_lease_api.rs) is NOT a real API server: it implements the
//! Lease semantics the election uses (resourceVersion, 409 on conflict, server-side apply)
//! and can refuse or blackhole one replica while the other still reaches it.
//!
//! Lease 2 s, renew 1 s (whole seconds: kube-lease-manager's unit). Every wait is a
//! condition polled under a deadline; absence is asserted only after positive evidence
//! that the replica evaluated the state in question.

#[path = "support/fake_lease_api.rs"]
mod fake_lease_api;
#[path = "support/ops.rs"]
mod ops;

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use fabric_sim::{Control, Fabric, SetOutcome, SimConfig, Timings};
use fake_lease_api::{FakeLeaseApi, Reach, expiry};
use opergroupd::status::{Health, ReplicaRole, StatusDocument};

use ops::{Opergroupd, TempDir, eventually, group, status};

const NS: &str = "opergroupd";
const LEASE: Duration = Duration::from_secs(2);
const RENEW: Duration = Duration::from_secs(1);
const STEP: Duration = Duration::from_secs(10);

struct Cluster {
    fake: FakeLeaseApi,
    fabric: Option<Fabric>,
    ctl: Control,
    leaves: Vec<(String, SocketAddr)>,
    dir: TempDir,
    lease: String,
}

struct Replica {
    id: String,
    proc: Opergroupd,
    http: SocketAddr,
}

impl Cluster {
    async fn start(lease: &str) -> Cluster {
        let fabric =
            fabric_sim::start(SimConfig { leaves: 2, base_port: 0, timings: Timings::fast(), ..SimConfig::default() })
                .await
                .expect("start fabric-sim");
        let ctl = fabric.control();
        let leaves =
            fabric.leaf_names().into_iter().map(|n| (n.clone(), fabric.leaf_addr(&n).expect("addr"))).collect();
        Cluster {
            fake: FakeLeaseApi::new(),
            fabric: Some(fabric),
            ctl,
            leaves,
            dir: TempDir::new(lease),
            lease: lease.into(),
        }
    }

    /// One `opergroupd run` with identity `id`; its API server is its own listener of the fake.
    async fn replica(&self, id: &str, args: &[&str]) -> Replica {
        let api = self.fake.listen(id).await;
        let kubeconfig = self.dir.write(
            &format!("kubeconfig-{id}"),
            &format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{api}\nusers:\n- name: nobody\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: nobody\n    namespace: {NS}\ncurrent-context: fake\n"
            ),
        );
        let election = format!(
            "leader-election:\n  lease: {}\n  namespace: {NS}\n  identity: {id}\n  lease-duration: {}s\n  renew-period: {}s\n",
            self.lease,
            LEASE.as_secs(),
            RENEW.as_secs()
        );
        let config = self.dir.write(&format!("config-{id}.yaml"), &ops::fabric_config(&self.leaves, &election));
        let kubeconfig = kubeconfig.to_str().expect("utf-8 path").to_string();
        let proc = Opergroupd::run(id, &config, args, &[("KUBECONFIG", &kubeconfig)]);
        let http = proc.http_addr().await;
        Replica { id: id.into(), proc, http }
    }

    async fn shutdown(mut self) {
        if let Some(f) = self.fabric.take() {
            f.shutdown().await;
        }
    }
}

/// An RFC 3339 log timestamp as a wall-clock time.
fn wall(rfc3339: &str) -> Option<SystemTime> {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339).ok()?;
    Some(SystemTime::from(t))
}

fn role(doc: &StatusDocument) -> ReplicaRole {
    doc.controller.role
}

/// Waits until exactly one replica reports `leader` and the other `standby`; returns them
/// as (leader, standby).
async fn roles<'a>(a: &'a Replica, b: &'a Replica) -> (&'a Replica, &'a Replica) {
    eventually("one leader and one standby", STEP, || async {
        match (role(&status(a.http).await), role(&status(b.http).await)) {
            (ReplicaRole::Leader, ReplicaRole::Standby) => Ok((a, b)),
            (ReplicaRole::Standby, ReplicaRole::Leader) => Ok((b, a)),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

/// Waits until `r` shows every group in `want` health with every downlink observed as in
/// `observed` (None: any), and returns that document.
async fn wait_groups(r: &Replica, what: &str, cond: impl Fn(&StatusDocument) -> bool) -> StatusDocument {
    eventually(&format!("{}: {what}", r.id), STEP, || async {
        let doc = status(r.http).await;
        if cond(&doc) { Ok(doc) } else { Err(format!("{:?}", doc.groups)) }
    })
    .await
}

fn healthy(doc: &StatusDocument) -> bool {
    doc.groups.iter().all(|g| g.oper_state == Health::Healthy)
}

/// `group` unhealthy with its downlink reported disabled by the device.
fn disabled(group_name: &'static str) -> impl Fn(&StatusDocument) -> bool {
    move |doc| {
        let g = group(doc, group_name);
        g.oper_state == Health::Unhealthy && g.downlinks.iter().all(|d| d.observed.as_deref() == Some("disable"))
    }
}

fn fail_both_uplinks(ctl: &Control, leaf: &str) {
    ctl.link(leaf, "ethernet-1/49", false).expect("link down");
    ctl.link(leaf, "ethernet-1/50", false).expect("link down");
}

fn sets_sent(doc: &StatusDocument, group_name: &str) -> u64 {
    group(doc, group_name).statistics.sets_sent
}

fn set_nodes(ctl: &Control) -> Vec<String> {
    ctl.sets().iter().map(|s| format!("{}:{:?}", s.node, s.outcome)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_sets_and_after_sigterm_the_other_takes_over_without_repeating_a_set() {
    let cluster = Cluster::start("takeover").await;
    let a = cluster.replica("replica-a", &[]).await;
    let b = cluster.replica("replica-b", &[]).await;
    let (leader, standby) = roles(&a, &b).await;
    let lease = cluster.fake.lease(NS, "takeover").expect("the Lease exists");
    assert_eq!(fake_lease_api::holder(&lease), Some(leader.id.as_str()), "the server's Lease names the leader");
    for r in [leader, standby] {
        wait_groups(r, "every group healthy", healthy).await;
    }
    assert!(cluster.ctl.sets().is_empty(), "{:?}", set_nodes(&cluster.ctl));

    // An outage: both replicas see it, only the leader Sets.
    fail_both_uplinks(&cluster.ctl, "leaf1");
    cluster.ctl.wait_for_sets(1, STEP).await.expect("a Set for leaf1");
    let on_leader = wait_groups(leader, "leaf1-es1 disabled", disabled("leaf1-es1")).await;
    let on_standby = wait_groups(standby, "leaf1-es1 disabled", disabled("leaf1-es1")).await;
    assert_eq!(sets_sent(&on_leader, "leaf1-es1"), 1);
    assert_eq!(sets_sent(&on_standby, "leaf1-es1"), 0, "the standby evaluated the outage and sent nothing");
    assert!(group(&on_standby, "leaf1-es1").last_output.is_none());
    assert_eq!(set_nodes(&cluster.ctl), vec!["leaf1:Accepted"]);

    // SIGTERM the leader: it stops acting, releases the Lease, and the standby leads.
    let stopped = Instant::now();
    leader.proc.sigterm();
    eventually("the standby leads", LEASE + RENEW, || async {
        match role(&status(standby.http).await) {
            ReplicaRole::Leader => Ok(()),
            r => Err(format!("{r:?}")),
        }
    })
    .await;
    let takeover = stopped.elapsed();
    assert!(takeover <= LEASE + RENEW, "takeover after {takeover:?}");
    eprintln!("measured: SIGTERM to the standby reporting leader: {takeover:?}");
    let holder = cluster.fake.lease(NS, "takeover").and_then(|l| fake_lease_api::holder(&l).map(str::to_string));
    assert_eq!(holder.as_deref(), Some(standby.id.as_str()));

    // The new leader re-decided from the devices: leaf1 already matches, nothing to send.
    // A new outage (processed after the promotion) gets exactly one Set, from it.
    fail_both_uplinks(&cluster.ctl, "leaf2");
    cluster.ctl.wait_for_sets(2, STEP).await.expect("a Set for leaf2");
    let now_leading = wait_groups(standby, "leaf2-es1 disabled", disabled("leaf2-es1")).await;
    assert_eq!(sets_sent(&now_leading, "leaf1-es1"), 0, "no Set that was already made");
    assert_eq!(sets_sent(&now_leading, "leaf2-es1"), 1);
    assert_eq!(set_nodes(&cluster.ctl), vec!["leaf1:Accepted", "leaf2:Accepted"]);

    let leader_id = leader.id.clone();
    let (mut a, mut b) = (a, b);
    let old = if a.id == leader_id { &mut a } else { &mut b };
    let exit = old.proc.wait_exit(Duration::from_secs(5)).await;
    assert!(exit.success(), "SIGTERM exits 0, got {exit}");
    drop((a, b));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_api_server_stops_setting_before_its_lease_expires() {
    let cluster = Cluster::start("cutoff").await;
    let a = cluster.replica("replica-a", &[]).await;
    let b = cluster.replica("replica-b", &[]).await;
    let (leader, standby) = roles(&a, &b).await;
    for r in [leader, standby] {
        wait_groups(r, "every group healthy", healthy).await;
    }

    // The leader's requests now hang; the standby still reaches the API server.
    cluster.fake.set_reach(&leader.id, Reach::Blackhole);
    eventually("the cut-off leader demotes itself", LEASE + RENEW, || async {
        match role(&status(leader.http).await) {
            ReplicaRole::Standby => Ok(()),
            r => Err(format!("{r:?}")),
        }
    })
    .await;
    // When it demoted itself, by its own clock (the log line), free of our polling delay.
    let demoted = eventually("the demotion in the old leader's log", STEP, || async {
        leader
            .proc
            .stderr_lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["message"] == "leader election: role changed" && v["role"] == "standby")
            .filter_map(|v| v["timestamp"].as_str().and_then(wall))
            .next_back()
            .ok_or_else(|| "not logged yet".to_string())
    })
    .await;
    // The Lease as the server last accepted it from the old leader (no write of its can
    // land any more): nobody else may take over before this.
    let expires = cluster
        .fake
        .history()
        .iter()
        .filter(|w| w.client == leader.id)
        .filter_map(|w| expiry(&w.lease))
        .max()
        .expect("the leader renewed at least once");
    assert!(demoted < expires, "demoted at {demoted:?}, its Lease expires at {expires:?}");
    eprintln!(
        "measured: the cut-off leader demoted itself {:?} before its Lease expired",
        expires.duration_since(demoted).unwrap_or_default()
    );

    // An outage now: the old leader sees it and sends nothing; the standby Sets once it
    // holds the Lease, which is after the old one expired.
    fail_both_uplinks(&cluster.ctl, "leaf1");
    let sets = cluster.ctl.wait_for_sets(1, STEP).await.expect("the new leader Sets");
    let on_new = wait_groups(standby, "leaf1-es1 disabled", disabled("leaf1-es1")).await;
    assert_eq!(role(&on_new), ReplicaRole::Leader);
    assert_eq!(sets_sent(&on_new, "leaf1-es1"), 1);
    let on_old = wait_groups(leader, "leaf1-es1 disabled", disabled("leaf1-es1")).await;
    assert_eq!(role(&on_old), ReplicaRole::Standby);
    assert_eq!(sets_sent(&on_old, "leaf1-es1"), 0, "a replica cut off from the API server never Sets");
    assert_eq!(sets.len(), 1, "{:?}", set_nodes(&cluster.ctl));
    assert_eq!(sets[0].outcome, SetOutcome::Accepted);
    let received =
        SystemTime::UNIX_EPOCH + Duration::from_nanos(u64::try_from(sets[0].received.unix_ns).expect("after 1970"));
    assert!(
        received >= expires,
        "the Set came {:?} before the old Lease expired",
        expires.duration_since(received).unwrap_or_default()
    );
    assert_eq!(set_nodes(&cluster.ctl), vec!["leaf1:Accepted"]);

    drop((a, b));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_dry_run_the_leader_prints_the_line_and_the_standby_prints_nothing() {
    let cluster = Cluster::start("dryrun").await;
    let a = cluster.replica("replica-a", &["--dry-run"]).await;
    let b = cluster.replica("replica-b", &["--dry-run"]).await;
    let (leader, standby) = roles(&a, &b).await;
    for r in [leader, standby] {
        wait_groups(r, "every group healthy", healthy).await;
    }

    fail_both_uplinks(&cluster.ctl, "leaf1");
    let line = eventually("the leader's dry-run line", STEP, || async {
        leader.proc.stdout_lines().first().cloned().ok_or_else(|| "stdout empty".to_string())
    })
    .await;
    let line: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("dry-run line is JSON: {e}: {line}"));
    assert_eq!(line["target"], "leaf1", "{line}");
    assert_eq!(line["group"], "leaf1-es1", "{line}");
    assert_eq!(line["path"], "/interface[name=ethernet-1/1]/admin-state", "{line}");
    assert_eq!(line["value"], "disable", "{line}");

    // Positive evidence on both: the leader's output is recorded, the standby evaluated.
    let unhealthy = |doc: &StatusDocument| group(doc, "leaf1-es1").oper_state == Health::Unhealthy;
    let on_leader = wait_groups(leader, "leaf1-es1 dry-run done", |doc| {
        unhealthy(doc) && group(doc, "leaf1-es1").last_output.as_ref().is_some_and(|o| o.result == "dry-run")
    })
    .await;
    let on_standby = wait_groups(standby, "leaf1-es1 unhealthy", unhealthy).await;
    assert_eq!(role(&on_leader), ReplicaRole::Leader);
    assert_eq!(role(&on_standby), ReplicaRole::Standby);
    // Both name the same holder: the standby tells an operator who acts.
    eventually("both replicas name the leader as the Lease holder", STEP, || async {
        let holders: Vec<Option<String>> = [leader.http, standby.http]
            .into_iter()
            .map(|a| async move { status(a).await.controller.leader_election.and_then(|l| l.holder) })
            .collect::<futures::future::JoinAll<_>>()
            .await;
        if holders.iter().all(|h| h.as_deref() == Some(leader.id.as_str())) {
            Ok(())
        } else {
            Err(format!("{holders:?}"))
        }
    })
    .await;
    assert!(on_leader.controller.dry_run && on_standby.controller.dry_run);
    assert_eq!(sets_sent(&on_standby, "leaf1-es1"), 0);
    assert_eq!(standby.proc.stdout_lines(), Vec::<String>::new(), "a standby prints nothing");
    assert_eq!(leader.proc.stdout_lines().len(), 1, "{:?}", leader.proc.stdout_lines());
    assert!(cluster.ctl.sets().is_empty(), "dry-run sends nothing: {:?}", set_nodes(&cluster.ctl));

    drop((a, b));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sigterm_a_set_on_the_wire_finishes_before_the_lease_is_released() {
    let cluster = Cluster::start("drain").await;
    let mut a = cluster.replica("replica-a", &[]).await;
    eventually("replica-a leads", STEP, || async {
        match role(&status(a.http).await) {
            ReplicaRole::Leader => Ok(()),
            r => Err(format!("{r:?}")),
        }
    })
    .await;
    wait_groups(&a, "every group healthy", healthy).await;

    // The device holds the Set 400 ms: SIGTERM lands while it is on the wire. (Shorter than
    // the least act-until window of this 2 s/1 s Lease, 500 ms, so fencing lets it finish.)
    cluster.ctl.fault("leaf1", fabric_sim::Fault::DelaySets { delay_ms: 400 }).expect("fault");
    fail_both_uplinks(&cluster.ctl, "leaf1");
    wait_groups(&a, "a Set for leaf1-es1 in flight", |doc| {
        group(doc, "leaf1-es1").last_output.as_ref().is_some_and(|o| o.result == "in-flight")
    })
    .await;
    a.proc.sigterm();
    let exit = a.proc.wait_exit(Duration::from_secs(5)).await;
    assert!(exit.success(), "{exit:?}");

    let sets = cluster.ctl.sets();
    let applied = sets
        .iter()
        .find(|s| s.node == "leaf1" && s.outcome == SetOutcome::Accepted)
        .and_then(|s| s.applied)
        .unwrap_or_else(|| panic!("the Set on the wire finished during shutdown: {sets:#?}"));
    let applied_at = SystemTime::UNIX_EPOCH + Duration::from_nanos(applied.unix_ns as u64);
    let released = cluster
        .fake
        .history()
        .into_iter()
        // The last write that leaves no holder (the first one may be the Lease's creation).
        .filter(|w| w.client == "replica-a" && fake_lease_api::holder(&w.lease).is_none())
        .map(|w| w.at)
        .max()
        .expect("replica-a released the Lease");
    assert!(
        released >= applied_at,
        "the Lease was released {:?} before the Set on the wire was applied\n{}",
        applied_at.duration_since(released).unwrap_or_default(),
        a.proc.stderr_lines().join("\n")
    );
    cluster.shutdown().await;
}
