//! The daemon's two endpoints on the address `[daemon] metrics_address` names: `/metrics`
//! (OpenMetrics text) and `/healthz` (200 or 503 with the reason in one line).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::Board;

/// The board the daemon records its runs on and the endpoints read.
pub type Shared = Arc<Mutex<Board>>;

/// The content type of OpenMetrics text.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Why the endpoints cannot be served.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address} (metrics_address): {source}")]
pub struct ListenError {
    /// The address asked for.
    pub address: SocketAddr,
    /// What the system said (the address is in use, say).
    pub source: std::io::Error,
}

/// Takes `address`; fails, naming it, when it is in use or not this machine's.
pub async fn listen(address: SocketAddr) -> Result<tokio::net::TcpListener, ListenError> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| ListenError { address, source })
}

/// Answers `/metrics` and `/healthz` on `listener` from `board`, until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, board: Shared) {
    let app = axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(board);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!("the metrics endpoint stopped: {e}");
    }
}

async fn metrics(State(board): State<Shared>) -> impl IntoResponse {
    let text = board
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .openmetrics();
    match text {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, OPENMETRICS)],
            crate::secrets::scrub(&text).into_owned(),
        ),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "the metrics could not be written\n".to_owned(),
        ),
    }
}

async fn healthz(State(board): State<Shared>) -> impl IntoResponse {
    let (well, reason) = board
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .health(chrono::Utc::now());
    let status = if well {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let reason = crate::secrets::scrub(&reason).into_owned();
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{reason}\n"),
    )
}
