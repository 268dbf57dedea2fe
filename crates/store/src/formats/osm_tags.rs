//! OpenStreetMap tags to places, shared by the PBF and Overpass readers.
//!
//! | tags | place |
//! |---|---|
//! | `amenity` = restaurant, cafe, fast_food, bar, pub, food_court, ice_cream | [`Kind::Restaurant`] |
//! | `amenity=parking` | [`Kind::Parking`] |
//! | `amenity=toilets` | [`Kind::Toilet`] |
//! | `cuisine=*` (first value that maps, `;`-separated) | sushi, ramen, coffee_shop → café, burger → fast food, pizza/italian → Italian, chinese, french, japanese, curry/indian/thai/nepalese/vietnamese → curry & ethnic, ice_cream/dessert/cake → desserts, seafood, soba/udon, steak_house, yakiniku/yakitori |
//! | no mapped cuisine | cafe → café, bar/pub → bar & izakaya, fast_food → fast food, ice_cream → desserts, restaurant/food_court → none (left to the classifier) |
//! | `fee` = no / yes | 無料 / 有料 features |
//! | `wheelchair`, `changing_table` = yes / no | wheelchair, diaper-table features |
//! | `opening_hours=24/7` | 24時間利用可 and hours open around the clock |
//! | `name:ja` else `name`; `name:en` | names |
//! | `phone`/`contact:phone`, `website`/`contact:website`, `addr:full` | phone, website, address |

use chrono::{DateTime, Utc};
use sadomap_core::{
    Cuisine, Feature, Kind, LatLng, OpeningHours, OsmId, OsmType, Place, QualityFlag, Source,
};

/// The label an unnamed element is shown with.
fn generic_name(amenity: &str) -> &'static str {
    match amenity {
        "parking" => "駐車場",
        "toilets" => "公衆トイレ",
        "cafe" => "カフェ",
        "fast_food" => "ファストフード",
        "bar" => "バー",
        "pub" => "パブ",
        "food_court" => "フードコート",
        "ice_cream" => "アイスクリーム",
        _ => "飲食店",
    }
}

/// The amenity values that become places, and their kind.
pub(crate) fn amenity_kind(amenity: &str) -> Option<Kind> {
    match amenity {
        "restaurant" | "cafe" | "fast_food" | "bar" | "pub" | "food_court" | "ice_cream" => {
            Some(Kind::Restaurant)
        }
        "parking" => Some(Kind::Parking),
        "toilets" => Some(Kind::Toilet),
        _ => None,
    }
}

fn cuisine_tag(value: &str) -> Option<Cuisine> {
    Some(match value.trim() {
        "sushi" => Cuisine::Sushi,
        "ramen" => Cuisine::Ramen,
        "coffee_shop" => Cuisine::Cafe,
        "burger" => Cuisine::FastFood,
        "pizza" | "italian" => Cuisine::Italian,
        "chinese" => Cuisine::Chinese,
        "french" => Cuisine::French,
        "japanese" => Cuisine::Japanese,
        "curry" | "indian" | "thai" | "nepalese" | "vietnamese" => Cuisine::CurryEthnic,
        "ice_cream" | "dessert" | "cake" => Cuisine::DessertSweets,
        "seafood" => Cuisine::Seafood,
        "soba" | "udon" | "noodle;soba" => Cuisine::SobaUdon,
        "steak_house" => Cuisine::SteakWestern,
        "yakiniku" | "yakitori" => Cuisine::YakinikuYakitori,
        _ => return None,
    })
}

fn amenity_cuisine(amenity: &str) -> Option<Cuisine> {
    match amenity {
        "cafe" => Some(Cuisine::Cafe),
        "bar" | "pub" => Some(Cuisine::BarIzakaya),
        "fast_food" => Some(Cuisine::FastFood),
        "ice_cream" => Some(Cuisine::DessertSweets),
        _ => None,
    }
}

fn yes_no(v: Option<&str>) -> Option<bool> {
    match v?.trim() {
        "yes" | "designated" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// The tags of one element that matter here.
#[derive(Debug, Default, Clone)]
pub(crate) struct OsmTags {
    pub amenity: Option<String>,
    name: Option<String>,
    name_ja: Option<String>,
    name_en: Option<String>,
    cuisine: Option<String>,
    fee: Option<String>,
    wheelchair: Option<String>,
    changing_table: Option<String>,
    opening_hours: Option<String>,
    phone: Option<String>,
    website: Option<String>,
    addr_full: Option<String>,
}

impl OsmTags {
    /// Picks the relevant tags out of all of them.
    pub fn collect<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> OsmTags {
        let mut t = OsmTags::default();
        for (k, v) in tags {
            let slot = match k {
                "amenity" => &mut t.amenity,
                "name" => &mut t.name,
                "name:ja" => &mut t.name_ja,
                "name:en" => &mut t.name_en,
                "cuisine" => &mut t.cuisine,
                "fee" => &mut t.fee,
                "wheelchair" => &mut t.wheelchair,
                "changing_table" => &mut t.changing_table,
                "opening_hours" => &mut t.opening_hours,
                "phone" | "contact:phone" => &mut t.phone,
                "website" | "contact:website" => &mut t.website,
                "addr:full" => &mut t.addr_full,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(v.to_owned());
            }
        }
        t
    }

    /// The kind the element maps to, if any (and if it passes the `only` filter).
    pub fn kind(&self, only: Option<Kind>) -> Option<Kind> {
        let k = amenity_kind(self.amenity.as_deref()?)?;
        match only {
            Some(o) if o != k => None,
            _ => Some(k),
        }
    }

    /// The place for a mapped element (named after its amenity when it has no name); `None` when the amenity is not one sadomap maps.
    pub fn to_place(
        &self,
        id: OsmId,
        location: Option<LatLng>,
        source: Source,
        now: DateTime<Utc>,
    ) -> Option<Place> {
        let amenity = self.amenity.as_deref()?;
        let kind = amenity_kind(amenity)?;
        let given = self.name_ja.clone().or_else(|| self.name.clone());
        // Unnamed parking lots and toilets are common in OSM and still worth showing: they take
        // the amenity's label and a flag saying the name is generic.
        let name = given
            .clone()
            .unwrap_or_else(|| generic_name(amenity).to_owned());
        let mut p = Place::new(kind, name, format!("{}:{id}", source.as_str()));
        if given.is_none() {
            p.flag(QualityFlag::GenericName);
        }
        p.names.en = self.name_en.clone();
        p.ids.osm = Some(id);
        p.location = location;
        p.phone = self.phone.clone();
        p.website = self.website.clone();
        p.address = self.addr_full.clone();
        if kind == Kind::Restaurant {
            p.cuisine = self
                .cuisine
                .as_deref()
                .and_then(|c| c.split(';').find_map(cuisine_tag))
                .or_else(|| amenity_cuisine(amenity));
        }
        match self.fee.as_deref().map(str::trim) {
            Some("no") => {
                p.features.set(Feature::FreeParking, true);
                p.features.set(Feature::PaidParking, false);
            }
            Some("yes") => {
                p.features.set(Feature::PaidParking, true);
                p.features.set(Feature::FreeParking, false);
            }
            _ => {}
        }
        if let Some(b) = yes_no(self.wheelchair.as_deref()) {
            p.features.set(Feature::WheelchairAccessible, b);
        }
        if let Some(b) = yes_no(self.changing_table.as_deref()) {
            p.features.set(Feature::DiaperTable, b);
        }
        if self.opening_hours.as_deref().map(str::trim) == Some("24/7") {
            p.features.set(Feature::Open24h, true);
            p.hours = Some(OpeningHours::always_open());
        }
        p.stamp_all(source, now);
        Some(p)
    }
}

/// The mean of a set of coordinates; `None` for none. A closed ring's repeated last point is
/// dropped first so it does not count twice.
pub(crate) fn centroid(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let pts = match points {
        [first, .., last] if points.len() > 2 && first == last => &points[..points.len() - 1],
        _ => points,
    };
    if pts.is_empty() {
        return None;
    }
    let n = pts.len() as f64;
    let (lat, lng) = pts
        .iter()
        .fold((0.0, 0.0), |(a, b), (la, ln)| (a + la, b + ln));
    Some((lat / n, lng / n))
}

/// A short `n123`-style id.
pub(crate) fn osm_id(kind: OsmType, id: i64) -> OsmId {
    OsmId { kind, id }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(tags: &[(&str, &str)]) -> Option<Place> {
        OsmTags::collect(tags.iter().copied()).to_place(
            osm_id(OsmType::Node, 1),
            None,
            Source::OsmPbf,
            DateTime::from_timestamp(0, 0).unwrap_or_default(),
        )
    }

    #[test]
    fn cuisine_tags_win_over_amenity() {
        let p = place(&[("amenity", "fast_food"), ("cuisine", "pizza;burger")]).unwrap();
        assert_eq!(p.cuisine, Some(Cuisine::Italian));
        let p = place(&[("amenity", "pub"), ("name", "Pub"), ("name:en", "The Pub")]).unwrap();
        assert_eq!(p.cuisine, Some(Cuisine::BarIzakaya));
        assert_eq!(p.names.en.as_deref(), Some("The Pub"));
        let p = place(&[("amenity", "restaurant"), ("cuisine", "regional")]).unwrap();
        assert_eq!(p.cuisine, None);
        assert_eq!(p.ids.source_key, "osm_pbf:n1");
        assert!(place(&[("amenity", "bench")]).is_none());
        assert!(place(&[("shop", "bakery")]).is_none());
    }

    #[test]
    fn toilet_features() {
        let p = place(&[
            ("amenity", "toilets"),
            ("fee", "no"),
            ("wheelchair", "yes"),
            ("changing_table", "no"),
            ("opening_hours", "24/7"),
        ])
        .unwrap();
        assert_eq!(p.kind, Kind::Toilet);
        assert_eq!(p.features.get(Feature::FreeParking), Some(true));
        assert_eq!(p.features.get(Feature::WheelchairAccessible), Some(true));
        assert_eq!(p.features.get(Feature::DiaperTable), Some(false));
        assert_eq!(p.features.get(Feature::Open24h), Some(true));
        assert!(p.hours.as_ref().is_some_and(|h| h.is_always_open()));
    }

    #[test]
    fn centroid_drops_closing_point() {
        let ring = [(0.0, 0.0), (0.0, 2.0), (2.0, 2.0), (2.0, 0.0), (0.0, 0.0)];
        assert_eq!(centroid(&ring), Some((1.0, 1.0)));
        assert_eq!(centroid(&[]), None);
        assert_eq!(centroid(&[(1.0, 1.0), (1.0, 1.0)]), Some((1.0, 1.0)));
    }
}
