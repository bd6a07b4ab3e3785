//! The HTTP/JSON control API: a thin layer over `Control`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::SimError;
use crate::control::{Control, Fault};
use crate::fabric::Shared;
use crate::leaf::SessionState;

pub fn serve(sh: Arc<Shared>, listener: tokio::net::TcpListener) -> tokio::task::JoinHandle<()> {
    let cancel = sh.cancel.clone();
    let app = Router::new()
        .route("/v1/leaves", get(leaves))
        .route("/v1/now", get(now))
        .route("/v1/ca", get(ca))
        .route("/v1/link", post(link))
        .route("/v1/links", post(links))
        .route("/v1/bgp", post(bgp))
        .route("/v1/evpn-routes", post(evpn_routes))
        .route("/v1/neighbor/remove", post(remove_neighbor))
        .route("/v1/neighbor/add", post(add_neighbor))
        .route("/v1/fault", post(fault))
        .route("/v1/sets", get(sets).delete(clear_sets))
        .route("/v1/sets/count", get(sets_count))
        .route("/v1/state/{node}", get(state))
        .route("/v1/value", get(value))
        .with_state(sh);
    tokio::spawn(async move {
        let served = axum::serve(listener, app).with_graceful_shutdown(cancel.cancelled_owned()).await;
        if let Err(e) = served {
            tracing::error!(error = %e, "control API stopped");
        }
    })
}

struct ApiError(SimError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = match self.0 {
            SimError::UnknownNode(_) | SimError::UnknownInterface { .. } | SimError::UnknownNeighbor { .. } => {
                StatusCode::NOT_FOUND
            }
            SimError::Invalid(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (code, Json(json!({"error": self.0.to_string()}))).into_response()
    }
}

type ApiResult = Result<Json<serde_json::Value>, ApiError>;

/// A JSON request body, whatever its Content-Type: `curl -d '{...}'` sends
/// `application/x-www-form-urlencoded`, and a lab tool should not make people care.
struct Body<T>(T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError(SimError::Invalid(format!("cannot read the request body: {e}"))))?;
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| ApiError(SimError::Invalid(format!("request body is not the expected JSON: {e}"))))
    }
}

fn applied(r: Result<crate::Applied, SimError>) -> ApiResult {
    r.map(|a| Json(json!({"applied": a}))).map_err(ApiError)
}

async fn leaves(State(sh): State<Arc<Shared>>) -> Json<serde_json::Value> {
    let leaves: Vec<_> = sh.leaves.iter().map(|l| json!({"name": l.name, "addr": l.addr.to_string()})).collect();
    Json(json!({"leaves": leaves}))
}

async fn now(State(sh): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(json!({"now": sh.clock.now()}))
}

async fn ca(State(sh): State<Arc<Shared>>) -> Response {
    match &sh.ca_pem {
        Some(pem) => pem.clone().into_response(),
        None => {
            (StatusCode::NOT_FOUND, Json(json!({"error": "the fabric runs without TLS (--insecure)"}))).into_response()
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum UpDown {
    Up,
    Down,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkReq {
    node: String,
    interface: String,
    state: UpDown,
}

async fn link(State(sh): State<Arc<Shared>>, Body(r): Body<LinkReq>) -> ApiResult {
    applied(Control::new(sh).link(&r.node, &r.interface, r.up()))
}

impl LinkReq {
    fn up(&self) -> bool {
        matches!(self.state, UpDown::Up)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinksReq {
    links: Vec<LinkReq>,
}

async fn links(State(sh): State<Arc<Shared>>, Body(r): Body<LinksReq>) -> ApiResult {
    let links: Vec<_> = r.links.iter().map(|l| (l.node.as_str(), l.interface.as_str(), l.up())).collect();
    Control::new(sh).links(&links).map(|a| Json(json!({"applied": a}))).map_err(ApiError)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BgpReq {
    node: String,
    peer: String,
    /// `null` hands the session back to the model.
    state: Option<SessionState>,
}

async fn bgp(State(sh): State<Arc<Shared>>, Body(r): Body<BgpReq>) -> ApiResult {
    applied(Control::new(sh).bgp_session(&r.node, &r.peer, r.state))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutesReq {
    node: String,
    peer: String,
    routes: u32,
}

async fn evpn_routes(State(sh): State<Arc<Shared>>, Body(r): Body<RoutesReq>) -> ApiResult {
    applied(Control::new(sh).evpn_routes(&r.node, &r.peer, r.routes))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NeighborReq {
    node: String,
    peer: String,
}

async fn remove_neighbor(State(sh): State<Arc<Shared>>, Body(r): Body<NeighborReq>) -> ApiResult {
    applied(Control::new(sh).remove_neighbor(&r.node, &r.peer))
}

async fn add_neighbor(State(sh): State<Arc<Shared>>, Body(r): Body<NeighborReq>) -> ApiResult {
    applied(Control::new(sh).add_neighbor(&r.node, &r.peer))
}

#[derive(Deserialize)]
struct FaultReq {
    node: String,
    #[serde(flatten)]
    fault: Fault,
}

async fn fault(State(sh): State<Arc<Shared>>, Body(r): Body<FaultReq>) -> ApiResult {
    applied(Control::new(sh).fault(&r.node, r.fault))
}

async fn sets(State(sh): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(json!(Control::new(sh).sets()))
}

/// How many Sets the log holds: for a waiter polling until they arrived, which would
/// otherwise fetch (and the sim serialize) the whole, growing log on every poll.
async fn sets_count(State(sh): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(json!({"count": Control::new(sh).sets_count()}))
}

async fn clear_sets(State(sh): State<Arc<Shared>>) -> StatusCode {
    Control::new(sh).clear_sets();
    StatusCode::NO_CONTENT
}

async fn state(State(sh): State<Arc<Shared>>, Path(node): Path<String>) -> ApiResult {
    Control::new(sh).state(&node).map(|s| Json(json!(s))).map_err(ApiError)
}

#[derive(Deserialize)]
struct ValueQuery {
    node: String,
    path: String,
}

async fn value(State(sh): State<Arc<Shared>>, Query(q): Query<ValueQuery>) -> ApiResult {
    Control::new(sh).value(&q.node, &q.path).map(|v| Json(json!({"value": v}))).map_err(ApiError)
}
