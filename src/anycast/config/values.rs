//! Scalar values of `services:`, validated while they are deserialized so their errors
//! carry line and column: health checks, `host:port`, plain HTTP URLs, prefixes, next-hops
//! and communities.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::Deserialize;

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
