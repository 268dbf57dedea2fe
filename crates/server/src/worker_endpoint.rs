//! The small HTTP endpoint of a `sadomap worker` process (`--health-listen`): `GET /health`
//! and `GET /metrics`. A worker is no API server, so this is its own router; it asks the worker
//! through [`WorkerProbe`], so this crate needs none of the queue's internals and the queue
//! crate knows no HTTP.
//!
//! Concurrency contract: the probe is called on tokio's blocking pool (it may ask the broker,
//! which blocks), one call per request; the server runs until the shutdown future completes.

use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

/// What a worker's health check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerHealthAnswer {
    /// True while the worker leases and runs jobs (`/health` answers 200, else 503).
    pub healthy: bool,
    /// The worker's id.
    pub worker: String,
    /// Its state: `starting`, `running`, `degraded`, `draining`, `stopped`.
    pub state: String,
    /// Why it is not healthy (the last broker error), when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How the endpoint asks a worker about itself.
pub trait WorkerProbe: Send + Sync + 'static {
    /// The worker's health now (may ask the broker, within a timeout of its own).
    fn health(&self) -> WorkerHealthAnswer;

    /// The worker's metrics as Prometheus text.
    fn metrics(&self) -> String;
}

/// `GET /health` (200 when running, 503 with the reason otherwise) and `GET /metrics`.
pub fn worker_endpoint(probe: Arc<dyn WorkerProbe>) -> Router {
    Router::new()
        .route("/health", get(worker_health_get))
        .route("/metrics", get(worker_metrics_get))
        .with_state(probe)
}

/// Serves [`worker_endpoint`] on `listener` until `shutdown` completes.
pub async fn serve_worker_endpoint(
    listener: tokio::net::TcpListener,
    probe: Arc<dyn WorkerProbe>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, worker_endpoint(probe))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn worker_health_get(State(probe): State<Arc<dyn WorkerProbe>>) -> Response {
    match tokio::task::spawn_blocking(move || probe.health()).await {
        Ok(answer) => {
            let status = if answer.healthy {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (status, Json(answer)).into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn worker_metrics_get(State(probe): State<Arc<dyn WorkerProbe>>) -> Response {
    match tokio::task::spawn_blocking(move || probe.metrics()).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    struct Fake(AtomicBool);

    impl WorkerProbe for Fake {
        fn health(&self) -> WorkerHealthAnswer {
            let healthy = self.0.load(Ordering::SeqCst);
            WorkerHealthAnswer {
                healthy,
                worker: "w1".into(),
                state: if healthy { "running" } else { "degraded" }.into(),
                reason: (!healthy).then(|| "Redis: connection refused".into()),
            }
        }
        fn metrics(&self) -> String {
            "sadomap_queue_worker_degraded{worker=\"w1\"} 0\n".into()
        }
    }

    async fn get(app: &Router, path: &str) -> (StatusCode, String) {
        let res = app
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("response");
        let status = res.status();
        let body = res.into_body().collect().await.expect("body").to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn health_follows_the_probe_and_metrics_are_text() {
        let probe = Arc::new(Fake(AtomicBool::new(true)));
        let app = worker_endpoint(probe.clone());
        let (status, body) = get(&app, "/health").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, r#"{"healthy":true,"worker":"w1","state":"running"}"#);
        probe.0.store(false, Ordering::SeqCst);
        let (status, body) = get(&app, "/health").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            body.contains(r#""reason":"Redis: connection refused""#),
            "{body}"
        );
        let (status, body) = get(&app, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.starts_with("sadomap_queue_worker_degraded"), "{body}");
        assert_eq!(get(&app, "/nope").await.0, StatusCode::NOT_FOUND);
    }
}
