//! The running fabric: every leaf's model behind its own lock, the streams subscribed
//! to it, the BGP timers, the Set log and the sim's clock. One shared state for all
//! leaves keeps a 2,000-leaf fabric small: no task per leaf besides its listener.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::control::{Applied, SetRecord};
use crate::leaf::{Interface, Leaf, Neighbor, TimerReq, Tree};
use crate::path::SPath;
use crate::value::Val;
use crate::{Fabric, SimConfig, SimError, SimTls, Timings};

/// What a subscribed stream receives from its leaf.
#[derive(Debug)]
pub enum StreamEvent {
    Changes(Arc<ChangeBatch>),
    /// End the stream with this status (drop-streams fault, restart, shutdown).
    Kill(tonic::Status),
    /// Send this notification as is (malformed-value and unknown-path faults).
    Raw(Arc<gnmi_proto::Notification>),
}

/// One atomic change of a leaf's tree.
#[derive(Debug, Default)]
pub struct ChangeBatch {
    pub unix_ns: i64,
    pub updates: Vec<(SPath, Val)>,
    /// (removed leaf, the path to announce: the outermost list entry that vanished, or the leaf).
    pub deletes: Vec<(SPath, SPath)>,
}

pub struct LeafSlot {
    pub name: String,
    pub addr: SocketAddr,
    pub state: Mutex<LeafState>,
    /// Stall-sync fault: streams hold back `sync_response` while true.
    pub stall: watch::Sender<bool>,
    /// Emit module-prefixed element names (`srl_nokia-interfaces:interface`).
    pub module_names: AtomicBool,
    /// Freeze fault: open streams stay open and send nothing (no updates, heartbeats,
    /// samples or sync_response) while true; HTTP/2 still answers pings.
    pub frozen: watch::Sender<bool>,
    /// Stops this leaf's gNMI server (reboot fault); a child of the fabric's token.
    pub server_stop: Mutex<CancellationToken>,
    /// Which models this leaf serves (fixed for the life of the fabric).
    pub profile: crate::Profile,
    /// Proto-only fault: Capabilities offer PROTO and ASCII only; JSON_IETF is refused.
    pub proto_only: AtomicBool,
}

pub struct LeafState {
    /// Changed only inside [`Shared::mutate`]/[`Shared::mutate_then`], which keep `tree` in step.
    pub model: Leaf,
    /// `model` rendered, kept rather than re-rendered: every change diffs against it and
    /// every read, dump and heartbeat shares it (rendering was half the sim's CPU in a storm).
    pub tree: Arc<Tree>,
    /// What `tree` was rendered from: `publish` re-renders only what differs from it.
    pub rendered: Rendered,
    pub startup: Leaf,
    pub subscribers: Vec<mpsc::UnboundedSender<StreamEvent>>,
    pub refuse_sets: u32,
    /// Paths every Set touching them is refused for (fault `reject-path`).
    pub reject_paths: Vec<SPath>,
    pub set_delay: Duration,
    /// After a restart the leaf answers UNAVAILABLE until then.
    pub unavailable_until: Option<Instant>,
}

pub struct Clock {
    start: Instant,
    start_unix_ns: i64,
}

impl Clock {
    fn new() -> Self {
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Clock { start: Instant::now(), start_unix_ns: unix.as_nanos() as i64 }
    }

    /// Both clocks from one reading: unix ns derive from the monotonic clock, so
    /// differences agree on either.
    pub fn now(&self) -> Applied {
        let mono_ns = self.start.elapsed().as_nanos() as u64;
        Applied { unix_ns: self.start_unix_ns + mono_ns as i64, mono_ns }
    }
}

pub struct Shared {
    pub leaves: Vec<LeafSlot>,
    pub index: HashMap<String, usize>,
    pub timings: Timings,
    pub evpn_routes: u32,
    pub clock: Clock,
    pub sets: Mutex<Vec<SetRecord>>,
    /// Number of completed Set records, for waiters.
    pub sets_done: watch::Sender<usize>,
    /// Bumped on every change of any leaf, for waiters.
    pub changed: watch::Sender<u64>,
    pub set_seq: AtomicU64,
    pub cancel: CancellationToken,
    pub username: String,
    pub password: String,
    pub ca_pem: Option<String>,
    /// The leaves' certificate, to serve again after a reboot.
    pub server_cert: Option<crate::tls::ServerCert>,
    pub control_addr: Option<SocketAddr>,
    pub(crate) rt: tokio::runtime::Handle,
}

/// Locks a mutex, ignoring poisoning: the state is always left consistent between statements.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub fn leaf(&self, node: &str) -> Result<usize, SimError> {
        self.index.get(node).copied().ok_or_else(|| SimError::UnknownNode(node.to_string()))
    }

    /// Runs `f` on a leaf, then the model's rules; publishes what changed and starts timers.
    pub fn mutate<R>(self: &Arc<Self>, idx: usize, f: impl FnOnce(&mut LeafState) -> R) -> (R, Applied) {
        self.mutate_then(idx, f, |_, _| {})
    }

    /// Like `mutate`; `before_publish` runs after the change and before any subscriber
    /// hears of it (a Set is in the control API's log before its effect is streamed, so
    /// a client that saw the effect always finds the Set).
    pub fn mutate_then<R>(
        self: &Arc<Self>,
        idx: usize,
        f: impl FnOnce(&mut LeafState) -> R,
        before_publish: impl FnOnce(&R, Applied),
    ) -> (R, Applied) {
        let mut st = lock(&self.leaves[idx].state);
        let r = f(&mut st);
        let timers = st.model.reconcile(&self.timings);
        let applied = self.clock.now();
        before_publish(&r, applied);
        self.publish(&mut st, applied.unix_ns);
        drop(st);
        self.start_timers(idx, timers);
        (r, applied)
    }

    /// Brings the kept tree in step with the changed model and streams the difference.
    fn publish(&self, st: &mut LeafState, unix_ns: i64) {
        let batch = st.rendered.catch_up(&st.model, &mut st.tree, unix_ns);
        if batch.updates.is_empty() && batch.deletes.is_empty() {
            return;
        }
        let batch = Arc::new(batch);
        st.subscribers.retain(|s| s.send(StreamEvent::Changes(batch.clone())).is_ok());
        self.changed.send_modify(|v| *v += 1);
    }

    fn start_timers(self: &Arc<Self>, idx: usize, timers: Vec<TimerReq>) {
        for t in timers {
            let sh = self.clone();
            self.rt.spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(t.after) => {}
                    _ = sh.cancel.cancelled() => return,
                }
                sh.mutate(idx, |st| st.model.fire(&t.peer, t.token));
            });
        }
    }

    pub fn kill_streams(&self, idx: usize, status: tonic::Status) {
        let mut st = lock(&self.leaves[idx].state);
        for s in st.subscribers.drain(..) {
            let _ = s.send(StreamEvent::Kill(status.clone()));
        }
    }

    pub fn kill_all_streams(&self, status: tonic::Status) {
        for i in 0..self.leaves.len() {
            self.kill_streams(i, status.clone());
        }
    }

    pub fn send_raw(&self, idx: usize, n: gnmi_proto::Notification) {
        let n = Arc::new(n);
        let mut st = lock(&self.leaves[idx].state);
        st.subscribers.retain(|s| s.send(StreamEvent::Raw(n.clone())).is_ok());
    }

    pub fn record_set(&self, rec: SetRecord) {
        let mut sets = lock(&self.sets);
        // Keep receive order even when a delayed Set completes after a later one.
        let pos = sets.partition_point(|r| r.seq < rec.seq);
        sets.insert(pos, rec);
        let n = sets.len();
        drop(sets);
        self.sets_done.send_replace(n);
    }
}

/// The interfaces and neighbors a leaf's kept tree was rendered from. A change re-renders
/// and diffs only those that differ: re-rendering and diffing the whole leaf on every
/// change was a third of the sim's CPU in a 10,000-leaf storm.
pub struct Rendered {
    interfaces: BTreeMap<String, Interface>,
    neighbors: BTreeMap<String, Neighbor>,
}

impl Rendered {
    /// `model`, about to be rendered whole into the kept tree.
    pub fn of(model: &Leaf) -> Self {
        Rendered { interfaces: model.interfaces.clone(), neighbors: model.neighbors.clone() }
    }

    /// Brings `tree` (rendered from `self`) to `model.render()` in place, and `self` to
    /// `model`. The batch is the whole-tree diff: updates for new or changed leaves,
    /// deletes for vanished ones (in path order, as a walk of both trees gives them).
    pub fn catch_up(&mut self, model: &Leaf, tree: &mut Arc<Tree>, unix_ns: i64) -> ChangeBatch {
        let profile = model.profile;
        let (mut updates, mut gone) = (Vec::new(), Vec::new());
        for_each_changed(&mut self.interfaces, &model.interfaces, |name, now| {
            let mut fresh = Tree::new();
            if let Some(i) = now {
                profile.render_interface(name, i, &mut fresh);
            }
            replace_below(tree, &profile.interface_path(name), fresh, &mut updates, &mut gone);
        });
        for_each_changed(&mut self.neighbors, &model.neighbors, |peer, now| {
            let mut fresh = Tree::new();
            if let Some(nb) = now {
                profile.render_neighbor(peer, nb, &mut fresh);
            }
            replace_below(tree, &profile.neighbor_path(peer), fresh, &mut updates, &mut gone);
        });
        // Paths are unique: sorting gives the order of a walk of the whole tree.
        updates.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        gone.sort_unstable();
        // Against the whole updated tree: whether a list entry vanished depends on the other entities.
        let deletes = gone
            .into_iter()
            .map(|p| {
                let at = vanished_at(&p, tree);
                (p, at)
            })
            .collect();
        ChangeBatch { unix_ns, updates, deletes }
    }
}

/// Calls `f(key, value now)` for every key whose value in `now` differs from `kept`
/// (`None`: gone from `now`), and brings `kept` in step.
fn for_each_changed<V: Clone + PartialEq>(
    kept: &mut BTreeMap<String, V>,
    now: &BTreeMap<String, V>,
    mut f: impl FnMut(&str, Option<&V>),
) {
    kept.retain(|k, _| {
        let stays = now.contains_key(k);
        if !stays {
            f(k, None);
        }
        stays
    });
    for (k, v) in now {
        match kept.get_mut(k) {
            Some(old) if old == v => {}
            Some(old) => {
                old.clone_from(v);
                f(k, Some(v));
            }
            None => {
                kept.insert(k.clone(), v.clone());
                f(k, Some(v));
            }
        }
    }
}

/// Makes the leaves of `tree` below `base` those of `fresh` (all below `base`); pushes
/// new or changed leaves to `updates` and removed ones to `gone`. `make_mut` copies the
/// tree if a reader still holds it, so only when something differs.
fn replace_below(
    tree: &mut Arc<Tree>,
    base: &SPath,
    fresh: Tree,
    updates: &mut Vec<(SPath, Val)>,
    gone: &mut Vec<SPath>,
) {
    let stale: Vec<SPath> = tree
        .range((Bound::Included(base), Bound::Unbounded))
        .take_while(|(p, _)| p.starts_with(base))
        .filter(|(p, _)| !fresh.contains_key(*p))
        .map(|(p, _)| p.clone())
        .collect();
    let changed: Vec<(SPath, Val)> = fresh.into_iter().filter(|(p, v)| tree.get(p) != Some(v)).collect();
    if stale.is_empty() && changed.is_empty() {
        return;
    }
    let tree = Arc::make_mut(tree);
    for p in stale {
        tree.remove(&p);
        gone.push(p);
    }
    for (p, v) in changed {
        match tree.get_mut(&p) {
            Some(old) => *old = v.clone(),
            None => {
                tree.insert(p.clone(), v.clone());
            }
        }
        updates.push((p, v));
    }
}

/// Where the removal of leaf `p` is announced: the outermost list entry with nothing left
/// of it in `tree`, or `p` itself (a removed neighbor is one delete).
fn vanished_at(p: &SPath, tree: &Tree) -> SPath {
    (1..=p.0.len())
        .filter(|&n| !p.0[n - 1].keys.is_empty())
        .map(|n| SPath(p.0[..n].to_vec()))
        .find(|entry| tree.range(entry..).next().is_none_or(|(k, _)| !k.starts_with(entry)))
        .unwrap_or_else(|| p.clone())
}

pub async fn start(cfg: SimConfig) -> Result<Fabric, SimError> {
    if cfg.leaves == 0 {
        return Err(SimError::Invalid("--leaves must be at least 1".into()));
    }
    if let Some(unknown) = cfg.profiles.leaves.keys().find(|n| {
        n.strip_prefix("leaf")
            .and_then(|k| k.parse::<usize>().ok())
            .is_none_or(|k| k == 0 || k > cfg.leaves || format!("leaf{k}") != **n)
    }) {
        return Err(SimError::Invalid(format!(
            "--profile names {unknown}, which is not one of leaf1..leaf{}",
            cfg.leaves
        )));
    }
    if cfg.base_port != 0 && usize::from(cfg.base_port) + cfg.leaves > 65535 {
        return Err(SimError::Invalid(format!(
            "--base-port {} + --leaves {} exceeds port 65535",
            cfg.base_port, cfg.leaves
        )));
    }
    if let Some(c) = cfg.control {
        let leaf_ports = usize::from(cfg.base_port) + 1..=usize::from(cfg.base_port) + cfg.leaves;
        if cfg.base_port != 0 && c.ip() == cfg.listen && leaf_ports.contains(&usize::from(c.port())) {
            return Err(SimError::Invalid(format!(
                "--control {c} collides with the leaf ports {}..{}; choose another --control or --base-port",
                leaf_ports.start(),
                leaf_ports.end()
            )));
        }
    }
    raise_nofile_limit(3 * cfg.leaves + 256);

    let tls = match cfg.tls {
        SimTls::Insecure => None,
        SimTls::SelfSigned => Some(crate::tls::self_signed(cfg.listen, cfg.leaves)?),
    };

    let mut listeners = Vec::with_capacity(cfg.leaves);
    let mut slots = Vec::with_capacity(cfg.leaves);
    for k in 1..=cfg.leaves {
        let port = if cfg.base_port == 0 { 0 } else { cfg.base_port + k as u16 };
        let addr = SocketAddr::new(cfg.listen, port);
        let l = tokio::net::TcpListener::bind(addr).await.map_err(|source| SimError::Bind { addr, source })?;
        let addr = l.local_addr().map_err(|source| SimError::Bind { addr, source })?;
        listeners.push(l);
        let name = format!("leaf{k}");
        let profile = cfg.profiles.of(&name);
        let model = Leaf::startup_as(profile, k, cfg.leaves, cfg.evpn_routes);
        slots.push(LeafSlot {
            name,
            profile,
            proto_only: AtomicBool::new(false),
            addr,
            state: Mutex::new(LeafState {
                tree: Arc::new(model.render()),
                rendered: Rendered::of(&model),
                startup: model.clone(),
                model,
                subscribers: Vec::new(),
                refuse_sets: 0,
                reject_paths: Vec::new(),
                set_delay: Duration::ZERO,
                unavailable_until: None,
            }),
            stall: watch::Sender::new(false),
            module_names: AtomicBool::new(false),
            frozen: watch::Sender::new(false),
            server_stop: Mutex::new(CancellationToken::new()),
        });
    }
    let control_listener = match cfg.control {
        Some(addr) => {
            Some(tokio::net::TcpListener::bind(addr).await.map_err(|source| SimError::Bind { addr, source })?)
        }
        None => None,
    };
    let control_addr = control_listener.as_ref().and_then(|l| l.local_addr().ok());

    let cancel = CancellationToken::new();
    for slot in &slots {
        *lock(&slot.server_stop) = cancel.child_token();
    }
    let shared = Arc::new(Shared {
        index: slots.iter().enumerate().map(|(i, s)| (s.name.clone(), i)).collect(),
        leaves: slots,
        timings: cfg.timings,
        evpn_routes: cfg.evpn_routes,
        clock: Clock::new(),
        sets: Mutex::new(Vec::new()),
        sets_done: watch::Sender::new(0),
        changed: watch::Sender::new(0),
        set_seq: AtomicU64::new(0),
        cancel,
        username: cfg.username,
        password: cfg.password,
        ca_pem: tls.as_ref().map(|t| t.cert_pem.clone()),
        server_cert: tls.clone(),
        control_addr,
        rt: tokio::runtime::Handle::current(),
    });

    let mut tasks = Vec::with_capacity(listeners.len() + 1);
    for (idx, l) in listeners.into_iter().enumerate() {
        tasks.push(crate::server::serve(shared.clone(), idx, l, tls.as_ref())?);
    }
    if let Some(l) = control_listener {
        tasks.push(crate::http::serve(shared.clone(), l));
    }
    Ok(Fabric { shared, tasks })
}

/// Thousands of listeners need more descriptors than the usual soft limit of 1024: one
/// listener per leaf plus one or two connections per leaf from each collector (10,000
/// leaves under one controller: > 20,000). The soft limit goes to the hard limit (always
/// allowed); when even that is short, the hard limit goes up too if this process may
/// (CAP_SYS_RESOURCE, up to fs.nr_open).
fn raise_nofile_limit(want: usize) {
    let want = want as libc::rlim_t;
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 || lim.rlim_cur >= want {
            return;
        }
        let higher = libc::rlimit { rlim_cur: want, rlim_max: want };
        if lim.rlim_max >= want || libc::setrlimit(libc::RLIMIT_NOFILE, &higher) != 0 {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                tracing::warn!(want, "could not raise the open-file limit");
            }
        } else {
            lim = higher;
        }
    }
    if lim.rlim_cur < want {
        tracing::warn!(limit = lim.rlim_cur, want, "the open-file limit may be too low for this many leaves");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::leaf::SessionState;

    /// The whole-tree diff `publish` computed before `Rendered`: the reference for it.
    fn diff(old: &Tree, new: &Tree, unix_ns: i64) -> ChangeBatch {
        let updates =
            new.iter().filter(|(p, v)| old.get(*p) != Some(*v)).map(|(p, v)| (p.clone(), v.clone())).collect();
        let deletes = old.keys().filter(|p| !new.contains_key(*p)).map(|p| (p.clone(), vanished_at(p, new))).collect();
        ChangeBatch { unix_ns, updates, deletes }
    }

    #[test]
    fn a_removed_neighbor_is_one_delete_and_a_cleared_reason_is_a_leaf_delete() {
        let mut l = Leaf::startup(1, 4, 10);
        l.interfaces.get_mut("ethernet-1/1").unwrap().admin_enabled = false;
        let _ = l.reconcile(&Timings::fast());
        let (mut tree, mut rendered) = (Arc::new(l.render()), Rendered::of(&l));
        l.neighbors.remove("10.0.1.1");
        l.interfaces.get_mut("ethernet-1/1").unwrap().admin_enabled = true;
        let _ = l.reconcile(&Timings::fast());
        let b = rendered.catch_up(&l, &mut tree, 1);
        let mut announced: Vec<String> = b.deletes.iter().map(|(_, a)| a.to_string()).collect();
        announced.dedup();
        assert_eq!(
            announced,
            vec![
                "/interface[name=ethernet-1/1]/oper-down-reason".to_string(),
                "/network-instance[name=default]/protocols/bgp/neighbor[peer-address=10.0.1.1]".to_string(),
            ]
        );
        assert!(
            b.updates.iter().any(
                |(p, v)| p.to_string() == "/interface[name=ethernet-1/1]/oper-state" && *v == Val::Str("up".into())
            )
        );
    }

    /// Every kind of change on both profiles, through `publish`: the batch streamed is the
    /// whole-tree diff of the renderings before and after, and the kept tree is the model
    /// rendered, whether a reader holds the old tree (copied) or not (changed in place).
    #[tokio::test]
    async fn publish_streams_the_whole_tree_diff_and_keeps_the_tree_in_step() {
        // Timers never fire by themselves: the steps fire them, one change at a time.
        let never = Duration::from_secs(3600);
        let timings = Timings { hold_time: never, ebgp_up: never, ibgp_up: never, evpn_routes: never };
        let profiles = crate::Profiles::parse("leaf2=openconfig").unwrap();
        let cfg = crate::SimConfig { leaves: 2, base_port: 0, timings, profiles, ..Default::default() };
        let fabric = crate::start(cfg).await.unwrap();
        let sh = fabric.shared.clone();
        type Step = Box<dyn Fn(&mut Leaf, &Leaf)>;
        let iface = |name: &'static str, f: fn(&mut Interface)| -> Step {
            Box::new(move |l, _| f(l.interfaces.get_mut(name).unwrap()))
        };
        let fire_due = || -> Step {
            Box::new(|l, _| {
                let due: Vec<(String, u64)> =
                    l.neighbors.iter().filter_map(|(p, nb)| Some((p.clone(), nb.pending?.1))).collect();
                assert!(!due.is_empty(), "a timer is due");
                for (peer, token) in due {
                    assert!(l.fire(&peer, token));
                }
            })
        };
        for (idx, slot) in sh.leaves.iter().enumerate() {
            let (down, [up1, up2]) = (slot.profile.downlink(), slot.profile.uplinks());
            let steps: Vec<(&str, Step)> = vec![
                ("first uplink down", iface(up1, |i| i.link_up = false)),
                ("second uplink down", iface(up2, |i| i.link_up = false)),
                ("hold timers expire", fire_due()),
                ("first uplink up", iface(up1, |i| i.link_up = true)),
                ("second uplink up", iface(up2, |i| i.link_up = true)),
                ("sessions establish", fire_due()),
                ("EVPN routes arrive", fire_due()),
                ("downlink admin disabled", iface(down, |i| i.admin_enabled = false)),
                ("downlink admin enabled", iface(down, |i| i.admin_enabled = true)),
                ("description set", iface(down, |i| i.description = Some("client1".into()))),
                ("description changed", iface(down, |i| i.description = Some("client2".into()))),
                ("description cleared", iface(down, |i| i.description = None)),
                ("mtu changed", iface(up1, |i| i.mtu = 1500)),
                ("neighbor removed", Box::new(|l, _| drop(l.neighbors.remove("10.0.1.1").unwrap()))),
                ("neighbor added back", Box::new(|l, startup| l.add_neighbor("10.0.1.1", startup, 10))),
                ("it establishes", fire_due()),
                ("its routes arrive", fire_due()),
                ("session pinned", Box::new(|l, _| l.pin_session("10.0.1.2", Some(SessionState::Active)).unwrap())),
                ("session handed back, not yet established", Box::new(|l, _| l.pin_session("10.0.1.2", None).unwrap())),
                ("it establishes again", fire_due()),
                ("its routes arrive again", fire_due()),
                ("fewer routes offered", Box::new(|l, _| l.offer_routes("10.0.1.2", 3).unwrap())),
                ("new neighbor", Box::new(|l, startup| l.add_neighbor("10.0.9.9", startup, 10))),
                ("every neighbor removed", Box::new(|l, _| l.neighbors.clear())),
                ("restart", Box::new(|l, startup| *l = Leaf::rebooted(startup, l))),
                ("sessions establish after the restart", fire_due()),
            ];
            let (tx, mut rx) = mpsc::unbounded_channel();
            lock(&slot.state).subscribers.push(tx);
            let mut streamed = 0;
            for (n, (what, step)) in steps.iter().enumerate() {
                let what = format!("{} leaf, {what}", slot.profile.as_str());
                let before = lock(&slot.state).model.render();
                let held = (n % 2 == 0).then(|| lock(&slot.state).tree.clone());
                sh.mutate(idx, |st| step(&mut st.model, &st.startup));
                let after = lock(&slot.state).model.render();
                assert!(*lock(&slot.state).tree == after, "{what}: the kept tree is the model rendered");
                assert!(held.is_none_or(|t| *t == before), "{what}: a reader's tree stays as it was");
                let want = diff(&before, &after, 0);
                if want.updates.is_empty() && want.deletes.is_empty() {
                    assert!(rx.try_recv().is_err(), "{what}: no change, no batch");
                    continue;
                }
                let Ok(StreamEvent::Changes(b)) = rx.try_recv() else { panic!("{what}: no batch streamed") };
                assert_eq!((&b.updates, &b.deletes), (&want.updates, &want.deletes), "{what}");
                assert!(rx.try_recv().is_err(), "{what}: one batch");
                streamed += 1;
            }
            assert_eq!(streamed, steps.len() - 1, "every step but the hand-back changes the tree");
        }
        fabric.shutdown().await;
    }

    /// The kept tree is the model rendered after every kind of change, so no reader,
    /// dump or heartbeat ever serves a stale value.
    #[tokio::test]
    async fn the_kept_tree_follows_every_change() {
        let cfg = crate::SimConfig { leaves: 1, base_port: 0, timings: Timings::fast(), ..Default::default() };
        let fabric = crate::start(cfg).await.unwrap();
        let sh = fabric.shared.clone();
        let in_step = || {
            let st = lock(&sh.leaves[0].state);
            *st.tree == st.model.render()
        };
        assert!(in_step(), "at start");
        fabric.control().link("leaf1", "ethernet-1/49", false).unwrap();
        assert!(in_step(), "after a link change");
        let before = lock(&sh.leaves[0].state).tree.clone();
        fabric.control().fault("leaf1", crate::control::Fault::Restart { down_ms: 1 }).unwrap();
        assert!(in_step(), "after a restart");
        assert!(*before != *lock(&sh.leaves[0].state).tree, "a restart takes every interface down");
        fabric.shutdown().await;
    }

    /// The Set handler records a Set in `before_publish`: a client that saw the Set's effect
    /// on its stream must find the Set in the control API's log (the bench checks both).
    #[tokio::test]
    async fn what_runs_before_publish_happens_before_any_subscriber_hears_of_the_change() {
        let cfg = crate::SimConfig { leaves: 1, base_port: 0, timings: Timings::fast(), ..Default::default() };
        let fabric = crate::start(cfg).await.unwrap();
        let sh = fabric.shared.clone();
        let (tx, mut rx) = mpsc::unbounded_channel();
        lock(&sh.leaves[0].state).subscribers.push(tx);
        let mut heard_before = None;
        let disable = |st: &mut LeafState| st.model.interfaces.get_mut("ethernet-1/1").unwrap().admin_enabled = false;
        sh.mutate_then(0, disable, |_, _| heard_before = Some(rx.try_recv().is_ok()));
        assert_eq!(heard_before, Some(false), "nothing was streamed before before_publish ran");
        assert!(matches!(rx.try_recv(), Ok(StreamEvent::Changes(_))), "and the change was streamed after");
        fabric.shutdown().await;
    }
}
