//! `opergroupd exabgp`: run as an ExaBGP `process`, probe services, announce/withdraw.
//!
//! Tasks: one probe task per service (checks on its own timer, the pure state machine in
//! `crate::service`, publishes its status and its desired route), one reader task that
//! reads ExaBGP's stdin continuously (so ACKs never fill the pipe), and the session loop
//! that owns stdout and the bookkeeping in `session`.
//!
//! Entry points:
//! * [`run_on_stdio`] — the actuator on this process's stdin/stdout (see `crate::app::exabgp`).
//! * [`run_exabgp`] — real stdin/stdout and SIGTERM/SIGINT, for an already loaded config.
//! * [`Exabgp::new`] + [`Exabgp::handle`] + [`Exabgp::run`] — the same with any reader,
//!   writer and shutdown future, and a [`Handle`] for /status, /metrics and group health.

pub mod protocol;
pub mod session;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::config::services::Service;
use crate::probe;
use crate::service::{self, Desired, Input, State};
use protocol::Incoming;
use session::{AckOutcome, Session};

/// Runtime options of the ExaBGP actuator.
#[derive(Clone, Debug)]
pub struct Options {
    /// ExaBGP acknowledges every command (`exabgp.api.ack`, on by default). When false,
    /// a written command counts as applied.
    pub ack: bool,
    /// How long an ACK may take before the session is reported unresponsive.
    pub ack_timeout: Duration,
    /// Cap of the retry backoff after `error`.
    pub retry_max: Duration,
    /// On SIGTERM, how long to wait for the withdraws to be acknowledged.
    pub shutdown_grace: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ack: true,
            ack_timeout: Duration::from_secs(5),
            retry_max: Duration::from_secs(30),
            // ExaBGP kills its processes about 2 s after SIGTERM; the contract allows 5 s.
            shutdown_grace: Duration::from_secs(3),
        }
    }
}

/// Why the run ended. Every variant is a clean exit (code 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// ExaBGP said `shutdown`: it is stopping and tears the sessions down itself.
    Shutdown,
    /// stdin closed (or stdout broke): ExaBGP is gone.
    Eof,
    /// SIGTERM/SIGINT (the shutdown future): what we announced was withdrawn first.
    Terminated,
}

#[derive(Debug, thiserror::Error)]
pub enum ExabgpError {
    #[error("writing to ExaBGP: {0}")]
    Write(std::io::Error),
    #[error("reading from ExaBGP: {0}")]
    Read(std::io::Error),
}

/// The state of one service, for /status and /metrics.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ServiceStatus {
    pub name: String,
    pub prefix: String,
    /// init | rising | up | falling | down | disabled
    pub state: service::Phase,
    /// Consecutive results in the current direction while rising/falling.
    pub consecutive: u32,
    /// The followed oper-group's health as last fed in (`None`: not followed or no verdict).
    pub group_healthy: Option<bool>,
    /// What should be in ExaBGP: "undecided", "withdrawn" or the announce command.
    pub desired: String,
    /// What ExaBGP acknowledged: "unknown", "withdrawn" or the announce command.
    pub in_place: String,
    /// Result of the last round of checks ("ok" or the first failure).
    pub last_check: Option<String>,
    pub checks_run: u64,
    pub checks_failed: u64,
    pub transitions: u64,
}

/// Counters of the ExaBGP session, for /status and /metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SessionStatus {
    pub commands_sent: u64,
    pub errors: u64,
    pub ack_timeouts: u64,
    /// An ACK is overdue right now.
    pub unresponsive: bool,
    pub neighbor_ups: u64,
}

#[derive(Clone, Debug)]
struct ProbeStatus {
    state: State,
    desired: Desired,
    group_healthy: Option<bool>,
    last_check: Option<String>,
    checks_run: u64,
    checks_failed: u64,
    transitions: u64,
}

/// Read side of a running actuator: status snapshots and the group-health input.
/// Cheap to clone.
#[derive(Clone)]
pub struct Handle {
    services: Arc<Vec<(Service, watch::Receiver<ProbeStatus>)>>,
    in_place: watch::Receiver<Vec<String>>,
    session: watch::Receiver<SessionStatus>,
    groups: Arc<watch::Sender<BTreeMap<String, bool>>>,
}

impl Handle {
    /// Per-service state, in configuration order.
    pub fn snapshot(&self) -> Vec<ServiceStatus> {
        let in_place = self.in_place.borrow().clone();
        self.services
            .iter()
            .enumerate()
            .map(|(i, (svc, rx))| {
                let p = rx.borrow().clone();
                ServiceStatus {
                    name: svc.name.clone(),
                    prefix: svc.prefix.to_string(),
                    state: p.state.phase,
                    consecutive: p.state.count,
                    group_healthy: p.group_healthy,
                    desired: match &p.desired {
                        Desired::Undecided => "undecided".into(),
                        Desired::Withdrawn => "withdrawn".into(),
                        Desired::Announced(r) => protocol::announce(r),
                    },
                    in_place: in_place.get(i).cloned().unwrap_or_else(|| "unknown".into()),
                    last_check: p.last_check,
                    checks_run: p.checks_run,
                    checks_failed: p.checks_failed,
                    transitions: p.transitions,
                }
            })
            .collect()
    }

    pub fn session(&self) -> SessionStatus {
        self.session.borrow().clone()
    }

    /// Feed an oper-group's health (the controller calls this on every group verdict).
    /// Services with `group: NAME` announce as up only while it is healthy; a group never
    /// fed has no effect.
    pub fn set_group_health(&self, group: &str, healthy: bool) {
        self.groups.send_modify(|g| {
            g.insert(group.to_string(), healthy);
        });
    }
}

/// A configured, not yet running actuator.
pub struct Exabgp {
    services: Vec<Service>,
    opts: Options,
    probe_tx: Vec<watch::Sender<ProbeStatus>>,
    in_place_tx: watch::Sender<Vec<String>>,
    session_tx: watch::Sender<SessionStatus>,
    handle: Handle,
}

impl Exabgp {
    pub fn new(services: Vec<Service>, opts: Options) -> Self {
        let (probe_tx, probe_rx): (Vec<_>, Vec<_>) = services
            .iter()
            .map(|_| {
                watch::channel(ProbeStatus {
                    state: State::INIT,
                    desired: Desired::Undecided,
                    group_healthy: None,
                    last_check: None,
                    checks_run: 0,
                    checks_failed: 0,
                    transitions: 0,
                })
            })
            .unzip();
        let (in_place_tx, in_place) = watch::channel(vec!["unknown".to_string(); services.len()]);
        let (session_tx, session) = watch::channel(SessionStatus::default());
        let (groups, _) = watch::channel(BTreeMap::new());
        let handle = Handle {
            services: Arc::new(services.iter().cloned().zip(probe_rx).collect()),
            in_place,
            session,
            groups: Arc::new(groups),
        };
        Exabgp { services, opts, probe_tx, in_place_tx, session_tx, handle }
    }

    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Run until ExaBGP says `shutdown`, closes stdin, or `shutdown` completes (then
    /// withdraw what we announced, waiting at most `shutdown_grace` for the ACKs).
    pub async fn run<R, W, F>(self, input: R, mut output: W, shutdown: F) -> Result<Exit, ExabgpError>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin,
        F: Future<Output = ()>,
    {
        let Exabgp { services, opts, probe_tx, in_place_tx, session_tx, handle } = self;
        let templates = services.iter().map(service::withdraw_template).collect();
        let mut session = Session::new(templates, opts.ack_timeout, opts.retry_max);
        let mut neighbor_ups = 0;

        // Reader: stdin is drained continuously, whatever the loop is doing.
        let (line_tx, mut lines) = mpsc::channel::<std::io::Result<Option<String>>>(64);
        let reader = tokio::spawn(async move {
            let mut input = BufReader::new(input).lines();
            loop {
                let next = input.next_line().await;
                let end = !matches!(next, Ok(Some(_)));
                if line_tx.send(next).await.is_err() || end {
                    return;
                }
            }
        });

        let (desired_tx, mut desired_rx) = mpsc::channel::<(usize, Desired)>(64);
        let mut probes = JoinSet::new();
        for (i, (svc, status)) in services.iter().cloned().zip(probe_tx).enumerate() {
            let groups = handle.groups.subscribe();
            probes.spawn(probe_loop(i, svc, desired_tx.clone(), status, groups));
        }
        drop(desired_tx);
        info!(services = services.len(), "exabgp actuator started");

        tokio::pin!(shutdown);
        let mut drain_deadline: Option<Instant> = None;
        let exit = loop {
            let wake = [session.next_wakeup().map(Instant::from_std), drain_deadline].into_iter().flatten().min();
            let sleep = async {
                match wake {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                line = lines.recv() => match line {
                    None | Some(Ok(None)) => break Ok(Exit::Eof),
                    Some(Err(e)) => break Err(ExabgpError::Read(e)),
                    Some(Ok(Some(line))) => match protocol::parse(&line) {
                        Incoming::Done | Incoming::Error if !opts.ack => {
                            debug!(%line, "acknowledgement while acks are assumed off");
                        }
                        Incoming::Done => log_ack(session.ack(true, std::time::Instant::now()), &services),
                        Incoming::Error => log_ack(session.ack(false, std::time::Instant::now()), &services),
                        Incoming::Shutdown => break Ok(Exit::Shutdown),
                        Incoming::NeighborUp(peer) => {
                            info!(%peer, "neighbor up: re-announcing everything announced");
                            neighbor_ups += 1;
                            session.neighbor_up();
                        }
                        Incoming::NeighborDown(peer) => info!(%peer, "neighbor down"),
                        Incoming::Other => debug!(%line, "ignored line from exabgp"),
                    },
                },
                Some((i, desired)) = desired_rx.recv() => session.set_desired(i, desired),
                () = &mut shutdown, if drain_deadline.is_none() => {
                    info!("terminating: withdrawing what was announced");
                    probes.abort_all();
                    session.drain();
                    drain_deadline = Some(Instant::now() + opts.shutdown_grace);
                }
                () = sleep => {}
            }
            let now = std::time::Instant::now();
            if let Some((slot, waited)) = session.check_ack_timeout(now) {
                warn!(service = %services[slot].name, ?waited,
                    "no ACK from exabgp yet; holding further commands (exabgp.api.ack off in exabgp.env? set it in the environment instead)");
            }
            while let Some(line) = session.next_command(now) {
                info!(command = %line, "to exabgp");
                match write_line(&mut output, &line).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                        warn!("exabgp closed our stdout");
                        reader.abort();
                        return Ok(Exit::Eof);
                    }
                    Err(e) => {
                        reader.abort();
                        return Err(ExabgpError::Write(e));
                    }
                }
                if !opts.ack {
                    session.assume_applied(now);
                }
            }
            in_place_tx.send_replace(
                (0..services.len()).map(|i| session.in_place(i).map(|p| p.describe()).unwrap_or_default()).collect(),
            );
            session_tx.send_replace(SessionStatus {
                commands_sent: session.commands_sent,
                errors: session.errors,
                ack_timeouts: session.ack_timeouts,
                unresponsive: session.unresponsive(),
                neighbor_ups,
            });
            if session.drained() {
                break Ok(Exit::Terminated);
            }
            if drain_deadline.is_some_and(|d| Instant::now() >= d) {
                warn!("exabgp did not acknowledge every withdraw in time; exiting anyway");
                break Ok(Exit::Terminated);
            }
        };
        probes.abort_all();
        reader.abort();
        info!(?exit, "exabgp actuator stopped");
        exit
    }
}

fn log_ack(outcome: AckOutcome, services: &[Service]) {
    match outcome {
        AckOutcome::Applied { slot } => debug!(service = %services[slot].name, "exabgp: done"),
        AckOutcome::Failed { slot, retry_in } => {
            error!(service = %services[slot].name, ?retry_in, "exabgp rejected the command; retrying")
        }
        AckOutcome::Unexpected => warn!("exabgp acknowledged a command we did not send"),
    }
}

async fn write_line<W: AsyncWrite + Unpin>(w: &mut W, line: &str) -> std::io::Result<()> {
    w.write_all(format!("{line}\n").as_bytes()).await?;
    w.flush().await
}

async fn probe_loop(
    slot: usize,
    svc: Service,
    desired_tx: mpsc::Sender<(usize, Desired)>,
    status: watch::Sender<ProbeStatus>,
    mut groups: watch::Receiver<BTreeMap<String, bool>>,
) {
    let group_of = |g: &BTreeMap<String, bool>| svc.group.as_ref().and_then(|name| g.get(name).copied());
    let mut state = State::INIT;
    let mut sent = Desired::Undecided;
    loop {
        let disabled = match &svc.disable_file {
            Some(p) => tokio::fs::try_exists(p).await.unwrap_or(false),
            None => false,
        };
        let input = if disabled {
            Input::Disabled
        } else {
            let report = probe::run_all(&svc.checks, svc.timeout).await;
            status.send_modify(|s| {
                s.checks_run += 1;
                s.checks_failed += u64::from(!report.healthy);
                s.last_check = Some(report.detail.clone());
            });
            if !report.healthy {
                debug!(service = %svc.name, detail = %report.detail, "check failed");
            }
            Input::Checked(report.healthy)
        };
        let group = group_of(&groups.borrow_and_update());
        let step = service::step(state, input, &svc, group);
        if step.state.phase != state.phase {
            let detail = status.borrow().last_check.clone().unwrap_or_default();
            info!(service = %svc.name, from = state.phase.as_str(), to = step.state.phase.as_str(), %detail, "state change");
            status.send_modify(|s| s.transitions += 1);
        }
        state = step.state;
        publish(slot, &step.desired, &mut sent, &desired_tx, &status, state, group).await;

        let sleep = tokio::time::sleep(step.next_check);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => break,
                changed = groups.changed() => {
                    if changed.is_err() {
                        (&mut sleep).await;
                        break;
                    }
                    let group = group_of(&groups.borrow_and_update());
                    let desired = service::desired(state, &svc, group);
                    publish(slot, &desired, &mut sent, &desired_tx, &status, state, group).await;
                }
            }
        }
    }
}

async fn publish(
    slot: usize,
    desired: &Desired,
    sent: &mut Desired,
    tx: &mpsc::Sender<(usize, Desired)>,
    status: &watch::Sender<ProbeStatus>,
    state: State,
    group: Option<bool>,
) {
    status.send_modify(|s| {
        s.state = state;
        s.desired = desired.clone();
        s.group_healthy = group;
    });
    if desired != sent {
        *sent = desired.clone();
        // The session loop outlives the probes; a closed channel means it is stopping.
        let _ = tx.send((slot, desired.clone())).await;
    }
}

/// Run with the process's stdin/stdout (as an ExaBGP `process`), until ExaBGP says
/// `shutdown`, closes stdin, or SIGTERM/SIGINT arrives (then withdraw first).
/// Run `ex` on this process's stdin/stdout until SIGTERM/SIGINT, `shutdown` or EOF.
pub async fn run_on_stdio(ex: Exabgp) -> Result<Exit, ExabgpError> {
    let shutdown = async {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                error!("cannot install signal handlers: {e}");
                std::future::pending::<()>().await
            }
        }
    };
    ex.run(tokio::io::stdin(), tokio::io::stdout(), shutdown).await
}

/// The services of a config file, validated by the one config loader.
pub fn load_services(path: &Path) -> Result<Vec<Service>, String> {
    let config = crate::config::load(path).map_err(|e| e.to_string())?;
    Ok(config.services.into_values().collect())
}

/// ExaBGP hands its environment to its processes, so `exabgp.api.ack=false` (or
/// `exabgp_api_ack=false`) set there is visible here. A setting made only in exabgp.env is
/// not: then ACKs are expected and their absence is reported as ACK timeouts.
pub fn acks_enabled(env: impl Fn(&str) -> Option<String>) -> bool {
    let value = env("exabgp.api.ack").or_else(|| env("exabgp_api_ack"));
    !matches!(value.as_deref().map(str::to_ascii_lowercase).as_deref(), Some("false" | "0" | "no" | "off"))
}

#[cfg(test)]
mod tests {
    use super::acks_enabled;

    #[test]
    fn ack_setting_is_read_from_exabgps_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        assert!(acks_enabled(env(&[])));
        assert!(acks_enabled(env(&[("exabgp.api.ack", "true")])));
        assert!(!acks_enabled(env(&[("exabgp.api.ack", "false")])));
        assert!(!acks_enabled(env(&[("exabgp_api_ack", "False")])));
        assert!(acks_enabled(env(&[("exabgp_api_ack", "1")])));
    }
}
