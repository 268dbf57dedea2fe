//! Preparing a place from any source for the store: normalise, validate, assign the district,
//! and recompute the quality flags these steps own.
//!
//! Pure and deterministic: the same place and region always give the same result, so a rerun of
//! an import changes nothing.

use crate::address::Step;
use crate::codec::place_id_cid;
use crate::kind::Kind;
use crate::normalize::normalize;
use crate::place::{Field, Locality, Place, QualityFlag};
use crate::region::Region;

/// Why a place cannot be stored at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Invalid {
    /// The name is empty after normalisation.
    #[error("the place has no name (source key {source_key})")]
    EmptyName {
        /// The place's source key, to find the record.
        source_key: String,
    },
    /// Coordinates (0, 0): a missing value written as zeros, not a place in the Gulf of Guinea.
    #[error("coordinates 0, 0 are a missing value, not a location (source key {source_key})")]
    NullIsland {
        /// The place's source key.
        source_key: String,
    },
}

impl Invalid {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Invalid::EmptyName { .. } => "empty_name",
            Invalid::NullIsland { .. } => "null_island",
        }
    }
}

/// The flags [`prepare`] computes; it clears them before recomputing, and leaves all others.
const OWN_FLAGS: [QualityFlag; 7] = [
    QualityFlag::MissingLocation,
    QualityFlag::OutsideRegion,
    QualityFlag::MissingAddress,
    QualityFlag::UnknownDistrict,
    QualityFlag::DistrictConflict,
    QualityFlag::DistrictFromCoordinates,
    QualityFlag::PlaceIdCidMismatch,
];

/// A town point farther than this from the place, in the district the address names, while the
/// nearest town belongs to another district, makes a [`QualityFlag::DistrictConflict`].
const CONFLICT_DISTANCE_M: f64 = 3_000.0;

fn normalize_opt(s: &mut Option<String>) {
    if let Some(v) = s {
        let n = normalize(v);
        *s = (!n.is_empty()).then_some(n);
    }
}

/// Normalises text fields, validates, assigns locality, town and postal code, and recomputes the
/// flags listed in `OWN_FLAGS`. Returns the step that decided the district.
pub fn prepare(place: &mut Place, region: &Region) -> Result<Step, Invalid> {
    place.names.ja = normalize(&place.names.ja);
    if place.names.ja.is_empty() {
        return Err(Invalid::EmptyName {
            source_key: place.ids.source_key.clone(),
        });
    }
    normalize_opt(&mut place.names.kana);
    normalize_opt(&mut place.names.en);
    normalize_opt(&mut place.address);
    normalize_opt(&mut place.phone);
    if let Some(loc) = place.location {
        if loc.lat() == 0.0 && loc.lng() == 0.0 {
            return Err(Invalid::NullIsland {
                source_key: place.ids.source_key.clone(),
            });
        }
    }
    if place.kind != Kind::Restaurant {
        place.cuisine = None;
    }
    place.quality.retain(|f| !OWN_FLAGS.contains(f));

    let a = region.assign(place.address.as_deref(), place.location);
    place.locality = a.locality;
    place.town = a.town;
    if place.postal_code.is_none() {
        place.postal_code = a.postal_code;
    }
    // The derived fields take the provenance of what decided them.
    let basis = match a.step {
        Step::NearestTown => Field::Location,
        _ => Field::Address,
    };
    if let Some(p) = place.provenance.get(&basis).copied() {
        place.provenance.insert(Field::Locality, p);
        place.provenance.insert(Field::Town, p);
    }

    let mut flags = Vec::new();
    if place.address.is_none() {
        flags.push(QualityFlag::MissingAddress);
    }
    match place.location {
        None => flags.push(QualityFlag::MissingLocation),
        Some(loc) if !region.contains(loc) => flags.push(QualityFlag::OutsideRegion),
        Some(_) => {}
    }
    match (&place.locality, a.step) {
        (Locality::Unknown, _) => flags.push(QualityFlag::UnknownDistrict),
        (Locality::District(_), Step::NearestTown) => {
            flags.push(QualityFlag::DistrictFromCoordinates)
        }
        _ => {}
    }
    if district_conflict(place, region) {
        flags.push(QualityFlag::DistrictConflict);
    }
    if let (Some(pid), Some(cid)) = (&place.ids.google_place_id, place.ids.cid) {
        if place_id_cid(pid).is_ok_and(|decoded| decoded != cid) {
            flags.push(QualityFlag::PlaceIdCidMismatch);
        }
    }
    for f in flags {
        place.flag(f);
    }
    Ok(a.step)
}

/// Whether the coordinates lie far from every town of the district the address names, and
/// nearest to a town of another district.
fn district_conflict(place: &Place, region: &Region) -> bool {
    let (Some(loc), Some(name)) = (place.location, place.locality.district()) else {
        return false;
    };
    let Some(d) = region.district_index(name) else {
        return false;
    };
    // Equirectangular squared distances: exact enough over an island, and no trigonometry in
    // a loop that runs for every imported place.
    let k = loc.lat().to_radians().cos();
    let d2 = |p: crate::geo::LatLng| {
        let dy = p.lat() - loc.lat();
        let dx = (p.lng() - loc.lng()) * k;
        dx * dx + dy * dy
    };
    let limit_deg = CONFLICT_DISTANCE_M / 111_195.0;
    let limit = limit_deg * limit_deg;
    // Usually a town of the named district is near: then there is no conflict, and only that
    // district's towns were measured.
    if region
        .towns
        .iter()
        .any(|t| t.district == d && d2(t.location) <= limit)
    {
        return false;
    }
    // Far from all of them: a conflict when the nearest town (the assignment chain's own
    // coordinates step) lies in another district.
    region
        .assign(None, Some(loc))
        .locality
        .district()
        .is_some_and(|nearest| nearest != name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::LatLng;
    use crate::ids::{Cid, GooglePlaceId};

    fn place(addr: Option<&str>, loc: Option<(f64, f64)>) -> Place {
        let mut p = Place::new(Kind::Restaurant, "　長三郎鮨　", "t:1");
        p.address = addr.map(str::to_owned);
        p.location = loc.and_then(|(a, b)| LatLng::new(a, b).ok());
        p
    }

    #[test]
    fn assigns_by_address_and_normalises() {
        let mut p = place(
            Some("〒952-0011 新潟県佐渡市両津夷２６１"),
            Some((38.08, 138.44)),
        );
        let step = prepare(&mut p, Region::sado()).unwrap();
        assert_eq!(step, Step::TownName);
        assert_eq!(p.names.ja, "長三郎鮨");
        assert_eq!(p.locality, Locality::District("両津".into()));
        assert_eq!(p.town.as_deref(), Some("両津夷"));
        assert_eq!(p.postal_code.as_deref(), Some("9520011"));
        assert!(p.quality.is_empty(), "{:?}", p.quality);
    }

    #[test]
    fn coordinates_decide_when_address_is_missing() {
        let mut p = place(None, Some((38.0189, 138.3672)));
        assert_eq!(prepare(&mut p, Region::sado()).unwrap(), Step::NearestTown);
        assert!(p.locality.district().is_some());
        assert!(p.quality.contains(&QualityFlag::DistrictFromCoordinates));
        assert!(p.quality.contains(&QualityFlag::MissingAddress));
    }

    #[test]
    fn outside_and_unknown_are_flagged() {
        let mut p = place(None, Some((35.68, 139.76)));
        prepare(&mut p, Region::sado()).unwrap();
        assert_eq!(p.locality, Locality::Outside);
        assert!(p.quality.contains(&QualityFlag::OutsideRegion));
        let mut p = place(None, None);
        prepare(&mut p, Region::sado()).unwrap();
        assert!(p.quality.contains(&QualityFlag::UnknownDistrict));
        assert!(p.quality.contains(&QualityFlag::MissingLocation));
    }

    #[test]
    fn conflict_when_coordinates_are_across_the_island() {
        // Address in 両津, coordinates at 小木 (the far south-west).
        let mut p = place(Some("新潟県佐渡市両津湊198"), Some((37.8167, 138.2833)));
        prepare(&mut p, Region::sado()).unwrap();
        assert!(
            p.quality.contains(&QualityFlag::DistrictConflict),
            "{:?}",
            p.quality
        );
    }

    #[test]
    fn rejects_empty_name_and_null_island() {
        let mut p = place(None, None);
        p.names.ja = " ".into();
        assert!(matches!(
            prepare(&mut p, Region::sado()),
            Err(Invalid::EmptyName { .. })
        ));
        let mut p = Place::new(Kind::Toilet, "x", "t:2");
        p.location = LatLng::new(0.0, 0.0).ok();
        assert!(matches!(
            prepare(&mut p, Region::sado()),
            Err(Invalid::NullIsland { .. })
        ));
    }

    #[test]
    fn flags_a_place_id_that_decodes_to_another_cid() {
        let mut p = place(Some("佐渡市相川栄町27"), None);
        p.ids.google_place_id = GooglePlaceId::new("ChIJcwKek-xg818RPaVtz9Hh5tw").ok();
        p.ids.cid = Some(Cid(1));
        prepare(&mut p, Region::sado()).unwrap();
        assert!(p.quality.contains(&QualityFlag::PlaceIdCidMismatch));
    }

    #[test]
    fn idempotent() {
        let mut p = place(Some("新潟県佐渡市両津湊198"), Some((38.08, 138.44)));
        prepare(&mut p, Region::sado()).unwrap();
        let once = p.clone();
        prepare(&mut p, Region::sado()).unwrap();
        assert_eq!(p, once);
    }
}
