//! Opaque paging cursors: the last hit's sort key and id, so the next page starts strictly after
//! it whatever was inserted or removed meanwhile.
//!
//! Wire form: base64url (no padding) of `[version][sort tag][id: i64 LE][key][checksum: u32 LE]`,
//! where the key is empty (id order), an `f64` (distance; +∞ for places without coordinates), a
//! `u32` (rating and price keys) or UTF-8 (name key), and the checksum is FNV-1a over the rest.

use sadomap_core::PlaceId;

use super::query::{QueryError, Sort};

const VERSION: u8 = 1;

/// The sort key of the last hit on a page.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CursorKey {
    /// Id order: the id alone.
    None,
    /// Distance in metres (+∞ for places without coordinates).
    Distance(f64),
    /// A numeric column key (rating or price order).
    Num(u32),
    /// A name search key.
    Name(String),
}

/// Where the next page of a query starts. Encode it for clients with [`Cursor::encode`] and read
/// it back with [`Cursor::decode`], which rejects anything it did not produce.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    sort: Sort,
    key: CursorKey,
    id: PlaceId,
}

impl Cursor {
    pub(crate) fn new(sort: Sort, key: CursorKey, id: PlaceId) -> Cursor {
        Cursor { sort, key, id }
    }

    /// The sort order the cursor belongs to.
    pub fn sort(&self) -> Sort {
        self.sort
    }

    /// The id of the last hit of the page the cursor follows.
    pub fn last_id(&self) -> PlaceId {
        self.id
    }

    pub(crate) fn key(&self) -> &CursorKey {
        &self.key
    }

    /// The opaque string form.
    pub fn encode(&self) -> String {
        let mut b = vec![VERSION, self.sort.tag()];
        b.extend_from_slice(&self.id.0.to_le_bytes());
        match &self.key {
            CursorKey::None => {}
            CursorKey::Distance(d) => b.extend_from_slice(&d.to_le_bytes()),
            CursorKey::Num(n) => b.extend_from_slice(&n.to_le_bytes()),
            CursorKey::Name(s) => b.extend_from_slice(s.as_bytes()),
        }
        let sum = fnv1a(&b);
        b.extend_from_slice(&sum.to_le_bytes());
        base64url_encode(&b)
    }

    /// Reads a string made by [`Cursor::encode`]; anything else is an
    /// [`QueryError::InvalidCursor`].
    pub fn decode(s: &str) -> Result<Cursor, QueryError> {
        let bad = |reason| QueryError::InvalidCursor { reason };
        if s.len() > 4096 {
            return Err(bad("too long"));
        }
        let b = base64url_decode(s).ok_or_else(|| bad("not base64url"))?;
        if b.len() < 14 {
            return Err(bad("too short"));
        }
        let (body, sum) = b.split_at(b.len() - 4);
        let mut sum4 = [0u8; 4];
        sum4.copy_from_slice(sum);
        if fnv1a(body) != u32::from_le_bytes(sum4) {
            return Err(bad("checksum mismatch"));
        }
        if body[0] != VERSION {
            return Err(bad("unknown version"));
        }
        let sort = Sort::from_tag(body[1]).ok_or_else(|| bad("unknown sort"))?;
        let mut id8 = [0u8; 8];
        id8.copy_from_slice(&body[2..10]);
        let id = PlaceId(i64::from_le_bytes(id8));
        let rest = &body[10..];
        let key = match sort {
            Sort::Id if rest.is_empty() => CursorKey::None,
            Sort::Distance if rest.len() == 8 => {
                let mut d8 = [0u8; 8];
                d8.copy_from_slice(rest);
                let d = f64::from_le_bytes(d8);
                if d.is_nan() || d < 0.0 {
                    return Err(bad("distance is not a non-negative number"));
                }
                CursorKey::Distance(d)
            }
            Sort::Rating | Sort::Price if rest.len() == 4 => {
                let mut n4 = [0u8; 4];
                n4.copy_from_slice(rest);
                CursorKey::Num(u32::from_le_bytes(n4))
            }
            Sort::Name => CursorKey::Name(
                String::from_utf8(rest.to_vec()).map_err(|_| bad("name key is not UTF-8"))?,
            ),
            _ => return Err(bad("key does not fit the sort")),
        };
        Ok(Cursor { sort, key, id })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.encode())
    }
}

impl std::str::FromStr for Cursor {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cursor::decode(s)
    }
}

fn fnv1a(b: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &x in b {
        h ^= u32::from(x);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64url_encode(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() * 4 / 3 + 3);
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &x)| acc | u32::from(x) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let sextet = |c: u8| ALPHABET.iter().position(|&a| a == c).map(|p| p as u32);
    let bytes = s.as_bytes();
    if bytes.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= sextet(c)? << (18 - 6 * i);
        }
        let len = chunk.len() - 1;
        for i in 0..len {
            out.push((n >> (16 - 8 * i)) as u8);
        }
        // Canonical form only: the bits below the last byte must be zero.
        if n & ((1u32 << (24 - 8 * len)) - 1) != 0 {
            return None;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_key() {
        let cs = [
            Cursor::new(Sort::Id, CursorKey::None, PlaceId(42)),
            Cursor::new(Sort::Distance, CursorKey::Distance(123.456), PlaceId(-7)),
            Cursor::new(
                Sort::Distance,
                CursorKey::Distance(f64::INFINITY),
                PlaceId(9),
            ),
            Cursor::new(Sort::Rating, CursorKey::Num(65_035), PlaceId(1)),
            Cursor::new(Sort::Price, CursorKey::Num(2), PlaceId(i64::MAX)),
            Cursor::new(
                Sort::Name,
                CursorKey::Name("ちょうざぶろう鮨".into()),
                PlaceId(3),
            ),
            Cursor::new(Sort::Name, CursorKey::Name(String::new()), PlaceId(3)),
        ];
        for c in cs {
            let s = c.encode();
            assert!(s.bytes().all(|b| ALPHABET.contains(&b)), "{s}");
            assert_eq!(Cursor::decode(&s).unwrap(), c);
        }
    }

    #[test]
    fn rejects_garbage() {
        let good = Cursor::new(Sort::Rating, CursorKey::Num(7), PlaceId(5)).encode();
        for bad in [
            "",
            "x",
            "!!!!",
            "AAAA",
            "AAAAAAAAAAAAAAAAAAAAAAAA",
            &good[1..],
        ] {
            assert!(Cursor::decode(bad).is_err(), "{bad:?}");
        }
        // Flip each character: the checksum or the alphabet must catch it.
        for i in 0..good.len() {
            let mut b = good.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let s = String::from_utf8(b).unwrap();
            assert!(Cursor::decode(&s).is_err(), "flipped {i}: {s}");
        }
        let e = Cursor::decode("Zm9vYmFy").unwrap_err();
        assert_eq!(e.code(), "invalid_cursor");
    }
}
