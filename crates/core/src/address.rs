//! District assignment: address → town (longest match) → postal code → nearest town point → unknown.
//!
//! The lookup tables ([`AddressIndex`]) are derived from a [`Region`]'s fields, never written for
//! one region by hand. [`Region::assign`] builds them on first use and keeps them with the region.
//!
//! How an address is read: it is put in [`address_key`] form (so `新穗`, `９５２－００１１` and
//! `両津福浦二丁目` read as `新穂`, `952-0011` and `両津福浦2丁目`), lower-cased, and cut into segments
//! at spaces and punctuation, which are then joined again without them. At each segment start the
//! reader drops what is not a town (`日本`, `〒`, postal codes and house numbers, the region's
//! prefecture and city names, `大字`, `字`), then takes the longest name found there: a town, a
//! district, or a pre-2004 municipality (`両津市`, `佐渡郡相川町`, or bare `相川町`). Longest match
//! means `両津湊` beats the district `両津`, `真野新町` beats `真野`, and `佐渡郡真野町` is the old
//! municipality (district 真野, no town) rather than the town 真野. After a district or old
//! municipality name, a town of that district may follow, written whole (`佐渡郡真野町真野新町`) or
//! without the district prefix as before the merger (`両津市湊` = 両津湊, `佐渡郡相川町栄町` =
//! 相川栄町). Matching only at segment starts keeps short town names (旭, 泉, 関) from matching
//! inside other words.

use std::sync::Arc;

use serde::Serialize;

use crate::geo::LatLng;
use crate::place::Locality;
use crate::region::Region;

mod index;
mod postal;

pub use index::AddressIndex;
pub use postal::parse_postal_code;

/// Which step of the chain decided an [`Assignment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// A name in the address: a town, a district, or a pre-2004 municipality (the town is then
    /// `None` unless one follows it); also an address naming another prefecture or municipality,
    /// which makes the place [`Locality::Outside`].
    TownName,
    /// The postal code in the address (a code of the region; or, with no region name in the
    /// address, a code of another area, which makes the place [`Locality::Outside`]).
    PostalCode,
    /// The town point nearest to the given location (the town is that nearest town).
    NearestTown,
    /// The location lies outside the region's bounds: [`Locality::Outside`] whatever the address.
    OutsideRegion,
    /// Nothing decided: [`Locality::Unknown`].
    Unknown,
}

impl Step {
    /// The stable machine name (as serialised).
    pub fn as_str(self) -> &'static str {
        match self {
            Step::TownName => "town_name",
            Step::PostalCode => "postal_code",
            Step::NearestTown => "nearest_town",
            Step::OutsideRegion => "outside_region",
            Step::Unknown => "unknown",
        }
    }
}

/// The outcome of district assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assignment {
    /// District, unknown, or outside.
    pub locality: Locality,
    /// The town as written in the region data (`両津湊`), when one was told. With
    /// [`Step::OutsideRegion`] it is the town the address named, if any.
    pub town: Option<String>,
    /// The 7-digit postal code found in the address, if any.
    pub postal_code: Option<String>,
    /// Which step decided.
    pub step: Step,
}

impl Region {
    /// The address lookup tables of this region, built on first use.
    pub fn address_index(&self) -> Arc<AddressIndex> {
        Arc::clone(
            self.address_index
                .get_or_init(|| Arc::new(AddressIndex::new(self))),
        )
    }

    /// Assigns a district: address → town (longest match) → postal code → nearest town point (when
    /// `location` is given) → unknown. See [`AddressIndex::assign`].
    pub fn assign(&self, address: Option<&str>, location: Option<LatLng>) -> Assignment {
        self.address_index
            .get_or_init(|| Arc::new(AddressIndex::new(self)))
            .assign(address, location)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sado() -> &'static Region {
        Region::sado()
    }

    /// Asserts the address alone gives `district`, `town` and `step`.
    #[track_caller]
    fn check(address: &str, district: &str, town: Option<&str>, step: Step) {
        let a = sado().assign(Some(address), None);
        assert_eq!(
            (a.locality.district(), a.town.as_deref(), a.step),
            (Some(district), town, step),
            "{address}: {a:?}"
        );
    }

    #[test]
    fn modern_addresses() {
        check(
            "新潟県佐渡市両津湊198",
            "両津",
            Some("両津湊"),
            Step::TownName,
        );
        check(
            "〒952-0011 新潟県佐渡市両津夷",
            "両津",
            Some("両津夷"),
            Step::TownName,
        );
        check("佐渡市相川栄町27", "相川", Some("相川栄町"), Step::TownName);
        check(
            "河原田本町394",
            "佐和田",
            Some("河原田本町"),
            Step::TownName,
        );
        check(
            "日本、〒952-0011 新潟県佐渡市両津夷…",
            "両津",
            Some("両津夷"),
            Step::TownName,
        );
        check(
            "新潟県 佐渡市 両津 湊 198",
            "両津",
            Some("両津湊"),
            Step::TownName,
        );
        check(
            "新潟県佐渡市大字真野123",
            "真野",
            Some("真野"),
            Step::TownName,
        );
        check(
            "佐渡市両津福浦二丁目1-2",
            "両津",
            Some("両津福浦二丁目"),
            Step::TownName,
        );
        check(
            "佐渡市両津福浦2丁目1-2",
            "両津",
            Some("両津福浦二丁目"),
            Step::TownName,
        );
        check("佐渡市松が崎100", "畑野", Some("松ケ崎"), Step::TownName);
        check("佐渡市北松ヶ崎5", "両津", Some("北松ケ崎"), Step::TownName);
        check("佐渡市阿佛坊1", "真野", Some("阿佛坊"), Step::TownName);
        check("佐渡市阿仏坊1", "真野", Some("阿佛坊"), Step::TownName);
        // Postal towns the town list lacks or splits.
        check("佐渡市藻浦10", "両津", Some("藻浦"), Step::TownName);
        check(
            "佐渡市両津福浦3-1",
            "両津",
            Some("両津福浦"),
            Step::TownName,
        );
        check("両津市福浦3-1", "両津", Some("両津福浦"), Step::TownName);
        check("〒952-0303", "真野", Some("阿佛坊"), Step::PostalCode);
    }

    #[test]
    fn reversed_and_english_orders() {
        check(
            "新穗, 佐渡市 新潟県 952-0116 日本",
            "新穂",
            Some("新穂"),
            Step::TownName,
        );
        check(
            "両津湊198, 佐渡市, 新潟県",
            "両津",
            Some("両津湊"),
            Step::TownName,
        );
        check(
            "Ryotsu-minato, Sado, Niigata 952-0011, Japan",
            "両津",
            Some("両津夷"),
            Step::PostalCode,
        );
    }

    #[test]
    fn former_municipalities() {
        check("新潟県佐渡郡相川町…", "相川", None, Step::TownName);
        check("新潟県佐渡郡相川町", "相川", None, Step::TownName);
        check("両津市…", "両津", None, Step::TownName);
        check("佐渡郡真野町…", "真野", None, Step::TownName);
        check("佐渡郡真野町123番地", "真野", None, Step::TownName);
        check("真野町", "真野", None, Step::TownName);
        check("相川町", "相川", None, Step::TownName);
        // A town after the old municipality: whole, or without the district prefix.
        check("両津市湊198", "両津", Some("両津湊"), Step::TownName);
        check(
            "新潟県佐渡郡相川町栄町27",
            "相川",
            Some("相川栄町"),
            Step::TownName,
        );
        check(
            "佐渡郡真野町大字真野新町",
            "真野",
            Some("真野新町"),
            Step::TownName,
        );
        check("佐渡郡真野町真野100", "真野", Some("真野"), Step::TownName);
        check(
            "佐渡郡相川町大字下相川",
            "相川",
            Some("下相川"),
            Step::TownName,
        );
        check(
            "佐渡郡羽茂町大字小泊",
            "羽茂",
            Some("羽茂小泊"),
            Step::TownName,
        );
        check("佐渡郡金井町新保", "金井", Some("金井新保"), Step::TownName);
        check("佐渡郡小木町宿根木", "小木", Some("宿根木"), Step::TownName);
        check("佐渡市小木町1", "小木", Some("小木町"), Step::TownName);
        check("佐渡郡新穂村大字新穂", "新穂", Some("新穂"), Step::TownName);
    }

    #[test]
    fn longest_match_traps() {
        check("佐渡市真野新町1", "真野", Some("真野新町"), Step::TownName);
        check("佐渡市真野大川1", "真野", Some("真野大川"), Step::TownName);
        check("佐渡市真野1", "真野", Some("真野"), Step::TownName);
        check("佐渡市両津湊1", "両津", Some("両津湊"), Step::TownName);
        check("佐渡市両津", "両津", None, Step::TownName);
        check("佐渡市相川", "相川", None, Step::TownName);
        check("佐渡市下相川1", "相川", Some("下相川"), Step::TownName);
        check("佐渡市上相川町1", "相川", Some("上相川町"), Step::TownName);
        check("佐渡市佐和田", "佐和田", None, Step::TownName);
        check(
            "佐渡市沢根五十里3番地",
            "佐和田",
            Some("沢根五十里"),
            Step::TownName,
        );
        check("佐渡市新穂青木1", "新穂", Some("新穂青木"), Step::TownName);
        // 佐渡 is the city, never the district 佐和田.
        let a = sado().assign(Some("新潟県佐渡市"), None);
        assert_eq!((a.locality, a.step), (Locality::Unknown, Step::Unknown));
    }

    #[test]
    fn hamochi_kodomari_has_two_codes() {
        for code in ["〒952-0421", "〒952-0514"] {
            check(code, "羽茂", Some("羽茂小泊"), Step::PostalCode);
        }
    }

    #[test]
    fn catch_all_code_and_nearest_town() {
        let a = sado().assign(Some("〒952-0000 新潟県佐渡市"), None);
        assert_eq!(
            (a.locality.clone(), a.step),
            (Locality::Unknown, Step::Unknown)
        );
        assert_eq!(a.postal_code.as_deref(), Some("9520000"));
        let minato = sado()
            .towns
            .iter()
            .find(|t| t.name == "両津湊")
            .map(|t| t.location);
        let a = sado().assign(Some("〒952-0000 新潟県佐渡市"), minato);
        assert_eq!(
            (a.locality.district(), a.town.as_deref(), a.step),
            (Some("両津"), Some("両津湊"), Step::NearestTown)
        );
        // The address wins over the location when it names a town.
        let a = sado().assign(Some("佐渡市真野新町1"), minato);
        assert_eq!(
            (a.locality.district(), a.step),
            (Some("真野"), Step::TownName)
        );
    }

    #[test]
    fn outside_the_region() {
        let outside = |address: Option<&str>, location: Option<LatLng>, step: Step| {
            let a = sado().assign(address, location);
            assert_eq!(
                (a.locality.clone(), a.step),
                (Locality::Outside, step),
                "{address:?}: {a:?}"
            );
        };
        outside(Some("新潟県新潟市中央区万代島9-1"), None, Step::TownName);
        outside(
            Some("〒950-0078 新潟県新潟市中央区万代島"),
            None,
            Step::TownName,
        );
        outside(Some("新潟市中央区旭町1"), None, Step::TownName);
        outside(Some("東京都千代田区丸の内1-1"), None, Step::TownName);
        outside(Some("〒100-0005"), None, Step::PostalCode);
        let niigata = LatLng::new(37.916, 139.036).ok();
        outside(None, niigata, Step::OutsideRegion);
        outside(Some("佐渡市両津湊1"), niigata, Step::OutsideRegion);
        // A code of the region's area not in the list (a business code) is not outside.
        let a = sado().assign(Some("〒952-8501"), None);
        assert_eq!(a.locality, Locality::Unknown);
        // An unknown code with the city named is not outside either.
        let a = sado().assign(Some("〒100-0005 佐渡市"), None);
        assert_eq!(a.locality, Locality::Unknown);
    }

    #[test]
    fn empty_and_junk_input() {
        for s in ["", "   ", "…", "ホテル", "1-2-3", "〒", "佐渡"] {
            let a = sado().assign(Some(s), None);
            assert_eq!(a.locality, Locality::Unknown, "{s}");
        }
        let a = sado().assign(None, None);
        assert_eq!((a.locality, a.step), (Locality::Unknown, Step::Unknown));
    }

    #[test]
    fn step_names_match_serde() {
        for s in [
            Step::TownName,
            Step::PostalCode,
            Step::NearestTown,
            Step::OutsideRegion,
            Step::Unknown,
        ] {
            let json = serde_json::to_string(&s).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
    }

    #[test]
    fn index_is_cached_per_region() {
        let a = sado().address_index();
        let b = sado().address_index();
        assert!(Arc::ptr_eq(&a, &b));
        // A region with other towns gets its own tables.
        let mut other = sado().clone();
        other.name = "other".into();
        other.towns.retain(|t| t.name != "両津湊");
        other.postal_codes.retain(|p| p.town != "両津湊");
        let c = other.address_index();
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(other.assign(Some("佐渡市両津湊1"), None).town, None);
    }
}
