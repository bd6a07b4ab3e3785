//! Leader election over a coordination.k8s.io/v1 Lease, so that of several replicas only
//! one sends gNMI Sets (issue 6).
//!
//! Every replica subscribes and evaluates; the controller asks [`Elector::is_leader_now`]
//! at the instant of each Set, and re-reads device state when [`Elector::subscribe`] reports
//! a promotion (a new leader acts only on what is still wrong).
//!
//! Two tasks feed one decision ([`judge`]):
//! * kube-lease-manager acquires, renews and, on shutdown, releases the Lease;
//! * a witness reads the Lease back every `poll` and learns when it was last renewed.
//!
//! A replica acts while the crate says it holds the Lease and the server's copy names it,
//! until `renewTime + lease_duration - margin` ([`timing`] says how the margin is chosen).
//! That deadline is a local timer: a replica cut off from the API server stops acting
//! before anybody else may take over, whatever the crate is still waiting for.

mod judge;
mod timing;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use backon::BackoffBuilder;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube_lease_manager::{LeaseManagerBuilder, LeaseParams};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::LeaderElection;
use judge::{Judge, LeaseView};
pub use timing::Timing;

/// What this replica may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Holds the Lease: evaluates and Sets.
    Leader,
    /// Evaluates, reports, never Sets.
    Standby,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Standby => "standby",
        }
    }
}

/// For /status and /metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct LeaderStatus {
    pub role: Role,
    /// When the current role began (wall clock).
    pub since: SystemTime,
    pub identity: String,
    /// The holder named by the Lease when last read; `None` if free or not read yet.
    pub holder: Option<String>,
    /// `namespace/name` of the Lease; `None` when leader election is off.
    pub lease: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("leader-election.{key}: {message}")]
    Config { key: &'static str, message: String },
    #[error("leader-election: no identity: set leader-election.identity or the HOSTNAME environment variable")]
    NoIdentity,
    #[error("leader-election: no Kubernetes client (neither in-cluster nor kubeconfig): {0}")]
    Client(#[source] kube::Error),
}

/// Where the Kubernetes API client comes from.
pub enum ClientSource {
    /// In-cluster service account, else `KUBECONFIG`/`~/.kube/config` (kube's inference).
    Infer,
    /// A client built by the caller (tests point one at a plain http URL).
    Given(kube::Client),
}

/// A handle on this replica's role. Cheap to clone; every clone sees the same state.
#[derive(Clone)]
pub struct Elector {
    inner: Arc<Inner>,
}

struct Inner {
    identity: String,
    lease: Option<String>,
    judge: Mutex<Judge>,
    roles: watch::Sender<Role>,
    /// Shutdown: once cancelled, this replica stops acting at once, before any cleanup.
    cancel: CancellationToken,
}

impl Elector {
    /// An elector for a controller without leader election: always Leader.
    pub fn standalone(identity: String) -> Self {
        let judge = Judge::standalone(identity.clone(), SystemTime::now());
        let (roles, _) = watch::channel(Role::Leader);
        let inner = Inner { identity, lease: None, judge: Mutex::new(judge), roles, cancel: CancellationToken::new() };
        Elector { inner: Arc::new(inner) }
    }

    /// The gate for every Set: true only if this replica may act at this very instant.
    /// Stricter than the last value on [`Elector::subscribe`]: a deadline that has just
    /// passed counts even if the timer task has not run yet.
    pub fn is_leader_now(&self) -> bool {
        !self.inner.cancel.is_cancelled() && self.judge().role_at(Instant::now()) == Role::Leader
    }

    /// Fencing: the instant until which this replica may act, if it may act now. Every
    /// Set carries it; connect and Set are bounded by it. A standalone elector (no
    /// election) acts without a deadline: `Some` of a far instant.
    pub fn act_until(&self) -> Option<Instant> {
        if self.inner.cancel.is_cancelled() {
            return None;
        }
        let now = Instant::now();
        let judge = self.judge();
        match judge.deadline(now) {
            Some(until) => Some(until),
            None if judge.role_at(now) == Role::Leader => Some(now + Duration::from_secs(86_400 * 365)),
            None => None,
        }
    }

    /// Role changes, for re-evaluating on promotion and for status. Starts as Standby.
    pub fn subscribe(&self) -> watch::Receiver<Role> {
        self.inner.roles.subscribe()
    }

    pub fn status(&self) -> LeaderStatus {
        let judge = self.judge();
        let (role, since) = judge.settled();
        LeaderStatus {
            role,
            since,
            identity: self.inner.identity.clone(),
            holder: judge.holder().map(str::to_owned),
            lease: self.inner.lease.clone(),
        }
    }

    fn judge(&self) -> MutexGuard<'_, Judge> {
        // The lock is never held across an await or a panic-prone call; recover if poisoned.
        self.inner.judge.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Re-evaluates and publishes a changed role.
    fn settle(&self) {
        let mut judge = self.judge();
        if let Some(role) = judge.settle(Instant::now(), SystemTime::now()) {
            info!(role = role.as_str(), identity = %self.inner.identity, holder = ?judge.holder(), "leader election: role changed");
            self.inner.roles.send_replace(role);
        }
    }
}

/// Starts electing. Returns at once (the API server may still be unreachable: the replica
/// is Standby until it holds the Lease). The task ends after `cancel`, having demoted this
/// replica first and then released the Lease (bounded by [`RELEASE_BUDGET`]).
pub async fn start(
    cfg: &LeaderElection,
    client_source: ClientSource,
    cancel: CancellationToken,
) -> Result<(Elector, JoinHandle<()>), LeaderError> {
    let timing = Timing::new(cfg.lease_duration, cfg.renew_period)?;
    let identity = match &cfg.identity {
        Some(id) if !id.is_empty() => id.clone(),
        _ => std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).ok_or(LeaderError::NoIdentity)?,
    };
    let client = match client_source {
        ClientSource::Given(client) => client,
        ClientSource::Infer => {
            let mut config =
                kube::Config::infer().await.map_err(|e| LeaderError::Client(kube::Error::InferConfig(e)))?;
            // kube sets no read timeout by default; a renewal that hangs longer than a
            // renew period is worth abandoning and retrying.
            config.read_timeout = Some(timing.renew_period);
            // kube retries 429/503/504 up to 15 times, for minutes; kube-lease-manager and
            // the witness retry on their own schedule, which the deadline is built around.
            config.default_retry = false;
            kube::Client::try_from(config).map_err(LeaderError::Client)?
        }
    };

    let elector = Elector {
        inner: Arc::new(Inner {
            identity: identity.clone(),
            lease: Some(format!("{}/{}", cfg.namespace, cfg.lease)),
            judge: Mutex::new(Judge::new(identity.clone(), timing.margin, SystemTime::now())),
            roles: watch::channel(Role::Standby).0,
            cancel: cancel.clone(),
        }),
    };
    let (events, inbox) = mpsc::channel(16);
    let poke = Arc::new(Notify::new());
    let holder = tokio::spawn(hold_lease(
        client.clone(),
        cfg.clone(),
        LeaseParams::new(identity, timing.lease_seconds(), timing.grace_seconds()),
        timing,
        events.clone(),
        cancel.clone(),
    ));
    let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
    let witness = tokio::spawn(witness(api, cfg.lease.clone(), timing, events, poke.clone(), cancel.clone()));
    let task = tokio::spawn(decide(elector.clone(), inbox, poke, cancel, holder, witness));
    Ok((elector, task))
}

/// How long shutdown waits for the Lease to be released before giving up on it
/// (the contract allows 5 s for the whole shutdown).
pub const RELEASE_BUDGET: Duration = Duration::from_secs(2);

enum Event {
    /// kube-lease-manager's view: do we hold the Lease?
    Holds(bool),
    /// The Lease as the API server has it (`None`: it does not exist).
    Read(Option<LeaseView>),
}

async fn decide(
    elector: Elector,
    mut inbox: mpsc::Receiver<Event>,
    poke: Arc<Notify>,
    cancel: CancellationToken,
    holder: JoinHandle<()>,
    witness: JoinHandle<()>,
) {
    loop {
        let deadline = elector.judge().deadline(Instant::now());
        tokio::select! {
            _ = cancel.cancelled() => break,
            event = inbox.recv() => match event {
                Some(Event::Holds(holds)) => {
                    elector.judge().crate_says(holds);
                    // Read the Lease back now rather than at the next poll.
                    poke.notify_one();
                }
                Some(Event::Read(view)) => {
                    let view = view.unwrap_or(LeaseView { holder: None, expires: None });
                    elector.judge().observe(view, Instant::now(), SystemTime::now());
                }
                None => break,
            },
            _ = crate::sleep::sleep_until(deadline) => {
                warn!("leader election: Lease not renewed in time; demoting before it can expire");
            }
        }
        elector.settle();
    }
    // Stop acting first, then let the Lease go.
    elector.judge().stop();
    elector.settle();
    let _ = holder.await;
    let _ = witness.await;
}

/// Runs kube-lease-manager: build (retrying while the API server is unreachable), then
/// forward its "holds the Lease" flag until cancelled, then release.
async fn hold_lease(
    client: kube::Client,
    cfg: LeaderElection,
    params: LeaseParams,
    timing: Timing,
    events: mpsc::Sender<Event>,
    cancel: CancellationToken,
) {
    let mut delays = crate::backoff::exponential(timing.renew_period, Duration::from_secs(30)).build();
    let manager = loop {
        let build = LeaseManagerBuilder::new(client.clone(), &cfg.lease)
            .with_namespace(&cfg.namespace)
            .with_parameters(params.clone())
            .build();
        let built = tokio::select! {
            _ = cancel.cancelled() => return,
            built = build => built,
        };
        match built {
            Ok(manager) => break manager,
            Err(e) => {
                let delay = delays.next().unwrap_or(timing.renew_period);
                warn!(error = %e, lease = %cfg.lease, namespace = %cfg.namespace, retry_in = ?delay, "leader election: cannot open the Lease");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    };
    let (mut holds, task) = manager.watch().await;
    loop {
        let now = *holds.borrow_and_update();
        if events.send(Event::Holds(now)).await.is_err() {
            break;
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            changed = holds.changed() => if changed.is_err() { break },
        }
    }
    // Whatever ended the loop, we no longer know that we hold the Lease.
    let _ = events.try_send(Event::Holds(false));
    // Dropping the receiver makes the crate release the Lease and return.
    drop(holds);
    let abort = task.abort_handle();
    match tokio::time::timeout(RELEASE_BUDGET, task).await {
        Ok(Ok(Ok(_))) => debug!("leader election: Lease released"),
        Ok(Ok(Err(e))) => warn!(error = %e, "leader election: releasing the Lease failed; it will expire"),
        Ok(Err(e)) => warn!(error = %e, "leader election: lease task failed"),
        Err(_) => {
            abort.abort();
            warn!("leader election: releasing the Lease timed out; it will expire");
        }
    }
}

/// Reads the Lease every `poll` (and when poked): the only way to learn that a renewal
/// actually reached the API server.
async fn witness(
    api: Api<Lease>,
    name: String,
    timing: Timing,
    events: mpsc::Sender<Event>,
    poke: Arc<Notify>,
    cancel: CancellationToken,
) {
    let mut failing = false;
    loop {
        let read = tokio::select! {
            _ = cancel.cancelled() => return,
            read = tokio::time::timeout(timing.poll, api.get_opt(&name)) => read,
        };
        match read {
            Ok(Ok(lease)) => {
                if failing {
                    info!(lease = %name, "leader election: Lease readable again");
                    failing = false;
                }
                if events.send(Event::Read(lease.as_ref().map(view))).await.is_err() {
                    return;
                }
            }
            Ok(Err(e)) => {
                if !failing {
                    warn!(error = %e, lease = %name, "leader election: cannot read the Lease");
                }
                failing = true;
            }
            Err(_) => {
                if !failing {
                    warn!(lease = %name, timeout = ?timing.poll, "leader election: reading the Lease timed out");
                }
                failing = true;
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(timing.poll) => {}
            _ = poke.notified() => {}
        }
    }
}

fn view(lease: &Lease) -> LeaseView {
    let spec = lease.spec.as_ref();
    let holder = spec.and_then(|s| s.holder_identity.clone());
    let expires = spec.and_then(|s| {
        let renewed = s.renew_time.as_ref()?;
        let seconds = u64::try_from(s.lease_duration_seconds?).ok()?;
        let nanos = u64::try_from(renewed.0.as_nanosecond()).ok()?;
        Some(SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos) + Duration::from_secs(seconds))
    });
    LeaseView { holder, expires }
}
