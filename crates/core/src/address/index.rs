//! The lookup tables of district assignment and the address reader (see the parent module).

// FxHash: the keys are short strings from our own tables, so no DoS concern, and the
// longest-match scan hashes a dozen prefixes per address position.
use rustc_hash::FxHashMap as HashMap;

use crate::geo::{BBox, LatLng};
use crate::normalize::{address_key, is_kanji};
use crate::place::Locality;
use crate::region::Region;

use super::{parse_postal_code, Assignment, Step};

/// Characters that separate the segments of an address.
fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            ',' | '、'
                | '。'
                | '.'
                | '('
                | ')'
                | '['
                | ']'
                | '「'
                | '」'
                | '『'
                | '』'
                | '/'
                | '・'
                | ';'
        )
}

/// The matching form of a text: [`address_key`], ASCII lower-cased, separators removed; with the
/// byte offsets where its segments start.
fn match_form(s: &str) -> (String, Vec<usize>) {
    let key = address_key(s);
    let mut joined = String::with_capacity(key.len());
    let mut starts = Vec::new();
    let mut at_start = true;
    for c in key.chars() {
        if is_separator(c) {
            at_start = true;
        } else {
            if at_start {
                starts.push(joined.len());
                at_start = false;
            }
            joined.push(c.to_ascii_lowercase());
        }
    }
    (joined, starts)
}

/// What a name found in an address stands for. One key may stand for several things (the town
/// 小木町 is also the bare form of the old municipality 佐渡郡小木町).
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    /// A town (index into the region's towns).
    town: Option<u32>,
    /// A district name or old municipality name (index of the district).
    district: Option<u8>,
    /// A word to drop (prefecture, city, 日本, 〒, 大字, 字).
    skip: bool,
    /// The word is one of the region's city names (a marker that the address is in the region).
    city: bool,
    /// Another prefecture.
    foreign: bool,
}

/// The prefectures of Japan, used to tell an address in another prefecture.
#[rustfmt::skip]
const PREFECTURES: [&str; 47] = [
    "北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県", "茨城県", "栃木県",
    "群馬県", "埼玉県", "千葉県", "東京都", "神奈川県", "新潟県", "富山県", "石川県", "福井県",
    "山梨県", "長野県", "岐阜県", "静岡県", "愛知県", "三重県", "滋賀県", "京都府", "大阪府",
    "兵庫県", "奈良県", "和歌山県", "鳥取県", "島根県", "岡山県", "広島県", "山口県", "徳島県",
    "香川県", "愛媛県", "高知県", "福岡県", "佐賀県", "長崎県", "熊本県", "大分県", "宮崎県",
    "鹿児島県", "沖縄県",
];

/// Lookup tables for district assignment, derived from a [`Region`].
#[derive(Debug, Clone)]
pub struct AddressIndex {
    entries: HashMap<String, Entry>,
    max_chars: usize,
    /// Per district: town name without the district-name prefix (`湊` for 両津湊) → town.
    suffixes: Vec<HashMap<String, u32>>,
    postal: HashMap<String, (Option<u8>, Option<u32>)>,
    /// First three digits of the region's postal codes.
    postal_areas: Vec<String>,
    /// The region's towns, then the postal towns missing from them.
    town_names: Vec<String>,
    town_districts: Vec<u8>,
    /// Points of the region's towns (same order as the first town names).
    town_points: Vec<LatLng>,
    district_names: Vec<String>,
    bounds: BBox,
}

/// The reading of an address alone.
struct Reading {
    locality: Locality,
    town: Option<u32>,
    step: Step,
}

/// Outcome of scanning the names in an address.
enum Scan {
    /// A name of the region: district and maybe town.
    Found(u8, Option<u32>),
    /// Another prefecture or municipality.
    Foreign,
    /// Nothing; whether a city name of the region was seen.
    Nothing { city: bool },
}

impl AddressIndex {
    /// Builds the tables from a region's towns, districts, postal codes and names.
    pub fn new(region: &Region) -> AddressIndex {
        let mut entries: HashMap<String, Entry> = HashMap::default();
        let mut add = |name: &str, f: &dyn Fn(&mut Entry)| {
            let (key, _) = match_form(name);
            if !key.is_empty() {
                f(entries.entry(key).or_default());
            }
        };
        for (i, t) in region.towns.iter().enumerate() {
            let i = i as u32;
            add(&t.name, &|e| {
                e.town.get_or_insert(i);
            });
        }
        let city_keys: Vec<String> = region.city_names.iter().map(|c| match_form(c).0).collect();
        for (d, district) in region.districts.iter().enumerate() {
            let d = d as u8;
            let mark = |e: &mut Entry| {
                e.district.get_or_insert(d);
            };
            add(&district.name, &mark);
            let former = &district.former_municipality;
            add(former, &mark);
            // The bare form: the old municipality without a leading city or county name.
            let (former_key, _) = match_form(former);
            for city in &city_keys {
                if let Some(bare) = former_key.strip_prefix(city.as_str()) {
                    if !bare.is_empty() {
                        add(bare, &mark);
                    }
                }
            }
        }
        for p in &region.prefecture_names {
            add(p, &|e| e.skip = true);
        }
        for c in &region.city_names {
            add(c, &|e| {
                e.skip = true;
                e.city = true;
            });
        }
        for w in ["日本", "日本国", "japan", "〒", "大字", "字"] {
            add(w, &|e| e.skip = true);
        }
        let own: Vec<String> = region
            .prefecture_names
            .iter()
            .map(|p| match_form(p).0)
            .collect();
        for p in PREFECTURES {
            if !own.iter().any(|o| o == p) {
                add(p, &|e| e.foreign = true);
            }
        }
        // Postal codes; a postal town missing from the town list (Japan Post's `両津福浦` where the
        // list has its 丁目, or a town the list lacks) becomes an extra town name of its district.
        let mut town_names: Vec<String> = region.towns.iter().map(|t| t.name.clone()).collect();
        let mut town_districts: Vec<u8> = region.towns.iter().map(|t| t.district).collect();
        let mut postal = HashMap::default();
        let mut postal_areas: Vec<String> = Vec::new();
        for p in &region.postal_codes {
            let town = match (p.town.is_empty(), p.district) {
                (false, Some(d)) => {
                    let (key, _) = match_form(&p.town);
                    match entries.get(&key).and_then(|e| e.town) {
                        Some(t) => Some(t),
                        None if key.is_empty() => None,
                        None => {
                            let t = town_names.len() as u32;
                            town_names.push(p.town.clone());
                            town_districts.push(d);
                            entries.entry(key).or_default().town = Some(t);
                            Some(t)
                        }
                    }
                }
                _ => None,
            };
            postal.entry(p.code.clone()).or_insert((p.district, town));
            if let Some(area) = p.code.get(..3) {
                if !postal_areas.iter().any(|a| a == area) {
                    postal_areas.push(area.to_owned());
                }
            }
        }
        let district_keys: Vec<String> = region
            .districts
            .iter()
            .map(|d| match_form(&d.name).0)
            .collect();
        let mut suffixes: Vec<HashMap<String, u32>> =
            vec![HashMap::default(); region.districts.len()];
        for (i, (name, &d)) in town_names.iter().zip(&town_districts).enumerate() {
            let d = usize::from(d);
            let (Some(map), Some(prefix)) = (suffixes.get_mut(d), district_keys.get(d)) else {
                continue;
            };
            let (key, _) = match_form(name);
            if let Some(rest) = key.strip_prefix(prefix.as_str()) {
                if !rest.is_empty() {
                    map.entry(rest.to_owned()).or_insert(i as u32);
                }
            }
        }

        let max_chars = entries.keys().map(|k| k.chars().count()).max().unwrap_or(0);
        AddressIndex {
            entries,
            max_chars,
            suffixes,
            postal,
            postal_areas,
            town_names,
            town_districts,
            town_points: region.towns.iter().map(|t| t.location).collect(),
            district_names: region.districts.iter().map(|d| d.name.clone()).collect(),
            bounds: region.bounds,
        }
    }

    /// Byte ends of the prefixes of `s` up to `max` characters, longest first (at most 32).
    fn prefix_ends(s: &str, max: usize) -> impl Iterator<Item = usize> {
        let mut ends = [0usize; 32];
        let mut n = 0;
        for (i, c) in s.char_indices().take(max.min(32)) {
            ends[n] = i + c.len_utf8();
            n += 1;
        }
        (0..n).rev().map(move |k| ends[k])
    }

    /// The longest entry at the start of `s`, with its byte length.
    fn longest(&self, s: &str) -> Option<(usize, Entry)> {
        Self::prefix_ends(s, self.max_chars)
            .find_map(|end| self.entries.get(&s[..end]).map(|e| (end, *e)))
    }

    /// A town of district `d` at the start of `s`: whole, or without the district-name prefix.
    /// Tries again after a leading `大字`/`字`.
    fn town_in_district(&self, s: &str, d: u8) -> Option<u32> {
        let mut s = s;
        loop {
            let whole = Self::prefix_ends(s, self.max_chars).find_map(|end| {
                let t = self.entries.get(&s[..end])?.town?;
                (self.town_districts.get(t as usize) == Some(&d)).then_some((end, t))
            });
            let short = self.suffixes.get(usize::from(d)).and_then(|map| {
                Self::prefix_ends(s, self.max_chars)
                    .find_map(|end| map.get(&s[..end]).map(|&t| (end, t)))
            });
            let best = match (whole, short) {
                (Some(a), Some(b)) => Some(if b.0 > a.0 { b } else { a }),
                (a, b) => a.or(b),
            };
            if let Some((_, t)) = best {
                return Some(t);
            }
            s = s.strip_prefix("大字").or_else(|| s.strip_prefix("字"))?;
        }
    }

    /// Whether `seg` begins with the name of another municipality: two to four kanji then 市 or 郡.
    fn foreign_municipality(seg: &str) -> bool {
        for (n, c) in seg.chars().enumerate() {
            if (c == '市' || c == '郡') && n >= 2 {
                return true;
            }
            if !is_kanji(c) || n >= 4 {
                return false;
            }
        }
        false
    }

    /// Scans the names of an address in matching form.
    fn scan(&self, joined: &str, starts: &[usize]) -> Scan {
        let mut city = false;
        let mut seg = 0;
        while let Some(&start) = starts.get(seg) {
            let mut p = start;
            while p < joined.len() {
                let rest = &joined[p..];
                match self.longest(rest) {
                    Some((len, e)) if e.town.is_some() || e.district.is_some() => {
                        return match e.district {
                            Some(d) => {
                                let town = self.town_in_district(&rest[len..], d).or(e.town);
                                Scan::Found(d, town)
                            }
                            None => {
                                let t = e.town.unwrap_or(0);
                                match self.town_districts.get(t as usize) {
                                    Some(&d) => Scan::Found(d, Some(t)),
                                    None => Scan::Nothing { city },
                                }
                            }
                        };
                    }
                    Some((_, e)) if e.foreign => return Scan::Foreign,
                    Some((len, e)) => {
                        city |= e.city;
                        p += len;
                    }
                    None => {
                        let digits = rest
                            .bytes()
                            .take_while(|b| b.is_ascii_digit() || *b == b'-')
                            .count();
                        if digits > 0 {
                            p += digits;
                            continue;
                        }
                        let seg_end = starts.iter().find(|&&s| s > p).map_or(joined.len(), |&s| s);
                        if Self::foreign_municipality(&joined[p..seg_end]) {
                            return Scan::Foreign;
                        }
                        break;
                    }
                }
            }
            seg = starts.partition_point(|&s| s <= p.max(start));
        }
        Scan::Nothing { city }
    }

    /// Reads an address alone (no location): the decision, if any.
    fn read(&self, address: &str, postal_code: Option<&str>) -> Option<Reading> {
        let (joined, starts) = match_form(address);
        let city = match self.scan(&joined, &starts) {
            Scan::Found(d, town) => {
                let name = self.district_names.get(usize::from(d))?;
                return Some(Reading {
                    locality: Locality::District(name.clone()),
                    town,
                    step: Step::TownName,
                });
            }
            Scan::Foreign => {
                return Some(Reading {
                    locality: Locality::Outside,
                    town: None,
                    step: Step::TownName,
                })
            }
            Scan::Nothing { city } => city,
        };
        let code = postal_code?;
        match self.postal.get(code) {
            Some(&(Some(d), town)) => Some(Reading {
                locality: Locality::District(self.district_names.get(usize::from(d))?.clone()),
                town,
                step: Step::PostalCode,
            }),
            // The catch-all code tells nothing.
            Some(&(None, _)) => None,
            None if !city
                && !self
                    .postal_areas
                    .iter()
                    .any(|a| code.starts_with(a.as_str())) =>
            {
                Some(Reading {
                    locality: Locality::Outside,
                    town: None,
                    step: Step::PostalCode,
                })
            }
            None => None,
        }
    }

    /// The index of the town point nearest to `p` (equirectangular distance, exact enough to rank
    /// points within a region).
    fn nearest_town(&self, p: LatLng) -> Option<usize> {
        let k = p.lat().to_radians().cos();
        self.town_points
            .iter()
            .map(|t| {
                let dy = t.lat() - p.lat();
                let dx = (t.lng() - p.lng()) * k;
                dx * dx + dy * dy
            })
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    }

    fn town_name(&self, t: Option<u32>) -> Option<String> {
        t.and_then(|t| self.town_names.get(t as usize).cloned())
    }

    /// Assigns a district: address → town (longest match) → postal code → nearest town point
    /// (when `location` is given and inside the bounds) → unknown. A location outside the bounds
    /// gives [`Locality::Outside`] with [`Step::OutsideRegion`].
    pub fn assign(&self, address: Option<&str>, location: Option<LatLng>) -> Assignment {
        let address = address.filter(|a| !a.trim().is_empty());
        let postal_code = address.and_then(parse_postal_code);
        let reading = address.and_then(|a| self.read(a, postal_code.as_deref()));
        if let Some(loc) = location {
            if !self.bounds.contains(loc) {
                return Assignment {
                    locality: Locality::Outside,
                    town: self.town_name(reading.and_then(|r| r.town)),
                    postal_code,
                    step: Step::OutsideRegion,
                };
            }
        }
        if let Some(r) = reading {
            return Assignment {
                locality: r.locality,
                town: self.town_name(r.town),
                postal_code,
                step: r.step,
            };
        }
        if let Some(t) = location.and_then(|loc| self.nearest_town(loc)) {
            let district = self
                .town_districts
                .get(t)
                .and_then(|&d| self.district_names.get(usize::from(d)));
            if let Some(d) = district {
                return Assignment {
                    locality: Locality::District(d.clone()),
                    town: self.town_names.get(t).cloned(),
                    postal_code,
                    step: Step::NearestTown,
                };
            }
        }
        Assignment {
            locality: Locality::Unknown,
            town: None,
            postal_code,
            step: Step::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_form_joins_segments() {
        let (joined, starts) = match_form("新穗, 佐渡市　新潟県 Sado-Shi");
        assert_eq!(joined, "新穂佐渡市新潟県sado-shi");
        assert_eq!(starts, [0, 6, 15, 24]);
        assert_eq!(match_form(" 、 "), (String::new(), vec![]));
    }

    #[test]
    fn foreign_municipality_needs_two_to_four_kanji() {
        assert!(AddressIndex::foreign_municipality("新潟市中央区"));
        assert!(AddressIndex::foreign_municipality("南魚沼郡湯沢町"));
        assert!(!AddressIndex::foreign_municipality("朝市"));
        assert!(!AddressIndex::foreign_municipality("ホテル市"));
        assert!(AddressIndex::foreign_municipality("五所川原市"));
        assert!(!AddressIndex::foreign_municipality(""));
        assert!(!AddressIndex::foreign_municipality("あいうえお市"));
    }

    #[test]
    fn region_tables_are_derived_from_the_region() {
        let idx = AddressIndex::new(Region::sado());
        assert_eq!(idx.postal_areas, ["952"]);
        assert_eq!(idx.town_points.len(), 299);
        // Postal towns the town list lacks are extra names (両津福浦, 藻浦).
        assert!(idx.town_names.len() > 299);
        assert!(idx.town_names.iter().any(|t| t == "藻浦"));
        let ryotsu = Region::sado().district_index("両津");
        assert_eq!(
            idx.suffixes[0]
                .get("湊")
                .map(|&t| idx.town_districts[t as usize]),
            ryotsu
        );
    }
}
