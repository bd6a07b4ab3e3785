//! Configuration: the YAML schema (contract section 2), loading with precise errors,
//! and the resolved, validated form the rest of the program uses.

use std::collections::BTreeMap;
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
