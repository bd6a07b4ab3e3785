//! Test helpers: an in-process fabric, a gNMI client built from gnmi_proto, and readers
//! that wait on conditions with deadlines.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use fabric_sim::{Fabric, SimConfig, SimTls, Timings};
use gnmi_proto as pb;
use pb::g_nmi_client::GNmiClient;
use pb::subscribe_request::Request as SubReq;
use pb::subscribe_response::Response as SubResp;
use pb::subscription_list::Mode as ListMode;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status, Streaming};

pub const WAIT: Duration = Duration::from_secs(5);

pub async fn fabric() -> Fabric {
    fabric_with(SimTls::Insecure).await
}

pub async fn fabric_with(tls: SimTls) -> Fabric {
    fabric_sim::start(SimConfig {
        leaves: 2,
        base_port: 0,
        control: Some("127.0.0.1:0".parse().unwrap()),
        tls,
        timings: Timings::fast(),
        ..Default::default()
    })
    .await
    .expect("fabric starts")
}

#[derive(Clone)]
pub struct Auth {
    user: String,
    pass: String,
}

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, mut r: Request<()>) -> Result<Request<()>, Status> {
        r.metadata_mut().insert("username", self.user.parse().map_err(|_| Status::internal("bad user"))?);
        r.metadata_mut().insert("password", self.pass.parse().map_err(|_| Status::internal("bad password"))?);
        Ok(r)
    }
}

pub type Client = GNmiClient<InterceptedService<Channel, Auth>>;

pub async fn client(addr: SocketAddr) -> Client {
    client_as(addr, "admin", "NokiaSrl1!").await
}

pub async fn client_as(addr: SocketAddr, user: &str, pass: &str) -> Client {
    let ch = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.expect("connects");
    GNmiClient::with_interceptor(ch, Auth { user: user.into(), pass: pass.into() })
}

pub async fn leaf1(f: &Fabric) -> Client {
    client(f.leaf_addr("leaf1").unwrap()).await
}

/// `/interface[name=ethernet-1/1]/admin-state` -> a gNMI path (`/` inside brackets kept).
pub fn path(s: &str) -> pb::Path {
    let mut elems = Vec::new();
    let (mut depth, mut cur) = (0, String::new());
    for c in s.trim_start_matches('/').chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ => {}
        }
        if c == '/' && depth == 0 {
            elems.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        elems.push(cur);
    }
    let elem = elems
        .iter()
        .map(|e| {
            let (name, rest) = e.split_once('[').unwrap_or((e, ""));
            let key = rest
                .split('[')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.trim_end_matches(']').split_once('=').unwrap();
                    (k.to_string(), v.to_string())
                })
                .collect();
            pb::PathElem { name: name.to_string(), key }
        })
        .collect();
    pb::Path { elem, ..Default::default() }
}

pub fn json(v: serde_json::Value) -> pb::TypedValue {
    pb::TypedValue { value: Some(pb::typed_value::Value::JsonIetfVal(v.to_string().into_bytes())) }
}

pub fn update(p: &str, v: serde_json::Value) -> pb::Update {
    pb::Update { path: Some(path(p)), val: Some(json(v)), ..Default::default() }
}

pub fn list(paths: &[&str], mode: ListMode, sub_mode: pb::SubscriptionMode) -> pb::SubscriptionList {
    pb::SubscriptionList {
        subscription: paths
            .iter()
            .map(|p| pb::Subscription { path: Some(path(p)), mode: sub_mode as i32, ..Default::default() })
            .collect(),
        mode: mode as i32,
        encoding: pb::Encoding::JsonIetf as i32,
        ..Default::default()
    }
}

pub fn stream_list(paths: &[&str]) -> pb::SubscriptionList {
    list(paths, ListMode::Stream, pb::SubscriptionMode::OnChange)
}

/// A subscription; the request side stays open while this lives.
pub struct Sub {
    pub tx: mpsc::Sender<pb::SubscribeRequest>,
    pub rx: Streaming<pb::SubscribeResponse>,
}

pub async fn subscribe(c: &mut Client, l: pb::SubscriptionList) -> Result<Sub, Status> {
    let (tx, rx) = mpsc::channel(4);
    tx.send(pb::SubscribeRequest { request: Some(SubReq::Subscribe(l)) }).await.unwrap();
    let resp = c.subscribe(ReceiverStream::new(rx)).await?;
    Ok(Sub { tx, rx: resp.into_inner() })
}

#[derive(Clone, Debug, PartialEq)]
pub enum Ev {
    /// Canonical path (module prefixes stripped), value, notification timestamp.
    Update {
        path: String,
        raw: String,
        value: serde_json::Value,
        ts: i64,
    },
    Delete {
        path: String,
        raw: String,
    },
    Sync,
}

fn elems_str(p: &pb::Path, strip: bool) -> String {
    let mut s = String::new();
    for e in &p.elem {
        let name = if strip { e.name.rsplit(':').next().unwrap() } else { &e.name };
        s.push('/');
        s.push_str(name);
        let mut keys: Vec<_> = e.key.iter().collect();
        keys.sort();
        for (k, v) in keys {
            let v = if strip { v.rsplit(':').next().unwrap() } else { v };
            s.push_str(&format!("[{k}={v}]"));
        }
    }
    s
}

pub fn decode(v: Option<&pb::TypedValue>) -> serde_json::Value {
    use pb::typed_value::Value as Tv;
    match v.and_then(|v| v.value.as_ref()) {
        Some(Tv::JsonIetfVal(b)) => serde_json::from_slice(b)
            .unwrap_or_else(|_| serde_json::Value::String(format!("MALFORMED:{}", String::from_utf8_lossy(b)))),
        Some(Tv::StringVal(s)) => serde_json::json!({"string": s}),
        Some(Tv::AsciiVal(s)) => serde_json::json!({"ascii": s}),
        Some(Tv::UintVal(u)) => serde_json::json!({"uint": u}),
        Some(Tv::BoolVal(b)) => serde_json::json!({"bool": b}),
        other => panic!("unexpected value {other:?}"),
    }
}

pub fn notification_events(n: &pb::Notification) -> Vec<Ev> {
    let pre = n.prefix.clone().unwrap_or_default();
    let full = |p: Option<&pb::Path>, strip: bool| {
        format!("{}{}", elems_str(&pre, strip), p.map(|p| elems_str(p, strip)).unwrap_or_default())
    };
    let mut out: Vec<Ev> = n
        .update
        .iter()
        .map(|u| Ev::Update {
            path: full(u.path.as_ref(), true),
            raw: full(u.path.as_ref(), false),
            value: decode(u.val.as_ref()),
            ts: n.timestamp,
        })
        .collect();
    out.extend(n.delete.iter().map(|d| Ev::Delete { path: full(Some(d), true), raw: full(Some(d), false) }));
    out
}

fn events(r: pb::SubscribeResponse) -> Vec<Ev> {
    match r.response {
        Some(SubResp::Update(n)) => notification_events(&n),
        Some(SubResp::SyncResponse(_)) => vec![Ev::Sync],
        _ => Vec::new(),
    }
}

impl Sub {
    /// Reads until `pred` matches an event; returns everything read, to the end of the
    /// notification that matched. Panics at the deadline.
    pub async fn until(&mut self, what: &str, mut pred: impl FnMut(&Ev) -> bool) -> Vec<Ev> {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            let msg = tokio::time::timeout_at(deadline, self.rx.message()).await;
            match msg {
                Ok(Ok(Some(r))) => {
                    let evs = events(r);
                    // Every event goes through `pred` (counting predicates need them all).
                    let hit = evs.iter().filter(|e| pred(e)).count() > 0;
                    seen.extend(evs);
                    if hit {
                        return seen;
                    }
                }
                Ok(Ok(None)) => panic!("stream ended while waiting for {what}; saw {seen:?}"),
                Ok(Err(s)) => panic!("stream failed ({s}) while waiting for {what}; saw {seen:?}"),
                Err(_) => panic!("timed out waiting for {what}; saw {seen:?}"),
            }
        }
    }

    pub async fn until_sync(&mut self) -> Vec<Ev> {
        self.until("sync_response", |e| *e == Ev::Sync).await
    }

    pub async fn until_value(&mut self, p: &str, v: serde_json::Value) -> Vec<Ev> {
        self.until(&format!("{p} = {v}"), |e| matches!(e, Ev::Update { path, value, .. } if path == p && *value == v))
            .await
    }

    /// The stream's end: Ok(()) for a clean end, the status otherwise. Panics at the deadline.
    pub async fn end(&mut self) -> Result<(), Status> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.message()).await {
                Ok(Ok(Some(_))) => continue,
                Ok(Ok(None)) => return Ok(()),
                Ok(Err(s)) => return Err(s),
                Err(_) => panic!("stream did not end"),
            }
        }
    }

    /// Asserts nothing matching `pred` arrives within `window` (for "must not happen" checks).
    pub async fn none_within(&mut self, window: Duration, mut pred: impl FnMut(&Ev) -> bool) {
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(r) = tokio::time::timeout_at(deadline, self.rx.message()).await {
            let r = r.expect("stream healthy").expect("stream open");
            for e in events(r) {
                assert!(!pred(&e), "unexpected {e:?}");
            }
        }
    }
}

pub fn value_at(evs: &[Ev], p: &str) -> Option<serde_json::Value> {
    evs.iter().rev().find_map(|e| match e {
        Ev::Update { path, value, .. } if path == p => Some(value.clone()),
        _ => None,
    })
}

pub async fn get(c: &mut Client, p: &str, enc: pb::Encoding) -> Result<Vec<Ev>, Status> {
    let r =
        c.get(pb::GetRequest { path: vec![path(p)], encoding: enc as i32, ..Default::default() }).await?.into_inner();
    Ok(r.notification.iter().flat_map(notification_events).collect())
}

pub async fn set_updates(c: &mut Client, ups: Vec<pb::Update>) -> Result<pb::SetResponse, Status> {
    c.set(pb::SetRequest { update: ups, ..Default::default() }).await.map(|r| r.into_inner())
}

/// A minimal HTTP/1.1 client for the control API.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    http_raw(addr, method, target, "application/json", &body).await
}

/// The same with any Content-Type and body text (what `curl -d` sends, or garbage).
pub async fn http_raw(
    addr: SocketAddr,
    method: &str,
    target: &str,
    content_type: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = String::new();
    tokio::time::timeout(WAIT, s.read_to_string(&mut resp)).await.expect("HTTP answer in time").unwrap();
    let status = resp.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("status line");
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_string() };
    (status, serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)))
}

fn dechunk(mut b: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = b.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        b = &rest[n + 2..];
    }
    out
}
