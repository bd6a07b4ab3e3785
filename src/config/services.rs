//! `services:` — anycast services announced through ExaBGP (issue 7).
//!
//! `RawService` is the YAML shape (deserialized as part of the top-level config, so its
//! errors carry line and column: scalar values such as prefixes, addresses, communities
//! and durations are validated while they are deserialized); `Service` is the validated
//! form. `resolve` does the checks that need more than one key (defaults, families,
//! down-mode vs `degraded:`, the oper-group name).

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

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
    pub interval: Option<HumanDuration>,
    pub fast_interval: Option<HumanDuration>,
    pub timeout: Option<HumanDuration>,
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

/// One `checks:` entry: exactly one of `tcp`, `http`, `exec`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", try_from = "RawCheckFields")]
pub struct RawCheck(pub Check);

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawCheckFields {
    tcp: Option<String>,
    http: Option<String>,
    status: Option<u16>,
    exec: Option<String>,
    exit_code: Option<i32>,
}

impl TryFrom<RawCheckFields> for RawCheck {
    type Error = String;
    fn try_from(f: RawCheckFields) -> Result<Self, String> {
        let check = match (f.tcp, f.http, f.exec) {
            (Some(addr), None, None) => {
                if f.status.is_some() || f.exit_code.is_some() {
                    return Err("a tcp check takes no `status` or `exit-code`".into());
                }
                Check::Tcp { address: parse_host_port(&addr).map_err(|e| format!("tcp: {e}"))? }
            }
            (None, Some(url), None) => {
                if f.exit_code.is_some() {
                    return Err("an http check takes `status`, not `exit-code`".into());
                }
                let status = f.status.unwrap_or(200);
                if !(100..=599).contains(&status) {
                    return Err(format!("status {status} is not an HTTP status (100..599)"));
                }
                Check::Http { url: HttpUrl::from_str(&url).map_err(|e| format!("http: {e}"))?, status }
            }
            (None, None, Some(command)) => {
                if f.status.is_some() {
                    return Err("an exec check takes `exit-code`, not `status`".into());
                }
                if command.trim().is_empty() {
                    return Err("exec: the command is empty".into());
                }
                Check::Exec { command, exit_code: f.exit_code.unwrap_or(0) }
            }
            _ => return Err("a check needs exactly one of `tcp`, `http`, `exec`".into()),
        };
        Ok(RawCheck(check))
    }
}

/// A validated health check. All checks of a service must pass for it to be healthy.
#[derive(Clone, Debug, PartialEq)]
pub enum Check {
    /// TCP connect to `host:port` succeeds within the timeout.
    Tcp { address: HostPort },
    /// `GET` over plain HTTP/1.1 answers with `status`.
    Http { url: HttpUrl, status: u16 },
    /// `sh -c command` exits with `exit_code`; on timeout its whole process group is killed.
    Exec { command: String, exit_code: i32 },
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::Tcp { address } => write!(f, "tcp {address}"),
            Check::Http { url, status } => write!(f, "http {url} expecting {status}"),
            Check::Exec { command, exit_code } => {
                write!(f, "exec `{command}` expecting exit {exit_code}")
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// `host:port` or `[v6]:port`.
fn parse_host_port(s: &str) -> Result<HostPort, String> {
    let bad = || format!("`{s}` is not host:port (IPv6 as [addr]:port)");
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, rest) = rest.split_once(']').ok_or_else(bad)?;
        (host, rest.strip_prefix(':').ok_or_else(bad)?)
    } else {
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        if host.contains(':') {
            return Err(bad());
        }
        (host, port)
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port: u16 = port.parse().map_err(|_| format!("`{port}` in `{s}` is not a port"))?;
    if port == 0 {
        return Err(format!("port 0 in `{s}`"));
    }
    Ok(HostPort { host: host.to_string(), port })
}

/// A plain `http://host[:port][/path]` URL (no TLS: health endpoints are local).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    pub host: HostPort,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl FromStr for HttpUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let rest = s
            .strip_prefix("http://")
            .ok_or_else(|| format!("`{s}` must start with http:// (https is not supported)"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let has_port = if authority.starts_with('[') { authority.contains("]:") } else { authority.contains(':') };
        let host = if has_port {
            parse_host_port(authority)?
        } else {
            let host = authority.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() {
                return Err(format!("`{s}` has no host"));
            }
            HostPort { host: host.to_string(), port: 80 }
        };
        if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("`{s}`: the path contains whitespace"));
        }
        Ok(HttpUrl { host, path: path.to_string() })
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.host, self.path)
    }
}

/// An IPv4 or IPv6 prefix with no host bits set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl TryFrom<String> for Prefix {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl FromStr for Prefix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| format!("`{s}` is not an IPv4 or IPv6 prefix"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("`{s}`: prefix length must be 0..={max}"))?,
        };
        let host_bits_set = match addr {
            IpAddr::V4(a) => len < 32 && u32::from(a) & (u32::MAX >> len) != 0,
            IpAddr::V6(a) => len < 128 && u128::from(a) & (u128::MAX >> len) != 0,
        };
        if host_bits_set {
            return Err(format!("`{s}` has host bits set after /{len}"));
        }
        Ok(Prefix { addr, len })
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// `self` (ExaBGP uses the session's local address) or an explicit address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum NextHop {
    #[default]
    SelfAddress,
    Address(IpAddr),
}

impl TryFrom<String> for NextHop {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s == "self" {
            return Ok(NextHop::SelfAddress);
        }
        s.parse().map(NextHop::Address).map_err(|_| format!("next-hop `{s}` is neither `self` nor an IP address"))
    }
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NextHop::SelfAddress => f.write_str("self"),
            NextHop::Address(a) => write!(f, "{a}"),
        }
    }
}

/// A standard (`65000:1`) or large (`65000:1:2`) community.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Community {
    Standard(u16, u16),
    Large(u32, u32, u32),
}

impl TryFrom<String> for Community {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let bad = || format!("community `{s}` is neither A:B (16-bit each) nor A:B:C (32-bit each)");
        match parts.as_slice() {
            [a, b] => Ok(Community::Standard(a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?)),
            [a, b, c] => Ok(Community::Large(
                a.parse().map_err(|_| bad())?,
                b.parse().map_err(|_| bad())?,
                c.parse().map_err(|_| bad())?,
            )),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Community::Standard(a, b) => write!(f, "{a}:{b}"),
            Community::Large(a, b, c) => write!(f, "{a}:{b}:{c}"),
        }
    }
}

/// A humane duration: `0s`, `250ms`, `3s`, `1m`, `1h`, or a sum such as `1m30s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct HumanDuration(pub Duration);

impl TryFrom<String> for HumanDuration {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        parse_duration(&s).map(HumanDuration)
    }
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("`{s}` is not a duration (examples: 250ms, 3s, 1m, 1m30s)");
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(bad)?),
            "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(bad)?),
            _ => return Err(bad()),
        };
        total = total.checked_add(part).ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
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
    let positive = |key: &str, d: Option<HumanDuration>, default: Duration| match d {
        Some(HumanDuration(d)) if d.is_zero() => Err(format!("{key}: must be more than 0s")),
        Some(HumanDuration(d)) => Ok(d),
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
mod tests {
    use super::*;

    fn raw(yaml: &str) -> Result<RawService, String> {
        serde_saphyr::from_str(yaml).map_err(|e| e.to_string())
    }

    fn svc(yaml: &str) -> Result<Service, String> {
        resolve("web", &raw(yaml)?, &["leaf1-es1"])
    }

    #[test]
    fn defaults_follow_exabgp_healthcheck() {
        let s = svc("prefix: 192.0.2.1/32\nchecks: [{tcp: '127.0.0.1:80'}]").unwrap();
        assert_eq!(s.next_hop, NextHop::SelfAddress);
        assert_eq!(
            (s.interval, s.fast_interval, s.timeout),
            (DEFAULT_INTERVAL, DEFAULT_FAST_INTERVAL, DEFAULT_TIMEOUT)
        );
        assert_eq!((s.rise, s.fall), (3, 3));
        assert_eq!(s.down, Fallback::Withdraw);
        assert_eq!(s.disabled, Fallback::Withdraw);
        assert_eq!(s.checks, vec![Check::Tcp { address: HostPort { host: "127.0.0.1".into(), port: 80 } }]);
    }

    #[test]
    fn full_service_resolves() {
        let s = svc(r#"
prefix: 2001:db8::/64
next-hop: 2001:db8:1::1
med: 100
local-preference: 200
communities: ["65000:1", "65000:1:2"]
as-path: [65001]
checks:
  - http: http://[::1]:8080/health?deep=1
    status: 204
  - exec: "test -e /tmp/ok"
    exit-code: 1
interval: 2s
fast-interval: 250ms
timeout: 1s
rise: 2
fall: 1
down-mode: degraded
degraded: { med: 1000, as-path-prepend: [65001, 65001], communities: ["65000:666"] }
group: leaf1-es1
disable-file: /run/web.disabled
on-disabled: announce
"#)
        .unwrap();
        assert_eq!(s.prefix.to_string(), "2001:db8::/64");
        assert_eq!(s.fast_interval, Duration::from_millis(250));
        assert_eq!(
            s.checks[0],
            Check::Http {
                url: HttpUrl { host: HostPort { host: "::1".into(), port: 8080 }, path: "/health?deep=1".into() },
                status: 204
            }
        );
        assert_eq!(s.checks[1], Check::Exec { command: "test -e /tmp/ok".into(), exit_code: 1 });
        let Fallback::Announce(d) = &s.down else { panic!("degraded expected") };
        assert_eq!(d.med, Some(1000));
        assert_eq!(d.as_path, vec![65001, 65001, 65001]);
        assert_eq!(d.communities.len(), 3);
        let Fallback::Announce(dis) = &s.disabled else { panic!("announce expected") };
        assert_eq!(dis.med, Some(DEFAULT_DISABLED_MED));
        assert_eq!(dis.local_preference, Some(200));
    }

    #[test]
    fn scalar_errors_carry_line_and_column() {
        let e = raw("prefix: 192.0.2.1/32\nchecks:\n  - tcp: nope\n").unwrap_err();
        assert!(e.contains("not host:port"), "{e}");
        assert!(e.contains("line 3"), "{e}");
        let e = raw("prefix: 192.0.2.1/24\n").unwrap_err();
        assert!(e.contains("host bits") && e.contains("line 1"), "{e}");
        let e = raw("prefix: 192.0.2.1/32\nintervall: 1s\n").unwrap_err();
        assert!(e.contains("intervall") && e.contains("line 2"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let cases = [
            ("prefix: 192.0.2.1/33", "prefix length"),
            ("prefix: 192.0.2.1/32\nnext-hop: 2001:db8::1", "different address families"),
            ("prefix: 192.0.2.1/32\nnext-hop: me", "neither `self`"),
            ("prefix: 192.0.2.1/32\ncommunities: ['70000:1']", "community `70000:1`"),
            ("prefix: 192.0.2.1/32\ninterval: 5", "not a duration"),
            ("prefix: 192.0.2.1/32\ninterval: 0s", "interval: must be more than 0s"),
            ("prefix: 192.0.2.1/32\ninterval: 1s\nfast-interval: 2s", "fast-interval"),
            ("prefix: 192.0.2.1/32\nrise: 0", "rise: must be at least 1"),
            ("prefix: 192.0.2.1/32\nchecks: [{tcp: 'a:1', http: 'http://a/'}]", "exactly one of"),
            ("prefix: 192.0.2.1/32\nchecks: [{http: 'https://a/'}]", "https is not supported"),
            ("prefix: 192.0.2.1/32\nchecks: [{exec: 'true', status: 200}]", "takes `exit-code`"),
            ("prefix: 192.0.2.1/32\ndegraded: {med: 1000}", "down-mode is withdraw"),
            ("prefix: 192.0.2.1/32\nmed: 100\ndown-mode: degraded\ndegraded: {med: 50}", "not worse"),
            ("prefix: 192.0.2.1/32\ndisabled-med: 5", "on-disabled is withdraw"),
            ("prefix: 192.0.2.1/32\non-disabled: announce", "no disable-file"),
            ("prefix: 192.0.2.1/32\ngroup: nope", "`nope` is not a configured group"),
            ("prefix: 192.0.2.1/32\ndown-mode: sideways", "sideways"),
        ];
        for (yaml, want) in cases {
            let e = svc(yaml).unwrap_err();
            assert!(e.contains(want), "{yaml:?}: {e}");
        }
    }

    #[test]
    fn degraded_without_block_uses_conventional_med() {
        let s = svc("prefix: 192.0.2.1/32\nmed: 100\ndown-mode: degraded").unwrap();
        let Fallback::Announce(d) = s.down else { panic!("degraded expected") };
        assert_eq!(d.med, Some(DEFAULT_DEGRADED_MED));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in ["", "s", "3", "3x", "-1s", "1.5s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
