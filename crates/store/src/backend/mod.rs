//! The place database: the [`Store`] trait and its SQLite and PostgreSQL backends.
//!
//! Both backends keep one `places` row per place (the id columns for matching, a few columns for
//! queries and the place as JSON), a `history` row per change and a one-row `meta` table holding
//! the data version. Timestamps are stored as Unix microseconds (UTC), so every time a store hands
//! back is truncated to the microsecond.
//!
//! Concurrency contract: every method is synchronous and may be called from several threads at
//! once (the HTTP server calls them from `spawn_blocking`). A write is one database transaction;
//! concurrent writers (threads, or other processes on the same SQLite file or PostgreSQL database)
//! are serialised by the database, never by an in-process lock alone.

mod error;
mod merge;
mod migrations;
mod packed;
mod postgres;
mod sqlite;
mod stored;
mod upsert;

use chrono::{DateTime, Utc};
use sadomap_core::{GooglePlaceId, IdentityKey, Place, PlaceId, PlaceRecord, Source};
use serde::{Deserialize, Serialize};

pub use self::error::StoreError;
pub use self::merge::{merge, Merged};
pub use self::postgres::PostgresStore;
pub use self::sqlite::SqliteStore;

/// A place database.
///
/// Nothing is ever deleted: closed places are marked closed, and every change is kept in the
/// history.
pub trait Store: Send + Sync {
    /// Upserts a batch in ONE transaction: all or nothing.
    ///
    /// Each place is matched to a stored record by its Google place ID, else its CID, else its
    /// OSM id (all three are tried), else its source key, then merged field by field (see
    /// [`merge`]). `at` is the time recorded in `updated_at` and the history.
    fn upsert(&self, places: &[Place], at: DateTime<Utc>) -> Result<UpsertReport, StoreError>;

    /// The record with this id, if any.
    fn get(&self, id: PlaceId) -> Result<Option<PlaceRecord>, StoreError>;

    /// The record holding this identifier, if any.
    fn find(&self, key: &IdentityKey) -> Result<Option<PlaceRecord>, StoreError>;

    /// Streams every record (for building the in-memory index and for exports) in id order.
    ///
    /// The records come from one consistent snapshot. An error returned by `f` stops the stream
    /// and is returned. With [`SqliteStore::open_in_memory`], `f` must not call the same store.
    fn for_each(
        &self,
        f: &mut dyn FnMut(PlaceRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    /// The number of stored places (closed ones included).
    fn count(&self) -> Result<u64, StoreError>;

    /// Increases on every committed change of place data (upserts that changed something,
    /// closures); the index rebuilds when it moves. [`Store::mark_checked`] does not move it.
    fn data_version(&self) -> Result<u64, StoreError>;

    /// The changes of one place, oldest first.
    fn history(&self, id: PlaceId) -> Result<Vec<HistoryEntry>, StoreError>;

    /// Places whose details are due (never fetched, or fetched before `now -
    /// policy.details_after`) or whose place-ID re-check is due (places with a place ID, checked
    /// or created before `now - policy.id_recheck_after`); most overdue first, at most `limit`.
    /// Permanently closed places are never due.
    fn due_for_refresh(
        &self,
        now: DateTime<Utc>,
        policy: &RefreshPolicy,
        limit: usize,
    ) -> Result<Vec<RefreshDue>, StoreError>;

    /// Records a successful details fetch / ID re-check time.
    fn mark_checked(
        &self,
        id: PlaceId,
        what: CheckKind,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Marks a place closed (status PermanentlyClosed with provenance); nothing is ever deleted.
    /// Closing a closed place changes nothing.
    fn mark_closed(&self, id: PlaceId, source: Source, at: DateTime<Utc>)
        -> Result<(), StoreError>;
}

/// What an upsert did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpsertReport {
    /// Places stored for the first time.
    pub inserted: u64,
    /// Places that matched a record and changed it.
    pub updated: u64,
    /// Places that matched a record and changed nothing.
    pub unchanged: u64,
    /// The record id of each incoming place, in input order.
    pub ids: Vec<PlaceId>,
    /// Identifiers of incoming places that already belong to another record than the one the
    /// place matched (a likely duplicate pair): the identifier stays with its record.
    pub conflicts: Vec<IdConflict>,
}

/// An incoming identifier that names a different record than the one its place was merged into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdConflict {
    /// Position of the place in the batch.
    pub index: usize,
    /// The record the place was merged into.
    pub matched: PlaceId,
    /// The record that holds `key`.
    pub other: PlaceId,
    /// The identifier both claim.
    pub key: IdentityKey,
}

/// When places are due for a refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// Details older than this are refetched (default 7 days).
    pub details_after: chrono::Duration,
    /// Place IDs older than this are re-checked (default 365 days).
    pub id_recheck_after: chrono::Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        RefreshPolicy {
            details_after: chrono::Duration::days(7),
            id_recheck_after: chrono::Duration::days(365),
        }
    }
}

/// A place due for a refresh, and what is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshDue {
    /// The place.
    pub id: PlaceId,
    /// Its Google place ID, if known.
    pub google_place_id: Option<GooglePlaceId>,
    /// The details are due.
    pub details_due: bool,
    /// The place ID re-check is due.
    pub id_recheck_due: bool,
    /// The last details fetch, if any.
    pub details_checked_at: Option<DateTime<Utc>>,
    /// The last ID re-check, if any.
    pub id_checked_at: Option<DateTime<Utc>>,
}

/// What [`Store::mark_checked`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// The details were fetched.
    Details,
    /// The place ID was re-checked.
    PlaceId,
}

/// The kind of a history entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// First stored.
    Created,
    /// Fields changed by an upsert.
    Updated,
    /// Marked permanently closed.
    Closed,
}

impl ChangeKind {
    /// The stable machine name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Updated => "updated",
            ChangeKind::Closed => "closed",
        }
    }

    fn parse(s: &str) -> Option<ChangeKind> {
        match s {
            "created" => Some(ChangeKind::Created),
            "updated" => Some(ChangeKind::Updated),
            "closed" => Some(ChangeKind::Closed),
            _ => None,
        }
    }
}

/// One changed field of an update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// The field's name as in the place JSON (`address`, `postal_code`, …, or `quality`).
    pub field: String,
    /// The value before (JSON `null` when absent).
    pub old: serde_json::Value,
    /// The value after.
    pub new: serde_json::Value,
    /// The source of the new value, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
}

/// One change of a place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The place.
    pub place: PlaceId,
    /// When the change was stored.
    pub at: DateTime<Utc>,
    /// The source of the change, when known (the newest provenance among the changed fields).
    pub source: Option<Source>,
    /// Created, updated or closed.
    pub change: ChangeKind,
    /// For updates and closures, the fields that changed; empty for creations.
    pub fields: Vec<FieldChange>,
}

pub(crate) fn source_from_str(s: &str) -> Option<Source> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
}

/// Microseconds since the Unix epoch, the stored form of every timestamp.
pub(crate) fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(id: i64, us: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| StoreError::corrupt(id, format!("timestamp {us} µs is out of range")))
}

/// A record's stored body, as the backend keeps it.
pub(crate) enum Body<'a> {
    /// The `data` and `provenance` JSON texts (PostgreSQL; SQLite rows of older versions).
    Json(&'a str, &'a str),
    /// The packed bytes (SQLite).
    Packed(&'a [u8]),
}

impl Body<'_> {
    /// The place the body holds.
    pub(crate) fn decode(&self, id: i64) -> Result<Place, StoreError> {
        match self {
            Body::Json(data, provenance) => stored::decode(id, data, provenance),
            Body::Packed(bytes) => packed::decode(id, bytes),
        }
    }
}

/// Builds a record from the stored columns.
pub(crate) fn decode_record(
    id: i64,
    body: Body<'_>,
    created_at: i64,
    updated_at: i64,
    details_checked_at: Option<i64>,
    id_checked_at: Option<i64>,
) -> Result<PlaceRecord, StoreError> {
    Ok(PlaceRecord {
        id: PlaceId(id),
        place: body.decode(id)?,
        created_at: from_micros(id, created_at)?,
        updated_at: from_micros(id, updated_at)?,
        details_checked_at: details_checked_at.map(|t| from_micros(id, t)).transpose()?,
        id_checked_at: id_checked_at.map(|t| from_micros(id, t)).transpose()?,
    })
}

/// Builds a history entry from the stored columns.
pub(crate) fn decode_history(
    place: i64,
    at: i64,
    source: Option<&str>,
    change: &str,
    fields: Option<&str>,
) -> Result<HistoryEntry, StoreError> {
    let change = ChangeKind::parse(change)
        .ok_or_else(|| StoreError::corrupt(place, format!("history change kind {change:?}")))?;
    let fields = match fields {
        Some(s) => serde_json::from_str(s)
            .map_err(|e| StoreError::corrupt(place, format!("history fields JSON: {e}")))?,
        None => Vec::new(),
    };
    Ok(HistoryEntry {
        place: PlaceId(place),
        at: from_micros(place, at)?,
        source: source.and_then(source_from_str),
        change,
        fields,
    })
}

/// The cut-offs and ordering key of the refresh query, shared by both backends.
pub(crate) struct DueCutoffs {
    /// Details fetched at or before this are due.
    pub details: i64,
    /// Place IDs checked (or created) at or before this are due.
    pub ids: i64,
}

impl DueCutoffs {
    pub(crate) fn new(now: DateTime<Utc>, policy: &RefreshPolicy) -> DueCutoffs {
        let now = to_micros(now);
        let us = |d: chrono::Duration| d.num_microseconds().unwrap_or(i64::MAX);
        DueCutoffs {
            details: now.saturating_sub(us(policy.details_after)),
            ids: now.saturating_sub(us(policy.id_recheck_after)),
        }
    }

    /// Interprets one candidate row.
    pub(crate) fn due(
        &self,
        id: i64,
        place_id: Option<String>,
        details_checked_at: Option<i64>,
        id_checked_at: Option<i64>,
        created_at: i64,
    ) -> Result<RefreshDue, StoreError> {
        let details_due = details_checked_at.is_none_or(|t| t <= self.details);
        let id_recheck_due = place_id.is_some() && id_checked_at.unwrap_or(created_at) <= self.ids;
        let google_place_id = place_id
            .map(|p| GooglePlaceId::new(&p).map_err(|e| StoreError::corrupt(id, e)))
            .transpose()?;
        Ok(RefreshDue {
            id: PlaceId(id),
            google_place_id,
            details_due,
            id_recheck_due,
            details_checked_at: details_checked_at.map(|t| from_micros(id, t)).transpose()?,
            id_checked_at: id_checked_at.map(|t| from_micros(id, t)).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoffs_decide_what_is_due() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let c = DueCutoffs::new(now, &RefreshPolicy::default());
        let day = 86_400_000_000i64;
        let now_us = to_micros(now);
        let d = c.due(1, None, None, None, now_us).unwrap();
        assert!(d.details_due && !d.id_recheck_due);
        let pid = Some("ChIJcwKek-xg818RPaVtz9Hh5tw".to_string());
        let d = c
            .due(
                2,
                pid.clone(),
                Some(now_us - 8 * day),
                None,
                now_us - 400 * day,
            )
            .unwrap();
        assert!(d.details_due && d.id_recheck_due);
        let d = c
            .due(3, pid, Some(now_us - 6 * day), Some(now_us - 300 * day), 0)
            .unwrap();
        assert!(!d.details_due && !d.id_recheck_due);
        assert!(c.due(4, Some("bad id".into()), None, None, 0).is_err());
    }

    #[test]
    fn history_decoding_rejects_garbage() {
        assert!(decode_history(1, 0, Some("csv"), "exploded", None).is_err());
        assert!(decode_history(1, 0, None, "updated", Some("{")).is_err());
        let h = decode_history(1, 0, Some("csv"), "created", None).unwrap();
        assert_eq!(h.source, Some(Source::Csv));
        assert_eq!(h.change, ChangeKind::Created);
    }
}
