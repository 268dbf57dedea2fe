//! The place model: what sadomap knows of one restaurant, parking lot or toilet.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::features::Features;
use crate::geo::LatLng;
use crate::hours::OpeningHours;
use crate::ids::{Cid, GooglePlaceId, IdentityKey, OsmId};
use crate::kind::{BusinessStatus, Cuisine, Kind, PriceLevel};
use crate::provenance::ProvenanceMap;

/// The store's stable internal id of a place. Assigned on first insert, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PlaceId(pub i64);

impl std::fmt::Display for PlaceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A place's names. `ja` is the name as the place itself writes it (not necessarily Japanese script).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Names {
    /// The primary name.
    pub ja: String,
    /// Reading in kana, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kana: Option<String>,
    /// English name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub en: Option<String>,
}

/// Where a place lies relative to the region's districts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Locality {
    /// Inside the region, in the named district.
    District(String),
    /// Inside the region but the district could not be told.
    #[default]
    Unknown,
    /// Outside the region (kept, flagged; the original map put these in `…_佐渡市外` sheets).
    Outside,
}

impl Locality {
    /// The district name, if assigned.
    pub fn district(&self) -> Option<&str> {
        match self {
            Locality::District(d) => Some(d),
            _ => None,
        }
    }
}

/// A Google-style rating: 1.0–5.0 stars over `count` reviews.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rating {
    /// Mean stars, 1.0–5.0.
    pub stars: f32,
    /// Number of reviews.
    pub count: u32,
}

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The operator's curated lists.
    Curated,
    /// Google Places API (New).
    GooglePlaces,
    /// An Overpass API answer.
    Overpass,
    /// An OpenStreetMap PBF extract.
    OsmPbf,
    /// A CSV file (the original sheets or collector output).
    Csv,
    /// A GeoJSON file.
    GeoJson,
    /// A JSON-lines export of sadomap itself.
    JsonLines,
    /// Synthetic demo data: not a real business.
    Demo,
    /// Entered or corrected by hand.
    Manual,
}

impl Source {
    /// The stable machine name.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Curated => "curated",
            Source::GooglePlaces => "google_places",
            Source::Overpass => "overpass",
            Source::OsmPbf => "osm_pbf",
            Source::Csv => "csv",
            Source::GeoJson => "geojson",
            Source::JsonLines => "jsonl",
            Source::Demo => "demo",
            Source::Manual => "manual",
        }
    }
}

/// The fields whose provenance is tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Field {
    Kind,
    Names,
    Address,
    PostalCode,
    Location,
    Locality,
    Town,
    Cuisine,
    Price,
    Rating,
    Hours,
    Status,
    Phone,
    Website,
    Features,
    Description,
    Ids,
}

impl Field {
    /// Every field, in order.
    pub const ALL: [Field; 17] = [
        Field::Kind,
        Field::Names,
        Field::Address,
        Field::PostalCode,
        Field::Location,
        Field::Locality,
        Field::Town,
        Field::Cuisine,
        Field::Price,
        Field::Rating,
        Field::Hours,
        Field::Status,
        Field::Phone,
        Field::Website,
        Field::Features,
        Field::Description,
        Field::Ids,
    ];
}

/// Which source set a field, and when it was fetched there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The source.
    pub source: Source,
    /// When the value was fetched from it (UTC).
    pub fetched_at: DateTime<Utc>,
}

/// A data-quality finding attached to a place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityFlag {
    /// No coordinates.
    MissingLocation,
    /// Coordinates outside the region's bounds.
    OutsideRegion,
    /// No address.
    MissingAddress,
    /// The district could not be determined.
    UnknownDistrict,
    /// The address names one district and the coordinates lie nearer another.
    DistrictConflict,
    /// The district was decided by the nearest town point, not by the address.
    DistrictFromCoordinates,
    /// The Google place ID does not decode to the recorded CID (a wrong lookup).
    PlaceIdCidMismatch,
    /// Another place has a very similar name nearby.
    PossibleDuplicate,
    /// The source gave no name; the place is named after its kind (e.g. 駐車場).
    GenericName,
    /// Synthetic demo data.
    Demo,
}

/// The external identifiers of a place.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExternalIds {
    /// Google place ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google_place_id: Option<GooglePlaceId>,
    /// Google Maps CID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<Cid>,
    /// OpenStreetMap element.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub osm: Option<OsmId>,
    /// The source's own key, the identity of last resort (`demo:42`, `csv:file:row`).
    pub source_key: String,
}

impl ExternalIds {
    /// The identity an upsert matches on: place ID, else CID, else OSM id, else the source key.
    pub fn identity(&self) -> IdentityKey {
        if let Some(p) = &self.google_place_id {
            IdentityKey::PlaceId(p.clone())
        } else if let Some(c) = self.cid {
            IdentityKey::Cid(c)
        } else if let Some(o) = self.osm {
            IdentityKey::Osm(o)
        } else {
            IdentityKey::Source(self.source_key.clone())
        }
    }
}

/// Everything known of one place, apart from the store's id and timestamps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Place {
    /// Restaurant, parking or toilet.
    pub kind: Kind,
    /// Names.
    pub names: Names,
    /// Postal address as written by the source (normalised).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// 7-digit postal code, without the hyphen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// Coordinates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<LatLng>,
    /// District, unknown, or outside the region.
    #[serde(default)]
    pub locality: Locality,
    /// The town (大字/町丁目) the address or coordinates resolved to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub town: Option<String>,
    /// Cuisine (restaurants only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuisine: Option<Cuisine>,
    /// Price level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<PriceLevel>,
    /// Rating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<Rating>,
    /// Opening hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<OpeningHours>,
    /// Business status.
    #[serde(default)]
    pub status: BusinessStatus,
    /// Phone number as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Website URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// Short description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Features known present or absent.
    #[serde(default)]
    pub features: Features,
    /// External identifiers.
    pub ids: ExternalIds,
    /// Which source set each field, and when. Serialised grouped by (source, time):
    /// `[{"source":"csv","fetched_at":"…","fields":["kind","names"]}]`, since one fetch usually
    /// sets most fields and repeating its provenance per field would dominate the record's size.
    #[serde(default)]
    pub provenance: ProvenanceMap,
    /// Quality findings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quality: Vec<QualityFlag>,
}

impl Place {
    /// A place with only a kind, a name and a source key; every other field empty.
    pub fn new(kind: Kind, name: impl Into<String>, source_key: impl Into<String>) -> Place {
        Place {
            kind,
            names: Names {
                ja: name.into(),
                ..Names::default()
            },
            address: None,
            postal_code: None,
            location: None,
            locality: Locality::Unknown,
            town: None,
            cuisine: None,
            price: None,
            rating: None,
            hours: None,
            status: BusinessStatus::Unknown,
            phone: None,
            website: None,
            description: None,
            features: Features::default(),
            ids: ExternalIds {
                source_key: source_key.into(),
                ..ExternalIds::default()
            },
            provenance: ProvenanceMap::new(),
            quality: Vec::new(),
        }
    }

    /// Records `source` at `at` as the provenance of every field that holds a value.
    pub fn stamp_all(&mut self, source: Source, at: DateTime<Utc>) {
        let p = Provenance {
            source,
            fetched_at: at,
        };
        let set: [(Field, bool); 17] = [
            (Field::Kind, true),
            (Field::Names, true),
            (Field::Address, self.address.is_some()),
            (Field::PostalCode, self.postal_code.is_some()),
            (Field::Location, self.location.is_some()),
            (Field::Locality, self.locality != Locality::Unknown),
            (Field::Town, self.town.is_some()),
            (Field::Cuisine, self.cuisine.is_some()),
            (Field::Price, self.price.is_some()),
            (Field::Rating, self.rating.is_some()),
            (Field::Hours, self.hours.is_some()),
            (Field::Status, self.status != BusinessStatus::Unknown),
            (Field::Phone, self.phone.is_some()),
            (Field::Website, self.website.is_some()),
            (Field::Features, self.features != Features::default()),
            (Field::Description, self.description.is_some()),
            (Field::Ids, true),
        ];
        for (f, has) in set {
            if has {
                self.provenance.insert(f, p);
            }
        }
    }

    /// Whether the place is synthetic demo data.
    pub fn is_demo(&self) -> bool {
        self.quality.contains(&QualityFlag::Demo)
            || self
                .provenance
                .get(&Field::Names)
                .is_some_and(|p| p.source == Source::Demo)
    }

    /// Adds a quality flag once.
    pub fn flag(&mut self, f: QualityFlag) {
        if !self.quality.contains(&f) {
            self.quality.push(f);
            self.quality.sort();
        }
    }
}

/// A stored place: the store's id, its version and timestamps around the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaceRecord {
    /// Stable internal id.
    pub id: PlaceId,
    /// The place.
    #[serde(flatten)]
    pub place: Place,
    /// When first stored (UTC).
    pub created_at: DateTime<Utc>,
    /// When last changed (UTC).
    pub updated_at: DateTime<Utc>,
    /// When the details were last refreshed from a paid source, if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details_checked_at: Option<DateTime<Utc>>,
    /// When the place ID was last re-checked, if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_checked_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_prefers_place_id_then_cid_then_osm() {
        let mut p = Place::new(Kind::Toilet, "公衆トイレ", "demo:1");
        assert_eq!(p.ids.identity(), IdentityKey::Source("demo:1".into()));
        p.ids.osm = Some("n5".parse().unwrap());
        assert!(matches!(p.ids.identity(), IdentityKey::Osm(_)));
        p.ids.cid = Some(Cid(7));
        assert_eq!(p.ids.identity(), IdentityKey::Cid(Cid(7)));
        p.ids.google_place_id = Some(GooglePlaceId::new("ChIJcwKek-xg818RPaVtz9Hh5tw").unwrap());
        assert!(matches!(p.ids.identity(), IdentityKey::PlaceId(_)));
    }

    #[test]
    fn json_round_trip() {
        let mut p = Place::new(Kind::Restaurant, "長三郎鮨", "csv:x:2");
        p.cuisine = Some(Cuisine::Sushi);
        p.locality = Locality::District("両津".into());
        p.location = Some(LatLng::new(38.08, 138.44).unwrap());
        p.stamp_all(
            Source::Csv,
            DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        );
        p.provenance.insert(
            Field::Rating,
            Provenance {
                source: Source::GooglePlaces,
                fetched_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            },
        );
        let s = serde_json::to_string(&p).unwrap();
        assert!(s.contains(r#""provenance":[{"source":"csv","fetched_at":"2023-11-14T22:13:20Z","fields":["kind","names","location","locality","cuisine","ids"]},{"source":"google_places""#), "{s}");
        let back: Place = serde_json::from_str(&s).unwrap();
        assert_eq!(back, p);
        let twice = s.replace(r#""fields":["rating"]"#, r#""fields":["kind"]"#);
        assert!(
            serde_json::from_str::<Place>(&twice).is_err(),
            "a field with two provenances"
        );
    }
}
