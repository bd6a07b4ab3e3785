//! The `openconfig` profile: the same leaf published through openconfig-interfaces and
//! openconfig-network-instance/openconfig-bgp, as an Arista EOS leaf serves them.
//!
//! Tree keys are stored bare (`protocol[identifier=BGP][name=BGP]`); on the wire the
//! identity keys carry their module (`openconfig-policy-types:BGP`, see `path.rs`), as
//! identityref values do in JSON_IETF. Values: `enabled` is a bool, `oper-status` and
//! `session-state` are upper-case enumerations, prefix counts are uint32, counters counter64.

use crate::leaf::{Interface, Kind, Leaf, Neighbor, SetError, Tree};
use crate::path::{Elem, SPath};
use crate::value::Val;

/// The one BGP protocol instance (`protocol[identifier=BGP][name=BGP]`).
pub const BGP_NAME: &str = "BGP";
const DEFAULT_MTU: u32 = 9232;

/// Every leaf this profile models, and whether a Set may write it.
const SCHEMA: &[(&[&str], bool)] = &[
    (&["interfaces", "interface", "config", "name"], false),
    (&["interfaces", "interface", "config", "enabled"], true),
    (&["interfaces", "interface", "config", "description"], true),
    (&["interfaces", "interface", "config", "mtu"], true),
    (&["interfaces", "interface", "state", "name"], false),
    (&["interfaces", "interface", "state", "enabled"], false),
    (&["interfaces", "interface", "state", "admin-status"], false),
    (&["interfaces", "interface", "state", "oper-status"], false),
    (&["interfaces", "interface", "state", "mtu"], false),
    (&["interfaces", "interface", "state", "counters", "carrier-transitions"], false),
    (NEIGHBOR_CONFIG_ENABLED, true),
    (
        &[
            "network-instances",
            "network-instance",
            "protocols",
            "protocol",
            "bgp",
            "neighbors",
            "neighbor",
            "config",
            "peer-as",
        ],
        false,
    ),
    (
        &[
            "network-instances",
            "network-instance",
            "protocols",
            "protocol",
            "bgp",
            "neighbors",
            "neighbor",
            "state",
            "enabled",
        ],
        false,
    ),
    (
        &[
            "network-instances",
            "network-instance",
            "protocols",
            "protocol",
            "bgp",
            "neighbors",
            "neighbor",
            "state",
            "peer-as",
        ],
        false,
    ),
    (
        &[
            "network-instances",
            "network-instance",
            "protocols",
            "protocol",
            "bgp",
            "neighbors",
            "neighbor",
            "state",
            "session-state",
        ],
        false,
    ),
    (
        &[
            "network-instances",
            "network-instance",
            "protocols",
            "protocol",
            "bgp",
            "neighbors",
            "neighbor",
            "afi-safis",
            "afi-safi",
            "state",
            "afi-safi-name",
        ],
        false,
    ),
    (
        &[
            "network-instances",
            "network-instance",
            "protocols",
            "protocol",
            "bgp",
            "neighbors",
            "neighbor",
            "afi-safis",
            "afi-safi",
            "state",
            "prefixes",
            "received",
        ],
        false,
    ),
];

const NEIGHBOR: &[&str] =
    &["network-instances", "network-instance", "protocols", "protocol", "bgp", "neighbors", "neighbor"];
const NEIGHBOR_CONFIG_ENABLED: &[&str] = &[
    "network-instances",
    "network-instance",
    "protocols",
    "protocol",
    "bgp",
    "neighbors",
    "neighbor",
    "config",
    "enabled",
];

fn list_keys(name: &str) -> Option<&'static [&'static str]> {
    match name {
        "interface" | "network-instance" => Some(&["name"]),
        "protocol" => Some(&["identifier", "name"]),
        "neighbor" => Some(&["neighbor-address"]),
        "afi-safi" => Some(&["afi-safi-name"]),
        _ => None,
    }
}

fn names(p: &SPath) -> Vec<&str> {
    p.0.iter().map(|e| e.name.as_str()).collect()
}

pub fn is_config(p: &SPath) -> bool {
    names(p).contains(&"config")
}

/// Element and key names against the schema; wildcards stop the check.
pub fn check_schema(p: &SPath) -> Result<(), String> {
    for (i, e) in p.0.iter().enumerate() {
        if e.name == "*" || e.name == "..." {
            return Ok(());
        }
        let known = SCHEMA
            .iter()
            .any(|(n, _)| n.len() > i && n[..=i].iter().zip(&p.0).all(|(n, pe)| pe.name == "*" || *n == pe.name));
        if !known {
            let mut options: Vec<&str> = SCHEMA
                .iter()
                .filter(|(n, _)| n.len() > i && n[..i].iter().zip(&p.0).all(|(n, pe)| *n == pe.name))
                .map(|(n, _)| n[i])
                .collect();
            options.dedup();
            return Err(format!("unknown element '{}' in path {p} (expected one of: {})", e.name, options.join(", ")));
        }
        match list_keys(&e.name) {
            Some(keys) => {
                if let Some(bad) = e.keys.keys().find(|k| !keys.contains(&k.as_str())) {
                    return Err(format!(
                        "unknown key '{bad}' for list '{}' in path {p} (keys: {})",
                        e.name,
                        keys.join(", ")
                    ));
                }
            }
            None if !e.keys.is_empty() => return Err(format!("element '{}' in path {p} is not a list", e.name)),
            None => {}
        }
    }
    Ok(())
}

pub fn neighbor_path(peer: &str) -> SPath {
    let mut protocol = Elem::keyed("protocol", "identifier", "BGP");
    protocol.keys.insert("name".into(), BGP_NAME.into());
    SPath(vec![
        Elem::new("network-instances"),
        Elem::keyed("network-instance", "name", "default"),
        Elem::new("protocols"),
        protocol,
        Elem::new("bgp"),
        Elem::new("neighbors"),
        Elem::keyed("neighbor", "neighbor-address", peer),
    ])
}

pub fn interface_path(name: &str) -> SPath {
    SPath(vec![Elem::new("interfaces"), Elem::keyed("interface", "name", name)])
}

fn up_down(b: bool) -> Val {
    Val::Str(if b { "UP" } else { "DOWN" }.into())
}

/// One interface, below `interface_path(name)`.
pub(crate) fn render_interface(name: &str, i: &Interface, t: &mut Tree) {
    let base = interface_path(name);
    let config = base.child(Elem::new("config"));
    let state = base.child(Elem::new("state"));
    let at = |c: &SPath, n: &str| c.child(Elem::new(n));
    t.insert(at(&config, "name"), Val::Str(name.to_string()));
    t.insert(at(&config, "enabled"), Val::Bool(i.admin_enabled));
    t.insert(at(&config, "mtu"), Val::Uint(i.mtu));
    t.insert(at(&state, "name"), Val::Str(name.to_string()));
    t.insert(at(&state, "enabled"), Val::Bool(i.admin_enabled));
    t.insert(at(&state, "admin-status"), up_down(i.admin_enabled));
    // Administratively down is DOWN; a dead link under an enabled port is LOWER_LAYER_DOWN.
    let oper = match (i.oper_up, i.admin_enabled) {
        (true, _) => "UP",
        (false, true) => "LOWER_LAYER_DOWN",
        (false, false) => "DOWN",
    };
    t.insert(at(&state, "oper-status"), Val::Str(oper.into()));
    t.insert(at(&state, "mtu"), Val::Uint(i.mtu));
    if let Some(d) = &i.description {
        t.insert(at(&config, "description"), Val::Str(d.clone()));
    }
    t.insert(at(&state, "counters").child(Elem::new("carrier-transitions")), Val::Counter64(i.carrier_transitions));
}

/// One BGP neighbor, below `neighbor_path(peer)`.
pub(crate) fn render_neighbor(peer: &str, nb: &Neighbor, t: &mut Tree) {
    let base = neighbor_path(peer);
    let config = base.child(Elem::new("config"));
    let state = base.child(Elem::new("state"));
    let at = |c: &SPath, n: &str| c.child(Elem::new(n));
    t.insert(at(&config, "enabled"), Val::Bool(nb.admin_enabled));
    t.insert(at(&config, "peer-as"), Val::Uint(nb.peer_as));
    t.insert(at(&state, "enabled"), Val::Bool(nb.admin_enabled));
    t.insert(at(&state, "peer-as"), Val::Uint(nb.peer_as));
    t.insert(at(&state, "session-state"), Val::Str(nb.session.as_str().to_ascii_uppercase()));
    let (afi, module) = match nb.kind {
        Kind::Ibgp => ("L2VPN_EVPN", "openconfig-bgp-types"),
        Kind::Ebgp { .. } => ("IPV4_UNICAST", "openconfig-bgp-types"),
    };
    let afi_state = base
        .child(Elem::new("afi-safis"))
        .child(Elem::keyed("afi-safi", "afi-safi-name", afi))
        .child(Elem::new("state"));
    // An identityref value: JSON_IETF names its module.
    t.insert(at(&afi_state, "afi-safi-name"), Val::Str(format!("{module}:{afi}")));
    t.insert(afi_state.child(Elem::new("prefixes")).child(Elem::new("received")), Val::Uint(nb.routes));
}

fn invalid(message: String) -> SetError {
    SetError { code: tonic::Code::InvalidArgument, message }
}

/// Checks common to every Set path; returns the element names.
fn target_checks(p: &SPath) -> Result<Vec<&str>, SetError> {
    if p.has_wildcards() {
        return Err(invalid(format!("wildcards are not allowed in Set paths: {p}")));
    }
    check_schema(p).map_err(invalid)?;
    for e in &p.0 {
        if let Some(keys) = list_keys(&e.name)
            && let Some(missing) = keys.iter().find(|k| !e.keys.contains_key(k))
        {
            return Err(invalid(format!(
                "Set path {p} must name the '{}' list entry with its key '{missing}'",
                e.name
            )));
        }
    }
    if let Some(ni) = p.0.get(1).filter(|e| e.name == "network-instance") {
        let name = ni.keys.get("name").map(String::as_str).unwrap_or_default();
        let protocol = p.0.get(3).map(|e| (e.keys.get("identifier"), e.keys.get("name")));
        let bgp = |v: Option<&String>, want: &str| v.is_none_or(|v| crate::path::strip_module(v) == want);
        if name != "default" || protocol.is_some_and(|(id, n)| !bgp(id, "BGP") || !bgp(n, BGP_NAME)) {
            return Err(SetError {
                code: tonic::Code::NotFound,
                message: format!(
                    "{p} does not exist (fabric-sim models network-instance default, protocol BGP {BGP_NAME})"
                ),
            });
        }
    }
    Ok(names(p))
}

fn enabled_value(p: &SPath, v: &serde_json::Value) -> Result<bool, SetError> {
    v.as_bool().ok_or_else(|| invalid(format!("Invalid value {v} for {p}: expected a boolean (true or false)")))
}

fn interface_mut<'a>(leaf: &'a mut Leaf, p: &SPath) -> Result<&'a mut Interface, SetError> {
    let name = p.0[1].keys.get("name").map(String::as_str).unwrap_or_default();
    let known = leaf.interfaces.keys().cloned().collect::<Vec<_>>().join(", ");
    leaf.interfaces.get_mut(name).ok_or_else(|| SetError {
        code: tonic::Code::NotFound,
        message: format!("interface '{name}' does not exist on this node (it has {known})"),
    })
}

fn peer(p: &SPath) -> String {
    p.0.get(6).and_then(|e| e.keys.get("neighbor-address")).cloned().unwrap_or_default()
}

/// Writes one leaf of a Set (containers were flattened by the caller).
pub fn write_leaf(leaf: &mut Leaf, p: &SPath, v: &serde_json::Value) -> Result<(), SetError> {
    let names = target_checks(p)?;
    if !SCHEMA.iter().any(|(n, w)| *w && *n == names.as_slice()) {
        if SCHEMA.iter().any(|(n, _)| *n == names.as_slice()) {
            return Err(invalid(format!("Cannot set {p}: the leaf is read-only (state)")));
        }
        return Err(invalid(format!("Cannot set {p}: it is a container; give a JSON object or a leaf path")));
    }
    match names.as_slice() {
        ["interfaces", "interface", "config", leaf_name] => {
            let iface = interface_mut(leaf, p)?;
            match *leaf_name {
                "enabled" => iface.admin_enabled = enabled_value(p, v)?,
                "description" => {
                    let s =
                        v.as_str().ok_or_else(|| invalid(format!("Invalid value {v} for {p}: expected a string")))?;
                    iface.description = Some(s.to_string());
                }
                _ => {
                    let n = v.as_u64().filter(|n| (68..=65535).contains(n)).ok_or_else(|| {
                        invalid(format!("Invalid value {v} for {p}: must be a number in range 68..65535"))
                    })?;
                    iface.mtu = n as u32;
                }
            }
        }
        _ => {
            let en = enabled_value(p, v)?;
            let peer = peer(p);
            let nb = leaf.neighbors.get_mut(&peer).ok_or_else(|| not_found_neighbor(&peer))?;
            nb.admin_enabled = en;
        }
    }
    Ok(())
}

fn not_found_neighbor(peer: &str) -> SetError {
    SetError { code: tonic::Code::NotFound, message: format!("BGP neighbor '{peer}' does not exist") }
}

/// Delete: a neighbor entry goes away; configuration below an interface or neighbor
/// returns to its defaults.
pub fn delete(leaf: &mut Leaf, p: &SPath) -> Result<(), SetError> {
    let names = target_checks(p)?;
    if names.as_slice() == NEIGHBOR {
        leaf.neighbors.remove(&peer(p));
        return Ok(());
    }
    reset_config_below(leaf, p)
}

/// Resets the configuration at or below `p` (the first half of a replace).
pub fn reset_config_below(leaf: &mut Leaf, p: &SPath) -> Result<(), SetError> {
    let names = target_checks(p)?;
    match names.as_slice() {
        ["interfaces", "interface"] | ["interfaces", "interface", "config"] => {
            let i = interface_mut(leaf, p)?;
            i.admin_enabled = true;
            i.description = None;
            i.mtu = DEFAULT_MTU;
        }
        ["interfaces", "interface", "config", "enabled"] => interface_mut(leaf, p)?.admin_enabled = true,
        ["interfaces", "interface", "config", "description"] => interface_mut(leaf, p)?.description = None,
        ["interfaces", "interface", "config", "mtu"] => interface_mut(leaf, p)?.mtu = DEFAULT_MTU,
        n if n == NEIGHBOR
            || n == NEIGHBOR_CONFIG_ENABLED
            || (n.len() == NEIGHBOR.len() + 1 && n.ends_with(&["config"])) =>
        {
            let peer = peer(p);
            leaf.neighbors.get_mut(&peer).ok_or_else(|| not_found_neighbor(&peer))?.admin_enabled = true;
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
