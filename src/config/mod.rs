//! Configuration: the YAML schema (contract section 2), loading with precise errors,
//! and the resolved, validated form the rest of the program uses.

pub mod services;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A validated configuration. Everything here has been checked; nothing downstream
/// needs to re-validate.
#[derive(Clone, Debug)]
pub struct Config {
    /// Keyed by target name.
    pub targets: BTreeMap<String, Target>,
    /// Keyed by group name.
    pub groups: BTreeMap<String, Group>,
    /// `http:` — where /status, /metrics, /healthz, /readyz listen (`--http` overrides).
    pub http: Option<SocketAddr>,
    /// `override-file:` — while this file exists, enforcement is suspended for every group,
    /// or only for the group names listed in it, one per line (issue 4).
    pub override_file: Option<PathBuf>,
    /// `leader-election:` — act only while holding a coordination.k8s.io Lease (issue 6).
    pub leader_election: Option<LeaderElection>,
    /// `services:` — anycast services announced through ExaBGP (issue 7), keyed by name.
    pub services: BTreeMap<String, services::Service>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LeaderElection {
    pub lease: String,
    pub namespace: String,
    /// Holder identity; defaults to the pod name (`HOSTNAME`).
    pub identity: Option<String>,
    pub lease_duration: Duration,
    pub renew_period: Duration,
}

#[derive(Clone, Debug)]
pub struct Target {
    pub name: String,
    /// `host:port`, port filled from defaults when absent.
    pub address: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub tls: Tls,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Tls {
    /// TLS verifying the target against `ca_file`, or the system roots when `None`.
    Verify { ca_file: Option<PathBuf>, client: Option<ClientCert>, server_name: Option<String> },
    /// TLS without certificate checks (containerlab's self-signed certificates).
    SkipVerify { client: Option<ClientCert>, server_name: Option<String> },
    /// Plaintext HTTP/2 (h2c). Labs only.
    Insecure,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ClientCert {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// A password. Its Debug and Display never show the value, so it cannot leak into logs.
#[derive(Clone, PartialEq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub name: String,
    pub target: String,
    /// Expanded interface names (`ethernet-1/{49..50}` -> two entries).
    pub uplinks: Vec<String>,
    pub required_up: usize,
    pub downlinks: Vec<String>,
    pub readiness: Option<Readiness>,
    pub down_delay: Duration,
    pub up_delay: Duration,
    /// `admin-state: enable`; false means observe and report, never Set.
    pub enforce: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Readiness {
    pub network_instance: String,
    pub bgp_neighbors: Vec<String>,
    /// Defaults to all listed neighbors.
    pub min_established: usize,
    pub evpn_min_received_routes: Option<u64>,
}
