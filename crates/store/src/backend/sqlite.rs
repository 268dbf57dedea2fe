//! The embedded SQLite backend: `<data_dir>/places.sqlite` in WAL mode.
//!
//! Concurrency contract: one writer connection behind a mutex per handle; writes are `BEGIN
//! IMMEDIATE` transactions, so writers of other handles or processes on the same file wait (up to
//! the busy timeout) instead of failing. Reads use a small pool of reader connections that see the
//! last committed snapshot without blocking on writers (an in-memory store has no pool and reads
//! through the writer).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::types::ValueRef;
use rusqlite::{params, CachedStatement, Connection, OptionalExtension, TransactionBehavior};
use sadomap_core::{IdentityKey, Place, PlaceId, PlaceRecord, Source};

use super::migrations::{self, SQLITE};
use super::upsert::{run_close, run_upsert, KeyRef, PackedPayload, Row, WriteOps};
use super::{
    decode_history, decode_record, to_micros, Body, ChangeKind, CheckKind, DueCutoffs,
    HistoryEntry, RefreshDue, RefreshPolicy, Store, StoreError, UpsertReport,
};

/// How long a writer waits for another writer's transaction before failing with `store_busy`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);
/// WAL size above which a commit starts a background checkpoint (SQLite's default autocheckpoint
/// is about 4 MiB).
const CHECKPOINT_WAL_BYTES: u64 = 4 << 20;
/// Idle reader connections kept per handle.
const MAX_IDLE_READERS: usize = 4;

const RECORD_COLUMNS: &str =
    "id, data, provenance, created_at, updated_at, details_checked_at, id_checked_at";

/// The SQLite place store.
pub struct SqliteStore {
    writer: Mutex<Connection>,
    /// The database file; `None` in memory.
    path: Option<PathBuf>,
    readers: Mutex<Vec<Connection>>,
    /// A background checkpoint is running.
    checkpointing: Arc<AtomicBool>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `<dir>/places.sqlite`, creating `dir` too, and migrates it.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join("places.sqlite");
        let mut writer = open_connection(&path)?;
        writer
            .execute_batch(
                "PRAGMA cache_size = -1048576; PRAGMA journal_size_limit = 67108864; \
                 PRAGMA wal_autocheckpoint = 0;",
            )
            .map_err(StoreError::sqlite("tuning the writer connection"))?;
        migrate(&mut writer)?;
        Ok(SqliteStore {
            writer: Mutex::new(writer),
            path: Some(path),
            readers: Mutex::new(Vec::new()),
            checkpointing: Arc::new(AtomicBool::new(false)),
        })
    }

    /// A private in-memory store (for tests); it vanishes when dropped.
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        static N: AtomicU64 = AtomicU64::new(0);
        let mut writer = Connection::open_in_memory().map_err(|e| StoreError::Unavailable {
            location: format!(":memory: #{}", N.fetch_add(1, Ordering::Relaxed)),
            reason: e.to_string(),
        })?;
        writer
            .execute_batch("PRAGMA foreign_keys = ON;")
            .map_err(StoreError::sqlite("configuring the in-memory database"))?;
        migrate(&mut writer)?;
        Ok(SqliteStore {
            writer: Mutex::new(writer),
            path: None,
            readers: Mutex::new(Vec::new()),
            checkpointing: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The database file, or `None` for an in-memory store.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no open transaction (it rolls back on drop).
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on a reader connection (the writer for an in-memory store).
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let Some(path) = &self.path else {
            return f(&self.writer());
        };
        let idle = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(c) => c,
            None => {
                let c = open_connection(path)?;
                c.execute_batch("PRAGMA query_only = ON;")
                    .map_err(StoreError::sqlite("configuring a reader connection"))?;
                c
            }
        };
        let out = f(&conn);
        let mut pool = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < MAX_IDLE_READERS && conn.is_autocommit() {
            pool.push(conn);
        }
        out
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction; bumps the data version when `f` says it
    /// changed something.
    fn write<T>(
        &self,
        what: &str,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<(T, bool), StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.writer();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::sqlite(format!(
                "starting a transaction for {what}"
            )))?;
        let (out, changed) = f(&tx)?;
        if changed {
            tx.execute(
                "UPDATE meta SET data_version = data_version + 1 WHERE id = 1",
                [],
            )
            .map_err(StoreError::sqlite("bumping the data version"))?;
        }
        tx.commit()
            .map_err(StoreError::sqlite(format!("committing {what}")))?;
        drop(conn);
        self.checkpoint_if_needed();
        Ok(out)
    }
}

impl SqliteStore {
    /// Copies the WAL back into the database file on a background thread once it has grown, so
    /// a large upsert returns at commit instead of after the copy (SQLite's automatic checkpoint
    /// is off for the writer). Readers and writers are never blocked by it (a passive
    /// checkpoint); the WAL stays crash-safe either way.
    fn checkpoint_if_needed(&self) {
        let Some(path) = &self.path else { return };
        let wal = path.with_extension("sqlite-wal");
        let big = std::fs::metadata(&wal).is_ok_and(|m| m.len() > CHECKPOINT_WAL_BYTES);
        if !big || self.checkpointing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (path, flag) = (path.clone(), Arc::clone(&self.checkpointing));
        let spawned = std::thread::Builder::new()
            .name("sadomap-sqlite-checkpoint".into())
            .spawn(move || {
                let result = open_connection(&path).and_then(|c| {
                    c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                        .map_err(StoreError::sqlite("checkpointing the WAL"))
                });
                if let Err(e) = result {
                    tracing::warn!(error = %e, "background WAL checkpoint failed; the next commit retries");
                }
                flag.store(false, Ordering::Release);
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the WAL checkpoint thread");
            self.checkpointing.store(false, Ordering::Release);
        }
    }
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let unavailable = |e: rusqlite::Error| StoreError::Unavailable {
        location: path.display().to_string(),
        reason: e.to_string(),
    };
    let conn = Connection::open(path).map_err(unavailable)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(unavailable)?;
    // 8 KiB pages: fewer page splits and WAL frames in bulk loads (measured ~20 % faster than
    // 4 KiB for a 1M-place import) without making single-row updates much costlier. Only takes
    // effect while the file is still empty, i.e. before the switch to WAL below.
    conn.execute_batch("PRAGMA page_size = 8192;")
        .map_err(unavailable)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(unavailable)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable {
            location: path.display().to_string(),
            reason: format!("cannot switch to WAL mode (journal mode stays {mode:?})"),
        });
    }
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        .map_err(unavailable)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::sqlite("starting the schema migration"))?;
    let found: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(StoreError::sqlite("reading the schema version"))?;
    let scripts = migrations::pending(SQLITE, found)
        .map_err(|supported| StoreError::SchemaTooNew { found, supported })?;
    if scripts.is_empty() {
        return Ok(());
    }
    for (i, script) in scripts.iter().enumerate() {
        let version = found + i as i64 + 1;
        tx.execute_batch(script)
            .map_err(StoreError::sqlite(format!(
                "migrating to schema version {version}"
            )))?;
    }
    tx.execute_batch(&format!("PRAGMA user_version = {}", SQLITE.len()))
        .map_err(StoreError::sqlite("recording the schema version"))?;
    tx.commit()
        .map_err(StoreError::sqlite("committing the schema migration"))?;
    tracing::info!(
        from = found,
        to = SQLITE.len(),
        "migrated the SQLite place database"
    );
    Ok(())
}

/// A stored body as read: packed bytes (a BLOB) or, from older versions, JSON texts.
enum StoredBody {
    Packed(Vec<u8>),
    Json(String, String),
}

impl StoredBody {
    fn read(r: &rusqlite::Row<'_>, data: usize, provenance: usize) -> rusqlite::Result<StoredBody> {
        match r.get_ref(data)? {
            ValueRef::Blob(b) => Ok(StoredBody::Packed(b.to_vec())),
            _ => Ok(StoredBody::Json(r.get(data)?, r.get(provenance)?)),
        }
    }

    fn body(&self) -> Body<'_> {
        match self {
            StoredBody::Packed(b) => Body::Packed(b),
            StoredBody::Json(d, p) => Body::Json(d, p),
        }
    }
}

type RecordRow = (i64, StoredBody, i64, i64, Option<i64>, Option<i64>);

fn record_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RecordRow> {
    Ok((
        r.get(0)?,
        StoredBody::read(r, 1, 2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn to_record(row: RecordRow) -> Result<PlaceRecord, StoreError> {
    let (id, body, c, u, d, i) = row;
    decode_record(id, body.body(), c, u, d, i)
}

fn query_record(
    conn: &Connection,
    where_clause: &str,
    param: &dyn rusqlite::ToSql,
) -> Result<Option<PlaceRecord>, StoreError> {
    let sql = format!("SELECT {RECORD_COLUMNS} FROM places WHERE {where_clause}");
    let mut stmt = conn
        .prepare_cached(&sql)
        .map_err(StoreError::sqlite("preparing a place lookup"))?;
    let row = stmt
        .query_row([param], record_from_row)
        .optional()
        .map_err(StoreError::sqlite("looking up a place"))?;
    row.map(to_record).transpose()
}

/// Rows read per parallel decode in [`Store::for_each`].
pub(crate) const SCAN_BATCH: usize = 4096;

/// Decodes (in parallel) and drains `batch`, keeping its order.
pub(crate) fn decode_batch<R: Send>(
    batch: &mut Vec<R>,
    decode: impl Fn(R) -> Result<PlaceRecord, StoreError> + Sync + Send,
) -> Vec<Result<PlaceRecord, StoreError>> {
    use rayon::prelude::*;
    batch.par_drain(..).map(decode).collect()
}

/// Rows per multi-row `INSERT` of deferred inserts (10 parameters each for `places`).
const INSERT_BATCH: usize = 64;

const INSERT_PLACES: &str =
    "INSERT OR ROLLBACK INTO places (id, place_id, cid, osm, source_key, kind, \
     status, created_at, updated_at, data, provenance) VALUES ";
const INSERT_HISTORY: &str = "INSERT INTO history (place, seq, at, source, change) VALUES ";

/// `INSERT … VALUES (…), (…)` with `rows` groups of `row` (numbered parameters per row).
fn multi_row_sql(head: &str, rows: usize, params: usize, row: impl Fn(usize) -> String) -> String {
    let mut sql = String::with_capacity(head.len() + rows * (params * 5 + 8));
    sql.push_str(head);
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&row(i * params));
    }
    sql
}

fn places_sql(rows: usize) -> String {
    multi_row_sql(INSERT_PLACES, rows, 10, |b| {
        format!(
            "(?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?{})",
            b + 1,
            b + 2,
            b + 3,
            b + 4,
            b + 5,
            b + 6,
            b + 7,
            b + 8,
            b + 8,
            b + 9,
            b + 10
        )
    })
}

fn history_sql(rows: usize) -> String {
    multi_row_sql(INSERT_HISTORY, rows, 4, |b| {
        format!("(?{}, 0, ?{}, ?{}, ?{})", b + 1, b + 2, b + 3, b + 4)
    })
}

/// A deferred `places` insert.
struct PendingPlace<'p> {
    id: i64,
    at: i64,
    row: Row<'p, PackedPayload>,
}

/// A deferred `created` history row.
struct PendingCreated {
    id: i64,
    at: i64,
    source: Option<Source>,
}

/// The statements of one write transaction. New places get their ids here (the largest id plus
/// one, as SQLite would pick: the transaction holds the write lock and nothing is ever deleted),
/// so inserts and their `created` history rows are deferred and written [`INSERT_BATCH`] rows per
/// statement (a flush is triggered by the `created` row of the batch's last insert, so that both
/// tables get full batches); every read, update and other history row writes them first.
struct Ops<'t, 'p> {
    tx: &'t rusqlite::Transaction<'t>,
    probe_place_id: CachedStatement<'t>,
    probe_cid: CachedStatement<'t>,
    probe_osm: CachedStatement<'t>,
    probe_source: CachedStatement<'t>,
    load: CachedStatement<'t>,
    update: CachedStatement<'t>,
    history: CachedStatement<'t>,
    next_seq: CachedStatement<'t>,
    /// The id of the next new place, once known.
    next_id: Option<i64>,
    places: Vec<PendingPlace<'p>>,
    created: Vec<PendingCreated>,
    /// The [`INSERT_BATCH`]-row and one-row statements' SQL (built once per transaction, not
    /// per flush).
    places_sql: String,
    history_sql: String,
    places_sql_1: String,
    history_sql_1: String,
}

impl<'t, 'p> Ops<'t, 'p> {
    fn new(tx: &'t rusqlite::Transaction<'t>) -> Result<Ops<'t, 'p>, StoreError> {
        let p = |sql: &str| {
            tx.prepare_cached(sql)
                .map_err(StoreError::sqlite("preparing the upsert statements"))
        };
        Ok(Ops {
            tx,
            probe_place_id: p("SELECT id FROM places WHERE place_id = ?1")?,
            probe_cid: p("SELECT id FROM places WHERE cid = ?1")?,
            probe_osm: p("SELECT id FROM places WHERE osm = ?1")?,
            probe_source: p("SELECT id FROM places WHERE source_key = ?1")?,
            load: p("SELECT data, provenance FROM places WHERE id = ?1")?,
            update: p(
                "UPDATE places SET place_id = ?2, cid = ?3, osm = ?4, source_key = ?5, \
                       kind = ?6, status = ?7, updated_at = ?8, data = ?9, provenance = ?10 \
                 WHERE id = ?1",
            )?,
            history: p(
                "INSERT INTO history (place, seq, at, source, change, fields) \
                        VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?,
            next_seq: p("SELECT COALESCE(MAX(seq) + 1, 0) FROM history WHERE place = ?1")?,
            next_id: None,
            places: Vec::with_capacity(INSERT_BATCH),
            created: Vec::with_capacity(INSERT_BATCH),
            places_sql: places_sql(INSERT_BATCH),
            history_sql: history_sql(INSERT_BATCH),
            places_sql_1: places_sql(1),
            history_sql_1: history_sql(1),
        })
    }

    /// Writes the deferred inserts, then their history rows. Error contexts are only formatted
    /// on failure (formatting them per row was a measurable share of a bulk insert).
    fn flush(&mut self) -> Result<(), StoreError> {
        fn fail(key: &str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
            move |e| StoreError::sqlite(format!("inserting place {key:?}"))(e)
        }
        let mut rest = &self.places[..];
        while !rest.is_empty() {
            let n = if rest.len() >= INSERT_BATCH {
                INSERT_BATCH
            } else {
                1
            };
            let (now, later) = rest.split_at(n);
            let first = now[0].row.source_key;
            let mut stmt = if n == 1 {
                self.tx.prepare_cached(&self.places_sql_1)
            } else {
                self.tx.prepare_cached(&self.places_sql)
            }
            .map_err(fail(first))?;
            for (i, p) in now.iter().enumerate() {
                let b = i * 10;
                let r = &p.row;
                (|| {
                    stmt.raw_bind_parameter(b + 1, p.id)?;
                    stmt.raw_bind_parameter(b + 2, r.place_id)?;
                    stmt.raw_bind_parameter(b + 3, r.cid)?;
                    stmt.raw_bind_parameter(b + 4, r.osm.as_deref())?;
                    stmt.raw_bind_parameter(b + 5, r.source_key)?;
                    stmt.raw_bind_parameter(b + 6, r.kind)?;
                    stmt.raw_bind_parameter(b + 7, r.status)?;
                    stmt.raw_bind_parameter(b + 8, p.at)?;
                    stmt.raw_bind_parameter(b + 9, r.payload.0.as_slice())?;
                    // Packed bodies carry their provenance.
                    stmt.raw_bind_parameter(b + 10, "")
                })()
                .map_err(fail(r.source_key))?;
            }
            stmt.raw_execute().map_err(fail(first))?;
            rest = later;
        }
        self.places.clear();
        let mut rest = &self.created[..];
        while !rest.is_empty() {
            let n = if rest.len() >= INSERT_BATCH {
                INSERT_BATCH
            } else {
                1
            };
            let (now, later) = rest.split_at(n);
            let id = now[0].id;
            let fail = |e| StoreError::sqlite(format!("writing the history of place {id}"))(e);
            let mut stmt = if n == 1 {
                self.tx.prepare_cached(&self.history_sql_1)
            } else {
                self.tx.prepare_cached(&self.history_sql)
            }
            .map_err(fail)?;
            for (i, h) in now.iter().enumerate() {
                let b = i * 4;
                (|| {
                    stmt.raw_bind_parameter(b + 1, h.id)?;
                    stmt.raw_bind_parameter(b + 2, h.at)?;
                    stmt.raw_bind_parameter(b + 3, h.source.map(Source::as_str))?;
                    stmt.raw_bind_parameter(b + 4, ChangeKind::Created.as_str())
                })()
                .map_err(fail)?;
            }
            stmt.raw_execute().map_err(fail)?;
            rest = later;
        }
        self.created.clear();
        Ok(())
    }

    fn flush_if_pending(&mut self) -> Result<(), StoreError> {
        if self.places.is_empty() && self.created.is_empty() {
            return Ok(());
        }
        self.flush()
    }
}

impl<'p> WriteOps<'p, PackedPayload> for Ops<'_, 'p> {
    fn probe(&mut self, key: &KeyRef<'_>) -> Result<Option<i64>, StoreError> {
        self.flush_if_pending()?;
        let (stmt, value): (_, &dyn rusqlite::ToSql) = match key {
            KeyRef::PlaceId(p) => (&mut self.probe_place_id, p),
            KeyRef::Cid(c) => (&mut self.probe_cid, c),
            KeyRef::Osm(o) => (&mut self.probe_osm, o),
            KeyRef::Source(s) => (&mut self.probe_source, s),
        };
        stmt.query_row([value], |r| r.get(0))
            .optional()
            .map_err(StoreError::sqlite("matching a place by its identifiers"))
    }

    fn load(&mut self, id: i64) -> Result<Option<Place>, StoreError> {
        self.flush_if_pending()?;
        let body = self
            .load
            .query_row([id], |r| StoredBody::read(r, 0, 1))
            .optional()
            .map_err(StoreError::sqlite(format!("loading place {id}")))?;
        body.map(|b| b.body().decode(id)).transpose()
    }

    fn insert(&mut self, row: Row<'p, PackedPayload>, at: i64) -> Result<i64, StoreError> {
        let id = match self.next_id {
            Some(id) => id,
            None => self
                .tx
                .query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM places", [], |r| {
                    r.get(0)
                })
                .map_err(StoreError::sqlite("numbering new places"))?,
        };
        let next = id
            .checked_add(1)
            .ok_or_else(|| StoreError::corrupt(id, "place ids are exhausted"))?;
        self.next_id = Some(next);
        self.places.push(PendingPlace { id, at, row });
        // Normally flushed by the `created` history row that follows (so that both tables are
        // written in full batches); this only bounds what a caller without one could defer.
        if self.places.len() >= 2 * INSERT_BATCH {
            self.flush()?;
        }
        Ok(id)
    }

    fn update(&mut self, id: i64, row: &Row<'_, PackedPayload>, at: i64) -> Result<(), StoreError> {
        self.flush_if_pending()?;
        self.update
            .execute(params![
                id,
                row.place_id,
                row.cid,
                row.osm,
                row.source_key,
                row.kind,
                row.status,
                at,
                row.payload.0,
                ""
            ])
            .map_err(StoreError::sqlite(format!("updating place {id}")))?;
        Ok(())
    }

    fn history(
        &mut self,
        id: i64,
        at: i64,
        source: Option<Source>,
        change: ChangeKind,
        fields: Option<&str>,
    ) -> Result<(), StoreError> {
        if change == ChangeKind::Created && fields.is_none() {
            // Written after the place's own deferred insert (a new place has no history yet).
            self.created.push(PendingCreated { id, at, source });
            if self.places.len() >= INSERT_BATCH {
                self.flush()?;
            }
            return Ok(());
        }
        self.flush_if_pending()?;
        let seq: i64 = match change {
            ChangeKind::Created => 0,
            _ => self
                .next_seq
                .query_row([id], |r| r.get(0))
                .map_err(StoreError::sqlite(format!(
                    "numbering the history of place {id}"
                )))?,
        };
        self.history
            .execute(params![
                id,
                seq,
                at,
                source.map(Source::as_str),
                change.as_str(),
                fields
            ])
            .map_err(StoreError::sqlite(format!(
                "writing the history of place {id}"
            )))?;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), StoreError> {
        self.flush_if_pending()
    }
}

impl Store for SqliteStore {
    fn upsert(&self, places: &[Place], at: DateTime<Utc>) -> Result<UpsertReport, StoreError> {
        self.write("an upsert", |tx| {
            let empty: bool = tx
                .query_row("SELECT NOT EXISTS (SELECT 1 FROM places)", [], |r| r.get(0))
                .map_err(StoreError::sqlite("checking whether the store is empty"))?;
            let mut ops = Ops::new(tx)?;
            let report = run_upsert(&mut ops, places, at, empty)?;
            let changed = report.inserted + report.updated > 0;
            Ok((report, changed))
        })
    }

    fn get(&self, id: PlaceId) -> Result<Option<PlaceRecord>, StoreError> {
        self.read(|c| query_record(c, "id = ?1", &id.0))
    }

    fn find(&self, key: &IdentityKey) -> Result<Option<PlaceRecord>, StoreError> {
        self.read(|c| match KeyRef::from_identity(key) {
            KeyRef::PlaceId(p) => query_record(c, "place_id = ?1", &p),
            KeyRef::Cid(v) => query_record(c, "cid = ?1", &v),
            KeyRef::Osm(o) => query_record(c, "osm = ?1", &o),
            KeyRef::Source(s) => query_record(c, "source_key = ?1", &s),
        })
    }

    fn for_each(
        &self,
        f: &mut dyn FnMut(PlaceRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.read(|c| {
            let sql = format!("SELECT {RECORD_COLUMNS} FROM places ORDER BY id");
            let mut stmt = c
                .prepare(&sql)
                .map_err(StoreError::sqlite("preparing the place scan"))?;
            // One statement, so one snapshot. Raw rows are read in batches on this thread, their
            // JSON decoded in parallel, then handed to `f` in id order.
            let mut rows = stmt
                .query([])
                .map_err(StoreError::sqlite("scanning places"))?;
            let mut batch: Vec<RecordRow> = Vec::with_capacity(SCAN_BATCH);
            loop {
                let mut done = true;
                while let Some(r) = rows.next().map_err(StoreError::sqlite("scanning places"))? {
                    batch.push(
                        record_from_row(r).map_err(StoreError::sqlite("reading a place row"))?,
                    );
                    if batch.len() == SCAN_BATCH {
                        done = false;
                        break;
                    }
                }
                for record in decode_batch(&mut batch, to_record) {
                    f(record?)?;
                }
                if done {
                    return Ok(());
                }
            }
        })
    }

    fn count(&self) -> Result<u64, StoreError> {
        self.read(|c| {
            c.query_row("SELECT COUNT(*) FROM places", [], |r| r.get::<_, i64>(0))
                .map(|n| n.max(0) as u64)
                .map_err(StoreError::sqlite("counting places"))
        })
    }

    fn data_version(&self) -> Result<u64, StoreError> {
        self.read(|c| {
            let v: i64 = c
                .query_row("SELECT data_version FROM meta WHERE id = 1", [], |r| {
                    r.get(0)
                })
                .map_err(StoreError::sqlite("reading the data version"))?;
            u64::try_from(v).map_err(|_| StoreError::corrupt(0, format!("data version {v}")))
        })
    }

    fn history(&self, id: PlaceId) -> Result<Vec<HistoryEntry>, StoreError> {
        self.read(|c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT at, source, change, fields FROM history WHERE place = ?1 ORDER BY seq",
                )
                .map_err(StoreError::sqlite("preparing the history query"))?;
            let rows = stmt
                .query_map([id.0], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                })
                .map_err(StoreError::sqlite(format!(
                    "reading the history of place {id}"
                )))?;
            let mut out = Vec::new();
            for row in rows {
                let (at, source, change, fields) = row.map_err(StoreError::sqlite(format!(
                    "reading the history of place {id}"
                )))?;
                out.push(decode_history(
                    id.0,
                    at,
                    source.as_deref(),
                    &change,
                    fields.as_deref(),
                )?);
            }
            Ok(out)
        })
    }

    fn due_for_refresh(
        &self,
        now: DateTime<Utc>,
        policy: &RefreshPolicy,
        limit: usize,
    ) -> Result<Vec<RefreshDue>, StoreError> {
        let cut = DueCutoffs::new(now, policy);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|c| {
            let mut stmt = c
                .prepare_cached(DUE_SQL)
                .map_err(StoreError::sqlite("preparing the refresh query"))?;
            let rows = stmt
                .query_map(params![cut.details, cut.ids, limit], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .map_err(StoreError::sqlite("finding places due for refresh"))?;
            let mut out = Vec::new();
            for row in rows {
                let (id, pid, d, i, created) =
                    row.map_err(StoreError::sqlite("finding places due for refresh"))?;
                out.push(cut.due(id, pid, d, i, created)?);
            }
            Ok(out)
        })
    }

    fn mark_checked(
        &self,
        id: PlaceId,
        what: CheckKind,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = match what {
            CheckKind::Details => "UPDATE places SET details_checked_at = ?2 WHERE id = ?1",
            CheckKind::PlaceId => "UPDATE places SET id_checked_at = ?2 WHERE id = ?1",
        };
        self.write("recording a check", |tx| {
            let n = tx
                .execute(sql, params![id.0, to_micros(at)])
                .map_err(StoreError::sqlite(format!(
                    "recording a check of place {id}"
                )))?;
            if n == 0 {
                return Err(StoreError::NotFound { id });
            }
            Ok(((), false))
        })
    }

    fn mark_closed(
        &self,
        id: PlaceId,
        source: Source,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write("closing a place", |tx| {
            let mut ops = Ops::new(tx)?;
            let changed = run_close(&mut ops, id, source, at)?;
            Ok(((), changed))
        })
    }
}

/// Places due for a refresh, most overdue first: `?1` details cut-off, `?2` ID cut-off (µs).
/// The key is how far past its cut-off the earliest due check is (never-fetched details first).
const DUE_SQL: &str = "
SELECT id, place_id, details_checked_at, id_checked_at, created_at FROM (
    SELECT id, place_id, details_checked_at, id_checked_at, created_at,
           MIN(COALESCE(details_checked_at - ?1, -9223372036854775807),
               CASE WHEN place_id IS NOT NULL THEN COALESCE(id_checked_at, created_at) - ?2
                    ELSE 9223372036854775807 END) AS due_key
    FROM places WHERE status <> 'permanently_closed'
) WHERE due_key <= 0 ORDER BY due_key, id LIMIT ?3";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteStore::open(dir.path()).unwrap());
        let c = Connection::open(dir.path().join("places.sqlite")).unwrap();
        c.execute_batch("PRAGMA user_version = 99").unwrap();
        drop(c);
        let err = SqliteStore::open(dir.path()).unwrap_err();
        assert_eq!(err.code(), "schema_too_new");
        assert!(err.to_string().contains("99"), "{err}");
    }

    #[test]
    fn reopening_keeps_data_and_schema() {
        let dir = tempfile::tempdir().unwrap();
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        {
            let s = SqliteStore::open(dir.path()).unwrap();
            let p = Place::new(sadomap_core::Kind::Parking, "両津港駐車場", "demo:1");
            s.upsert(&[p], at).unwrap();
        }
        let s = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(s.count().unwrap(), 1);
        assert_eq!(s.data_version().unwrap(), 1);
        let mode: String = s
            .writer()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn json_rows_of_older_versions_read_and_are_packed_when_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let s = SqliteStore::open(dir.path()).unwrap();
        let mut p = Place::new(sadomap_core::Kind::Parking, "両津港駐車場", "demo:1");
        p.stamp_all(Source::Demo, at);
        let id = s.upsert(std::slice::from_ref(&p), at).unwrap().ids[0];
        // Rewrite the row as the JSON texts earlier versions stored.
        let (data, prov) = super::super::stored::encode(&p).unwrap();
        s.writer()
            .execute(
                "UPDATE places SET data = ?1, provenance = ?2 WHERE id = ?3",
                params![data, prov, id.0],
            )
            .unwrap();
        assert_eq!(s.get(id).unwrap().unwrap().place, p);
        let kind = |s: &SqliteStore| -> String {
            s.writer()
                .query_row(
                    "SELECT typeof(data) FROM places WHERE id = ?1",
                    [id.0],
                    |r| r.get(0),
                )
                .unwrap()
        };
        assert_eq!(kind(&s), "text");
        p.phone = Some("0259-27-0000".into());
        s.upsert(std::slice::from_ref(&p), at).unwrap();
        assert_eq!(kind(&s), "blob");
        assert_eq!(s.get(id).unwrap().unwrap().place.phone, p.phone);
    }

    #[test]
    fn unopenable_path_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let err = SqliteStore::open(&file).unwrap_err();
        assert_eq!(err.code(), "store_unavailable");
    }
}
