//! The leaf's gNMI service: Capabilities, Get, Set (admin-state) and Subscribe.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gnmi_proto as pb;
use opergroupd::gnmi::path;
use pb::subscribe_request::Request as SubReq;
use pb::subscribe_response::Response as SubResp;
use pb::subscription_list::Mode as ListMode;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::names;
use crate::netlink;
use crate::store::{Store, under};

pub struct Leaf {
    pub store: Arc<Store>,
    /// `None`: no authentication asked.
    pub credentials: Option<(String, String)>,
}

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

fn check_encoding(raw: i32) -> Result<(), Status> {
    if raw == pb::Encoding::JsonIetf as i32 {
        Ok(())
    } else {
        Err(Status::unimplemented(format!("unsupported encoding {raw}: this target offers JSON_IETF only")))
    }
}

/// One notification per value, the whole path in the update (no prefix): plain and legal.
fn notification(p: &str, value: Option<&Value>) -> pb::Notification {
    let wire = path::parse(p).unwrap_or_default();
    let mut n = pb::Notification { timestamp: now_ns(), ..Default::default() };
    match value {
        Some(v) => n.update.push(pb::Update {
            path: Some(wire),
            val: Some(pb::TypedValue { value: Some(pb::typed_value::Value::JsonIetfVal(v.to_string().into_bytes())) }),
            ..Default::default()
        }),
        None => n.delete.push(wire),
    }
    n
}

fn request_paths(prefix: Option<&pb::Path>, paths: &[pb::Path]) -> Result<Vec<String>, Status> {
    if paths.is_empty() {
        return Ok(vec![path::join_to_string(prefix, None).map_err(|e| Status::invalid_argument(e.to_string()))?]);
    }
    paths
        .iter()
        .map(|p| path::join_to_string(prefix, Some(p)).map_err(|e| Status::invalid_argument(e.to_string())))
        .collect()
}

/// The Linux link and the wanted admin state of one Set update, or why it is refused.
fn admin_change(p: &str, tv: Option<&pb::TypedValue>) -> Result<(String, bool), Status> {
    let bad = |why: String| Status::invalid_argument(format!("{p}: {why}"));
    let srl = p
        .strip_prefix("/interface[name=")
        .and_then(|r| r.strip_suffix("]/admin-state"))
        .ok_or_else(|| bad("only /interface[name=X]/admin-state can be set on this target".into()))?;
    let linux = names::to_linux(srl).ok_or_else(|| bad(format!("{srl} is not an ethernet-S/P interface")))?;
    use pb::typed_value::Value as V;
    let word = match tv.and_then(|t| t.value.as_ref()) {
        Some(V::JsonIetfVal(b)) | Some(V::JsonVal(b)) => match serde_json::from_slice::<Value>(b) {
            Ok(Value::String(s)) => s,
            _ => return Err(bad("the value must be the JSON string \"enable\" or \"disable\"".into())),
        },
        Some(V::StringVal(s)) => s.clone(),
        _ => return Err(bad("the value must be \"enable\" or \"disable\" (JSON_IETF or string_val)".into())),
    };
    let up = match word.rsplit(':').next().unwrap_or_default() {
        "enable" => true,
        "disable" => false,
        other => return Err(bad(format!("unknown admin-state {other:?}"))),
    };
    Ok((linux, up))
}

#[tonic::async_trait]
impl pb::g_nmi_server::GNmi for Leaf {
    async fn capabilities(
        &self,
        req: Request<pb::CapabilityRequest>,
    ) -> Result<Response<pb::CapabilityResponse>, Status> {
        self.check_auth(&req)?;
        let model =
            |name: &str| pb::ModelData { name: name.into(), organization: "Nokia".into(), version: String::new() };
        Ok(Response::new(pb::CapabilityResponse {
            supported_models: vec![
                model("srl_nokia-interfaces"),
                model("srl_nokia-network-instance"),
                model("srl_nokia-bgp"),
            ],
            supported_encodings: vec![pb::Encoding::JsonIetf as i32],
            g_nmi_version: "0.10.0".into(),
        }))
    }

    async fn get(&self, req: Request<pb::GetRequest>) -> Result<Response<pb::GetResponse>, Status> {
        self.check_auth(&req)?;
        let req = req.into_inner();
        check_encoding(req.encoding)?;
        let mut notification = Vec::new();
        for p in request_paths(req.prefix.as_ref(), &req.path)? {
            let found = self.store.get(|leaf| under(&p, leaf));
            if found.is_empty() {
                return Err(Status::not_found(format!("Path not found: {p}")));
            }
            notification.extend(found.iter().map(|(lp, v)| notification_of(lp, v)));
        }
        Ok(Response::new(pb::GetResponse { notification, error: None }))
    }

    async fn set(&self, req: Request<pb::SetRequest>) -> Result<Response<pb::SetResponse>, Status> {
        self.check_auth(&req)?;
        let req = req.into_inner();
        if !req.delete.is_empty() || !req.union_replace.is_empty() {
            return Err(Status::invalid_argument("this target accepts only update/replace of admin-state"));
        }
        let prefix = req.prefix.as_ref();
        // Validate everything before touching a link: never a half-applied Set for bad input.
        let mut changes = Vec::new();
        for u in req.replace.iter().chain(&req.update) {
            let p =
                path::join_to_string(prefix, u.path.as_ref()).map_err(|e| Status::invalid_argument(e.to_string()))?;
            let (linux, up) = admin_change(&p, u.val.as_ref())?;
            if self.store.get(|leaf| leaf == p).is_empty() {
                return Err(Status::not_found(format!("{p}: no such interface on this leaf")));
            }
            changes.push((linux, up));
        }
        for (linux, up) in &changes {
            let (linux, up) = (linux.clone(), *up);
            let res = tokio::task::spawn_blocking(move || netlink::set_admin(&linux, up))
                .await
                .map_err(|e| Status::internal(e.to_string()))?;
            res.map_err(|e| Status::internal(format!("netlink: {e}")))?;
        }
        tracing::info!(?changes, "Set applied");
        use pb::update_result::Operation as Op;
        let result =
            |p: Option<&pb::Path>, op: Op| pb::UpdateResult { path: p.cloned(), op: op as i32, ..Default::default() };
        let response = req
            .replace
            .iter()
            .map(|u| result(u.path.as_ref(), Op::Replace))
            .chain(req.update.iter().map(|u| result(u.path.as_ref(), Op::Update)))
            .collect();
        Ok(Response::new(pb::SetResponse { prefix: req.prefix, response, message: None, timestamp: now_ns() }))
    }

    type SubscribeStream = ReceiverStream<Result<pb::SubscribeResponse, Status>>;

    async fn subscribe(
        &self,
        req: Request<Streaming<pb::SubscribeRequest>>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        self.check_auth(&req)?;
        let (tx, rx) = mpsc::channel(256);
        let store = self.store.clone();
        let reqs = req.into_inner();
        tokio::spawn(async move {
            if let Err(status) = stream(&store, reqs, &tx).await {
                let _ = tx.send(Err(status)).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

fn notification_of(p: &str, v: &Value) -> pb::Notification {
    notification(p, Some(v))
}

impl Leaf {
    fn check_auth<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let Some((user, password)) = &self.credentials else { return Ok(()) };
        let md = req.metadata();
        let get = |k: &str| md.get(k).and_then(|v| v.to_str().ok());
        if get("username") == Some(user) && get("password") == Some(password) {
            Ok(())
        } else {
            Err(Status::unauthenticated("authentication failed: wrong or missing username/password metadata"))
        }
    }
}

type Out = mpsc::Sender<Result<pb::SubscribeResponse, Status>>;

async fn send(out: &Out, r: SubResp) -> Result<(), Status> {
    // The client went away: end quietly.
    out.send(Ok(pb::SubscribeResponse { response: Some(r) })).await.map_err(|_| Status::cancelled("client gone"))
}

async fn stream(store: &Store, mut reqs: Streaming<pb::SubscribeRequest>, out: &Out) -> Result<(), Status> {
    let invalid = |m: &str| Status::invalid_argument(m.to_string());
    let first = reqs.message().await?.ok_or_else(|| invalid("the request stream closed before a SubscriptionList"))?;
    let Some(SubReq::Subscribe(list)) = first.request else {
        return Err(invalid("the first SubscribeRequest must carry a SubscriptionList"));
    };
    check_encoding(list.encoding)?;
    let mode = list.mode();
    if mode == ListMode::Poll {
        return Err(Status::unimplemented("POLL subscriptions are not supported by this target"));
    }
    if list.subscription.is_empty() {
        return Err(invalid("the SubscriptionList has no subscriptions"));
    }
    let mut patterns = Vec::new();
    let mut heartbeats = Vec::new();
    for s in &list.subscription {
        let p = path::join_to_string(list.prefix.as_ref(), s.path.as_ref()).map_err(|e| invalid(&e.to_string()))?;
        if s.mode() == pb::SubscriptionMode::Sample {
            return Err(Status::unimplemented("SAMPLE subscriptions are not supported by this target; use ON_CHANGE"));
        }
        if s.heartbeat_interval > 0 && mode == ListMode::Stream {
            heartbeats.push((p.clone(), Duration::from_nanos(s.heartbeat_interval.max(100_000_000))));
        }
        patterns.push(p);
    }
    let wanted = |leaf: &str| patterns.iter().any(|p| under(p, leaf));
    let (snap, mut feed) = store.snapshot_and_follow(wanted);
    if !list.updates_only {
        for (p, v) in &snap {
            send(out, SubResp::Update(notification_of(p, v))).await?;
        }
    }
    send(out, SubResp::SyncResponse(true)).await?;
    if mode == ListMode::Once {
        return Ok(());
    }
    // One timer per heartbeat subscription: re-send its current values, like SR Linux.
    let (beat_tx, mut beat_rx) = mpsc::channel::<String>(16);
    for (p, every) in heartbeats {
        let tx = beat_tx.clone();
        tokio::spawn(async move {
            let mut t = tokio::time::interval(every);
            t.tick().await;
            loop {
                t.tick().await;
                if tx.send(p.clone()).await.is_err() {
                    return;
                }
            }
        });
    }
    drop(beat_tx);
    loop {
        tokio::select! {
            batch = feed.recv() => match batch {
                Ok(batch) => {
                    for (p, v) in batch.iter().filter(|(p, _)| wanted(p)) {
                        send(out, SubResp::Update(notification(p, v.as_ref()))).await?;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    return Err(Status::aborted(format!("subscriber fell {n} batches behind; resubscribe")));
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            Some(p) = beat_rx.recv() => {
                for (lp, v) in store.get(|leaf| under(&p, leaf)) {
                    send(out, SubResp::Update(notification_of(&lp, &v))).await?;
                }
            }
            msg = reqs.message() => match msg {
                Ok(Some(_)) => {}
                // Half-closed or gone: a STREAM ends with its client.
                Ok(None) | Err(_) => return Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(s: &str) -> Option<pb::TypedValue> {
        Some(pb::TypedValue { value: Some(pb::typed_value::Value::JsonIetfVal(s.as_bytes().to_vec())) })
    }

    #[test]
    fn set_maps_admin_state_to_the_linux_link() {
        let p = "/interface[name=ethernet-1/1]/admin-state";
        assert_eq!(admin_change(p, json("\"disable\"").as_ref()).unwrap(), ("e1-1".to_string(), false));
        assert_eq!(admin_change(p, json("\"srl_nokia-common:enable\"").as_ref()).unwrap(), ("e1-1".to_string(), true));
    }

    #[test]
    fn set_refuses_other_paths_and_values_with_the_path_named() {
        let e = admin_change("/interface[name=ethernet-1/1]/description", json("\"x\"").as_ref()).unwrap_err();
        assert!(e.message().contains("description"), "{}", e.message());
        let e = admin_change("/interface[name=ethernet-1/1]/admin-state", json("true").as_ref()).unwrap_err();
        assert!(e.message().contains("ethernet-1/1"), "{}", e.message());
        assert!(admin_change("/interface[name=mgmt0]/admin-state", json("\"disable\"").as_ref()).is_err());
    }
}
