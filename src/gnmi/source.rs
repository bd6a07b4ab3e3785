//! One task per target: connect, Capabilities, one Subscribe (STREAM, ON_CHANGE, in the
//! encoding the target offers) kept open, decode notifications (`subscription.rs`), report
//! liveness, reconnect with backoff.
//!
//! **Liveness** (contract section 8). One subscription per session asks for a
//! `heartbeat_interval` of a third of the target's `liveness`, so a live device re-sends its
//! value at least twice per liveness period even when nothing changes: the oper-state of
//! the first uplink (`crate::plan::subscriptions`) the device has. One is enough to prove
//! the stream alive, and each heartbeat is a wake-up of the whole receive path, so every
//! further one is idle CPU for nothing. A session whose initial dump lacks that path (a
//! typo, a deleted interface) could never hear a heartbeat: it ends before it reports
//! `Synced`, and the next one asks on the first uplink the dump had, or, with none, on
//! every subscription. So does a session that goes silent after the path was deleted. Any
//! SubscribeResponse counts as a sign of life; HTTP/2 PING acks do not (the transport of a
//! wedged gNMI process still answers them). A synced session silent for `liveness` ends as
//! `ErrorKind::Silent`: the source reports `Stale` and resubscribes. Re-sent values that did
//! not change are not passed on: they prove life, not news.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::BackoffBuilder;
use futures::StreamExt;
use gnmi_proto::codec::RawCodec;
use gnmi_proto::subscribe_response::Response;
use gnmi_proto::{Notification, SubscribeRequest, SubscribeResponse};
use prost::Message as _;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::codec::Streaming;
use tonic::codegen::Bytes;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::{GrpcMethod, Status};
use tracing::Instrument;

use crate::config::Target;
use crate::model::{Scalar, SourceEvent, TargetName};

use super::capabilities;
use super::channels::Channels;
use super::connect::{self, ConnectOptions, ErrorKind, GnmiError, GnmiService, KeepAlive, MAX_MESSAGE};
use super::subscription::{
    LastTaken, Subscriptions, decode_notification, heartbeat_for, is_subscribed, subscribe_request, with_encoding,
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceOptions {
    /// From the start of Subscribe until `sync_response`; past it the session is dropped.
    pub sync_timeout: Duration,
    /// First reconnect delay; doubles per failure up to `backoff_max`, each plus up to
    /// 100% random jitter.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// A session synced for at least this long resets the backoff to `backoff_min`.
    pub stable_after: Duration,
    pub connect_timeout: Duration,
    pub keepalive: KeepAlive,
    /// Where each session publishes its channel for the target's Sets (one connection
    /// per target); `None`: Sets open their own.
    pub channels: Option<Channels>,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            sync_timeout: Duration::from_secs(30),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            stable_after: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            keepalive: KeepAlive::DEFAULT,
            channels: None,
        }
    }
}

/// Starts the source task for `target`. It runs until `cancel` fires or `events` closes.
/// Events: `Connecting` per attempt, `Notification`s (also during the initial dump),
/// `Synced` at sync_response, `Stale{error}` whenever a session fails or never syncs.
pub fn spawn_source(
    target: Arc<Target>,
    subs: Subscriptions,
    events: mpsc::Sender<SourceEvent>,
    opts: SourceOptions,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    // Every log line of this task carries the target and its address: the span is entered
    // for each line and each set-up step, not for every poll of the task (a heartbeat or an
    // update each), which was ~10 % of a 3,000-leaf storm's CPU.
    let span = tracing::info_span!("target", target = %target.name, address = %target.address);
    tokio::spawn(async move {
        let name: TargetName = Arc::from(target.name.as_str());
        let subscribed = subs.paths.iter().cloned().collect();
        let unsubscribed_warn = std::sync::Mutex::new(RateLimit::new(UNSUBSCRIBED_WARN_EVERY));
        let source = Source { target, name, subscribed, events, cancel, unsubscribed_warn, span };
        source.run(subs, opts).await;
    })
}

struct Source {
    target: Arc<Target>,
    name: TargetName,
    /// The paths asked for: an update at or below none of them is not evidence of anything.
    subscribed: HashSet<String>,
    events: mpsc::Sender<SourceEvent>,
    cancel: CancellationToken,
    /// A target that keeps sending unasked-for paths gets one WARN per period, not one per update.
    unsubscribed_warn: std::sync::Mutex<RateLimit>,
    /// `target{target=… address=…}`, around each log line and set-up step.
    span: tracing::Span,
}

const UNSUBSCRIBED_WARN_EVERY: Duration = Duration::from_secs(60);

/// At most one event per `every`; counts what it swallowed in between.
#[derive(Debug)]
struct RateLimit {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimit {
    fn new(every: Duration) -> Self {
        RateLimit { every, last: None, suppressed: 0 }
    }

    /// `Some(n)`: go ahead, `n` events were swallowed since the last one allowed.
    fn allow(&mut self, now: Instant) -> Option<u64> {
        if self.last.is_some_and(|l| now.saturating_duration_since(l) < self.every) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// Why a session ended.
enum End {
    /// Cancelled, or nobody listens any more: the task exits.
    Stop,
    Failed {
        error: GnmiError,
        synced_at: Option<Instant>,
    },
    /// The path asked for heartbeats is not on the device: in the initial dump (`synced_at`
    /// is `None`: the session never reported `Synced`), or deleted since and then silent for
    /// `liveness`. `present`: the subscribed paths the device reported.
    NoHeartbeatPath {
        error: GnmiError,
        synced_at: Option<Instant>,
        present: HashSet<String>,
    },
}

/// Which subscriptions of a session ask for heartbeats.
enum Beat {
    /// This one path (an uplink's oper-state).
    One(String),
    /// Every subscription: the device has none of the uplinks.
    Every,
}

impl Source {
    async fn run(&self, subs: Subscriptions, mut opts: SourceOptions) {
        opts.backoff_max = opts.backoff_max.min(self.target.reconnect_max);
        opts.backoff_min = opts.backoff_min.min(opts.backoff_max);
        let heartbeat = self.target.liveness.map(heartbeat_for);
        let mut beat = subs.heartbeat.first().map_or(Beat::Every, |p| Beat::One(p.clone()));
        let builder = crate::backoff::exponential(opts.backoff_min, opts.backoff_max);
        let mut backoff = builder.build();
        let mut attempt: u64 = 0;
        loop {
            attempt += 1;
            let one;
            let on = match &beat {
                Beat::One(p) => {
                    one = HashSet::from([p.clone()]);
                    &one
                }
                Beat::Every => &self.subscribed,
            };
            // Built per session, not kept: a parsed request is ~3 KiB per target for hours.
            let request = match subscribe_request(&subs.paths, on, heartbeat) {
                Ok(r) => r,
                Err(e) => {
                    let error = GnmiError::new(&self.target, ErrorKind::Config, e.to_string());
                    self.span.in_scope(|| tracing::error!(target_name = %self.name, %error, "cannot subscribe"));
                    let at = Instant::now();
                    let _ =
                        self.emit(SourceEvent::Stale { target: self.name.clone(), at, error: error.to_string() }).await;
                    return;
                }
            };
            let asked_one = matches!(beat, Beat::One(_));
            let mut retry_now = false;
            let (error, synced_at) = match self.session(request, on, asked_one, &opts, attempt).await {
                End::Stop => return,
                End::Failed { error, synced_at } => (error, synced_at),
                End::NoHeartbeatPath { error, synced_at, present } => {
                    // Known from the dump, before the session reported `Synced`: the next
                    // session is asked for at once, not after a backoff.
                    retry_now = synced_at.is_none();
                    let missing = match &beat {
                        Beat::One(p) => p.clone(),
                        Beat::Every => String::from("any subscribed path"),
                    };
                    beat = subs
                        .heartbeat
                        .iter()
                        .find(|p| present.contains(*p))
                        .map_or(Beat::Every, |p| Beat::One(p.clone()));
                    match &beat {
                        Beat::One(p) => {
                            self.span.in_scope(|| tracing::warn!(target_name = %self.name, %missing, heartbeat = %p, "the path asked for heartbeats is not on the target; asking on another uplink"))
                        }
                        Beat::Every => {
                            self.span.in_scope(|| tracing::warn!(target_name = %self.name, %missing, "none of the uplinks' oper-state is on the target; asking every subscription for heartbeats from now on"))
                        }
                    }
                    (error, synced_at)
                }
            };
            let stale = SourceEvent::Stale { target: self.name.clone(), at: Instant::now(), error: error.to_string() };
            if self.emit(stale).await.is_err() {
                return;
            }
            if synced_at.is_some_and(|t| t.elapsed() >= opts.stable_after) {
                backoff = builder.build();
            }
            if error.kind == ErrorKind::TooManyPings {
                opts.keepalive = opts.keepalive.backed_off();
                self.span.in_scope(|| tracing::warn!(target_name = %self.name, interval = ?opts.keepalive.interval, "target complained about pings; keepalive interval backed off"));
            }
            if retry_now {
                continue;
            }
            let delay = backoff.next().unwrap_or(opts.backoff_max);
            self.span.in_scope(
                || tracing::warn!(target_name = %self.name, %error, attempt, retry_in = ?delay, "gNMI session failed"),
            );
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    async fn session(
        &self,
        request: SubscribeRequest,
        heartbeat_on: &HashSet<String>,
        asked_one: bool,
        opts: &SourceOptions,
        attempt: u64,
    ) -> End {
        let connecting = SourceEvent::Connecting { target: self.name.clone(), at: Instant::now(), attempt };
        if self.emit(connecting).await.is_err() {
            return End::Stop;
        }
        let target = &*self.target;
        let copts = ConnectOptions { connect_timeout: opts.connect_timeout, keepalive: opts.keepalive };
        let (service, goaway) = tokio::select! {
            _ = self.cancel.cancelled() => return End::Stop,
            // Boxed, like the other set-up steps: the session's future stays small for the
            // hours it streams (it is as large as its largest step otherwise).
            r = Box::pin(connect::connect_watched(target, &copts).instrument(self.span.clone())) => match r {
                Ok(c) => c,
                Err(error) => return End::Failed { error, synced_at: None },
            },
        };
        // A connection the target closed after GOAWAY ENHANCE_YOUR_CALM shows up as a broken
        // pipe; the watch says why.
        let failed_at = |mut error: GnmiError, synced_at| {
            if goaway.enhance_your_calm() {
                error.kind = ErrorKind::TooManyPings;
            }
            End::Failed { error, synced_at }
        };
        let failed = |error| failed_at(error, None);
        let mut client = connect::client(service.clone());
        let encoding = tokio::select! {
            _ = self.cancel.cancelled() => return End::Stop,
            r = Box::pin(capabilities::check_capabilities(&mut client, target, opts.connect_timeout).instrument(self.span.clone())) => match r {
                Ok(e) => e,
                Err(e) => return failed(e),
            },
        };
        if let Some(channels) = &opts.channels {
            channels.publish(target, &client, encoding);
        }
        let request = with_encoding(request, encoding);

        // The request stream sends the SubscriptionList and then stays open for the life of
        // the session: half-closing it ends the subscription on some targets. It ends when
        // this session does (the guard drops), so the HTTP/2 stream is reset and the
        // connection closes instead of lingering with a stream nobody reads.
        let session_over = CancellationToken::new();
        let _end_requests_on_return = session_over.clone().drop_guard();
        let requests = futures::stream::once(std::future::ready(request)).chain(
            futures::stream::once(async move { session_over.cancelled().await })
                .filter_map(|()| std::future::ready(None)),
        );
        let sync_deadline = tokio::time::Instant::now() + opts.sync_timeout;
        let no_sync =
            || GnmiError::new(target, ErrorKind::NoSync, format!("none within {:?} of subscribing", opts.sync_timeout));
        let mut stream = tokio::select! {
            _ = self.cancel.cancelled() => return End::Stop,
            _ = tokio::time::sleep_until(sync_deadline) => return failed(no_sync()),
            r = Box::pin(subscribe_raw(service, requests).instrument(self.span.clone())) => match r {
                Ok(stream) => stream,
                Err(status) => return failed(GnmiError::from_status(target, &status)),
            },
        };
        self.span.in_scope(|| tracing::info!(target_name = %self.name, address = %target.address, attempt, encoding = encoding.as_str(), "subscribed"));
        let subscribed = SourceEvent::Subscribed { target: self.name.clone(), at: Instant::now(), encoding };
        if self.emit(subscribed).await.is_err() {
            return End::Stop;
        }

        let mut synced_at: Option<Instant> = None;
        // What this session reported last per path: heartbeat re-sends of the same value are
        // dropped here (see the module comment).
        let mut seen: HashMap<String, Scalar> = HashMap::new();
        let mut last_taken = LastTaken::default();
        let liveness = target.liveness;
        // Made once per session, not once per message: a heartbeat costs neither a timer
        // registration nor a cancellation waiter. The liveness timer is checked lazily: it
        // fires once per period and moves on to `last_message + liveness` if a message came.
        let cancelled = self.cancel.cancelled();
        tokio::pin!(cancelled);
        let sync_timer = tokio::time::sleep_until(sync_deadline);
        tokio::pin!(sync_timer);
        let mut last_message = Instant::now();
        let silence = tokio::time::sleep_until((last_message + liveness.unwrap_or_default()).into());
        tokio::pin!(silence);
        loop {
            let next = tokio::select! {
                _ = &mut cancelled => return End::Stop,
                _ = &mut sync_timer, if synced_at.is_none() => return failed(no_sync()),
                _ = &mut silence, if synced_at.is_some() && liveness.is_some() => {
                    let l = liveness.unwrap_or_default();
                    let deadline = last_message + l;
                    if Instant::now() < deadline {
                        silence.as_mut().reset(deadline.into());
                        continue;
                    }
                    let error = GnmiError::new(target, ErrorKind::Silent, format!(
                        "no gNMI message (update, heartbeat or sync_response) for {} (liveness)",
                        crate::config::duration::format(l)
                    ));
                    if asked_one && !heard_of(&seen, heartbeat_on) {
                        return End::NoHeartbeatPath { error, synced_at, present: seen.into_keys().collect() };
                    }
                    return failed_at(error, synced_at);
                }
                next = stream.message() => next,
            };
            if let Ok(Some(_)) = &next {
                last_message = Instant::now();
            }
            let msg = match next {
                Ok(Some(raw)) if last_taken.repeats(&raw) => continue,
                Ok(Some(raw)) => SubscribeResponse::decode(raw).map_err(|e| {
                    GnmiError::new(target, ErrorKind::Stream, format!("undecodable SubscribeResponse: {e}"))
                }),
                Ok(None) => Err(GnmiError::new(target, ErrorKind::Stream, "stream closed by the target")),
                Err(status) => {
                    let mut e = GnmiError::from_status(target, &status);
                    if matches!(e.kind, ErrorKind::Rpc(_) | ErrorKind::Connect) {
                        e.kind = ErrorKind::Stream;
                    }
                    Err(e)
                }
            };
            let error = match msg.map(|m| m.response) {
                Ok(Some(Response::Update(n))) => {
                    match self.notification(&n, &mut seen).await {
                        Ok(taken_whole) => last_taken.handled(taken_whole),
                        Err(Stopped) => return End::Stop,
                    }
                    continue;
                }
                Ok(Some(Response::SyncResponse(_))) => {
                    // A dump without the heartbeat path: this session would go silent.
                    if synced_at.is_none() && liveness.is_some() && asked_one && !heard_of(&seen, heartbeat_on) {
                        let error = GnmiError::new(
                            target,
                            ErrorKind::Silent,
                            "the path asked for heartbeats is not in the initial dump",
                        );
                        return End::NoHeartbeatPath { error, synced_at: None, present: seen.into_keys().collect() };
                    }
                    if synced_at.is_none() {
                        let now = Instant::now();
                        synced_at = Some(now);
                        self.span.in_scope(|| tracing::info!(target_name = %self.name, "synced"));
                        if self.emit(SourceEvent::Synced { target: self.name.clone(), at: now }).await.is_err() {
                            return End::Stop;
                        }
                    }
                    continue;
                }
                Ok(Some(Response::Error(e))) => {
                    GnmiError::new(target, ErrorKind::Stream, format!("target sent error {}: {}", e.code, e.message))
                }
                Ok(None) => continue,
                Err(error) => error,
            };
            return failed_at(error, synced_at);
        }
    }

    /// Passes on what changed; true when every update was taken (none skipped, none for a
    /// path not subscribed).
    async fn notification(&self, n: &Notification, seen: &mut HashMap<String, Scalar>) -> Result<bool, Stopped> {
        let mut decoded = decode_notification(n);
        let received = decoded.updates.len();
        for skipped in &decoded.skipped {
            self.span.in_scope(|| tracing::warn!(target_name = %self.name, error = %skipped, "skipping update"));
        }
        // A target may send paths it was not asked for (a bug, or schema drift): keep them
        // out of the state so they can neither be mistaken for evidence nor pile up.
        decoded.updates.retain(|(path, _)| {
            let known = is_subscribed(&self.subscribed, path);
            if !known {
                let allowed = self.unsubscribed_warn.lock().map(|mut r| r.allow(Instant::now())).unwrap_or(None);
                if let Some(suppressed) = allowed {
                    self.span.in_scope(|| tracing::warn!(target_name = %self.name, %path, suppressed_since_last = suppressed,
                        every = ?UNSUBSCRIBED_WARN_EVERY, "skipping update for a path not subscribed (one warning per period)"));
                }
            }
            known
        });
        let taken_whole = decoded.skipped.is_empty() && decoded.updates.len() == received;
        for d in &decoded.deletes {
            let d = d.trim_end_matches('/');
            seen.retain(|p, _| !(p == d || p.starts_with(&format!("{d}/")) || p.starts_with(&format!("{d}["))));
        }
        // Heartbeats repeat every value: compare in place, and copy only what changed.
        decoded.updates.retain(|(path, value)| match seen.get_mut(path) {
            Some(known) if known == value => false,
            Some(known) => {
                *known = value.clone();
                true
            }
            None => {
                seen.insert(path.clone(), value.clone());
                true
            }
        });
        if decoded.updates.is_empty() && decoded.deletes.is_empty() {
            return Ok(taken_whole);
        }
        self.emit(SourceEvent::Notification {
            target: self.name.clone(),
            received: Instant::now(),
            device_ns: n.timestamp,
            updates: decoded.updates,
            deletes: decoded.deletes,
        })
        .await
        .map(|()| taken_whole)
    }

    async fn emit(&self, ev: SourceEvent) -> Result<(), Stopped> {
        tokio::select! {
            _ = self.cancel.cancelled() => Err(Stopped),
            r = self.events.send(ev) => r.map_err(|_| Stopped),
        }
    }
}

/// Cancelled, or the receiver is gone.
struct Stopped;

/// Whether the device reported any of the paths asked for heartbeats this session.
fn heard_of(seen: &HashMap<String, Scalar>, heartbeat_on: &HashSet<String>) -> bool {
    seen.keys().any(|p| is_subscribed(heartbeat_on, p))
}

/// Opens `requests` as a Subscribe RPC on `service`, its responses left encoded (see
/// `LastTaken`): what the generated client's `subscribe` does, with another codec.
async fn subscribe_raw<S>(service: GnmiService, requests: S) -> Result<Streaming<Bytes>, Status>
where
    S: futures::Stream<Item = SubscribeRequest> + Send + 'static,
{
    let mut grpc = tonic::client::Grpc::new(service).max_decoding_message_size(MAX_MESSAGE);
    grpc.ready().await.map_err(|e| Status::unknown(format!("service was not ready: {e}")))?;
    let mut request = tonic::Request::new(requests);
    request.extensions_mut().insert(GrpcMethod::new("gnmi.gNMI", "Subscribe"));
    let path = PathAndQuery::from_static("/gnmi.gNMI/Subscribe");
    grpc.streaming(request, path, RawCodec::default()).await.map(tonic::Response::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn rate_limit_allows_one_per_period_and_counts_the_rest() {
        let t0 = Instant::now();
        let mut r = RateLimit::new(Duration::from_secs(60));
        assert_eq!(r.allow(t0), Some(0));
        for i in 1..=1000 {
            assert_eq!(r.allow(t0 + Duration::from_millis(i)), None);
        }
        assert_eq!(r.allow(t0 + Duration::from_secs(60)), Some(1000));
        assert_eq!(r.allow(t0 + Duration::from_secs(61)), None);
    }
}
