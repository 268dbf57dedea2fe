//! The in-memory query index: filters, spatial and text search, sorting and stable paging over a
//! snapshot of the places.
//!
//! An [`Index`] is built once from a set of records ([`Index::build`]) and never changes after;
//! a new data version is a new index, swapped in whole (`ArcSwap<Index>` or
//! `RwLock<Arc<Index>>`). It is `Send + Sync`, and queries take `&self`, so any number of threads
//! may query one index at once without locks.
//!
//! Layout: the records themselves (rows, in id order), per-row filter columns (`columns`), static
//! k-d trees per kind and per cuisine over exact coordinates (`spatial`), a bigram index over
//! normalised search keys (`text`), and three sort permutations (name, rating, price). Query
//! planning and execution are in `exec`; the query type and cursors in `query` and `cursor`.

mod columns;
mod cursor;
mod exec;
mod query;
mod spatial;
#[cfg(test)]
mod testkit;
mod text;

use std::collections::BTreeMap;

use rayon::prelude::*;
use sadomap_core::{Cuisine, Kind, PlaceId, PlaceRecord, Region};

use columns::{
    kind_code, Columns, DISTRICT_OTHER, DISTRICT_OUTSIDE, DISTRICT_UNKNOWN, NO_LOCATION,
};
use spatial::GeoTree;
use text::TextIndex;

pub use cursor::Cursor;
pub use query::{Hit, Query, QueryError, QueryResult, Sort, DEFAULT_LIMIT, MAX_LIMIT};

/// How many places of each kind, district and cuisine the index holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexCounts {
    /// All places.
    pub total: usize,
    /// Per kind (every kind present, zero included).
    pub by_kind: BTreeMap<Kind, usize>,
    /// Per district name: the region's districts in its order (zero included), then names only
    /// seen in the data.
    pub by_district: Vec<(String, usize)>,
    /// Places inside the region whose district is unknown.
    pub unknown_district: usize,
    /// Places outside the region.
    pub outside: usize,
    /// Per cuisine (every cuisine present, zero included).
    pub by_cuisine: BTreeMap<Cuisine, usize>,
}

/// Sizes of the index structures, in bytes (estimates from capacities).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IndexMemory {
    /// Filter columns and their dictionaries.
    pub columns: usize,
    /// Spatial trees.
    pub spatial: usize,
    /// Text postings, key offsets and dictionaries (without the key text).
    pub text: usize,
    /// The concatenated search-key text (derived strings).
    pub search_keys: usize,
    /// Sort permutations and the list of places without coordinates.
    pub orders: usize,
}

impl IndexMemory {
    /// Everything, search-key text included.
    pub fn total(&self) -> usize {
        self.columns + self.spatial + self.text + self.search_keys + self.orders
    }
}

/// An immutable, queryable snapshot of places.
pub struct Index {
    records: Vec<PlaceRecord>,
    cols: Columns,
    /// One tree per kind (`Kind::ALL` order); together they hold every located place once.
    kind_trees: Vec<GeoTree>,
    /// One tree per cuisine (`Cuisine::ALL` order).
    cuisine_trees: Vec<GeoTree>,
    /// Rows without coordinates, ascending.
    unlocated: Vec<u32>,
    text: TextIndex,
    by_name: Vec<u32>,
    by_rating: Vec<u32>,
    by_price: Vec<u32>,
    counts: IndexCounts,
    data_version: u64,
}

/// Rating order key: best first, unrated last.
#[inline]
fn rating_key(cols: &Columns, row: usize) -> u32 {
    u32::from(u16::MAX - cols.rating[row])
}

/// Price order key: cheapest first, unpriced last.
#[inline]
fn price_key(cols: &Columns, row: usize) -> u32 {
    match cols.price[row] {
        0 => 255,
        p => u32::from(p),
    }
}

impl Index {
    /// Builds an index of `records` (any order; of records sharing an id the last one given is
    /// kept) for `region`, labelled `data_version`.
    pub fn build(mut records: Vec<PlaceRecord>, region: &Region, data_version: u64) -> Index {
        if !records.windows(2).all(|w| w[0].id < w[1].id) {
            records.reverse();
            records.sort_by_key(|r| r.id);
            records.dedup_by_key(|r| r.id);
        }
        let mut cols = Columns::build(&records, region);

        // Spatial trees, the text index and the numeric orders, all in parallel.
        let ((mut trees, text), (by_rating, by_price)) = rayon::join(
            || {
                rayon::join(
                    || build_trees(&records, &cols),
                    || TextIndex::build(&records, &cols),
                )
            },
            || {
                rayon::join(
                    || counting_order(&cols, 1 << 16, |c, r| rating_key(c, r) as usize),
                    || counting_order(&cols, 256, |c, r| price_key(c, r) as usize),
                )
            },
        );
        let cuisine_trees = trees.split_off(Kind::ALL.len());
        let kind_trees = trees;
        for t in &kind_trees {
            for (row, pos) in t.positions() {
                cols.loc[row as usize] = pos;
            }
        }
        let unlocated: Vec<u32> = (0..records.len() as u32)
            .filter(|&r| cols.loc[r as usize] == NO_LOCATION)
            .collect();
        let by_name = name_order(&text, records.len());
        let counts = count(&records, &cols);
        Index {
            records,
            cols,
            kind_trees,
            cuisine_trees,
            unlocated,
            text,
            by_name,
            by_rating,
            by_price,
            counts,
            data_version,
        }
    }

    /// The record with id `id`.
    pub fn get(&self, id: PlaceId) -> Option<&PlaceRecord> {
        self.records
            .binary_search_by_key(&id, |r| r.id)
            .ok()
            .map(|i| &self.records[i])
    }

    /// All records, in id order.
    pub fn records(&self) -> &[PlaceRecord] {
        &self.records
    }

    /// Number of places.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the index holds no place.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The data version the index was built from.
    pub fn data_version(&self) -> u64 {
        self.data_version
    }

    /// Places per kind, district and cuisine.
    pub fn counts(&self) -> &IndexCounts {
        &self.counts
    }

    /// Bytes of the index structures beyond the records and their strings.
    pub fn memory_bytes(&self) -> usize {
        self.memory().total()
    }

    /// [`Index::memory_bytes`] by part.
    pub fn memory(&self) -> IndexMemory {
        let text_all = self.text.memory_bytes();
        IndexMemory {
            columns: self.cols.memory_bytes(),
            spatial: self
                .kind_trees
                .iter()
                .chain(&self.cuisine_trees)
                .map(GeoTree::memory_bytes)
                .sum(),
            text: text_all - self.text.key_bytes(),
            search_keys: self.text.key_bytes(),
            orders: (self.by_name.capacity()
                + self.by_rating.capacity()
                + self.by_price.capacity()
                + self.unlocated.capacity())
                * 4,
        }
    }
}

/// One tree per kind (`Kind::ALL` order), then one per cuisine (`Cuisine::ALL` order).
fn build_trees(records: &[PlaceRecord], cols: &Columns) -> Vec<GeoTree> {
    let specs: Vec<(bool, u8)> = (0..Kind::ALL.len() as u8)
        .map(|k| (true, k))
        .chain((0..Cuisine::ALL.len() as u8).map(|c| (false, c)))
        .collect();
    specs
        .par_iter()
        .map(|&(by_kind, code)| {
            let col = if by_kind { &cols.kind } else { &cols.cuisine };
            let pts: Vec<(f64, f64, u32)> = col
                .iter()
                .enumerate()
                .filter(|&(_, &c)| c == code)
                .filter_map(|(i, _)| {
                    records[i]
                        .place
                        .location
                        .map(|p| (p.lat(), p.lng(), i as u32))
                })
                .collect();
            GeoTree::build(pts)
        })
        .collect()
}

/// All rows ordered by `key` (below `buckets`), ties in row order: a counting sort.
fn counting_order(
    cols: &Columns,
    buckets: usize,
    key: impl Fn(&Columns, usize) -> usize,
) -> Vec<u32> {
    let n = cols.kind.len();
    let mut start = vec![0u32; buckets + 1];
    for r in 0..n {
        start[key(cols, r) + 1] += 1;
    }
    for i in 1..=buckets {
        start[i] += start[i - 1];
    }
    let mut out = vec![0u32; n];
    for r in 0..n {
        let k = key(cols, r);
        out[start[k] as usize] = r as u32;
        start[k] += 1;
    }
    out
}

/// All rows ordered by name key, ties in row order. Sorted on the keys' first 32 bytes, which
/// settle nearly all comparisons; equal prefixes compare the whole keys.
fn name_order(text: &TextIndex, n: usize) -> Vec<u32> {
    let mut v: Vec<(u128, u128, u32)> = (0..n)
        .into_par_iter()
        .map(|r| {
            // Keys hold no NUL (control characters are dropped), so zero padding sorts a
            // shorter key before its extensions, as `str` order does.
            let mut b = [0u8; 32];
            let k = text.name_key(r).as_bytes();
            let m = k.len().min(32);
            b[..m].copy_from_slice(&k[..m]);
            let (hi, lo) = b.split_at(16);
            let word = |x: &[u8]| u128::from_be_bytes(x.try_into().unwrap_or([0; 16]));
            (word(hi), word(lo), r as u32)
        })
        .collect();
    v.par_sort_unstable_by(|a, b| {
        (a.0, a.1)
            .cmp(&(b.0, b.1))
            .then_with(|| text.name_key(a.2 as usize).cmp(text.name_key(b.2 as usize)))
            .then(a.2.cmp(&b.2))
    });
    v.into_iter().map(|x| x.2).collect()
}

fn count(records: &[PlaceRecord], cols: &Columns) -> IndexCounts {
    let mut c = IndexCounts {
        total: records.len(),
        by_kind: Kind::ALL.iter().map(|&k| (k, 0)).collect(),
        by_district: cols.district_names.iter().map(|d| (d.clone(), 0)).collect(),
        by_cuisine: Cuisine::ALL.iter().map(|&x| (x, 0)).collect(),
        ..IndexCounts::default()
    };
    let mut other: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        *c.by_kind.entry(r.place.kind).or_default() += 1;
        debug_assert_eq!(cols.kind[i], kind_code(r.place.kind));
        match cols.district[i] {
            DISTRICT_UNKNOWN => c.unknown_district += 1,
            DISTRICT_OUTSIDE => c.outside += 1,
            DISTRICT_OTHER => {
                *other
                    .entry(r.place.locality.district().unwrap_or(""))
                    .or_default() += 1
            }
            d => {
                if let Some(e) = c.by_district.get_mut(usize::from(d)) {
                    e.1 += 1;
                }
            }
        }
        if let Some(x) = r.place.cuisine {
            *c.by_cuisine.entry(x).or_default() += 1;
        }
    }
    c.by_district
        .extend(other.into_iter().map(|(k, v)| (k.to_owned(), v)));
    c
}

#[cfg(test)]
mod tests {
    use super::testkit::{synth, Synth};
    use super::*;
    use sadomap_core::Locality;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn index_is_send_sync_and_counts_agree() {
        assert_send_sync::<Index>();
        let recs = synth(&Synth {
            n: 2000,
            seed: 1,
            ..Synth::default()
        });
        let ix = Index::build(recs.clone(), Region::sado(), 7);
        assert_eq!(ix.len(), 2000);
        assert_eq!(ix.data_version(), 7);
        let c = ix.counts();
        assert_eq!(c.by_kind.values().sum::<usize>(), 2000);
        let districts: usize = c.by_district.iter().map(|d| d.1).sum();
        assert_eq!(districts + c.unknown_district + c.outside, 2000);
        let restaurants = recs
            .iter()
            .filter(|r| r.place.kind == Kind::Restaurant)
            .count();
        assert_eq!(c.by_kind[&Kind::Restaurant], restaurants);
        let ryotsu = recs
            .iter()
            .filter(|r| r.place.locality == Locality::District("両津".into()))
            .count();
        assert_eq!(c.by_district[0], ("両津".to_owned(), ryotsu));
        for r in recs.iter().step_by(97) {
            assert_eq!(ix.get(r.id), Some(r));
        }
        assert_eq!(ix.get(PlaceId(-1)), None);
        assert!(ix.memory_bytes() > 0);
    }

    #[test]
    fn duplicate_ids_keep_the_last_record() {
        let mut recs = synth(&Synth {
            n: 10,
            seed: 2,
            ..Synth::default()
        });
        let mut dup = recs[3].clone();
        dup.place.names.ja = "後から来た店".into();
        recs.push(dup.clone());
        let ix = Index::build(recs, Region::sado(), 1);
        assert_eq!(ix.len(), 10);
        assert_eq!(ix.get(dup.id), Some(&dup));
    }
}
