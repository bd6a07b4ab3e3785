//! One leaf of the fabric: its interfaces and BGP neighbors, the rules that tie them
//! together, the YANG-shaped tree it publishes and the Set operations it accepts.
//! Pure and synchronous: timers are requested, not run, here (see `fabric.rs`).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Timings;
use crate::path::{Elem, SPath, strip_module};
use crate::profile::Profile;
use crate::value::Val;

pub const DOWNLINK: &str = "ethernet-1/1";
pub const UPLINKS: [&str; 2] = ["ethernet-1/49", "ethernet-1/50"];
/// iBGP EVPN overlay neighbors: the spines' loopbacks (route reflectors).
pub const SPINE_LOOPBACKS: [&str; 2] = ["10.0.1.1", "10.0.1.2"];
pub const OVERLAY_AS: u32 = 100;
pub const SPINE_AS: u32 = 201;
const DEFAULT_MTU: u32 = 9232;

pub type Tree = BTreeMap<SPath, Val>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionState {
    Idle,
    Connect,
    Active,
    Opensent,
    Openconfirm,
    Established,
}

impl SessionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Idle => "idle",
            SessionState::Connect => "connect",
            SessionState::Active => "active",
            SessionState::Opensent => "opensent",
            SessionState::Openconfirm => "openconfirm",
            SessionState::Established => "established",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Interface {
    pub admin_enabled: bool,
    pub description: Option<String>,
    pub mtu: u32,
    /// The physical link (the cable and the far end), owned by the control API.
    pub link_up: bool,
    /// Derived: admin enabled and link up.
    pub oper_up: bool,
    pub carrier_transitions: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// Overlay EVPN session to a spine loopback: reachable while any uplink is up.
    Ibgp,
    /// Underlay session on a point-to-point link: follows that link.
    Ebgp { interface: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pending {
    Establish,
    /// Hold timer running: the session drops when it expires.
    Drop,
    /// EVPN routes arrive.
    Routes,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Neighbor {
    pub kind: Kind,
    pub peer_as: u32,
    pub admin_enabled: bool,
    pub session: SessionState,
    /// Session state forced by the control API; the model leaves it alone until cleared.
    pub pinned: bool,
    /// Received routes now (EVPN for iBGP, IPv4 unicast for eBGP).
    pub routes: u32,
    /// Routes the peer has to give once the session is up.
    pub routes_offered: u32,
    pub pending: Option<(Pending, u64)>,
}

/// A timer the model wants: call `Leaf::fire(peer, token)` after `after`.
#[derive(Debug, PartialEq)]
pub struct TimerReq {
    pub peer: String,
    pub token: u64,
    pub after: Duration,
}

#[derive(Clone, Debug)]
pub struct Leaf {
    /// Interface names, published tree and Set schema (`srl` or `openconfig`).
    pub profile: Profile,
    pub interfaces: BTreeMap<String, Interface>,
    pub neighbors: BTreeMap<String, Neighbor>,
    next_token: u64,
}

/// The spine's address on the /30 between leaf `k` (1-based) and spine `s` (1 or 2):
/// 192.168.(10+k).{1,5} as in the reference fabric while it fits, 100.64/16 beyond.
pub fn uplink_peer(k: usize, s: usize) -> Ipv4Addr {
    if k <= 245 {
        Ipv4Addr::new(192, 168, (10 + k) as u8, (4 * (s - 1) + 1) as u8)
    } else {
        let n = ((k - 1) * 2 + (s - 1)) as u32 * 4 + 1;
        Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 0)) + n)
    }
}

impl Leaf {
    /// Leaf `k` (1-based) of the reference shape at steady state, SR Linux profile.
    #[cfg(test)]
    pub fn startup(k: usize, leaves: usize, evpn_routes: u32) -> Leaf {
        Leaf::startup_as(Profile::Srl, k, leaves, evpn_routes)
    }

    /// Leaf `k` (1-based) of the reference shape at steady state: everything up,
    /// sessions established, routes received; interface names from `profile`.
    pub fn startup_as(profile: Profile, k: usize, leaves: usize, evpn_routes: u32) -> Leaf {
        let iface = || Interface {
            admin_enabled: true,
            description: None,
            mtu: DEFAULT_MTU,
            link_up: true,
            oper_up: true,
            carrier_transitions: 0,
        };
        let mut interfaces = BTreeMap::new();
        interfaces.insert(profile.downlink().to_string(), iface());
        let mut neighbors = BTreeMap::new();
        let underlay_routes = leaves as u32 + 1;
        for (i, up) in profile.uplinks().iter().enumerate() {
            interfaces.insert(up.to_string(), iface());
            neighbors.insert(
                uplink_peer(k, i + 1).to_string(),
                Neighbor::established(Kind::Ebgp { interface: up.to_string() }, SPINE_AS, underlay_routes),
            );
        }
        for lo in SPINE_LOOPBACKS {
            neighbors.insert(lo.to_string(), Neighbor::established(Kind::Ibgp, OVERLAY_AS, evpn_routes));
        }
        Leaf { profile, interfaces, neighbors, next_token: 0 }
    }

    /// The same leaf after a reboot: startup config, the physical links as they are now,
    /// every session starting from idle.
    pub fn rebooted(startup: &Leaf, now: &Leaf) -> Leaf {
        let mut l = startup.clone();
        l.next_token = now.next_token;
        for (name, i) in l.interfaces.iter_mut() {
            i.link_up = now.interfaces.get(name).is_none_or(|n| n.link_up);
            i.oper_up = false;
        }
        for n in l.neighbors.values_mut() {
            n.session = SessionState::Idle;
            n.routes = 0;
        }
        l
    }

    /// Applies the rules; returns the timers to start. Idempotent.
    pub fn reconcile(&mut self, t: &Timings) -> Vec<TimerReq> {
        for i in self.interfaces.values_mut() {
            let oper = i.admin_enabled && i.link_up;
            if oper != i.oper_up {
                i.oper_up = oper;
                i.carrier_transitions += 1;
            }
        }
        let any_uplink = self.profile.uplinks().iter().any(|u| self.interfaces.get(*u).is_some_and(|i| i.oper_up));
        let mut timers = Vec::new();
        for (peer, nb) in self.neighbors.iter_mut() {
            if nb.pinned {
                nb.pending = None;
                continue;
            }
            let link_ok = match &nb.kind {
                Kind::Ibgp => any_uplink,
                Kind::Ebgp { interface } => self.interfaces.get(interface).is_some_and(|i| i.oper_up),
            };
            let established = nb.session == SessionState::Established;
            let want = match (nb.admin_enabled && link_ok, established, &nb.kind) {
                // Multihop overlay session: nothing tells it the path is gone until the hold timer expires.
                (false, true, Kind::Ibgp) if nb.admin_enabled => Some((Pending::Drop, t.hold_time)),
                // Directly connected underlay (fast external failover) or admin disable: immediate.
                (false, _, _) => {
                    nb.session = if nb.admin_enabled { SessionState::Active } else { SessionState::Idle };
                    nb.routes = 0;
                    None
                }
                (true, false, Kind::Ibgp) => Some((Pending::Establish, t.ibgp_up)),
                (true, false, Kind::Ebgp { .. }) => Some((Pending::Establish, t.ebgp_up)),
                (true, true, _) if nb.routes != nb.routes_offered => Some((Pending::Routes, t.evpn_routes)),
                (true, true, _) => None,
            };
            match want {
                None => nb.pending = None,
                Some((kind, _)) if nb.pending.is_some_and(|(k, _)| k == kind) => {}
                Some((kind, after)) => {
                    self.next_token += 1;
                    nb.pending = Some((kind, self.next_token));
                    timers.push(TimerReq { peer: peer.clone(), token: self.next_token, after });
                }
            }
        }
        timers
    }

    /// A timer expired; call `reconcile` next. Stale timers (cancelled or superseded)
    /// do nothing and return false.
    pub fn fire(&mut self, peer: &str, token: u64) -> bool {
        let Some(nb) = self.neighbors.get_mut(peer) else { return false };
        let Some((kind, tok)) = nb.pending else { return false };
        if tok != token {
            return false;
        }
        nb.pending = None;
        match kind {
            Pending::Establish => {
                nb.session = SessionState::Established;
                // The underlay has its routes at once; EVPN takes another delay.
                nb.routes = if nb.kind == Kind::Ibgp { 0 } else { nb.routes_offered };
            }
            Pending::Drop => {
                nb.session = SessionState::Active;
                nb.routes = 0;
            }
            Pending::Routes => nb.routes = nb.routes_offered,
        }
        true
    }

    /// The published tree: every leaf value with its canonical path. Each interface and
    /// neighbor renders on its own (below its profile's base path), so a change can
    /// re-render just the ones it touched (see `fabric::Rendered`).
    pub fn render(&self) -> Tree {
        let mut t = Tree::new();
        for (name, i) in &self.interfaces {
            self.profile.render_interface(name, i, &mut t);
        }
        for (peer, nb) in &self.neighbors {
            self.profile.render_neighbor(peer, nb, &mut t);
        }
        t
    }
}

/// One interface of the SR Linux tree (`profile: srl`), below `interface_path(name)`.
pub(crate) fn render_srl_interface(name: &str, i: &Interface, t: &mut Tree) {
    let base = interface_path(name);
    let leaf = |n: &str| base.child(Elem::new(n));
    t.insert(leaf("admin-state"), Val::Str(if i.admin_enabled { "enable" } else { "disable" }.into()));
    t.insert(leaf("oper-state"), Val::Str(if i.oper_up { "up" } else { "down" }.into()));
    if !i.oper_up {
        let reason = if i.admin_enabled { "lower-layer-down" } else { "port-admin-disabled" };
        t.insert(leaf("oper-down-reason"), Val::Str(reason.into()));
    }
    if let Some(d) = &i.description {
        t.insert(leaf("description"), Val::Str(d.clone()));
    }
    t.insert(leaf("mtu"), Val::Uint(i.mtu));
    t.insert(
        base.child(Elem::new("statistics")).child(Elem::new("carrier-transitions")),
        Val::Counter64(i.carrier_transitions),
    );
}

/// One BGP neighbor of the SR Linux tree, below `neighbor_path(peer)`.
pub(crate) fn render_srl_neighbor(peer: &str, nb: &Neighbor, t: &mut Tree) {
    let base = neighbor_path(peer);
    let leaf = |n: &str| base.child(Elem::new(n));
    t.insert(leaf("admin-state"), Val::Str(if nb.admin_enabled { "enable" } else { "disable" }.into()));
    t.insert(leaf("peer-as"), Val::Uint(nb.peer_as));
    t.insert(leaf("session-state"), Val::Str(nb.session.as_str().into()));
    let afi = if nb.kind == Kind::Ibgp { "evpn" } else { "ipv4-unicast" };
    t.insert(
        base.child(Elem::keyed("afi-safi", "afi-safi-name", afi)).child(Elem::new("received-routes")),
        Val::Uint(nb.routes),
    );
}

impl Neighbor {
    pub fn established(kind: Kind, peer_as: u32, routes: u32) -> Neighbor {
        Neighbor {
            kind,
            peer_as,
            admin_enabled: true,
            session: SessionState::Established,
            pinned: false,
            routes,
            routes_offered: routes,
            pending: None,
        }
    }
}

pub fn interface_path(name: &str) -> SPath {
    SPath(vec![Elem::keyed("interface", "name", name)])
}

pub fn neighbor_path(peer: &str) -> SPath {
    SPath(vec![
        Elem::keyed("network-instance", "name", "default"),
        Elem::new("protocols"),
        Elem::new("bgp"),
        Elem::keyed("neighbor", "peer-address", peer),
    ])
}

// ---------------------------------------------------------------------------------
// Schema and Set

/// Every leaf the simulator models, and whether a Set may write it.
const SCHEMA: &[(&[&str], bool)] = &[
    (&["interface", "admin-state"], true),
    (&["interface", "description"], true),
    (&["interface", "mtu"], true),
    (&["interface", "oper-state"], false),
    (&["interface", "oper-down-reason"], false),
    (&["interface", "statistics", "carrier-transitions"], false),
    (&["network-instance", "protocols", "bgp", "neighbor", "admin-state"], true),
    (&["network-instance", "protocols", "bgp", "neighbor", "peer-as"], false),
    (&["network-instance", "protocols", "bgp", "neighbor", "session-state"], false),
    (&["network-instance", "protocols", "bgp", "neighbor", "afi-safi", "received-routes"], false),
];

/// Configuration (as opposed to state-only) leaves, for Get with type CONFIG.
pub fn is_config(p: &SPath) -> bool {
    let names: Vec<&str> = p.0.iter().map(|e| e.name.as_str()).collect();
    names.ends_with(&["peer-as"]) || SCHEMA.iter().any(|(n, w)| *w && *n == names.as_slice())
}

fn list_key(name: &str) -> Option<&'static str> {
    match name {
        "interface" | "network-instance" => Some("name"),
        "neighbor" => Some("peer-address"),
        "afi-safi" => Some("afi-safi-name"),
        _ => None,
    }
}

/// Checks element names and key names against the schema, with SR Linux's wording.
pub fn check_schema(p: &SPath) -> Result<(), String> {
    for (i, e) in p.0.iter().enumerate() {
        if e.name == "*" || e.name == "..." {
            return Ok(());
        }
        let known = SCHEMA.iter().any(|(names, _)| {
            names.len() > i && names[..=i].iter().zip(&p.0).all(|(n, pe)| pe.name == "*" || *n == pe.name)
        });
        if !known {
            let mut options: Vec<&str> = SCHEMA
                .iter()
                .filter(|(names, _)| names.len() > i && names[..i].iter().zip(&p.0).all(|(n, pe)| *n == pe.name))
                .map(|(names, _)| names[i])
                .collect();
            options.dedup();
            return Err(format!(
                "Path not valid - unknown element '{}' in {p}. Options are [{}]",
                e.name,
                options.join(", ")
            ));
        }
        match list_key(&e.name) {
            Some(key) => {
                if let Some(bad) = e.keys.keys().find(|k| k.as_str() != key) {
                    return Err(format!(
                        "Path not valid - unknown key '{bad}' for list '{}' in {p}; the key is '{key}'",
                        e.name
                    ));
                }
            }
            None if !e.keys.is_empty() => {
                return Err(format!("Path not valid - element '{}' in {p} is not a list and takes no keys", e.name));
            }
            None => {}
        }
    }
    Ok(())
}

/// One SetRequest, decoded: paths made absolute, values as JSON.
#[derive(Clone, Debug, Default)]
pub struct SetOps {
    pub deletes: Vec<SPath>,
    pub replaces: Vec<(SPath, serde_json::Value)>,
    pub updates: Vec<(SPath, serde_json::Value)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SetError {
    pub code: tonic::Code,
    pub message: String,
}

fn invalid(message: String) -> SetError {
    SetError { code: tonic::Code::InvalidArgument, message }
}

impl Leaf {
    /// Applies deletes, then replaces, then updates, all or nothing.
    pub fn apply_set(&mut self, ops: &SetOps) -> Result<(), SetError> {
        let mut next = self.clone();
        for p in &ops.deletes {
            next.delete(p)?;
        }
        for (p, v) in &ops.replaces {
            next.delete_config_below(p)?;
            next.write(p, v)?;
        }
        for (p, v) in &ops.updates {
            next.write(p, v)?;
        }
        *self = next;
        Ok(())
    }

    fn write(&mut self, p: &SPath, v: &serde_json::Value) -> Result<(), SetError> {
        let mut leaves = Vec::new();
        flatten(p, v, &mut leaves)?;
        for (lp, lv) in leaves {
            self.write_leaf(&lp, &lv)?;
        }
        Ok(())
    }

    fn write_leaf(&mut self, p: &SPath, v: &serde_json::Value) -> Result<(), SetError> {
        if self.profile == Profile::OpenConfig {
            return crate::openconfig::write_leaf(self, p, v);
        }
        let names = target_checks(p)?;
        if !SCHEMA.iter().any(|(n, w)| *w && *n == names.as_slice()) {
            if SCHEMA.iter().any(|(n, _)| *n == names.as_slice()) {
                return Err(invalid(format!("Cannot set {p}: the leaf is read-only (state)")));
            }
            return Err(invalid(format!("Cannot set {p}: it is a container; give a JSON object or a leaf path")));
        }
        match names.as_slice() {
            ["interface", leaf] => {
                let iface = self.interface_mut(p)?;
                match *leaf {
                    "admin-state" => iface.admin_enabled = enable_value(p, v)?,
                    "description" => {
                        let s = v
                            .as_str()
                            .ok_or_else(|| invalid(format!("Invalid value {v} for {p}: expected a string")))?;
                        if s.len() > 255 {
                            return Err(invalid(format!("Invalid value for {p}: length {} exceeds 255", s.len())));
                        }
                        iface.description = Some(s.to_string());
                    }
                    _ => {
                        let n = v.as_u64().filter(|n| (1500..=9500).contains(n)).ok_or_else(|| {
                            invalid(format!("Invalid value {v} for {p}: must be a number in range 1500..9500"))
                        })?;
                        iface.mtu = n as u32;
                    }
                }
            }
            _ => {
                let en = enable_value(p, v)?;
                self.neighbor_mut(p)?.admin_enabled = en;
            }
        }
        Ok(())
    }

    fn delete(&mut self, p: &SPath) -> Result<(), SetError> {
        if self.profile == Profile::OpenConfig {
            return crate::openconfig::delete(self, p);
        }
        let names = target_checks(p)?;
        match names.as_slice() {
            ["network-instance", "protocols", "bgp", "neighbor"] => {
                let peer = p.0[3].keys.get("peer-address").cloned().unwrap_or_default();
                // Deleting what does not exist is a no-op in gNMI.
                self.neighbors.remove(&peer);
                Ok(())
            }
            _ => self.delete_config_below(p),
        }
    }

    /// Resets the configuration at or below `p` to its defaults.
    fn delete_config_below(&mut self, p: &SPath) -> Result<(), SetError> {
        if self.profile == Profile::OpenConfig {
            return crate::openconfig::reset_config_below(self, p);
        }
        let names = target_checks(p)?;
        match names.as_slice() {
            ["interface"] => {
                let i = self.interface_mut(p)?;
                i.admin_enabled = true;
                i.description = None;
                i.mtu = DEFAULT_MTU;
            }
            ["interface", "admin-state"] => self.interface_mut(p)?.admin_enabled = true,
            ["interface", "description"] => self.interface_mut(p)?.description = None,
            ["interface", "mtu"] => self.interface_mut(p)?.mtu = DEFAULT_MTU,
            ["network-instance", "protocols", "bgp", "neighbor"]
            | ["network-instance", "protocols", "bgp", "neighbor", "admin-state"] => {
                self.neighbor_mut(p)?.admin_enabled = true
            }
            _ if SCHEMA.iter().any(|(n, w)| !*w && *n == names.as_slice()) => {
                return Err(invalid(format!("Cannot delete {p}: the leaf is read-only (state)")));
            }
            _ => {
                return Err(invalid(format!(
                    "Cannot delete or replace {p}: fabric-sim models configuration only on interfaces and BGP neighbors"
                )));
            }
        }
        Ok(())
    }

    fn interface_mut(&mut self, p: &SPath) -> Result<&mut Interface, SetError> {
        let name = p.0[0].keys.get("name").map(String::as_str).unwrap_or_default();
        let known: Vec<&str> = self.interfaces.keys().map(String::as_str).collect();
        let known = known.join(", ");
        self.interfaces.get_mut(name).ok_or_else(|| SetError {
            code: tonic::Code::NotFound,
            message: format!("interface '{name}' does not exist on this node (it has {known})"),
        })
    }

    fn neighbor_mut(&mut self, p: &SPath) -> Result<&mut Neighbor, SetError> {
        let peer = p.0.get(3).and_then(|e| e.keys.get("peer-address")).map(String::as_str).unwrap_or_default();
        self.neighbors.get_mut(peer).ok_or_else(|| SetError {
            code: tonic::Code::NotFound,
            message: format!("BGP neighbor '{peer}' does not exist in network-instance default"),
        })
    }

    /// Adds a neighbor (or brings back one from the startup config), starting idle.
    pub fn add_neighbor(&mut self, peer: &str, startup: &Leaf, default_routes: u32) {
        let mut nb = startup
            .neighbors
            .get(peer)
            .cloned()
            .unwrap_or_else(|| Neighbor::established(Kind::Ibgp, OVERLAY_AS, default_routes));
        nb.session = SessionState::Idle;
        nb.routes = 0;
        nb.pending = None;
        nb.pinned = false;
        self.neighbors.insert(peer.to_string(), nb);
    }

    /// Forces a session state (`None` hands the session back to the model).
    pub fn pin_session(&mut self, peer: &str, state: Option<SessionState>) -> Option<()> {
        let nb = self.neighbors.get_mut(peer)?;
        match state {
            Some(s) => {
                nb.pinned = true;
                nb.pending = None;
                nb.session = s;
                nb.routes = if s == SessionState::Established { nb.routes_offered } else { 0 };
            }
            None => nb.pinned = false,
        }
        Some(())
    }

    /// Sets the routes a neighbor offers; an established session receives them at once.
    pub fn offer_routes(&mut self, peer: &str, routes: u32) -> Option<()> {
        let nb = self.neighbors.get_mut(peer)?;
        nb.routes_offered = routes;
        if nb.session == SessionState::Established && nb.pending.is_none() {
            nb.routes = routes;
        }
        Some(())
    }
}

/// Element names of a Set target after the checks every Set path gets.
fn target_checks(p: &SPath) -> Result<Vec<&str>, SetError> {
    if p.has_wildcards() {
        return Err(invalid(format!("Wildcards are not allowed in Set paths: {p}")));
    }
    check_schema(p).map_err(invalid)?;
    if let Some(ni) = p.0.first().filter(|e| e.name == "network-instance") {
        let name = ni.keys.get("name").map(String::as_str).unwrap_or_default();
        if name != "default" {
            return Err(SetError {
                code: tonic::Code::NotFound,
                message: format!("network-instance '{name}' does not exist (fabric-sim models 'default')"),
            });
        }
    }
    for e in &p.0 {
        if let Some(key) = list_key(&e.name)
            && !e.keys.contains_key(key)
        {
            return Err(invalid(format!("Set path {p} must name the '{}' list entry with its key '{key}'", e.name)));
        }
    }
    Ok(p.0.iter().map(|e| e.name.as_str()).collect())
}

fn enable_value(p: &SPath, v: &serde_json::Value) -> Result<bool, SetError> {
    match v.as_str().map(strip_module) {
        Some("enable") => Ok(true),
        Some("disable") => Ok(false),
        _ => Err(invalid(format!("Invalid value {v} for {p}: must be one of [enable, disable]"))),
    }
}

/// A JSON object under a container becomes one write per leaf.
fn flatten(p: &SPath, v: &serde_json::Value, out: &mut Vec<(SPath, serde_json::Value)>) -> Result<(), SetError> {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                flatten(&p.child(Elem::new(strip_module(k))), v, out)?;
            }
            Ok(())
        }
        serde_json::Value::Array(_) => Err(invalid(format!(
            "Lists in Set values are not supported by fabric-sim at {p}; address each list entry with its key in the path"
        ))),
        _ => {
            out.push((p.clone(), v.clone()));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Timings {
        Timings::fast()
    }

    fn val(l: &Leaf, p: &str) -> Option<Val> {
        l.render().get(&SPath::parse(p).unwrap()).cloned()
    }

    fn s(v: &str) -> Option<Val> {
        Some(Val::Str(v.into()))
    }

    #[test]
    fn admin_disable_takes_oper_down_with_reason() {
        let mut l = Leaf::startup(1, 4, 10);
        l.interfaces.get_mut(DOWNLINK).unwrap().admin_enabled = false;
        assert!(l.reconcile(&t()).is_empty());
        assert_eq!(val(&l, "/interface[name=ethernet-1/1]/oper-state"), s("down"));
        assert_eq!(val(&l, "/interface[name=ethernet-1/1]/oper-down-reason"), s("port-admin-disabled"));
        assert_eq!(val(&l, "/interface[name=ethernet-1/1]/statistics/carrier-transitions"), Some(Val::Counter64(1)));
    }

    #[test]
    fn uplinks_down_drop_ebgp_at_once_and_ibgp_after_hold_time() {
        let mut l = Leaf::startup(1, 4, 10);
        for u in UPLINKS {
            l.interfaces.get_mut(u).unwrap().link_up = false;
        }
        let timers = l.reconcile(&t());
        assert_eq!(val(&l, "/interface[name=ethernet-1/49]/oper-down-reason"), s("lower-layer-down"));
        assert_eq!(
            val(&l, "/network-instance[name=default]/protocols/bgp/neighbor[peer-address=192.168.11.1]/session-state"),
            s("active")
        );
        // Both iBGP sessions still up: the hold timer runs.
        assert_eq!(timers.len(), 2);
        assert!(timers.iter().all(|tr| tr.after == t().hold_time));
        assert_eq!(
            val(&l, "/network-instance[name=default]/protocols/bgp/neighbor[peer-address=10.0.1.1]/session-state"),
            s("established")
        );
        assert!(l.fire("10.0.1.1", timers[0].token));
        assert!(l.reconcile(&t()).is_empty());
        assert_eq!(
            val(&l, "/network-instance[name=default]/protocols/bgp/neighbor[peer-address=10.0.1.1]/session-state"),
            s("active")
        );
        assert_eq!(
            val(
                &l,
                "/network-instance[name=default]/protocols/bgp/neighbor[peer-address=10.0.1.1]/afi-safi[afi-safi-name=evpn]/received-routes"
            ),
            Some(Val::Uint(0))
        );
    }

    #[test]
    fn uplink_back_before_hold_expiry_keeps_ibgp() {
        let mut l = Leaf::startup(1, 4, 10);
        for u in UPLINKS {
            l.interfaces.get_mut(u).unwrap().link_up = false;
        }
        let timers = l.reconcile(&t());
        l.interfaces.get_mut("ethernet-1/50").unwrap().link_up = true;
        let _ = l.reconcile(&t());
        assert!(!l.fire("10.0.1.1", timers[0].token), "the cancelled hold timer is stale");
        assert_eq!(l.neighbors["10.0.1.1"].session, SessionState::Established);
    }

    #[test]
    fn recovery_establishes_then_routes_arrive() {
        let mut l = Leaf::startup(2, 4, 7);
        let startup = l.clone();
        l = Leaf::rebooted(&startup, &l);
        let timers = l.reconcile(&t());
        assert_eq!(timers.len(), 4, "two eBGP and two iBGP sessions start establishing");
        let ib = timers.iter().find(|tr| tr.peer == "10.0.1.2").unwrap();
        assert_eq!(ib.after, t().ibgp_up);
        assert!(l.fire("10.0.1.2", ib.token));
        let routes = l.reconcile(&t());
        assert_eq!(l.neighbors["10.0.1.2"].session, SessionState::Established);
        assert_eq!(l.neighbors["10.0.1.2"].routes, 0);
        assert_eq!(routes.len(), 1);
        assert_eq!(routes[0].after, t().evpn_routes);
        assert!(l.fire("10.0.1.2", routes[0].token));
        assert!(l.reconcile(&t()).is_empty());
        assert_eq!(l.neighbors["10.0.1.2"].routes, 7);
    }

    #[test]
    fn set_is_atomic_and_errors_name_the_path() {
        let mut l = Leaf::startup(1, 4, 10);
        let ops = SetOps {
            updates: vec![
                (SPath::parse("/interface[name=ethernet-1/1]/admin-state").unwrap(), serde_json::json!("disable")),
                (SPath::parse("/interface[name=ethernet-1/49]/admin-state").unwrap(), serde_json::json!("down")),
            ],
            ..Default::default()
        };
        let err = l.apply_set(&ops).unwrap_err();
        assert!(err.message.contains("ethernet-1/49") && err.message.contains("[enable, disable]"), "{}", err.message);
        assert!(l.interfaces[DOWNLINK].admin_enabled, "nothing applied");

        let bad = SetOps {
            updates: vec![(SPath::parse("/interface[name=ethernet-1/1]/adminstate").unwrap(), serde_json::json!("x"))],
            ..Default::default()
        };
        let err = l.apply_set(&bad).unwrap_err();
        assert!(
            err.message.contains("unknown element 'adminstate'") && err.message.contains("admin-state"),
            "{}",
            err.message
        );

        let ro = SetOps {
            updates: vec![(
                SPath::parse("/interface[name=ethernet-1/1]/oper-state").unwrap(),
                serde_json::json!("down"),
            )],
            ..Default::default()
        };
        assert!(l.apply_set(&ro).unwrap_err().message.contains("read-only"));
    }

    #[test]
    fn replace_container_resets_then_writes_and_delete_removes_neighbor() {
        let mut l = Leaf::startup(1, 4, 10);
        l.interfaces.get_mut(DOWNLINK).unwrap().description = Some("client1".into());
        let ops = SetOps {
            replaces: vec![(
                SPath::parse("/interface[name=ethernet-1/1]").unwrap(),
                serde_json::json!({"srl_nokia-interfaces:admin-state": "disable"}),
            )],
            deletes: vec![neighbor_path("10.0.1.1")],
            ..Default::default()
        };
        l.apply_set(&ops).unwrap();
        assert!(!l.interfaces[DOWNLINK].admin_enabled);
        assert_eq!(l.interfaces[DOWNLINK].description, None);
        assert!(!l.neighbors.contains_key("10.0.1.1"));
    }
}
