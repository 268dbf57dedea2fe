//! The sadomap domain, pure and without I/O.
//!
//! Places ([`Place`]), their kinds, cuisines, price levels, opening hours and features; the
//! geography of a [`Region`] (Sado is compiled in) with normalisation of Japanese text and the
//! district assignment chain; codecs for Google Maps CIDs and place IDs; the curated list format.
//!
//! ```
//! use sadomap_core::{Kind, Place, Region};
//! let sado = Region::sado();
//! assert_eq!(sado.towns.len(), 299);
//! let p = Place::new(Kind::Restaurant, "長三郎鮨", "demo:1");
//! assert_eq!(p.kind, Kind::Restaurant);
//! ```
#![deny(missing_docs)]

mod address;
mod codec;
mod curated;
mod demo;
mod features;
mod geo;
mod hours;
mod hours_text;
mod ids;
mod kind;
mod normalize;
mod pipeline;
mod place;
mod provenance;
mod region;
mod similarity;

pub use address::{parse_postal_code, AddressIndex, Assignment, Step};
pub use codec::{cid_from_url, place_id_cid, CodecError};
pub use curated::{
    parse_curated, similar_name_pairs, CuratedEntry, CuratedList, CuratedProblem,
    SIMILAR_NAME_THRESHOLD,
};
pub use demo::{demo_place, demo_places, demo_timestamp};
pub use features::{Feature, FeatureSet, Features};
pub use geo::{BBox, CoordError, LatLng, EARTH_RADIUS_M};
pub use hours::{tokyo, OpeningHours, Period, WeekTime, Weekday, WEEK_MINUTES};
pub use hours_text::{
    day_text, from_places_periods, parse_sheet_text, to_weekday_text, HoursError, HoursWarning,
    PlacesDate, PlacesOpeningHours, PlacesPeriod, PlacesPoint,
};
pub use ids::{Cid, GooglePlaceId, IdentityKey, OsmId, OsmType};
pub use kind::{BusinessStatus, Cuisine, Kind, MarkerGroup, PriceLevel};
pub use normalize::{
    address_key, fold_variant_kanji, is_kanji, kanji_numerals_to_arabic, normalize,
    parse_kanji_number, search_key, VARIANT_KANJI,
};
pub use pipeline::{prepare, Invalid};
pub use place::{
    ExternalIds, Field, Locality, Names, Place, PlaceId, PlaceRecord, Provenance, QualityFlag,
    Rating, Source,
};
pub use provenance::ProvenanceMap;
pub use region::{District, PostalCode, Region, RegionError, RegionFiles, Town};
pub use similarity::{similarity, similarity_upper_bound};
