//! The operator surface: what the controller is doing and why.
//!
//! * [`Board`] — the control loop records into it (cheap, synchronous calls);
//! * [`serve`] — `/status` (JSON [`StatusDocument`]), `/metrics` (OpenMetrics),
//!   `/healthz` (loop turning), `/readyz` (config loaded, targets synced once);
//! * [`print_status`] — `opergroupd status`: the same document for people.
//!
//! The maintenance override file is an input, not status: `crate::config::override_file`.
//!
//! See doc/operating.md for what operators read and how the loop should log.

mod board;
pub mod client;
pub mod document;
mod http;
mod metrics;
mod table;

pub use board::{Board, DEFAULT_HEARTBEAT_TIMEOUT, DownlinkEval, GroupEval, InputValue, Pending, SetResult, rfc3339};
pub use client::{fetch_status, http_get, print_status};
pub use document::{ConnState, Enforcement, Health, LeaderElectionStatus, ReplicaRole, ServiceState, StatusDocument};
pub use http::{DEFAULT_LISTEN, ServerDone, router, serve};
pub use metrics::{CONTENT_TYPE as METRICS_CONTENT_TYPE, LATENCY_SERIES_PER_GROUP};
pub use table::render as render_table;

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("cannot listen for /status on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("status server on {addr} failed: {source}")]
    Serve { addr: String, source: std::io::Error },
    #[error("no opergroupd at {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("opergroupd at {addr} did not answer within {after:?}")]
    Timeout { addr: String, after: Duration },
    #[error("opergroupd at {addr} answered with a malformed HTTP response: {detail}")]
    Protocol { addr: String, detail: String },
    #[error("opergroupd at {addr} answered HTTP {status}: {body}")]
    Http { addr: String, status: u16, body: String },
    #[error("opergroupd at {addr} sent a status document this version cannot read: {source}")]
    Decode { addr: String, source: serde_json::Error },
    #[error("writing to stdout: {source}")]
    Stdout { source: std::io::Error },
}
