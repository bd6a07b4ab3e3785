//! Which vendor a leaf pretends to be: SR Linux native models (`srl`, the default) or
//! the OpenConfig models as an Arista EOS leaf serves them (`openconfig`).
//!
//! The BGP and link rules (`leaf.rs`) are the same for both; a profile decides the
//! interface names, the published tree, the schema a Get/Subscribe/Set is checked against,
//! and how names and identities are written on the wire.

use std::collections::BTreeMap;

use crate::leaf::{Interface, Neighbor, Tree};
use crate::path::SPath;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    #[default]
    Srl,
    #[serde(rename = "openconfig")]
    OpenConfig,
}

impl Profile {
    pub fn parse(s: &str) -> Result<Profile, String> {
        match s.trim() {
            "srl" => Ok(Profile::Srl),
            "openconfig" => Ok(Profile::OpenConfig),
            other => Err(format!("unknown profile {other:?} (srl or openconfig)")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Srl => "srl",
            Profile::OpenConfig => "openconfig",
        }
    }

    /// The client-facing interface (`ethernet-1/1`, `Ethernet1`).
    pub fn downlink(self) -> &'static str {
        match self {
            Profile::Srl => crate::leaf::DOWNLINK,
            Profile::OpenConfig => "Ethernet1",
        }
    }

    /// The uplinks to spine1 and spine2, in that order.
    pub fn uplinks(self) -> [&'static str; 2] {
        match self {
            Profile::Srl => crate::leaf::UPLINKS,
            Profile::OpenConfig => ["Ethernet49/1", "Ethernet50/1"],
        }
    }

    /// The path every leaf of an interface is below.
    pub fn interface_path(self, name: &str) -> SPath {
        match self {
            Profile::Srl => crate::leaf::interface_path(name),
            Profile::OpenConfig => crate::openconfig::interface_path(name),
        }
    }

    /// The path every leaf of a BGP neighbor is below.
    pub fn neighbor_path(self, peer: &str) -> SPath {
        match self {
            Profile::Srl => crate::leaf::neighbor_path(peer),
            Profile::OpenConfig => crate::openconfig::neighbor_path(peer),
        }
    }

    /// Renders one interface's leaves (all below `interface_path(name)`) into `t`.
    pub fn render_interface(self, name: &str, i: &Interface, t: &mut Tree) {
        match self {
            Profile::Srl => crate::leaf::render_srl_interface(name, i, t),
            Profile::OpenConfig => crate::openconfig::render_interface(name, i, t),
        }
    }

    /// Renders one neighbor's leaves (all below `neighbor_path(peer)`) into `t`.
    pub fn render_neighbor(self, peer: &str, nb: &Neighbor, t: &mut Tree) {
        match self {
            Profile::Srl => crate::leaf::render_srl_neighbor(peer, nb, t),
            Profile::OpenConfig => crate::openconfig::render_neighbor(peer, nb, t),
        }
    }

    /// Element and key names of a request path against this profile's schema.
    pub fn check_schema(self, p: &SPath) -> Result<(), String> {
        match self {
            Profile::Srl => crate::leaf::check_schema(p),
            Profile::OpenConfig => crate::openconfig::check_schema(p),
        }
    }

    /// Configuration (not state-only) leaves, for Get with type CONFIG.
    pub fn is_config(self, p: &SPath) -> bool {
        match self {
            Profile::Srl => crate::leaf::is_config(p),
            Profile::OpenConfig => crate::openconfig::is_config(p),
        }
    }

    /// The path that carries an interface's admin state (as `enable`/`disable` or a bool).
    pub fn admin_path(self, interface: &str) -> String {
        match self {
            Profile::Srl => format!("/interface[name={interface}]/admin-state"),
            Profile::OpenConfig => format!("/interfaces/interface[name={interface}]/state/enabled"),
        }
    }

    /// The path of an interface's operational state.
    pub fn oper_path(self, interface: &str) -> String {
        match self {
            Profile::Srl => format!("/interface[name={interface}]/oper-state"),
            Profile::OpenConfig => format!("/interfaces/interface[name={interface}]/state/oper-status"),
        }
    }

    /// The gRPC origin a request may carry: SR Linux refuses `openconfig`, EOS takes it
    /// (and an empty origin).
    pub fn accepts_origin(self, origin: &str) -> bool {
        match self {
            Profile::Srl => origin != "openconfig",
            Profile::OpenConfig => origin.is_empty() || origin == "openconfig",
        }
    }

    /// The YANG modules announced in Capabilities: (name, organization, version).
    pub fn models(self) -> &'static [(&'static str, &'static str, &'static str)] {
        match self {
            Profile::Srl => &[
                ("srl_nokia-interfaces", "Nokia", "2024-10-31"),
                ("srl_nokia-network-instance", "Nokia", "2024-10-31"),
                ("srl_nokia-bgp", "Nokia", "2024-10-31"),
            ],
            Profile::OpenConfig => &[
                ("openconfig-interfaces", "OpenConfig working group", "3.5.0"),
                ("openconfig-network-instance", "OpenConfig working group", "4.4.1"),
                ("openconfig-bgp", "OpenConfig working group", "9.5.0"),
            ],
        }
    }
}

/// Profiles per leaf: one for every leaf, with exceptions by name.
/// Text form: `openconfig`, `leaf1=srl,leaf2=openconfig`, or `openconfig,leaf1=srl`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profiles {
    pub default: Profile,
    pub leaves: BTreeMap<String, Profile>,
}

impl Profiles {
    pub fn of(&self, leaf: &str) -> Profile {
        self.leaves.get(leaf).copied().unwrap_or(self.default)
    }

    pub fn parse(text: &str) -> Result<Profiles, String> {
        let mut out = Profiles::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                None => out.default = Profile::parse(part)?,
                Some((leaf, p)) => {
                    let leaf = leaf.trim();
                    if leaf.is_empty() {
                        return Err(format!("{part:?}: name the leaf before '='"));
                    }
                    if out.leaves.insert(leaf.to_string(), Profile::parse(p)?).is_some() {
                        return Err(format!("leaf {leaf} is given a profile twice"));
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_parse_a_default_and_exceptions() {
        let p = Profiles::parse("leaf1=srl, leaf2=openconfig").unwrap();
        assert_eq!((p.of("leaf1"), p.of("leaf2"), p.of("leaf3")), (Profile::Srl, Profile::OpenConfig, Profile::Srl));
        let p = Profiles::parse("openconfig,leaf1=srl").unwrap();
        assert_eq!((p.of("leaf1"), p.of("leaf4")), (Profile::Srl, Profile::OpenConfig));
        assert!(Profiles::parse("junos").unwrap_err().contains("unknown profile \"junos\""));
        assert!(Profiles::parse("leaf1=srl,leaf1=openconfig").unwrap_err().contains("twice"));
        assert!(Profiles::parse("=srl").is_err());
    }
}
