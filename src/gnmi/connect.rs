//! Connecting to a target: TLS (verify / skip-verify / plaintext, mTLS, server-name),
//! username/password metadata on every RPC, keepalives, and the Capabilities check.

use std::error::Error as StdError;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gnmi_proto::g_nmi_client::GNmiClient;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;

use crate::config::Target;

use super::http2::Http2;
use super::transport;

/// One connection to a target, every RPC on it carrying the target's credentials.
pub type GnmiService = InterceptedService<Http2, Credentials>;

/// A gNMI client on a [`GnmiService`].
pub type GnmiClient = GNmiClient<GnmiService>;

/// Notifications can be large (a full dump at sync); tonic's 4 MiB default is too tight.
pub const MAX_MESSAGE: usize = 64 << 20;

/// The gNMI client on `service` (a cheap clone of the connection).
pub fn client(service: GnmiService) -> GnmiClient {
    GNmiClient::new(service).max_decoding_message_size(MAX_MESSAGE)
}

/// HTTP/2 PING keepalive. Pings are sent only while a stream is open and only after
/// `interval` without any frame from the target (see the module docs for the choice).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeepAlive {
    pub interval: Duration,
    pub timeout: Duration,
}

impl KeepAlive {
    /// grpc-go servers allow one ping per 5 minutes by default (`MinTime`); we never ping
    /// more often than that, and wait 20 s for the ack.
    pub const DEFAULT: KeepAlive = KeepAlive { interval: Duration::from_secs(300), timeout: Duration::from_secs(20) };
    /// Upper bound when backing off after a `too_many_pings` GOAWAY.
    pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);

    /// The interval to use after the target sent GOAWAY `too_many_pings`: doubled, capped.
    pub fn backed_off(self) -> KeepAlive {
        KeepAlive { interval: (self.interval * 2).min(Self::MAX_INTERVAL), ..self }
    }
}

impl Default for KeepAlive {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Bounds TCP connect + TLS handshake + HTTP/2 setup, and the Capabilities RPC.
    pub connect_timeout: Duration,
    pub keepalive: KeepAlive,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions { connect_timeout: Duration::from_secs(10), keepalive: KeepAlive::DEFAULT }
    }
}

/// What went wrong, in the words an operator needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Our side: unreadable certificate files, a password that cannot be metadata.
    Config,
    /// TCP connect failed or the connection broke (refused, unreachable, reset).
    Connect,
    /// TLS handshake failed (certificate not trusted, name mismatch, ...).
    Tls,
    /// The target refused the username/password (UNAUTHENTICATED / PERMISSION_DENIED).
    Auth,
    /// The target lacks something we need (neither JSON_IETF nor PROTO encoding).
    Unsupported,
    /// Connect, Capabilities or an RPC did not finish in time.
    Timeout,
    /// No sync_response within the deadline.
    NoSync,
    /// The subscription stream ended, errored, or the target sent an error message.
    Stream,
    /// The target sent GOAWAY ENHANCE_YOUR_CALM (`too_many_pings`).
    TooManyPings,
    /// A synced subscription carried no message for `liveness` (contract section 8).
    Silent,
    /// Any other gRPC status.
    Rpc(tonic::Code),
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ErrorKind::Config => f.write_str("bad client configuration"),
            ErrorKind::Connect => f.write_str("connection failed"),
            ErrorKind::Tls => f.write_str("TLS handshake failed"),
            ErrorKind::Auth => f.write_str("authentication refused"),
            ErrorKind::Unsupported => f.write_str("unsupported target"),
            ErrorKind::Timeout => f.write_str("timed out"),
            ErrorKind::NoSync => f.write_str("no sync_response"),
            ErrorKind::Stream => f.write_str("subscription broken"),
            ErrorKind::TooManyPings => f.write_str("target sent GOAWAY too_many_pings"),
            ErrorKind::Silent => f.write_str("target silent"),
            ErrorKind::Rpc(code) => write!(f, "rpc failed ({code:?})"),
        }
    }
}

/// An error talking to one target: `leaf1 (127.0.0.1:57401): authentication refused: ...`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{target} ({address}): {kind}: {detail}")]
pub struct GnmiError {
    pub target: String,
    pub address: String,
    pub kind: ErrorKind,
    pub detail: String,
}

impl GnmiError {
    pub fn new(target: &Target, kind: ErrorKind, detail: impl Into<String>) -> Self {
        GnmiError { target: target.name.clone(), address: target.address.clone(), kind, detail: detail.into() }
    }

    /// Classifies a gRPC status from any RPC on this target.
    pub fn from_status(target: &Target, status: &tonic::Status) -> Self {
        let chain = source_chain(status.source());
        let mut detail = status.message().to_string();
        if !chain.is_empty() && !detail.contains(&chain) {
            detail = if detail.is_empty() { chain } else { format!("{detail}: {chain}") };
        }
        let kind = match status.code() {
            tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => ErrorKind::Auth,
            tonic::Code::DeadlineExceeded => ErrorKind::Timeout,
            _ if has_tls_error(status.source()) => ErrorKind::Tls,
            _ if status.source().is_some() => ErrorKind::Connect,
            code => ErrorKind::Rpc(code),
        };
        GnmiError::new(target, kind, detail)
    }

    /// Worth retrying as is: everything except our own bad configuration.
    pub fn is_retryable(&self) -> bool {
        !matches!(self.kind, ErrorKind::Config)
    }
}

/// Adds `username` / `password` metadata to every request. Debug never shows the password,
/// and the password's header value is marked sensitive (HPACK never-indexed, and
/// `http`'s Debug prints `Sensitive` instead of it).
#[derive(Clone, Default)]
pub struct Credentials {
    username: Option<AsciiMetadataValue>,
    password: Option<AsciiMetadataValue>,
}

impl Credentials {
    pub fn for_target(target: &Target) -> Result<Self, GnmiError> {
        let username = match &target.username {
            Some(u) => Some(MetadataValue::try_from(u.as_str()).map_err(|_| {
                GnmiError::new(
                    target,
                    ErrorKind::Config,
                    "username is not valid gRPC metadata (ASCII, no control characters)",
                )
            })?),
            None => None,
        };
        let password = match &target.password {
            Some(p) => {
                let mut v: AsciiMetadataValue = MetadataValue::try_from(p.expose()).map_err(|_| {
                    GnmiError::new(
                        target,
                        ErrorKind::Config,
                        "password is not valid gRPC metadata (ASCII, no control characters)",
                    )
                })?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        Ok(Credentials { username, password })
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Interceptor for Credentials {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(u) = &self.username {
            req.metadata_mut().insert("username", u.clone());
        }
        if let Some(p) = &self.password {
            req.metadata_mut().insert("password", p.clone());
        }
        Ok(req)
    }
}

/// Opens a channel to `target` (eagerly: errors surface here) and wraps it in a client.
pub async fn connect(target: &Target, opts: &ConnectOptions) -> Result<GnmiClient, GnmiError> {
    connect_watched(target, opts).await.map(|(service, _)| client(service))
}

/// Like [`connect`], returning the connection itself and the watch that tells whether the
/// target sent GOAWAY ENHANCE_YOUR_CALM on it.
pub async fn connect_watched(target: &Target, opts: &ConnectOptions) -> Result<(GnmiService, GoAwayWatch), GnmiError> {
    let credentials = Credentials::for_target(target)?;
    let tls = transport::tls_client(target)?;
    let origin = format!("{}://{}", if tls.is_some() { "https" } else { "http" }, target.address);
    let origin: tonic::codegen::http::Uri =
        origin.parse().map_err(|e| GnmiError::new(target, ErrorKind::Config, format!("bad address: {e}")))?;
    let watch = GoAwayWatch::default();
    let connecting = async {
        let io = transport::open(&target.address, tls.as_ref(), watch.clone()).await?;
        Http2::handshake(io, &origin, opts.keepalive).await.map_err(Into::<Box<dyn StdError + Send + Sync>>::into)
    };
    let channel = match tokio::time::timeout(opts.connect_timeout, connecting).await {
        Err(_) => {
            return Err(GnmiError::new(
                target,
                ErrorKind::Timeout,
                format!("connect did not finish within {:?}", opts.connect_timeout),
            ));
        }
        Ok(Err(e)) => return Err(classify_connect_error(target, &*e, opts.connect_timeout)),
        Ok(Ok(channel)) => channel,
    };
    Ok((InterceptedService::new(channel, credentials), watch))
}

/// Set when the target sent GOAWAY with ENHANCE_YOUR_CALM (grpc-go's `too_many_pings`).
/// The connection's streams may fail only as "broken pipe" (the GOAWAY races the close), so
/// the connector reads the frame headers coming in and raises this flag itself.
#[derive(Clone, Debug, Default)]
pub struct GoAwayWatch(Arc<AtomicBool>);

impl GoAwayWatch {
    pub fn enhance_your_calm(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    pub(super) fn raise(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn classify_connect_error(target: &Target, e: &(dyn StdError + 'static), timeout: Duration) -> GnmiError {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        let io_timeout =
            err.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut);
        if io_timeout || err.is::<tokio::time::error::Elapsed>() {
            return GnmiError::new(target, ErrorKind::Timeout, format!("connect did not finish within {timeout:?}"));
        }
        cur = err.source();
    }
    let kind = if has_tls_error(Some(e)) { ErrorKind::Tls } else { ErrorKind::Connect };
    GnmiError::new(target, kind, chain_of(e))
}

/// Whether a rustls error (possibly inside an io::Error) is in the chain: the handshake
/// failed, or the server rejected it with an alert (e.g. a missing client certificate).
fn has_tls_error(e: Option<&(dyn StdError + 'static)>) -> bool {
    let mut cur = e;
    while let Some(err) = cur {
        let inner = err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref());
        // h2 keeps only the text of an I/O error, so an alert after the handshake is
        // recognised by rustls' wording.
        if err.is::<rustls::Error>()
            || inner.is_some_and(|i| i.is::<rustls::Error>())
            || err.to_string().contains("received fatal alert")
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// `a: b: c` from an error and its sources, without tonic's/hyper's generic wrappers.
fn chain_of(e: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        let generic = matches!(text.as_str(), "transport error" | "client error (Connect)" | "error trying to connect");
        if !generic && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
    }
    parts.join(": ")
}

fn source_chain(e: Option<&(dyn StdError + 'static)>) -> String {
    e.map(chain_of).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Secret, Tls};

    fn target(password: &str) -> Target {
        Target {
            name: "leaf1".into(),
            address: "127.0.0.1:57401".into(),
            username: Some("admin".into()),
            password: Some(Secret::new(password.into())),
            tls: Tls::Insecure,
            liveness: None,
            reconnect_max: std::time::Duration::from_secs(2),
        }
    }

    #[test]
    fn credentials_debug_hides_password_and_marks_it_sensitive() {
        let c = Credentials::for_target(&target("NokiaSrl1!")).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("NokiaSrl1!"), "{dbg}");
        assert!(c.password.as_ref().unwrap().is_sensitive());
        let mut c = c;
        let req = c.call(tonic::Request::new(())).unwrap();
        assert_eq!(req.metadata().get("username").unwrap(), "admin");
        assert_eq!(req.metadata().get("password").unwrap(), "NokiaSrl1!");
        assert!(!format!("{:?}", req.metadata()).contains("NokiaSrl1!"));
    }

    #[test]
    fn bad_password_is_a_config_error_without_the_value() {
        let e = Credentials::for_target(&target("s3cr\nXYZ")).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Config);
        assert!(!e.to_string().contains("s3cr"), "{e}");
        assert!(e.to_string().starts_with("leaf1 (127.0.0.1:57401): "), "{e}");
    }

    #[test]
    fn keepalive_backs_off_to_a_cap() {
        let k = KeepAlive::DEFAULT.backed_off();
        assert_eq!(k.interval, Duration::from_secs(600));
        let mut k = k;
        for _ in 0..10 {
            k = k.backed_off();
        }
        assert_eq!(k.interval, KeepAlive::MAX_INTERVAL);
    }

    #[test]
    fn status_classification() {
        let t = target("x");
        let e = GnmiError::from_status(&t, &tonic::Status::unauthenticated("bad password"));
        assert_eq!(e.kind, ErrorKind::Auth);
        assert_eq!(e.to_string(), "leaf1 (127.0.0.1:57401): authentication refused: bad password");
        let e = GnmiError::from_status(&t, &tonic::Status::invalid_argument("nope"));
        assert_eq!(e.kind, ErrorKind::Rpc(tonic::Code::InvalidArgument));
    }
}
