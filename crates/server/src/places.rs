//! `GET /v1/places` (filters, sort, paging; JSON or GeoJSON) and `GET /v1/places/{id}`.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use sadomap_core::{PlaceId, WeekTime};
use serde::Serialize;
use serde_json::json;

use crate::cache::{get_or_build, respond};
use crate::dto::PlaceOut;
use crate::error::ApiError;
use crate::params::{places_query, Format, Params};
use crate::state::AppState;

/// The place routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/places", get(places_list))
        .route("/v1/places/{id}", get(places_get))
}

/// A page of places in the JSON form.
#[derive(Serialize)]
struct PlaceList<'a> {
    places: Vec<PlaceOut<'a>>,
    total: Option<usize>,
    next_cursor: Option<String>,
    data_version: u64,
}

pub(crate) const GEOJSON: &str = "application/geo+json";
pub(crate) const JSON: &str = "application/json";

fn wants_geojson(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains(GEOJSON))
}

async fn places_list(
    State(s): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let now = Utc::now();
    let (q, format) = places_query(
        raw.as_deref(),
        wants_geojson(&headers),
        s.config().max_limit,
        now,
    )?;
    let ix = s.index();
    let version = ix.data_version();
    let week = WeekTime::from_utc(now);
    // `open_now` in every place depends on the minute, so the minute is part of the key.
    let key = format!("places {format:?} {week:?} {q:?}");
    let c = get_or_build(&s, Some(key), version, s.config().cache_max_age_s, || {
        let res = ix.query(&q)?;
        let places: Vec<PlaceOut> = res
            .hits
            .iter()
            .filter_map(|h| ix.get(h.id).map(|r| PlaceOut::new(r, week, h.distance_m)))
            .collect();
        let next = res.next_cursor.map(|c| c.encode());
        // Serialised straight from the structs: no intermediate `Value` tree.
        let body = match format {
            Format::Json => serde_json::to_vec(&PlaceList {
                places,
                total: res.total,
                next_cursor: next,
                data_version: version,
            })
            .map(|b| (JSON, b)),
            Format::GeoJson => serde_json::to_vec(&json!({
                "type": "FeatureCollection",
                "features": places.iter().map(PlaceOut::feature).collect::<Vec<_>>(),
                "total": res.total,
                "next_cursor": next,
                "data_version": version,
            }))
            .map(|b| (GEOJSON, b)),
        };
        body.map_err(|e| ApiError::internal(&e))
    })?;
    Ok(respond(&headers, &c))
}

async fn places_get(
    State(s): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    Params::parse(raw.as_deref(), &[])?;
    let digits = id.strip_prefix('-').unwrap_or(&id);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::param(
            "id",
            format!("{id:?} is not a place id (an integer)"),
        ));
    }
    // Digits beyond i64 name no place that can exist.
    let n: i64 = id
        .parse()
        .map_err(|_| ApiError::not_found(format!("no place with id {id}")))?;
    let ix = s.index();
    let r = ix
        .get(PlaceId(n))
        .ok_or_else(|| ApiError::not_found(format!("no place with id {n}")))?;
    let week = WeekTime::from_utc(Utc::now());
    let c = get_or_build(
        &s,
        None,
        ix.data_version(),
        s.config().cache_max_age_s,
        || {
            serde_json::to_vec(&PlaceOut::new(r, week, None))
                .map(|b| (JSON, b))
                .map_err(|e| ApiError::internal(&e))
        },
    )?;
    Ok(respond(&headers, &c))
}
