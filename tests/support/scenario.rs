//! Scenario harness: fabric-sim in-process (real gNMI on loopback, ephemeral ports), the
//! controller against it configured from YAML through the real config parser, and waits on
//! conditions with deadlines. Nothing here sleeps and hopes: every wait is for an event, a
//! Set record or a fabric value, and fails with the history it saw.
#![allow(dead_code)] // each test binary uses a different part of it

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fabric_sim::{Applied, Control, Fabric, Fault, SessionState, SetOutcome, SetRecord, SimConfig, Timings};
use opergroupd::actuate::{Actuator, DryRunLine, DryRunSink, SET_TIMEOUT};
use opergroupd::controller::{self, LoopEvent, RunError, RunOptions};
use opergroupd::gnmi::connect::ConnectOptions;
use opergroupd::gnmi::{Setter, SourceOptions};
use opergroupd::model::{AdminState, SetIntent};
use opergroupd::policy::Health;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long any single expected thing may take. Generous: the machine is shared and loaded;
/// a passing test never waits this long.
pub const DEADLINE: Duration = Duration::from_secs(15);
pub const PASSWORD: &str = "NokiaSrl1!";
pub const DOWNLINK: &str = "ethernet-1/1";
pub const UP1: &str = "ethernet-1/49";
pub const UP2: &str = "ethernet-1/50";
pub const SPINES: [&str; 2] = fabric_sim::SPINE_LOOPBACKS;

pub fn group_of(leaf: &str) -> String {
    format!("{leaf}-es1")
}

pub fn downlink_path() -> String {
    opergroupd::srl_paths::admin_state(DOWNLINK)
}

/// A running simulated fabric.
pub struct Lab {
    pub fabric: Fabric,
    pub control: Control,
    t0: Instant,
    sim0: Applied,
}

impl Lab {
    pub async fn start(leaves: usize, timings: Timings) -> Lab {
        Lab::start_with(leaves, timings, "srl").await
    }

    /// A fabric whose leaves serve the given profiles (`openconfig`, `leaf1=srl,leaf2=openconfig`).
    pub async fn start_with(leaves: usize, timings: Timings, profiles: &str) -> Lab {
        let profiles = fabric_sim::Profiles::parse(profiles).expect("profiles");
        let cfg = SimConfig { leaves, base_port: 0, timings, profiles, ..SimConfig::default() };
        let fabric = fabric_sim::start(cfg).await.expect("fabric-sim starts");
        let control = fabric.control();
        let (t0, sim0) = (Instant::now(), control.now());
        Lab { fabric, control, t0, sim0 }
    }

    pub fn addr(&self, leaf: &str) -> SocketAddr {
        self.fabric.leaf_addr(leaf).unwrap_or_else(|| panic!("fabric has no {leaf}"))
    }

    /// Every leaf as a target with the right password.
    pub fn targets(&self) -> Vec<TargetSpec> {
        self.fabric.leaf_names().iter().map(|n| TargetSpec::new(n, self.addr(n))).collect()
    }

    /// A moment on the sim clock as an `Instant` of this process (same clock source, offset
    /// taken at start), to compare Set receive times with loop events.
    pub fn instant(&self, a: Applied) -> Instant {
        self.t0 + Duration::from_nanos(a.mono_ns.saturating_sub(self.sim0.mono_ns))
    }

    pub fn link(&self, leaf: &str, iface: &str, up: bool) -> Applied {
        self.control.link(leaf, iface, up).unwrap_or_else(|e| panic!("link {leaf} {iface}: {e}"))
    }

    /// Both uplinks of `leaf` down or up; returns when the second one changed.
    pub fn uplinks(&self, leaf: &str, up: bool) -> Applied {
        self.link(leaf, UP1, up);
        self.link(leaf, UP2, up)
    }

    pub fn fault(&self, leaf: &str, fault: Fault) -> Applied {
        self.control.fault(leaf, fault.clone()).unwrap_or_else(|e| panic!("fault {fault:?} on {leaf}: {e}"))
    }

    /// Pins both iBGP sessions of `leaf` (`None` hands them back to the model).
    pub fn pin_ibgp(&self, leaf: &str, state: Option<SessionState>) {
        for peer in SPINES {
            self.control.bgp_session(leaf, peer, state).unwrap_or_else(|e| panic!("bgp {leaf} {peer}: {e}"));
        }
    }

    pub fn admin(&self, leaf: &str) -> Option<String> {
        self.control.admin_state(leaf, DOWNLINK).expect("admin-state readable")
    }

    pub async fn wait_admin(&self, leaf: &str, want: &str) {
        let v = serde_json::Value::from(want);
        self.control.wait_for_value(leaf, &downlink_path(), &v, DEADLINE).await.unwrap_or_else(|e| panic!("{e}"));
    }

    pub async fn wait_ibgp(&self, leaf: &str, state: SessionState) {
        for peer in SPINES {
            let path = opergroupd::srl_paths::session_state("default", peer);
            let v = serde_json::Value::from(state.as_str());
            self.control.wait_for_value(leaf, &path, &v, DEADLINE).await.unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// Waits until at least `n` Sets were received (any outcome); returns them all.
    pub async fn sets(&self, n: usize) -> Vec<SetRecord> {
        self.control
            .wait_for_sets(n, DEADLINE)
            .await
            .unwrap_or_else(|e| panic!("{e}; sets: {:#?}", self.control.sets()))
    }

    pub async fn shutdown(self) {
        self.fabric.shutdown().await;
    }
}

/// A Set record as (node, path, value) triples, for comparisons.
pub fn triples(r: &SetRecord) -> Vec<(String, String, String)> {
    r.updates
        .iter()
        .chain(&r.replaces)
        .map(|u| (r.node.clone(), u.path.clone(), u.value.as_str().map_or_else(|| u.value.to_string(), str::to_string)))
        .collect()
}

pub fn accepted(sets: &[SetRecord]) -> Vec<&SetRecord> {
    sets.iter().filter(|r| r.outcome == SetOutcome::Accepted).collect()
}

/// One target in the YAML.
#[derive(Clone, Debug)]
pub struct TargetSpec {
    pub name: String,
    pub address: String,
    /// Overrides the default password.
    pub password: Option<String>,
}

impl TargetSpec {
    pub fn new(name: &str, addr: impl ToString) -> Self {
        TargetSpec { name: name.into(), address: addr.to_string(), password: None }
    }
}

/// One oper-group on a leaf of the reference fabric: uplinks ethernet-1/{49..50}, one
/// required, downlink ethernet-1/1.
#[derive(Clone, Debug)]
pub struct GroupSpec {
    pub target: String,
    pub readiness: bool,
    pub down_delay: Duration,
    pub up_delay: Duration,
}

impl GroupSpec {
    pub fn new(target: &str) -> Self {
        GroupSpec { target: target.into(), readiness: false, down_delay: Duration::ZERO, up_delay: Duration::ZERO }
    }
    pub fn readiness(mut self) -> Self {
        self.readiness = true;
        self
    }
    pub fn down_delay(mut self, d: Duration) -> Self {
        self.down_delay = d;
        self
    }
    pub fn up_delay(mut self, d: Duration) -> Self {
        self.up_delay = d;
        self
    }
}

/// The controller's config in the YAML a user writes (contract section 2).
pub fn config_yaml(targets: &[TargetSpec], groups: &[GroupSpec]) -> String {
    let mut y =
        format!("defaults:\n  username: admin\n  password: \"{PASSWORD}\"\n  tls: {{ insecure: true }}\ntargets:\n");
    for t in targets {
        let _ = write!(y, "  {}:\n    address: \"{}\"\n", t.name, t.address);
        if let Some(p) = &t.password {
            let _ = writeln!(y, "    password: \"{p}\"");
        }
    }
    y.push_str("groups:\n");
    for g in groups {
        let _ = write!(
            y,
            "  {}:\n    target: {}\n    uplinks: [\"ethernet-1/{{49..50}}\"]\n    required-up: 1\n    downlinks: [\"{DOWNLINK}\"]\n    down-delay: {}ms\n    up-delay: {}ms\n",
            group_of(&g.target),
            g.target,
            g.down_delay.as_millis(),
            g.up_delay.as_millis()
        );
        if g.readiness {
            y.push_str("    readiness:\n      bgp-neighbors: [\"10.0.1.1\", \"10.0.1.2\"]\n      min-established: 1\n      evpn-min-received-routes: 1\n");
        }
    }
    y
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Gnmi,
    DryRun,
}

/// Knobs of one controller run; short timeouts and backoffs for tests.
#[derive(Clone, Debug)]
pub struct CtlOptions {
    pub mode: Mode,
    pub sync_timeout: Duration,
    pub set_backoff_min: Duration,
    pub set_backoff_max: Duration,
}

impl Default for CtlOptions {
    fn default() -> Self {
        CtlOptions {
            mode: Mode::Gnmi,
            sync_timeout: Duration::from_secs(5),
            set_backoff_min: Duration::from_millis(100),
            set_backoff_max: Duration::from_millis(400),
        }
    }
}

/// A condition on one loop event.
pub type Want = Box<dyn FnMut(&LoopEvent) -> bool>;

/// A controller running in-process, and what it reported so far.
pub struct Ctl {
    events: mpsc::UnboundedReceiver<LoopEvent>,
    /// Every event received, in order.
    pub seen: Vec<LoopEvent>,
    /// Ordered waits (`expect`) search from here.
    cursor: usize,
    pub dry: Option<mpsc::UnboundedReceiver<DryRunLine>>,
    pub config: opergroupd::config::Config,
    /// What /status would show.
    pub board: opergroupd::status::Board,
    cancel: CancellationToken,
    task: Option<JoinHandle<Result<(), RunError>>>,
}

impl Ctl {
    pub fn start(yaml: &str, o: CtlOptions) -> Ctl {
        Ctl::start_led(yaml, o, None)
    }

    /// Like `start`, with leader election: Sets only while `leader` may act.
    pub fn start_led(yaml: &str, o: CtlOptions, leader: Option<opergroupd::leader::Elector>) -> Ctl {
        let config =
            opergroupd::config::parse(yaml, "<scenario>").unwrap_or_else(|e| panic!("scenario config: {e}\n{yaml}"));
        let (dry, actuator) = match o.mode {
            Mode::Gnmi => (None, Actuator::Gnmi(Arc::new(Setter::new(ConnectOptions::default(), SET_TIMEOUT)))),
            Mode::DryRun => {
                let (tx, rx) = mpsc::unbounded_channel();
                (Some(rx), Actuator::DryRun(DryRunSink::Channel(tx)))
            }
        };
        let (obs_tx, events) = mpsc::unbounded_channel();
        let mut opts = RunOptions::new(actuator);
        opts.observer = Some(obs_tx);
        opts.leader = leader;
        let board = opergroupd::status::Board::from_config(&config, "scenario", o.mode == Mode::DryRun);
        opts.board = Some(board.clone());
        opts.set_backoff_min = o.set_backoff_min;
        opts.set_backoff_max = o.set_backoff_max;
        opts.source = SourceOptions {
            sync_timeout: o.sync_timeout,
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_millis(300),
            connect_timeout: Duration::from_secs(3),
            ..SourceOptions::default()
        };
        let cancel = CancellationToken::new();
        let task = tokio::spawn(controller::run(config.clone(), opts, cancel.clone()));
        Ctl { events, seen: Vec::new(), cursor: 0, dry, config, board, cancel, task: Some(task) }
    }

    /// Stops the controller and waits for it (it must stop cleanly and promptly).
    pub async fn stop(mut self) {
        self.cancel.cancel();
        let task = self.task.take().expect("running");
        let r = tokio::time::timeout(Duration::from_secs(5), task).await.expect("controller stops within 5 s");
        r.expect("controller task did not panic").expect("controller ended without error");
    }

    /// The controller task has not ended (no crash, no give-up).
    pub fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Moves whatever the loop already reported into `seen`.
    pub fn drain(&mut self) {
        while let Ok(ev) = self.events.try_recv() {
            self.seen.push(ev);
        }
    }

    fn history(&self) -> String {
        self.seen.iter().map(|e| format!("  {}\n", show(e))).collect()
    }

    /// The index of the first event at or after `from` satisfying `want`, receiving more
    /// events until the deadline.
    async fn find(&mut self, from: usize, what: &str, want: &mut impl FnMut(&LoopEvent) -> bool) -> usize {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        let mut i = from;
        loop {
            while i < self.seen.len() {
                if want(&self.seen[i]) {
                    return i;
                }
                i += 1;
            }
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(ev)) => self.seen.push(ev),
                Ok(None) => panic!("controller stopped while waiting for {what}; saw:\n{}", self.history()),
                Err(_) => panic!("no {what} within {DEADLINE:?}; saw:\n{}", self.history()),
            }
        }
    }

    /// The next event after the previous `expect` that satisfies `want`.
    pub async fn expect(&mut self, what: &str, mut want: impl FnMut(&LoopEvent) -> bool) -> LoopEvent {
        let i = self.find(self.cursor, what, &mut want).await;
        self.cursor = i + 1;
        self.seen[i].clone()
    }

    /// Waits until each condition was met by some event after the cursor, in any order
    /// (events of different targets interleave); the cursor moves past the last one.
    pub async fn expect_each(&mut self, wants: Vec<(String, Want)>) {
        let start = self.cursor;
        let mut last = start;
        for (what, mut want) in wants {
            let i = self.find(start, &what, &mut want).await;
            last = last.max(i + 1);
        }
        self.cursor = last;
    }

    /// Waits until every listed target has synced (in any order), counting from the cursor.
    pub async fn synced(&mut self, targets: &[&str]) {
        let wants = targets
            .iter()
            .map(|t| {
                let (what, t) = (format!("sync of {t}"), t.to_string());
                let want: Want =
                    Box::new(move |e| matches!(e, LoopEvent::TargetSynced { target, .. } if **target == *t));
                (what, want)
            })
            .collect();
        self.expect_each(wants).await;
    }

    /// Waits until each listed group has had a verdict of `health` whose reason contains
    /// `reason_has` (in any order), counting from the cursor.
    pub async fn verdicts(&mut self, groups: &[&str], health: Health, reason_has: &str) {
        let wants = groups
            .iter()
            .map(|g| {
                let what = format!("verdict {g} {} containing {reason_has:?}", health.as_str());
                let (g, has) = (g.to_string(), reason_has.to_string());
                let want: Want = Box::new(move |e| {
                    matches!(e, LoopEvent::Verdict { group, health: h, reason, .. } if *group == g && *h == health && reason.contains(&has))
                });
                (what, want)
            })
            .collect();
        self.expect_each(wants).await;
    }

    /// The next verdict for `group` with `health` whose reason contains `reason_has`.
    pub async fn verdict(&mut self, group: &str, health: Health, reason_has: &str) -> Verdict {
        let what = format!("verdict {group} {} containing {reason_has:?}", health.as_str());
        match self
            .expect(&what, |e| {
                matches!(e, LoopEvent::Verdict { group: g, health: h, reason, .. } if g == group && *h == health && reason.contains(reason_has))
            })
            .await
        {
            LoopEvent::Verdict { desired, reason, at, .. } => Verdict { desired, reason, at },
            _ => unreachable!(),
        }
    }

    /// The next Set handed to the actuator for `group`.
    pub async fn set_started(&mut self, group: &str) -> (SetIntent, Instant) {
        match self
            .expect(
                &format!("Set for {group}"),
                |e| matches!(e, LoopEvent::SetStarted { intent, .. } if intent.group == group),
            )
            .await
        {
            LoopEvent::SetStarted { intent, at } => (intent, at),
            _ => unreachable!(),
        }
    }

    /// The next answer to a Set for `group`.
    pub async fn set_finished(&mut self, group: &str) -> (Result<(), String>, Instant) {
        match self
            .expect(
                &format!("Set answer for {group}"),
                |e| matches!(e, LoopEvent::SetFinished { intent, .. } if intent.group == group),
            )
            .await
        {
            LoopEvent::SetFinished { result, at, .. } => (result, at),
            _ => unreachable!(),
        }
    }

    /// A Set for `group` with every downlink at `want`, answered successfully.
    pub async fn enforced(&mut self, group: &str, want: AdminState) -> Instant {
        let (intent, at) = self.set_started(group).await;
        assert_eq!(intent.changes, vec![(downlink_path(), want)], "Set for {group}: {intent:?}");
        let (result, _) = self.set_finished(group).await;
        result.unwrap_or_else(|e| panic!("Set for {group} failed: {e}"));
        at
    }

    /// Sets started since event index `from` (everything the loop has reported so far).
    pub fn sets_since(&mut self, from: usize) -> Vec<SetIntent> {
        self.drain();
        self.seen[from.min(self.seen.len())..]
            .iter()
            .filter_map(|e| match e {
                LoopEvent::SetStarted { intent, .. } => Some(intent.clone()),
                _ => None,
            })
            .collect()
    }

    /// Asserts that no Set started since `from`. Call it only after waiting for positive
    /// evidence that the loop evaluated the state in question (a later verdict).
    pub fn assert_no_set_since(&mut self, from: usize, why: &str) {
        let sets = self.sets_since(from);
        assert!(sets.is_empty(), "{why}: unexpected Set(s) {sets:#?}\nsaw:\n{}", self.history());
    }

    /// An index into `seen` to assert on what comes after.
    pub fn mark(&mut self) -> usize {
        self.drain();
        self.seen.len()
    }

    pub fn stale_errors(&mut self, target: &str) -> Vec<String> {
        self.drain();
        self.seen
            .iter()
            .filter_map(|e| match e {
                LoopEvent::TargetStale { target: t, error, .. } if &**t == target => Some(error.clone()),
                _ => None,
            })
            .collect()
    }
}

impl Drop for Ctl {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[derive(Clone, Debug)]
pub struct Verdict {
    pub desired: Option<AdminState>,
    pub reason: String,
    pub at: Instant,
}

fn show(e: &LoopEvent) -> String {
    match e {
        LoopEvent::Verdict { group, health, desired, reason, .. } => {
            format!("verdict {group} {} desired={desired:?}: {reason}", health.as_str())
        }
        LoopEvent::SetStarted { intent, .. } => format!("set started {} {:?}", intent.target, intent.changes),
        LoopEvent::SetFinished { intent, result, .. } => format!("set finished {} {result:?}", intent.target),
        LoopEvent::TargetSynced { target, .. } => format!("synced {target}"),
        LoopEvent::TargetStale { target, error, .. } => format!("stale {target}: {error}"),
        LoopEvent::Held { group, reason, .. } => format!("held {group}: {reason:?}"),
    }
}

/// A Set sent by hand, as an operator would with gnmic: not through the controller.
pub async fn manual_set(config: &opergroupd::config::Config, target: &str, value: AdminState) {
    let t = config.targets.get(target).unwrap_or_else(|| panic!("no target {target}"));
    let setter = Setter::new(ConnectOptions::default(), Duration::from_secs(5));
    setter.set(t, &[(downlink_path(), value)], None).await.unwrap_or_else(|e| panic!("manual Set: {e}"));
}

/// Timings where each BGP step is long enough to tell apart from a prompt reaction
/// (hundreds of ms), still fast enough for tests.
pub fn bgp_timings() -> Timings {
    Timings {
        hold_time: Duration::from_millis(150),
        ebgp_up: Duration::from_millis(20),
        ibgp_up: Duration::from_millis(250),
        evpn_routes: Duration::from_millis(250),
    }
}

/// Captures log lines of everything running on this thread (the tests use the
/// current-thread runtime, so the controller's tasks run here too).
#[derive(Clone, Default)]
pub struct LogCapture(Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    /// Installs a capturing subscriber at `level` for this thread until the guard drops.
    pub fn install(&self, level: &str) -> tracing::subscriber::DefaultGuard {
        let me = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(level))
            .with_ansi(false)
            .with_writer(move || me.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// Waits until some log line satisfies `want`; returns that line.
    pub async fn wait_line(&self, what: &str, want: impl Fn(&str) -> bool) -> String {
        self.wait_lines(what, 1, want).await.swap_remove(0)
    }

    /// Waits until `n` log lines satisfy `want`; returns them.
    pub async fn wait_lines(&self, what: &str, n: usize, want: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let found: Vec<String> = self.text().lines().filter(|l| want(l)).map(str::to_string).collect();
            if found.len() >= n {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} log lines with {what} within {DEADLINE:?}; logs:\n{}",
                found.len(),
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
