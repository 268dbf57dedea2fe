//! Deterministic synthetic places for first runs and scale benchmarks.
//!
//! Every demo place sits at a real town point of the region (jittered by up to ~400 m), carries
//! the `demo` source and the [`QualityFlag::Demo`] flag, and has a name ending in `#<n>`, so no one
//! can mistake it for a real business. The same `(count, seed)` always gives the same places: the
//! generator is a private SplitMix64, not a crate whose stream might change between versions.

use chrono::{DateTime, Utc};

use crate::features::Feature;
use crate::geo::LatLng;
use crate::hours::{OpeningHours, Period, WeekTime, Weekday};
use crate::kind::{BusinessStatus, Cuisine, Kind, PriceLevel};
use crate::place::{Place, QualityFlag, Rating, Source};
use crate::region::Region;

/// SplitMix64: tiny, fast and with a fixed output stream.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Picks by integer weights.
    fn weighted<T: Copy>(&mut self, items: &[(T, u32)]) -> T {
        let total: u32 = items.iter().map(|(_, w)| w).sum();
        let mut r = self.below(u64::from(total)) as u32;
        for (item, w) in items {
            if r < *w {
                return *item;
            }
            r -= w;
        }
        items[items.len() - 1].0
    }
}

/// The time every demo place is stamped with (fixed, so output is reproducible).
pub fn demo_timestamp() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default() // 2026-01-01T00:00:00Z
}

// Sado's curated lists hold 445 restaurants, 112 parking lots and 71 toilets.
const KINDS: [(Kind, u32); 3] = [
    (Kind::Restaurant, 445),
    (Kind::Parking, 112),
    (Kind::Toilet, 71),
];

const CUISINES: [(Cuisine, u32); 18] = [
    (Cuisine::Japanese, 10),
    (Cuisine::Sushi, 9),
    (Cuisine::Seafood, 9),
    (Cuisine::YakinikuYakitori, 5),
    (Cuisine::Ramen, 8),
    (Cuisine::SobaUdon, 8),
    (Cuisine::Chinese, 4),
    (Cuisine::Italian, 4),
    (Cuisine::French, 1),
    (Cuisine::Cafe, 12),
    (Cuisine::BarIzakaya, 9),
    (Cuisine::FastFood, 3),
    (Cuisine::DessertSweets, 5),
    (Cuisine::CurryEthnic, 2),
    (Cuisine::SteakWestern, 2),
    (Cuisine::BentoTakeout, 4),
    (Cuisine::Restaurant, 4),
    (Cuisine::Other, 3),
];

fn cuisine_words(c: Cuisine) -> (&'static [&'static str], &'static [&'static str]) {
    use Cuisine::*;
    match c {
        Japanese => (
            &["割烹", "和食処", "料亭", "御食事処"],
            &["いさりび", "松風", "朱鷺", "金北"],
        ),
        Sushi => (
            &["鮨", "寿司処", "すし"],
            &["海鮮丸", "弁慶", "大佐渡", "浜乃"],
        ),
        Seafood => (
            &["海鮮食堂", "浜焼き", "磯料理"],
            &["かもめ", "漁火", "真野湾", "小木港"],
        ),
        YakinikuYakitori => (&["焼肉", "焼鳥", "炭火焼"], &["牛角亭", "鳥よし", "炎"]),
        Ramen => (
            &["らーめん", "中華そば", "麺屋"],
            &["一番", "しお風", "あご出汁"],
        ),
        SobaUdon => (
            &["手打ちそば", "そば処", "うどん"],
            &["山びこ", "庄屋", "清水"],
        ),
        Chinese => (&["中華料理", "飯店", "菜館"], &["龍門", "福来", "萬福"]),
        Italian => (
            &["トラットリア", "ピッツェリア", "オステリア"],
            &["マーレ", "ソーレ", "ルーチェ"],
        ),
        French => (&["ビストロ", "レストラン"], &["ラメール", "シエル"]),
        Cafe => (
            &["カフェ", "珈琲店", "喫茶"],
            &["こもれび", "海音", "ひだまり", "灯台"],
        ),
        BarIzakaya => (
            &["居酒屋", "酒場", "バー"],
            &["どんぶらこ", "佐渡っ子", "月あかり"],
        ),
        FastFood => (&["バーガー", "ドッグ"], &["アイランド", "サンセット"]),
        DessertSweets => (
            &["菓子処", "ジェラート", "甘味処"],
            &["おけさ", "たらい舟", "いちご"],
        ),
        CurryEthnic => (&["カレー", "スパイス食堂"], &["マサラ", "ガネーシャ"]),
        SteakWestern => (
            &["洋食", "ステーキハウス", "グリル"],
            &["佐渡牛", "あけぼの"],
        ),
        BentoTakeout => (&["弁当", "惣菜"], &["おかず屋", "まんぷく"]),
        Restaurant => (&["レストラン", "食堂"], &["みなと", "展望台"]),
        Other => (&["売店", "茶屋"], &["峠", "岬"]),
    }
}

/// Weekly schedules in common shapes: (open, close) minutes for working days, and closed days.
const SCHEDULES: [(&[(u16, u16)], u8); 7] = [
    (&[(11 * 60, 14 * 60), (17 * 60, 21 * 60)], 0b000_0010), // lunch + dinner, closed Monday
    (&[(11 * 60, 15 * 60)], 0b000_0100),                     // lunch only, closed Tuesday
    (&[(17 * 60, 26 * 60)], 0b000_0001),                     // evening past midnight, closed Sunday
    (&[(9 * 60, 18 * 60)], 0b000_1000),                      // day, closed Wednesday
    (&[(7 * 60, 19 * 60)], 0),                               // every day
    (&[(10 * 60 + 30, 17 * 60)], 0b100_0001),                // weekdays-ish, closed Sat/Sun
    (&[(18 * 60, 24 * 60)], 0b000_0011),                     // night, closed Sun/Mon
];

fn schedule(rng: &mut Rng) -> OpeningHours {
    let (spans, closed) = *rng.pick(&SCHEDULES);
    let mut hours = OpeningHours {
        closed_days: closed,
        ..OpeningHours::default()
    };
    for day in Weekday::ALL {
        if closed & (1 << day.number()) != 0 {
            continue;
        }
        for &(open, close) in spans {
            // `% 7` keeps the day in range, so `new` always succeeds.
            let Some(close_day) = Weekday::new((day.number() + (close / 1440) as u8) % 7) else {
                continue;
            };
            hours.periods.push(Period {
                open: WeekTime { day, minute: open },
                close: Some(WeekTime {
                    day: close_day,
                    minute: close % 1440,
                }),
            });
        }
    }
    hours
}

fn features(rng: &mut Rng, kind: Kind, place: &mut Place) {
    let list: &[(Feature, f64)] = match kind {
        Kind::Restaurant => &[
            (Feature::Takeout, 0.4),
            (Feature::DineIn, 0.9),
            (Feature::Reservable, 0.3),
            (Feature::Delivery, 0.05),
            (Feature::WheelchairAccessible, 0.3),
            (Feature::Beer, 0.5),
            (Feature::Coffee, 0.4),
            (Feature::KidsMenu, 0.2),
        ],
        Kind::Parking => &[
            (Feature::FreeParking, 0.8),
            (Feature::LargeVehicles, 0.3),
            (Feature::Open24h, 0.6),
            (Feature::AccessibleParking, 0.4),
            (Feature::TouristSpot, 0.3),
        ],
        Kind::Toilet => &[
            (Feature::MultipurposeToilet, 0.4),
            (Feature::WheelchairAccessible, 0.5),
            (Feature::DiaperTable, 0.3),
            (Feature::Open24h, 0.7),
            (Feature::Washlet, 0.3),
            (Feature::TouristSpot, 0.4),
        ],
    };
    for &(f, p) in list {
        // Some features stay unknown, as in real data.
        if rng.chance(0.8) {
            place.features.set(f, rng.chance(p));
        }
    }
    if kind == Kind::Parking && place.features.get(Feature::FreeParking) == Some(false) {
        place.features.set(Feature::PaidParking, true);
    }
}

/// The `n`-th demo place (0-based) of a seeded stream. Pure: any `n` can be made on its own.
pub fn demo_place(region: &Region, seed: u64, n: u64) -> Place {
    let mut rng = Rng(seed ^ n.wrapping_mul(0xA24B_AED4_963E_E407));
    rng.next();
    let kind = rng.weighted(&KINDS);
    let town = rng.pick(&region.towns);
    // Up to ~400 m in each direction: near the town point, still inside the region.
    // Rounded to 6 decimals (about 10 cm), as real sources write them.
    let round6 = |v: f64| (v * 1e6).round() / 1e6;
    let lat = round6(town.location.lat() + (rng.unit() - 0.5) * 0.0072);
    let lng = round6(town.location.lng() + (rng.unit() - 0.5) * 0.0092);
    let number = 1 + rng.below(2000);
    let name = match kind {
        Kind::Restaurant => {
            let cuisine = rng.weighted(&CUISINES);
            let (prefixes, names) = cuisine_words(cuisine);
            let name = format!("{} {} #{n}", rng.pick(prefixes), rng.pick(names));
            let mut p = Place::new(kind, name, format!("demo:{seed}:{n}"));
            p.cuisine = Some(cuisine);
            p.price = Some(rng.weighted(&[
                (PriceLevel::Inexpensive, 35),
                (PriceLevel::Moderate, 40),
                (PriceLevel::Expensive, 18),
                (PriceLevel::VeryExpensive, 7),
            ]))
            .filter(|_| rng.chance(0.85));
            p.hours = Some(schedule(&mut rng));
            p.phone = rng
                .chance(0.8)
                .then(|| format!("0259-{:02}-{:04}", 20 + rng.below(70), rng.below(10_000)));
            p
        }
        Kind::Parking => {
            let what = rng.pick(&["駐車場", "第2駐車場", "観光駐車場", "臨時駐車場"]);
            Place::new(
                kind,
                format!("{}{} #{n}", town.name, what),
                format!("demo:{seed}:{n}"),
            )
        }
        Kind::Toilet => {
            let what = rng.pick(&["公衆トイレ", "公園トイレ", "海水浴場トイレ"]);
            Place::new(
                kind,
                format!("{}{} #{n}", town.name, what),
                format!("demo:{seed}:{n}"),
            )
        }
    };
    let mut p = name;
    p.address = Some(format!("新潟県佐渡市{}{}", town.name, number));
    p.postal_code = town.postal_codes.first().cloned();
    p.location = LatLng::new(lat, lng).ok();
    if rng.chance(0.9) {
        p.rating = Some(Rating {
            stars: (30 + rng.below(21)) as f32 / 10.0,
            count: rng.below(400) as u32,
        });
    }
    p.status = if rng.chance(0.03) {
        BusinessStatus::TemporarilyClosed
    } else {
        BusinessStatus::Operational
    };
    features(&mut rng, kind, &mut p);
    p.stamp_all(Source::Demo, demo_timestamp());
    p.flag(QualityFlag::Demo);
    p
}

/// `count` demo places from `seed`, in order.
pub fn demo_places(region: &Region, count: u64, seed: u64) -> impl Iterator<Item = Place> + '_ {
    (0..count).map(move |n| demo_place(region, seed, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_marked() {
        let r = Region::sado();
        let a: Vec<Place> = demo_places(r, 200, 7).collect();
        let b: Vec<Place> = demo_places(r, 200, 7).collect();
        assert_eq!(a, b);
        let c: Vec<Place> = demo_places(r, 200, 8).collect();
        assert_ne!(a, c);
        for p in &a {
            assert!(p.is_demo());
            assert!(p.names.ja.contains('#'));
            let loc = p.location.unwrap();
            assert!(r.contains(loc), "{loc:?}");
            assert_eq!(p.cuisine.is_some(), p.kind == Kind::Restaurant);
        }
    }

    #[test]
    fn realistic_mix() {
        let r = Region::sado();
        let places: Vec<Place> = demo_places(r, 10_000, 1).collect();
        let restaurants = places.iter().filter(|p| p.kind == Kind::Restaurant).count();
        // 445 of 628 in the curated lists: about 71 %.
        assert!((6_700..7_500).contains(&restaurants), "{restaurants}");
        for c in Cuisine::ALL {
            assert!(
                places.iter().any(|p| p.cuisine == Some(c)),
                "{c:?} never generated"
            );
        }
        let open_friday_night = places
            .iter()
            .filter_map(|p| p.hours.as_ref())
            .filter(|h| h.is_open_at(WeekTime::new(Weekday::new(6).unwrap(), 1, 0).unwrap()))
            .count();
        assert!(open_friday_night > 0, "overnight schedules exist");
    }
}
