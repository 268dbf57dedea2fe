//! GeoJSON (RFC 7946): a FeatureCollection of places.
//!
//! Export writes one Point feature per place (`[lng, lat]`; `null` geometry when the place has no
//! location) with flat properties: `id`, `kind`, `name`, `name_en`, `name_kana`, `cuisine`,
//! `cuisine_ja`, `marker_group`, `price`, `price_range`, `locality`, `district`, `address`,
//! `postal_code`, `status`, `hours` (the sheets' text form), `opening_hours` (structured),
//! `features` and `features_absent` (machine names), `rating`, `rating_count`, `phone`,
//! `website`, `description`, `ids`, `source`, `updated_at` (RFC 3339, UTC).
//!
//! Import reads the same properties (all optional except a name; `kind` may come from the
//! caller), and Point, MultiPoint, Polygon and MultiPolygon geometries (the last three by the
//! centroid of their points, polygon holes ignored). Every position is checked; a bad one names
//! the feature index.

use std::io::{Read, Write};

use chrono::{DateTime, Utc};
use sadomap_core::{
    BusinessStatus, Cid, Cuisine, ExternalIds, Feature, Field, GooglePlaceId, Kind, LatLng,
    Locality, OpeningHours, OsmId, Place, PriceLevel, Rating, Source,
};
use serde_json::{json, Map, Value};

use super::json_stream::stream_array;
use super::osm_tags::centroid;
use super::{flush, latest_update, Flow, FormatError, Position};

/// Writes places as a GeoJSON FeatureCollection, one feature at a time.
pub struct GeoJsonWriter<W: Write> {
    out: W,
    file: String,
    first: bool,
}

impl<W: Write> GeoJsonWriter<W> {
    /// Starts the collection. `file` names the output in errors.
    pub fn new(mut out: W, file: &str) -> Result<Self, FormatError> {
        out.write_all(b"{\"type\":\"FeatureCollection\",\"features\":[\n")
            .map_err(|e| FormatError::io(file, e))?;
        Ok(GeoJsonWriter {
            out,
            file: file.to_owned(),
            first: true,
        })
    }

    /// Writes one place; its `id` property is the place's identity key.
    pub fn write(&mut self, p: &Place) -> Result<(), FormatError> {
        self.write_feature(feature(
            p,
            Value::String(p.ids.identity().to_string()),
            latest_update(p),
        ))
    }

    /// Writes one stored place; its `id` property is the store's id.
    pub fn write_record(&mut self, r: &sadomap_core::PlaceRecord) -> Result<(), FormatError> {
        self.write_feature(feature(&r.place, json!(r.id.0), Some(r.updated_at)))
    }

    fn write_feature(&mut self, f: Value) -> Result<(), FormatError> {
        if !self.first {
            self.out
                .write_all(b",\n")
                .map_err(|e| FormatError::io(&self.file, e))?;
        }
        self.first = false;
        serde_json::to_writer(&mut self.out, &f)
            .map_err(|e| FormatError::io(&self.file, std::io::Error::other(e)))
    }

    /// Closes the collection and returns the writer.
    pub fn finish(mut self) -> Result<W, FormatError> {
        self.out
            .write_all(b"\n]}\n")
            .map_err(|e| FormatError::io(&self.file, e))?;
        flush(&mut self.out, &self.file)?;
        Ok(self.out)
    }
}

fn feature(p: &Place, id: Value, updated: Option<DateTime<Utc>>) -> Value {
    let geometry = match p.location {
        Some(l) => json!({"type": "Point", "coordinates": [l.lng(), l.lat()]}),
        None => Value::Null,
    };
    let (locality, district) = match &p.locality {
        Locality::District(d) => ("district", Value::String(d.clone())),
        Locality::Unknown => ("unknown", Value::Null),
        Locality::Outside => ("outside", Value::Null),
    };
    let features: Vec<&str> = p.features.present().iter().map(Feature::as_str).collect();
    let absent: Vec<&str> = p.features.absent().iter().map(Feature::as_str).collect();
    let props = json!({
        "id": id,
        "kind": p.kind.as_str(),
        "name": p.names.ja,
        "name_en": p.names.en,
        "name_kana": p.names.kana,
        "cuisine": p.cuisine.map(Cuisine::as_str),
        "cuisine_ja": p.cuisine.map(Cuisine::label_ja),
        "marker_group": p.cuisine.map(|c| c.group().as_str()),
        "price": p.price.map(PriceLevel::as_str),
        "price_range": p.price.map(PriceLevel::yen_range),
        "locality": locality,
        "district": district,
        "address": p.address,
        "postal_code": p.postal_code,
        "status": p.status.as_str(),
        "hours": p.hours.as_ref().map(|h| h.to_sheet_text()),
        "opening_hours": p.hours,
        "features": features,
        "features_absent": absent,
        "rating": p.rating.map(|r| r.stars),
        "rating_count": p.rating.map(|r| r.count),
        "phone": p.phone,
        "website": p.website,
        "description": p.description,
        "ids": p.ids,
        "source": p.provenance.get(&Field::Names).map(|v| v.source.as_str()),
        "updated_at": updated.map(|t| t.to_rfc3339()),
    });
    json!({"type": "Feature", "geometry": geometry, "properties": props})
}

struct Ctx<'a> {
    file: &'a str,
    at: Position,
}

impl Ctx<'_> {
    fn bad(&self, field: &str, v: &Value, problem: &str) -> FormatError {
        let shown = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        FormatError::value(self.file, self.at, field, &shown, problem)
    }

    fn position(&self, v: &Value) -> Result<(f64, f64), FormatError> {
        let arr = v.as_array().filter(|a| a.len() >= 2);
        let (lng, lat) = match arr.map(|a| (a[0].as_f64(), a[1].as_f64())) {
            Some((Some(x), Some(y))) => (x, y),
            _ => return Err(self.bad("coordinates", v, "is not a position [longitude, latitude]")),
        };
        LatLng::new(lat, lng).map_err(|source| FormatError::Coordinates {
            file: self.file.to_owned(),
            at: self.at,
            source,
        })?;
        Ok((lat, lng))
    }

    fn positions(
        &self,
        v: &Value,
        depth: u8,
        out: &mut Vec<(f64, f64)>,
    ) -> Result<(), FormatError> {
        if depth == 0 {
            out.push(self.position(v)?);
            return Ok(());
        }
        let arr = v
            .as_array()
            .ok_or_else(|| self.bad("coordinates", v, "is not an array of positions"))?;
        for x in arr {
            self.positions(x, depth - 1, out)?;
        }
        Ok(())
    }

    fn location(&self, g: &Value) -> Result<Option<LatLng>, FormatError> {
        if g.is_null() {
            return Ok(None);
        }
        let ty = g.get("type").and_then(Value::as_str).unwrap_or("");
        let coords = g.get("coordinates").unwrap_or(&Value::Null);
        let mut pts = Vec::new();
        match ty {
            "Point" => pts.push(self.position(coords)?),
            "MultiPoint" => self.positions(coords, 1, &mut pts)?,
            "Polygon" => {
                let outer = coords
                    .as_array()
                    .and_then(|r| r.first())
                    .unwrap_or(&Value::Null);
                let mut ring = Vec::new();
                self.positions(outer, 1, &mut ring)?;
                pts.extend(centroid(&ring));
            }
            "MultiPolygon" => {
                let polys = coords.as_array().ok_or_else(|| {
                    self.bad("coordinates", coords, "is not an array of polygons")
                })?;
                for poly in polys {
                    let outer = poly
                        .as_array()
                        .and_then(|r| r.first())
                        .unwrap_or(&Value::Null);
                    let mut ring = Vec::new();
                    self.positions(outer, 1, &mut ring)?;
                    let n = ring.len();
                    if n > 2 && ring[0] == ring[n - 1] {
                        ring.pop();
                    }
                    pts.extend(ring);
                }
            }
            other => {
                return Err(self.bad(
                    "geometry.type",
                    &Value::String(other.to_owned()),
                    "is not supported; use Point, MultiPoint, Polygon or MultiPolygon",
                ))
            }
        }
        match centroid(&pts) {
            Some((lat, lng)) => Ok(Some(LatLng::new(lat, lng).map_err(|source| {
                FormatError::Coordinates {
                    file: self.file.to_owned(),
                    at: self.at,
                    source,
                }
            })?)),
            None => Err(self.bad("coordinates", coords, "holds no position")),
        }
    }
}

fn text(props: &Map<String, Value>, key: &str) -> Option<String> {
    props
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn feature_to_place(
    file: &str,
    index: usize,
    f: &Value,
    kind: Option<Kind>,
    now: DateTime<Utc>,
) -> Result<Place, FormatError> {
    let c = Ctx {
        file,
        at: Position::Feature(index),
    };
    if f.get("type").and_then(Value::as_str) != Some("Feature") {
        return Err(c.bad(
            "type",
            f.get("type").unwrap_or(&Value::Null),
            "is not \"Feature\"",
        ));
    }
    let empty = Map::new();
    let props = match f.get("properties") {
        Some(Value::Object(m)) => m,
        None | Some(Value::Null) => &empty,
        Some(other) => return Err(c.bad("properties", other, "is not an object")),
    };
    let location = c.location(f.get("geometry").unwrap_or(&Value::Null))?;
    let kind = match props.get("kind") {
        Some(Value::String(s)) => Kind::parse(s).ok_or_else(|| {
            c.bad(
                "kind",
                &props["kind"],
                "is not a kind; write restaurant, parking or toilet",
            )
        })?,
        _ => kind.ok_or_else(|| {
            c.bad(
                "kind",
                &Value::Null,
                "is missing; add a kind property or pass the kind",
            )
        })?,
    };
    let name = text(props, "name")
        .or_else(|| text(props, "name:ja"))
        .unwrap_or_default();
    let mut p = Place::new(kind, name, "");
    p.location = location;
    p.names.en = text(props, "name_en").or_else(|| text(props, "name:en"));
    p.names.kana = text(props, "name_kana");
    if let Some(s) = text(props, "cuisine") {
        p.cuisine = Some(Cuisine::parse(&s).ok_or_else(|| {
            c.bad(
                "cuisine",
                &props["cuisine"],
                "is not one of the 18 cuisines (e.g. sushi or 寿司)",
            )
        })?);
    }
    if let Some(s) = text(props, "price") {
        p.price = Some(PriceLevel::parse(&s).ok_or_else(|| {
            c.bad(
                "price",
                &props["price"],
                "is not a price level (inexpensive … very_expensive)",
            )
        })?);
    }
    if let Some(s) = text(props, "status") {
        p.status = BusinessStatus::parse(&s).ok_or_else(|| {
            c.bad(
                "status",
                &props["status"],
                "is not a status (operational, temporarily_closed, permanently_closed, unknown)",
            )
        })?;
    }
    p.locality = match (text(props, "locality").as_deref(), text(props, "district")) {
        (Some("outside"), _) => Locality::Outside,
        (_, Some(d)) => Locality::District(d),
        _ => Locality::Unknown,
    };
    p.address = text(props, "address");
    p.postal_code = text(props, "postal_code");
    p.phone = text(props, "phone");
    p.website = text(props, "website");
    p.description = text(props, "description");
    p.hours = match (props.get("opening_hours"), text(props, "hours")) {
        (Some(v), _) if !v.is_null() => Some(
            serde_json::from_value::<OpeningHours>(v.clone()).map_err(|e| {
                c.bad(
                    "opening_hours",
                    v,
                    &format!("is not valid opening hours: {e}"),
                )
            })?,
        ),
        (_, Some(s)) => Some(OpeningHours::from_sheet_text(&s).map_err(|e| {
            c.bad(
                "hours",
                &props["hours"],
                &format!("is not opening hours text ({e})"),
            )
        })?),
        _ => None,
    };
    for (key, present) in [("features", true), ("features_absent", false)] {
        match props.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for item in items {
                    let f = item.as_str().and_then(Feature::parse).ok_or_else(|| {
                        c.bad(
                            key,
                            item,
                            "is not a feature name (e.g. takeout or テイクアウト)",
                        )
                    })?;
                    p.features.set(f, present);
                }
            }
            Some(other) => return Err(c.bad(key, other, "is not an array of feature names")),
        }
    }
    if let Some(v) = props.get("rating").filter(|v| !v.is_null()) {
        let stars = v
            .as_f64()
            .filter(|s| (0.0..=5.0).contains(s))
            .ok_or_else(|| c.bad("rating", v, "is not a number from 0 to 5"))?;
        let count = match props.get("rating_count") {
            None | Some(Value::Null) => 0,
            Some(n) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| c.bad("rating_count", n, "is not a whole number"))?,
        };
        p.rating = Some(Rating {
            stars: stars as f32,
            count,
        });
    }
    p.ids = match props.get("ids") {
        Some(v @ Value::Object(_)) => {
            let mut v = v.clone();
            if v.get("source_key").is_none() {
                v["source_key"] = Value::String(String::new());
            }
            serde_json::from_value::<ExternalIds>(v)
                .map_err(|e| c.bad("ids", &props["ids"], &format!("are not valid ids: {e}")))?
        }
        _ => ExternalIds::default(),
    };
    if let Some(s) = text(props, "place_id") {
        p.ids.google_place_id =
            Some(GooglePlaceId::new(&s).map_err(|m| c.bad("place_id", &props["place_id"], &m))?);
    }
    if let Some(s) = text(props, "osm_id") {
        p.ids.osm = Some(
            s.parse::<OsmId>()
                .map_err(|m| c.bad("osm_id", &props["osm_id"], &m))?,
        );
    }
    if let Some(n) = props.get("cid").and_then(Value::as_u64) {
        p.ids.cid = Some(Cid(n));
    }
    if p.ids.source_key.is_empty() {
        let src = Source::GeoJson.as_str();
        p.ids.source_key = match (&p.ids.google_place_id, &p.ids.osm) {
            (Some(id), _) => format!("{src}:{id}"),
            (None, Some(o)) => format!("{src}:{o}"),
            (None, None) => format!("{src}:{file}:{index}"),
        };
    }
    let at = match text(props, "updated_at") {
        Some(s) => DateTime::parse_from_rfc3339(&s)
            .map_err(|_| {
                c.bad(
                    "updated_at",
                    &props["updated_at"],
                    "is not an RFC 3339 time such as 2025-11-23T00:00:00Z",
                )
            })?
            .with_timezone(&Utc),
        None => now,
    };
    p.stamp_all(Source::GeoJson, at);
    Ok(p)
}

/// Reads a GeoJSON FeatureCollection, calling `sink` with each feature's place or problem.
/// `kind` is used for features without a `kind` property. Places are stamped with
/// [`Source::GeoJson`] at their `updated_at`, else `now`.
pub fn read_geojson<R: Read>(
    r: R,
    file: &str,
    kind: Option<Kind>,
    now: DateTime<Utc>,
    sink: &mut dyn FnMut(Result<Place, FormatError>) -> Flow,
) -> Result<(), FormatError> {
    let top = stream_array(r, file, "features", &mut |i, v| {
        Ok(sink(feature_to_place(file, i, &v, kind, now)))
    })?;
    match top.get("type") {
        Some("FeatureCollection") if top.found_array => Ok(()),
        Some("FeatureCollection") | None if !top.found_array => Err(FormatError::Syntax {
            file: file.to_owned(),
            at: Position::File,
            message: "no \"features\" array; expected a GeoJSON FeatureCollection".into(),
        }),
        other => Err(FormatError::Syntax {
            file: file.to_owned(),
            at: Position::File,
            message: format!(
                "the top-level type is {other:?}, not \"FeatureCollection\"; wrap features in a FeatureCollection"
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ops::ControlFlow;

    fn read(
        s: &str,
        kind: Option<Kind>,
    ) -> (Vec<Result<Place, FormatError>>, Result<(), FormatError>) {
        let mut out = Vec::new();
        let now = DateTime::from_timestamp(0, 0).unwrap_or_default();
        let r = read_geojson(s.as_bytes(), "g.geojson", kind, now, &mut |p| {
            out.push(p);
            ControlFlow::Continue(())
        });
        (out, r)
    }

    #[test]
    fn point_and_polygon_features() {
        let (out, r) = read(
            r#"{"type":"FeatureCollection","features":[
              {"type":"Feature","geometry":{"type":"Point","coordinates":[138.4,38.0]},"properties":{"name":"a","kind":"toilet","features":["washlet"]}},
              {"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[0,0],[2,0],[2,2],[0,2],[0,0]]]},"properties":{"name":"b"}}
            ]}"#,
            Some(Kind::Parking),
        );
        r.unwrap();
        let places: Vec<Place> = out.into_iter().collect::<Result<_, _>>().unwrap();
        assert_eq!(places[0].location.map(|l| l.lng()), Some(138.4));
        assert_eq!(places[0].features.get(Feature::Washlet), Some(true));
        assert_eq!(places[1].kind, Kind::Parking);
        assert_eq!(
            places[1].location.map(|l| (l.lat(), l.lng())),
            Some((1.0, 1.0))
        );
        assert_eq!(places[1].ids.source_key, "geojson:g.geojson:1");
    }

    #[test]
    fn bad_coordinates_name_the_feature() {
        let (out, _) = read(
            r#"{"type":"FeatureCollection","features":[
              {"type":"Feature","geometry":{"type":"Point","coordinates":[1,2]},"properties":{"name":"ok","kind":"toilet"}},
              {"type":"Feature","geometry":{"type":"Point","coordinates":[200,2]},"properties":{"name":"x","kind":"toilet"}}
            ]}"#,
            None,
        );
        let e = out[1].as_ref().unwrap_err().to_string();
        assert!(
            e.contains("feature #1") && e.contains("out of range"),
            "{e}"
        );
        let (_, r) = read(r#"{"type":"Feature","geometry":null}"#, None);
        assert!(r.is_err());
    }
}
