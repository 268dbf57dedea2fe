//! Each place's JSON, rendered once per index snapshot and spliced into responses.
//!
//! A page of 20 places is ~24 KB of JSON, and building it from [`PlaceOut`] on every request
//! (string escaping, the week of opening-hours texts) was most of a `near` query's cost. Only two
//! keys of a place depend on the request: `open_now` (the minute) and `distance_m` (the query
//! point). So each place's object is serialised once, with those two values cut out, into one
//! shared buffer; a response copies the pieces and writes the two values between them. The
//! output is byte for byte what serialising [`PlaceOut`] gives (tested for every demo place).
//!
//! Memory is bounded by `fragment_cache_bytes` (default 32 MiB; about 1.2 KB a place, so a
//! Sado-sized set of 1,000 takes 1.2 MB): places beyond it (in id order) are serialised per
//! request as before, so a 1,000,000-place index does not take another 1.2 GB.
//!
//! Concurrency contract: a [`Fragments`] is immutable once built and shared by `Arc`; it belongs
//! to one data version and is only used with the index snapshot of that version.

use sadomap_core::{PlaceRecord, WeekTime};
use sadomap_store::Index;

use crate::dto::PlaceOut;

/// Where one place's pieces lie in [`Fragments::buf`], offsets relative to `start`: the first
/// piece `..hole` ends with `"open_now":`, the second `hole..end` runs from the key after that
/// value to `"distance_m":`.
#[derive(Clone, Copy)]
struct Span {
    start: u64,
    hole: u32,
    end: u32,
}

/// The prerendered JSON of the first places (in index row order) of one index snapshot.
pub(crate) struct Fragments {
    version: u64,
    buf: Vec<u8>,
    spans: Vec<Span>,
}

const OPEN_NOW: &[u8] = b",\"open_now\":null,";
const DISTANCE: &[u8] = b"\"distance_m\":null}";

impl Fragments {
    /// An empty set (every place serialised per request), for version 0.
    #[cfg(test)]
    pub fn empty() -> Fragments {
        Fragments {
            version: 0,
            buf: Vec::new(),
            spans: Vec::new(),
        }
    }

    /// Renders the places of `ix`, in row order, until `budget` bytes are used.
    pub fn build(ix: &Index, budget: usize) -> Fragments {
        // About 1.2 KB a place; reserved up front so growing never holds twice the budget.
        let mut buf = Vec::with_capacity(budget.min(ix.len().saturating_mul(1400)));
        let mut spans = Vec::new();
        // `open_now` and `distance_m` as null: the cut points are then fixed byte strings.
        let any_time = WeekTime::from_utc(chrono::DateTime::UNIX_EPOCH);
        let mut one = Vec::with_capacity(4096);
        for r in ix.records() {
            one.clear();
            let mut out = PlaceOut::new(r, any_time, None);
            out.clear_open_now();
            if serde_json::to_writer(&mut one, &out).is_err() {
                break;
            }
            let Some(hole) = cut(&one) else {
                break;
            };
            if buf.len() + one.len() > budget {
                break;
            }
            let start = buf.len();
            buf.extend_from_slice(&one[..hole]);
            buf.extend_from_slice(&one[hole + 4..one.len() - 5]);
            spans.push(Span {
                start: start as u64,
                hole: hole as u32,
                end: (buf.len() - start) as u32,
            });
        }
        buf.shrink_to_fit();
        spans.shrink_to_fit();
        Fragments {
            version: ix.data_version(),
            buf,
            spans,
        }
    }

    /// The data version these fragments were built from.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Places covered.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.buf.capacity() + self.spans.capacity() * std::mem::size_of::<Span>()
    }

    /// Appends the JSON of `r` (at `row` of the index these fragments were built from) as of
    /// `now`, `distance_m` from the query: spliced when prerendered, else serialised.
    pub fn write(
        &self,
        out: &mut Vec<u8>,
        row: usize,
        r: &PlaceRecord,
        now: WeekTime,
        distance_m: Option<f64>,
    ) -> Result<(), serde_json::Error> {
        let Some(s) = self.spans.get(row) else {
            return serde_json::to_writer(out, &PlaceOut::new(r, now, distance_m));
        };
        let start = s.start as usize;
        let (hole, end) = (start + s.hole as usize, start + s.end as usize);
        out.extend_from_slice(&self.buf[start..hole]);
        out.extend_from_slice(match r.place.hours.as_ref().map(|h| h.is_open_at(now)) {
            None => b"null",
            Some(true) => b"true",
            Some(false) => b"false",
        });
        out.extend_from_slice(&self.buf[hole..end]);
        // Rounded exactly as `PlaceOut` does, and printed by serde_json, so the bytes agree.
        serde_json::to_writer(&mut *out, &distance_m.map(PlaceOut::round_distance))?;
        out.push(b'}');
        Ok(())
    }
}

/// Where the `open_now` value starts in one serialised place (its `distance_m` value is the
/// last `null` before the closing brace). `None` if the object does not have that shape.
fn cut(one: &[u8]) -> Option<usize> {
    // `,"` never occurs inside a JSON string (quotes in strings are escaped), and `open_now`
    // is a top-level key only, so the first match is the key.
    let o = one.windows(OPEN_NOW.len()).position(|w| w == OPEN_NOW)?;
    let hole = o + OPEN_NOW.len() - "null,".len();
    (one.ends_with(DISTANCE) && one.len() - DISTANCE.len() > hole).then_some(hole)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use sadomap_core::{demo_places, prepare, PlaceId, Region};

    fn index(n: u64) -> Index {
        let t = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let records = demo_places(Region::sado(), n, 5)
            .enumerate()
            .map(|(i, mut p)| {
                prepare(&mut p, Region::sado()).unwrap();
                PlaceRecord {
                    id: PlaceId(i as i64 + 1),
                    place: p,
                    created_at: t,
                    updated_at: t,
                    details_checked_at: None,
                    id_checked_at: None,
                }
            })
            .collect();
        Index::build(records, Region::sado(), 3)
    }

    #[test]
    fn the_splice_equals_the_struct_serialisation_for_every_demo_place() {
        let ix = index(1000);
        let f = Fragments::build(&ix, usize::MAX);
        assert_eq!(f.len(), ix.len(), "every place prerendered");
        assert_eq!(f.version(), 3);
        // Several minutes of the week, so open_now takes both values.
        let times: Vec<WeekTime> = [0i64, 3 * 3600, 11 * 3600, 30 * 3600, 5 * 86400 + 20 * 3600]
            .iter()
            .map(|s| WeekTime::from_utc(DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()))
            .collect();
        let (mut spliced, mut opens) = (Vec::new(), 0);
        for (row, r) in ix.records().iter().enumerate() {
            for (j, &now) in times.iter().enumerate() {
                let d = [None, Some(0.0), Some(12.34), Some(98_765.432_1), Some(1e-7)][j];
                spliced.clear();
                f.write(&mut spliced, row, r, now, d).unwrap();
                let want = serde_json::to_vec(&PlaceOut::new(r, now, d)).unwrap();
                assert_eq!(
                    String::from_utf8_lossy(&spliced),
                    String::from_utf8_lossy(&want),
                    "place {} at {now:?}",
                    r.id.0
                );
                opens += usize::from(spliced.windows(15).any(|w| w == b"\"open_now\":true"));
            }
        }
        assert!(opens > 0, "some places were open");
    }

    #[test]
    fn past_the_budget_places_are_serialised_per_request() {
        let ix = index(50);
        let f = Fragments::build(&ix, 10_000);
        assert!(f.len() > 0 && f.len() < 50, "{} covered", f.len());
        assert!(f.bytes() >= 10_000 / 2);
        let now = WeekTime::from_utc(DateTime::from_timestamp(1_800_000_000, 0).unwrap());
        for (row, r) in ix.records().iter().enumerate() {
            let mut out = Vec::new();
            f.write(&mut out, row, r, now, Some(5.0)).unwrap();
            assert_eq!(
                out,
                serde_json::to_vec(&PlaceOut::new(r, now, Some(5.0))).unwrap()
            );
        }
        let none = Fragments::empty();
        let mut out = Vec::new();
        none.write(&mut out, 0, &ix.records()[0], now, None)
            .unwrap();
        assert_eq!(
            out,
            serde_json::to_vec(&PlaceOut::new(&ix.records()[0], now, None)).unwrap()
        );
    }
}
