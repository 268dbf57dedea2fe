//! What the API sends for a place: a flat JSON object made for maps and clients (not the
//! store's record format), and its GeoJSON Feature form.

use chrono::{DateTime, SecondsFormat, Utc};
use sadomap_core::{day_text, Locality, PlaceRecord, WeekTime, Weekday};
use serde::Serialize;
use serde_json::{json, Map, Value};

/// One place as the API shows it. Every key is always present (null when unknown), so the
/// OpenAPI schema can require them all.
#[derive(Debug, Serialize)]
pub(crate) struct PlaceOut<'a> {
    id: i64,
    kind: &'static str,
    name: &'a str,
    name_kana: Option<&'a str>,
    name_en: Option<&'a str>,
    address: Option<&'a str>,
    postal_code: Option<&'a str>,
    location: Option<LatLngOut>,
    locality: &'static str,
    district: Option<&'a str>,
    town: Option<&'a str>,
    cuisine: Option<&'static str>,
    cuisine_label_ja: Option<&'static str>,
    marker_group: Option<&'static str>,
    price_level: Option<u8>,
    price_label_ja: Option<&'static str>,
    rating: Option<f64>,
    rating_count: Option<u32>,
    status: &'static str,
    open_now: Option<bool>,
    hours: Option<HoursOut<'a>>,
    phone: Option<&'a str>,
    website: Option<&'a str>,
    description: Option<&'a str>,
    features: Vec<&'static str>,
    google_place_id: Option<&'a str>,
    google_maps_url: Option<String>,
    sources: Vec<&'static str>,
    updated_at: String,
    demo: bool,
    distance_m: Option<f64>,
}

#[derive(Debug, Serialize)]
struct LatLngOut {
    lat: f64,
    lng: f64,
}

#[derive(Debug, Serialize)]
struct HoursOut<'a> {
    /// `"mon 11:00-14:00"`, `"fri 18:00-sat 02:00"`, `"sun 00:00-"` (around the clock).
    periods: Vec<String>,
    /// Monday first: `{"day": 1, "label_ja": "月曜日", "text": "11:00～14:00"}`.
    week: Vec<DayOut>,
    notes: &'a [String],
}

#[derive(Debug, Serialize)]
struct DayOut {
    day: u8,
    label_ja: &'static str,
    label_en: &'static str,
    text: String,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl<'a> PlaceOut<'a> {
    /// The API form of `r`; `now` decides `open_now`, `distance_m` comes from the query.
    pub fn new(r: &'a PlaceRecord, now: WeekTime, distance_m: Option<f64>) -> PlaceOut<'a> {
        let p = &r.place;
        let mut sources: Vec<&'static str> = p
            .provenance
            .iter()
            .map(|(_, pr)| pr.source.as_str())
            .collect();
        sources.sort_unstable();
        sources.dedup();
        let place_id = p.ids.google_place_id.as_ref().map(|g| g.as_str());
        PlaceOut {
            id: r.id.0,
            kind: p.kind.as_str(),
            name: &p.names.ja,
            name_kana: p.names.kana.as_deref(),
            name_en: p.names.en.as_deref(),
            address: p.address.as_deref(),
            postal_code: p.postal_code.as_deref(),
            location: p.location.map(|l| LatLngOut {
                lat: l.lat(),
                lng: l.lng(),
            }),
            locality: match p.locality {
                Locality::District(_) => "district",
                Locality::Unknown => "unknown",
                Locality::Outside => "outside",
            },
            district: p.locality.district(),
            town: p.town.as_deref(),
            cuisine: p.cuisine.map(|c| c.as_str()),
            cuisine_label_ja: p.cuisine.map(|c| c.label_ja()),
            marker_group: p.cuisine.map(|c| c.group().as_str()),
            price_level: p.price.map(|x| x.rank()),
            price_label_ja: p.price.map(|x| x.label_ja()),
            // f32 stars printed as f64 would show float noise (3.299999952316284).
            rating: p
                .rating
                .map(|x| (f64::from(x.stars) * 100.0).round() / 100.0),
            rating_count: p.rating.map(|x| x.count),
            status: p.status.as_str(),
            open_now: p.hours.as_ref().map(|h| h.is_open_at(now)),
            hours: p.hours.as_ref().map(|h| HoursOut {
                periods: h.periods.iter().map(|x| x.to_string()).collect(),
                week: [1u8, 2, 3, 4, 5, 6, 0]
                    .into_iter()
                    .filter_map(Weekday::new)
                    .map(|d| DayOut {
                        day: d.number(),
                        label_ja: d.label_ja(),
                        label_en: d.label_en(),
                        text: day_text(h, d),
                    })
                    .collect(),
                notes: &h.notes,
            }),
            phone: p.phone.as_deref(),
            website: p.website.as_deref(),
            description: p.description.as_deref(),
            features: p.features.present().iter().map(|f| f.as_str()).collect(),
            google_place_id: place_id,
            google_maps_url: place_id.map(|id| {
                format!(
                    "https://www.google.com/maps/search/?api=1&query={}&query_place_id={id}",
                    url_escape(&p.names.ja)
                )
            }),
            sources,
            updated_at: rfc3339(r.updated_at),
            demo: p.is_demo(),
            distance_m: distance_m.map(PlaceOut::round_distance),
        }
    }

    /// A distance as the API shows it: metres to one decimal.
    pub fn round_distance(d: f64) -> f64 {
        (d * 10.0).round() / 10.0
    }

    /// Sets `open_now` to null (for prerendering, where it is filled in per request).
    pub fn clear_open_now(&mut self) {
        self.open_now = None;
    }

    /// The GeoJSON Feature of this place: Point geometry (null without coordinates), every
    /// other key in `properties`.
    pub fn feature(&self) -> Value {
        let geometry = match &self.location {
            Some(l) => json!({"type": "Point", "coordinates": [l.lng, l.lat]}),
            None => Value::Null,
        };
        let mut props = match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        props.remove("location");
        json!({"type": "Feature", "id": self.id, "geometry": geometry, "properties": props})
    }
}

/// Percent-encodes everything but unreserved characters (for a URL query value).
fn url_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sadomap_core::{demo_place, prepare, PlaceId, Region};

    #[test]
    fn every_key_is_present_and_geojson_moves_location_to_geometry() {
        let mut p = demo_place(Region::sado(), 1, 3);
        prepare(&mut p, Region::sado()).unwrap();
        let t = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let r = PlaceRecord {
            id: PlaceId(7),
            place: p,
            created_at: t,
            updated_at: t,
            details_checked_at: None,
            id_checked_at: None,
        };
        let now = WeekTime::from_utc(t);
        let v = serde_json::to_value(PlaceOut::new(&r, now, Some(12.34))).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["distance_m"], 12.3);
        assert_eq!(v["demo"], true);
        assert_eq!(v["updated_at"], "2027-01-15T08:00:00Z");
        assert!(v.as_object().unwrap().contains_key("phone"));
        let f = PlaceOut::new(&r, now, None).feature();
        assert_eq!(f["geometry"]["type"], "Point");
        assert!(f["properties"].get("location").is_none());
        assert_eq!(url_escape("a b/鮨"), "a%20b%2F%E9%AE%A8");
    }
}
