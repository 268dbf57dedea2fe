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
mod region;
mod similarity;

pub use features::{Feature, FeatureSet, Features};
pub use geo::{BBox, CoordError, LatLng, EARTH_RADIUS_M};
pub use hours::{tokyo, OpeningHours, Period, WeekTime, Weekday, WEEK_MINUTES};
pub use ids::{Cid, GooglePlaceId, IdentityKey, OsmId, OsmType};
pub use kind::{BusinessStatus, Cuisine, Kind, MarkerGroup, PriceLevel};
pub use normalize::{normalize, search_key};
pub use place::{
    ExternalIds, Field, Locality, Names, Place, PlaceId, PlaceRecord, Provenance, QualityFlag,
    Rating, Source,
};
pub use region::{District, PostalCode, Region, RegionError, RegionFiles, Town};
// @address exports
// @codec exports
// @curated exports
// @hours_text exports
// @similarity exports
// @pipeline exports
// @demo exports
