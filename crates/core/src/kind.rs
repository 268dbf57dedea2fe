//! What a place is: restaurant, parking or toilet; and the restaurant's cuisine and price level.

use serde::{Deserialize, Serialize};

/// The three kinds of point on the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A place to eat or drink (the original map's 飲食店, including cafés and shops selling food).
    Restaurant,
    /// A parking lot.
    Parking,
    /// A public toilet.
    Toilet,
}

impl Kind {
    /// Every kind, in display order.
    pub const ALL: [Kind; 3] = [Kind::Restaurant, Kind::Parking, Kind::Toilet];

    /// The stable machine name (`restaurant`, `parking`, `toilet`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Restaurant => "restaurant",
            Kind::Parking => "parking",
            Kind::Toilet => "toilet",
        }
    }

    /// The Japanese label used by the original map.
    pub fn label_ja(self) -> &'static str {
        match self {
            Kind::Restaurant => "飲食店",
            Kind::Parking => "駐車場",
            Kind::Toilet => "公衆トイレ",
        }
    }

    /// Parses the machine name, plural forms (`parkings`, as in the original sheets) and Japanese labels.
    pub fn parse(s: &str) -> Option<Kind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "restaurant" | "restaurants" | "food" | "飲食店" => Some(Kind::Restaurant),
            "parking" | "parkings" | "駐車場" => Some(Kind::Parking),
            "toilet" | "toilets" | "公衆トイレ" | "トイレ" => Some(Kind::Toilet),
            _ => None,
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The original map's 18 cuisine types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cuisine {
    /// 日本料理
    Japanese,
    /// 寿司
    Sushi,
    /// 海鮮
    Seafood,
    /// 焼肉・焼鳥
    YakinikuYakitori,
    /// ラーメン
    Ramen,
    /// そば・うどん
    SobaUdon,
    /// 中華
    Chinese,
    /// イタリアン
    Italian,
    /// フレンチ
    French,
    /// カフェ・喫茶店
    Cafe,
    /// バー・居酒屋
    BarIzakaya,
    /// ファストフード
    FastFood,
    /// デザート・スイーツ
    DessertSweets,
    /// カレー・エスニック
    CurryEthnic,
    /// ステーキ・洋食
    SteakWestern,
    /// 弁当・テイクアウト
    BentoTakeout,
    /// レストラン
    Restaurant,
    /// その他
    Other,
}

impl Cuisine {
    /// All 18, in the original map's order.
    pub const ALL: [Cuisine; 18] = [
        Cuisine::Japanese,
        Cuisine::Sushi,
        Cuisine::Seafood,
        Cuisine::YakinikuYakitori,
        Cuisine::Ramen,
        Cuisine::SobaUdon,
        Cuisine::Chinese,
        Cuisine::Italian,
        Cuisine::French,
        Cuisine::Cafe,
        Cuisine::BarIzakaya,
        Cuisine::FastFood,
        Cuisine::DessertSweets,
        Cuisine::CurryEthnic,
        Cuisine::SteakWestern,
        Cuisine::BentoTakeout,
        Cuisine::Restaurant,
        Cuisine::Other,
    ];

    /// The Japanese label the original map shows (and its sheets hold).
    pub fn label_ja(self) -> &'static str {
        match self {
            Cuisine::Japanese => "日本料理",
            Cuisine::Sushi => "寿司",
            Cuisine::Seafood => "海鮮",
            Cuisine::YakinikuYakitori => "焼肉・焼鳥",
            Cuisine::Ramen => "ラーメン",
            Cuisine::SobaUdon => "そば・うどん",
            Cuisine::Chinese => "中華",
            Cuisine::Italian => "イタリアン",
            Cuisine::French => "フレンチ",
            Cuisine::Cafe => "カフェ・喫茶店",
            Cuisine::BarIzakaya => "バー・居酒屋",
            Cuisine::FastFood => "ファストフード",
            Cuisine::DessertSweets => "デザート・スイーツ",
            Cuisine::CurryEthnic => "カレー・エスニック",
            Cuisine::SteakWestern => "ステーキ・洋食",
            Cuisine::BentoTakeout => "弁当・テイクアウト",
            Cuisine::Restaurant => "レストラン",
            Cuisine::Other => "その他",
        }
    }

    /// An English label.
    pub fn label_en(self) -> &'static str {
        match self {
            Cuisine::Japanese => "Japanese",
            Cuisine::Sushi => "Sushi",
            Cuisine::Seafood => "Seafood",
            Cuisine::YakinikuYakitori => "Yakiniku & yakitori",
            Cuisine::Ramen => "Ramen",
            Cuisine::SobaUdon => "Soba & udon",
            Cuisine::Chinese => "Chinese",
            Cuisine::Italian => "Italian",
            Cuisine::French => "French",
            Cuisine::Cafe => "Café",
            Cuisine::BarIzakaya => "Bar & izakaya",
            Cuisine::FastFood => "Fast food",
            Cuisine::DessertSweets => "Desserts & sweets",
            Cuisine::CurryEthnic => "Curry & ethnic",
            Cuisine::SteakWestern => "Steak & Western",
            Cuisine::BentoTakeout => "Bento & takeout",
            Cuisine::Restaurant => "Restaurant",
            Cuisine::Other => "Other",
        }
    }

    /// The stable machine name, as serialised (`sushi`, `bar_izakaya`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Cuisine::Japanese => "japanese",
            Cuisine::Sushi => "sushi",
            Cuisine::Seafood => "seafood",
            Cuisine::YakinikuYakitori => "yakiniku_yakitori",
            Cuisine::Ramen => "ramen",
            Cuisine::SobaUdon => "soba_udon",
            Cuisine::Chinese => "chinese",
            Cuisine::Italian => "italian",
            Cuisine::French => "french",
            Cuisine::Cafe => "cafe",
            Cuisine::BarIzakaya => "bar_izakaya",
            Cuisine::FastFood => "fast_food",
            Cuisine::DessertSweets => "dessert_sweets",
            Cuisine::CurryEthnic => "curry_ethnic",
            Cuisine::SteakWestern => "steak_western",
            Cuisine::BentoTakeout => "bento_takeout",
            Cuisine::Restaurant => "restaurant",
            Cuisine::Other => "other",
        }
    }

    /// Parses a machine name or a Japanese label.
    pub fn parse(s: &str) -> Option<Cuisine> {
        let s = s.trim();
        Cuisine::ALL
            .into_iter()
            .find(|c| c.as_str() == s || c.label_ja() == s)
    }

    /// The marker group the map colours this cuisine with.
    pub fn group(self) -> MarkerGroup {
        use Cuisine::*;
        match self {
            Japanese | Sushi | Seafood | SobaUdon => MarkerGroup::Japanese,
            Ramen => MarkerGroup::Noodles,
            YakinikuYakitori | SteakWestern => MarkerGroup::Grill,
            Chinese | Italian | French | CurryEthnic => MarkerGroup::International,
            Cafe | DessertSweets => MarkerGroup::Cafe,
            BarIzakaya => MarkerGroup::Bar,
            FastFood | BentoTakeout => MarkerGroup::Fastfood,
            Restaurant | Other => MarkerGroup::General,
        }
    }

    /// Index in [`Cuisine::ALL`] (0..18), for compact indexes.
    pub fn index(self) -> u8 {
        self as u8
    }
}

/// The 8 marker groups of the original map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkerGroup {
    /// 日本料理, 寿司, 海鮮, そば・うどん
    Japanese,
    /// ラーメン
    Noodles,
    /// 焼肉・焼鳥, ステーキ・洋食
    Grill,
    /// 中華, イタリアン, フレンチ, カレー・エスニック
    International,
    /// カフェ・喫茶店, デザート・スイーツ
    Cafe,
    /// バー・居酒屋
    Bar,
    /// ファストフード, 弁当・テイクアウト
    Fastfood,
    /// レストラン, その他
    General,
}

impl MarkerGroup {
    /// All 8 groups.
    pub const ALL: [MarkerGroup; 8] = [
        MarkerGroup::Japanese,
        MarkerGroup::Noodles,
        MarkerGroup::Grill,
        MarkerGroup::International,
        MarkerGroup::Cafe,
        MarkerGroup::Bar,
        MarkerGroup::Fastfood,
        MarkerGroup::General,
    ];

    /// The stable machine name.
    pub fn as_str(self) -> &'static str {
        match self {
            MarkerGroup::Japanese => "japanese",
            MarkerGroup::Noodles => "noodles",
            MarkerGroup::Grill => "grill",
            MarkerGroup::International => "international",
            MarkerGroup::Cafe => "cafe",
            MarkerGroup::Bar => "bar",
            MarkerGroup::Fastfood => "fastfood",
            MarkerGroup::General => "general",
        }
    }
}

/// Google's four price levels, shown by the map as yen ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceLevel {
    /// `PRICE_LEVEL_INEXPENSIVE`, 手頃, ～1000円
    Inexpensive,
    /// `PRICE_LEVEL_MODERATE`, 普通, 1000-2000円
    Moderate,
    /// `PRICE_LEVEL_EXPENSIVE`, 高価, 2000-3000円
    Expensive,
    /// `PRICE_LEVEL_VERY_EXPENSIVE`, 非常に高価, 3000円～
    VeryExpensive,
}

impl PriceLevel {
    /// All four, cheapest first.
    pub const ALL: [PriceLevel; 4] = [
        PriceLevel::Inexpensive,
        PriceLevel::Moderate,
        PriceLevel::Expensive,
        PriceLevel::VeryExpensive,
    ];

    /// The map's yen range.
    pub fn yen_range(self) -> &'static str {
        match self {
            PriceLevel::Inexpensive => "～1000円",
            PriceLevel::Moderate => "1000-2000円",
            PriceLevel::Expensive => "2000-3000円",
            PriceLevel::VeryExpensive => "3000円～",
        }
    }

    /// The original sheets' label (価格帯 column).
    pub fn label_ja(self) -> &'static str {
        match self {
            PriceLevel::Inexpensive => "手頃",
            PriceLevel::Moderate => "普通",
            PriceLevel::Expensive => "高価",
            PriceLevel::VeryExpensive => "非常に高価",
        }
    }

    /// The stable machine name.
    pub fn as_str(self) -> &'static str {
        match self {
            PriceLevel::Inexpensive => "inexpensive",
            PriceLevel::Moderate => "moderate",
            PriceLevel::Expensive => "expensive",
            PriceLevel::VeryExpensive => "very_expensive",
        }
    }

    /// 1 (cheapest) to 4.
    pub fn rank(self) -> u8 {
        self as u8 + 1
    }

    /// Parses a machine name, a sheet label, a yen range, a Places API enum (`PRICE_LEVEL_MODERATE`)
    /// or a rank `1`–`4`. `PRICE_LEVEL_FREE` and `PRICE_LEVEL_UNSPECIFIED` give `None`.
    pub fn parse(s: &str) -> Option<PriceLevel> {
        let s = s.trim();
        PriceLevel::ALL.into_iter().find(|p| {
            s == p.as_str()
                || s == p.label_ja()
                || s == p.yen_range()
                || s == p.rank().to_string()
                || s.strip_prefix("PRICE_LEVEL_")
                    .is_some_and(|rest| rest.eq_ignore_ascii_case(p.as_str()))
        })
    }
}

/// Whether a business is open for business at all (not whether it is open now).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BusinessStatus {
    /// 営業中 (`OPERATIONAL`)
    Operational,
    /// 一時休業 (`CLOSED_TEMPORARILY`)
    TemporarilyClosed,
    /// 閉店 (`CLOSED_PERMANENTLY`): kept and marked, never deleted.
    PermanentlyClosed,
    /// 不明
    #[default]
    Unknown,
}

impl BusinessStatus {
    /// The sheet label (営業状況).
    pub fn label_ja(self) -> &'static str {
        match self {
            BusinessStatus::Operational => "営業中",
            BusinessStatus::TemporarilyClosed => "一時休業",
            BusinessStatus::PermanentlyClosed => "閉店",
            BusinessStatus::Unknown => "不明",
        }
    }

    /// The stable machine name.
    pub fn as_str(self) -> &'static str {
        match self {
            BusinessStatus::Operational => "operational",
            BusinessStatus::TemporarilyClosed => "temporarily_closed",
            BusinessStatus::PermanentlyClosed => "permanently_closed",
            BusinessStatus::Unknown => "unknown",
        }
    }

    /// Parses a machine name, a sheet label or a Places API value (`OPERATIONAL`, …).
    pub fn parse(s: &str) -> Option<BusinessStatus> {
        match s.trim() {
            "operational" | "営業中" | "OPERATIONAL" => Some(BusinessStatus::Operational),
            "temporarily_closed" | "一時休業" | "CLOSED_TEMPORARILY" => {
                Some(BusinessStatus::TemporarilyClosed)
            }
            "permanently_closed" | "閉店" | "CLOSED_PERMANENTLY" => {
                Some(BusinessStatus::PermanentlyClosed)
            }
            "unknown" | "不明" | "" | "BUSINESS_STATUS_UNSPECIFIED" => {
                Some(BusinessStatus::Unknown)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eighteen_cuisines_in_eight_groups() {
        assert_eq!(Cuisine::ALL.len(), 18);
        for g in MarkerGroup::ALL {
            assert!(Cuisine::ALL.iter().any(|c| c.group() == g), "{g:?} empty");
        }
        for (i, c) in Cuisine::ALL.iter().enumerate() {
            assert_eq!(c.index() as usize, i);
            assert_eq!(Cuisine::parse(c.label_ja()), Some(*c));
            assert_eq!(Cuisine::parse(c.as_str()), Some(*c));
        }
    }

    #[test]
    fn price_parses_every_form() {
        assert_eq!(
            PriceLevel::parse("PRICE_LEVEL_VERY_EXPENSIVE"),
            Some(PriceLevel::VeryExpensive)
        );
        assert_eq!(PriceLevel::parse("普通"), Some(PriceLevel::Moderate));
        assert_eq!(PriceLevel::parse("～1000円"), Some(PriceLevel::Inexpensive));
        assert_eq!(PriceLevel::parse("PRICE_LEVEL_FREE"), None);
        assert_eq!(PriceLevel::parse("3"), Some(PriceLevel::Expensive));
    }

    #[test]
    fn kind_parses_sheet_names() {
        assert_eq!(Kind::parse("parkings"), Some(Kind::Parking));
        assert_eq!(Kind::parse("Toilet"), Some(Kind::Toilet));
        assert_eq!(Kind::parse("bus"), None);
    }
}
