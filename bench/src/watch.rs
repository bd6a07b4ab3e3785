//! The bench's own view of the leaves it puts events on: one gNMI subscription per leaf
//! (opergroupd's source code, a second collector next to the controller), so the bench
//! wakes when a Set took effect instead of polling the sim, and learns the sim-clock
//! timestamp of the notification that completed readiness.
//!
//! A waiter is a predicate over one leaf's values. It is checked at registration and after
//! every notification for its leaf, under one lock, so the notification that first makes
//! it true is the one whose timestamp it gets: no wake-up is lost and none is late.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opergroupd::config::{Secret, Target, Tls};
use opergroupd::gnmi::source::{SourceOptions, spawn_source};
use opergroupd::gnmi::subscription::Subscriptions;
use opergroupd::model::{Scalar, SourceEvent};
use opergroupd::srl_paths;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::procs::{PASSWORD, USERNAME};

pub const NI: &str = "default";
pub const PEERS: [&str; 2] = ["10.0.1.1", "10.0.1.2"];
pub const UPLINKS: [&str; 2] = ["ethernet-1/49", "ethernet-1/50"];
pub const DOWNLINK: &str = "ethernet-1/1";

pub type Values = HashMap<String, Scalar>;
type Pred = Box<dyn Fn(&Values) -> bool + Send>;

struct Waiter {
    pred: Pred,
    tx: oneshot::Sender<i64>,
}

#[derive(Default)]
struct LeafView {
    synced: bool,
    values: Values,
    /// Sim-clock timestamp of the last notification applied.
    last_ns: i64,
    waiters: Vec<Waiter>,
}

#[derive(Clone)]
pub struct Watch {
    leaves: Arc<Mutex<HashMap<String, LeafView>>>,
    cancel: CancellationToken,
}

impl Watch {
    /// Subscribes to `leaves` (name, port) and waits until every subscription synced.
    pub async fn start(leaves: &[(String, u16)], deadline: Duration) -> Result<Watch, String> {
        let cancel = CancellationToken::new();
        let (tx, mut rx) = mpsc::channel::<SourceEvent>(4096);
        let mut subscribe = vec![srl_paths::admin_state(DOWNLINK)];
        subscribe.extend(UPLINKS.iter().map(|u| srl_paths::oper_state(u)));
        for p in PEERS {
            subscribe.push(srl_paths::session_state(NI, p));
            subscribe.push(srl_paths::evpn_received_routes(NI, p));
        }
        let opts = SourceOptions {
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(1),
            ..Default::default()
        };
        let mut map = HashMap::new();
        for (name, port) in leaves {
            let target = Target {
                name: name.clone(),
                address: format!("127.0.0.1:{port}"),
                username: Some(USERNAME.into()),
                password: Some(Secret::new(PASSWORD.into())),
                tls: Tls::Insecure,
                // An observer of the benchmark, not a controller: no heartbeat load.
                liveness: None,
                reconnect_max: Duration::from_secs(1),
            };
            spawn_source(
                Arc::new(target),
                Subscriptions::every_path(subscribe.clone()),
                tx.clone(),
                opts.clone(),
                cancel.clone(),
            );
            map.insert(name.clone(), LeafView::default());
        }
        drop(tx);
        let watch = Watch { leaves: Arc::new(Mutex::new(map)), cancel };
        let w = watch.clone();
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                w.apply(ev);
            }
        });
        let t0 = std::time::Instant::now();
        loop {
            let waiting = watch.lock().values().filter(|l| !l.synced).count();
            if waiting == 0 {
                return Ok(watch);
            }
            if t0.elapsed() > deadline {
                watch.stop();
                return Err(format!("bench's own subscriptions: {waiting} leaves not synced within {deadline:?}"));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn stop(&self) {
        self.cancel.cancel();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, LeafView>> {
        self.leaves.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn apply(&self, ev: SourceEvent) {
        let mut leaves = self.lock();
        match ev {
            SourceEvent::Notification { target, device_ns, updates, deletes, .. } => {
                let Some(leaf) = leaves.get_mut(target.as_ref()) else { return };
                for d in deletes {
                    leaf.values.retain(|k, _| !k.starts_with(&d));
                }
                leaf.values.extend(updates);
                leaf.last_ns = device_ns;
                let values = &leaf.values;
                let (fired, kept): (Vec<Waiter>, Vec<Waiter>) = leaf.waiters.drain(..).partition(|w| (w.pred)(values));
                leaf.waiters = kept;
                for w in fired {
                    let _ = w.tx.send(device_ns);
                }
            }
            SourceEvent::Synced { target, .. } => {
                if let Some(leaf) = leaves.get_mut(target.as_ref()) {
                    leaf.synced = true;
                }
            }
            // The bench's stream broke: its values would be stale; the waiters time out and
            // the event is reported as failed rather than measured wrong.
            SourceEvent::Stale { target, .. } => {
                if let Some(leaf) = leaves.get_mut(target.as_ref()) {
                    leaf.synced = false;
                    leaf.values.clear();
                }
            }
            SourceEvent::Connecting { .. } | SourceEvent::Subscribed { .. } => {}
        }
    }

    /// Resolves with the sim timestamp of the notification that made `pred` true (or of
    /// the last one applied, if it already holds).
    pub fn when(&self, leaf: &str, pred: impl Fn(&Values) -> bool + Send + 'static) -> oneshot::Receiver<i64> {
        let (tx, rx) = oneshot::channel();
        let mut leaves = self.lock();
        match leaves.get_mut(leaf) {
            Some(l) if pred(&l.values) => {
                let _ = tx.send(l.last_ns);
            }
            Some(l) => l.waiters.push(Waiter { pred: Box::new(pred), tx }),
            None => {} // tx dropped: the receiver errors at once
        }
        rx
    }
}

/// Waits for a waiter with a deadline; the error says what was awaited where.
pub async fn within(rx: oneshot::Receiver<i64>, deadline: Duration, what: &str) -> Result<i64, String> {
    match tokio::time::timeout(deadline, rx).await {
        Ok(Ok(ns)) => Ok(ns),
        Ok(Err(_)) => Err(format!("{what}: not watched")),
        Err(_) => Err(format!("{what}: not within {deadline:?}")),
    }
}

fn enum_at<'a>(v: &'a Values, path: &str) -> Option<&'a str> {
    v.get(path).and_then(Scalar::as_enum)
}

pub fn admin_is(state: &'static str) -> impl Fn(&Values) -> bool + Send + 'static {
    let path = srl_paths::admin_state(DOWNLINK);
    move |v| enum_at(v, &path) == Some(state)
}

/// Both iBGP sessions dropped (the hold time expired with every uplink down).
pub fn overlay_down() -> impl Fn(&Values) -> bool + Send + 'static {
    let p: Vec<String> = PEERS.iter().map(|p| srl_paths::session_state(NI, p)).collect();
    move |v| p.iter().all(|p| enum_at(v, p).is_some_and(|s| s != "established"))
}

/// The benchmark group's readiness (same rule as its config): an uplink up, one listed
/// neighbor established, at least one EVPN route summed over the established ones.
pub fn ready() -> impl Fn(&Values) -> bool + Send + 'static {
    let ups: Vec<String> = UPLINKS.iter().map(|u| srl_paths::oper_state(u)).collect();
    let peers: Vec<(String, String)> =
        PEERS.iter().map(|p| (srl_paths::session_state(NI, p), srl_paths::evpn_received_routes(NI, p))).collect();
    move |v| {
        let up = ups.iter().any(|p| enum_at(v, p) == Some("up"));
        let established: Vec<&(String, String)> =
            peers.iter().filter(|(s, _)| enum_at(v, s) == Some("established")).collect();
        let routes: u64 = established.iter().filter_map(|(_, r)| v.get(r).and_then(Scalar::as_u64)).sum();
        up && !established.is_empty() && routes >= 1
    }
}
