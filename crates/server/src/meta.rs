//! Summaries: `GET /v1/districts` (with counts), `GET /v1/cuisines`, `GET /v1/stats`.

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use sadomap_core::{Cuisine, MarkerGroup, Region};
use serde_json::{json, Map, Value};

use crate::cache::{get_or_build, respond};
use crate::error::ApiError;
use crate::params::Params;
use crate::places::JSON;
use crate::state::AppState;

/// The summary routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/districts", get(districts_list))
        .route("/v1/cuisines", get(cuisines_list))
        .route("/v1/stats", get(stats_get))
}

/// Answers a body that depends only on the index, cached per data version.
fn summary(
    s: &AppState,
    raw: Option<&str>,
    headers: &HeaderMap,
    name: &str,
    build: impl FnOnce(&sadomap_store::Index) -> Value,
) -> Result<Response, ApiError> {
    Params::parse(raw, &[])?;
    let ix = s.index();
    let c = get_or_build(
        s,
        Some(name.to_owned()),
        ix.data_version(),
        s.config().cache_max_age_s,
        || {
            serde_json::to_vec(&build(&ix))
                .map(|b| (JSON, b))
                .map_err(|e| ApiError::internal(&e))
        },
    )?;
    Ok(respond(headers, &c))
}

async fn districts_list(
    State(s): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    summary(&s, raw.as_deref(), &headers, "districts", |ix| {
        let region = Region::sado();
        let c = ix.counts();
        let districts: Vec<Value> = c
            .by_district
            .iter()
            .map(|(name, n)| {
                let d = region.districts.iter().find(|d| &d.name == name);
                json!({
                    "name": name,
                    "kana": d.map(|d| d.kana.as_str()),
                    "former_municipality": d.map(|d| d.former_municipality.as_str()),
                    "centroid": d.map(|d| json!({"lat": d.centroid.lat(), "lng": d.centroid.lng()})),
                    "count": n,
                })
            })
            .collect();
        json!({
            "districts": districts,
            "unknown": c.unknown_district,
            "outside": c.outside,
            "data_version": ix.data_version(),
        })
    })
}

async fn cuisines_list(
    State(s): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    summary(&s, raw.as_deref(), &headers, "cuisines", |ix| {
        let c = ix.counts();
        let cuisines: Vec<Value> = Cuisine::ALL
            .iter()
            .map(|&x| {
                json!({
                    "id": x.as_str(),
                    "label_ja": x.label_ja(),
                    "label_en": x.label_en(),
                    "marker_group": x.group().as_str(),
                    "count": c.by_cuisine.get(&x).copied().unwrap_or(0),
                })
            })
            .collect();
        json!({
            "cuisines": cuisines,
            "marker_groups": MarkerGroup::ALL.map(MarkerGroup::as_str),
            "data_version": ix.data_version(),
        })
    })
}

async fn stats_get(
    State(s): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    summary(&s, raw.as_deref(), &headers, "stats", |ix| {
        let c = ix.counts();
        let kinds: Map<String, Value> = c
            .by_kind
            .iter()
            .map(|(k, n)| (k.as_str().to_owned(), json!(n)))
            .collect();
        let districts: Map<String, Value> = c
            .by_district
            .iter()
            .map(|(d, n)| (d.clone(), json!(n)))
            .collect();
        let cuisines: Map<String, Value> = c
            .by_cuisine
            .iter()
            .map(|(k, n)| (k.as_str().to_owned(), json!(n)))
            .collect();
        json!({
            "total": c.total,
            "data_version": ix.data_version(),
            "by_kind": kinds,
            "by_district": districts,
            "unknown_district": c.unknown_district,
            "outside": c.outside,
            "by_cuisine": cuisines,
            "index_bytes": ix.memory_bytes(),
        })
    })
}
