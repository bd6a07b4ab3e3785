//! One group from its YAML shape: its target, interfaces expanded, readiness, delays;
//! and the claims that keep groups on one target from fighting over an interface.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_saphyr::Spanned;

use super::raw::{RawAdminState, RawGroup};
use super::resolve::Context;
use super::{ConfigError, Group, Readiness, Target};

/// Flatten expanded patterns, rejecting a name listed twice.
fn interfaces(
    key: &str,
    list: &Spanned<Vec<Spanned<super::raw::Pattern>>>,
    cx: &Context,
) -> Result<Vec<String>, ConfigError> {
    if list.value.is_empty() {
        return Err(cx.error(key, Some(list.referenced), "list at least one interface"));
    }
    let mut out: Vec<String> = Vec::new();
    for (i, pattern) in list.value.iter().enumerate() {
        for name in &pattern.value.0 {
            if out.contains(name) {
                return Err(cx.error(
                    format!("{key}[{i}]"),
                    Some(pattern.referenced),
                    format!("interface {name} is listed twice"),
                ));
            }
            out.push(name.clone());
        }
    }
    Ok(out)
}

pub(super) fn group(
    name: &str,
    g: &RawGroup,
    targets: &BTreeMap<String, Target>,
    cx: &Context,
) -> Result<Group, ConfigError> {
    let key = format!("groups.{name}");
    if !targets.contains_key(&g.target.value) {
        return Err(cx.error(
            format!("{key}.target"),
            Some(g.target.referenced),
            format!("unknown target {:?} (targets: {})", g.target.value, crate::brief::list(targets.keys())),
        ));
    }
    let uplinks = interfaces(&format!("{key}.uplinks"), &g.uplinks, cx)?;
    let downlinks = interfaces(&format!("{key}.downlinks"), &g.downlinks, cx)?;
    for (i, pattern) in g.downlinks.value.iter().enumerate() {
        if let Some(both) = pattern.value.0.iter().find(|d| uplinks.contains(d)) {
            return Err(cx.error(
                format!("{key}.downlinks[{i}]"),
                Some(pattern.referenced),
                format!("interface {both} is both an uplink and a downlink"),
            ));
        }
    }
    let required_up = g.required_up.as_ref().map_or(1, |r| r.value);
    if required_up == 0 || required_up > uplinks.len() {
        return Err(cx.error(
            format!("{key}.required-up"),
            g.required_up.as_ref().map(|r| r.referenced),
            format!("required-up {required_up} must be between 1 and the number of uplinks ({})", uplinks.len()),
        ));
    }
    let readiness = match &g.readiness {
        None => None,
        Some(r) => {
            let rkey = format!("{key}.readiness");
            if r.bgp_neighbors.value.is_empty() {
                return Err(cx.error(
                    format!("{rkey}.bgp-neighbors"),
                    Some(r.bgp_neighbors.referenced),
                    "list at least one neighbor",
                ));
            }
            let mut neighbors: Vec<String> = Vec::new();
            for (i, peer) in r.bgp_neighbors.value.iter().enumerate() {
                if neighbors.contains(&peer.value.0) {
                    return Err(cx.error(
                        format!("{rkey}.bgp-neighbors[{i}]"),
                        Some(peer.referenced),
                        format!("neighbor {} is listed twice", peer.value.0),
                    ));
                }
                neighbors.push(peer.value.0.clone());
            }
            let min_established = r.min_established.as_ref().map_or(neighbors.len(), |m| m.value);
            if min_established > neighbors.len() {
                return Err(cx.error(
                    format!("{rkey}.min-established"),
                    r.min_established.as_ref().map(|m| m.referenced),
                    format!(
                        "min-established {min_established} is more than the {} listed bgp-neighbors",
                        neighbors.len()
                    ),
                ));
            }
            Some(Readiness {
                network_instance: r.network_instance.as_ref().map_or_else(|| "default".to_string(), |n| n.0.clone()),
                bgp_neighbors: neighbors,
                min_established,
                evpn_min_received_routes: r.evpn_min_received_routes,
                when_not_ready: r.when_not_ready.unwrap_or_default(),
                // The same patience as for lost uplinks unless said otherwise.
                not_ready_delay: r
                    .not_ready_delay
                    .map_or_else(|| g.down_delay.map_or(Duration::ZERO, |d| d.0), |d| d.0),
                protocol_name: r.protocol_name.as_ref().map_or_else(|| "BGP".to_string(), |n| n.0.clone()),
            })
        }
    };
    Ok(Group {
        name: name.to_string(),
        target: g.target.value.clone(),
        uplinks,
        required_up,
        downlinks,
        readiness,
        down_delay: g.down_delay.map_or(std::time::Duration::ZERO, |d| d.0),
        up_delay: g.up_delay.map_or(std::time::Duration::ZERO, |d| d.0),
        enforce: !matches!(g.admin_state, Some(RawAdminState::Disable)),
        profile: &crate::profile::SRL,
    })
}

/// A downlink belongs to one group per target, and no group may disable another's uplink.
pub(super) fn claim(
    group: &Group,
    g: &RawGroup,
    claims: &mut HashMap<(String, String), (String, bool)>,
    cx: &Context,
) -> Result<(), ConfigError> {
    let sides = [(&g.uplinks, "uplinks", false), (&g.downlinks, "downlinks", true)];
    for (list, field, is_downlink) in sides {
        for (i, pattern) in list.value.iter().enumerate() {
            for iface in &pattern.value.0 {
                let slot = (group.target.clone(), iface.clone());
                if let Some((other, other_down)) = claims.get(&slot)
                    && other != &group.name
                    && (is_downlink || *other_down)
                {
                    let role = |down: bool| if down { "downlink" } else { "uplink" };
                    return Err(cx.error(
                        format!("groups.{}.{field}[{i}]", group.name),
                        Some(pattern.referenced),
                        format!(
                            "interface {iface} on target {} is already a {} of group {other}; it cannot also be a {} of this group",
                            group.target,
                            role(*other_down),
                            role(is_downlink)
                        ),
                    ));
                }
                claims.entry(slot).or_insert((group.name.clone(), is_downlink));
            }
        }
    }
    Ok(())
}
