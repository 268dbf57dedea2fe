//! The sadomap HTTP API.
//!
//! [`app`] builds the axum [`Router`] over an [`AppState`] (the store, a [`LiveIndex`] kept in
//! step with the store's data version, configuration, metrics, the response cache and the rate
//! limiter); [`serve`] runs it on a socket, plain or TLS (rustls, certificate files reloaded when
//! they change), until a shutdown signal, then drains with a deadline.
//!
//! Routes (described in full by the OpenAPI document at `/openapi.json`):
//! `GET /v1/places`, `/v1/places/{id}`, `/v1/districts`, `/v1/cuisines`, `/v1/stats`,
//! `/v1/export.geojson`, `/v1/export/{kind}.csv`; admin `POST /v1/admin/imports`,
//! `GET /v1/admin/jobs[/{id}]` behind a bearer token; `/health`, `/ready`, `/metrics`.
//! Errors are `{"error", "field", "message"}` from one table ([`ERROR_CODES`]).
//!
//! ```
//! use std::sync::Arc;
//! use axum::body::Body;
//! use axum::http::Request;
//! use sadomap_server::{app, AppState, ServerConfig};
//! use sadomap_store::SqliteStore;
//! use tower::ServiceExt;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = Arc::new(SqliteStore::open_in_memory().unwrap());
//! let state = AppState::new(store, ServerConfig::default(), None).unwrap();
//! let res = app(state)
//!     .oneshot(Request::get("/health").body(Body::empty()).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(res.status(), 200);
//! # });
//! ```
//!
//! [`LiveIndex`]: sadomap_store::LiveIndex
#![deny(missing_docs)]

mod accept;
mod admin;
mod cache;
mod config;
mod dto;
mod error;
mod export;
mod fragments;
mod meta;
mod metrics;
mod middleware;
mod openapi;
mod ops;
mod page;
mod params;
mod places;
mod ratelimit;
mod serve;
mod state;
mod supervision;
mod worker_endpoint;

pub use admin::AdminToken;
pub use config::{ConfigError, RateLimitConfig, ServerConfig, TlsConfig};
pub use error::{status_of, ApiError, ERROR_CODES};
pub use metrics::Metrics;
pub use openapi::{document as openapi_document, ROUTES};
pub use params::{parse_district, parse_open_at};
pub use serve::{serve, ServeError};
pub use state::AppState;
pub use supervision::{Supervision, SupervisionError};
pub use worker_endpoint::{
    serve_worker_endpoint, worker_endpoint, WorkerHealthAnswer, WorkerProbe,
};

use axum::Router;

/// The whole HTTP application: every resource's routes, then the middleware, applied once.
pub fn app(state: AppState) -> Router {
    let routes = Router::new()
        .merge(places::routes())
        .merge(meta::routes())
        .merge(export::routes())
        .merge(admin::routes())
        .merge(supervision::routes())
        .merge(ops::routes())
        .merge(page::routes())
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed);
    middleware::apply(routes, &state).with_state(state)
}
