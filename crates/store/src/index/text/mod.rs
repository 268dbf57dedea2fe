//! Free-text search: an inverted index of character bigrams (and unigrams, for one-character
//! queries) over each place's search keys, plus the names and readings of towns and districts.
//!
//! A place's keys (name, reading, English name, address, each through `search_key`) are kept in
//! one concatenated `String`, fields separated by [`SEP`]; postings are sorted row lists stored as
//! varint-encoded gaps in one byte blob. A query takes the rarest gram's postings and verifies each
//! candidate by substring match on the stored keys. Town and district names are matched once per
//! query against a small dictionary string; a match adds that town's or district's row list.
//!
//! Food-word synonyms (only when the query asks for them, `Query::expand_synonyms`): a query key
//! containing a word of one of the `SYNONYMS` groups also matches, OR-ed, the key with that
//! word replaced by each other word of the group, so `すし` finds `鮨` and `寿司` and `そば` finds
//! `蕎麦`. Words are compared after `search_key`, so katakana and half-width spellings count too.
//!
//! The index itself and its queries are here; key folding is in `folding`, the posting lists and
//! their build in `postings`, the synonym groups in `synonyms`.

mod folding;
mod postings;
mod synonyms;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rayon::prelude::*;
use sadomap_core::PlaceRecord;

use super::columns::{Columns, NO_TOWN};
use folding::push_place_key;
use postings::{build_postings, GramMap, Posting, PostingBuilder, Postings};
use synonyms::alternatives;

pub(crate) use folding::query_key;
pub(crate) use postings::GramHasher;

/// Separates the fields of a place's key; never part of a query key.
pub(crate) const SEP: char = '\u{1f}';
/// The second half of a unigram's gram code.
const UNI: u64 = 0x11_0000;

/// Which dictionary entry a dictionary-string offset belongs to.
#[derive(Debug, Clone, Copy)]
enum Entry {
    Town(u16),
    District(u8),
}

/// The text index.
#[derive(Default)]
pub(crate) struct TextIndex {
    keys: String,
    /// Where each row's key starts in `keys` (the keys of up to ~4 GiB, some 60 million places).
    offsets: Vec<u32>,
    grams: GramMap<Posting>,
    blob: Vec<u8>,
    town_lists: Vec<Posting>,
    district_lists: Vec<Posting>,
    dict: String,
    dict_starts: Vec<(u32, Entry)>,
}

/// A prepared text query.
#[derive(Debug, Clone)]
pub(crate) struct TextQuery {
    /// The query key and its synonym alternatives: a row matches when it contains any.
    keys: Vec<String>,
    /// The rarest gram's postings of each key that some place can match.
    grams: Vec<Posting>,
    towns: Vec<u64>,
    districts: [u64; 4],
    town_ids: Vec<u16>,
    district_ids: Vec<u8>,
    /// An upper bound of the matches.
    pub estimate: usize,
}

impl TextIndex {
    /// Builds the text index of `records` (in row order) with their columns.
    pub fn build(records: &[PlaceRecord], cols: &Columns) -> TextIndex {
        // Keys in parallel chunks, each one string with its rows' end offsets, then joined.
        const CHUNK: usize = 16 * 1024;
        let parts: Vec<(String, Vec<u64>)> = records
            .par_chunks(CHUNK)
            .enumerate()
            .map(|(c, rs)| {
                let mut s = String::with_capacity(rs.len() * 64);
                let mut ends = Vec::with_capacity(rs.len());
                for (i, r) in rs.iter().enumerate() {
                    push_place_key(r, cols, c * CHUNK + i, &mut s);
                    ends.push(s.len() as u64);
                }
                (s, ends)
            })
            .collect();
        let mut offsets = Vec::with_capacity(records.len() + 1);
        let mut all = String::with_capacity(parts.iter().map(|p| p.0.len()).sum());
        offsets.push(0);
        for (s, ends) in parts {
            let base = all.len() as u64;
            all.push_str(&s);
            offsets.extend(
                ends.into_iter().map(|e| {
                    u32::try_from(base + e).expect("the index's search keys exceed 4 GiB")
                }),
            );
        }
        let (grams, mut blob) = build_postings(&all, &offsets);
        // Row lists of towns and districts.
        let mut towns: Vec<PostingBuilder> =
            cols.towns.iter().map(|_| Default::default()).collect();
        let mut districts: Vec<PostingBuilder> = cols
            .district_names
            .iter()
            .map(|_| Default::default())
            .collect();
        for row in 0..records.len() {
            if let Some(b) = towns.get_mut(usize::from(cols.town[row])) {
                b.push(row as u32);
            }
            if let Some(b) = districts.get_mut(usize::from(cols.district[row])) {
                b.push(row as u32);
            }
        }
        let mut finish = |bs: Vec<PostingBuilder>| -> Vec<Posting> {
            bs.into_iter()
                .map(|b| {
                    let p = Posting {
                        start: blob.len() as u64,
                        len: b.bytes.len() as u32,
                        count: b.count,
                    };
                    blob.extend_from_slice(&b.bytes);
                    p
                })
                .collect()
        };
        let town_lists = finish(towns);
        let district_lists = finish(districts);
        blob.shrink_to_fit();
        let mut dict = String::new();
        let mut dict_starts = Vec::new();
        let mut add = |names: [&str; 2], e: Entry| {
            dict_starts.push((dict.len() as u32, e));
            for s in names {
                dict.push(SEP);
                dict.push_str(&query_key(s));
            }
        };
        for (i, t) in cols.towns.iter().enumerate() {
            add(
                [&t.name, t.kana.as_deref().unwrap_or("")],
                Entry::Town(i as u16),
            );
        }
        for (i, (d, k)) in cols
            .district_names
            .iter()
            .zip(&cols.district_kana)
            .enumerate()
        {
            add([d, k], Entry::District(i as u8));
        }
        TextIndex {
            keys: all,
            offsets,
            grams,
            blob,
            town_lists,
            district_lists,
            dict,
            dict_starts,
        }
    }

    /// The stored key of `row` (fields separated by [`SEP`]).
    #[inline]
    pub fn key(&self, row: usize) -> &str {
        match (self.offsets.get(row), self.offsets.get(row + 1)) {
            (Some(&s), Some(&e)) => self.keys.get(s as usize..e as usize).unwrap_or(""),
            _ => "",
        }
    }

    /// The search key of the primary name of `row` (the sort key of name order).
    #[inline]
    pub fn name_key(&self, row: usize) -> &str {
        let k = self.key(row);
        k.split(SEP).next().unwrap_or(k)
    }

    fn postings(&self, p: Posting) -> Postings<'_> {
        let s = p.start as usize;
        Postings {
            bytes: self.blob.get(s..s + p.len as usize).unwrap_or(&[]),
            pos: 0,
            cur: 0,
        }
    }

    /// The rarest gram of `key`, `None` when some gram of it is in no place (so no place key
    /// contains it).
    fn rarest_gram(&self, key: &str) -> Option<Posting> {
        let chars: Vec<char> = key.chars().collect();
        if chars.len() == 1 {
            self.grams.get(&(u64::from(chars[0]) << 32 | UNI)).copied()
        } else {
            let mut best: Option<Posting> = None;
            for w in chars.windows(2) {
                match self.grams.get(&(u64::from(w[0]) << 32 | u64::from(w[1]))) {
                    // A gram no place has: no place key can match.
                    None => {
                        best = None;
                        break;
                    }
                    Some(p) if best.is_none_or(|b| p.count < b.count) => best = Some(*p),
                    Some(_) => {}
                }
            }
            best
        }
    }

    /// Prepares a query, with its food-word synonyms when `synonyms`; `None` when its key is
    /// empty (no text filter).
    pub fn prepare(&self, q: &str, synonyms: bool) -> Option<TextQuery> {
        let key = query_key(q);
        if key.is_empty() {
            return None;
        }
        let keys = if synonyms {
            alternatives(&key)
        } else {
            vec![key]
        };
        let grams: Vec<Posting> = keys.iter().filter_map(|k| self.rarest_gram(k)).collect();
        let mut tq = TextQuery {
            towns: vec![0; self.town_lists.len().div_ceil(64)],
            districts: [0; 4],
            town_ids: Vec::new(),
            district_ids: Vec::new(),
            estimate: grams.iter().map(|g| g.count as usize).sum(),
            grams,
            keys,
        };
        let matches: Vec<usize> = tq
            .keys
            .iter()
            .flat_map(|k| self.dict.match_indices(k.as_str()).map(|(off, _)| off))
            .collect();
        for off in matches {
            let i = self
                .dict_starts
                .partition_point(|&(s, _)| s as usize <= off)
                .saturating_sub(1);
            match self.dict_starts.get(i).map(|e| e.1) {
                Some(Entry::Town(t)) => {
                    let w = &mut tq.towns[usize::from(t) / 64];
                    if *w & (1 << (t % 64)) == 0 {
                        *w |= 1 << (t % 64);
                        tq.town_ids.push(t);
                        tq.estimate += self.town_lists[usize::from(t)].count as usize;
                    }
                }
                Some(Entry::District(d)) => {
                    let w = &mut tq.districts[usize::from(d) / 64];
                    if *w & (1 << (d % 64)) == 0 {
                        *w |= 1 << (d % 64);
                        tq.district_ids.push(d);
                        tq.estimate += self.district_lists[usize::from(d)].count as usize;
                    }
                }
                None => {}
            }
        }
        Some(tq)
    }

    /// Whether `row` matches the prepared query.
    #[inline]
    pub fn matches(&self, tq: &TextQuery, cols: &Columns, row: usize) -> bool {
        let t = cols.town[row];
        if t != NO_TOWN
            && tq
                .towns
                .get(usize::from(t) / 64)
                .is_some_and(|w| w & (1 << (t % 64)) != 0)
        {
            return true;
        }
        let d = cols.district[row];
        if tq.districts[usize::from(d) / 64] & (1 << (d % 64)) != 0 {
            return true;
        }
        let key = self.key(row);
        tq.keys.iter().any(|k| key.contains(k.as_str()))
    }

    /// Candidate rows in ascending order (a superset of the matches; check with `matches`).
    pub fn candidates<'a>(&'a self, tq: &TextQuery) -> Candidates<'a> {
        let mut lists: Vec<Postings<'a>> = tq.grams.iter().map(|&g| self.postings(g)).collect();
        for &t in &tq.town_ids {
            lists.push(self.postings(self.town_lists[usize::from(t)]));
        }
        for &d in &tq.district_ids {
            lists.push(self.postings(self.district_lists[usize::from(d)]));
        }
        let lists_len = lists.len();
        let mut heap = BinaryHeap::with_capacity(lists_len);
        // A single list is read directly (see `Candidates::next`), so it is not primed.
        for (i, l) in lists.iter_mut().enumerate().filter(|_| lists_len > 1) {
            if let Some(r) = l.next() {
                heap.push(Reverse((r, i)));
            }
        }
        Candidates {
            lists,
            heap,
            last: None,
        }
    }

    pub fn memory_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(u64, Posting)>() + 1;
        self.keys.capacity()
            + self.offsets.capacity() * 4
            + self.grams.capacity() * entry
            + self.blob.capacity()
            + (self.town_lists.capacity() + self.district_lists.capacity())
                * std::mem::size_of::<Posting>()
            + self.dict.capacity()
            + self.dict_starts.capacity() * std::mem::size_of::<(u32, Entry)>()
    }

    /// Bytes of the concatenated keys (derived strings, reported apart).
    pub fn key_bytes(&self) -> usize {
        self.keys.capacity()
    }
}

/// The k-way merge of a text query's posting lists, without duplicates.
pub(crate) struct Candidates<'a> {
    lists: Vec<Postings<'a>>,
    heap: BinaryHeap<Reverse<(u32, usize)>>,
    last: Option<u32>,
}

impl Iterator for Candidates<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        if self.lists.len() == 1 {
            // The common case: one list, no heap.
            return self.lists[0].next();
        }
        while let Some(Reverse((r, i))) = self.heap.pop() {
            if let Some(n) = self.lists[i].next() {
                self.heap.push(Reverse((n, i)));
            }
            if self.last != Some(r) {
                self.last = Some(r);
                return Some(r);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synonyms_find_every_spelling_and_only_when_asked() {
        use super::super::{Index, Query};
        use sadomap_core::{Kind, Place, PlaceId, Region};
        let t = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let names = [
            "長三郎鮨",
            "寿司処かね",
            "すし大",
            "手打ち蕎麦",
            "そば処",
            "らーめん",
        ];
        let recs: Vec<PlaceRecord> = names
            .iter()
            .enumerate()
            .map(|(i, n)| PlaceRecord {
                id: PlaceId(i as i64 + 1),
                place: Place::new(Kind::Restaurant, *n, format!("t:{i}")),
                created_at: t,
                updated_at: t,
                details_checked_at: None,
                id_checked_at: None,
            })
            .collect();
        let ix = Index::build(recs, Region::sado(), 1);
        let find = |q: &str, synonyms: bool| -> Vec<i64> {
            let q = Query {
                q: Some(q.into()),
                expand_synonyms: synonyms,
                with_total: true,
                ..Query::default()
            };
            let r = ix.query(&q).unwrap();
            assert_eq!(r.total, Some(r.hits.len()));
            r.hits.iter().map(|h| h.id.0).collect()
        };
        assert_eq!(find("すし", true), vec![1, 2, 3]);
        assert_eq!(find("スシ", true), vec![1, 2, 3]);
        assert_eq!(find("鮨", true), vec![1, 2, 3]);
        assert_eq!(find("すし", false), vec![3]);
        assert_eq!(find("そば", true), vec![4, 5]);
        assert_eq!(find("ｿﾊﾞ", true), vec![4, 5]);
        assert_eq!(find("うどん", true), Vec::<i64>::new());
    }
}
