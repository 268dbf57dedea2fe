//! Per-place filter data as compact columns (struct of arrays, one entry per row; rows are the
//! records in id order), the dictionaries the codes point into (districts, towns, opening-hours
//! schedules), and the column part of a query's filter.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use rayon::prelude::*;

use super::text::GramHasher;

use sadomap_core::{Locality, OpeningHours, PlaceRecord, Region, WeekTime};

/// District code of a place whose district name did not fit the 253-entry dictionary.
pub(crate) const DISTRICT_OTHER: u8 = 253;
/// District code of [`Locality::Unknown`].
pub(crate) const DISTRICT_UNKNOWN: u8 = 254;
/// District code of [`Locality::Outside`].
pub(crate) const DISTRICT_OUTSIDE: u8 = 255;
/// Cuisine code of a place without a cuisine.
pub(crate) const NO_CUISINE: u8 = 255;
/// Town code of a place without a (known) town.
pub(crate) const NO_TOWN: u16 = u16::MAX;
/// Location code of a place without coordinates.
pub(crate) const NO_LOCATION: u32 = u32::MAX;

/// A hash map with a cheap hasher (keys are short names and precomputed hashes).
type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<GramHasher>>;

/// The codes of one row that need no dictionary beyond the region's (`None`: look up or append
/// in the sequential pass).
struct RowCodes {
    features: u64,
    /// Hash of the opening periods.
    hours: Option<u64>,
    rating: u16,
    town: Option<u16>,
    district: Option<u8>,
    kind: u8,
    cuisine: u8,
    price: u8,
}

/// One town the index knows: the region's towns first, then names only seen in the data.
#[derive(Debug, Clone)]
pub(crate) struct TownEntry {
    pub name: String,
    pub kana: Option<String>,
}

/// The column store.
#[derive(Debug, Default)]
pub(crate) struct Columns {
    /// `Kind::ALL` position.
    pub kind: Vec<u8>,
    /// Index into `district_names`, or one of the `DISTRICT_*` codes.
    pub district: Vec<u8>,
    /// `Cuisine::index()`, or [`NO_CUISINE`].
    pub cuisine: Vec<u8>,
    /// `PriceLevel::rank()` (1–4), or 0.
    pub price: Vec<u8>,
    /// Hundredths of a star plus one, or 0 when unrated.
    pub rating: Vec<u16>,
    /// Bits of the features known present.
    pub features: Vec<u64>,
    /// Index into `schedules` plus one, or 0 without hours.
    pub hours: Vec<u32>,
    /// Index into `towns`, or [`NO_TOWN`].
    pub town: Vec<u16>,
    /// Position in the spatial store (set by the spatial index), or [`NO_LOCATION`].
    pub loc: Vec<u32>,
    /// District names: the region's in its order, then names only seen in the data.
    pub district_names: Vec<String>,
    /// District readings (empty for names not in the region).
    pub district_kana: Vec<String>,
    /// Towns.
    pub towns: Vec<TownEntry>,
    /// Distinct opening schedules (periods only).
    pub schedules: Vec<OpeningHours>,
}

/// Rating in the column's unit: hundredths of a star plus one (0 = unrated).
pub(crate) fn rating_code(stars: f32) -> u16 {
    if stars.is_finite() {
        ((f64::from(stars) * 100.0).round().clamp(0.0, 65_000.0) as u16) + 1
    } else {
        0
    }
}

impl Columns {
    /// Builds the columns of `records` (already in row order).
    ///
    /// Codes that only need the region's dictionaries are worked out in parallel; one sequential
    /// pass then appends names the region does not know (in order of first appearance) and
    /// interns the opening schedules.
    pub fn build(records: &[PlaceRecord], region: &Region) -> Columns {
        let n = records.len();
        let district_ix: FastMap<&str, u8> = region
            .districts
            .iter()
            .enumerate()
            .map(|(i, d)| (d.name.as_str(), i as u8))
            .collect();
        // Towns by (district, name), and by name alone as a fallback.
        let mut town_ix: FastMap<(u8, &str), u16> = FastMap::default();
        let mut town_by_name: FastMap<&str, u16> = FastMap::default();
        for (i, t) in region.towns.iter().enumerate().take(usize::from(NO_TOWN)) {
            town_ix.insert((t.district, t.name.as_str()), i as u16);
            town_by_name.entry(t.name.as_str()).or_insert(i as u16);
        }
        let rows: Vec<RowCodes> = records
            .par_iter()
            .map(|r| {
                let p = &r.place;
                let district = match &p.locality {
                    Locality::Unknown => Some(DISTRICT_UNKNOWN),
                    Locality::Outside => Some(DISTRICT_OUTSIDE),
                    Locality::District(name) => district_ix.get(name.as_str()).copied(),
                };
                let town = match &p.town {
                    None => Some(NO_TOWN),
                    Some(name) => district
                        .and_then(|d| town_ix.get(&(d, name.as_str())))
                        .or_else(|| town_by_name.get(name.as_str()))
                        .copied(),
                };
                let hours = p.hours.as_ref().map(|h| {
                    h.periods.iter().fold(h.periods.len() as u64, |acc, p| {
                        let close = p.close.map_or(u16::MAX, |c| c.minute_of_week());
                        let v = u64::from(p.open.minute_of_week()) << 16 | u64::from(close);
                        (acc.rotate_left(29) ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                    })
                });
                RowCodes {
                    features: p.features.present().bits(),
                    hours,
                    rating: p.rating.map_or(0, |x| rating_code(x.stars)),
                    town,
                    district,
                    kind: kind_code(p.kind),
                    cuisine: p.cuisine.map_or(NO_CUISINE, |x| x.index()),
                    price: p.price.map_or(0, |x| x.rank()),
                }
            })
            .collect();
        let mut c = Columns {
            kind: Vec::with_capacity(n),
            district: Vec::with_capacity(n),
            cuisine: Vec::with_capacity(n),
            price: Vec::with_capacity(n),
            rating: Vec::with_capacity(n),
            features: Vec::with_capacity(n),
            hours: Vec::with_capacity(n),
            town: Vec::with_capacity(n),
            loc: vec![NO_LOCATION; n],
            district_names: region.districts.iter().map(|d| d.name.clone()).collect(),
            district_kana: region.districts.iter().map(|d| d.kana.clone()).collect(),
            towns: region
                .towns
                .iter()
                .map(|t| TownEntry {
                    name: t.name.clone(),
                    kana: t.kana.clone(),
                })
                .collect(),
            schedules: Vec::new(),
        };
        // Names only seen in the data, and schedules by hash (ids of equal hashes).
        let mut new_districts: FastMap<&str, u8> = FastMap::default();
        let mut new_towns: FastMap<&str, u16> = FastMap::default();
        let mut sched_ix: FastMap<u64, Vec<u32>> = FastMap::default();
        for (r, x) in records.iter().zip(rows) {
            let p = &r.place;
            c.kind.push(x.kind);
            let d = match (x.district, &p.locality) {
                (Some(d), _) => d,
                (None, Locality::District(name)) => match new_districts.get(name.as_str()) {
                    Some(&i) => i,
                    None if c.district_names.len() < usize::from(DISTRICT_OTHER) => {
                        let i = c.district_names.len() as u8;
                        c.district_names.push(name.clone());
                        c.district_kana.push(String::new());
                        new_districts.insert(name, i);
                        i
                    }
                    None => DISTRICT_OTHER,
                },
                (None, _) => DISTRICT_UNKNOWN,
            };
            c.district.push(d);
            c.cuisine.push(x.cuisine);
            c.price.push(x.price);
            c.rating.push(x.rating);
            c.features.push(x.features);
            let h = match (&p.hours, x.hours) {
                (Some(h), Some(hash)) => {
                    let ids = sched_ix.entry(hash).or_default();
                    let found = ids
                        .iter()
                        .copied()
                        .find(|&id| c.schedules[id as usize].periods == h.periods);
                    let id = found.unwrap_or_else(|| {
                        let id = c.schedules.len() as u32;
                        c.schedules.push(OpeningHours {
                            periods: h.periods.clone(),
                            ..OpeningHours::default()
                        });
                        ids.push(id);
                        id
                    });
                    id + 1
                }
                _ => 0,
            };
            c.hours.push(h);
            let t = match (x.town, &p.town) {
                (Some(t), _) => t,
                (None, Some(name)) => match new_towns.get(name.as_str()) {
                    Some(&t) => t,
                    None if c.towns.len() < usize::from(NO_TOWN) => {
                        let t = c.towns.len() as u16;
                        c.towns.push(TownEntry {
                            name: name.clone(),
                            kana: None,
                        });
                        new_towns.insert(name, t);
                        t
                    }
                    None => NO_TOWN,
                },
                (None, None) => NO_TOWN,
            };
            c.town.push(t);
        }
        c
    }

    /// Bytes held by the columns and dictionaries.
    pub fn memory_bytes(&self) -> usize {
        let strings: usize = self
            .district_names
            .iter()
            .chain(&self.district_kana)
            .map(|s| s.capacity() + 24)
            .sum::<usize>()
            + self
                .towns
                .iter()
                .map(|t| t.name.capacity() + t.kana.as_ref().map_or(0, |k| k.capacity()) + 48)
                .sum::<usize>();
        let schedules: usize = self
            .schedules
            .iter()
            .map(|s| std::mem::size_of::<OpeningHours>() + s.periods.capacity() * 12)
            .sum();
        self.kind.capacity()
            + self.district.capacity()
            + self.cuisine.capacity()
            + self.price.capacity()
            + self.rating.capacity() * 2
            + self.features.capacity() * 8
            + self.hours.capacity() * 4
            + self.town.capacity() * 2
            + self.loc.capacity() * 4
            + strings
            + schedules
    }
}

/// The position of `k` in `Kind::ALL`.
pub(crate) fn kind_code(k: sadomap_core::Kind) -> u8 {
    sadomap_core::Kind::ALL
        .iter()
        .position(|&x| x == k)
        .unwrap_or(0) as u8
}

/// The column part of a query's filter, with every value already in column units.
#[derive(Debug, Clone)]
pub(crate) struct ColumnFilter {
    /// Bit `k` set for each kind code allowed.
    pub kinds: u8,
    /// Bit `d` set for each district code allowed; `None` for any.
    pub districts: Option<[u64; 4]>,
    /// District names to compare for rows with [`DISTRICT_OTHER`].
    pub other_districts: Vec<String>,
    /// Bit `c` set for each cuisine allowed; `None` for any.
    pub cuisines: Option<u32>,
    /// Inclusive price rank range; `None` for any.
    pub price: Option<(u8, u8)>,
    /// Minimum rating code; 0 for any.
    pub rating: u16,
    /// Feature bits that must all be present.
    pub features: u64,
    /// Open at this moment.
    pub open_at: Option<WeekTime>,
}

impl ColumnFilter {
    /// Whether the filter lets every row through.
    pub fn is_trivial(&self) -> bool {
        self.kinds == 0b111
            && self.districts.is_none()
            && self.cuisines.is_none()
            && self.price.is_none()
            && self.rating == 0
            && self.features == 0
            && self.open_at.is_none()
    }

    /// Whether row `row` passes.
    #[inline]
    pub fn matches(&self, c: &Columns, records: &[PlaceRecord], row: usize) -> bool {
        if self.kinds != 0b111 && self.kinds & (1 << c.kind[row]) == 0 {
            return false;
        }
        if let Some(mask) = self.cuisines {
            let cu = c.cuisine[row];
            if cu == NO_CUISINE || mask & (1 << cu) == 0 {
                return false;
            }
        }
        if let Some(mask) = &self.districts {
            let d = c.district[row];
            if mask[usize::from(d >> 6)] & (1 << (d & 63)) == 0 {
                return false;
            }
            if d == DISTRICT_OTHER {
                let name = records[row].place.locality.district().unwrap_or("");
                if !self.other_districts.iter().any(|o| o == name) {
                    return false;
                }
            }
        }
        if let Some((lo, hi)) = self.price {
            let p = c.price[row];
            if p < lo || p > hi {
                return false;
            }
        }
        if self.rating > 0 && c.rating[row] < self.rating {
            return false;
        }
        if self.features != 0 && c.features[row] & self.features != self.features {
            return false;
        }
        if let Some(t) = self.open_at {
            let h = c.hours[row];
            if h == 0 {
                return false;
            }
            match c.schedules.get(h as usize - 1) {
                Some(s) if s.is_open_at(t) => {}
                _ => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use sadomap_core::{Cuisine, Kind, Period, Place, PlaceId, Weekday};

    fn rec(id: i64, p: Place) -> PlaceRecord {
        let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        PlaceRecord {
            id: PlaceId(id),
            place: p,
            created_at: t,
            updated_at: t,
            details_checked_at: None,
            id_checked_at: None,
        }
    }

    #[test]
    fn codes_and_dictionaries() {
        let region = Region::sado();
        let mut a = Place::new(Kind::Restaurant, "a", "t:1");
        a.locality = Locality::District("両津".into());
        a.town = Some("両津湊".into());
        a.cuisine = Some(Cuisine::Ramen);
        let mut b = Place::new(Kind::Toilet, "b", "t:2");
        b.locality = Locality::District("どこか".into());
        b.town = Some("架空町".into());
        let mut c = Place::new(Kind::Parking, "c", "t:3");
        c.locality = Locality::Outside;
        let h = OpeningHours::always_open();
        a.hours = Some(h.clone());
        c.hours = Some(h);
        let recs = vec![rec(1, a), rec(2, b), rec(3, c)];
        let cols = Columns::build(&recs, region);
        assert_eq!(cols.kind, vec![0, 2, 1]);
        assert_eq!(cols.district[0], 0);
        assert_eq!(
            cols.district[1], 10,
            "new name appended after the region's ten"
        );
        assert_eq!(cols.district_names[10], "どこか");
        assert_eq!(cols.district[2], DISTRICT_OUTSIDE);
        assert_eq!(
            cols.cuisine,
            vec![Cuisine::Ramen.index(), NO_CUISINE, NO_CUISINE]
        );
        assert_eq!(cols.towns[usize::from(cols.town[0])].name, "両津湊");
        assert_eq!(cols.towns[usize::from(cols.town[1])].name, "架空町");
        assert_eq!(cols.town[2], NO_TOWN);
        assert_eq!(cols.schedules.len(), 1, "identical schedules are interned");
        assert_eq!(cols.hours, vec![1, 0, 1]);
    }

    #[test]
    fn open_at_uses_overnight_periods() {
        let region = Region::sado();
        let wt = |d, h, m| WeekTime::new(Weekday::new(d).unwrap(), h, m).unwrap();
        let mut p = Place::new(Kind::Restaurant, "bar", "t:1");
        p.hours = Some(OpeningHours {
            periods: vec![
                Period {
                    open: wt(5, 18, 0),
                    close: Some(wt(6, 2, 0)),
                },
                Period {
                    open: wt(6, 18, 0),
                    close: Some(wt(0, 2, 0)),
                },
            ],
            ..OpeningHours::default()
        });
        let recs = vec![rec(1, p)];
        let cols = Columns::build(&recs, region);
        let f = |t| ColumnFilter {
            kinds: 0b111,
            districts: None,
            other_districts: vec![],
            cuisines: None,
            price: None,
            rating: 0,
            features: 0,
            open_at: Some(t),
        };
        assert!(
            f(wt(6, 1, 30)).matches(&cols, &recs, 0),
            "Friday night into Saturday"
        );
        assert!(
            f(wt(0, 1, 59)).matches(&cols, &recs, 0),
            "Saturday night into Sunday"
        );
        assert!(
            !f(wt(0, 2, 0)).matches(&cols, &recs, 0),
            "closing minute is closed"
        );
        assert!(!f(wt(3, 12, 0)).matches(&cols, &recs, 0));
    }

    #[test]
    fn rating_code_is_hundredths_plus_one() {
        assert_eq!(rating_code(4.2), 421);
        assert_eq!(rating_code(f32::NAN), 0);
        assert_eq!(rating_code(0.0), 1);
    }
}
