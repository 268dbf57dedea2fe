//! Coordinates, bounding boxes and great-circle distance.

use serde::{Deserialize, Serialize};

/// Mean Earth radius in metres (IUGG), used for haversine distances.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A WGS84 coordinate. Always finite and within range: construct it with [`LatLng::new`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawLatLng")]
pub struct LatLng {
    lat: f64,
    lng: f64,
}

#[derive(Deserialize)]
struct RawLatLng {
    lat: f64,
    lng: f64,
}

impl TryFrom<RawLatLng> for LatLng {
    type Error = CoordError;
    fn try_from(raw: RawLatLng) -> Result<Self, Self::Error> {
        LatLng::new(raw.lat, raw.lng)
    }
}

/// Why a pair of numbers is not a coordinate.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum CoordError {
    /// NaN or infinite.
    #[error("coordinate is not a finite number (lat {lat}, lng {lng})")]
    NotFinite {
        /// The latitude given.
        lat: f64,
        /// The longitude given.
        lng: f64,
    },
    /// Outside -90..=90 / -180..=180.
    #[error("coordinate out of range (lat {lat} must be within ±90, lng {lng} within ±180)")]
    OutOfRange {
        /// The latitude given.
        lat: f64,
        /// The longitude given.
        lng: f64,
    },
}

impl LatLng {
    /// A checked coordinate: rejects NaN, infinities and out-of-range values.
    pub fn new(lat: f64, lng: f64) -> Result<Self, CoordError> {
        if !lat.is_finite() || !lng.is_finite() {
            return Err(CoordError::NotFinite { lat, lng });
        }
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lng) {
            return Err(CoordError::OutOfRange { lat, lng });
        }
        Ok(Self { lat, lng })
    }

    /// Latitude in degrees.
    pub fn lat(self) -> f64 {
        self.lat
    }

    /// Longitude in degrees.
    pub fn lng(self) -> f64 {
        self.lng
    }

    /// Great-circle distance in metres (haversine).
    pub fn distance_m(self, other: LatLng) -> f64 {
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let dp = p2 - p1;
        let dl = (other.lng - self.lng).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
    }
}

/// An axis-aligned box in degrees; `south <= north` and `west <= east` always hold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BBox {
    /// Southern edge (minimum latitude).
    pub south: f64,
    /// Western edge (minimum longitude).
    pub west: f64,
    /// Northern edge (maximum latitude).
    pub north: f64,
    /// Eastern edge (maximum longitude).
    pub east: f64,
}

impl BBox {
    /// A checked box from two corners given in any order.
    pub fn from_corners(a: LatLng, b: LatLng) -> Self {
        Self {
            south: a.lat.min(b.lat),
            north: a.lat.max(b.lat),
            west: a.lng.min(b.lng),
            east: a.lng.max(b.lng),
        }
    }

    /// Whether the point lies inside or on the edge.
    pub fn contains(&self, p: LatLng) -> bool {
        p.lat >= self.south && p.lat <= self.north && p.lng >= self.west && p.lng <= self.east
    }

    /// The box grown by `metres` on every side (approximate, fine at Sado's latitude).
    pub fn buffered(&self, metres: f64) -> Self {
        let dlat = metres / 111_320.0;
        let mid = ((self.south + self.north) / 2.0)
            .to_radians()
            .cos()
            .max(0.01);
        let dlng = metres / (111_320.0 * mid);
        Self {
            south: self.south - dlat,
            north: self.north + dlat,
            west: self.west - dlng,
            east: self.east + dlng,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_nan_and_out_of_range() {
        assert!(LatLng::new(f64::NAN, 1.0).is_err());
        assert!(LatLng::new(91.0, 1.0).is_err());
        assert!(LatLng::new(1.0, -180.5).is_err());
        assert!(LatLng::new(38.0, 138.4).is_ok());
    }

    #[test]
    fn distance_ryotsu_to_aikawa_is_about_18km() {
        let ryotsu = LatLng::new(38.0797, 138.4381).unwrap();
        let aikawa = LatLng::new(38.0300, 138.2366).unwrap();
        let d = ryotsu.distance_m(aikawa);
        assert!((17_000.0..19_500.0).contains(&d), "{d}");
    }

    #[test]
    fn deserialize_checks_range() {
        assert!(serde_json::from_str::<LatLng>(r#"{"lat":99,"lng":1}"#).is_err());
        let p: LatLng = serde_json::from_str(r#"{"lat":38,"lng":138}"#).unwrap();
        assert_eq!(p.lat(), 38.0);
    }
}
