//! Posting lists: the gram hasher and map, varint-gap encoding and decoding of sorted row lists,
//! and the parallel build of every gram's postings into one byte blob.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use rayon::prelude::*;

use super::{SEP, UNI};

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

pub(super) type GramMap<V> = HashMap<u64, V, BuildHasherDefault<GramHasher>>;

/// Where one posting list lies in a blob.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Posting {
    pub(super) start: u64,
    pub(super) len: u32,
    pub(super) count: u32,
}

/// A posting list being built.
#[derive(Default)]
pub(super) struct PostingBuilder {
    pub(super) bytes: Vec<u8>,
    last: u32,
    pub(super) count: u32,
}

impl PostingBuilder {
    pub(super) fn push(&mut self, row: u32) {
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
    pub(super) bytes: &'a [u8],
    pub(super) pos: usize,
    pub(super) cur: u32,
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

pub(super) fn build_postings(keys: &str, offsets: &[u32]) -> (GramMap<Posting>, Vec<u8>) {
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
