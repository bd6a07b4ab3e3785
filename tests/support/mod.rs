//! A small scripted gNMI server for client tests, and helpers to wait on conditions.
#![allow(dead_code)] // each test binary uses a different part of it

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::Stream;
use gnmi_proto::g_nmi_server::{GNmi, GNmiServer};
use gnmi_proto::subscribe_response::Response;
use gnmi_proto::*;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response as TonicResponse, Status, Streaming};

pub const USER: &str = "admin";
pub const PASSWORD: &str = "NokiaSrl1!";

/// What the server does. Defaults: admin/NokiaSrl1!, JSON_IETF offered, sync at once.
#[derive(Clone)]
pub struct Script {
    pub password: String,
    pub encodings: Vec<Encoding>,
    /// Sent after the SubscriptionList arrives, before sync_response.
    pub initial: Vec<SubscribeResponse>,
    pub sync: bool,
    /// The first N sessions end (stream closed OK by the server) right after sync.
    pub close_after_sync: usize,
    /// Status returned to Set; None accepts.
    pub set_error: Option<tonic::Code>,
    /// Set never answers.
    pub set_stall: bool,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            password: PASSWORD.into(),
            encodings: vec![Encoding::JsonIetf, Encoding::Proto, Encoding::Ascii],
            initial: Vec::new(),
            sync: true,
            close_after_sync: 0,
            set_error: None,
            set_stall: false,
        }
    }
}

/// What the server saw.
#[derive(Default)]
pub struct Seen {
    pub subscribes: AtomicUsize,
    pub auth_refused: AtomicUsize,
    pub subscribe_requests: Mutex<Vec<SubscribeRequest>>,
    /// Per session: true once the client half-closed its request stream.
    pub half_closed: Mutex<Vec<Arc<AtomicBool>>>,
    pub sets: Mutex<Vec<SetRequest>>,
    /// Sessions whose request stream ended (half-close or the client went away).
    pub inbound_ended: AtomicUsize,
    /// TCP connections accepted.
    pub connections: AtomicUsize,
    sessions: Mutex<Vec<mpsc::Sender<Result<SubscribeResponse, Status>>>>,
}

struct Service {
    script: Script,
    seen: Arc<Seen>,
}

impl Service {
    fn check_auth<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let get = |k: &str| req.metadata().get(k).and_then(|v| v.to_str().ok()).unwrap_or("");
        if get("username") == USER && get("password") == self.script.password {
            return Ok(());
        }
        self.seen.auth_refused.fetch_add(1, Ordering::SeqCst);
        Err(Status::unauthenticated("invalid username or password"))
    }
}

type SubStream = Pin<Box<dyn Stream<Item = Result<SubscribeResponse, Status>> + Send>>;

#[tonic::async_trait]
impl GNmi for Service {
    async fn capabilities(&self, req: Request<CapabilityRequest>) -> Result<TonicResponse<CapabilityResponse>, Status> {
        self.check_auth(&req)?;
        Ok(TonicResponse::new(CapabilityResponse {
            supported_encodings: self.script.encodings.iter().map(|e| *e as i32).collect(),
            g_nmi_version: "0.10.0".into(),
            ..Default::default()
        }))
    }

    async fn get(&self, _req: Request<GetRequest>) -> Result<TonicResponse<GetResponse>, Status> {
        Err(Status::unimplemented("get"))
    }

    async fn set(&self, req: Request<SetRequest>) -> Result<TonicResponse<SetResponse>, Status> {
        self.check_auth(&req)?;
        self.seen.sets.lock().unwrap().push(req.into_inner());
        if self.script.set_stall {
            std::future::pending::<()>().await;
        }
        match self.script.set_error {
            Some(code) => Err(Status::new(code, "scripted Set failure")),
            None => Ok(TonicResponse::new(SetResponse { timestamp: 42, ..Default::default() })),
        }
    }

    type SubscribeStream = SubStream;

    async fn subscribe(&self, req: Request<Streaming<SubscribeRequest>>) -> Result<TonicResponse<SubStream>, Status> {
        self.check_auth(&req)?;
        let session = self.seen.subscribes.fetch_add(1, Ordering::SeqCst);
        let mut inbound = req.into_inner();
        let (tx, rx) = mpsc::channel(64);
        let half_closed = Arc::new(AtomicBool::new(false));
        self.seen.half_closed.lock().unwrap().push(half_closed.clone());
        let (seen, script) = (self.seen.clone(), self.script.clone());
        tokio::spawn(async move {
            let Ok(Some(first)) = inbound.message().await else { return };
            seen.subscribe_requests.lock().unwrap().push(first);
            for msg in script.initial {
                let _ = tx.send(Ok(msg)).await;
            }
            if script.sync {
                let _ = tx.send(Ok(SubscribeResponse { response: Some(Response::SyncResponse(true)) })).await;
            }
            if session < script.close_after_sync {
                return; // dropping tx ends the response stream with OK
            }
            seen.sessions.lock().unwrap().push(tx);
            // Keep reading: Ok(None) is a half-close, an error is the client going away.
            loop {
                match inbound.message().await {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        half_closed.store(true, Ordering::SeqCst);
                        break;
                    }
                    Err(_) => break,
                }
            }
            seen.inbound_ended.fetch_add(1, Ordering::SeqCst);
        });
        Ok(TonicResponse::new(Box::pin(ReceiverStream::new(rx))))
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
    stop: CancellationToken,
}

/// TLS material for the server: its certificate and key, and a CA for client certs.
pub struct ServerTls {
    pub cert_pem: String,
    pub key_pem: String,
    pub client_ca_pem: Option<String>,
}

impl TestServer {
    pub async fn start(script: Script) -> TestServer {
        Self::start_with(script, None).await
    }

    pub async fn start_with(script: Script, tls: Option<ServerTls>) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let seen = Arc::new(Seen::default());
        let stop = CancellationToken::new();
        let mut builder = Server::builder();
        if let Some(tls) = tls {
            let mut cfg = ServerTlsConfig::new().identity(Identity::from_pem(tls.cert_pem, tls.key_pem));
            if let Some(ca) = tls.client_ca_pem {
                cfg = cfg.client_ca_root(Certificate::from_pem(ca));
            }
            builder = builder.tls_config(cfg).expect("server tls config");
        }
        let svc = GNmiServer::new(Service { script, seen: seen.clone() });
        let router = builder.add_service(svc);
        let s = stop.clone();
        let counted = seen.clone();
        let incoming = futures::StreamExt::inspect(TcpListenerStream::new(listener), move |_| {
            counted.connections.fetch_add(1, Ordering::Relaxed);
        });
        tokio::spawn(async move {
            let _ = router.serve_with_incoming_shutdown(incoming, s.cancelled()).await;
        });
        TestServer { addr, seen, stop }
    }

    /// Sends a message on every live subscription.
    pub async fn push(&self, msg: SubscribeResponse) {
        let senders: Vec<_> = self.seen.sessions.lock().unwrap().clone();
        for tx in senders {
            let _ = tx.send(Ok(msg.clone())).await;
        }
    }

    /// Ends every live subscription with an error status.
    pub async fn fail_sessions(&self, status: Status) {
        let senders: Vec<_> = std::mem::take(&mut *self.seen.sessions.lock().unwrap());
        for tx in senders {
            let _ = tx.send(Err(status.clone())).await;
        }
    }

    pub fn subscribes(&self) -> usize {
        self.seen.subscribes.load(Ordering::SeqCst)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub fn path(s: &str) -> Path {
    opergroupd::gnmi::path::parse(s).expect("test path")
}

pub fn json_update(p: Path, json: &str) -> Update {
    Update {
        path: Some(p),
        val: Some(TypedValue { value: Some(typed_value::Value::JsonIetfVal(json.as_bytes().to_vec())) }),
        ..Default::default()
    }
}

pub fn notification(prefix: Option<Path>, update: Vec<Update>, delete: Vec<Path>) -> SubscribeResponse {
    SubscribeResponse {
        response: Some(Response::Update(Notification { timestamp: 1, prefix, update, delete, ..Default::default() })),
    }
}

impl Seen {
    pub fn sessions_closed(&self) -> usize {
        self.inbound_ended.load(Ordering::SeqCst)
    }
}

/// Polls `cond` every 5 ms until it holds or `deadline` passes; panics with `what` on
/// timeout. Returns when the condition was first seen to hold (for tests that time it).
/// The one wait of the integration tests: every test binary that waits uses this.
pub async fn wait_until(what: &str, deadline: Duration, mut cond: impl FnMut() -> bool) -> std::time::Instant {
    let end = tokio::time::Instant::now() + deadline;
    while !cond() {
        assert!(tokio::time::Instant::now() < end, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    std::time::Instant::now()
}

/// Receives events until `pred` matches one, within `deadline`. Returns every event seen,
/// the matching one last.
pub async fn recv_until<T: std::fmt::Debug>(
    rx: &mut mpsc::Receiver<T>,
    what: &str,
    deadline: Duration,
    mut pred: impl FnMut(&T) -> bool,
) -> Vec<T> {
    let mut seen = Vec::new();
    let end = tokio::time::Instant::now() + deadline;
    loop {
        match tokio::time::timeout_at(end, rx.recv()).await {
            Ok(Some(ev)) => {
                let hit = pred(&ev);
                seen.push(ev);
                if hit {
                    return seen;
                }
            }
            Ok(None) => panic!("event channel closed while waiting for {what}; saw {seen:#?}"),
            Err(_) => panic!("timed out after {deadline:?} waiting for {what}; saw {seen:#?}"),
        }
    }
}

/// A CA and certificates it signs, generated fresh per test.
pub struct Pki {
    ca: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

pub struct CertPair {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().expect("ca key");
        Pki { ca: rcgen::CertifiedIssuer::self_signed(params, key).expect("ca cert") }
    }

    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// A certificate for `names` (DNS names or IP addresses) signed by this CA.
    pub fn issue(&self, names: &[&str]) -> CertPair {
        let params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("params");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.ca).expect("sign");
        CertPair { cert_pem: cert.pem(), key_pem: key.serialize_pem() }
    }
}

/// A self-signed certificate for `names`.
pub fn self_signed(names: &[&str]) -> CertPair {
    let c = rcgen::generate_simple_self_signed(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .expect("self-signed");
    CertPair { cert_pem: c.cert.pem(), key_pem: c.signing_key.serialize_pem() }
}
