//! From the YAML shapes to the validated `Config`: defaults merged under targets,
//! secrets read, cross references checked. Every error names file, key and position.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_saphyr::{Location, Spanned};

use super::raw::{RawAdminState, RawConfig, RawDefaults, RawGroup, RawTarget};
use super::{Config, ConfigError, Group, LeaderElection, Readiness, Secret, Target, Tls};
use crate::anycast::config as services;

/// Used when neither the address nor `defaults.port` gives a port.
pub const DEFAULT_PORT: u16 = 57400;
const DEFAULT_LEASE_DURATION: std::time::Duration = std::time::Duration::from_secs(15);
const DEFAULT_RENEW_PERIOD: std::time::Duration = std::time::Duration::from_secs(5);
/// Contract section 8.
pub const DEFAULT_LIVENESS: std::time::Duration = std::time::Duration::from_secs(10);
pub const DEFAULT_RECONNECT_MAX: std::time::Duration = std::time::Duration::from_secs(2);

/// Where errors point and relative paths start from.
pub struct Context<'a> {
    pub origin: &'a str,
    /// Relative file paths in the config are taken from here (the config file's folder).
    pub base: Option<&'a Path>,
}

impl Context<'_> {
    pub fn error(&self, key: impl Into<String>, at: Option<Location>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            origin: self.origin.to_string(),
            position: at.filter(|l| l.line() > 0).map(|l| (l.line(), l.column())),
            key: key.into(),
            message: message.into(),
        }
    }

    fn path(&self, p: &Path) -> PathBuf {
        match self.base {
            Some(base) if p.is_relative() => base.join(p),
            _ => p.to_path_buf(),
        }
    }

    fn tls(&self, tls: Tls) -> Tls {
        let client = |c: Option<super::ClientCert>| {
            c.map(|c| super::ClientCert { cert_file: self.path(&c.cert_file), key_file: self.path(&c.key_file) })
        };
        match tls {
            Tls::Verify { ca_file, client: c, server_name } => {
                Tls::Verify { ca_file: ca_file.map(|p| self.path(&p)), client: client(c), server_name }
            }
            Tls::SkipVerify { client: c, server_name } => Tls::SkipVerify { client: client(c), server_name },
            Tls::Insecure => Tls::Insecure,
        }
    }
}

pub fn resolve(raw: RawConfig, cx: &Context) -> Result<Config, ConfigError> {
    // A file may hold oper-groups, anycast services (for `opergroupd exabgp`), or both.
    if raw.groups.is_empty() && raw.services.is_empty() {
        return Err(cx.error("groups", None, "no groups (or services) configured"));
    }
    if !raw.groups.is_empty() && raw.targets.is_empty() {
        return Err(cx.error("targets", None, "no targets configured"));
    }
    let defaults = &raw.defaults;
    check_one_password(
        "defaults",
        defaults.password.as_ref(),
        defaults.password_env.as_ref(),
        defaults.password_file.as_ref(),
        cx,
    )?;
    // The defaults' password is read once, and only if some target inherits it.
    let mut inherited: Option<Option<Secret>> = None;
    let mut targets = BTreeMap::new();
    for (name, t) in &raw.targets {
        let key = format!("targets.{name}");
        check_name(&key, name, cx)?;
        targets.insert(name.clone(), target(name, t, defaults, &mut inherited, cx)?);
    }

    let mut groups = BTreeMap::new();
    // (target, interface) -> (group, is_downlink): who claims what on each device.
    let mut claims: HashMap<(String, String), (String, bool)> = HashMap::new();
    for (name, g) in &raw.groups {
        check_name(&format!("groups.{name}"), name, cx)?;
        let mut group = group(name, g, &targets, cx)?;
        let profile = raw.targets.get(&group.target).and_then(|t| t.profile).or(defaults.profile);
        group.profile = profile.map_or(&crate::profile::SRL, |p| p.0);
        claim(&group, g, &mut claims, cx)?;
        groups.insert(name.clone(), group);
    }

    let leader_election = match raw.leader_election {
        None => None,
        Some(le) => {
            let lease_duration = le.lease_duration.map_or(DEFAULT_LEASE_DURATION, |d| d.0);
            let renew_period = le.renew_period.as_ref().map_or(DEFAULT_RENEW_PERIOD, |d| d.value.0);
            if renew_period >= lease_duration {
                return Err(cx.error(
                    "leader-election.renew-period",
                    le.renew_period.as_ref().map(|d| d.referenced),
                    format!(
                        "renew-period {} must be shorter than lease-duration {}",
                        super::duration::format(renew_period),
                        super::duration::format(lease_duration)
                    ),
                ));
            }
            Some(LeaderElection {
                lease: le.lease.0,
                namespace: le.namespace.0,
                identity: le.identity.map(|i| i.0),
                lease_duration,
                renew_period,
            })
        }
    };

    let group_names: Vec<&str> = groups.keys().map(String::as_str).collect();
    let mut services = BTreeMap::new();
    for (name, s) in &raw.services {
        let service = services::resolve(name, &s.value, &group_names)
            .map_err(|e| cx.error(format!("services.{name}"), Some(s.referenced), e))?;
        services.insert(name.clone(), service);
    }

    // Plaintext carries the password in the clear: legal (labs), but said once, loudly.
    let plaintext: Vec<&str> =
        targets.values().filter(|t| t.tls == Tls::Insecure && t.password.is_some()).map(|t| t.name.as_str()).collect();
    let mut warnings = Vec::new();
    if !plaintext.is_empty() {
        warnings.push(format!(
            "tls: insecure sends the password in plaintext to target(s) {}; use TLS (skip-verify at least) outside a lab",
            plaintext.join(", ")
        ));
    }
    let (segments, max_disabled) = super::safety::resolve(&raw.segments, raw.safety.as_ref(), &groups, cx)?;

    Ok(Config {
        segments,
        max_disabled,
        targets,
        groups,
        http: raw.http.map(|h| h.0),
        override_file: raw.override_file.map(|p| cx.path(&p)),
        leader_election,
        services,
        warnings,
    })
}

/// Names become labels, log fields and URL parts: plain text only.
fn check_name(key: &str, name: &str, cx: &Context) -> Result<(), ConfigError> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/') {
        return Err(cx.error(key, None, format!("invalid name {name:?}: use letters, digits, '-', '_' or '.'")));
    }
    Ok(())
}

fn check_one_password(
    key: &str,
    password: Option<&Spanned<Secret>>,
    env: Option<&Spanned<String>>,
    file: Option<&Spanned<PathBuf>>,
    cx: &Context,
) -> Result<(), ConfigError> {
    let set: Vec<(&str, Location)> = [
        password.map(|p| ("password", p.referenced)),
        env.map(|p| ("password-env", p.referenced)),
        file.map(|p| ("password-file", p.referenced)),
    ]
    .into_iter()
    .flatten()
    .collect();
    if let [_, (second, at), ..] = set[..] {
        return Err(cx.error(
            format!("{key}.{second}"),
            Some(at),
            "set exactly one of password, password-env, password-file",
        ));
    }
    Ok(())
}

fn target(
    name: &str,
    t: &RawTarget,
    defaults: &RawDefaults,
    inherited: &mut Option<Option<Secret>>,
    cx: &Context,
) -> Result<Target, ConfigError> {
    let key = format!("targets.{name}");
    check_one_password(&key, t.password.as_ref(), t.password_env.as_ref(), t.password_file.as_ref(), cx)?;
    let own = t.password.is_some() || t.password_env.is_some() || t.password_file.is_some();
    let password = if own {
        secret(&key, t.password.as_ref(), t.password_env.as_ref(), t.password_file.as_ref(), cx)?
    } else {
        match inherited {
            Some(secret) => secret.clone(),
            None => {
                let d = defaults;
                let s = secret("defaults", d.password.as_ref(), d.password_env.as_ref(), d.password_file.as_ref(), cx)?;
                inherited.insert(s).clone()
            }
        }
    };
    let port = defaults.port.map_or(DEFAULT_PORT, |p| p.0);
    let address = address(&t.address.value, port)
        .map_err(|e| cx.error(format!("{key}.address"), Some(t.address.referenced), e))?;
    let tls = t.tls.clone().or_else(|| defaults.tls.clone()).unwrap_or(Tls::Verify {
        ca_file: None,
        client: None,
        server_name: None,
    });
    let liveness = t.liveness.or(defaults.liveness).map_or(DEFAULT_LIVENESS, |d| d.0);
    let reconnect_max = t.reconnect_max.as_ref().or(defaults.reconnect_max.as_ref());
    if let Some(r) = reconnect_max
        && r.value.0.is_zero()
    {
        let owner = if t.reconnect_max.is_some() { key.as_str() } else { "defaults" };
        return Err(cx.error(
            format!("{owner}.reconnect-max"),
            Some(r.referenced),
            "reconnect-max must be more than 0s",
        ));
    }
    Ok(Target {
        name: name.to_string(),
        address,
        username: t.username.clone().or_else(|| defaults.username.clone()),
        password,
        tls: cx.tls(tls),
        liveness: (!liveness.is_zero()).then_some(liveness),
        reconnect_max: reconnect_max.map_or(DEFAULT_RECONNECT_MAX, |r| r.value.0),
    })
}

/// Read the one configured password source. Error texts name the source, never the value.
fn secret(
    key: &str,
    password: Option<&Spanned<Secret>>,
    env: Option<&Spanned<String>>,
    file: Option<&Spanned<PathBuf>>,
    cx: &Context,
) -> Result<Option<Secret>, ConfigError> {
    let (value, key, at) = if let Some(p) = password {
        (p.value.expose().to_string(), format!("{key}.password"), p.referenced)
    } else if let Some(var) = env {
        let value = std::env::var(&var.value).map_err(|e| {
            let why = match e {
                std::env::VarError::NotPresent => "is not set",
                std::env::VarError::NotUnicode(_) => "is not valid UTF-8",
            };
            cx.error(
                format!("{key}.password-env"),
                Some(var.referenced),
                format!("environment variable {} {why}", var.value),
            )
        })?;
        (value, format!("{key}.password-env"), var.referenced)
    } else if let Some(file) = file {
        let path = cx.path(&file.value);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            cx.error(
                format!("{key}.password-file"),
                Some(file.referenced),
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        let value = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
        (value.to_string(), format!("{key}.password-file"), file.referenced)
    } else {
        return Ok(None);
    };
    if value.is_empty() {
        return Err(cx.error(key, Some(at), "the password is empty"));
    }
    Ok(Some(Secret::new(value)))
}

/// `host:port`, `host`, `[v6]:port`, `[v6]` or a bare IPv6 address; the port is filled in.
fn address(text: &str, default_port: u16) -> Result<String, String> {
    let text = text.trim();
    let bad = |why: &str| format!("invalid address {text:?}: {why}");
    if text.is_empty() {
        return Err(bad("empty"));
    }
    if text.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok(format!("[{text}]:{default_port}"));
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or_else(|| bad("missing ']'"))?;
        v6.parse::<std::net::Ipv6Addr>().map_err(|_| bad("not an IPv6 address inside [ ]"))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| bad("expected ':' after ']'"))?),
        };
        (format!("[{v6}]"), port)
    } else {
        match text.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (text.to_string(), None),
        }
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || "/@?#".contains(c)) {
        return Err(bad("expected host or host:port"));
    }
    let port = match port {
        None => default_port,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| bad("port must be 1..65535"))?,
    };
    Ok(format!("{host}:{port}"))
}

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

fn group(name: &str, g: &RawGroup, targets: &BTreeMap<String, Target>, cx: &Context) -> Result<Group, ConfigError> {
    let key = format!("groups.{name}");
    if !targets.contains_key(&g.target.value) {
        let known: Vec<&str> = targets.keys().map(String::as_str).collect();
        return Err(cx.error(
            format!("{key}.target"),
            Some(g.target.referenced),
            format!("unknown target {:?} (targets: {})", g.target.value, known.join(", ")),
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
fn claim(
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
