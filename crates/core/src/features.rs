//! Typed facility features, each known to be present, known to be absent, or unknown.

use serde::{Deserialize, Serialize};

macro_rules! features {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $ja:literal; )*) => {
        /// A facility feature the map can filter on.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Feature {
            $( $(#[$doc])* $variant, )*
        }

        impl Feature {
            /// Every feature, in bit order.
            pub const ALL: &'static [Feature] = &[$(Feature::$variant),*];

            /// The stable machine name.
            pub fn as_str(self) -> &'static str {
                match self { $(Feature::$variant => $name,)* }
            }

            /// The Japanese label (the original sheets' column name or map filter).
            pub fn label_ja(self) -> &'static str {
                match self { $(Feature::$variant => $ja,)* }
            }
        }
    };
}

features! {
    /// テイクアウト
    Takeout = "takeout", "テイクアウト";
    /// デリバリー
    Delivery = "delivery", "デリバリー";
    /// 店内飲食
    DineIn = "dine_in", "店内飲食";
    /// カーブサイドピックアップ
    CurbsidePickup = "curbside_pickup", "カーブサイドピックアップ";
    /// 予約可能
    Reservable = "reservable", "予約可能";
    /// 朝食提供
    Breakfast = "breakfast", "朝食提供";
    /// 昼食提供
    Lunch = "lunch", "昼食提供";
    /// 夕食提供
    Dinner = "dinner", "夕食提供";
    /// ビール提供
    Beer = "beer", "ビール提供";
    /// ワイン提供
    Wine = "wine", "ワイン提供";
    /// カクテル提供
    Cocktails = "cocktails", "カクテル提供";
    /// コーヒー提供
    Coffee = "coffee", "コーヒー提供";
    /// ベジタリアン対応
    Vegetarian = "vegetarian", "ベジタリアン対応";
    /// デザート提供
    Dessert = "dessert", "デザート提供";
    /// 子供向けメニュー
    KidsMenu = "kids_menu", "子供向けメニュー";
    /// 屋外席
    OutdoorSeating = "outdoor_seating", "屋外席";
    /// ライブ音楽
    LiveMusic = "live_music", "ライブ音楽";
    /// トイレ完備
    Restroom = "restroom", "トイレ完備";
    /// 子供連れ歓迎 / 子供連れ対応
    GoodForChildren = "good_for_children", "子供連れ歓迎";
    /// ペット同伴可
    AllowsDogs = "allows_dogs", "ペット同伴可";
    /// グループ向け
    GoodForGroups = "good_for_groups", "グループ向け";
    /// スポーツ観戦向け
    GoodForSports = "good_for_sports", "スポーツ観戦向け";
    /// 車椅子対応 / バリアフリー対応
    WheelchairAccessible = "wheelchair_accessible", "車椅子対応";
    /// おむつ交換台
    DiaperTable = "diaper_table", "おむつ交換台";
    /// 多目的トイレ
    MultipurposeToilet = "multipurpose_toilet", "多目的トイレ";
    /// 温水洗浄便座
    Washlet = "washlet", "温水洗浄便座";
    /// 清潔
    Clean = "clean", "清潔";
    /// 無料 (parking)
    FreeParking = "free_parking", "無料";
    /// 有料 (parking)
    PaidParking = "paid_parking", "有料";
    /// 大型車対応
    LargeVehicles = "large_vehicles", "大型車対応";
    /// 障害者用駐車場
    AccessibleParking = "accessible_parking", "障害者用駐車場";
    /// 屋根付き
    Covered = "covered", "屋根付き";
    /// 駐車場併設 (toilets)
    ParkingAvailable = "parking_available", "駐車場併設";
    /// 観光地 (観光地駐車場 / 観光地トイレ)
    TouristSpot = "tourist_spot", "観光地";
    /// 24時間利用可
    #[serde(rename = "open_24h")]
    Open24h = "open_24h", "24時間利用可";
}

impl Feature {
    fn bit(self) -> u64 {
        1 << (self as u32)
    }

    /// Parses a machine name or Japanese label.
    pub fn parse(s: &str) -> Option<Feature> {
        let s = s.trim();
        Feature::ALL
            .iter()
            .copied()
            .find(|f| f.as_str() == s || f.label_ja() == s)
    }
}

/// A set of features as a bitset (at most 64 features).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FeatureSet(u64);

impl FeatureSet {
    /// The empty set.
    pub const EMPTY: FeatureSet = FeatureSet(0);

    /// Whether `f` is in the set.
    pub fn contains(self, f: Feature) -> bool {
        self.0 & f.bit() != 0
    }

    /// Whether every feature of `other` is in the set.
    pub fn contains_all(self, other: FeatureSet) -> bool {
        self.0 & other.0 == other.0
    }

    /// Adds `f`.
    pub fn insert(&mut self, f: Feature) {
        self.0 |= f.bit();
    }

    /// Removes `f`.
    pub fn remove(&mut self, f: Feature) {
        self.0 &= !f.bit();
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// The raw bits, for compact storage in indexes.
    pub fn bits(self) -> u64 {
        self.0
    }

    /// The set with these raw bits; `None` if a bit names no feature.
    pub fn from_bits(bits: u64) -> Option<FeatureSet> {
        let known = Feature::ALL.iter().fold(0, |acc, f| acc | f.bit());
        (bits & !known == 0).then_some(FeatureSet(bits))
    }

    /// The features in the set, in bit order.
    pub fn iter(self) -> impl Iterator<Item = Feature> {
        Feature::ALL
            .iter()
            .copied()
            .filter(move |f| self.contains(*f))
    }
}

impl FromIterator<Feature> for FeatureSet {
    fn from_iter<I: IntoIterator<Item = Feature>>(iter: I) -> Self {
        let mut s = FeatureSet::EMPTY;
        for f in iter {
            s.insert(f);
        }
        s
    }
}

impl Serialize for FeatureSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for FeatureSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<Feature>::deserialize(d)?.into_iter().collect())
    }
}

/// What is known of a place's features: present, absent, or (in neither) unknown.
///
/// A feature is never in both sets: [`Features::set`] keeps them disjoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Features {
    #[serde(default, skip_serializing_if = "FeatureSet::is_empty")]
    yes: FeatureSet,
    #[serde(default, skip_serializing_if = "FeatureSet::is_empty")]
    no: FeatureSet,
}

impl Features {
    /// Records that `f` is present (`true`) or absent (`false`).
    pub fn set(&mut self, f: Feature, present: bool) {
        if present {
            self.yes.insert(f);
            self.no.remove(f);
        } else {
            self.no.insert(f);
            self.yes.remove(f);
        }
    }

    /// Forgets what was known of `f`.
    pub fn clear(&mut self, f: Feature) {
        self.yes.remove(f);
        self.no.remove(f);
    }

    /// `Some(true)` present, `Some(false)` absent, `None` unknown.
    pub fn get(&self, f: Feature) -> Option<bool> {
        if self.yes.contains(f) {
            Some(true)
        } else if self.no.contains(f) {
            Some(false)
        } else {
            None
        }
    }

    /// The features known to be present.
    pub fn present(&self) -> FeatureSet {
        self.yes
    }

    /// The features known to be absent.
    pub fn absent(&self) -> FeatureSet {
        self.no
    }

    /// Features from the present and absent sets; `None` if a feature is in both.
    pub fn from_sets(present: FeatureSet, absent: FeatureSet) -> Option<Features> {
        (present.0 & absent.0 == 0).then_some(Features {
            yes: present,
            no: absent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_in_64_bits_and_round_trips() {
        assert!(Feature::ALL.len() <= 64);
        for f in Feature::ALL {
            let json = serde_json::to_string(f).unwrap();
            assert_eq!(
                json,
                format!("\"{}\"", f.as_str()),
                "serde name is the machine name"
            );
            assert_eq!(Feature::parse(f.as_str()), Some(*f));
            assert_eq!(Feature::parse(f.label_ja()), Some(*f));
        }
    }

    #[test]
    fn tri_state() {
        let mut fs = Features::default();
        assert_eq!(fs.get(Feature::Takeout), None);
        fs.set(Feature::Takeout, true);
        fs.set(Feature::Delivery, false);
        assert_eq!(fs.get(Feature::Takeout), Some(true));
        assert_eq!(fs.get(Feature::Delivery), Some(false));
        fs.set(Feature::Takeout, false);
        assert_eq!(fs.get(Feature::Takeout), Some(false));
        let json = serde_json::to_string(&fs).unwrap();
        assert_eq!(json, r#"{"no":["takeout","delivery"]}"#);
        assert_eq!(serde_json::from_str::<Features>(&json).unwrap(), fs);
    }
}
