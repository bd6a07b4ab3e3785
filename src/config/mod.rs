//! Configuration: the YAML schema (contract section 2), loading with precise errors,
//! and the resolved, validated form the rest of the program uses.

pub mod duration;
mod error;
mod group;
pub mod override_file;
pub mod range;
mod raw;
mod resolve;
pub mod safety;
mod target;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::ConfigError;
pub use raw::Delay;
pub use resolve::{DEFAULT_LIVENESS, DEFAULT_PORT, DEFAULT_RECONNECT_MAX};

/// Read, parse and validate a config file. Relative paths inside it (password-file,
/// ca-file, cert-file, key-file, override-file) are taken from the file's folder.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        origin: origin.clone(),
        position: None,
        key: String::new(),
        message: format!("cannot read the config file: {e}"),
    })?;
    let base = path.parent().filter(|p| !p.as_os_str().is_empty());
    parse_in(&text, &origin, base)
}

/// Parse and validate config text; `origin` names it in errors. Relative paths stay
/// relative to the working directory.
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    parse_in(text, origin, None)
}

/// YAML nodes a config may hold: ~30 per group with readiness, so ~300,000 groups.
const MAX_YAML_NODES: usize = 10_000_000;

fn parse_in(text: &str, origin: &str, base: Option<&Path>) -> Result<Config, ConfigError> {
    let cx = resolve::Context { origin, base };
    // The parser's default budget (250,000 nodes) stops near 9,000 groups; a fabric of
    // 10,000+ leaves is a legal config. Alias and anchor limits (YAML bombs) stay as they are.
    let options = serde_saphyr::options! {
        with_snippet: false,
        budget: serde_saphyr::budget! { max_nodes: MAX_YAML_NODES, max_events: 2 * MAX_YAML_NODES },
    };
    let mut key = String::new();
    let parsed = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize::<_, raw::RawConfig>(de).map_err(|e| {
            key = key_path(e.path());
            e.into_inner()
        })
    });
    let raw = parsed.map_err(|e| {
        use serde_saphyr::MessageFormatter;
        let e = e.without_snippet();
        let message = serde_saphyr::DefaultMessageFormatter.format_message(e).into_owned();
        cx.error(key, e.location(), message)
    })?;
    resolve::resolve(raw, &cx)
}

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
    pub services: BTreeMap<String, crate::anycast::config::Service>,
    /// Legal but risky settings, for one WARN each at startup (and in `check`).
    pub warnings: Vec<String>,
    /// `segments:` — Ethernet Segments by name: member group names, each on its own target.
    pub segments: BTreeMap<String, Vec<String>>,
    /// `safety.max-disabled` — the blast-radius cap.
    pub max_disabled: Option<safety::Cap>,
    /// `metrics.histograms` — the latency histograms per group (default) or one for the fleet.
    pub histograms: HistogramScope,
}

/// How `/metrics` labels the two latency histograms. Per group they are 38 of a group's ~55
/// series: at 10,000 groups 380,000 series and most of a 46 MB scrape. `fleet` keeps one of
/// each (same names, no `group` label), which is what a fleet-wide quantile sums to anyway.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HistogramScope {
    #[default]
    PerGroup,
    Fleet,
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
    /// A synced target silent this long is stale (contract section 8); `None` (`0s`) = off.
    pub liveness: Option<Duration>,
    /// The longest wait between reconnect attempts (contract section 8).
    pub reconnect_max: Duration,
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
    /// The target's vendor profile (`profile:` of the target, else of `defaults`, else srl).
    pub profile: &'static crate::profile::Profile,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Readiness {
    pub network_instance: String,
    pub bgp_neighbors: Vec<String>,
    /// Defaults to all listed neighbors.
    pub min_established: usize,
    pub evpn_min_received_routes: Option<u64>,
    pub when_not_ready: WhenNotReady,
    /// With `WhenNotReady::Disable`: not ready this long before the downlinks go down.
    pub not_ready_delay: Duration,
    /// `protocol-name` (OpenConfig's BGP protocol instance), default `BGP`.
    pub protocol_name: String,
}

/// `readiness.when-not-ready` (contract section 6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WhenNotReady {
    /// Not ready never disables; it only keeps the downlinks as they are.
    #[default]
    Hold,
    /// Downlinks are up only while the group is healthy and ready.
    Disable,
}

/// The dotted key path of an error, without the `value` field of `Spanned` wrappers:
/// serde_path_to_error names every segment, and `Spanned<T>` adds a `value` segment after
/// each field, list item and service that carries a position (see `raw.rs`).
fn key_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    const SPANNED: [&str; 13] = [
        "max-disabled",
        "address",
        "password",
        "password-env",
        "password-file",
        "target",
        "uplinks",
        "downlinks",
        "required-up",
        "bgp-neighbors",
        "min-established",
        "renew-period",
        "reconnect-max",
    ];
    let segments: Vec<&Segment> = path.iter().collect();
    let is_key = |seg: &Segment, name: &str| matches!(seg, Segment::Map { key } if key == name);
    let mut key = String::new();
    for (i, seg) in segments.iter().enumerate() {
        let artefact = is_key(seg, "value")
            && match i.checked_sub(1).map(|p| segments[p]) {
                Some(Segment::Seq { .. }) => true,
                Some(Segment::Map { key }) => {
                    SPANNED.contains(&key.as_str())
                        || (i == 2 && (is_key(segments[0], "services") || is_key(segments[0], "segments")))
                }
                _ => false,
            };
        match seg {
            _ if artefact => {}
            Segment::Seq { index } => key.push_str(&format!("[{index}]")),
            Segment::Map { key: k } => {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(k);
            }
            // A segment serde_path_to_error cannot name (e.g. a duplicate key).
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    key
}

#[cfg(test)]
mod tests;
