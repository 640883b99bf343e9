//! What every HTTP adapter shares: the error shape, the layers (limits, timeout, tracing,
//! latency metric) and the operational routes (`/healthz`, `/readyz`, `/metrics`). The
//! composition root (`app`) merges the adapters' routers and applies [`with_layers`].

use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, FromRef, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::store::Store;

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The state of the operational routes.
#[derive(Clone)]
pub struct OpsState {
    pub store: Store,
    pub metrics: PrometheusHandle,
}

/// The one error type of the HTTP layer: client errors carry a reason, internal ones do not.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    BadRequest(String),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            AppError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m.to_string()),
            AppError::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            AppError::Internal(e) => {
                tracing::error!(error = ?e, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
            }
        };
        (status, Json(json!({ "ok": false, "error": message }))).into_response()
    }
}

/// `/healthz`, `/readyz`, `/metrics`.
pub fn ops_router<S>() -> Router<S>
where
    OpsState: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_page))
}

/// The layers every route gets: the latency metric, body limits, a timeout, tracing.
pub fn with_layers(router: Router) -> Router {
    router
        .layer(middleware::from_fn(record_latency))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(10),
        ))
        .layer(TraceLayer::new_for_http())
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "ok": true }))
}

async fn readyz(State(state): State<OpsState>) -> Response {
    match state.store.is_ready().await {
        Ok(true) => Json(json!({ "ok": true })).into_response(),
        Ok(false) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ok": false, "error": "migrations not applied" })),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "ok": false, "error": "database unreachable" })),
            )
                .into_response()
        }
    }
}

async fn metrics_page(State(state): State<OpsState>) -> String {
    state.metrics.render()
}

async fn record_latency(request: Request, next: Next) -> Response {
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics::histogram!(
        "warroom_http_request_seconds",
        "path" => path,
        "status" => response.status().as_u16().to_string()
    )
    .record(started.elapsed().as_secs_f64());
    response
}
