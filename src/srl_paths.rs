//! SR Linux's canonical paths (contract section 4) as free functions: the `srl` profile
//! (`crate::profile::SRL`) in the short form tests and the simulators use.

pub fn oper_state(interface: &str) -> String {
    format!("/interface[name={interface}]/oper-state")
}

pub fn admin_state(interface: &str) -> String {
    format!("/interface[name={interface}]/admin-state")
}

/// The neighbor container: a delete of this path removes the neighbor.
pub fn neighbor(network_instance: &str, peer: &str) -> String {
    format!("/network-instance[name={network_instance}]/protocols/bgp/neighbor[peer-address={peer}]")
}

pub fn session_state(network_instance: &str, peer: &str) -> String {
    format!("{}/session-state", neighbor(network_instance, peer))
}

pub fn evpn_received_routes(network_instance: &str, peer: &str) -> String {
    format!("{}/afi-safi[afi-safi-name=evpn]/received-routes", neighbor(network_instance, peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_the_contract() {
        assert_eq!(admin_state("ethernet-1/1"), "/interface[name=ethernet-1/1]/admin-state");
        assert_eq!(
            evpn_received_routes("default", "10.0.1.1"),
            "/network-instance[name=default]/protocols/bgp/neighbor[peer-address=10.0.1.1]/afi-safi[afi-safi-name=evpn]/received-routes"
        );
    }
}
