//! From the YAML shapes to the validated `Config`: defaults merged under targets,
//! secrets read, cross references checked. Every error names file, key and position.
//! The targets are resolved in `target.rs`, the groups in `group.rs`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_saphyr::Location;

use super::group::{claim, group};
use super::raw::RawConfig;
use super::target::{check_one_password, target};
use super::{Config, ConfigError, LeaderElection, Secret, Tls};
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

    pub(super) fn path(&self, p: &Path) -> PathBuf {
        match self.base {
            Some(base) if p.is_relative() => base.join(p),
            _ => p.to_path_buf(),
        }
    }

    pub(super) fn tls(&self, tls: Tls) -> Tls {
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
            crate::brief::list(&plaintext)
        ));
    }
    let histograms = raw.metrics.and_then(|m| m.histograms).unwrap_or_default();
    if histograms == super::HistogramScope::PerGroup && groups.len() >= MANY_GROUPS {
        warnings.push(format!(
            "metrics: {} groups with per-group latency histograms are {} series in /metrics; \
             `metrics: {{ histograms: fleet }}` keeps one of each",
            groups.len(),
            groups.len() * crate::status::LATENCY_SERIES_PER_GROUP
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
        histograms,
    })
}

/// From this many groups on, per-group latency histograms earn a warning.
const MANY_GROUPS: usize = 1000;

/// Names become labels, log fields and URL parts: plain text only.
fn check_name(key: &str, name: &str, cx: &Context) -> Result<(), ConfigError> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/') {
        return Err(cx.error(key, None, format!("invalid name {name:?}: use letters, digits, '-', '_' or '.'")));
    }
    Ok(())
}
