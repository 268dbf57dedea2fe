//! The upsert and close algorithms, shared by both backends through [`WriteOps`]: the backend
//! supplies the statements of one open transaction, this module decides what to write.

use std::borrow::Cow;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use chrono::{DateTime, Utc};
use sadomap_core::{
    BusinessStatus, Cid, Field, GooglePlaceId, IdentityKey, OsmId, Place, PlaceId, Provenance,
    Source,
};

use super::merge::{merge, newest_source};
use super::{to_micros, ChangeKind, IdConflict, StoreError, UpsertReport};

/// An identifier as the id columns hold it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum KeyRef<'a> {
    /// `place_id` column.
    PlaceId(&'a str),
    /// `cid` column (the CID's bits as a signed integer).
    Cid(i64),
    /// `osm` column (`n123`).
    Osm(String),
    /// `source_key` column.
    Source(&'a str),
}

impl<'a> KeyRef<'a> {
    pub(crate) fn from_identity(k: &'a IdentityKey) -> KeyRef<'a> {
        match k {
            IdentityKey::PlaceId(p) => KeyRef::PlaceId(p.as_str()),
            IdentityKey::Cid(c) => KeyRef::Cid(cid_to_i64(*c)),
            IdentityKey::Osm(o) => KeyRef::Osm(o.to_string()),
            IdentityKey::Source(s) => KeyRef::Source(s),
        }
    }

    fn to_identity(&self) -> Option<IdentityKey> {
        Some(match self {
            KeyRef::PlaceId(p) => IdentityKey::PlaceId(GooglePlaceId::new(p).ok()?),
            KeyRef::Cid(c) => IdentityKey::Cid(cid_from_i64(*c)),
            KeyRef::Osm(o) => IdentityKey::Osm(o.parse::<OsmId>().ok()?),
            KeyRef::Source(s) => IdentityKey::Source((*s).to_owned()),
        })
    }
}

/// The stored form of a CID: its 64 bits as a signed integer.
pub(crate) fn cid_to_i64(c: Cid) -> i64 {
    i64::from_ne_bytes(c.0.to_ne_bytes())
}

fn cid_from_i64(v: i64) -> Cid {
    Cid(u64::from_ne_bytes(v.to_ne_bytes()))
}

/// The strong identifiers of a place (place ID, CID, OSM id), in matching order.
fn strong_keys(p: &Place) -> Vec<KeyRef<'_>> {
    let mut keys = Vec::with_capacity(3);
    if let Some(id) = &p.ids.google_place_id {
        keys.push(KeyRef::PlaceId(id.as_str()));
    }
    if let Some(c) = p.ids.cid {
        keys.push(KeyRef::Cid(cid_to_i64(c)));
    }
    if let Some(o) = p.ids.osm {
        keys.push(KeyRef::Osm(o.to_string()));
    }
    keys
}

/// How a backend stores a place's body.
pub(crate) trait Payload: Sized + Send {
    /// The body of `p`.
    fn encode(p: &Place) -> Result<Self, StoreError>;
}

/// JSON texts: PostgreSQL keeps them as `jsonb`, queryable with SQL.
pub(crate) struct JsonPayload {
    pub data: String,
    pub provenance: String,
}

impl Payload for JsonPayload {
    fn encode(p: &Place) -> Result<JsonPayload, StoreError> {
        let (data, provenance) = super::stored::encode(p)?;
        Ok(JsonPayload { data, provenance })
    }
}

/// Packed bytes (SQLite): a third of the size, several times faster both ways.
pub(crate) struct PackedPayload(pub Vec<u8>);

impl Payload for PackedPayload {
    fn encode(p: &Place) -> Result<PackedPayload, StoreError> {
        Ok(PackedPayload(super::packed::encode(p)))
    }
}

/// The column values of one `places` row, with the body as the backend stores it.
pub(crate) struct Row<'a, D> {
    pub place_id: Option<&'a str>,
    pub cid: Option<i64>,
    pub osm: Option<String>,
    pub source_key: &'a str,
    pub kind: &'static str,
    pub status: &'static str,
    pub payload: D,
}

impl<'a, D: Payload> Row<'a, D> {
    pub(crate) fn new(p: &'a Place) -> Result<Row<'a, D>, StoreError> {
        Ok(Row {
            place_id: p.ids.google_place_id.as_ref().map(|g| g.as_str()),
            cid: p.ids.cid.map(cid_to_i64),
            osm: p.ids.osm.map(|o| o.to_string()),
            source_key: &p.ids.source_key,
            kind: p.kind.as_str(),
            status: p.status.as_str(),
            payload: D::encode(p)?,
        })
    }
}

/// The statements of one open write transaction; `'p` is the lifetime of the incoming places.
///
/// A backend may defer inserts (and the `created` history rows that follow them) and write them
/// in batches, as long as every other call sees them: it must write what it deferred before
/// answering a probe or a load, before an update or a non-creation history row, and in
/// [`WriteOps::finish`].
pub(crate) trait WriteOps<'p, D> {
    /// The record holding `key`, if any (including rows written earlier in this transaction).
    fn probe(&mut self, key: &KeyRef<'_>) -> Result<Option<i64>, StoreError>;
    /// The stored place of record `id`.
    fn load(&mut self, id: i64) -> Result<Option<Place>, StoreError>;
    /// Inserts a new record created at `at` (µs) and returns its id.
    fn insert(&mut self, row: Row<'p, D>, at: i64) -> Result<i64, StoreError>;
    /// Rewrites record `id`, updated at `at` (µs).
    fn update(&mut self, id: i64, row: &Row<'_, D>, at: i64) -> Result<(), StoreError>;
    /// Appends a history row; `fields` is the JSON array of field changes.
    fn history(
        &mut self,
        id: i64,
        at: i64,
        source: Option<Source>,
        change: ChangeKind,
        fields: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Writes whatever is still deferred; called once at the end of an upsert.
    fn finish(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Places encoded per chunk by the encoder thread of a bulk insert.
const ENCODE_CHUNK: usize = 1024;
/// Batches smaller than this are encoded inline.
const ENCODE_AHEAD_MIN: usize = 2 * ENCODE_CHUNK;

/// The rows of the incoming places, encoded ahead of the write loop on one other thread when the
/// table was empty, where nearly every place is inserted as it comes. One plain thread, not a
/// rayon pool: the writer needs a core of its own, and on two cores more encoders only compete
/// with it.
struct Encoded<'p, D> {
    rx: std::sync::mpsc::Receiver<Vec<Result<Row<'p, D>, StoreError>>>,
    chunk: std::vec::IntoIter<Result<Row<'p, D>, StoreError>>,
}
impl<'p, D> Encoded<'p, D> {
    /// The encoded row of the next place (call once per place, in order).
    fn next(&mut self) -> Option<Result<Row<'p, D>, StoreError>> {
        loop {
            if let Some(r) = self.chunk.next() {
                return Some(r);
            }
            self.chunk = self.rx.recv().ok()?.into_iter();
        }
    }
}

/// A cheap hasher for the written-keys set (FxHash-style words, murmur3 finaliser): the keys are
/// our own, so no flooding resistance is needed, and SipHash cost a noticeable share of the
/// bulk insert.
#[derive(Default)]
struct KeyHasher(u64);

impl KeyHasher {
    const K: u64 = 0x517c_c1b7_2722_0a95;

    fn word(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(Self::K);
    }
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.word(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.word(i);
    }

    fn write_i64(&mut self, i: i64) {
        self.word(i as u64);
    }

    fn write_usize(&mut self, i: usize) {
        self.word(i as u64);
    }

    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// Hashes the already well-mixed key hashes stored in [`Written`] by passing them through.
#[derive(Default)]
struct PassHasher(u64);

impl Hasher for PassHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Keys written in this transaction, when the table was empty at its start: a key not in here
/// cannot be in the table, so its probe is skipped (a hash collision only costs a probe).
#[derive(Default)]
struct Written(HashSet<u64, BuildHasherDefault<PassHasher>>);

impl Written {
    fn hash(key: &KeyRef<'_>) -> u64 {
        let mut h = KeyHasher::default();
        key.hash(&mut h);
        h.finish()
    }

    fn add(&mut self, key: &KeyRef<'_>) {
        self.0.insert(Self::hash(key));
    }

    fn may_hold(&self, key: &KeyRef<'_>) -> bool {
        self.0.contains(&Self::hash(key))
    }
}

fn probe<D>(
    ops: &mut dyn WriteOps<'_, D>,
    written: &Option<Written>,
    key: &KeyRef<'_>,
) -> Result<Option<i64>, StoreError> {
    match written {
        Some(w) if !w.may_hold(key) => Ok(None),
        _ => ops.probe(key),
    }
}

fn reject(index: usize, p: &Place, reason: &str) -> StoreError {
    StoreError::InvalidPlace {
        index,
        name: p.names.ja.clone(),
        reason: reason.to_owned(),
    }
}

fn fields_json(changes: &[super::FieldChange]) -> Result<String, StoreError> {
    serde_json::to_string(changes).map_err(|source| StoreError::Serialize {
        what: "history field changes".to_owned(),
        source,
    })
}

/// Upserts `places` through `ops` (one open transaction). `table_was_empty` enables skipping
/// probes for keys not written in this transaction, and encoding rows ahead on another thread.
pub(crate) fn run_upsert<'p, D: Payload>(
    ops: &mut dyn WriteOps<'p, D>,
    places: &'p [Place],
    at: DateTime<Utc>,
    table_was_empty: bool,
) -> Result<UpsertReport, StoreError> {
    if !table_was_empty || places.len() < ENCODE_AHEAD_MIN {
        return upsert_loop(ops, places, at, table_was_empty, None);
    }
    std::thread::scope(|s| {
        // A few chunks in flight: the encoder stays ahead without holding the whole batch.
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        s.spawn(move || {
            for chunk in places.chunks(ENCODE_CHUNK) {
                let rows: Vec<_> = chunk.iter().map(Row::<D>::new).collect();
                if tx.send(rows).is_err() {
                    return; // the write loop stopped early
                }
            }
        });
        let encoded = Encoded {
            rx,
            chunk: Vec::new().into_iter(),
        };
        // Returning drops the receiver, which stops the encoder.
        upsert_loop(ops, places, at, true, Some(encoded))
    })
}

fn upsert_loop<'p, D: Payload>(
    ops: &mut dyn WriteOps<'p, D>,
    places: &'p [Place],
    at: DateTime<Utc>,
    table_was_empty: bool,
    mut encoded: Option<Encoded<'p, D>>,
) -> Result<UpsertReport, StoreError> {
    let at_us = to_micros(at);
    let mut written = table_was_empty.then(|| {
        // Room for every place's source key and a strong key or two without rehashing.
        Written(HashSet::with_capacity_and_hasher(
            places.len().saturating_mul(2),
            BuildHasherDefault::default(),
        ))
    });
    let mut report = UpsertReport {
        ids: Vec::with_capacity(places.len()),
        ..UpsertReport::default()
    };
    for (index, incoming) in places.iter().enumerate() {
        let ahead = encoded.as_mut().and_then(Encoded::next);
        if incoming.ids.source_key.trim().is_empty() {
            return Err(reject(index, incoming, "the source key is empty"));
        }
        let keys = strong_keys(incoming);
        let mut matched: Option<i64> = None;
        let mut foreign: Vec<(usize, i64)> = Vec::new();
        for (k, key) in keys.iter().enumerate() {
            match (matched, probe(ops, &written, key)?) {
                (None, Some(hit)) => matched = Some(hit),
                (Some(m), Some(hit)) if m != hit => foreign.push((k, hit)),
                _ => {}
            }
        }
        if matched.is_none() {
            matched = probe(ops, &written, &KeyRef::Source(&incoming.ids.source_key))?;
        }
        let id = match matched {
            None => {
                let row = match ahead {
                    Some(row) => row?,
                    None => Row::new(incoming)?,
                };
                let id = ops.insert(row, at_us)?;
                let source = newest_source(incoming, std::iter::empty());
                ops.history(id, at_us, source, ChangeKind::Created, None)?;
                if let Some(w) = written.as_mut() {
                    keys.iter().for_each(|k| w.add(k));
                    w.add(&KeyRef::Source(&incoming.ids.source_key));
                }
                report.inserted += 1;
                id
            }
            Some(id) => {
                let stored = ops
                    .load(id)?
                    .ok_or_else(|| StoreError::corrupt(id, "matched by an index but not found"))?;
                let mut incoming = Cow::Borrowed(incoming);
                for &(k, other) in &foreign {
                    if let Some(key) = keys[k].to_identity() {
                        report.conflicts.push(IdConflict {
                            index,
                            matched: PlaceId(id),
                            other: PlaceId(other),
                            key,
                        });
                    }
                    let ids = &mut incoming.to_mut().ids;
                    match keys[k] {
                        KeyRef::PlaceId(_) => ids.google_place_id = None,
                        KeyRef::Cid(_) => ids.cid = None,
                        KeyRef::Osm(_) => ids.osm = None,
                        KeyRef::Source(_) => {}
                    }
                }
                let merged = merge(&stored, &incoming)?;
                if merged.changed() {
                    let row = Row::<D>::new(&merged.place)?;
                    ops.update(id, &row, at_us)?;
                    let fields = fields_json(&merged.changes)?;
                    ops.history(
                        id,
                        at_us,
                        merged.source(),
                        ChangeKind::Updated,
                        Some(&fields),
                    )?;
                    if let Some(w) = written.as_mut() {
                        strong_keys(&merged.place).iter().for_each(|k| w.add(k));
                    }
                    report.updated += 1;
                } else {
                    report.unchanged += 1;
                }
                id
            }
        };
        report.ids.push(PlaceId(id));
    }
    ops.finish()?;
    Ok(report)
}

/// Marks record `id` permanently closed; `Ok(false)` when it already was.
pub(crate) fn run_close<D: Payload>(
    ops: &mut dyn WriteOps<'_, D>,
    id: PlaceId,
    source: Source,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let stored = ops.load(id.0)?.ok_or(StoreError::NotFound { id })?;
    if stored.status == BusinessStatus::PermanentlyClosed {
        return Ok(false);
    }
    let mut closed = stored.clone();
    closed.status = BusinessStatus::PermanentlyClosed;
    closed.provenance.insert(
        Field::Status,
        Provenance {
            source,
            fetched_at: at,
        },
    );
    let merged = merge(&stored, &closed)?;
    let at_us = to_micros(at);
    ops.update(id.0, &Row::<D>::new(&merged.place)?, at_us)?;
    let fields = fields_json(&merged.changes)?;
    ops.history(id.0, at_us, Some(source), ChangeKind::Closed, Some(&fields))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cid_bits_round_trip() {
        for c in [0u64, 1, u64::MAX, 0xE1E6_0000_0000_0001] {
            assert_eq!(cid_from_i64(cid_to_i64(Cid(c))), Cid(c));
        }
        assert!(cid_to_i64(Cid(u64::MAX)) < 0);
    }

    #[test]
    fn written_set_has_no_false_negatives() {
        let mut w = Written::default();
        w.add(&KeyRef::Source("demo:1"));
        assert!(w.may_hold(&KeyRef::Source("demo:1")));
        assert!(!w.may_hold(&KeyRef::PlaceId("demo:1")));
    }

    #[test]
    fn strong_keys_in_matching_order() {
        let mut p = Place::new(sadomap_core::Kind::Toilet, "公衆トイレ", "demo:1");
        assert!(strong_keys(&p).is_empty());
        p.ids.osm = Some("n5".parse().unwrap());
        p.ids.cid = Some(Cid(9));
        let keys = strong_keys(&p);
        assert_eq!(keys, [KeyRef::Cid(9), KeyRef::Osm("n5".into())]);
    }
}
