//! The control surface: the same operations as the HTTP API, callable in-process.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::SimError;
use crate::fabric::{Shared, StreamEvent, lock};
use crate::leaf::{Leaf, SessionState};
use crate::path::SPath;

/// A moment on the sim's clocks: Unix ns and ns since the sim started (monotonic).
/// Link changes, Set receive times and notification timestamps all use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub unix_ns: i64,
    pub mono_ns: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PathValue {
    pub path: String,
    pub value: serde_json::Value,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SetOutcome {
    /// Applied.
    Accepted,
    /// Refused by an injected fault or a restarting leaf (gRPC UNAVAILABLE).
    Refused,
    /// Refused by the target: bad credentials, path or value (nothing applied).
    Rejected,
}

/// One SetRequest as the leaf received it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetRecord {
    /// Receive order across the fabric.
    pub seq: u64,
    pub node: String,
    pub received: Applied,
    /// When the change took effect (accepted Sets only).
    pub applied: Option<Applied>,
    /// Canonical paths (prefix joined, module prefixes stripped).
    pub deletes: Vec<String>,
    pub replaces: Vec<PathValue>,
    pub updates: Vec<PathValue>,
    pub outcome: SetOutcome,
    pub error: Option<String>,
}

/// Faults, per node. JSON: `{"fault":"refuse-sets","count":2}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "kebab-case", rename_all_fields = "kebab-case")]
pub enum Fault {
    /// End every open Subscribe stream with UNAVAILABLE.
    DropStreams,
    /// Answer the next `count` Sets with UNAVAILABLE, applying nothing.
    RefuseSets { count: u32 },
    /// Answer every Set that touches `path` (canonical, e.g. `/interface[name=ethernet-1/1]/admin-state`)
    /// with INVALID_ARGUMENT, applying nothing, as a device refuses a value it will never
    /// accept. Repeatable for several paths; `clear` removes them all.
    RejectPath { path: String },
    /// Hold every Set this long before applying it (0 clears).
    DelaySets { delay_ms: u64 },
    /// New and open streams send their initial dump but hold `sync_response` until cleared.
    StallSync { stall: bool },
    /// Send every open stream an update whose JSON_IETF value is not valid JSON.
    MalformedValue {
        #[serde(default)]
        path: Option<String>,
    },
    /// Send every open stream an update for a path outside the schema.
    UnknownPath,
    /// Emit module-prefixed names (`srl_nokia-interfaces:interface`, `srl_nokia-common:evpn`).
    ModuleNames { enabled: bool },
    /// Offer only PROTO and ASCII in Capabilities and refuse JSON_IETF (Subscribe, Get, Set
    /// values), like a target without JSON_IETF support. Not cleared by `clear`.
    ProtoOnly { enabled: bool },
    /// Reboot: streams die, the leaf answers UNAVAILABLE for `down_ms`, its state returns
    /// to the startup config and its BGP sessions re-establish through the model's delays.
    Restart {
        #[serde(default)]
        down_ms: u64,
    },
    /// A wedged gNMI process: open streams stay open (HTTP/2 pings are still answered) but
    /// send nothing — no updates, heartbeats, samples or sync_response — until unfrozen.
    Freeze { frozen: bool },
    /// An SR Linux leaf rebooting from its startup config: every connection is torn down and
    /// the gNMI port is closed for `down_ms`; it comes back with the startup state —
    /// downlinks admin-state enable (whatever was Set before), links as they physically are,
    /// every BGP session idle — and its iBGP sessions stay down `ibgp_down_ms` longer before
    /// the model establishes them.
    Reboot {
        #[serde(default)]
        down_ms: u64,
        #[serde(default)]
        ibgp_down_ms: u64,
    },
    /// Clear refuse-sets, reject-path, delay-sets, stall-sync, module-names and freeze.
    Clear,
}

/// Cheap to clone; every method works on the live fabric.
#[derive(Clone)]
pub struct Control {
    sh: Arc<Shared>,
}

impl Control {
    pub(crate) fn new(sh: Arc<Shared>) -> Self {
        Control { sh }
    }

    /// The sim's clock now.
    pub fn now(&self) -> Applied {
        self.sh.clock.now()
    }

    /// Sets a physical link up or down. `node` is a leaf (`leaf1`, `ethernet-1/49`) or a
    /// spine seen from its side (`spine1`, `ethernet-1/3` is leaf3's ethernet-1/49).
    pub fn link(&self, node: &str, interface: &str, up: bool) -> Result<Applied, SimError> {
        // One change is a batch of one: `links` answers one moment per link.
        Ok(self.links(&[(node, interface, up)])?.remove(0))
    }

    /// Several physical links at once, as a spine pair failing does it: each change is its
    /// own mutation (its own notifications and timestamp), applied in order without a round
    /// trip between them. Every link is resolved first; an
    /// unknown node or interface fails the whole batch with nothing applied.
    pub fn links(&self, links: &[(&str, &str, bool)]) -> Result<Vec<Applied>, SimError> {
        let mut resolved = Vec::with_capacity(links.len());
        for &(node, interface, up) in links {
            let (leaf, iface) = self.resolve_link(node, interface)?;
            let idx = self.sh.leaf(&leaf)?;
            if !lock(&self.sh.leaves[idx].state).model.interfaces.contains_key(&iface) {
                return Err(SimError::UnknownInterface { node: node.into(), interface: interface.into() });
            }
            resolved.push((idx, iface, up));
        }
        let applied = resolved.into_iter().map(|(idx, iface, up)| {
            let ((), applied) = self.sh.mutate(idx, |st| {
                if let Some(i) = st.model.interfaces.get_mut(&iface) {
                    i.link_up = up;
                }
            });
            applied
        });
        Ok(applied.collect())
    }

    fn resolve_link(&self, node: &str, interface: &str) -> Result<(String, String), SimError> {
        let Some(s) = node.strip_prefix("spine").and_then(|s| s.parse::<usize>().ok()) else {
            return Ok((node.to_string(), interface.to_string()));
        };
        let k = interface.strip_prefix("ethernet-1/").and_then(|k| k.parse::<usize>().ok());
        if !(1..=2).contains(&s) {
            return Err(SimError::UnknownNode(node.into()));
        }
        match k {
            // The leaf's own name for its uplink to this spine (`ethernet-1/49`, `Ethernet49/1`).
            Some(k) if k >= 1 && k <= self.sh.leaves.len() => {
                Ok((format!("leaf{k}"), self.sh.leaves[k - 1].profile.uplinks()[s - 1].to_string()))
            }
            _ => Err(SimError::UnknownInterface { node: node.into(), interface: interface.into() }),
        }
    }

    /// Forces a BGP session state; `None` hands it back to the model.
    pub fn bgp_session(&self, node: &str, peer: &str, state: Option<SessionState>) -> Result<Applied, SimError> {
        self.on_neighbor(node, peer, |l| l.pin_session(peer, state))
    }

    /// Sets how many EVPN routes a neighbor gives (at once if established).
    pub fn evpn_routes(&self, node: &str, peer: &str, routes: u32) -> Result<Applied, SimError> {
        self.on_neighbor(node, peer, |l| l.offer_routes(peer, routes))
    }

    /// Removes a BGP neighbor: subscribers get a delete of the neighbor.
    pub fn remove_neighbor(&self, node: &str, peer: &str) -> Result<Applied, SimError> {
        self.on_neighbor(node, peer, |l| l.neighbors.remove(peer).map(|_| ()))
    }

    /// Adds a neighbor (a startup one, or a new iBGP EVPN peer); it establishes through the model.
    pub fn add_neighbor(&self, node: &str, peer: &str) -> Result<Applied, SimError> {
        if peer.parse::<std::net::IpAddr>().is_err() {
            return Err(SimError::Invalid(format!("peer {peer:?} is not an IP address")));
        }
        let idx = self.sh.leaf(node)?;
        let routes = self.sh.evpn_routes;
        let (_, applied) = self.sh.mutate(idx, |st| {
            let startup = st.startup.clone();
            st.model.add_neighbor(peer, &startup, routes)
        });
        Ok(applied)
    }

    fn on_neighbor(
        &self,
        node: &str,
        peer: &str,
        f: impl FnOnce(&mut Leaf) -> Option<()>,
    ) -> Result<Applied, SimError> {
        let idx = self.sh.leaf(node)?;
        let (found, applied) = self.sh.mutate(idx, |st| f(&mut st.model));
        found.map(|_| applied).ok_or_else(|| SimError::UnknownNeighbor { node: node.into(), peer: peer.into() })
    }

    pub fn fault(&self, node: &str, fault: Fault) -> Result<Applied, SimError> {
        let idx = self.sh.leaf(node)?;
        let slot = &self.sh.leaves[idx];
        match fault {
            Fault::DropStreams => {
                self.sh.kill_streams(idx, tonic::Status::unavailable("fabric-sim fault: streams dropped"))
            }
            Fault::RefuseSets { count } => lock(&slot.state).refuse_sets = count,
            Fault::RejectPath { path } => {
                let path = SPath::parse(&path).map_err(SimError::Invalid)?;
                lock(&slot.state).reject_paths.push(path);
            }
            Fault::DelaySets { delay_ms } => lock(&slot.state).set_delay = Duration::from_millis(delay_ms),
            Fault::StallSync { stall } => {
                slot.stall.send_replace(stall);
            }
            Fault::MalformedValue { path } => {
                let up = slot.profile.uplinks()[0];
                let path = path.unwrap_or_else(|| slot.profile.oper_path(up));
                let path = SPath::parse(&path).map_err(SimError::Invalid)?;
                self.sh.send_raw(idx, crate::server::raw_notification(&self.sh, &path, b"{\"up".to_vec()));
            }
            Fault::UnknownPath => {
                let path = SPath::parse("/interface[name=ethernet-1/49]/fabric-sim-unknown/leaf")
                    .map_err(SimError::Invalid)?;
                self.sh.send_raw(idx, crate::server::raw_notification(&self.sh, &path, b"\"surprise\"".to_vec()));
            }
            Fault::ModuleNames { enabled } => slot.module_names.store(enabled, Ordering::Relaxed),
            Fault::ProtoOnly { enabled } => slot.proto_only.store(enabled, Ordering::Relaxed),
            Fault::Restart { down_ms } => {
                let (_, applied) = self.sh.mutate(idx, |st| {
                    for s in st.subscribers.drain(..) {
                        let _ =
                            s.send(StreamEvent::Kill(tonic::Status::unavailable("fabric-sim fault: leaf restarting")));
                    }
                    st.model = Leaf::rebooted(&st.startup, &st.model);
                    st.unavailable_until = Some(Instant::now() + Duration::from_millis(down_ms));
                });
                return Ok(applied);
            }
            Fault::Freeze { frozen } => {
                slot.frozen.send_replace(frozen);
            }
            Fault::Reboot { down_ms, ibgp_down_ms } => return Ok(self.reboot(idx, down_ms, ibgp_down_ms)),
            Fault::Clear => {
                slot.frozen.send_replace(false);
                let mut st = lock(&slot.state);
                st.refuse_sets = 0;
                st.reject_paths.clear();
                st.set_delay = Duration::ZERO;
                drop(st);
                slot.stall.send_replace(false);
                slot.module_names.store(false, Ordering::Relaxed);
            }
        }
        Ok(self.now())
    }

    fn reboot(&self, idx: usize, down_ms: u64, ibgp_down_ms: u64) -> Applied {
        let slot = &self.sh.leaves[idx];
        // A rebooting process is no longer wedged.
        slot.frozen.send_replace(false);
        let (ibgp, applied) = self.sh.mutate(idx, |st| {
            for s in st.subscribers.drain(..) {
                let _ = s.send(StreamEvent::Kill(tonic::Status::unavailable("fabric-sim fault: leaf rebooting")));
            }
            st.model = Leaf::rebooted(&st.startup, &st.model);
            let ibgp: Vec<String> = st
                .model
                .neighbors
                .iter()
                .filter(|(_, n)| n.kind == crate::leaf::Kind::Ibgp)
                .map(|(p, _)| p.clone())
                .collect();
            for peer in &ibgp {
                st.model.pin_session(peer, Some(SessionState::Idle));
            }
            st.unavailable_until = Some(Instant::now() + Duration::from_millis(down_ms));
            ibgp
        });
        // The port closes: clients see their connections end and new ones refused.
        lock(&slot.server_stop).cancel();
        let sh = self.sh.clone();
        self.sh.rt.spawn(async move {
            tokio::time::sleep(Duration::from_millis(down_ms)).await;
            let slot = &sh.leaves[idx];
            let token = sh.cancel.child_token();
            *lock(&slot.server_stop) = token;
            // The old server lets go of the port once its connections are gone: retry the bind.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            let listener = loop {
                match tokio::net::TcpListener::bind(slot.addr).await {
                    Ok(l) => break l,
                    Err(e) if tokio::time::Instant::now() > deadline || sh.cancel.is_cancelled() => {
                        tracing::error!(leaf = %slot.name, error = %e, "reboot: cannot listen again");
                        return;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            };
            if let Err(e) = crate::server::serve(sh.clone(), idx, listener, sh.server_cert.as_ref()) {
                tracing::error!(leaf = %slot.name, error = %e, "reboot: cannot serve again");
                return;
            }
            tokio::time::sleep(Duration::from_millis(ibgp_down_ms)).await;
            sh.mutate(idx, |st| {
                for peer in &ibgp {
                    st.model.pin_session(peer, None);
                }
            });
        });
        applied
    }

    /// Every Set received since the start (or `clear_sets`), in receive order.
    pub fn sets(&self) -> Vec<SetRecord> {
        lock(&self.sh.sets).clone()
    }

    pub fn sets_count(&self) -> usize {
        lock(&self.sh.sets).len()
    }

    pub fn clear_sets(&self) {
        lock(&self.sh.sets).clear();
        self.sh.sets_done.send_replace(0);
    }

    /// Waits until at least `n` Sets are recorded; returns them all.
    pub async fn wait_for_sets(&self, n: usize, timeout: Duration) -> Result<Vec<SetRecord>, SimError> {
        let mut rx = self.sh.sets_done.subscribe();
        match tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n)).await {
            Ok(Ok(_)) => Ok(self.sets()),
            _ => Err(SimError::Timeout { what: format!("{n} Sets (have {})", self.sets().len()), timeout }),
        }
    }

    /// A leaf's current value at a canonical path, as JSON_IETF (`None`: no such leaf).
    /// Key values may carry a module prefix (`identifier=openconfig-policy-types:BGP`).
    pub fn value(&self, node: &str, path: &str) -> Result<Option<serde_json::Value>, SimError> {
        let idx = self.sh.leaf(node)?;
        let p = SPath::parse(path).map_err(SimError::Invalid)?;
        let tree = lock(&self.sh.leaves[idx].state).tree.clone();
        if let Some(v) = tree.get(&p) {
            return Ok(Some(v.to_json()));
        }
        Ok(tree.iter().find(|(l, _)| l.0.len() == p.0.len() && p.matches(l)).map(|(_, v)| v.to_json()))
    }

    /// The node's profile (`srl` or `openconfig`).
    pub fn profile(&self, node: &str) -> Result<crate::Profile, SimError> {
        Ok(self.sh.leaves[self.sh.leaf(node)?].profile)
    }

    /// The node's downlink and uplink names, as its profile spells them.
    pub fn interfaces(&self, node: &str) -> Result<(String, [String; 2]), SimError> {
        let p = self.profile(node)?;
        Ok((p.downlink().to_string(), p.uplinks().map(str::to_string)))
    }

    /// `enable` / `disable`, or `None` for an unknown interface. On an OpenConfig leaf this
    /// reads `state/enabled`.
    pub fn admin_state(&self, node: &str, interface: &str) -> Result<Option<String>, SimError> {
        let v = self.value(node, &self.profile(node)?.admin_path(interface))?;
        Ok(v.and_then(|v| match v {
            serde_json::Value::Bool(b) => Some(if b { "enable" } else { "disable" }.to_string()),
            v => v.as_str().map(str::to_string),
        }))
    }

    /// Every leaf value of a node, by canonical path.
    pub fn state(&self, node: &str) -> Result<BTreeMap<String, serde_json::Value>, SimError> {
        let idx = self.sh.leaf(node)?;
        let tree = lock(&self.sh.leaves[idx].state).tree.clone();
        Ok(tree.iter().map(|(p, v)| (p.to_string(), v.to_json())).collect())
    }

    /// Waits until a node's value at `path` equals `want` (`Value::Null`: until it is absent).
    pub async fn wait_for_value(
        &self,
        node: &str,
        path: &str,
        want: &serde_json::Value,
        timeout: Duration,
    ) -> Result<(), SimError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = self.sh.changed.subscribe();
        loop {
            rx.borrow_and_update();
            let now = self.value(node, path)?.unwrap_or(serde_json::Value::Null);
            if &now == want {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, rx.changed()).await.is_err() {
                return Err(SimError::Timeout { what: format!("{node} {path} = {want} (it is {now})"), timeout });
            }
        }
    }
}
