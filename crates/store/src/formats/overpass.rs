//! Overpass API answers in JSON (`[out:json]`), streamed element by element.
//!
//! A node's position is its `lat`/`lon`; a way's or relation's is its `center` (`out center`),
//! else the centroid of its `geometry` (`out geom`), else of its members' geometries. Elements
//! without any position are imported without a location. Tags map as in the PBF reader
//! (`osm_tags`). An answer whose `remark` reports an error (a timeout or memory limit: Overpass
//! then returns a partial answer with status 200) is an error, not a short import.

use std::io::Read;
use std::ops::ControlFlow;

use chrono::{DateTime, Utc};
use sadomap_core::{Kind, LatLng, OsmType, Place, Source};
use serde_json::Value;

use super::json_stream::stream_array;
use super::osm_pbf::OsmStats;
use super::osm_tags::{centroid, osm_id, OsmTags};
use super::{Flow, FormatError, Position};

fn lat_lon(v: &Value) -> Option<(Option<f64>, Option<f64>)> {
    let o = v.as_object()?;
    if !o.contains_key("lat") && !o.contains_key("lon") {
        return None;
    }
    Some((
        o.get("lat").and_then(Value::as_f64),
        o.get("lon").and_then(Value::as_f64),
    ))
}

fn geometry_points(v: Option<&Value>, out: &mut Vec<(f64, f64)>) {
    if let Some(arr) = v.and_then(Value::as_array) {
        let ring: Vec<(f64, f64)> = arr
            .iter()
            .filter_map(|p| match lat_lon(p) {
                Some((Some(a), Some(b))) => Some((a, b)),
                _ => None,
            })
            .collect();
        let n = ring.len();
        let ring = if n > 2 && ring[0] == ring[n - 1] {
            &ring[..n - 1]
        } else {
            &ring[..]
        };
        out.extend_from_slice(ring);
    }
}

fn element(
    file: &str,
    i: usize,
    v: &Value,
    only: Option<Kind>,
    now: DateTime<Utc>,
    stats: &mut OsmStats,
) -> Result<Option<Place>, FormatError> {
    let at = Position::Element(i);
    let bad = |field: &str, value: &Value, problem: &str| {
        FormatError::value(file, at, field, &value.to_string(), problem)
    };
    let Some(obj) = v.as_object() else {
        return Err(bad(
            "element",
            v,
            "is not an object; expected {\"type\":…,\"id\":…}",
        ));
    };
    let tags: Vec<(&str, &str)> = match obj.get("tags") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(t)) => t
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v)))
            .collect(),
        Some(other) => return Err(bad("tags", other, "is not an object of strings")),
    };
    let tags = OsmTags::collect(tags);
    if tags.kind(only).is_none() {
        return Ok(None);
    }
    let ty = obj.get("type").unwrap_or(&Value::Null);
    let kind = match ty.as_str() {
        Some("node") => OsmType::Node,
        Some("way") => OsmType::Way,
        Some("relation") => OsmType::Relation,
        _ => return Err(bad("type", ty, "is not node, way or relation")),
    };
    let idv = obj.get("id").unwrap_or(&Value::Null);
    let id = idv
        .as_i64()
        .ok_or_else(|| bad("id", idv, "is not an integer OSM id"))?;
    let id = osm_id(kind, id);
    let mut points = Vec::new();
    let pair = lat_lon(v).or_else(|| obj.get("center").and_then(lat_lon));
    match pair {
        Some((Some(lat), Some(lng))) => points.push((lat, lng)),
        Some(_) => {
            return Err(bad(
                "lat/lon",
                v.get("center").unwrap_or(v),
                "is not a pair of numbers",
            ))
        }
        None => {
            geometry_points(obj.get("geometry"), &mut points);
            if points.is_empty() {
                if let Some(members) = obj.get("members").and_then(Value::as_array) {
                    for m in members {
                        geometry_points(m.get("geometry"), &mut points);
                        if let Some((Some(a), Some(b))) = lat_lon(m) {
                            points.push((a, b));
                        }
                    }
                }
            }
        }
    }
    let location = match centroid(&points) {
        Some((lat, lng)) => {
            Some(
                LatLng::new(lat, lng).map_err(|source| FormatError::Coordinates {
                    file: file.to_owned(),
                    at,
                    source,
                })?,
            )
        }
        None => None,
    };
    let place = tags.to_place(id, location, Source::Overpass, now);
    if place.is_some() {
        stats.count(
            tags.amenity.as_deref().unwrap_or(""),
            kind,
            location.is_some(),
        );
    }
    Ok(place)
}

/// Reads an Overpass JSON answer, calling `sink` with each mapped place or problem in element
/// order. `only` keeps one kind. Places are stamped with [`Source::Overpass`] at `now`.
pub fn read_overpass<R: Read>(
    r: R,
    file: &str,
    only: Option<Kind>,
    now: DateTime<Utc>,
    sink: &mut dyn FnMut(Result<Place, FormatError>) -> Flow,
) -> Result<OsmStats, FormatError> {
    let mut stats = OsmStats::default();
    let top = stream_array(r, file, "elements", &mut |i, v| {
        Ok(match element(file, i, &v, only, now, &mut stats) {
            Ok(Some(p)) => sink(Ok(p)),
            Ok(None) => ControlFlow::Continue(()),
            Err(e) => sink(Err(e)),
        })
    })?;
    if let Some(remark) = top.get("remark") {
        if remark.contains("error") {
            return Err(FormatError::Syntax {
                file: file.to_owned(),
                at: Position::File,
                message: format!("Overpass reported {remark:?}; the answer is partial, rerun the query with a larger timeout or a smaller area"),
            });
        }
    }
    if !top.found_array {
        return Err(FormatError::Syntax {
            file: file.to_owned(),
            at: Position::File,
            message: "no \"elements\" array; expected an Overpass [out:json] answer".into(),
        });
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(
        s: &str,
    ) -> (
        Vec<Result<Place, FormatError>>,
        Result<OsmStats, FormatError>,
    ) {
        let mut out = Vec::new();
        let now = DateTime::from_timestamp(0, 0).unwrap_or_default();
        let r = read_overpass(s.as_bytes(), "o.json", None, now, &mut |p| {
            out.push(p);
            ControlFlow::Continue(())
        });
        (out, r)
    }

    #[test]
    fn nodes_centers_and_geometry() {
        let (out, stats) = read(
            r#"{"version":0.6,"elements":[
              {"type":"node","id":1,"lat":38.0,"lon":138.4,"tags":{"amenity":"cafe","name":"喫茶"}},
              {"type":"way","id":2,"center":{"lat":38.1,"lon":138.5},"tags":{"amenity":"parking"}},
              {"type":"way","id":3,"geometry":[{"lat":0,"lon":0},{"lat":0,"lon":2},{"lat":2,"lon":2},{"lat":2,"lon":0},{"lat":0,"lon":0}],"tags":{"amenity":"toilets"}},
              {"type":"node","id":4,"lat":1,"lon":1,"tags":{"amenity":"bench"}},
              {"type":"node","id":5,"lat":1,"lon":1}
            ]}"#,
        );
        let places: Vec<Place> = out.into_iter().collect::<Result<_, _>>().unwrap();
        assert_eq!(places.len(), 3);
        assert_eq!(places[0].ids.source_key, "overpass:n1");
        let loc = places[2].location.unwrap();
        assert_eq!((loc.lat(), loc.lng()), (1.0, 1.0));
        let stats = stats.unwrap();
        assert_eq!(stats.amenity_counts.get("parking/way"), Some(&1));
    }

    #[test]
    fn bad_coordinates_and_remarks_are_errors() {
        let (out, _) = read(
            r#"{"elements":[{"type":"node","id":1,"lat":95,"lon":1,"tags":{"amenity":"cafe"}}]}"#,
        );
        let e = out[0].as_ref().unwrap_err().to_string();
        assert!(
            e.contains("element #0") && e.contains("out of range"),
            "{e}"
        );
        let (_, r) = read(r#"{"elements":[],"remark":"runtime error: Query timed out"}"#);
        assert!(r.unwrap_err().to_string().contains("timed out"));
        let (_, r) = read(r#"{"version":0.6}"#);
        assert!(r.is_err());
    }
}
