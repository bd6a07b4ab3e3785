//! The loop that wires sources -> state -> policy -> actuators.
//!
//! One task owns the state and every group's timers; sources and Set tasks only send
//! messages into it, so there are no locks and no shared mutable state. Every Set is
//! decided from synced, fresh data; a failed Set is never retried as such: the target is
//! re-evaluated after a backoff, from the state at that moment, so a retry can never
//! enforce a decision that stopped being right.

mod retry;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, info_span, warn};

use crate::actuate::Actuator;
use crate::config::{Config, Group, Target};
use crate::gnmi::set::SetError;
use crate::gnmi::source::{spawn_source, SourceOptions};
use crate::model::{AdminState, SetIntent, SourceEvent, TargetName};
use crate::policy::{self, GroupMemory, Health, Verdict};
use crate::state::State;

use retry::Retry;

/// Everything `run` needs besides the config.
#[derive(Clone)]
pub struct RunOptions {
    pub actuator: Actuator,
    pub source: SourceOptions,
    /// Backoff between re-evaluations after a failed Set.
    pub set_backoff_min: Duration,
    pub set_backoff_max: Duration,
    /// How long shutdown waits for Sets already on the wire.
    pub shutdown_grace: Duration,
    /// Optional tap on what the loop does (demo narration, tests waiting on conditions).
    pub observer: Option<mpsc::UnboundedSender<LoopEvent>>,
}

impl RunOptions {
    pub fn new(actuator: Actuator) -> Self {
        RunOptions {
            actuator,
            source: SourceOptions::default(),
            set_backoff_min: Duration::from_millis(200),
            set_backoff_max: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(3),
            observer: None,
        }
    }
}

/// What the loop did, for people and tests. Sent only when an observer is attached.
#[derive(Clone, Debug)]
pub enum LoopEvent {
    /// A group's verdict changed (health, desired state or reason).
    Verdict { group: String, health: Health, desired: Option<AdminState>, reason: String, at: Instant },
    /// A Set (or dry-run line) was handed to the actuator.
    SetStarted { intent: SetIntent, at: Instant },
    /// The actuator answered.
    SetFinished { intent: SetIntent, result: Result<(), String>, started: Instant, at: Instant },
    /// A target's data became evidence, or stopped being.
    TargetSynced { target: TargetName, at: Instant },
    TargetStale { target: TargetName, error: String, at: Instant },
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the controller loop lost its event channel")]
    ChannelClosed,
}

/// A Set task's answer to the loop.
struct SetDone {
    intent: SetIntent,
    started: Instant,
    result: Result<(), SetError>,
}

struct GroupRuntime {
    spec: Group,
    memory: GroupMemory,
    last: Option<(Health, Option<AdminState>, String)>,
    wake_at: Option<Instant>,
}

struct TargetRuntime {
    spec: Arc<Target>,
    groups: Vec<usize>,
    /// At most one Set on the wire per target; the next decision waits for its answer.
    in_flight: bool,
    retry: Retry,
}

/// Run until `cancel` fires. Returns after sources stopped and in-flight Sets finished
/// or the grace period passed.
pub async fn run(config: Config, opts: RunOptions, cancel: CancellationToken) -> Result<(), RunError> {
    let (events_tx, mut events_rx) = mpsc::channel::<SourceEvent>(4096);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<SetDone>();
    let sources_cancel = cancel.child_token();

    let mut lp = Loop::new(&config, opts);
    let mut sources = Vec::new();
    for (name, paths) in crate::plan::subscriptions(&config) {
        let target = lp.targets[name.as_str()].spec.clone();
        sources.push(spawn_source(target, paths, events_tx.clone(), lp.opts.source.clone(), sources_cancel.clone()));
    }
    drop(events_tx);

    loop {
        let wake = lp.next_wake();
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            Some(done) = done_rx.recv() => lp.on_set_done(done, &done_tx),
            ev = events_rx.recv() => match ev {
                Some(ev) => lp.on_source_event(ev, &done_tx),
                None => return Err(RunError::ChannelClosed),
            },
            _ = sleep_until(wake) => lp.on_timer(&done_tx),
        }
    }

    info!("shutting down: stopping subscriptions");
    sources_cancel.cancel();
    let grace = tokio::time::sleep(lp.opts.shutdown_grace);
    tokio::pin!(grace);
    while lp.targets.values().any(|t| t.in_flight) {
        tokio::select! {
            Some(done) = done_rx.recv() => lp.finish_without_follow_up(done),
            _ = &mut grace => {
                warn!("shutdown: abandoning Sets still unanswered after the grace period");
                break;
            }
        }
    }
    for s in sources {
        let _ = tokio::time::timeout(Duration::from_secs(1), s).await;
    }
    Ok(())
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

struct Loop {
    opts: RunOptions,
    state: State,
    groups: Vec<GroupRuntime>,
    targets: BTreeMap<String, TargetRuntime>,
    names: HashMap<String, TargetName>,
}

impl Loop {
    fn new(config: &Config, opts: RunOptions) -> Self {
        let mut targets: BTreeMap<String, TargetRuntime> = config
            .targets
            .iter()
            .map(|(name, t)| {
                let rt = TargetRuntime {
                    spec: Arc::new(t.clone()),
                    groups: Vec::new(),
                    in_flight: false,
                    retry: Retry::new(opts.set_backoff_min, opts.set_backoff_max),
                };
                (name.clone(), rt)
            })
            .collect();
        let mut groups = Vec::new();
        for spec in config.groups.values() {
            if let Some(t) = targets.get_mut(&spec.target) {
                t.groups.push(groups.len());
            }
            groups.push(GroupRuntime { spec: spec.clone(), memory: GroupMemory::default(), last: None, wake_at: None });
        }
        let names = config.targets.keys().map(|n| (n.clone(), TargetName::from(n.as_str()))).collect();
        Loop { opts, state: State::default(), groups, targets, names }
    }

    fn next_wake(&self) -> Option<Instant> {
        let timers = self.groups.iter().filter_map(|g| g.wake_at);
        let retries = self.targets.values().filter_map(|t| t.retry.not_before());
        timers.chain(retries).min()
    }

    fn observe(&self, ev: LoopEvent) {
        if let Some(tx) = &self.opts.observer {
            let _ = tx.send(ev);
        }
    }

    fn on_source_event(&mut self, ev: SourceEvent, done_tx: &mpsc::UnboundedSender<SetDone>) {
        let target = match &ev {
            SourceEvent::Notification { target, .. } => target.clone(),
            SourceEvent::Synced { target, at } => {
                info!(target = %target, "synced: data is evidence from now on");
                self.observe(LoopEvent::TargetSynced { target: target.clone(), at: *at });
                target.clone()
            }
            SourceEvent::Stale { target, at, error } => {
                warn!(target = %target, error = %error, "stale: holding every group of this target");
                self.observe(LoopEvent::TargetStale { target: target.clone(), error: error.clone(), at: *at });
                target.clone()
            }
        };
        self.state.apply(&ev);
        // Before sync the dump is incomplete: evaluating would only say "unknown".
        if self.state.view(&target).synced() || matches!(ev, SourceEvent::Stale { .. }) {
            self.evaluate_target(&target, Instant::now(), done_tx);
        }
    }

    fn on_timer(&mut self, done_tx: &mpsc::UnboundedSender<SetDone>) {
        let now = Instant::now();
        let due: Vec<String> = self
            .targets
            .iter()
            .filter(|(_, t)| {
                t.retry.not_before().is_some_and(|at| at <= now)
                    || t.groups.iter().any(|&g| self.groups[g].wake_at.is_some_and(|at| at <= now))
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in due {
            if let Some(t) = self.targets.get_mut(&name) {
                t.retry.clear_deadline();
            }
            let target = self.names[&name].clone();
            self.evaluate_target(&target, now, done_tx);
        }
    }

    fn on_set_done(&mut self, done: SetDone, done_tx: &mpsc::UnboundedSender<SetDone>) {
        let target = done.intent.target.clone();
        self.finish_without_follow_up(done);
        // Whatever happened, decide again from what is known now.
        self.evaluate_target(&target, Instant::now(), done_tx);
    }

    fn finish_without_follow_up(&mut self, done: SetDone) {
        let now = Instant::now();
        let SetDone { intent, started, result } = done;
        let Some(t) = self.targets.get_mut(intent.target.as_ref()) else { return };
        t.in_flight = false;
        let latency_ms = now.duration_since(started).as_secs_f64() * 1e3;
        match &result {
            Ok(()) => {
                t.retry.succeeded();
                info!(target = %intent.target, group = %intent.group, latency_ms, "set acknowledged");
                // The device accepted it: count it as observed until the stream says otherwise,
                // so the next evaluation does not send it again.
                self.state.apply(&SourceEvent::Notification {
                    target: intent.target.clone(),
                    received: now,
                    device_ns: 0,
                    updates: intent.changes.iter().map(|(p, v)| (p.clone(), crate::model::Scalar::Str(v.as_str().into()))).collect(),
                    deletes: Vec::new(),
                });
            }
            Err(e) => {
                let wait = t.retry.failed(now);
                warn!(target = %intent.target, group = %intent.group, error = %e, retry_in_ms = wait.as_millis() as u64,
                      "set failed; will re-evaluate from fresh state before trying again");
            }
        }
        self.observe(LoopEvent::SetFinished { intent, result: result.map_err(|e| e.to_string()), started, at: now });
    }

    fn evaluate_target(&mut self, target: &TargetName, now: Instant, done_tx: &mpsc::UnboundedSender<SetDone>) {
        let Some(t) = self.targets.get(target.as_ref()) else { return };
        let group_ids = t.groups.clone();
        for g in group_ids {
            self.evaluate_group(g, now, done_tx);
        }
    }

    fn evaluate_group(&mut self, g: usize, now: Instant, done_tx: &mpsc::UnboundedSender<SetDone>) {
        let view = self.state.view(&self.groups[g].spec.target);
        let group = &mut self.groups[g];
        let _span = info_span!("group", group = %group.spec.name, target = %group.spec.target).entered();
        let verdict: Verdict = policy::evaluate(&group.spec, &view, &group.memory, now);
        group.memory = verdict.memory.clone();
        group.wake_at = verdict.wake_at;

        let summary = (verdict.health, verdict.desired, verdict.reason.clone());
        if group.last.as_ref() != Some(&summary) {
            info!(health = ?verdict.health, desired = ?verdict.desired.map(AdminState::as_str), reason = %verdict.reason, "decision");
            group.last = Some(summary);
            let ev = LoopEvent::Verdict {
                group: group.spec.name.clone(),
                health: verdict.health,
                desired: verdict.desired,
                reason: verdict.reason.clone(),
                at: now,
            };
            self.observe(ev);
        }

        let group = &self.groups[g];
        let Some(desired) = verdict.desired else { return };
        if !group.spec.enforce {
            return;
        }
        let changes = policy::changes(&group.spec, desired, &view);
        if changes.is_empty() {
            return;
        }
        let target_name = group.spec.target.clone();
        let Some(t) = self.targets.get_mut(&target_name) else { return };
        if t.in_flight || t.retry.not_before().is_some_and(|at| at > now) {
            debug!("set deferred: one already on the wire or backing off");
            return;
        }
        let intent = SetIntent {
            target: self.names[&target_name].clone(),
            group: group.spec.name.clone(),
            changes,
            reason: verdict.reason,
        };
        t.in_flight = true;
        let target = t.spec.clone();
        let actuator = self.opts.actuator.clone();
        let tx = done_tx.clone();
        info!(changes = ?intent.changes, "set");
        self.observe(LoopEvent::SetStarted { intent: intent.clone(), at: now });
        tokio::spawn(async move {
            let started = Instant::now();
            let result = actuator.apply(&target, &intent).await;
            let _ = tx.send(SetDone { intent, started, result });
        });
    }
}
