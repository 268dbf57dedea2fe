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
//! containing a word of one of the [`SYNONYMS`] groups also matches, OR-ed, the key with that
//! word replaced by each other word of the group, so `すし` finds `鮨` and `寿司` and `そば` finds
//! `蕎麦`. Words are compared after `search_key`, so katakana and half-width spellings count too.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use rayon::prelude::*;
use sadomap_core::{fold_variant_kanji, is_kanji, search_key, PlaceRecord};

use super::columns::{Columns, DISTRICT_OTHER, NO_TOWN};

/// Separates the fields of a place's key; never part of a query key.
pub(crate) const SEP: char = '\u{1f}';
/// The second half of a unigram's gram code.
const UNI: u64 = 0x11_0000;

/// Food-word synonym groups: sushi, soba, udon, ramen, tempura, tonkatsu, yakitori, yakiniku,
/// crab, shrimp, squid, yellowtail, fish, eatery, izakaya, bento, Chinese, coffee.
const SYNONYMS: &[&[&str]] = &[
    &["すし", "鮨", "寿司", "鮓"],
    &["そば", "蕎麦"],
    &["うどん", "饂飩"],
    &["らーめん", "拉麺"],
    &["てんぷら", "天ぷら", "天麩羅"],
    &["とんかつ", "豚かつ"],
    &["やきとり", "焼き鳥", "焼鳥"],
    &["やきにく", "焼肉", "焼き肉"],
    &["かに", "蟹"],
    &["えび", "海老", "蝦"],
    &["いか", "烏賊"],
    &["ぶり", "鰤"],
    &["さかな", "魚"],
    &["しょくどう", "食堂"],
    &["いざかや", "居酒屋"],
    &["べんとう", "弁当"],
    &["ちゅうか", "中華"],
    &["こーひー", "珈琲"],
];

/// The most alternatives one query expands into.
const MAX_ALTERNATIVES: usize = 16;

/// The synonym groups as query keys, folded once.
fn synonym_keys() -> &'static [Vec<String>] {
    static KEYS: std::sync::OnceLock<Vec<Vec<String>>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        SYNONYMS
            .iter()
            .map(|g| g.iter().map(|w| query_key(w)).collect())
            .collect()
    })
}

/// `key` and its synonym alternatives (`key` first, no duplicates, at most
/// [`MAX_ALTERNATIVES`]): every word of a group found in a key is replaced by each other word.
pub(crate) fn alternatives(key: &str) -> Vec<String> {
    let mut out = vec![key.to_owned()];
    for group in synonym_keys() {
        let mut i = 0;
        while i < out.len() {
            let cur = out[i].clone();
            for word in group.iter().filter(|w| cur.contains(w.as_str())) {
                for other in group.iter().filter(|o| *o != word) {
                    let alt = cur.replace(word.as_str(), other);
                    if out.len() < MAX_ALTERNATIVES && !out.contains(&alt) {
                        out.push(alt);
                    }
                }
            }
            i += 1;
        }
    }
    out
}

/// A multiplicative hasher for gram codes (already well mixed by construction).
#[derive(Default)]
pub(crate) struct GramHasher(u64);

impl Hasher for GramHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0 ^ v)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(26);
    }
}

type GramMap<V> = HashMap<u64, V, BuildHasherDefault<GramHasher>>;

/// Where one posting list lies in a blob.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Posting {
    start: u64,
    len: u32,
    count: u32,
}

/// A posting list being built.
#[derive(Default)]
struct PostingBuilder {
    bytes: Vec<u8>,
    last: u32,
    count: u32,
}

impl PostingBuilder {
    fn push(&mut self, row: u32) {
        put_varint(&mut self.bytes, row - self.last);
        self.last = row;
        self.count += 1;
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Decodes a posting list: absolute rows from varint gaps.
#[derive(Clone)]
pub(crate) struct Postings<'a> {
    bytes: &'a [u8],
    pos: usize,
    cur: u32,
}

impl Iterator for Postings<'_> {
    type Item = u32;
    #[inline]
    fn next(&mut self) -> Option<u32> {
        let mut v = 0u32;
        let mut shift = 0;
        loop {
            let b = *self.bytes.get(self.pos)?;
            self.pos += 1;
            v |= u32::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
            if b < 0x80 {
                break;
            }
            shift += 7;
        }
        self.cur = self.cur.wrapping_add(v);
        Some(self.cur)
    }
}

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

/// The grams of one key, deduplicated (what the postings list a row under).
#[cfg(test)]
fn grams_of(key: &str, out: &mut Vec<u64>) {
    out.clear();
    for field in key.split(SEP) {
        let mut prev: Option<char> = None;
        for c in field.chars() {
            out.push(u64::from(c) << 32 | UNI);
            if let Some(p) = prev {
                out.push(u64::from(p) << 32 | u64::from(c));
            }
            prev = Some(c);
        }
    }
    out.sort_unstable();
    out.dedup();
}

/// A query key: the search key without separator or other control characters.
pub(crate) fn query_key(q: &str) -> String {
    search_key(q).chars().filter(|c| !c.is_control()).collect()
}

/// Whether `c` is a character [`push_key`] may fold itself: printable ASCII, hiragana and
/// katakana without the combining or compatibility ones, and the CJK unified ideographs. Every
/// one is a starter that NFKC leaves alone and that never composes with a neighbour, so a string
/// of them is NFKC, and so is its key.
#[inline]
fn is_plain(c: char) -> bool {
    matches!(c as u32, 0x20..=0x7e | 0x3041..=0x3096 | 0x30a1..=0x30fa | 0x30fc | 0x4e00..=0x9fff)
}

/// Whether a plain character is dropped from search keys (ASCII whitespace and punctuation).
#[inline]
fn plain_separator(c: char) -> bool {
    c == ' ' || c.is_ascii_punctuation()
}

/// Appends `search_key(s)` to `out`, without control characters other than [`SEP`].
///
/// Text made only of plain characters (see [`is_plain`]; nearly all stored text, which was
/// normalised on import) is folded here directly, exactly as `search_key` folds it, without
/// allocating and without the NFKC pass; anything else goes through `search_key` itself.
fn push_key(s: &str, out: &mut String) {
    if !s.chars().all(is_plain) {
        out.extend(
            search_key(s)
                .chars()
                .filter(|&c| c == SEP || !c.is_control()),
        );
        return;
    }
    if s.is_ascii() {
        out.extend(
            s.bytes()
                .filter(|&b| !plain_separator(char::from(b)))
                .map(|b| char::from(b.to_ascii_lowercase())),
        );
        return;
    }
    let mut prev: Option<char> = None;
    let mut it = s.chars().filter(|&c| !plain_separator(c)).peekable();
    while let Some(c) = it.next() {
        let next = it.peek().copied();
        let c2 = match c {
            // A long-vowel mark between digits is a hyphen: dropped.
            'ー' if prev.is_some_and(|p| p.is_ascii_digit())
                && next.is_some_and(|n| n.is_ascii_digit()) =>
            {
                prev = Some(c);
                continue;
            }
            'ケ' | 'ヶ' | 'ヵ' | 'が' | 'ガ'
                if prev.is_some_and(is_kanji) && next.is_some_and(is_kanji) =>
            {
                'け'
            }
            '\u{30a1}'..='\u{30f6}' => char::from_u32(c as u32 - 0x60).unwrap_or(c),
            '\u{4e00}'..='\u{9fff}' => fold_variant_kanji(c),
            _ => c.to_ascii_lowercase(),
        };
        out.push(c2);
        prev = Some(c);
    }
}

/// Appends the key of one place (fields separated by [`SEP`]) to `out`.
fn push_place_key(r: &PlaceRecord, cols: &Columns, row: usize, out: &mut String) {
    let p = &r.place;
    push_key(&p.names.ja, out);
    for s in [&p.names.kana, &p.names.en, &p.address]
        .into_iter()
        .flatten()
    {
        out.push(SEP);
        push_key(s, out);
    }
    // Names the dictionaries could not hold are searched as part of the place itself.
    if cols.district[row] == DISTRICT_OTHER {
        if let Some(d) = p.locality.district() {
            out.push(SEP);
            push_key(d, out);
        }
    }
    if cols.town[row] == NO_TOWN {
        if let Some(t) = &p.town {
            out.push(SEP);
            push_key(t, out);
        }
    }
}

fn build_postings(keys: &str, offsets: &[u32]) -> (GramMap<Posting>, Vec<u8>) {
    let n = offsets.len().saturating_sub(1);
    let chunk = n
        .div_ceil(rayon::current_num_threads().max(1) * 4)
        .max(1024);
    let parts: Vec<GramMap<PostingBuilder>> = (0..n.div_ceil(chunk))
        .into_par_iter()
        .map(|c| {
            let mut map: GramMap<PostingBuilder> = GramMap::default();
            let mut add = |g: u64, row: u32| {
                let b = map.entry(g).or_default();
                // A gram seen twice in one row is listed once.
                if b.count == 0 || b.last != row {
                    b.push(row);
                }
            };
            for row in c * chunk..((c + 1) * chunk).min(n) {
                let key = &keys[offsets[row] as usize..offsets[row + 1] as usize];
                // As `grams_of`: unigrams and bigrams, never across a field separator.
                let mut prev: Option<char> = None;
                for ch in key.chars() {
                    if ch == SEP {
                        prev = None;
                        continue;
                    }
                    add(u64::from(ch) << 32 | UNI, row as u32);
                    if let Some(p) = prev {
                        add(u64::from(p) << 32 | u64::from(ch), row as u32);
                    }
                    prev = Some(ch);
                }
            }
            map
        })
        .collect();
    // Merge the chunks in row order; each chunk's first gap is absolute and is re-encoded.
    let mut merged: GramMap<PostingBuilder> = GramMap::default();
    for part in parts {
        for (g, b) in part {
            let m = merged.entry(g).or_default();
            let mut it = Postings {
                bytes: &b.bytes,
                pos: 0,
                cur: 0,
            };
            if let Some(first) = it.next() {
                put_varint(&mut m.bytes, first - m.last);
                m.bytes.extend_from_slice(&b.bytes[it.pos..]);
                m.last = b.last;
                m.count += b.count;
            }
        }
    }
    let total: usize = merged.values().map(|b| b.bytes.len()).sum();
    let mut blob = Vec::with_capacity(total);
    let mut grams = GramMap::with_capacity_and_hasher(merged.len(), Default::default());
    for (g, b) in merged {
        grams.insert(
            g,
            Posting {
                start: blob.len() as u64,
                len: b.bytes.len() as u32,
                count: b.count,
            },
        );
        blob.extend_from_slice(&b.bytes);
    }
    (grams, blob)
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
    fn varint_postings_round_trip() {
        let rows = [0u32, 1, 2, 130, 20_000, 4_000_000_000];
        let mut b = PostingBuilder::default();
        for r in rows {
            b.push(r);
        }
        let got: Vec<u32> = Postings {
            bytes: &b.bytes,
            pos: 0,
            cur: 0,
        }
        .collect();
        assert_eq!(got, rows);
    }

    #[test]
    fn chunked_build_equals_sequential() {
        // Enough rows for several chunks; every row has "ab", every third "cd".
        let mut keys = String::new();
        let mut offsets = vec![0u32];
        for i in 0..5000 {
            keys.push_str(if i % 3 == 0 { "abcd" } else { "ab" });
            offsets.push(keys.len() as u32);
        }
        let (grams, blob) = build_postings(&keys, &offsets);
        let list = |g: u64| -> Vec<u32> {
            let p = grams[&g];
            Postings {
                bytes: &blob[p.start as usize..(p.start + u64::from(p.len)) as usize],
                pos: 0,
                cur: 0,
            }
            .collect()
        };
        let ab = u64::from('a') << 32 | u64::from('b');
        let cd = u64::from('c') << 32 | u64::from('d');
        assert_eq!(list(ab), (0..5000).collect::<Vec<u32>>());
        assert_eq!(list(cd), (0..5000).step_by(3).collect::<Vec<u32>>());
        assert_eq!(grams[&cd].count, 1667);
    }

    #[test]
    fn push_key_is_search_key() {
        let region = sadomap_core::Region::sado();
        let mut texts: Vec<String> = [
            "らーめん 一番 #12",
            "ショッピングプラザ キング",
            "佐渡ヶ島 松ケ崎 松が崎 花が咲く",
            "12ー34 あーい 1ー",
            "Sado Cafe & Bar (本店)",
            "ABC・def、ghi。「jkl」",
            "ｻﾄﾞ ＡＢＣ １２３",
            "か\u{3099} か゛ ﾊﾟ",
            "嶋 兩津 﨑 邊 澤田",
            "tab\there\u{1f}sep\u{1}ctl",
            "ヷヸヹヺ ヴ ヽヾ ゝゞ 々 〆",
            "İstanbul ÀÉÎ Straße",
            "\u{200b}ゼロ\u{feff}幅",
            "",
            "   ",
            "1-2-3 ー ｰ",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for p in sadomap_core::demo_places(region, 3000, 5) {
            let mut p = p;
            sadomap_core::prepare(&mut p, region).ok();
            texts.extend([p.names.ja, p.address.unwrap_or_default()]);
            texts.extend(p.names.kana);
            texts.extend(p.names.en);
        }
        for t in &region.towns {
            texts.push(t.name.clone());
            texts.extend(t.kana.clone());
        }
        for t in texts {
            let mut got = String::from("x");
            push_key(&t, &mut got);
            let want: String = search_key(&t)
                .chars()
                .filter(|&c| c == SEP || !c.is_control())
                .collect();
            assert_eq!(&got[1..], want, "{t:?}");
        }
    }

    #[test]
    fn alternatives_expand_food_words_only() {
        let alts = alternatives(&query_key("すし"));
        for w in ["すし", "鮨", "寿司", "鮓"] {
            assert!(alts.contains(&query_key(w)), "{w} in {alts:?}");
        }
        assert_eq!(
            alternatives(&query_key("スシ")),
            alts,
            "katakana folds first"
        );
        let alts = alternatives(&query_key("手打ちそば"));
        assert!(alts.contains(&query_key("手打ち蕎麦")), "{alts:?}");
        assert_eq!(alternatives("りょうつ"), vec!["りょうつ".to_owned()]);
        let many = alternatives(&query_key("すしそばうどんてんぷらやきとり"));
        assert_eq!(many.len(), MAX_ALTERNATIVES, "expansion is bounded");
    }

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

    #[test]
    fn grams_skip_field_boundaries() {
        let mut g = Vec::new();
        grams_of("ab\u{1f}c", &mut g);
        let ab = u64::from('a') << 32 | u64::from('b');
        let bc = u64::from('b') << 32 | u64::from('c');
        assert!(g.contains(&ab));
        assert!(!g.contains(&bc));
        assert_eq!(g.len(), 4, "a, b, c, ab");
    }
}
