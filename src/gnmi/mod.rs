//! The gNMI client: connect, authenticate, subscribe, set; wire paths and values to the
//! canonical forms of `crate::model`.
//!
//! * [`path`] — `gnmi.Path` (prefix + path) <-> `/interface[name=ethernet-1/49]/oper-state`.
//! * [`value`] — `TypedValue` -> [`crate::model::Scalar`], JSON containers flattened to leaves.
//! * [`mod@connect`] — TLS (verify by default, `skip-verify`, plaintext, mTLS, server-name),
//!   `username`/`password` metadata on every RPC, Capabilities (JSON_IETF required).
//! * [`source`] — [`spawn_source`]: one task per target producing [`crate::model::SourceEvent`]s.
//! * [`set`] — one SetRequest per decision; [`Setter`] keeps a channel per target.
//! * [`channels`] — the one connection per target that its subscription and Sets share.
//!
//! **Transport.** Our own byte pipe (TCP + rustls) under the `h2` crate's client, under
//! tonic's generated client ([`http2`], no tonic `Channel`): `skip-verify` needs a
//! custom certificate verifier (it still checks handshake signatures), CA verification
//! uses `ca-file` or the system roots, mTLS and a server-name override are supported,
//! ALPN offers h2 but is not required. Plaintext targets speak h2c.
//!
//! **Keepalive.** Dead peers are found by kernel TCP keepalive (10 s idle, 5 s interval,
//! 3 probes: about 25 s), which no gRPC server can see or object to. HTTP/2 PINGs catch a
//! peer whose kernel answers but whose server hangs: they are sent only while a stream is
//! open and only after 5 minutes without a byte from the peer (timeout 20 s; [`http2`]),
//! because grpc-go servers by default (`MinTime` 5 min) answer pings that come more often
//! with GOAWAY `too_many_pings`. The streams of such a connection may fail as a mere broken
//! pipe (the GOAWAY races the close), so the connector watches incoming frames for GOAWAY
//! ENHANCE_YOUR_CALM; when seen, the error says `too_many_pings` and the source doubles its
//! ping interval (up to 1 h) for the following sessions. Both knobs are in
//! [`KeepAlive`] for targets with stricter policies.
//!
//! **Reconnect.** After any failure — connect, TLS, auth, Capabilities, no `sync_response`
//! within `sync_timeout`, stream error or end — the source emits `Stale{error}` and retries
//! after `backoff_min · 2^n` (capped at `backoff_max`) plus up to 100 % random jitter
//! (`backon`). A session that stayed synced for `stable_after` resets the backoff.
//! Errors name the target and address: `leaf1 (127.0.0.1:57401): authentication refused: ...`.
//! The password is never formatted: `Secret` and [`connect::Credentials`] hide it in
//! Debug, and its header value is marked sensitive.

pub mod capabilities;
pub mod channels;
pub mod connect;
mod http2;
pub mod path;
pub mod set;
pub mod source;
pub mod subscription;
mod transport;
pub mod value;

pub use capabilities::check_capabilities;
pub use connect::{ConnectOptions, ErrorKind, GnmiClient, GnmiError, GoAwayWatch, KeepAlive, connect, connect_watched};
pub use set::{SetAck, SetError, Setter, set_admin_states};
pub use source::{SourceOptions, spawn_source};
