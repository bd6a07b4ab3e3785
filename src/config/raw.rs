//! The YAML shapes, exactly as written (contract section 2). Unknown keys are rejected;
//! values that can be checked on their own are checked while deserializing, so their
//! errors carry line and column. `Spanned` keeps positions for the checks that need the
//! whole file (`resolve.rs`).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

use super::{ClientCert, Secret, Tls, duration, range};
use crate::anycast::config::RawService;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawConfig {
    #[serde(default)]
    pub defaults: RawDefaults,
    #[serde(default)]
    pub targets: BTreeMap<String, RawTarget>,
    #[serde(default)]
    pub groups: BTreeMap<String, RawGroup>,
    pub http: Option<HttpAddr>,
    pub override_file: Option<PathBuf>,
    pub leader_election: Option<RawLeaderElection>,
    #[serde(default)]
    pub services: BTreeMap<String, Spanned<RawService>>,
    #[serde(default)]
    pub segments: BTreeMap<String, Spanned<Vec<Spanned<String>>>>,
    pub safety: Option<super::safety::RawSafety>,
    pub metrics: Option<RawMetrics>,
}

/// `metrics:` — how `/metrics` is shaped.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawMetrics {
    pub histograms: Option<super::HistogramScope>,
}

/// Connection settings shared by `defaults:` and each target.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawDefaults {
    pub port: Option<Port>,
    pub username: Option<String>,
    pub password: Option<Spanned<Secret>>,
    pub password_env: Option<Spanned<String>>,
    pub password_file: Option<Spanned<PathBuf>>,
    pub tls: Option<Tls>,
    /// Contract section 8.
    pub liveness: Option<Delay>,
    pub reconnect_max: Option<Spanned<Delay>>,
    pub profile: Option<ProfileName>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawTarget {
    pub address: Spanned<String>,
    pub username: Option<String>,
    pub password: Option<Spanned<Secret>>,
    pub password_env: Option<Spanned<String>>,
    pub password_file: Option<Spanned<PathBuf>>,
    pub tls: Option<Tls>,
    pub liveness: Option<Delay>,
    pub reconnect_max: Option<Spanned<Delay>>,
    pub profile: Option<ProfileName>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawGroup {
    pub target: Spanned<String>,
    pub uplinks: Spanned<Vec<Spanned<Pattern>>>,
    pub required_up: Option<Spanned<usize>>,
    pub downlinks: Spanned<Vec<Spanned<Pattern>>>,
    pub readiness: Option<RawReadiness>,
    pub down_delay: Option<Delay>,
    pub up_delay: Option<Delay>,
    pub admin_state: Option<RawAdminState>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawReadiness {
    pub network_instance: Option<NetworkInstance>,
    /// OpenConfig: the BGP protocol instance's name (`protocol[identifier=BGP][name=...]`).
    pub protocol_name: Option<NetworkInstance>,
    pub bgp_neighbors: Spanned<Vec<Spanned<Peer>>>,
    pub min_established: Option<Spanned<usize>>,
    pub evpn_min_received_routes: Option<u64>,
    /// Contract section 6.
    pub when_not_ready: Option<super::WhenNotReady>,
    pub not_ready_delay: Option<Delay>,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RawAdminState {
    Enable,
    Disable,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawLeaderElection {
    pub lease: NonEmpty,
    pub namespace: NonEmpty,
    pub identity: Option<NonEmpty>,
    pub lease_duration: Option<Delay>,
    pub renew_period: Option<Spanned<Delay>>,
}

/// A humane duration (`3s`).
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(try_from = "String")]
pub struct Delay(pub Duration);

impl TryFrom<String> for Delay {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        duration::parse(&s).map(Delay)
    }
}

/// One interface pattern, expanded (`ethernet-1/{49..50}` -> two names).
#[derive(Deserialize)]
#[serde(try_from = "String")]
pub struct Pattern(pub Vec<String>);

impl TryFrom<String> for Pattern {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        range::expand(&s).map(Pattern)
    }
}

/// A BGP peer address in the form the device reports it (`IpAddr`'s canonical text).
#[derive(Deserialize)]
#[serde(try_from = "String")]
pub struct Peer(pub String);

impl TryFrom<String> for Peer {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.trim()
            .parse::<IpAddr>()
            .map(|ip| Peer(ip.to_string()))
            .map_err(|_| format!("{s:?} is not an IP address (bgp-neighbors are peer addresses)"))
    }
}

/// A network-instance name; it becomes a path key, so keep it plain.
#[derive(Deserialize)]
#[serde(try_from = "String")]
pub struct NetworkInstance(pub String);

impl TryFrom<String> for NetworkInstance {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control() || "[]=".contains(c)) {
            return Err(format!("invalid network-instance name {s:?}"));
        }
        Ok(NetworkInstance(s))
    }
}

/// `profile:` — a vendor profile's name (`srl`, `openconfig`).
#[derive(Clone, Copy, Deserialize)]
#[serde(try_from = "String")]
pub struct ProfileName(pub &'static crate::profile::Profile);

impl TryFrom<String> for ProfileName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        crate::profile::by_name(s.trim()).map(ProfileName).ok_or_else(|| {
            let names: Vec<&str> = crate::profile::ALL.iter().map(|p| p.name).collect();
            format!("unknown profile {s:?} (profiles: {})", names.join(", "))
        })
    }
}

#[derive(Deserialize)]
#[serde(try_from = "String")]
pub struct NonEmpty(pub String);

impl TryFrom<String> for NonEmpty {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.trim().is_empty() {
            return Err("must not be empty".into());
        }
        Ok(NonEmpty(s))
    }
}

#[derive(Clone, Copy, Deserialize)]
#[serde(try_from = "u64")]
pub struct Port(pub u16);

impl TryFrom<u64> for Port {
    type Error = String;
    fn try_from(n: u64) -> Result<Self, String> {
        u16::try_from(n).ok().filter(|p| *p != 0).map(Port).ok_or_else(|| format!("port {n} is not in 1..65535"))
    }
}

#[derive(Deserialize)]
#[serde(try_from = "String")]
pub struct HttpAddr(pub SocketAddr);

impl TryFrom<String> for HttpAddr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse().map(HttpAddr).map_err(|_| format!("{s:?} is not an IP:port address (e.g. \"127.0.0.1:9610\")"))
    }
}

/// The password itself. Deserialized straight into `Secret` so that no raw shape
/// holds it in a printable form.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

/// `tls:` as written; exactly one mode.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawTls {
    ca_file: Option<PathBuf>,
    #[serde(default)]
    skip_verify: bool,
    #[serde(default)]
    insecure: bool,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    server_name: Option<String>,
}

impl<'de> Deserialize<'de> for Tls {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawTls::deserialize(d)?;
        Tls::try_from(raw).map_err(serde::de::Error::custom)
    }
}

impl TryFrom<RawTls> for Tls {
    type Error = String;
    fn try_from(t: RawTls) -> Result<Self, String> {
        let modes = [t.ca_file.is_some(), t.skip_verify, t.insecure].iter().filter(|m| **m).count();
        if modes != 1 {
            return Err("tls: set exactly one of ca-file, skip-verify: true, insecure: true".into());
        }
        let client = match (t.cert_file, t.key_file) {
            (Some(cert_file), Some(key_file)) => Some(ClientCert { cert_file, key_file }),
            (None, None) => None,
            _ => return Err("tls: cert-file and key-file go together (client certificate for mTLS)".into()),
        };
        if let Some(name) = &t.server_name
            && name.trim().is_empty()
        {
            return Err("tls: server-name must not be empty".into());
        }
        if t.insecure {
            if client.is_some() || t.server_name.is_some() {
                return Err("tls: insecure is plaintext; cert-file, key-file and server-name need TLS".into());
            }
            return Ok(Tls::Insecure);
        }
        let server_name = t.server_name;
        Ok(match t.ca_file {
            Some(ca) => Tls::Verify { ca_file: Some(ca), client, server_name },
            None => Tls::SkipVerify { client, server_name },
        })
    }
}
