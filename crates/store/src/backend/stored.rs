//! The JSON stored form of a place (PostgreSQL keeps it as `jsonb`; SQLite packs places, see
//! `packed`, and reads this form in rows written by earlier versions): two JSON texts.
//!
//! - `data`: the place as `serde_json` writes [`Place`], without its `provenance` key (so it
//!   deserialises as a `Place` with no provenance);
//! - `provenance`: the provenance grouped by (source, time), e.g.
//!   `[{"source":"csv","fetched_at":"2023-11-14T22:13:20Z","fields":["kind","names"]}]`.
//!
//! The provenance is `ProvenanceMap`'s own grouped serialisation: a place stamped by one import
//! repeats the same provenance for every field, and writing it once per group halves the size.

use sadomap_core::{
    BusinessStatus, Cuisine, ExternalIds, Features, Kind, LatLng, Locality, Names, OpeningHours,
    Place, PriceLevel, ProvenanceMap, QualityFlag, Rating,
};
use serde::Serialize;

use super::StoreError;

/// A borrowed view of every field of a place but its provenance.
#[derive(Serialize)]
struct PlaceData<'a> {
    kind: &'a Kind,
    names: &'a Names,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    postal_code: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: &'a Option<LatLng>,
    locality: &'a Locality,
    #[serde(skip_serializing_if = "Option::is_none")]
    town: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cuisine: &'a Option<Cuisine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    price: &'a Option<PriceLevel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rating: &'a Option<Rating>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hours: &'a Option<OpeningHours>,
    status: &'a BusinessStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    website: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: &'a Option<String>,
    features: &'a Features,
    ids: &'a ExternalIds,
    #[serde(skip_serializing_if = "<[QualityFlag]>::is_empty")]
    quality: &'a [QualityFlag],
}

impl<'a> PlaceData<'a> {
    fn new(p: &'a Place) -> PlaceData<'a> {
        // Exhaustive on purpose: a new field of `Place` must be added here (compile error).
        let Place {
            kind,
            names,
            address,
            postal_code,
            location,
            locality,
            town,
            cuisine,
            price,
            rating,
            hours,
            status,
            phone,
            website,
            description,
            features,
            ids,
            provenance: _,
            quality,
        } = p;
        PlaceData {
            kind,
            names,
            address,
            postal_code,
            location,
            locality,
            town,
            cuisine,
            price,
            rating,
            hours,
            status,
            phone,
            website,
            description,
            features,
            ids,
            quality,
        }
    }
}

fn serialize_err(p: &Place) -> impl FnOnce(serde_json::Error) -> StoreError + '_ {
    move |source| StoreError::Serialize {
        what: format!("place {:?} ({})", p.names.ja, p.ids.source_key),
        source,
    }
}

/// The `data` and `provenance` texts of a place.
pub(crate) fn encode(p: &Place) -> Result<(String, String), StoreError> {
    let data = serde_json::to_string(&PlaceData::new(p)).map_err(serialize_err(p))?;
    let provenance = serde_json::to_string(&p.provenance).map_err(serialize_err(p))?;
    Ok((data, provenance))
}

/// The place of record `id` from its stored texts.
pub(crate) fn decode(id: i64, data: &str, provenance: &str) -> Result<Place, StoreError> {
    let mut place: Place = serde_json::from_str(data)
        .map_err(|e| StoreError::corrupt(id, format!("place JSON: {e}")))?;
    place.provenance = serde_json::from_str::<ProvenanceMap>(provenance)
        .map_err(|e| StoreError::corrupt(id, format!("provenance JSON: {e}")))?;
    Ok(place)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::DateTime;
    use sadomap_core::{Cid, Feature, Field, GooglePlaceId, Provenance, Source};

    pub(crate) fn full() -> Place {
        let mut p = Place::new(Kind::Restaurant, "長三郎鮨", "csv:a:2");
        p.names.kana = Some("ちょうざぶろう".into());
        p.address = Some("佐渡市両津夷1".into());
        p.postal_code = Some("9520014".into());
        p.location = Some(LatLng::new(38.08, 138.44).unwrap());
        p.locality = Locality::District("両津".into());
        p.town = Some("夷".into());
        p.cuisine = Some(Cuisine::Sushi);
        p.price = Some(PriceLevel::Moderate);
        p.rating = Some(Rating {
            stars: 4.3,
            count: 120,
        });
        p.hours = Some(OpeningHours::always_open());
        p.status = BusinessStatus::Operational;
        p.phone = Some("0259-00-0000".into());
        p.website = Some("https://example.jp".into());
        p.description = Some("寿司".into());
        p.features.set(Feature::Takeout, true);
        p.ids.cid = Some(Cid(u64::MAX));
        p.ids.google_place_id = Some(GooglePlaceId::new("ChIJcwKek-xg818RPaVtz9Hh5tw").unwrap());
        p.ids.osm = Some("n5".parse().unwrap());
        p.quality.push(QualityFlag::PossibleDuplicate);
        p.stamp_all(
            Source::Csv,
            DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        );
        p.provenance.insert(
            Field::Phone,
            Provenance {
                source: Source::Manual,
                fetched_at: DateTime::from_timestamp(1_700_000_001, 123_456_789).unwrap(),
            },
        );
        p
    }

    #[test]
    fn round_trips_every_field() {
        let p = full();
        let (data, prov) = encode(&p).unwrap();
        assert!(!data.contains("provenance"));
        assert_eq!(prov.matches("fetched_at").count(), 2, "{prov}");
        assert_eq!(decode(1, &data, &prov).unwrap(), p);
        // `data` alone is a valid place.
        let bare: Place = serde_json::from_str(&data).unwrap();
        assert!(bare.provenance.is_empty());
        assert_eq!(bare.ids, p.ids);
    }

    #[test]
    fn round_trips_an_empty_place() {
        let p = Place::new(Kind::Toilet, "公衆トイレ", "demo:1");
        let (data, prov) = encode(&p).unwrap();
        assert_eq!(prov, "[]");
        assert_eq!(decode(1, &data, &prov).unwrap(), p);
    }

    #[test]
    fn garbage_is_corrupt() {
        let (data, _) = encode(&full()).unwrap();
        assert_eq!(decode(7, &data, "{").unwrap_err().code(), "corrupt_record");
        assert_eq!(decode(7, "[]", "[]").unwrap_err().code(), "corrupt_record");
    }
}
