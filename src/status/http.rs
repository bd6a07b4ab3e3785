//! The HTTP surface: `/status`, `/metrics`, `/healthz`, `/readyz`.

use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::StatusError;
use super::board::Board;
use super::metrics;

/// Where the server listens unless `--http` or the config's `http:` say otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9610";

/// Bind `addr` (port 0 picks a free port) and serve until `cancel` fires.
/// Returns the bound address and the server task.
pub async fn serve(
    addr: SocketAddr,
    board: Board,
    cancel: CancellationToken,
) -> Result<(SocketAddr, JoinHandle<Result<(), StatusError>>), StatusError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StatusError::Bind { addr: addr.to_string(), source })?;
    let bound = listener.local_addr().map_err(|source| StatusError::Bind { addr: addr.to_string(), source })?;
    let app = router(board);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await
            .map_err(|source| StatusError::Serve { addr: bound.to_string(), source })
    });
    Ok((bound, task))
}

pub fn router(board: Board) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(board)
}

async fn status(State(board): State<Board>) -> Response {
    let doc = board.document(Instant::now());
    match serde_json::to_vec_pretty(&doc) {
        Ok(mut body) => {
            body.push(b'\n');
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("status document: {e}\n")).into_response(),
    }
}

async fn metrics(State(board): State<Board>) -> Response {
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], board.metrics_text()).into_response()
}

async fn healthz(State(board): State<Board>) -> Response {
    probe(board.liveness(Instant::now()))
}

async fn readyz(State(board): State<Board>) -> Response {
    probe(board.readiness())
}

fn probe(result: Result<(), String>) -> Response {
    match result {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response(),
    }
}
