//! The supervisor seen through the API: the live page `/admin/status`, its data at
//! `GET /v1/admin/status`, `POST /v1/admin/services/{service}/restart`, and the supervisor's
//! metrics appended to `/metrics`.
//!
//! This crate knows no supervisor: under `sadomap up` the binary injects a [`Supervision`]
//! (which asks the supervisor's control socket), as it injects a `WorkerProbe` into a worker's
//! endpoint. A server run alone has none, and the data route answers 404 `not_supervised`.
//!
//! The page itself holds no data and no secret, so it is served without a token; its script
//! asks for the admin token once, keeps it in the tab's `sessionStorage` (never in a URL, where
//! it would reach logs and history) and sends it as a bearer token with every refresh, every 2 s.
//! The data and restart routes check it like every admin route.
//!
//! Concurrency contract: a [`Supervision`] may block (a Unix socket round trip with its own
//! timeout), so every call runs on tokio's blocking pool, one call per request.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::admin::authorize;
use crate::error::ApiError;
use crate::params::Params;
use crate::state::AppState;

/// Why the supervisor could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupervisionError {
    /// It did not answer (not running, socket gone, timed out); the text says how.
    Unavailable(String),
    /// It has no service of that name.
    UnknownService(String),
    /// It refused for another reason, said in the text.
    Refused(String),
}

impl std::fmt::Display for SupervisionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SupervisionError::Unavailable(m) => write!(f, "the supervisor does not answer: {m}"),
            SupervisionError::UnknownService(s) => write!(f, "the supervisor has no service {s:?}"),
            SupervisionError::Refused(m) => write!(f, "the supervisor refused: {m}"),
        }
    }
}

impl std::error::Error for SupervisionError {}

/// What the server may ask of the supervisor that runs it.
pub trait Supervision: Send + Sync {
    /// The live overview, a JSON object with `status` (services, their instances, states,
    /// restarts with reasons and probe history), `events` (recent restarts, failures and
    /// scaling decisions, oldest first) and `queues` (depth of each queue).
    fn overview(&self) -> Result<Value, SupervisionError>;
    /// The supervisor's metrics in the Prometheus text format.
    fn metrics(&self) -> Result<String, SupervisionError>;
    /// Asks for a rolling restart of `service`; returns once it is accepted.
    fn restart(&self, service: &str) -> Result<(), SupervisionError>;
}

const STATUS_HTML: &[u8] = include_bytes!("../assets/status.html");

/// The routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/status", get(page))
        .route("/v1/admin/status", get(overview))
        .route("/v1/admin/services/{service}/restart", post(restart))
}

async fn page(
    State(s): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    Params::parse(raw.as_deref(), &[])?;
    let mut r = crate::page::static_response(&headers, "text/html; charset=utf-8", STATUS_HTML);
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&crate::page::csp(&s)) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(r)
}

fn supervision(s: &AppState) -> Result<Arc<dyn Supervision>, ApiError> {
    s.supervision().ok_or_else(|| {
        ApiError::new(
            "not_supervised",
            None,
            "this server is not run by `sadomap up`, so there is no supervisor to show",
        )
    })
}

fn api_error(e: SupervisionError) -> ApiError {
    match e {
        SupervisionError::UnknownService(_) => {
            ApiError::new("unknown_service", Some("service"), e.to_string())
        }
        SupervisionError::Unavailable(_) | SupervisionError::Refused(_) => {
            tracing::warn!(error = %e, "supervisor request failed");
            ApiError::new("supervisor_unavailable", None, e.to_string())
        }
    }
}

/// Runs a blocking supervisor call off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SupervisionError> + Send + 'static,
) -> Result<T, SupervisionError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(SupervisionError::Unavailable(format!("task failed: {e}"))))
}

async fn overview(
    State(s): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&s, &headers)?;
    Params::parse(raw.as_deref(), &[])?;
    let sup = supervision(&s)?;
    let mut v = blocking(move || sup.overview()).await.map_err(api_error)?;
    let Some(o) = v.as_object_mut() else {
        return Err(api_error(SupervisionError::Refused(
            "its overview is not a JSON object".into(),
        )));
    };
    for (key, empty) in [
        ("status", json!({})),
        ("events", json!([])),
        ("queues", json!([])),
    ] {
        o.entry(key).or_insert(empty);
    }
    o.insert(
        "generated_at".into(),
        json!(Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)),
    );
    let mut r = Json(v).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

async fn restart(
    State(s): State<AppState>,
    Path(service): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&s, &headers)?;
    Params::parse(raw.as_deref(), &[])?;
    let sup = supervision(&s)?;
    let name = service.clone();
    blocking(move || sup.restart(&name))
        .await
        .map_err(api_error)?;
    tracing::info!(service = %service, "rolling restart requested through the API");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "accepted": format!("rolling restart of {service}") })),
    )
        .into_response())
}

/// The supervisor's metrics for `/metrics`, or a gauge saying it did not answer; empty when
/// the server is not supervised.
pub(crate) async fn metrics_text(s: &AppState) -> String {
    let Some(sup) = s.supervision() else {
        return String::new();
    };
    match blocking(move || sup.metrics()).await {
        Ok(text) => format!(
            "# HELP sadomap_server_supervisor_up 1 when the supervisor answered this scrape.\n\
             # TYPE sadomap_server_supervisor_up gauge\nsadomap_server_supervisor_up 1\n{text}"
        ),
        Err(e) => {
            tracing::debug!(error = %e, "no supervisor metrics for this scrape");
            "# HELP sadomap_server_supervisor_up 1 when the supervisor answered this scrape.\n\
             # TYPE sadomap_server_supervisor_up gauge\nsadomap_server_supervisor_up 0\n"
                .to_string()
        }
    }
}
