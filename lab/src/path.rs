//! Paths inside the simulator: a list of elements with sorted keys, printed in the
//! canonical form the controller uses (`/interface[name=ethernet-1/1]/admin-state`).
//! Module prefixes (`srl_nokia-interfaces:interface`) are stripped on the way in.

use std::fmt;

use gnmi_proto as pb;

use crate::profile::Profile;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Elem {
    pub name: String,
    pub keys: Keys,
}

/// List keys sorted by name: a small vector, as a list element has one or two keys and
/// thousands of paths are alive at once (a BTreeMap node costs ~0.5 KB).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Keys(Vec<(String, String)>);

impl Keys {
    pub fn get(&self, k: &str) -> Option<&String> {
        self.0.iter().find(|(name, _)| name == k).map(|(_, v)| v)
    }

    pub fn contains_key(&self, k: &str) -> bool {
        self.get(k).is_some()
    }

    pub fn insert(&mut self, k: String, v: String) {
        match self.0.binary_search_by(|(name, _)| name.as_str().cmp(&k)) {
            Ok(i) => self.0[i].1 = v,
            Err(i) => self.0.insert(i, (k, v)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }
}

impl FromIterator<(String, String)> for Keys {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        let mut keys = Keys::default();
        for (k, v) in iter {
            keys.insert(k, v);
        }
        keys
    }
}

impl Elem {
    pub fn new(name: &str) -> Self {
        Elem { name: name.to_string(), keys: Keys::default() }
    }

    pub fn keyed(name: &str, key: &str, value: &str) -> Self {
        Elem { name: name.to_string(), keys: Keys(vec![(key.to_string(), value.to_string())]) }
    }
}

/// A path; as a pattern, `*` in a name or key value matches anything and a missing key
/// matches every list entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SPath(pub Vec<Elem>);

/// `srl_nokia-interfaces:interface` -> `interface`.
pub fn strip_module(name: &str) -> &str {
    name.rsplit_once(':').map_or(name, |(_, n)| n)
}

impl SPath {
    pub fn child(&self, e: Elem) -> SPath {
        let mut v = self.0.clone();
        v.push(e);
        SPath(v)
    }

    pub fn starts_with(&self, prefix: &SPath) -> bool {
        self.0.len() >= prefix.0.len() && self.0[..prefix.0.len()] == prefix.0[..]
    }

    pub fn has_wildcards(&self) -> bool {
        self.0.iter().any(|e| e.name == "*" || e.name == "..." || e.keys.iter().any(|(_, v)| v == "*"))
    }

    /// Does this pattern select `leaf` (a concrete path)? A pattern that stops at a
    /// container selects every leaf below it.
    pub fn matches(&self, leaf: &SPath) -> bool {
        if self.0.len() > leaf.0.len() {
            return false;
        }
        self.0.iter().zip(&leaf.0).all(|(p, l)| {
            (p.name == "*" || p.name == l.name)
                && p.keys
                    .iter()
                    .all(|(k, v)| v == "*" || l.keys.get(k).is_some_and(|lv| strip_module(lv) == strip_module(v)))
        })
    }

    /// Parses `/interface[name=ethernet-1/1]/admin-state`; `/` inside brackets is part of the key.
    pub fn parse(s: &str) -> Result<SPath, String> {
        let s = s.trim();
        let body = s.strip_prefix('/').unwrap_or(s);
        let mut elems = Vec::new();
        let mut rest = body;
        while !rest.is_empty() {
            let end_name = rest.find(['/', '[']).unwrap_or(rest.len());
            let name = &rest[..end_name];
            if name.is_empty() {
                return Err(format!("empty element name in path {s:?}"));
            }
            let mut elem = Elem::new(strip_module(name));
            rest = &rest[end_name..];
            while let Some(after) = rest.strip_prefix('[') {
                let close = after.find(']').ok_or_else(|| format!("unclosed '[' in path {s:?}"))?;
                let kv = &after[..close];
                let (k, v) = kv.split_once('=').ok_or_else(|| format!("key {kv:?} has no '=' in path {s:?}"))?;
                elem.keys.insert(k.trim().to_string(), v.trim().to_string());
                rest = &after[close + 1..];
            }
            elems.push(elem);
            rest = rest.strip_prefix('/').unwrap_or(rest);
        }
        Ok(SPath(elems))
    }

    /// Prefix + path of a gNMI request, module prefixes stripped; refuses what SR Linux refuses.
    pub fn from_pb(prefix: Option<&pb::Path>, path: Option<&pb::Path>) -> Result<SPath, String> {
        SPath::from_pb_as(Profile::Srl, prefix, path)
    }

    /// `from_pb` for a leaf of `profile` (an OpenConfig leaf takes origin `openconfig`).
    pub fn from_pb_as(profile: Profile, prefix: Option<&pb::Path>, path: Option<&pb::Path>) -> Result<SPath, String> {
        for p in [prefix, path].into_iter().flatten() {
            if !profile.accepts_origin(&p.origin) && profile == Profile::OpenConfig {
                return Err(format!(
                    "origin {:?} is not supported by this target; use \"openconfig\" or none",
                    p.origin
                ));
            }
            if !profile.accepts_origin(&p.origin) {
                return Err(
                    "origin \"openconfig\" is not supported by this target; use the native (srl_nokia) models".into()
                );
            }
            if p.elem.is_empty() && !p.element.is_empty() {
                return Err("the deprecated Path.element form is not supported; use Path.elem".into());
            }
        }
        Ok(SPath::join(prefix, path))
    }

    /// Prefix + path without checks (for logging what was received).
    pub fn join(prefix: Option<&pb::Path>, path: Option<&pb::Path>) -> SPath {
        let elems = [prefix, path]
            .into_iter()
            .flatten()
            .flat_map(|p| &p.elem)
            .map(|e| Elem {
                name: strip_module(&e.name).to_string(),
                keys: e.key.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            })
            .collect();
        SPath(elems)
    }

    pub fn to_pb(&self, module_names: bool) -> pb::Path {
        self.to_pb_as(Profile::Srl, module_names)
    }

    /// The wire form for a leaf of `profile`. OpenConfig identity keys always carry their
    /// module (`openconfig-policy-types:BGP`), as EOS sends them; `module_names` also
    /// qualifies the first element (`openconfig-interfaces:interfaces`).
    pub fn to_pb_as(&self, profile: Profile, module_names: bool) -> pb::Path {
        if profile == Profile::OpenConfig {
            return self.to_pb_openconfig(module_names);
        }
        pb::Path {
            elem: self
                .0
                .iter()
                .enumerate()
                .map(|(i, e)| pb::PathElem {
                    name: if module_names { qualified_name(i, &e.name) } else { e.name.clone() },
                    key: e
                        .keys
                        .iter()
                        .map(|(k, v)| {
                            let v = if module_names && k == "afi-safi-name" {
                                format!("srl_nokia-common:{v}")
                            } else {
                                v.clone()
                            };
                            (k.clone(), v)
                        })
                        .collect(),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn to_pb_openconfig(&self, module_names: bool) -> pb::Path {
        let elem = self
            .0
            .iter()
            .enumerate()
            .map(|(i, e)| pb::PathElem {
                name: match (i, e.name.as_str(), module_names) {
                    (0, "interfaces", true) => "openconfig-interfaces:interfaces".into(),
                    (0, "network-instances", true) => "openconfig-network-instance:network-instances".into(),
                    _ => e.name.clone(),
                },
                key: e
                    .keys
                    .iter()
                    .map(|(k, v)| {
                        let module = match k.as_str() {
                            "identifier" => Some("openconfig-policy-types"),
                            "afi-safi-name" => Some("openconfig-bgp-types"),
                            _ => None,
                        };
                        let v = match module {
                            Some(m) if !v.contains(':') => format!("{m}:{v}"),
                            _ => v.clone(),
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            })
            .collect();
        pb::Path { elem, ..Default::default() }
    }

    /// SR Linux style split: the prefix runs up to the last keyed element before the
    /// final one (`/interface[name=X]` + `oper-state`).
    pub fn split_for_notification(&self) -> (SPath, SPath) {
        let n = self.0.len();
        let cut = self.0[..n.saturating_sub(1)].iter().rposition(|e| !e.keys.is_empty()).map_or(0, |i| i + 1);
        (SPath(self.0[..cut].to_vec()), SPath(self.0[cut..].to_vec()))
    }
}

/// The YANG module an SR Linux element name belongs to, as it appears when the
/// namespace changes (the first element, and `bgp` inside network-instance).
fn qualified_name(index: usize, name: &str) -> String {
    match (index, name) {
        (0, "interface") => "srl_nokia-interfaces:interface".into(),
        (0, "network-instance") => "srl_nokia-network-instance:network-instance".into(),
        (_, "bgp") => "srl_nokia-bgp:bgp".into(),
        _ => name.to_string(),
    }
}

impl fmt::Display for SPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("/");
        }
        for e in &self.0 {
            write!(f, "/{}", e.name)?;
            for (k, v) in e.keys.iter() {
                write!(f, "[{k}={v}]")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print_round_trip_with_slashes_in_keys() {
        let p = SPath::parse("/srl_nokia-interfaces:interface[name=ethernet-1/49]/oper-state").unwrap();
        assert_eq!(p.0.len(), 2);
        assert_eq!(p.0[0].keys.get("name").map(String::as_str), Some("ethernet-1/49"));
        assert_eq!(p.to_string(), "/interface[name=ethernet-1/49]/oper-state");
        assert!(SPath::parse("/interface[name=x").is_err());
    }

    #[test]
    fn wildcards_and_containers_match() {
        let leaf = SPath::parse("/interface[name=ethernet-1/49]/oper-state").unwrap();
        for pat in [
            "/interface[name=*]/oper-state",
            "/interface/oper-state",
            "/interface[name=ethernet-1/49]",
            "/",
            "/*[name=*]",
        ] {
            assert!(SPath::parse(pat).unwrap().matches(&leaf), "{pat}");
        }
        for pat in [
            "/interface[name=ethernet-1/50]/oper-state",
            "/interface/admin-state",
            "/interface[name=ethernet-1/49]/oper-state/x",
        ] {
            assert!(!SPath::parse(pat).unwrap().matches(&leaf), "{pat}");
        }
    }

    #[test]
    fn split_puts_the_last_keyed_element_in_the_prefix() {
        let p = SPath::parse("/network-instance[name=default]/protocols/bgp/neighbor[peer-address=10.0.1.1]/afi-safi[afi-safi-name=evpn]/received-routes").unwrap();
        let (pre, rest) = p.split_for_notification();
        assert!(pre.to_string().ends_with("afi-safi[afi-safi-name=evpn]"));
        assert_eq!(rest.to_string(), "/received-routes");
        let nb = SPath::parse("/network-instance[name=default]/protocols/bgp/neighbor[peer-address=10.0.1.1]").unwrap();
        let (pre, rest) = nb.split_for_notification();
        assert_eq!(pre.to_string(), "/network-instance[name=default]");
        assert_eq!(rest.to_string(), "/protocols/bgp/neighbor[peer-address=10.0.1.1]");
    }
}
