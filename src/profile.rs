//! Vendor profiles (contract section 7): per profile, a table of the paths the controller
//! reads and sets and how their values map to up / established / admin state. The rest of
//! the program asks a `Profile`; a third vendor is a third table, not new branches.
//!
//! Templates use `{if}` (interface), `{ni}` (network-instance), `{proto}` (BGP protocol
//! instance name) and `{peer}`. Paths are canonical (see `model.rs`): identity keys without
//! module prefix, keys sorted by name.

use crate::model::{AdminState, Scalar};

/// How admin state is written on the device and read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminForm {
    /// An enumeration: JSON_IETF string `"enable"` / `"disable"`.
    Enum { enable: &'static str, disable: &'static str },
    /// A boolean `enabled`: JSON_IETF `true` / `false`.
    Bool,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Profile {
    pub name: &'static str,
    oper_state: &'static str,
    /// The oper value that means up (module prefix ignored); every other value is down.
    up: &'static str,
    admin_observed: &'static str,
    admin_set: &'static str,
    admin_form: AdminForm,
    neighbor: &'static str,
    /// Below `neighbor`.
    session_state: &'static str,
    established: &'static str,
    /// Below `neighbor`.
    evpn_received_routes: &'static str,
}

pub static SRL: Profile = Profile {
    name: "srl",
    oper_state: "/interface[name={if}]/oper-state",
    up: "up",
    admin_observed: "/interface[name={if}]/admin-state",
    admin_set: "/interface[name={if}]/admin-state",
    admin_form: AdminForm::Enum { enable: "enable", disable: "disable" },
    neighbor: "/network-instance[name={ni}]/protocols/bgp/neighbor[peer-address={peer}]",
    session_state: "/session-state",
    established: "established",
    evpn_received_routes: "/afi-safi[afi-safi-name=evpn]/received-routes",
};

pub static OPENCONFIG: Profile = Profile {
    name: "openconfig",
    oper_state: "/interfaces/interface[name={if}]/state/oper-status",
    up: "UP",
    admin_observed: "/interfaces/interface[name={if}]/state/enabled",
    admin_set: "/interfaces/interface[name={if}]/config/enabled",
    admin_form: AdminForm::Bool,
    neighbor: "/network-instances/network-instance[name={ni}]/protocols/protocol[identifier=BGP][name={proto}]/bgp/neighbors/neighbor[neighbor-address={peer}]",
    session_state: "/state/session-state",
    established: "ESTABLISHED",
    evpn_received_routes: "/afi-safis/afi-safi[afi-safi-name=L2VPN_EVPN]/state/prefixes/received",
};

/// Every profile, by the name used in the config.
pub static ALL: [&Profile; 2] = [&SRL, &OPENCONFIG];

pub fn by_name(name: &str) -> Option<&'static Profile> {
    ALL.iter().copied().find(|p| p.name == name)
}

/// The profile whose admin-state Set path `path` is (Sets carry only the path).
pub fn of_set_path(path: &str) -> Option<&'static Profile> {
    ALL.iter().copied().find(|p| matches_template(p.admin_set, path))
}

/// Does `path` have the shape of a one-interface template?
fn matches_template(template: &str, path: &str) -> bool {
    let Some((head, tail)) = template.split_once("{if}") else { return template == path };
    path.len() > head.len() + tail.len() && path.starts_with(head) && path.ends_with(tail)
}

impl Profile {
    pub fn oper_state(&self, interface: &str) -> String {
        self.oper_state.replace("{if}", interface)
    }

    /// Where the device reports a downlink's admin state.
    pub fn admin_observed(&self, interface: &str) -> String {
        self.admin_observed.replace("{if}", interface)
    }

    /// Where the controller sets it.
    pub fn admin_set(&self, interface: &str) -> String {
        self.admin_set.replace("{if}", interface)
    }

    /// The neighbor container: a delete of this path removes the neighbor.
    pub fn neighbor(&self, network_instance: &str, protocol: &str, peer: &str) -> String {
        self.neighbor.replace("{ni}", network_instance).replace("{proto}", protocol).replace("{peer}", peer)
    }

    pub fn session_state(&self, network_instance: &str, protocol: &str, peer: &str) -> String {
        self.neighbor(network_instance, protocol, peer) + self.session_state
    }

    pub fn evpn_received_routes(&self, network_instance: &str, protocol: &str, peer: &str) -> String {
        self.neighbor(network_instance, protocol, peer) + self.evpn_received_routes
    }

    /// Oper value `up` (enumerations and identities, with or without module prefix).
    pub fn is_up(&self, v: &Scalar) -> bool {
        v.as_enum() == Some(self.up)
    }

    pub fn is_established(&self, v: &Scalar) -> bool {
        v.as_enum() == Some(self.established)
    }

    /// The admin state a device value means, in any legal form (`"disable"`,
    /// `srl_nokia-common:disable`; `false`, `"false"` as a string_val).
    pub fn observed_admin(&self, v: &Scalar) -> Option<AdminState> {
        match self.admin_form {
            AdminForm::Enum { enable, disable } => match v.as_enum()? {
                s if s == enable => Some(AdminState::Enable),
                s if s == disable => Some(AdminState::Disable),
                _ => None,
            },
            AdminForm::Bool => match v {
                Scalar::Bool(b) => Some(if *b { AdminState::Enable } else { AdminState::Disable }),
                Scalar::Str(s) if s == "true" => Some(AdminState::Enable),
                Scalar::Str(s) if s == "false" => Some(AdminState::Disable),
                _ => None,
            },
        }
    }

    /// The value to Set, as JSON (JSON_IETF text and dry-run lines).
    pub fn admin_json(&self, state: AdminState) -> serde_json::Value {
        match self.admin_form {
            AdminForm::Enum { enable, disable } => {
                serde_json::Value::from(if state == AdminState::Enable { enable } else { disable })
            }
            AdminForm::Bool => serde_json::Value::Bool(state == AdminState::Enable),
        }
    }

    /// What the device will report at `admin_observed` once a Set of `state` is applied.
    pub fn admin_scalar(&self, state: AdminState) -> Scalar {
        match self.admin_json(state) {
            serde_json::Value::Bool(b) => Scalar::Bool(b),
            v => Scalar::Str(v.as_str().unwrap_or_default().to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::srl_paths;

    #[test]
    fn srl_paths_are_the_contract_paths() {
        assert_eq!(SRL.oper_state("ethernet-1/49"), srl_paths::oper_state("ethernet-1/49"));
        assert_eq!(SRL.admin_set("ethernet-1/1"), srl_paths::admin_state("ethernet-1/1"));
        assert_eq!(SRL.admin_observed("ethernet-1/1"), srl_paths::admin_state("ethernet-1/1"));
        assert_eq!(SRL.session_state("default", "BGP", "10.0.1.1"), srl_paths::session_state("default", "10.0.1.1"));
        assert_eq!(
            SRL.evpn_received_routes("default", "BGP", "10.0.1.1"),
            srl_paths::evpn_received_routes("default", "10.0.1.1")
        );
        assert_eq!(SRL.admin_json(AdminState::Disable), serde_json::json!("disable"));
    }

    #[test]
    fn openconfig_paths_and_values() {
        assert_eq!(
            OPENCONFIG.session_state("default", "BGP", "10.0.1.1"),
            "/network-instances/network-instance[name=default]/protocols/protocol[identifier=BGP][name=BGP]/bgp/neighbors/neighbor[neighbor-address=10.0.1.1]/state/session-state"
        );
        assert_eq!(OPENCONFIG.admin_set("Ethernet1"), "/interfaces/interface[name=Ethernet1]/config/enabled");
        assert_eq!(OPENCONFIG.admin_json(AdminState::Disable), serde_json::json!(false));
        let s = |v: &str| Scalar::Str(v.into());
        assert!(OPENCONFIG.is_up(&s("UP")) && OPENCONFIG.is_up(&s("openconfig-interfaces:UP")));
        for down in ["DOWN", "LOWER_LAYER_DOWN", "TESTING", "UNKNOWN", "DORMANT", "NOT_PRESENT", "up"] {
            assert!(!OPENCONFIG.is_up(&s(down)), "{down}");
        }
        assert!(OPENCONFIG.is_established(&s("openconfig-bgp-types:ESTABLISHED")));
        assert_eq!(OPENCONFIG.observed_admin(&Scalar::Bool(false)), Some(AdminState::Disable));
        assert_eq!(OPENCONFIG.observed_admin(&s("true")), Some(AdminState::Enable));
        assert_eq!(OPENCONFIG.observed_admin(&Scalar::Uint(1)), None);
        assert_eq!(SRL.observed_admin(&s("srl_nokia-common:disable")), Some(AdminState::Disable));
    }

    #[test]
    fn a_set_path_names_its_profile() {
        assert_eq!(of_set_path("/interface[name=ethernet-1/1]/admin-state"), Some(&SRL));
        assert_eq!(of_set_path("/interfaces/interface[name=Ethernet49/1]/config/enabled"), Some(&OPENCONFIG));
        assert_eq!(of_set_path("/interfaces/interface[name=Ethernet1]/state/enabled"), None);
    }
}
