//! `services:` — anycast services announced through ExaBGP (issue 7).
//!
//! `RawService` is the YAML shape (deserialized as part of the top-level config, so its
//! errors carry line and column: scalar values such as prefixes, addresses, communities
//! and durations are validated while they are deserialized); `Service` is the validated
//! form. `resolve` does the checks that need more than one key (defaults, families,
//! down-mode vs `degraded:`, the oper-group name).

//!
//! The scalar value types (prefixes, next-hops, communities, checks) are in `values`;
//! durations use the config's one parser (`crate::config::duration`).

mod values;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::Delay;
pub use values::{Check, Community, HostPort, HttpUrl, NextHop, Prefix, RawCheck};

/// One entry of the top-level `services:` map (the key is the service name).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawService {
    pub prefix: Prefix,
    #[serde(default)]
    pub next_hop: NextHop,
    pub med: Option<u32>,
    pub local_preference: Option<u32>,
    #[serde(default)]
    pub communities: Vec<Community>,
    #[serde(default)]
    pub as_path: Vec<u32>,
    #[serde(default)]
    pub checks: Vec<RawCheck>,
    pub interval: Option<Delay>,
    pub fast_interval: Option<Delay>,
    pub timeout: Option<Delay>,
    pub rise: Option<u32>,
    pub fall: Option<u32>,
    pub down_mode: Option<DownMode>,
    pub degraded: Option<RawDegraded>,
    pub group: Option<String>,
    pub disable_file: Option<PathBuf>,
    pub on_disabled: Option<DisabledMode>,
    pub disabled_med: Option<u32>,
}

/// `degraded:` — how a service that is down is announced when `down-mode: degraded`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawDegraded {
    pub med: Option<u32>,
    #[serde(default)]
    pub as_path_prepend: Vec<u32>,
    #[serde(default)]
    pub communities: Vec<Community>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DownMode {
    /// A down service is withdrawn (the default).
    #[default]
    Withdraw,
    /// A down service stays announced with the `degraded:` attributes (worse MED and/or
    /// a prepended AS path), so it is used only when no healthy host is left.
    Degraded,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DisabledMode {
    /// A disabled service is withdrawn (the default: a drain for maintenance).
    #[default]
    Withdraw,
    /// A disabled service stays announced with `disabled-med`.
    Announce,
}

/// The path attributes of one announcement.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    pub med: Option<u32>,
    pub local_preference: Option<u32>,
    pub as_path: Vec<u32>,
    pub communities: Vec<Community>,
}

/// What to do for a state other than up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fallback {
    Withdraw,
    Announce(Attributes),
}

/// A validated service.
#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    pub name: String,
    pub prefix: Prefix,
    pub next_hop: NextHop,
    /// Attributes while the service is up.
    pub up: Attributes,
    /// While down (`down-mode`): withdraw, or the degraded attributes.
    pub down: Fallback,
    /// While the disable file exists (`on-disabled`): withdraw, or announce with `disabled-med`.
    pub disabled: Fallback,
    /// Empty means always healthy (useful with `group:`).
    pub checks: Vec<Check>,
    pub interval: Duration,
    /// Used while the state is changing (init, rising, falling).
    pub fast_interval: Duration,
    /// Per check.
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
    /// Announce as up only while this oper-group is healthy.
    pub group: Option<String>,
    pub disable_file: Option<PathBuf>,
}

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_FAST_INTERVAL: Duration = Duration::from_secs(1);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_RISE: u32 = 3;
pub const DEFAULT_FALL: u32 = 3;
pub const DEFAULT_DEGRADED_MED: u32 = 1000;
pub const DEFAULT_DISABLED_MED: u32 = 500;

/// Validate one service. `groups` are the configured oper-group names (a service may
/// follow a group's health). The error is a message naming the offending key.
pub fn resolve(name: &str, raw: &RawService, groups: &[&str]) -> Result<Service, String> {
    let family_ok = |a: &IpAddr| a.is_ipv4() == raw.prefix.addr.is_ipv4();
    if let NextHop::Address(a) = raw.next_hop
        && !family_ok(&a)
    {
        return Err(format!("next-hop: {a} and prefix {} are of different address families", raw.prefix));
    }
    let positive = |key: &str, d: Option<Delay>, default: Duration| match d {
        Some(Delay(d)) if d.is_zero() => Err(format!("{key}: must be more than 0s")),
        Some(Delay(d)) => Ok(d),
        None => Ok(default),
    };
    let interval = positive("interval", raw.interval, DEFAULT_INTERVAL)?;
    let fast_interval = positive("fast-interval", raw.fast_interval, DEFAULT_FAST_INTERVAL.min(interval))?;
    if fast_interval > interval {
        return Err(format!("fast-interval: {fast_interval:?} is longer than interval {interval:?}"));
    }
    let timeout = positive("timeout", raw.timeout, DEFAULT_TIMEOUT)?;
    let count = |key: &str, v: Option<u32>, default: u32| match v {
        Some(0) => Err(format!("{key}: must be at least 1")),
        Some(n) => Ok(n),
        None => Ok(default),
    };
    let rise = count("rise", raw.rise, DEFAULT_RISE)?;
    let fall = count("fall", raw.fall, DEFAULT_FALL)?;

    let up = Attributes {
        med: raw.med,
        local_preference: raw.local_preference,
        as_path: raw.as_path.clone(),
        communities: raw.communities.clone(),
    };
    let down = match (raw.down_mode.unwrap_or_default(), &raw.degraded) {
        (DownMode::Withdraw, Some(_)) => {
            return Err("degraded: is set but down-mode is withdraw (set down-mode: degraded)".into());
        }
        (DownMode::Withdraw, None) => Fallback::Withdraw,
        (DownMode::Degraded, degraded) => {
            let d = degraded.clone().unwrap_or(RawDegraded { med: None, as_path_prepend: vec![], communities: vec![] });
            let med = match (d.med, d.as_path_prepend.is_empty()) {
                (Some(m), _) => Some(m),
                // Nothing else makes it worse: use the conventional degraded MED.
                (None, true) => Some(DEFAULT_DEGRADED_MED),
                (None, false) => raw.med,
            };
            if let (Some(dm), Some(um)) = (med, raw.med)
                && dm <= um
                && d.as_path_prepend.is_empty()
            {
                return Err(format!("degraded.med: {dm} is not worse than med {um}"));
            }
            let mut as_path = d.as_path_prepend.clone();
            as_path.extend(&raw.as_path);
            let mut communities = raw.communities.clone();
            communities.extend(d.communities);
            Fallback::Announce(Attributes { med, local_preference: raw.local_preference, as_path, communities })
        }
    };
    let disabled = match (raw.on_disabled.unwrap_or_default(), raw.disabled_med) {
        (DisabledMode::Withdraw, Some(_)) => {
            return Err("disabled-med: is set but on-disabled is withdraw (set on-disabled: announce)".into());
        }
        (DisabledMode::Withdraw, None) => Fallback::Withdraw,
        (DisabledMode::Announce, med) => {
            Fallback::Announce(Attributes { med: Some(med.unwrap_or(DEFAULT_DISABLED_MED)), ..up.clone() })
        }
    };
    if raw.on_disabled.is_some() && raw.disable_file.is_none() {
        return Err("on-disabled: is set but there is no disable-file".into());
    }
    if let Some(g) = &raw.group
        && !groups.contains(&g.as_str())
    {
        return Err(format!("group: `{g}` is not a configured group"));
    }
    Ok(Service {
        name: name.to_string(),
        prefix: raw.prefix,
        next_hop: raw.next_hop,
        up,
        down,
        disabled,
        checks: raw.checks.iter().map(|c| c.0.clone()).collect(),
        interval,
        fast_interval,
        timeout,
        rise,
        fall,
        group: raw.group.clone(),
        disable_file: raw.disable_file.clone(),
    })
}

#[cfg(test)]
mod tests;
