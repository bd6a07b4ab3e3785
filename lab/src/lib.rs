//! fabric-sim: a gNMI simulator of the SR Linux EVPN reference fabric.
//! With `Profiles`, some or all leaves serve OpenConfig models instead (Arista EOS style).
//!
//! Every leaf serves gNMI (Capabilities, Get, Set, Subscribe) on its own port and
//! behaves like an SR Linux leaf of the reference fabric: interface admin/oper-state,
//! eBGP underlay and iBGP EVPN overlay sessions that react to the uplinks, EVPN routes.
//! A control surface (in-process `Control`, or HTTP/JSON) flaps links, forces BGP
//! states, injects faults and records every Set received.
//!
//! ```no_run
//! # async fn demo() -> Result<(), fabric_sim::SimError> {
//! let fabric = fabric_sim::start(fabric_sim::SimConfig { base_port: 0, ..Default::default() }).await?;
//! let addr = fabric.leaf_addr("leaf1");
//! fabric.control().link("leaf1", "ethernet-1/49", false)?;
//! fabric.shutdown().await;
//! # Ok(()) }
//! ```

mod control;
mod fabric;
mod http;
mod leaf;
mod openconfig;
mod path;
mod profile;
mod server;
mod tls;
mod value;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub use control::{Applied, Control, Fault, PathValue, SetOutcome, SetRecord};
pub use leaf::{DOWNLINK, SPINE_LOOPBACKS, SessionState, UPLINKS};
pub use profile::{Profile, Profiles};

/// How the simulated fabric is built and served.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub leaves: usize,
    pub listen: IpAddr,
    /// leafK listens on `base_port + K`; 0 puts every leaf on its own ephemeral port.
    pub base_port: u16,
    /// HTTP/JSON control API address; `None` serves none (the in-process `Control` always works).
    pub control: Option<SocketAddr>,
    pub tls: SimTls,
    pub username: String,
    pub password: String,
    pub timings: Timings,
    /// EVPN routes each iBGP neighbor gives once established.
    pub evpn_routes: u32,
    /// Which vendor each leaf pretends to be (default: every leaf `srl`).
    pub profiles: Profiles,
}

impl Default for SimConfig {
    /// The reference fabric: 4 leaves on 127.0.0.1:57401.., plaintext, admin / NokiaSrl1!,
    /// realistic timings, no HTTP control.
    fn default() -> Self {
        SimConfig {
            leaves: 4,
            listen: IpAddr::V4(Ipv4Addr::LOCALHOST),
            base_port: 57400,
            control: None,
            tls: SimTls::Insecure,
            username: "admin".into(),
            password: "NokiaSrl1!".into(),
            timings: Timings::realistic(),
            evpn_routes: 10,
            profiles: Profiles::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimTls {
    /// Plaintext HTTP/2 (h2c).
    Insecure,
    /// TLS with a certificate generated at start (`Fabric::ca_pem` returns it).
    SelfSigned,
}

/// The delays of the BGP model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timings {
    /// iBGP overlay sessions stay established this long after the last uplink went down.
    pub hold_time: Duration,
    /// An eBGP underlay session establishes this long after its link came up.
    pub ebgp_up: Duration,
    /// iBGP overlay sessions establish this long after an uplink came back.
    pub ibgp_up: Duration,
    /// EVPN routes arrive this long after an iBGP session established.
    pub evpn_routes: Duration,
}

impl Timings {
    /// Close to the reference fabric (hold time 9 s).
    pub fn realistic() -> Self {
        Timings {
            hold_time: Duration::from_secs(9),
            ebgp_up: Duration::from_secs(1),
            ibgp_up: Duration::from_secs(3),
            evpn_routes: Duration::from_secs(1),
        }
    }

    /// The same sequence in tens of milliseconds, for tests.
    pub fn fast() -> Self {
        Timings {
            hold_time: Duration::from_millis(90),
            ebgp_up: Duration::from_millis(20),
            ibgp_up: Duration::from_millis(40),
            evpn_routes: Duration::from_millis(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("unknown node {0:?}")]
    UnknownNode(String),
    #[error("node {node} has no interface {interface:?}")]
    UnknownInterface { node: String, interface: String },
    #[error("node {node} has no BGP neighbor {peer:?}")]
    UnknownNeighbor { node: String, peer: String },
    #[error("{0}")]
    Invalid(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("TLS setup failed: {0}")]
    Tls(String),
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout { what: String, timeout: Duration },
}

/// A running fabric. Dropping it without `shutdown` leaves its tasks running until the runtime ends.
pub struct Fabric {
    shared: Arc<fabric::Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts every leaf (and the HTTP control API if configured); returns once all listen.
pub async fn start(cfg: SimConfig) -> Result<Fabric, SimError> {
    fabric::start(cfg).await
}

impl Fabric {
    pub fn leaf_names(&self) -> Vec<String> {
        self.shared.leaves.iter().map(|l| l.name.clone()).collect()
    }

    pub fn leaf_addr(&self, leaf: &str) -> Option<SocketAddr> {
        self.shared.index.get(leaf).map(|&i| self.shared.leaves[i].addr)
    }

    /// Self-signed mode: the certificate (PEM) a client can trust.
    pub fn ca_pem(&self) -> Option<String> {
        self.shared.ca_pem.clone()
    }

    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.shared.control_addr
    }

    pub fn control(&self) -> Control {
        Control::new(self.shared.clone())
    }

    /// Ends every stream, stops every listener and the control API.
    pub async fn shutdown(self) {
        self.shared.kill_all_streams(tonic::Status::unavailable("fabric-sim is shutting down"));
        self.shared.cancel.cancel();
        let all = futures::future::join_all(self.tasks);
        if tokio::time::timeout(Duration::from_secs(5), all).await.is_err() {
            tracing::warn!("some fabric-sim tasks did not stop within 5 s");
        }
    }
}
