//! The resolved plan: exactly which paths the controller subscribes to on each target
//! and which it may set for each group. `check` prints it for people (`crate::check`).

use std::collections::HashSet;

use crate::config::{Config, Group};
use crate::gnmi::subscription::Subscriptions;

/// The paths one group reads, in a stable order: uplink oper-state, downlink admin-state
/// and oper-state, then each listed neighbor's session-state and EVPN received-routes.
pub fn group_subscriptions(group: &Group) -> Vec<String> {
    let p = group.profile;
    let mut out: Vec<String> = group.uplinks.iter().map(|i| p.oper_state(i)).collect();
    for d in &group.downlinks {
        out.push(p.admin_observed(d));
        out.push(p.oper_state(d));
    }
    if let Some(r) = &group.readiness {
        for n in &r.bgp_neighbors {
            out.push(p.session_state(&r.network_instance, &r.protocol_name, n));
            out.push(p.evpn_received_routes(&r.network_instance, &r.protocol_name, n));
        }
    }
    out
}

/// Every path subscribed on `target` (the groups' paths in group-name order, each once),
/// and the candidates for heartbeats, in order: the uplinks' oper-state. Every group has
/// uplinks, and they are the paths a group cannot be judged without; a heartbeat on one of
/// them proves the whole stream alive. The source asks on the first one the device has
/// (every path if it has none: `gnmi::source`).
pub fn subscriptions(config: &Config, target: &str) -> Subscriptions {
    let groups = || config.groups.values().filter(|g| g.target == target);
    let mut seen = HashSet::new();
    let paths: Vec<String> = groups().flat_map(group_subscriptions).filter(|p| seen.insert(p.clone())).collect();
    let mut seen = HashSet::new();
    let heartbeat = groups()
        .flat_map(|g| g.uplinks.iter().map(|i| g.profile.oper_state(i)))
        .filter(|p| seen.insert(p.clone()))
        .collect();
    Subscriptions { paths, heartbeat }
}

/// The admin-state paths a group may set, in downlink order.
pub fn set_paths(group: &Group) -> Vec<String> {
    group.downlinks.iter().map(|d| group.profile.admin_set(d)).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::parse;

    /// Also `check`'s test config (crate::check).
    pub(crate) const CFG: &str = r#"
defaults: { username: admin, password: s3cret-value, tls: { insecure: true } }
targets:
  leaf1: { address: "127.0.0.1:57401" }
  leaf2: { address: "127.0.0.1:57402" }
groups:
  a:
    target: leaf1
    uplinks: ["ethernet-1/{49..50}"]
    downlinks: ["ethernet-1/1"]
    readiness: { bgp-neighbors: [10.0.1.1], network-instance: ni1 }
  b:
    target: leaf1
    uplinks: ["ethernet-1/{49..50}"]
    downlinks: ["ethernet-1/2"]
    admin-state: disable
"#;

    #[test]
    fn subscriptions_are_exact_deduplicated_and_ordered() {
        let c = parse(CFG, "t").unwrap();
        let subs = subscriptions(&c, "leaf1");
        assert_eq!(
            subs.paths,
            [
                "/interface[name=ethernet-1/49]/oper-state",
                "/interface[name=ethernet-1/50]/oper-state",
                "/interface[name=ethernet-1/1]/admin-state",
                "/interface[name=ethernet-1/1]/oper-state",
                "/network-instance[name=ni1]/protocols/bgp/neighbor[peer-address=10.0.1.1]/session-state",
                "/network-instance[name=ni1]/protocols/bgp/neighbor[peer-address=10.0.1.1]/afi-safi[afi-safi-name=evpn]/received-routes",
                "/interface[name=ethernet-1/2]/admin-state",
                "/interface[name=ethernet-1/2]/oper-state",
            ]
        );
        assert_eq!(
            subs.heartbeat,
            ["/interface[name=ethernet-1/49]/oper-state", "/interface[name=ethernet-1/50]/oper-state"],
            "heartbeat candidates: the uplinks, each once, in order"
        );
        assert_eq!(subscriptions(&c, "leaf2"), Subscriptions::default());
        assert_eq!(set_paths(&c.groups["b"]), ["/interface[name=ethernet-1/2]/admin-state"]);
    }
}
