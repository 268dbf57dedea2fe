//! Test support: deterministic synthetic places at Sado's town points, and a brute-force
//! evaluation of a [`Query`] over plain records to compare the index against.

use chrono::DateTime;
use sadomap_core::{
    Cuisine, Feature, Kind, LatLng, Locality, OpeningHours, Period, Place, PlaceId, PlaceRecord,
    PriceLevel, Rating, Region, WeekTime, Weekday,
};

use super::columns::rating_code;
use super::query::{Query, Sort};
use super::text::query_key;

/// splitmix64.
pub(crate) struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// Name words: kanji, hiragana and katakana spellings of the same things, some Latin.
pub(crate) const WORDS: &[&str] = &[
    "すし",
    "スシ",
    "鮨",
    "らーめん",
    "ラーメン",
    "食堂",
    "海",
    "佐渡",
    "金山",
    "カフェ",
    "かふぇ",
    "茶屋",
    "亭",
    "そば",
    "ソバ",
    "Sado",
    "Cafe",
    "いか",
    "イカ",
    "港",
    "一番",
    "ぶり",
    "浜",
];

/// Parameters of [`synth`].
pub(crate) struct Synth {
    pub n: usize,
    pub seed: u64,
    /// Share of places without coordinates.
    pub unlocated: f64,
}

impl Default for Synth {
    fn default() -> Self {
        Synth {
            n: 1000,
            seed: 1,
            unlocated: 0.02,
        }
    }
}

fn wt(day: u8, minute: u16) -> WeekTime {
    let day = Weekday::new(day % 7).unwrap_or(Weekday::ALL[0]);
    WeekTime {
        day,
        minute: minute.min(1440),
    }
}

/// A handful of schedules, some running past midnight and one past Saturday night.
fn schedules() -> Vec<OpeningHours> {
    let daily = |open: u16, close: u16| -> OpeningHours {
        OpeningHours {
            periods: (0..7)
                .map(|d| Period {
                    open: wt(d, open),
                    close: Some(if close > open {
                        wt(d, close)
                    } else {
                        wt(d + 1, close)
                    }),
                })
                .collect(),
            ..OpeningHours::default()
        }
    };
    vec![
        daily(11 * 60, 14 * 60),
        daily(9 * 60, 17 * 60),
        daily(18 * 60, 2 * 60),
        daily(17 * 60, 23 * 60),
        OpeningHours::always_open(),
        OpeningHours {
            periods: vec![Period {
                open: wt(6, 20 * 60),
                close: Some(wt(0, 3 * 60)),
            }],
            ..OpeningHours::default()
        },
    ]
}

/// Deterministic synthetic records near the region's towns, in shuffled id order.
pub(crate) fn synth(s: &Synth) -> Vec<PlaceRecord> {
    let region = Region::sado();
    let mut rng = Rng(s.seed);
    let hours = schedules();
    let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    let mut out: Vec<PlaceRecord> = (0..s.n)
        .map(|i| {
            let kind = match rng.below(20) {
                0..=10 => Kind::Restaurant,
                11..=15 => Kind::Parking,
                _ => Kind::Toilet,
            };
            let words = 1 + rng.below(3);
            let name: String = (0..words)
                .map(|_| WORDS[rng.below(WORDS.len())])
                .collect::<Vec<_>>()
                .join(if rng.chance(0.2) { " " } else { "" });
            let mut p = Place::new(kind, name, format!("synth:{i}"));
            let town = &region.towns[rng.below(region.towns.len())];
            p.locality = match rng.below(50) {
                0 => Locality::Unknown,
                1 => Locality::Outside,
                2 => Locality::District("架空村".into()),
                _ => Locality::District(region.districts[usize::from(town.district)].name.clone()),
            };
            p.town = (!rng.chance(0.05)).then(|| town.name.clone());
            if rng.chance(0.3) {
                p.names.kana = Some("さどの みせ".into());
            }
            p.address = Some(format!("新潟県佐渡市{}{}", town.name, 1 + rng.below(3000)));
            if !rng.chance(s.unlocated) {
                let lat = town.location.lat() + (rng.unit() - 0.5) * 0.02;
                let lng = town.location.lng() + (rng.unit() - 0.5) * 0.02;
                p.location = LatLng::new(lat, lng).ok();
            }
            if kind == Kind::Restaurant && rng.chance(0.9) {
                p.cuisine = Some(Cuisine::ALL[rng.below(Cuisine::ALL.len())]);
            }
            if rng.chance(0.7) {
                p.price = Some(PriceLevel::ALL[rng.below(4)]);
            }
            if rng.chance(0.7) {
                p.rating = Some(Rating {
                    stars: 1.0 + rng.below(41) as f32 / 10.0,
                    count: rng.below(500) as u32,
                });
            }
            if rng.chance(0.8) {
                p.hours = Some(hours[rng.below(hours.len())].clone());
            }
            for f in Feature::ALL.iter().take(12) {
                if rng.chance(0.3) {
                    p.features.set(*f, true);
                } else if rng.chance(0.2) {
                    p.features.set(*f, false);
                }
            }
            PlaceRecord {
                id: PlaceId(i as i64 * 3 + 10),
                place: p,
                created_at: t0,
                updated_at: t0,
                details_checked_at: None,
                id_checked_at: None,
            }
        })
        .collect();
    // Shuffle so the index has to order by id itself.
    for i in (1..out.len()).rev() {
        let j = rng.below(i + 1);
        out.swap(i, j);
    }
    out
}

fn town_keys(region: &Region, p: &Place) -> Vec<String> {
    let Some(t) = &p.town else { return vec![] };
    let district = p.locality.district().and_then(|d| region.district_index(d));
    let found = region
        .towns
        .iter()
        .find(|x| Some(x.district) == district && &x.name == t)
        .or_else(|| region.towns.iter().find(|x| &x.name == t));
    match found {
        Some(x) => vec![
            query_key(&x.name),
            query_key(x.kana.as_deref().unwrap_or("")),
        ],
        None => vec![query_key(t)],
    }
}

/// Whether `r` matches every filter of `q`, evaluated directly on the record.
pub(crate) fn brute_matches(region: &Region, q: &Query, r: &PlaceRecord) -> bool {
    let p = &r.place;
    if !q.kinds.is_empty() && !q.kinds.contains(&p.kind) {
        return false;
    }
    if !q.districts.is_empty() && !q.districts.contains(&p.locality) {
        return false;
    }
    if !q.cuisines.is_empty() && !p.cuisine.is_some_and(|c| q.cuisines.contains(&c)) {
        return false;
    }
    if q.price_min.is_some() || q.price_max.is_some() {
        match p.price {
            None => return false,
            Some(x) if q.price_min.is_some_and(|m| x < m) || q.price_max.is_some_and(|m| x > m) => {
                return false
            }
            Some(_) => {}
        }
    }
    if let Some(m) = q.min_rating {
        if p.rating
            .is_none_or(|x| rating_code(x.stars) < rating_code(m))
        {
            return false;
        }
    }
    if let Some(t) = q.open_at {
        if !p.hours.as_ref().is_some_and(|h| h.is_open_at(t)) {
            return false;
        }
    }
    if !p.features.present().contains_all(q.features) {
        return false;
    }
    if let Some(b) = q.bbox {
        if !p.location.is_some_and(|l| b.contains(l)) {
            return false;
        }
    }
    if let Some((at, Some(radius))) = q.near {
        if !p.location.is_some_and(|l| at.distance_m(l) <= radius) {
            return false;
        }
    }
    if let Some(text) = &q.q {
        let k = query_key(text);
        if !k.is_empty() {
            let mut fields: Vec<String> = [
                &Some(p.names.ja.clone()),
                &p.names.kana,
                &p.names.en,
                &p.address,
            ]
            .into_iter()
            .flatten()
            .map(|s| query_key(s))
            .collect();
            fields.extend(town_keys(region, p));
            if let Some(d) = p.locality.district() {
                fields.push(query_key(d));
                if let Some(x) = region.districts.iter().find(|x| x.name == d) {
                    fields.push(query_key(&x.kana));
                }
            }
            if !fields.iter().any(|f| f.contains(&k)) {
                return false;
            }
        }
    }
    true
}

/// Every match of `q` (ignoring limit and cursor) in the query's order, with distances.
pub(crate) fn brute(
    region: &Region,
    q: &Query,
    recs: &[PlaceRecord],
) -> Vec<(PlaceId, Option<f64>)> {
    let mut m: Vec<&PlaceRecord> = recs
        .iter()
        .filter(|r| brute_matches(region, q, r))
        .collect();
    let dist = |r: &PlaceRecord| -> Option<f64> {
        let (at, _) = q.near?;
        r.place.location.map(|l| at.distance_m(l))
    };
    m.sort_by(|a, b| {
        let by = match q.sort {
            Sort::Id => std::cmp::Ordering::Equal,
            Sort::Distance => dist(a)
                .unwrap_or(f64::INFINITY)
                .total_cmp(&dist(b).unwrap_or(f64::INFINITY)),
            Sort::Name => query_key(&a.place.names.ja).cmp(&query_key(&b.place.names.ja)),
            Sort::Rating => {
                let k = |r: &PlaceRecord| r.place.rating.map_or(0, |x| rating_code(x.stars));
                k(b).cmp(&k(a))
            }
            Sort::Price => {
                let k = |r: &PlaceRecord| r.place.price.map_or(255, |x| x.rank());
                k(a).cmp(&k(b))
            }
        };
        by.then(a.id.cmp(&b.id))
    });
    m.into_iter().map(|r| (r.id, dist(r))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synth_is_deterministic_and_varied() {
        let a = synth(&Synth::default());
        let b = synth(&Synth::default());
        assert_eq!(a, b);
        assert!(a.iter().any(|r| r.place.location.is_none()));
        assert!(a.iter().any(|r| r.place.kind == Kind::Toilet));
        assert!(a.iter().any(|r| r.place.locality == Locality::Outside));
    }
}
