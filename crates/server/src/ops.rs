//! Operations: `/health` (alive), `/ready` (store reachable, index loaded), `/metrics`
//! (Prometheus), `/openapi.json`, the map page at `/` (built by `page`), and the JSON answers
//! for unknown routes and methods.

use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::openapi;
use crate::params::Params;
use crate::state::AppState;

/// How long `/ready` waits for the store.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The operations routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index_get))
        .route("/health", get(health_get))
        .route("/ready", get(ready_get))
        .route("/metrics", get(metrics_get))
        .route("/openapi.json", get(openapi_get))
}

async fn index_get(
    State(s): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    Params::parse(raw.as_deref(), &[])?;
    Ok(crate::page::index(&s, &headers))
}

async fn health_get(RawQuery(raw): RawQuery) -> Result<Json<Value>, ApiError> {
    Params::parse(raw.as_deref(), &[])?;
    Ok(Json(json!({"status": "ok"})))
}

async fn ready_get(
    State(s): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    Params::parse(raw.as_deref(), &[])?;
    let store = std::sync::Arc::clone(s.store());
    let probe = tokio::task::spawn_blocking(move || store.data_version());
    let not_ready = |why: String| {
        tracing::warn!(reason = %why, "not ready");
        ApiError::new(
            "not_ready",
            None,
            "the store is not reachable; see the server log",
        )
    };
    let store_version = match tokio::time::timeout(READY_TIMEOUT, probe).await {
        Ok(Ok(Ok(v))) => v,
        Ok(Ok(Err(e))) => return Err(not_ready(e.to_string())),
        Ok(Err(e)) => return Err(not_ready(e.to_string())),
        Err(_) => return Err(not_ready("the store did not answer in 2 s".into())),
    };
    let ix = s.index();
    Ok(Json(json!({
        "status": "ready",
        "places": ix.len(),
        "data_version": ix.data_version(),
        "store_data_version": store_version,
    })))
}

async fn metrics_get(
    State(s): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    Params::parse(raw.as_deref(), &[])?;
    let mut text = s.metrics().render();
    text.push_str(&crate::supervision::metrics_text(&s).await);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

async fn openapi_get(RawQuery(raw): RawQuery) -> Result<Json<Value>, ApiError> {
    Params::parse(raw.as_deref(), &[])?;
    Ok(Json(openapi::document()))
}

/// Unknown routes: 404 in the error format.
pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("no such route; the API is described at /openapi.json")
}

/// A known route with another method: 405 in the error format.
pub(crate) async fn method_not_allowed() -> Response {
    let mut r = ApiError::new(
        "method_not_allowed",
        None,
        "this route does not take that method; see /openapi.json",
    )
    .into_response();
    *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    r
}
