//! One HTTP/2 connection to a target, as the service tonic's generated client sends on:
//! the `h2` crate's client over our byte pipe (`transport.rs`), with nothing in between.
//!
//! Why not tonic's `Channel`, nor hyper's HTTP/2 client: both put a request queue in front
//! of every connection (tower's `Buffer`, ~9 KiB per target; hyper's dispatch channel, a
//! tokio block of 32 request slots, ~8.5 KiB per target in heaptrack at 2,000 leaves) and a
//! task per streaming request body; at 10,000 targets that is ~90 MiB of queues nobody
//! waits in. Here a request goes from the caller straight onto the h2 stream; its body is
//! sent by whoever polls the response (the response future, then the response body), so a
//! subscription's open request stream costs no task. Neither is a reconnect wanted: a
//! source reconnects on its own terms (Stale first, then backoff), and a Set that finds the
//! connection gone fails retryably and opens a new one (`channels.rs`).
//!
//! Keepalive (module docs of `gnmi`): one task per connection drives it and, while a stream
//! is open and nothing was read for `interval`, sends a PING; no ack within `timeout`
//! closes the connection, which fails its streams.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker, ready};

use futures::task::AtomicWaker;

use h2::client::{Connection, SendRequest};
use h2::{Ping, PingPong, RecvStream, SendStream};
use http_body::{Body as _, Frame};
use tonic::body::Body;
use tonic::codegen::Bytes;
use tonic::codegen::http::uri::{Authority, Scheme};
use tonic::codegen::http::{HeaderValue, Request, Response, Uri, header};

use super::connect::KeepAlive;
use super::transport::{Conn, ReadClock};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A cheap clone: every clone sends on the same connection, each RPC its own stream.
#[derive(Clone)]
pub struct Http2 {
    send: SendRequest<Bytes>,
    /// Streams whose response is not finished or dropped yet (keepalive pings only then).
    open: Arc<AtomicUsize>,
    scheme: Scheme,
    authority: Authority,
}

impl Http2 {
    /// HTTP/2 over `io` (already connected, TLS done). The connection's task runs until the
    /// last clone is dropped and its streams are done, or the peer closes.
    pub(super) async fn handshake(io: Conn, origin: &Uri, keepalive: KeepAlive) -> Result<Http2, h2::Error> {
        let read = io.read_clock();
        let (send, mut connection) = h2::client::handshake(io).await?;
        let open = Arc::new(AtomicUsize::new(0));
        let pings = connection.ping_pong();
        tokio::spawn(drive(connection, pings, keepalive, read, open.clone()));
        Ok(Http2 {
            send,
            open,
            scheme: origin.scheme().cloned().unwrap_or(Scheme::HTTP),
            authority: origin.authority().cloned().unwrap_or_else(|| Authority::from_static("localhost")),
        })
    }
}

/// Runs the connection; pings a peer that said nothing for `interval` while a stream is
/// open, and gives up on it without an ack in `timeout`.
async fn drive(
    mut connection: Connection<Conn, Bytes>,
    pings: Option<PingPong>,
    keepalive: KeepAlive,
    read: ReadClock,
    open: Arc<AtomicUsize>,
) {
    let ended = |r: Result<(), h2::Error>| {
        if let Err(error) = r {
            tracing::debug!(%error, "HTTP/2 connection ended");
        }
    };
    let Some(mut pings) = pings else {
        return ended(connection.await);
    };
    // No stream open when a ping was due: look again an interval later, not at once.
    let mut looked = std::time::Instant::now();
    loop {
        let now = std::time::Instant::now();
        match keepalive_step(read.last(), looked, now, keepalive.interval, open.load(Ordering::Relaxed)) {
            Keepalive::WaitUntil(at) => {
                tokio::select! {
                    r = &mut connection => return ended(r),
                    _ = tokio::time::sleep_until(at.into()) => {}
                }
                continue;
            }
            Keepalive::LookLater => {
                looked = now;
                continue;
            }
            Keepalive::Ping => {}
        }
        let acked = tokio::time::timeout(keepalive.timeout, pings.ping(Ping::opaque()));
        tokio::select! {
            r = &mut connection => return ended(r),
            r = acked => match r {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => return tracing::debug!(%error, "HTTP/2 PING failed"),
                // Dropping the connection fails every stream on it.
                Err(_) => return tracing::debug!(timeout = ?keepalive.timeout, "no HTTP/2 PING ack: closing the connection"),
            },
        }
    }
}

/// What the keepalive does next.
#[derive(Debug, PartialEq, Eq)]
enum Keepalive {
    WaitUntil(std::time::Instant),
    /// Quiet for `interval` but no stream open: nothing to ping for yet.
    LookLater,
    Ping,
}

/// Ping once the peer said nothing for `interval` while a stream is open; with none open,
/// wait an interval from the last look (never a deadline already past: that would spin).
fn keepalive_step(
    last_read: std::time::Instant,
    looked: std::time::Instant,
    now: std::time::Instant,
    interval: std::time::Duration,
    open: usize,
) -> Keepalive {
    let due = last_read.max(looked) + interval;
    if now < due {
        Keepalive::WaitUntil(due)
    } else if open == 0 {
        Keepalive::LookLater
    } else {
        Keepalive::Ping
    }
}

static USER_AGENT: HeaderValue = HeaderValue::from_static(concat!("opergroupd/", env!("CARGO_PKG_VERSION")));

impl tonic::codegen::Service<Request<Body>> for Http2 {
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.send.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let (mut parts, body) = req.into_parts();
        // tonic's client gives the path only; `:scheme` and `:authority` are the target's.
        let mut uri = std::mem::take(&mut parts.uri).into_parts();
        uri.scheme = Some(self.scheme.clone());
        uri.authority = Some(self.authority.clone());
        parts.uri = match Uri::from_parts(uri) {
            Ok(uri) => uri,
            Err(e) => return Box::pin(std::future::ready(Err(e.into()))),
        };
        parts.headers.entry(header::USER_AGENT).or_insert_with(|| USER_AGENT.clone());
        let end = body.is_end_stream();
        let (response, send) = match self.send.send_request(Request::from_parts(parts, ()), end) {
            Ok(sent) => sent,
            Err(e) => return Box::pin(std::future::ready(Err(e.into()))),
        };
        let open = StreamOpen::new(&self.open);
        let mut pump = Pump::new((!end).then_some(body), send);
        Box::pin(async move {
            let mut response = response;
            let head = std::future::poll_fn(|cx| {
                pump.poll(cx);
                Pin::new(&mut response).poll(cx)
            })
            .await?;
            Ok(head.map(|recv| Body::new(ResponseBody { recv, pump, trailers: false, _open: open })))
        })
    }
}

/// Counts a stream as open for as long as it lives.
struct StreamOpen(Arc<AtomicUsize>);

impl StreamOpen {
    fn new(open: &Arc<AtomicUsize>) -> StreamOpen {
        open.fetch_add(1, Ordering::Relaxed);
        StreamOpen(open.clone())
    }
}

impl Drop for StreamOpen {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Moves a request body onto its h2 stream, as far as the body has frames ready. The body
/// is polled only when it asked to be (its own waker fired), not on every response poll: a
/// subscription's request stream stays open and idle for hours, and polling it per received
/// message (tonic's encoder, then the session's cancellation check) was ~5 % of idle CPU.
struct Pump {
    body: Option<Body>,
    send: SendStream<Bytes>,
    woken: Arc<BodyWaker>,
}

impl Pump {
    fn new(body: Option<Body>, send: SendStream<Bytes>) -> Pump {
        let woken = Arc::new(BodyWaker { woken: AtomicBool::new(true), task: AtomicWaker::new() });
        Pump { body, send, woken }
    }

    fn poll(&mut self, cx: &mut Context<'_>) {
        if self.body.is_none() {
            return;
        }
        self.woken.task.register(cx.waker());
        if !self.woken.woken.swap(false, Ordering::AcqRel) {
            return;
        }
        let waker = Waker::from(self.woken.clone());
        let mut body_cx = Context::from_waker(&waker);
        while let Some(body) = self.body.as_mut() {
            let sent = match Pin::new(body).poll_frame(&mut body_cx) {
                Poll::Pending => return,
                // gRPC messages are small: h2 buffers what the peer's window cannot take yet.
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => self.send.send_data(data, false).map(|()| true),
                    Err(frame) => match frame.into_trailers() {
                        Ok(trailers) => self.send.send_trailers(trailers).map(|()| false),
                        Err(_) => Ok(true),
                    },
                },
                Poll::Ready(None) => self.send.send_data(Bytes::new(), true).map(|()| false),
                Poll::Ready(Some(Err(_))) => {
                    self.send.send_reset(h2::Reason::CANCEL);
                    Ok(false)
                }
            };
            if !matches!(sent, Ok(true)) {
                self.body = None;
            }
        }
    }
}

/// The request body's waker: notes that the body has something, then wakes whichever task
/// polls the response.
struct BodyWaker {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for BodyWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// The response's DATA frames, then its trailers (where gRPC puts the status). Polling it
/// also sends whatever the request body has ready.
struct ResponseBody {
    recv: RecvStream,
    pump: Pump,
    trailers: bool,
    _open: StreamOpen,
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        let this = &mut *self;
        this.pump.poll(cx);
        if !this.trailers {
            match ready!(this.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    // Hand the window back at once: the reader keeps up or the stream ends.
                    let _ = this.recv.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => this.trailers = true,
            }
        }
        match ready!(this.recv.poll_trailers(cx)) {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.recv.is_end_stream()
    }
}

impl std::fmt::Debug for Http2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Http2({}://{})", self.scheme, self.authority)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tonic::codegen::Service;

    use super::*;
    use crate::gnmi::connect::GoAwayWatch;

    #[test]
    fn keepalive_pings_a_quiet_peer_only_with_a_stream_open_and_never_waits_for_the_past() {
        let t0 = std::time::Instant::now();
        let i = Duration::from_secs(300);
        assert_eq!(keepalive_step(t0, t0, t0 + Duration::from_secs(1), i, 1), Keepalive::WaitUntil(t0 + i));
        assert_eq!(keepalive_step(t0, t0, t0 + i, i, 1), Keepalive::Ping);
        // Quiet, no stream: look again later, and that look waits a whole interval.
        assert_eq!(keepalive_step(t0, t0, t0 + i, i, 0), Keepalive::LookLater);
        let looked = t0 + i;
        assert_eq!(keepalive_step(t0, looked, looked, i, 0), Keepalive::WaitUntil(looked + i));
        // A stream opened meanwhile is pinged for at the next look.
        assert_eq!(keepalive_step(t0, looked, looked + i, i, 1), Keepalive::Ping);
    }

    /// A request body backed by a channel that counts how often it is polled.
    struct CountedBody {
        frames: tokio::sync::mpsc::UnboundedReceiver<Bytes>,
        polls: Arc<AtomicUsize>,
    }

    impl http_body::Body for CountedBody {
        type Data = Bytes;
        type Error = tonic::Status;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
            self.polls.fetch_add(1, Ordering::Relaxed);
            self.frames.poll_recv(cx).map(|f| f.map(|b| Ok(Frame::data(b))))
        }
    }

    /// The open request stream of a subscription is polled when it has something, not once
    /// per received message; and what it has later still goes out.
    #[tokio::test]
    async fn an_idle_request_body_is_not_polled_per_response_message_and_later_frames_still_go_out() {
        const MESSAGES: usize = 50;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let mut conn = h2::server::handshake(s).await.unwrap();
            let (request, mut respond) = conn.accept().await.unwrap().unwrap();
            tokio::spawn(async move { while conn.accept().await.is_some() {} });
            let mut body = request.into_body();
            assert_eq!(body.data().await.unwrap().unwrap(), Bytes::from_static(b"subscribe"));
            let mut send = respond.send_response(Response::new(()), false).unwrap();
            for i in 0..MESSAGES {
                send.send_data(Bytes::from(format!("{i}")), false).unwrap();
            }
            // Only once the client's second frame arrives.
            let second = body.data().await.unwrap().unwrap();
            send.send_data(second, true).unwrap();
        });
        let io = crate::gnmi::transport::open(&addr.to_string(), None, GoAwayWatch::default()).await.unwrap();
        let origin: Uri = format!("http://{addr}").parse().unwrap();
        let mut client = Http2::handshake(io, &origin, KeepAlive::DEFAULT).await.unwrap();
        std::future::poll_fn(|cx| client.poll_ready(cx)).await.unwrap();
        let (frames, rx) = tokio::sync::mpsc::unbounded_channel();
        let polls = Arc::new(AtomicUsize::new(0));
        frames.send(Bytes::from_static(b"subscribe")).unwrap();
        let body = Body::new(CountedBody { frames: rx, polls: polls.clone() });
        let request = Request::builder().uri("/gnmi.gNMI/Subscribe").body(body).unwrap();
        let deadline = Duration::from_secs(5);
        let response = tokio::time::timeout(deadline, client.call(request)).await.unwrap().unwrap();
        let mut body = response.into_body();
        let mut next = async || {
            let frame = tokio::time::timeout(deadline, std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)));
            frame.await.expect("no frame within 5 s").unwrap().unwrap().into_data().unwrap()
        };
        for i in 0..MESSAGES {
            assert_eq!(next().await, Bytes::from(format!("{i}")));
        }
        let polled = polls.load(Ordering::Relaxed);
        assert!(polled <= 3, "the idle request body was polled {polled} times for {MESSAGES} messages");
        frames.send(Bytes::from_static(b"second")).unwrap();
        assert_eq!(next().await, Bytes::from_static(b"second"));
        server.await.unwrap();
    }

    /// A peer whose kernel still takes our bytes but whose server went quiet mid-RPC: it is
    /// pinged after `interval` of silence, and the missing ack fails the RPC. Without the
    /// keepalive the call would wait for ever.
    #[tokio::test]
    async fn a_peer_that_stops_answering_is_pinged_and_its_streams_fail() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            // An empty SETTINGS frame, then silence: no acks, no response; it only reads.
            s.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
            let mut sink = vec![0u8; 4096];
            while s.read(&mut sink).await.is_ok_and(|n| n > 0) {}
        });
        let io = crate::gnmi::transport::open(&addr.to_string(), None, GoAwayWatch::default()).await.unwrap();
        let keepalive = KeepAlive { interval: Duration::from_millis(200), timeout: Duration::from_millis(200) };
        let origin: Uri = format!("http://{addr}").parse().unwrap();
        let mut client = Http2::handshake(io, &origin, keepalive).await.unwrap();
        std::future::poll_fn(|cx| client.poll_ready(cx)).await.unwrap();
        let request = Request::builder().uri("/gnmi.gNMI/Capabilities").body(Body::empty()).unwrap();
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(Duration::from_secs(5), client.call(request)).await;
        assert!(matches!(outcome, Ok(Err(_))), "the call did not fail within 5 s");
        assert!(started.elapsed() >= keepalive.interval, "failed before any ping could be due");
        server.abort();
    }
}
