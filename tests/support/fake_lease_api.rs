//! A fake of the slice of the Kubernetes API server that Lease-based leader election uses.
//!
//! NOT a real API server: no authentication, no admission, no watch, no validation beyond
//! what is written here, one resource type. It implements, for
//! `/apis/coordination.k8s.io/v1/namespaces/{ns}/leases[/{name}]`:
//! * GET (404 with a `Status` body when absent), POST (409 AlreadyExists), PUT (409 Conflict
//!   when `metadata.resourceVersion` is stale);
//! * PATCH as merge / strategic-merge (the same thing for a Lease: no lists) and as
//!   server-side apply with field ownership per (field manager, operation): an apply that
//!   changes a `spec` field another manager owns is refused with 409 Conflict unless
//!   `force=true`; fields an applier stops sending are dropped if nobody else owns them;
//! * `resourceVersion` increments on every write that changes the object.
//!
//! Each client gets its own listener on 127.0.0.1 (port 0), so one client can be cut off
//! ([`Reach`]) while the others still talk to the same store. Every accepted write is kept
//! in a history so tests can see the Lease as the server saw it.

#![allow(dead_code)] // shared by several test crates, each using a part
#![allow(clippy::result_large_err)] // early-return HTTP responses; size is irrelevant here

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use k8s_openapi::api::coordination::v1::Lease;
use serde_json::{Map, Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How one client's listener treats requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    Up,
    /// Answer 500 at once (an API server failing). Not 503: kube retries 503 for minutes
    /// by itself, which would make a test slow rather than show anything more.
    Refuse,
    /// Hold every request without answering until the reach changes (a partition); a held
    /// request is then served, as a retransmission after the network heals would be.
    Blackhole,
}

/// One accepted write, as the server saw it.
#[derive(Clone, Debug)]
pub struct Write {
    pub client: String,
    /// When the server accepted it (wall clock).
    pub at: SystemTime,
    pub lease: Lease,
}

pub struct FakeLeaseApi {
    shared: Arc<Shared>,
    servers: Mutex<Vec<JoinHandle<()>>>,
}

struct Shared {
    store: Mutex<Store>,
    reach: Mutex<HashMap<String, watch::Sender<Reach>>>,
    /// Requests answered with [`Reach::Refuse`], per client.
    refused: Mutex<HashMap<String, usize>>,
}

#[derive(Default)]
struct Store {
    last_rv: u64,
    leases: BTreeMap<(String, String), Stored>,
    history: Vec<Write>,
}

struct Stored {
    object: Value,
    /// `spec` field name -> the managers owning it.
    owners: BTreeMap<String, BTreeSet<Manager>>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Manager {
    name: String,
    apply: bool,
}

#[derive(Clone)]
struct Ctx {
    shared: Arc<Shared>,
    client: String,
    reach: watch::Receiver<Reach>,
}

impl FakeLeaseApi {
    pub fn new() -> Self {
        FakeLeaseApi {
            shared: Arc::new(Shared { store: Mutex::default(), reach: Mutex::default(), refused: Mutex::default() }),
            servers: Mutex::default(),
        }
    }

    /// A kube client with its own listener (plain http on 127.0.0.1), named for [`Self::set_reach`].
    pub async fn client(&self, name: &str) -> kube::Client {
        let addr = self.listen(name).await;
        let url: Uri = format!("http://{addr}").parse().expect("uri");
        kube::Client::try_from(kube::Config::new(url)).expect("kube client for the fake")
    }

    /// A listener of its own for the client `name` (for another process: point its
    /// kubeconfig's `server:` at `http://{addr}`), named for [`Self::set_reach`].
    pub async fn listen(&self, name: &str) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let (reach_tx, reach) = watch::channel(Reach::Up);
        self.shared.reach.lock().unwrap().insert(name.to_owned(), reach_tx);
        let ctx = Ctx { shared: self.shared.clone(), client: name.to_owned(), reach };
        let base = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases";
        let app = Router::new()
            .route(base, post(create))
            .route(&format!("{base}/{{name}}"), get(read).put(replace).patch(patch))
            .with_state(ctx);
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake lease api serve");
        });
        self.servers.lock().unwrap().push(server);
        addr
    }

    pub fn set_reach(&self, client: &str, reach: Reach) {
        let map = self.shared.reach.lock().unwrap();
        map.get(client).expect("no such client").send_replace(reach);
    }

    pub fn refused(&self, client: &str) -> usize {
        self.shared.refused.lock().unwrap().get(client).copied().unwrap_or(0)
    }

    pub fn lease(&self, ns: &str, name: &str) -> Option<Lease> {
        let store = self.shared.store.lock().unwrap();
        let stored = store.leases.get(&(ns.to_owned(), name.to_owned()))?;
        Some(serde_json::from_value(stored.object.clone()).expect("stored lease parses"))
    }

    pub fn history(&self) -> Vec<Write> {
        self.shared.store.lock().unwrap().history.clone()
    }
}

impl Drop for FakeLeaseApi {
    fn drop(&mut self) {
        for server in self.servers.lock().unwrap().drain(..) {
            server.abort();
        }
    }
}

/// `renewTime + leaseDurationSeconds` of a Lease: when other replicas may take it over.
pub fn expiry(lease: &Lease) -> Option<SystemTime> {
    let spec = lease.spec.as_ref()?;
    let renewed = spec.renew_time.as_ref()?.0.as_nanosecond();
    let seconds = spec.lease_duration_seconds?;
    Some(
        SystemTime::UNIX_EPOCH
            + Duration::from_nanos(u64::try_from(renewed).ok()?)
            + Duration::from_secs(u64::try_from(seconds).ok()?),
    )
}

pub fn holder(lease: &Lease) -> Option<&str> {
    lease.spec.as_ref()?.holder_identity.as_deref()
}

fn status(code: StatusCode, reason: &str, message: impl Into<String>) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message.into(), "reason": reason, "code": code.as_u16(),
    });
    (code, axum::Json(body)).into_response()
}

async fn gate(ctx: &Ctx) -> Result<(), Response> {
    let mut reach = ctx.reach.clone();
    loop {
        let now = *reach.borrow_and_update();
        match now {
            Reach::Up => return Ok(()),
            Reach::Refuse => {
                *ctx.shared.refused.lock().unwrap().entry(ctx.client.clone()).or_default() += 1;
                return Err(status(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "refused by the test"));
            }
            Reach::Blackhole => {
                if reach.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

fn not_found(name: &str) -> Response {
    status(StatusCode::NOT_FOUND, "NotFound", format!("leases.coordination.k8s.io \"{name}\" not found"))
}

fn parse(body: &[u8]) -> Result<Value, Response> {
    serde_json::from_slice(body)
        .map_err(|e| status(StatusCode::BAD_REQUEST, "BadRequest", format!("body is not JSON: {e}")))
}

async fn read(State(ctx): State<Ctx>, Path((ns, name)): Path<(String, String)>) -> Response {
    if let Err(r) = gate(&ctx).await {
        return r;
    }
    let store = ctx.shared.store.lock().unwrap();
    match store.leases.get(&(ns, name.clone())) {
        Some(stored) => axum::Json(stored.object.clone()).into_response(),
        None => not_found(&name),
    }
}

async fn create(State(ctx): State<Ctx>, Path(ns): Path<String>, body: Bytes) -> Response {
    if let Err(r) = gate(&ctx).await {
        return r;
    }
    let mut object = match parse(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(name) = object.pointer("/metadata/name").and_then(Value::as_str).map(str::to_owned) else {
        return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", "metadata.name is required");
    };
    let mut store = ctx.shared.store.lock().unwrap();
    let key = (ns.clone(), name.clone());
    if store.leases.contains_key(&key) {
        return status(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("leases.coordination.k8s.io \"{name}\" already exists"),
        );
    }
    object["apiVersion"] = json!("coordination.k8s.io/v1");
    object["kind"] = json!("Lease");
    object["metadata"]["namespace"] = json!(ns);
    object["metadata"]["resourceVersion"] = Value::Null;
    object["metadata"]["uid"] = json!(format!("fake-uid-{ns}-{name}"));
    if object.get("spec").is_none_or(Value::is_null) {
        object["spec"] = json!({});
    }
    let owners = spec_fields(&object)
        .keys()
        .map(|f| (f.clone(), BTreeSet::from([Manager { name: "creator".into(), apply: false }])))
        .collect();
    store.leases.insert(key.clone(), Stored { object, owners });
    let mut created = commit(&mut store, &key, None, &ctx.client);
    *created.status_mut() = StatusCode::CREATED;
    created
}

async fn replace(State(ctx): State<Ctx>, Path((ns, name)): Path<(String, String)>, body: Bytes) -> Response {
    if let Err(r) = gate(&ctx).await {
        return r;
    }
    let new = match parse(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut store = ctx.shared.store.lock().unwrap();
    let key = (ns, name.clone());
    let Some(stored) = store.leases.get_mut(&key) else {
        return not_found(&name);
    };
    let before = stored.object.get("spec").cloned();
    let current_rv = stored.object["metadata"]["resourceVersion"].clone();
    if let Some(sent) = new.pointer("/metadata/resourceVersion")
        && *sent != current_rv
    {
        return status(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on leases.coordination.k8s.io \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
        );
    }
    let manager = Manager { name: "replacer".into(), apply: false };
    let spec = new.get("spec").cloned().unwrap_or_else(|| json!({}));
    update_spec(stored, spec, &manager);
    commit(&mut store, &key, before, &ctx.client)
}

async fn patch(
    State(ctx): State<Ctx>,
    Path((ns, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = gate(&ctx).await {
        return r;
    }
    let patch = match parse(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let field_manager = query.get("fieldManager").cloned();
    let mut store = ctx.shared.store.lock().unwrap();
    let key = (ns.clone(), name.clone());
    match content_type {
        "application/apply-patch+yaml" => {
            let Some(field_manager) = field_manager else {
                return status(StatusCode::BAD_REQUEST, "BadRequest", "fieldManager is required for apply patch");
            };
            let force = query.get("force").is_some_and(|f| f == "true");
            if !store.leases.contains_key(&key) {
                let object = json!({
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": name, "namespace": ns, "uid": "fake-uid-applied"},
                    "spec": {},
                });
                store.leases.insert(key.clone(), Stored { object, owners: BTreeMap::new() });
            }
            let stored = store.leases.get_mut(&key).expect("just ensured");
            let before = stored.object.get("spec").cloned();
            let applied = patch.get("spec").and_then(Value::as_object).cloned().unwrap_or_default();
            if let Err(conflicts) = apply_spec(stored, &applied, &field_manager, force) {
                return status(
                    StatusCode::CONFLICT,
                    "Conflict",
                    format!("Apply failed with {} conflict(s): {}", conflicts.len(), conflicts.join(", ")),
                );
            }
            commit(&mut store, &key, before, &ctx.client)
        }
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            let Some(stored) = store.leases.get_mut(&key) else {
                return not_found(&name);
            };
            let before = stored.object.get("spec").cloned();
            let mut spec = before.clone().unwrap_or_else(|| json!({}));
            if let Some(spec_patch) = patch.get("spec") {
                merge(&mut spec, spec_patch);
            }
            let manager = Manager { name: field_manager.unwrap_or_else(|| "unknown".into()), apply: false };
            update_spec(stored, spec, &manager);
            commit(&mut store, &key, before, &ctx.client)
        }
        other => status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!("the fake does not support patch type {other:?}"),
        ),
    }
}

fn spec_fields(object: &Value) -> Map<String, Value> {
    object.get("spec").and_then(Value::as_object).cloned().unwrap_or_default()
}

/// RFC 7386 merge: `null` removes, objects merge, anything else replaces.
fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

/// An Update operation: changed fields now belong to `manager` alone, removed ones to nobody.
fn update_spec(stored: &mut Stored, new_spec: Value, manager: &Manager) {
    let old = spec_fields(&stored.object);
    let new = new_spec.as_object().cloned().unwrap_or_default();
    for field in old.keys().chain(new.keys()) {
        match new.get(field) {
            None => {
                stored.owners.remove(field);
            }
            Some(v) if old.get(field) != Some(v) => {
                stored.owners.insert(field.clone(), BTreeSet::from([manager.clone()]));
            }
            Some(_) => {}
        }
    }
    stored.object["spec"] = Value::Object(new);
}

/// Server-side apply of `spec` fields, with conflicts against other owners.
fn apply_spec(
    stored: &mut Stored,
    applied: &Map<String, Value>,
    field_manager: &str,
    force: bool,
) -> Result<(), Vec<String>> {
    let me = Manager { name: field_manager.to_owned(), apply: true };
    let mut spec = spec_fields(&stored.object);
    let conflicts: Vec<String> = applied
        .iter()
        .filter(|(field, value)| spec.get(*field).is_some_and(|current| current != *value))
        .filter_map(|(field, _)| {
            let others: Vec<&str> =
                stored.owners.get(field).into_iter().flatten().filter(|m| **m != me).map(|m| m.name.as_str()).collect();
            (!others.is_empty()).then(|| format!("conflict with {others:?}: .spec.{field}"))
        })
        .collect();
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    // Fields this applier no longer sends: give them up, and drop those nobody else owns.
    let given_up: Vec<String> = stored
        .owners
        .iter()
        .filter(|(field, owners)| owners.contains(&me) && !applied.contains_key(*field))
        .map(|(field, _)| field.clone())
        .collect();
    for field in given_up {
        let owners = stored.owners.get_mut(&field).expect("listed above");
        owners.remove(&me);
        if owners.is_empty() {
            stored.owners.remove(&field);
            spec.remove(&field);
        }
    }
    for (field, value) in applied {
        if value.is_null() {
            continue;
        }
        if spec.get(field) == Some(value) {
            stored.owners.entry(field.clone()).or_default().insert(me.clone());
        } else {
            spec.insert(field.clone(), value.clone());
            stored.owners.insert(field.clone(), BTreeSet::from([me.clone()]));
        }
    }
    stored.object["spec"] = Value::Object(spec);
    Ok(())
}

/// Bumps the resourceVersion if `spec` changed, records the write, answers with the object.
fn commit(store: &mut Store, key: &(String, String), before: Option<Value>, client: &str) -> Response {
    let Store { last_rv, leases, history } = store;
    let Some(stored) = leases.get_mut(key) else {
        return not_found(&key.1);
    };
    if before.as_ref() != stored.object.get("spec") || stored.object["metadata"]["resourceVersion"].is_null() {
        *last_rv += 1;
        stored.object["metadata"]["resourceVersion"] = json!(last_rv.to_string());
    }
    let object = stored.object.clone();
    history.push(Write {
        client: client.to_owned(),
        at: SystemTime::now(),
        lease: serde_json::from_value(object.clone()).expect("stored lease parses"),
    });
    axum::Json(object).into_response()
}
