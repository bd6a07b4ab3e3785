//! The HTTP surface: `/status`, `/metrics`, `/healthz`, `/readyz`.

use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use super::StatusError;
use super::board::Board;
use super::metrics;

/// Where the server listens unless `--http` or the config's `http:` say otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9610";

/// The status server's end (its result), as a future: it runs on a thread of its own.
pub type ServerDone = tokio::sync::oneshot::Receiver<Result<(), StatusError>>;

/// Bind `addr` (port 0 picks a free port) and serve until `cancel` fires, on a thread with
/// a runtime of its own: at 10,000 groups one /metrics scrape takes ~0.3 s of CPU (46 MB
/// of text), and `opergroupd run` keeps its control loop and sessions on one thread, where
/// every scrape would stall them for that long.
/// Returns the bound address and the server's end.
pub fn serve(
    addr: SocketAddr,
    board: Board,
    cancel: CancellationToken,
) -> Result<(SocketAddr, ServerDone), StatusError> {
    let bind = |source| StatusError::Bind { addr: addr.to_string(), source };
    let listener = std::net::TcpListener::bind(addr).map_err(bind)?;
    listener.set_nonblocking(true).map_err(bind)?;
    let bound = listener.local_addr().map_err(bind)?;
    let app = router(board);
    let (done, ended) = tokio::sync::oneshot::channel();
    let failed = move |source| StatusError::Serve { addr: bound.to_string(), source };
    let run = move || {
        let served =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(failed).and_then(|rt| {
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).map_err(failed)?;
                    axum::serve(listener, app).with_graceful_shutdown(cancel.cancelled_owned()).await.map_err(failed)
                })
            });
        let _ = done.send(served);
    };
    std::thread::Builder::new().name("status-http".into()).spawn(run).map_err(failed)?;
    Ok((bound, ended))
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
