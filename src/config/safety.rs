//! Fabric-wide safety keys (contract section 6): `segments:` (Ethernet Segments: the groups
//! on different leaves that serve the same multi-homed clients) and `safety.max-disabled`
//! (the blast-radius cap). Validated against the groups, with positions.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::resolve::Context;
use super::{ConfigError, Group};

/// `safety:` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawSafety {
    pub max_disabled: Option<Spanned<RawCap>>,
}

/// `max-disabled: 3` or `max-disabled: 25%`.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum RawCap {
    Count(u64),
    Text(String),
}

/// How many enforcing groups the controller may keep disabled at once, fabric-wide.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cap {
    Count(usize),
    /// Of all enforcing groups, rounded down (at least 0).
    Percent(f64),
}

impl Cap {
    /// The cap as a count, for `enforcing` groups.
    pub fn limit(self, enforcing: usize) -> usize {
        match self {
            Cap::Count(n) => n,
            Cap::Percent(p) => ((enforcing as f64) * p / 100.0).floor() as usize,
        }
    }
}

impl std::fmt::Display for Cap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cap::Count(n) => write!(f, "{n}"),
            Cap::Percent(p) => write!(f, "{p}%"),
        }
    }
}

fn cap(raw: &RawCap) -> Result<Cap, String> {
    match raw {
        RawCap::Count(n) => usize::try_from(*n).map(Cap::Count).map_err(|_| format!("{n} is too large")),
        RawCap::Text(t) => {
            let t = t.trim();
            let bad = || format!("{t:?} is neither a count (3) nor a percentage (25%)");
            match t.strip_suffix('%') {
                Some(p) => {
                    let p: f64 = p.trim().parse().map_err(|_| bad())?;
                    if !(0.0..=100.0).contains(&p) {
                        return Err(format!("{t} is not between 0% and 100%"));
                    }
                    Ok(Cap::Percent(p))
                }
                None => t.parse::<usize>().map(Cap::Count).map_err(|_| bad()),
            }
        }
    }
}

/// Resolved segments: name -> member group names.
pub type Segments = BTreeMap<String, Vec<String>>;

/// Checks `segments:` and `safety:` against the groups.
pub fn resolve(
    segments: &BTreeMap<String, Spanned<Vec<Spanned<String>>>>,
    safety: Option<&RawSafety>,
    groups: &BTreeMap<String, Group>,
    cx: &Context,
) -> Result<(Segments, Option<Cap>), ConfigError> {
    let mut out = BTreeMap::new();
    let mut member_of: HashMap<&str, &str> = HashMap::new();
    for (name, members) in segments {
        let key = format!("segments.{name}");
        if members.value.len() < 2 {
            return Err(cx.error(
                key,
                Some(members.referenced),
                "a segment needs at least two member groups (on different targets)",
            ));
        }
        let mut targets: HashMap<&str, &str> = HashMap::new();
        let mut names = Vec::new();
        for m in &members.value {
            let at = Some(m.referenced);
            let Some(group) = groups.get(&m.value) else {
                return Err(cx.error(key, at, format!("no group named {:?}", m.value)));
            };
            if let Some(other) = member_of.insert(group.name.as_str(), name.as_str()) {
                let why = if other == name {
                    format!("{} is listed twice", group.name)
                } else {
                    format!("{} is already a member of segment {other}", group.name)
                };
                return Err(cx.error(key, at, why));
            }
            if let Some(peer) = targets.insert(group.target.as_str(), group.name.as_str()) {
                return Err(cx.error(
                    key,
                    at,
                    format!(
                        "{} and {peer} are both on target {}: members must be on different targets",
                        group.name, group.target
                    ),
                ));
            }
            names.push(group.name.clone());
        }
        out.insert(name.clone(), names);
    }
    let cap = match safety.and_then(|s| s.max_disabled.as_ref()) {
        None => None,
        Some(c) => Some(cap(&c.value).map_err(|e| cx.error("safety.max-disabled", Some(c.referenced), e))?),
    };
    Ok((out, cap))
}
