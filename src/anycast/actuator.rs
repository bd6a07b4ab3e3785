//! The session loop: owns ExaBGP's stdout, reads its answers through a reader task, and
//! turns the services' desired routes into one command at a time (`session`).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use super::config::Service;
use super::handle::{Handle, ProbeStatus, SessionStatus};
use super::machine::{self, Desired, State};
use super::protocol::{self, Incoming};
use super::service_task::probe_loop;
use super::session::{AckOutcome, Overdue, Session, Timing};
use super::{ExabgpError, Exit, Options};

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
                    group_enabled: None,
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
        let templates = services.iter().map(machine::withdraw_template).collect();
        let timing =
            Timing { ack_timeout: opts.ack_timeout, resend_after: opts.resend_after, retry_max: opts.retry_max };
        let mut session = Session::new(templates, timing);
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
            match session.check_ack_timeout(now) {
                Some(Overdue::Waiting { slot, waited }) => warn!(service = %services[slot].name, ?waited,
                    "no ACK from exabgp yet; holding further commands (exabgp.api.ack off in exabgp.env? set it in the environment instead)"),
                Some(Overdue::GivenUp { slot, waited }) => warn!(service = %services[slot].name, ?waited,
                    "no ACK from exabgp: taken as lost; sending this service's route again and going on"),
                None => {}
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
                lost_acks: session.lost_acks,
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
