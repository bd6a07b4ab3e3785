//! The gNMI service of one leaf: Capabilities, Get, Set and Subscribe.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt;
use gnmi_proto as pb;
use pb::g_nmi_server::{GNmi, GNmiServer};
use pb::subscribe_request::Request as SubReq;
use pb::subscribe_response::Response as SubResp;
use pb::subscription_list::Mode as ListMode;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};

use crate::SimError;
use crate::control::{PathValue, SetOutcome, SetRecord};
use crate::fabric::{Shared, StreamEvent, lock};
use crate::leaf::SetOps;
use crate::path::SPath;
use crate::profile::Profile;
use crate::tls::ServerCert;
use crate::value::{ENCODINGS, PROTO_ONLY, Val, check_encoding, decode_set_value};

pub fn serve(
    sh: Arc<Shared>,
    idx: usize,
    listener: tokio::net::TcpListener,
    tls: Option<&ServerCert>,
) -> Result<tokio::task::JoinHandle<()>, SimError> {
    let mut builder = tonic::transport::Server::builder();
    if let Some(c) = tls {
        let identity = tonic::transport::Identity::from_pem(&c.cert_pem, &c.key_pem);
        builder = builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .map_err(|e| SimError::Tls(e.to_string()))?;
    }
    // Small writes (one notification, one Set response) must not wait for Nagle.
    let incoming = TcpListenerStream::new(listener).map(|c| {
        c.inspect(|s| {
            let _ = s.set_nodelay(true);
        })
    });
    let cancel = lock(&sh.leaves[idx].server_stop).clone();
    let name = sh.leaves[idx].name.clone();
    let svc = GNmiServer::new(LeafService { sh, idx });
    Ok(tokio::spawn(async move {
        if let Err(e) = builder.add_service(svc).serve_with_incoming_shutdown(incoming, cancel.cancelled_owned()).await
        {
            tracing::error!(leaf = %name, error = %e, "gNMI server stopped");
        }
    }))
}

struct LeafService {
    sh: Arc<Shared>,
    idx: usize,
}

impl LeafService {
    fn check_auth<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let md = req.metadata();
        let get = |k: &str| md.get(k).and_then(|v| v.to_str().ok());
        if get("username") == Some(self.sh.username.as_str()) && get("password") == Some(self.sh.password.as_str()) {
            Ok(())
        } else {
            Err(Status::unauthenticated("authentication failed: wrong or missing username/password metadata"))
        }
    }

    fn check_available(&self) -> Result<(), Status> {
        let st = lock(&self.sh.leaves[self.idx].state);
        match st.unavailable_until {
            Some(t) if Instant::now() < t => Err(Status::unavailable("leaf is restarting")),
            _ => Ok(()),
        }
    }

    fn module_names(&self) -> bool {
        self.sh.leaves[self.idx].module_names.load(Ordering::Relaxed)
    }

    fn profile(&self) -> Profile {
        self.sh.leaves[self.idx].profile
    }

    fn proto_only(&self) -> bool {
        self.sh.leaves[self.idx].proto_only.load(Ordering::Relaxed)
    }

    fn record(
        &self,
        seq: u64,
        received: crate::Applied,
        ops: &SetOps,
        outcome: SetOutcome,
        error: Option<String>,
        applied: Option<crate::Applied>,
    ) {
        let pv = |v: &Vec<(SPath, serde_json::Value)>| {
            v.iter().map(|(p, v)| PathValue { path: p.to_string(), value: v.clone() }).collect()
        };
        self.sh.record_set(SetRecord {
            seq,
            node: self.sh.leaves[self.idx].name.clone(),
            received,
            applied,
            deletes: ops.deletes.iter().map(ToString::to_string).collect(),
            replaces: pv(&ops.replaces),
            updates: pv(&ops.updates),
            outcome,
            error,
        });
    }
}

/// Decodes a SetRequest; the ops are always returned (for the log), the first problem too.
fn decode_set(req: &pb::SetRequest, profile: Profile, proto_only: bool) -> (SetOps, Option<String>) {
    let pfx = req.prefix.as_ref();
    let mut problems = Vec::new();
    let deletes = req.delete.iter().map(|p| set_path(profile, pfx, Some(p), &mut problems)).collect();
    let replaces = set_values(profile, pfx, &req.replace, &mut problems);
    let updates = set_values(profile, pfx, &req.update, &mut problems);
    let json_ietf = |u: &pb::Update| {
        matches!(u.val.as_ref().and_then(|v| v.value.as_ref()), Some(pb::typed_value::Value::JsonIetfVal(_)))
    };
    if proto_only && req.replace.iter().chain(&req.update).any(json_ietf) {
        problems.push("unsupported encoding JSON_IETF: this target supports PROTO and ASCII".into());
    }
    if !req.union_replace.is_empty() {
        problems.push("union_replace is not supported by this target".into());
    }
    (SetOps { deletes, replaces, updates }, problems.into_iter().next())
}

fn set_path(profile: Profile, pfx: Option<&pb::Path>, p: Option<&pb::Path>, problems: &mut Vec<String>) -> SPath {
    SPath::from_pb_as(profile, pfx, p).unwrap_or_else(|e| {
        problems.push(e);
        SPath::join(pfx, p)
    })
}

fn set_values(
    profile: Profile,
    pfx: Option<&pb::Path>,
    ups: &[pb::Update],
    problems: &mut Vec<String>,
) -> Vec<(SPath, serde_json::Value)> {
    ups.iter()
        .map(|u| {
            let p = set_path(profile, pfx, u.path.as_ref(), problems);
            let v = decode_set_value(u.val.as_ref()).unwrap_or_else(|e| {
                problems.push(format!("Invalid value for {p}: {e}"));
                serde_json::Value::Null
            });
            (p, v)
        })
        .collect()
}

/// Splits updates and deletes into SR Linux-shaped notifications: one per prefix.
fn notifications(
    unix_ns: i64,
    updates: &[(SPath, Val)],
    deletes: &[SPath],
    enc: pb::Encoding,
    (profile, module_names): (Profile, bool),
    target: &str,
) -> Vec<pb::Notification> {
    let mut by_prefix: BTreeMap<SPath, pb::Notification> = BTreeMap::new();
    let new_notification = |prefix: &SPath| {
        let mut p = prefix.to_pb_as(profile, module_names);
        p.target = target.to_string();
        let has_prefix = !prefix.0.is_empty() || !target.is_empty();
        pb::Notification { timestamp: unix_ns, prefix: has_prefix.then_some(p), ..Default::default() }
    };
    for (path, val) in updates {
        let (prefix, rel) = path.split_for_notification();
        let n = by_prefix.entry(prefix).or_insert_with_key(new_notification);
        n.update.push(pb::Update {
            path: Some(rel.to_pb_as(profile, module_names)),
            val: Some(val.encode(enc)),
            ..Default::default()
        });
    }
    for path in deletes {
        let (prefix, rel) = path.split_for_notification();
        by_prefix.entry(prefix).or_insert_with_key(new_notification).delete.push(rel.to_pb_as(profile, module_names));
    }
    by_prefix.into_values().collect()
}

/// A notification carrying raw JSON_IETF bytes (faults: malformed values, unknown paths).
pub fn raw_notification(sh: &Shared, path: &SPath, json: Vec<u8>) -> pb::Notification {
    let (prefix, rel) = path.split_for_notification();
    pb::Notification {
        timestamp: sh.clock.now().unix_ns,
        prefix: Some(prefix.to_pb(false)),
        update: vec![pb::Update {
            path: Some(rel.to_pb(false)),
            val: Some(pb::TypedValue { value: Some(pb::typed_value::Value::JsonIetfVal(json)) }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn update_result(path: Option<&pb::Path>, op: pb::update_result::Operation) -> pb::UpdateResult {
    pb::UpdateResult { path: path.cloned(), op: op as i32, ..Default::default() }
}

#[tonic::async_trait]
impl GNmi for LeafService {
    async fn capabilities(
        &self,
        req: Request<pb::CapabilityRequest>,
    ) -> Result<Response<pb::CapabilityResponse>, Status> {
        self.check_auth(&req)?;
        self.check_available()?;
        let supported_models = (self.profile().models().iter())
            .map(|(name, org, version)| pb::ModelData {
                name: (*name).into(),
                organization: (*org).into(),
                version: (*version).into(),
            })
            .collect();
        let encodings: &[pb::Encoding] = if self.proto_only() { &PROTO_ONLY } else { &ENCODINGS };
        Ok(Response::new(pb::CapabilityResponse {
            supported_models,
            supported_encodings: encodings.iter().map(|e| *e as i32).collect(),
            g_nmi_version: "0.10.0".into(),
        }))
    }

    async fn get(&self, req: Request<pb::GetRequest>) -> Result<Response<pb::GetResponse>, Status> {
        self.check_auth(&req)?;
        self.check_available()?;
        let req = req.into_inner();
        let enc = check_encoding(req.encoding, self.proto_only())?;
        let prefix = req.prefix.as_ref();
        let profile = self.profile();
        let patterns = if req.path.is_empty() {
            vec![SPath::from_pb_as(profile, prefix, None)]
        } else {
            req.path.iter().map(|p| SPath::from_pb_as(profile, prefix, Some(p))).collect()
        };
        let patterns = patterns.into_iter().collect::<Result<Vec<_>, _>>().map_err(Status::invalid_argument)?;
        for p in &patterns {
            profile.check_schema(p).map_err(Status::invalid_argument)?;
        }
        let config_only = req.r#type() == pb::get_request::DataType::Config;
        let target = prefix.map(|p| p.target.clone()).unwrap_or_default();
        let now = self.sh.clock.now().unix_ns;
        let tree = lock(&self.sh.leaves[self.idx].state).tree.clone();
        let mut out = Vec::new();
        for p in &patterns {
            let found: Vec<(SPath, Val)> = tree
                .iter()
                .filter(|(l, _)| p.matches(l) && (!config_only || profile.is_config(l)))
                .map(|(l, v)| (l.clone(), v.clone()))
                .collect();
            if found.is_empty() && !p.has_wildcards() {
                return Err(Status::not_found(format!("Path not found: {p}")));
            }
            out.extend(notifications(now, &found, &[], enc, (profile, self.module_names()), &target));
        }
        Ok(Response::new(pb::GetResponse { notification: out, error: None }))
    }

    async fn set(&self, req: Request<pb::SetRequest>) -> Result<Response<pb::SetResponse>, Status> {
        let received = self.sh.clock.now();
        let seq = self.sh.set_seq.fetch_add(1, Ordering::SeqCst);
        let auth = self.check_auth(&req);
        let req = req.into_inner();
        let (ops, problem) = decode_set(&req, self.profile(), self.proto_only());
        if let Err(status) = auth {
            self.record(seq, received, &ops, SetOutcome::Rejected, Some(status.message().to_string()), None);
            return Err(status);
        }
        let (refuse, reject, delay) = {
            let mut st = lock(&self.sh.leaves[self.idx].state);
            let touched = ops.deletes.iter().chain(ops.replaces.iter().chain(&ops.updates).map(|(p, _)| p));
            let reject = touched.into_iter().find(|p| st.reject_paths.contains(p)).map(|p| p.to_string());
            let restarting = st.unavailable_until.is_some_and(|t| Instant::now() < t);
            let refuse = if restarting {
                Some("leaf is restarting")
            } else if st.refuse_sets > 0 {
                st.refuse_sets -= 1;
                Some("fabric-sim fault: Set refused")
            } else {
                None
            };
            (refuse, reject, st.set_delay)
        };
        if let Some(why) = refuse {
            self.record(seq, received, &ops, SetOutcome::Refused, Some(why.into()), None);
            return Err(Status::unavailable(why));
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if let Some(path) = reject {
            let why = format!("fabric-sim fault: {path} rejected: value not accepted");
            self.record(seq, received, &ops, SetOutcome::Rejected, Some(why.clone()), None);
            return Err(Status::invalid_argument(why));
        }
        if let Some(e) = problem {
            self.record(seq, received, &ops, SetOutcome::Rejected, Some(e.clone()), None);
            return Err(Status::invalid_argument(e));
        }
        let record = |r: &Result<_, _>, applied| {
            if r.is_ok() {
                self.record(seq, received, &ops, SetOutcome::Accepted, None, Some(applied));
            }
        };
        let (result, applied) = self.sh.mutate_then(self.idx, |st| st.model.apply_set(&ops), record);
        if let Err(e) = result {
            self.record(seq, received, &ops, SetOutcome::Rejected, Some(e.message.clone()), None);
            return Err(Status::new(e.code, e.message));
        }
        use pb::update_result::Operation as Op;
        let response = req
            .delete
            .iter()
            .map(|p| update_result(Some(p), Op::Delete))
            .chain(req.replace.iter().map(|u| update_result(u.path.as_ref(), Op::Replace)))
            .chain(req.update.iter().map(|u| update_result(u.path.as_ref(), Op::Update)))
            .collect();
        Ok(Response::new(pb::SetResponse { prefix: req.prefix, response, message: None, timestamp: applied.unix_ns }))
    }

    type SubscribeStream = ReceiverStream<Result<pb::SubscribeResponse, Status>>;

    async fn subscribe(
        &self,
        req: Request<Streaming<pb::SubscribeRequest>>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        self.check_auth(&req)?;
        self.check_available()?;
        let (tx, rx) = mpsc::channel(64);
        let sh = self.sh.clone();
        let idx = self.idx;
        let reqs = req.into_inner();
        tokio::spawn(async move {
            if let Err(status) = run_stream(&sh, idx, reqs, &tx).await {
                let _ = tx.send(Err(status)).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

// ---------------------------------------------------------------------------------
// Subscribe

struct Sub {
    pattern: SPath,
    /// Stream changes as they happen (ON_CHANGE, TARGET_DEFINED).
    on_change: bool,
    /// SAMPLE interval, or ON_CHANGE heartbeat.
    period: Option<Duration>,
    suppress_redundant: bool,
    /// What a suppress_redundant SAMPLE last sent (empty otherwise).
    last_sent: BTreeMap<SPath, Val>,
    due: tokio::time::Instant,
}

type Out = mpsc::Sender<Result<pb::SubscribeResponse, Status>>;

/// The client went away: nothing more to do, nothing to report.
struct Gone;

async fn send(out: &Out, r: SubResp) -> Result<(), Gone> {
    out.send(Ok(pb::SubscribeResponse { response: Some(r) })).await.map_err(|_| Gone)
}

async fn send_all(out: &Out, ns: Vec<pb::Notification>) -> Result<(), Gone> {
    for n in ns {
        send(out, SubResp::Update(n)).await?;
    }
    Ok(())
}

fn invalid(msg: &str) -> Status {
    Status::invalid_argument(msg.to_string())
}

async fn run_stream(
    sh: &Arc<Shared>,
    idx: usize,
    mut reqs: Streaming<pb::SubscribeRequest>,
    out: &Out,
) -> Result<(), Status> {
    let first = reqs.message().await?.ok_or_else(|| invalid("the request stream closed before a SubscriptionList"))?;
    let Some(SubReq::Subscribe(list)) = first.request else {
        return Err(invalid("the first SubscribeRequest must carry a SubscriptionList"));
    };
    let slot = &sh.leaves[idx];
    let profile = slot.profile;
    let enc = check_encoding(list.encoding, slot.proto_only.load(Ordering::Relaxed))?;
    let mode = list.mode();
    if list.subscription.is_empty() {
        return Err(invalid("the SubscriptionList has no subscriptions"));
    }
    let now = tokio::time::Instant::now();
    let mut subs = Vec::new();
    for s in &list.subscription {
        let pattern =
            SPath::from_pb_as(profile, list.prefix.as_ref(), s.path.as_ref()).map_err(Status::invalid_argument)?;
        profile.check_schema(&pattern).map_err(Status::invalid_argument)?;
        let sample = mode == ListMode::Stream && s.mode() == pb::SubscriptionMode::Sample;
        let period = if sample {
            Some(Duration::from_nanos(if s.sample_interval == 0 {
                10_000_000_000
            } else {
                s.sample_interval.max(1_000_000)
            }))
        } else if mode == ListMode::Stream && s.heartbeat_interval > 0 {
            Some(Duration::from_nanos(s.heartbeat_interval.max(1_000_000)))
        } else {
            None
        };
        subs.push(Sub {
            pattern,
            on_change: mode == ListMode::Stream && !sample,
            period,
            suppress_redundant: sample && s.suppress_redundant,
            last_sent: BTreeMap::new(),
            due: now + period.unwrap_or_default(),
        });
    }
    let target = list.prefix.as_ref().map(|p| p.target.clone()).unwrap_or_default();

    // Register and snapshot under one lock: no change falls between the dump and the stream.
    let (snapshot, mut events) = {
        let mut st = lock(&slot.state);
        if st.unavailable_until.is_some_and(|t| Instant::now() < t) {
            return Err(Status::unavailable("leaf is restarting"));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        st.subscribers.push(tx);
        (select(&st.tree, &subs), rx)
    };
    let module_names = || (profile, slot.module_names.load(Ordering::Relaxed));
    let ts = || sh.clock.now().unix_ns;
    let mut stall = slot.stall.subscribe();
    let mut frozen = slot.frozen.subscribe();
    // `Gone` (the client left) ends the stream with nothing more to report.
    let _: Result<(), Gone> = async {
        thawed(&mut frozen, out).await?;
        if !list.updates_only {
            for s in subs.iter_mut().filter(|s| s.suppress_redundant) {
                s.last_sent.extend(snapshot.iter().filter(|(p, _)| s.pattern.matches(p)).map(|(p, v)| (p.clone(), v.clone())));
            }
            send_all(out, notifications(ts(), &snapshot, &[], enc, module_names(), &target)).await?;
        }
        // Thousands of streams stay open for hours: keep nothing per stream that is not needed.
        drop(snapshot);
        let mut synced = false;
        let mut reqs_open = true;
        loop {
            // A wedged process: what happens meanwhile waits in `events`, due samples and
            // heartbeats are skipped.
            if *frozen.borrow() {
                thawed(&mut frozen, out).await?;
                let resume = tokio::time::Instant::now();
                for s in subs.iter_mut() {
                    s.due = resume + s.period.unwrap_or_default();
                }
            }
            if !synced && !*stall.borrow_and_update() {
                send(out, SubResp::SyncResponse(true)).await?;
                synced = true;
                if mode == ListMode::Once {
                    return Ok(());
                }
            }
            let next_due = subs.iter().filter(|s| s.period.is_some()).map(|s| s.due).min();
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(StreamEvent::Changes(b)) if mode == ListMode::Stream => {
                        let ups: Vec<(SPath, Val)> = b.updates.iter().filter(|(p, _)| subs.iter().any(|s| s.on_change && s.pattern.matches(p))).cloned().collect();
                        let mut dels: Vec<SPath> = b.deletes.iter().filter(|(p, _)| subs.iter().any(|s| s.pattern.matches(p))).map(|(_, a)| a.clone()).collect();
                        dels.dedup();
                        send_all(out, notifications(b.unix_ns, &ups, &dels, enc, module_names(), &target)).await?;
                    }
                    Some(StreamEvent::Changes(_)) => {}
                    Some(StreamEvent::Raw(n)) => send(out, SubResp::Update((*n).clone())).await?,
                    Some(StreamEvent::Kill(status)) => {
                        let _ = out.send(Err(status)).await;
                        return Ok(());
                    }
                    None => return Ok(()),
                },
                Ok(()) = stall.changed(), if !synced => {}
                Ok(()) = frozen.changed() => {}
                r = reqs.message(), if reqs_open => match r {
                    Ok(Some(pb::SubscribeRequest { request: Some(SubReq::Poll(_)) })) if mode == ListMode::Poll => {
                        let tree = lock(&slot.state).tree.clone();
                        let snap = select(&tree, &subs);
                        send_all(out, notifications(ts(), &snap, &[], enc, module_names(), &target)).await?;
                        send(out, SubResp::SyncResponse(true)).await?;
                    }
                    Ok(Some(pb::SubscribeRequest { request: Some(SubReq::Poll(_)) })) => {
                        let _ = out.send(Err(invalid("Poll is only valid on a POLL subscription"))).await;
                        return Ok(());
                    }
                    Ok(Some(pb::SubscribeRequest { request: Some(SubReq::Subscribe(_)) })) => {
                        let _ = out.send(Err(invalid("a Subscribe stream carries exactly one SubscriptionList"))).await;
                        return Ok(());
                    }
                    Ok(Some(_)) => {}
                    // A half-closed request stream ends a POLL subscription; STREAM goes on.
                    Ok(None) if mode == ListMode::Poll => return Ok(()),
                    Ok(None) => reqs_open = false,
                    Err(_) => return Ok(()),
                },
                _ = tokio::time::sleep_until(next_due.unwrap_or(now)), if next_due.is_some() => {
                    let due_now = tokio::time::Instant::now();
                    let tree = lock(&slot.state).tree.clone();
                    let mut ups = BTreeMap::new();
                    // Only what is due: a subscription without a period (ON_CHANGE, no
                    // heartbeat) is never re-sent, however often its neighbours are.
                    for s in subs.iter_mut().filter(|s| s.period.is_some() && s.due <= due_now) {
                        s.due = due_now + s.period.unwrap_or_default();
                        for (p, v) in tree.iter().filter(|(p, _)| s.pattern.matches(p)) {
                            if !s.suppress_redundant {
                                ups.insert(p.clone(), v.clone());
                            } else if s.last_sent.get(p) != Some(v) {
                                ups.insert(p.clone(), v.clone());
                                s.last_sent.insert(p.clone(), v.clone());
                            }
                        }
                    }
                    let ups: Vec<(SPath, Val)> = ups.into_iter().collect();
                    send_all(out, notifications(ts(), &ups, &[], enc, module_names(), &target)).await?;
                }
                _ = out.closed() => return Ok(()),
            }
        }
    }
    .await;
    Ok(())
}

/// Returns once the leaf is not frozen (at once if it is not), or `Gone` if the client left.
async fn thawed(frozen: &mut tokio::sync::watch::Receiver<bool>, out: &Out) -> Result<(), Gone> {
    loop {
        if !*frozen.borrow_and_update() {
            return Ok(());
        }
        tokio::select! {
            r = frozen.changed() => if r.is_err() { return Err(Gone) },
            _ = out.closed() => return Err(Gone),
        }
    }
}

/// The leaves any subscription selects, each once.
fn select(tree: &crate::leaf::Tree, subs: &[Sub]) -> Vec<(SPath, Val)> {
    tree.iter()
        .filter(|(p, _)| subs.iter().any(|s| s.pattern.matches(p)))
        .map(|(p, v)| (p.clone(), v.clone()))
        .collect()
}
