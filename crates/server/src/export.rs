//! Exports of the whole index: `GET /v1/export.geojson` and `GET /v1/export/{kind}.csv` (the
//! original sheet layouts, one per kind).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use sadomap_core::Kind;
use sadomap_store::{GeoJsonWriter, Index, SheetCsvWriter, SheetLayout};

use crate::cache::{get_or_build, respond};
use crate::error::ApiError;
use crate::params::Params;
use crate::places::GEOJSON;
use crate::state::AppState;

/// Exports of indexes larger than this are built per request rather than held in the cache.
const CACHE_PLACES: usize = 50_000;

/// The export routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/export.geojson", get(export_geojson))
        .route("/v1/export/{file}", get(export_csv))
}

fn geojson(ix: &Index) -> Result<Vec<u8>, ApiError> {
    let mut w =
        GeoJsonWriter::new(Vec::new(), "export.geojson").map_err(|e| ApiError::internal(&e))?;
    for r in ix.records() {
        w.write_record(r).map_err(|e| ApiError::internal(&e))?;
    }
    w.finish().map_err(|e| ApiError::internal(&e))
}

fn csv(ix: &Index, kind: Kind) -> Result<Vec<u8>, ApiError> {
    let mut w = SheetCsvWriter::new(Vec::new(), SheetLayout::for_kind(kind), "export.csv")
        .map_err(|e| ApiError::internal(&e))?;
    for r in ix.records().iter().filter(|r| r.place.kind == kind) {
        w.write(&r.place).map_err(|e| ApiError::internal(&e))?;
    }
    w.finish().map_err(|e| ApiError::internal(&e))
}

/// Builds (off the async threads) or fetches an export and answers it as an attachment.
async fn export(
    s: AppState,
    headers: HeaderMap,
    name: String,
    ctype: &'static str,
    build: impl FnOnce(&Index) -> Result<Vec<u8>, ApiError> + Send + 'static,
) -> Result<Response, ApiError> {
    let ix = s.index();
    let key = (ix.len() <= CACHE_PLACES).then(|| format!("export {name}"));
    let version = ix.data_version();
    let state = s.clone();
    let c = tokio::task::spawn_blocking(move || {
        get_or_build(&state, key, version, state.config().cache_max_age_s, || {
            build(&ix).map(|b| (ctype, b))
        })
    })
    .await
    .map_err(|e| ApiError::internal(&e))??;
    let mut r = respond(&headers, &Arc::clone(&c));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"sadomap-{name}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

async fn export_geojson(
    State(s): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    Params::parse(raw.as_deref(), &[])?;
    export(s, headers, "places.geojson".into(), GEOJSON, geojson).await
}

async fn export_csv(
    State(s): State<AppState>,
    Path(file): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let kind = file
        .strip_suffix(".csv")
        .and_then(|k| Kind::ALL.into_iter().find(|x| x.as_str() == k))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no export {file:?}; try restaurant.csv, parking.csv or toilet.csv"
            ))
        })?;
    Params::parse(raw.as_deref(), &[])?;
    export(
        s,
        headers,
        format!("{}.csv", kind.as_str()),
        "text/csv; charset=utf-8",
        move |ix| csv(ix, kind),
    )
    .await
}
