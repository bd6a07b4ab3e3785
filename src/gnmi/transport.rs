//! The byte pipe under a channel: TCP (with kernel keepalive), TLS (rustls, our own
//! config so `skip-verify` and ALPN are ours to decide), and a reader that spots
//! GOAWAY ENHANCE_YOUR_CALM in the incoming HTTP/2 frames.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::config::{ClientCert, Target, Tls};

use super::connect::{ErrorKind, GnmiError, GoAwayWatch};

/// Kernel TCP keepalive: probes after 10 s idle, every 5 s, 3 tries. It is invisible to
/// the gRPC server (no HTTP/2 frames), so it cannot trip `too_many_pings`, and it notices
/// a target that vanished or rebooted within about 25 s.
const TCP_KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
const TCP_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const TCP_KEEPALIVE_RETRIES: u32 = 3;

/// TLS settings for one target: the rustls config and the name to verify.
#[derive(Clone)]
pub(super) struct TlsClient {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

/// Builds the TLS client for `target`; `None` for plaintext (h2c).
pub(super) fn tls_client(target: &Target) -> Result<Option<TlsClient>, GnmiError> {
    let config_err = |detail: String| GnmiError::new(target, ErrorKind::Config, detail);
    let (client, server_name) = match &target.tls {
        Tls::Insecure => return Ok(None),
        Tls::Verify { client, server_name, .. } | Tls::SkipVerify { client, server_name } => (client, server_name),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| config_err(format!("TLS setup: {e}")))?;
    let builder = match &target.tls {
        Tls::Verify { ca_file, .. } => builder.with_root_certificates(roots(target, ca_file.as_deref())?),
        _ => builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAnyCert {
            algorithms: provider.signature_verification_algorithms,
        })),
    };
    let mut config = match client {
        Some(c) => {
            let (chain, key) = client_identity(target, c)?;
            builder.with_client_auth_cert(chain, key).map_err(|e| config_err(format!("client certificate: {e}")))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let name = server_name.clone().unwrap_or_else(|| host_of(&target.address).to_string());
    let server_name =
        ServerName::try_from(name.clone()).map_err(|e| config_err(format!("bad TLS server name {name:?}: {e}")))?;
    Ok(Some(TlsClient { config: Arc::new(config), server_name }))
}

/// `host` of `host:port` or `[v6]:port`.
fn host_of(address: &str) -> &str {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    address.rsplit_once(':').map_or(address, |(host, _)| host)
}

fn roots(target: &Target, ca_file: Option<&std::path::Path>) -> Result<RootCertStore, GnmiError> {
    let config_err = |detail: String| GnmiError::new(target, ErrorKind::Config, detail);
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = read_file(target, "ca-file", path)?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| config_err(format!("ca-file {}: {e}", path.display())))?;
                roots.add(cert).map_err(|e| config_err(format!("ca-file {}: {e}", path.display())))?;
            }
            if roots.is_empty() {
                return Err(config_err(format!("ca-file {} holds no PEM certificate", path.display())));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(config_err("no system CA certificates found; give tls.ca-file".into()));
            }
        }
    }
    Ok(roots)
}

fn client_identity(
    target: &Target,
    c: &ClientCert,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), GnmiError> {
    let config_err = |detail: String| GnmiError::new(target, ErrorKind::Config, detail);
    let pem = read_file(target, "cert-file", &c.cert_file)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| config_err(format!("cert-file {}: {e}", c.cert_file.display())))?;
    if chain.is_empty() {
        return Err(config_err(format!("cert-file {} holds no PEM certificate", c.cert_file.display())));
    }
    let key_pem = read_file(target, "key-file", &c.key_file)?;
    // Never echo the key's content, only where it is.
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| config_err(format!("key-file {}: {e}", c.key_file.display())))?;
    Ok((chain, key))
}

fn read_file(target: &Target, what: &str, path: &std::path::Path) -> Result<Vec<u8>, GnmiError> {
    std::fs::read(path)
        .map_err(|e| GnmiError::new(target, ErrorKind::Config, format!("cannot read {what} {}: {e}", path.display())))
}

pub(super) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

pub(super) type Conn = GoAwaySniffer<Box<dyn Io>>;

/// The byte pipe to `address`: TCP (no Nagle, kernel keepalive), then TLS when `tls` says
/// so, with the GOAWAY sniffer on top.
pub(super) async fn open(address: &str, tls: Option<&TlsClient>, watch: GoAwayWatch) -> io::Result<Conn> {
    let tcp = TcpStream::connect(address).await?;
    tcp.set_nodelay(true)?;
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(TCP_KEEPALIVE_IDLE)
        .with_interval(TCP_KEEPALIVE_INTERVAL)
        .with_retries(TCP_KEEPALIVE_RETRIES);
    socket2::SockRef::from(&tcp).set_tcp_keepalive(&keepalive)?;
    let io: Box<dyn Io> = match tls {
        None => Box::new(tcp),
        Some(tls) => {
            let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
            // No ALPN check: some gNMI servers do not negotiate it; gRPC is HTTP/2.
            Box::new(connector.connect(tls.server_name.clone(), tcp).await?)
        }
    };
    Ok(GoAwaySniffer { inner: io, scanner: FrameScanner::default(), watch, read: ReadClock::new() })
}

/// Passes bytes through untouched; raises the watch when an incoming GOAWAY carries
/// ENHANCE_YOUR_CALM, and notes when the peer last sent anything (for keepalive).
pub(super) struct GoAwaySniffer<T> {
    inner: T,
    scanner: FrameScanner,
    watch: GoAwayWatch,
    read: ReadClock,
}

impl<T> GoAwaySniffer<T> {
    pub(super) fn read_clock(&self) -> ReadClock {
        self.read.clone()
    }
}

/// When bytes last came from the peer: any frame, DATA or not, proves it alive.
#[derive(Clone)]
pub(super) struct ReadClock {
    base: std::time::Instant,
    since_base_ns: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl ReadClock {
    fn new() -> ReadClock {
        ReadClock { base: std::time::Instant::now(), since_base_ns: Default::default() }
    }

    fn mark(&self) {
        let ns = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.since_base_ns.store(ns, std::sync::atomic::Ordering::Relaxed);
    }

    pub(super) fn last(&self) -> std::time::Instant {
        self.base + std::time::Duration::from_nanos(self.since_base_ns.load(std::sync::atomic::Ordering::Relaxed))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for GoAwaySniffer<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && buf.filled().len() > before
        {
            this.read.mark();
            if this.scanner.feed(&buf.filled()[before..]) == Some(ENHANCE_YOUR_CALM) {
                this.watch.raise();
            }
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for GoAwaySniffer<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

const GOAWAY: u8 = 0x7;
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// Follows HTTP/2 frame boundaries in the server-to-client byte stream (which starts
/// with a frame: the server sends no preface string) and reports GOAWAY error codes.
#[derive(Default)]
struct FrameScanner {
    header: [u8; 9],
    header_len: usize,
    payload_left: usize,
    /// Inside a GOAWAY payload: its first 8 bytes (last stream id, error code) so far.
    goaway: Option<([u8; 8], usize)>,
}

impl FrameScanner {
    /// Feeds received bytes; returns the error code of a GOAWAY completed in them.
    fn feed(&mut self, mut bytes: &[u8]) -> Option<u32> {
        let mut found = None;
        while !bytes.is_empty() {
            if self.payload_left == 0 {
                let n = (9 - self.header_len).min(bytes.len());
                self.header[self.header_len..self.header_len + n].copy_from_slice(&bytes[..n]);
                self.header_len += n;
                bytes = &bytes[n..];
                if self.header_len == 9 {
                    self.header_len = 0;
                    let h = self.header;
                    self.payload_left = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
                    self.goaway = (h[3] == GOAWAY && self.payload_left >= 8).then_some(([0; 8], 0));
                }
                continue;
            }
            let n = self.payload_left.min(bytes.len());
            if let Some((buf, have)) = &mut self.goaway {
                let take = (8 - *have).min(n);
                buf[*have..*have + take].copy_from_slice(&bytes[..take]);
                *have += take;
                if *have == 8 {
                    found = Some(u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]));
                    self.goaway = None;
                }
            }
            self.payload_left -= n;
            bytes = &bytes[n..];
        }
        found
    }
}

/// `skip-verify`: accepts any certificate chain and name, but still checks that the
/// server holds the key of the certificate it sent (handshake signatures are verified),
/// so the session keys are not negotiated with a party that merely replays a cert.
#[derive(Debug)]
struct AcceptAnyCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ty: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, ty, 0, 0, 0, 0, 0];
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn scanner_finds_goaway_code_across_any_split() {
        let mut stream = frame(0x4, &[0; 12]); // SETTINGS
        stream.extend(frame(0x0, &[1; 300])); // DATA that happens to contain 0x07 bytes
        stream.extend(frame(0x6, &[7; 8])); // PING
        let mut goaway = vec![0, 0, 0, 3, 0, 0, 0, 0x0b];
        goaway.extend_from_slice(b"too_many_pings");
        stream.extend(frame(GOAWAY, &goaway));
        for chunk in 1..=stream.len() {
            let mut s = FrameScanner::default();
            let found: Vec<u32> = stream.chunks(chunk).filter_map(|c| s.feed(c)).collect();
            assert_eq!(found, vec![ENHANCE_YOUR_CALM], "chunk size {chunk}");
        }
        let mut s = FrameScanner::default();
        assert_eq!(s.feed(&frame(GOAWAY, &[0, 0, 0, 1, 0, 0, 0, 0])), Some(0), "NO_ERROR GOAWAY");
        assert_eq!(s.feed(&frame(0x0, &[0, 0, 0, 0, 0, 0, 0, 0x0b])), None, "DATA is not GOAWAY");
    }

    #[test]
    fn host_of_handles_names_ipv4_and_ipv6() {
        assert_eq!(host_of("leaf1:57400"), "leaf1");
        assert_eq!(host_of("10.0.0.2:57400"), "10.0.0.2");
        assert_eq!(host_of("[::1]:57400"), "::1");
    }
}
