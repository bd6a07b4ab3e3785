//! One HTTP/2 connection to a target, as the service tonic's generated client sends on:
//! hyper's HTTP/2 client over our byte pipe (`transport.rs`), without tonic's `Channel`.
//!
//! Why not `Channel`: it puts a request queue and a worker task in front of every
//! connection (tower's `Buffer`: about 9 KiB per target in heaptrack, and one more task hop
//! per request), and it reconnects by itself. Neither is wanted: a source reconnects on its
//! own terms (Stale first, then backoff), and a Set that finds the connection gone fails
//! retryably and opens a new one (`channels.rs`). Without the queue, a request goes from
//! the caller straight to hyper's connection task.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tonic::body::Body;
use tonic::codegen::http::uri::{Authority, Scheme};
use tonic::codegen::http::{HeaderValue, Request, Response, Uri, header};

use super::connect::KeepAlive;
use super::transport::Conn;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A cheap clone: every clone sends on the same connection, each RPC its own stream.
#[derive(Clone)]
pub struct Http2 {
    send: http2::SendRequest<Body>,
    scheme: Scheme,
    authority: Authority,
}

impl Http2 {
    /// HTTP/2 over `io` (already connected, TLS done), with PING keepalive while a stream is
    /// open. The connection task runs until the last clone is dropped or the peer closes.
    pub(super) async fn handshake(io: Conn, origin: &Uri, keepalive: KeepAlive) -> Result<Http2, hyper::Error> {
        let (send, connection) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(keepalive.interval)
            .keep_alive_timeout(keepalive.timeout)
            .keep_alive_while_idle(false)
            .handshake(io)
            .await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "HTTP/2 connection ended");
            }
        });
        Ok(Http2 {
            send,
            scheme: origin.scheme().cloned().unwrap_or(Scheme::HTTP),
            authority: origin.authority().cloned().unwrap_or_else(|| Authority::from_static("localhost")),
        })
    }
}

static USER_AGENT: HeaderValue = HeaderValue::from_static(concat!("opergroupd/", env!("CARGO_PKG_VERSION")));

impl tonic::codegen::Service<Request<Body>> for Http2 {
    // tonic's body (a box around hyper's), because the interceptor needs a default body.
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.send.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        // tonic's client gives the path only; `:scheme` and `:authority` are the target's.
        let mut parts = std::mem::take(req.uri_mut()).into_parts();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        match Uri::from_parts(parts) {
            Ok(uri) => *req.uri_mut() = uri,
            Err(e) => return Box::pin(std::future::ready(Err(e.into()))),
        }
        req.headers_mut().entry(header::USER_AGENT).or_insert_with(|| USER_AGENT.clone());
        let sent = self.send.send_request(req);
        Box::pin(async move { Ok(sent.await?.map(Body::new)) })
    }
}

impl std::fmt::Debug for Http2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Http2({}://{})", self.scheme, self.authority)
    }
}
