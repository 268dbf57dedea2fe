//! The middleware every route gets, applied once in [`apply`]: request metrics (outermost, so
//! 429s and timeouts are counted), tracing spans, CORS, compression, the per-client rate limit,
//! the request timeout and the body size limit.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::state::AppState;

/// Wraps `routes` in the middleware stack.
pub(crate) fn apply(routes: Router<AppState>, state: &AppState) -> Router<AppState> {
    let c = state.config();
    let mut r = routes
        .layer(DefaultBodyLimit::max(c.max_body_bytes))
        .layer(from_fn_with_state(state.clone(), timeout))
        .layer(from_fn_with_state(state.clone(), rate_limit));
    if c.compression {
        r = r.layer(CompressionLayer::new());
    }
    if !c.cors_origins.is_empty() {
        let origin = if c.cors_origins.iter().any(|o| o == "*") {
            AllowOrigin::any()
        } else {
            AllowOrigin::list(
                c.cors_origins
                    .iter()
                    .filter_map(|o| HeaderValue::from_str(o).ok()),
            )
        };
        r = r.layer(
            CorsLayer::new()
                .allow_origin(origin)
                .allow_methods([Method::GET, Method::HEAD, Method::POST])
                .allow_headers([
                    axum::http::header::ACCEPT,
                    axum::http::header::CONTENT_TYPE,
                    axum::http::header::IF_NONE_MATCH,
                    axum::http::header::AUTHORIZATION,
                ])
                .expose_headers([
                    axum::http::header::ETAG,
                    axum::http::header::RETRY_AFTER,
                    axum::http::header::LOCATION,
                ]),
        );
    }
    r.layer(TraceLayer::new_for_http())
        .layer(from_fn_with_state(state.clone(), track))
}

/// Counts the request by route and status and times it.
async fn track(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    // A clone of the matched path is an `Arc` bump, not a copy.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = match *req.method() {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    };
    let res = next.run(req).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    s.metrics()
        .observe(route, method, res.status().as_u16(), start.elapsed());
    res
}

/// The client's address: the socket peer when the server knows it.
fn client(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
}

/// Refuses with 429 and `Retry-After` once a client's bucket is empty. Probes and metrics are
/// never limited, so monitoring keeps working under load.
async fn rate_limit(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let exempt = matches!(req.uri().path(), "/health" | "/ready" | "/metrics");
    if !exempt {
        if let Err(secs) = s.limiter().check(client(&req), Instant::now()) {
            s.metrics().rate_limited.fetch_add(1, Ordering::Relaxed);
            return ApiError::rate_limited(secs).into_response();
        }
    }
    next.run(req).await
}

/// Answers 503 `timeout` when a request takes longer than the configured time.
async fn timeout(State(s): State<AppState>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(s.config().request_timeout(), next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            "timeout",
            None,
            format!(
                "the request took longer than {} ms",
                s.config().request_timeout_ms
            ),
        )
        .into_response(),
    }
}
