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

use crate::actuate::{Actuator, DryRunLine};
use crate::config::{Config, Group, Target};
use crate::gnmi::set::SetError;
use crate::gnmi::source::{SourceOptions, spawn_source};
use crate::leader::{Elector, Role};
use crate::model::{AdminState, Scalar, SetIntent, SourceEvent, TargetName};
use crate::policy::{self, GroupMemory, Health, Verdict};
use crate::state::{State, TargetView};
use crate::status::{self, Board, GroupEval, Override, SetResult};

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
    /// Where the loop records what it sees and does, for /status and /metrics.
    pub board: Option<Board>,
    /// With leader election: Sets (and dry-run lines) only while this replica holds the
    /// Lease, checked at the moment of each Set. Without: always acts.
    pub leader: Option<Elector>,
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
            board: None,
            leader: None,
        }
    }
}

/// What the loop did, for people and tests. Sent only when an observer is attached.
#[derive(Clone, Debug)]
pub enum LoopEvent {
    /// A group's verdict changed (health, desired state or reason).
    Verdict {
        group: String,
        health: Health,
        desired: Option<AdminState>,
        reason: String,
        at: Instant,
    },
    /// A Set (or dry-run line) was handed to the actuator.
    SetStarted {
        intent: SetIntent,
        at: Instant,
    },
    /// The actuator answered.
    SetFinished {
        intent: SetIntent,
        result: Result<(), String>,
        started: Instant,
        at: Instant,
    },
    /// A target's data became evidence, or stopped being.
    TargetSynced {
        target: TargetName,
        at: Instant,
    },
    TargetStale {
        target: TargetName,
        error: String,
        at: Instant,
    },
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
    /// The paths this group's decisions read (shown as its last input); fixed by the config.
    inputs: Vec<String>,
    memory: GroupMemory,
    last: Option<(Health, Option<AdminState>, String)>,
    wake_at: Option<Instant>,
}

struct TargetRuntime {
    name: TargetName,
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
    for (name, t) in &lp.targets {
        let paths = crate::plan::subscriptions(&config, name);
        if paths.is_empty() {
            continue;
        }
        let source =
            spawn_source(t.spec.clone(), paths, events_tx.clone(), lp.opts.source.clone(), sources_cancel.clone());
        sources.push(source);
    }
    drop(events_tx);

    let mut role = lp.opts.leader.as_ref().map(Elector::subscribe);
    lp.role_changed(role.as_ref().map(|r| *r.borrow()));
    let mut heartbeat = tokio::time::interval(Duration::from_secs(1));
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
            _ = heartbeat.tick() => lp.on_heartbeat(&done_tx),
            Some(now_role) = role_change(&mut role) => {
                lp.role_changed(Some(now_role));
                // A new leader trusts nothing it did not see: re-decide everything from
                // the devices' current state, and act only on what is still wrong.
                if now_role == Role::Leader {
                    lp.evaluate_all(&done_tx);
                }
            }
        }
    }

    info!("shutting down: stopping subscriptions");
    sources_cancel.cancel();
    let grace = tokio::time::sleep(lp.opts.shutdown_grace);
    tokio::pin!(grace);
    while lp.targets.values().any(|t| t.in_flight) {
        tokio::select! {
            Some(done) = done_rx.recv() => lp.finish(done),
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

/// The next role change; pending forever without leader election (or once it has stopped).
async fn role_change(rx: &mut Option<tokio::sync::watch::Receiver<Role>>) -> Option<Role> {
    match rx {
        Some(r) => match r.changed().await {
            Ok(()) => Some(*r.borrow_and_update()),
            Err(_) => {
                *rx = None;
                None
            }
        },
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

struct Loop {
    opts: RunOptions,
    override_file: Option<std::path::PathBuf>,
    state: State,
    groups: Vec<GroupRuntime>,
    targets: BTreeMap<String, TargetRuntime>,
    /// Dry-run only: what was already printed per target and path, so a line is not printed
    /// again while nothing changed. Kept apart from `state`, which holds only what devices
    /// report (status shows the device's real admin-state, not the one we would set).
    printed: HashMap<String, HashMap<String, AdminState>>,
}

impl Loop {
    fn new(config: &Config, opts: RunOptions) -> Self {
        let mut targets: BTreeMap<String, TargetRuntime> = config
            .targets
            .iter()
            .map(|(name, t)| {
                let rt = TargetRuntime {
                    name: TargetName::from(name.as_str()),
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
            let inputs = crate::plan::group_subscriptions(spec);
            groups.push(GroupRuntime {
                spec: spec.clone(),
                inputs,
                memory: GroupMemory::default(),
                last: None,
                wake_at: None,
            });
        }
        let printed = HashMap::new();
        Loop { opts, override_file: config.override_file.clone(), state: State::new(), groups, targets, printed }
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

    fn on_heartbeat(&mut self, done_tx: &mpsc::UnboundedSender<SetDone>) {
        if let Some(board) = &self.opts.board {
            board.heartbeat(Instant::now());
            if let Some(elector) = &self.opts.leader {
                let s = elector.status();
                board.set_leader_election(Some(status::LeaderElectionStatus {
                    lease: s.lease.unwrap_or_default(),
                    identity: s.identity,
                    holder: s.holder,
                    role_since: status::rfc3339(s.since),
                }));
            }
        }
        // The override file is an operator's hand on the switch: notice its removal (or a
        // newly suspended group) within a second even when the fabric is quiet.
        if self.override_file.is_some() {
            self.evaluate_all(done_tx);
        }
    }

    fn evaluate_all(&mut self, done_tx: &mpsc::UnboundedSender<SetDone>) {
        let now = Instant::now();
        let ov = self.read_override();
        let names: Vec<TargetName> = self.targets.values().map(|t| t.name.clone()).collect();
        for target in names {
            self.evaluate_target(&target, now, None, &ov, done_tx);
        }
    }

    fn role_changed(&self, role: Option<Role>) {
        let shown = match role {
            None => status::Role::Single,
            Some(Role::Leader) => status::Role::Leader,
            Some(Role::Standby) => status::Role::Standby,
        };
        info!(role = shown.as_str(), "role changed");
        if let Some(board) = &self.opts.board {
            board.set_role(shown);
        }
    }

    /// May this replica act right now? Asked at the moment of each Set.
    fn acting(&self) -> bool {
        self.opts.leader.as_ref().is_none_or(Elector::is_leader_now)
    }

    fn on_source_event(&mut self, ev: SourceEvent, done_tx: &mpsc::UnboundedSender<SetDone>) {
        if let Some(board) = &self.opts.board {
            board.source_event(&ev);
        }
        let (target, trigger) = match &ev {
            SourceEvent::Connecting { .. } => return,
            SourceEvent::Notification { target, received, .. } => (target.clone(), Some(*received)),
            SourceEvent::Synced { target, at } => {
                info!(target = %target, "synced: data is evidence from now on");
                // Open the Set channel now rather than at the first failover (measured by
                // opergroupd-bench: a cold first Set costs a TCP and HTTP/2 handshake).
                if let Some(t) = self.targets.get(target.as_ref())
                    && t.groups.iter().any(|&g| self.groups[g].spec.enforce)
                {
                    self.opts.actuator.warm(&t.spec);
                }
                self.observe(LoopEvent::TargetSynced { target: target.clone(), at: *at });
                (target.clone(), None)
            }
            SourceEvent::Stale { target, at, error } => {
                warn!(target = %target, error = %error, "stale: holding every group of this target");
                self.observe(LoopEvent::TargetStale { target: target.clone(), error: error.clone(), at: *at });
                (target.clone(), None)
            }
        };
        self.forget_printed(&ev);
        self.state.apply(&ev);
        // Before sync the dump is incomplete: evaluating would only say "unknown" again.
        if self.state.target(&target).synced() || matches!(ev, SourceEvent::Stale { .. }) {
            let ov = self.read_override();
            self.evaluate_target(&target, Instant::now(), trigger, &ov, done_tx);
        }
    }

    /// Dry-run: what the device now reports about a path replaces what was printed for it,
    /// and a stale target forgets everything (after re-sync the line is printed again).
    fn forget_printed(&mut self, ev: &SourceEvent) {
        match ev {
            SourceEvent::Notification { target, updates, deletes, .. } => {
                if let Some(p) = self.printed.get_mut(target.as_ref()) {
                    for path in updates.iter().map(|(p, _)| p).chain(deletes) {
                        p.retain(|printed, _| !printed.starts_with(path.as_str()));
                    }
                }
            }
            SourceEvent::Stale { target, .. } => {
                self.printed.remove(target.as_ref());
            }
            SourceEvent::Synced { .. } | SourceEvent::Connecting { .. } => {}
        }
    }

    fn on_timer(&mut self, done_tx: &mpsc::UnboundedSender<SetDone>) {
        let now = Instant::now();
        let due: Vec<TargetName> = self
            .targets
            .values()
            .filter(|t| {
                t.retry.not_before().is_some_and(|at| at <= now)
                    || t.groups.iter().any(|&g| self.groups[g].wake_at.is_some_and(|at| at <= now))
            })
            .map(|t| t.name.clone())
            .collect();
        if due.is_empty() {
            return;
        }
        let ov = self.read_override();
        for target in due {
            if let Some(t) = self.targets.get_mut(target.as_ref()) {
                t.retry.clear_deadline();
            }
            self.evaluate_target(&target, now, None, &ov, done_tx);
        }
    }

    fn on_set_done(&mut self, done: SetDone, done_tx: &mpsc::UnboundedSender<SetDone>) {
        let target = done.intent.target.clone();
        self.finish(done);
        // Whatever happened, decide again from what is known now.
        let ov = self.read_override();
        self.evaluate_target(&target, Instant::now(), None, &ov, done_tx);
    }

    fn finish(&mut self, done: SetDone) {
        let now = Instant::now();
        let SetDone { intent, started, result } = done;
        let Some(t) = self.targets.get_mut(intent.target.as_ref()) else { return };
        t.in_flight = false;
        let latency_ms = now.duration_since(started).as_secs_f64() * 1e3;
        let outcome = match &result {
            Ok(()) => {
                t.retry.succeeded();
                info!(target = %intent.target, group = %intent.group, latency_ms, "set acknowledged");
                if self.opts.actuator.is_dry_run() {
                    let printed = self.printed.entry(intent.target.to_string()).or_default();
                    printed.extend(intent.changes.iter().cloned());
                    SetResult::DryRun
                } else {
                    // The device accepted it: count it as observed until the stream says
                    // otherwise, so the next evaluation does not send it again.
                    self.state.apply(&SourceEvent::Notification {
                        target: intent.target.clone(),
                        received: now,
                        device_ns: 0,
                        updates: intent
                            .changes
                            .iter()
                            .map(|(p, v)| (p.clone(), Scalar::Str(v.as_str().into())))
                            .collect(),
                        deletes: Vec::new(),
                    });
                    SetResult::Ok
                }
            }
            Err(e) => {
                let wait = t.retry.failed(now);
                warn!(target = %intent.target, group = %intent.group, error = %e, retry_in_ms = wait.as_millis() as u64,
                      "set failed; will re-evaluate from fresh state before trying again");
                if let Some(board) = &self.opts.board {
                    board.set_retry(&intent.group);
                }
                SetResult::Failed(e.to_string())
            }
        };
        if let Some(board) = &self.opts.board {
            board.set_finished(&intent.group, outcome, now);
        }
        self.observe(LoopEvent::SetFinished { intent, result: result.map_err(|e| e.to_string()), started, at: now });
    }

    /// The override file as it is now: read once per loop turn, shared by every target
    /// that turn evaluates, so a change takes effect at the next evaluation.
    fn read_override(&self) -> Override {
        let ov = match &self.override_file {
            Some(path) => status::read_override(path),
            None => Override::None,
        };
        let changed = match &self.opts.board {
            Some(board) => board.override_seen(&ov),
            None => false,
        };
        if changed {
            let groups = match &ov {
                Override::Groups(g) => Some(g.iter().cloned().collect::<Vec<_>>().join(",")),
                Override::None | Override::All => None,
            };
            info!(suspends = ov.as_str(), groups = groups.as_deref(), "override file");
        }
        ov
    }

    fn evaluate_target(
        &mut self,
        target: &TargetName,
        now: Instant,
        trigger: Option<Instant>,
        ov: &Override,
        done_tx: &mpsc::UnboundedSender<SetDone>,
    ) {
        let Some(t) = self.targets.get(target.as_ref()) else { return };
        for g in t.groups.clone() {
            self.evaluate_group(g, now, trigger, ov, done_tx);
        }
    }

    fn evaluate_group(
        &mut self,
        g: usize,
        now: Instant,
        trigger: Option<Instant>,
        ov: &Override,
        done_tx: &mpsc::UnboundedSender<SetDone>,
    ) {
        let group = &self.groups[g];
        let view = self.state.target(&group.spec.target);
        let _span = info_span!("group", group = %group.spec.name, target = %group.spec.target).entered();
        let verdict: Verdict = policy::evaluate(&group.spec, &view, &group.memory, now);
        let suspended = ov.suspends(&group.spec.name);
        // A standby decides like the leader (for status) but never counts or makes a Set.
        let intent = if suspended || !self.acting() {
            None
        } else if self.opts.actuator.is_dry_run() {
            // Decide as if every printed line had been applied: the device itself is untouched.
            let printed = self.printed.get(group.spec.target.as_str());
            let as_if = |path: &str| printed.and_then(|p| p.get(path).copied());
            policy::intent_as_if(&group.spec, &verdict, &view, as_if)
        } else {
            policy::intent(&group.spec, &verdict, &view)
        };
        if let Some(board) = &self.opts.board {
            board.group_evaluated(
                &group.spec.name,
                group_eval(group, &verdict, &view, suspended, intent.is_some(), trigger, now),
            );
        }

        let summary = (verdict.health, verdict.desired, verdict.reason.clone());
        let changed = group.last.as_ref() != Some(&summary);
        let group = &mut self.groups[g];
        group.memory = verdict.memory;
        group.wake_at = verdict.wake_at;
        if changed {
            // Field names are documented in doc/operating.md ("Logs"): collectors index them.
            info!(decision = verdict.desired.map_or("hold", AdminState::as_str), health = verdict.health.as_str(),
                  reason = %verdict.reason, uplinks_up = verdict.uplinks_up, uplinks = verdict.uplinks_total,
                  required_up = group.spec.required_up, bgp_established = verdict.established,
                  evpn_routes = verdict.evpn_routes, enforcement = status::Enforcement::of(group.spec.enforce, suspended).as_str(),
                  "decision");
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

        let Some(intent) = intent else { return };
        let Some(t) = self.targets.get_mut(intent.target.as_ref()) else { return };
        if t.in_flight || t.retry.not_before().is_some_and(|at| at > now) {
            debug!("set deferred: one already on the wire or backing off");
            return;
        }
        t.in_flight = true;
        let target = t.spec.clone();
        let actuator = self.opts.actuator.clone();
        let tx = done_tx.clone();
        info!(changes = ?intent.changes, reason = %intent.reason, "set");
        if let Some(board) = &self.opts.board {
            let line = DryRunLine::from_intent(&intent)
                .iter()
                .map(|l| serde_json::to_string(l).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n");
            board.set_started(&intent.group, line, now);
        }
        self.observe(LoopEvent::SetStarted { intent: intent.clone(), at: now });
        tokio::spawn(async move {
            let started = Instant::now();
            let result = actuator.apply(&target, &intent).await;
            let _ = tx.send(SetDone { intent, started, result });
        });
    }
}

/// What /status shows of one evaluation.
fn group_eval(
    group: &GroupRuntime,
    verdict: &Verdict,
    view: &TargetView<'_>,
    suspended: bool,
    decided: bool,
    trigger: Option<Instant>,
    now: Instant,
) -> GroupEval {
    let observed = |ifname: &str| {
        view.get(&crate::paths::admin_state(ifname)).and_then(|v| v.as_enum()).and_then(AdminState::parse)
    };
    let spec = &group.spec;
    let downlinks = spec
        .downlinks
        .iter()
        .map(|d| status::DownlinkEval { name: d.clone(), desired: verdict.desired, observed: observed(d) })
        .collect();
    let inputs = group
        .inputs
        .iter()
        .map(|path| {
            let entry = view.entry(path);
            let (value, received) = (entry.map(|e| e.value.to_string()), entry.map(|e| e.received));
            status::InputValue { value, received, path: path.clone() }
        })
        .collect();
    let pending = verdict.wake_at.map(|fires_at| status::Pending {
        action: if verdict.health == Health::Unhealthy { AdminState::Disable } else { AdminState::Enable },
        fires_at,
    });
    GroupEval {
        at: now,
        health: verdict.health,
        reason: verdict.reason.clone(),
        enforcement: status::Enforcement::of(spec.enforce, suspended),
        downlinks,
        pending,
        inputs,
        decided,
        trigger,
    }
}
