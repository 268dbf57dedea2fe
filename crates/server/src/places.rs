//! `GET /v1/places` (filters, sort, paging; JSON or GeoJSON) and `GET /v1/places/{id}`.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use sadomap_core::{PlaceId, WeekTime};
use sadomap_store::{Hit, Index};
#[cfg(test)]
use serde::Serialize;
use serde_json::json;

use crate::cache::{get_or_build, respond};
use crate::dto::PlaceOut;
use crate::error::ApiError;
use crate::fragments::Fragments;
use crate::params::{places_query, Format, Params};
use crate::state::AppState;

/// The place routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/places", get(places_list))
        .route("/v1/places/{id}", get(places_get))
}

/// A page of places in the JSON form (the test checks [`json_page`] against it).
#[cfg(test)]
#[derive(Serialize)]
struct PlaceList<'a> {
    places: Vec<PlaceOut<'a>>,
    total: Option<usize>,
    next_cursor: Option<String>,
    data_version: u64,
}

/// The JSON page of `hits`, byte for byte what serialising a `PlaceList` gives: each place
/// spliced from `frags` when it holds it, else serialised.
fn json_page(
    ix: &Index,
    frags: Option<&Fragments>,
    hits: &[Hit],
    week: WeekTime,
    total: Option<usize>,
    next_cursor: Option<&str>,
    version: u64,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut b = Vec::with_capacity(64 + hits.len() * 1400);
    b.extend_from_slice(b"{\"places\":[");
    let mut first = true;
    for h in hits {
        let Ok(row) = ix.records().binary_search_by_key(&h.id, |r| r.id) else {
            continue;
        };
        if !first {
            b.push(b',');
        }
        first = false;
        let r = &ix.records()[row];
        match frags {
            Some(f) => f.write(&mut b, row, r, week, h.distance_m)?,
            None => serde_json::to_writer(&mut b, &PlaceOut::new(r, week, h.distance_m))?,
        }
    }
    b.extend_from_slice(b"],\"total\":");
    serde_json::to_writer(&mut b, &total)?;
    b.extend_from_slice(b",\"next_cursor\":");
    serde_json::to_writer(&mut b, &next_cursor)?;
    b.extend_from_slice(b",\"data_version\":");
    serde_json::to_writer(&mut b, &version)?;
    b.push(b'}');
    Ok(b)
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
    // `open_now` in every place depends on the minute, so the minute is part of the key. Near
    // queries are not cached: each point is its own key, so they almost never repeat, and
    // storing them only evicted bodies that do (and cost memory); they build fast anyway.
    let key = q
        .near
        .is_none()
        .then(|| format!("places {format:?} {week:?} {q:?}"));
    let c = get_or_build(&s, key, version, s.config().cache_max_age_s, || {
        let res = ix.query(&q)?;
        let next = res.next_cursor.map(|c| c.encode());
        let body = match format {
            Format::Json => {
                let frags = s.fragments();
                // Fragments of another version (for the moment of a swap) are not used.
                let frags = (frags.version() == version).then_some(&*frags);
                json_page(
                    &ix,
                    frags,
                    &res.hits,
                    week,
                    res.total,
                    next.as_deref(),
                    version,
                )
                .map(|b| (JSON, b))
            }
            Format::GeoJson => {
                let places: Vec<PlaceOut> = res
                    .hits
                    .iter()
                    .filter_map(|h| ix.get(h.id).map(|r| PlaceOut::new(r, week, h.distance_m)))
                    .collect();
                serde_json::to_vec(&json!({
                    "type": "FeatureCollection",
                    "features": places.iter().map(PlaceOut::feature).collect::<Vec<_>>(),
                    "total": res.total,
                    "next_cursor": next,
                    "data_version": version,
                }))
                .map(|b| (GEOJSON, b))
            }
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
    let row = ix
        .records()
        .binary_search_by_key(&PlaceId(n), |r| r.id)
        .map_err(|_| ApiError::not_found(format!("no place with id {n}")))?;
    let r = &ix.records()[row];
    let week = WeekTime::from_utc(Utc::now());
    let frags = s.fragments();
    let c = get_or_build(
        &s,
        None,
        ix.data_version(),
        s.config().cache_max_age_s,
        || {
            let mut b = Vec::with_capacity(1500);
            let done = if frags.version() == ix.data_version() {
                frags.write(&mut b, row, r, week, None)
            } else {
                serde_json::to_writer(&mut b, &PlaceOut::new(r, week, None))
            };
            done.map(|()| (JSON, b)).map_err(|e| ApiError::internal(&e))
        },
    )?;
    Ok(respond(&headers, &c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use sadomap_core::{demo_places, prepare, LatLng, PlaceRecord, Region};
    use sadomap_store::{Query, Sort};

    #[test]
    fn a_spliced_page_equals_the_struct_serialisation() {
        let t = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let records = demo_places(Region::sado(), 300, 8)
            .enumerate()
            .map(|(i, mut p)| {
                prepare(&mut p, Region::sado()).unwrap();
                PlaceRecord {
                    id: PlaceId(i as i64 * 3 + 1),
                    place: p,
                    created_at: t,
                    updated_at: t,
                    details_checked_at: None,
                    id_checked_at: None,
                }
            })
            .collect();
        let ix = Index::build(records, Region::sado(), 9);
        let week = WeekTime::from_utc(t);
        let q = Query {
            near: Some((LatLng::new(38.02, 138.36).unwrap(), None)),
            sort: Sort::Distance,
            limit: 20,
            with_total: true,
            ..Query::default()
        };
        let res = ix.query(&q).unwrap();
        let next = res.next_cursor.map(|c| c.encode());
        let want = serde_json::to_vec(&PlaceList {
            places: res
                .hits
                .iter()
                .filter_map(|h| ix.get(h.id).map(|r| PlaceOut::new(r, week, h.distance_m)))
                .collect(),
            total: res.total,
            next_cursor: next.clone(),
            data_version: 9,
        })
        .unwrap();
        // All prerendered, some, none.
        for budget in [usize::MAX, 40_000, 0] {
            let f = Fragments::build(&ix, budget);
            for frags in [Some(&f), None] {
                let got =
                    json_page(&ix, frags, &res.hits, week, res.total, next.as_deref(), 9).unwrap();
                assert_eq!(
                    String::from_utf8(got).unwrap(),
                    String::from_utf8(want.clone()).unwrap()
                );
            }
        }
    }
}
