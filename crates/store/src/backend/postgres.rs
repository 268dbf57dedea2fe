//! The PostgreSQL backend: the same schema and semantics as SQLite, with `jsonb` data.
//!
//! Concurrency contract: a small pool of synchronous clients (one per concurrent call, idle ones
//! kept); each write is one `READ COMMITTED` transaction that locks the rows it merges into
//! (`SELECT … FOR UPDATE`). Two writers racing to insert the same new identifier, or deadlocking,
//! get a unique-violation / deadlock error and the whole transaction is retried a few times.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{Client, NoTls, Statement, Transaction};
use sadomap_core::{IdentityKey, Place, PlaceId, PlaceRecord, Source};

use super::error::pg_is_retryable;
use super::migrations::{self, POSTGRES};
use super::sqlite::{decode_batch, SCAN_BATCH};
use super::upsert::{run_close, run_upsert, JsonPayload, KeyRef, Row, WriteOps};
use super::{
    decode_history, decode_record, stored, to_micros, Body, ChangeKind, CheckKind, DueCutoffs,
    HistoryEntry, RefreshDue, RefreshPolicy, Store, StoreError, UpsertReport,
};

/// Idle clients kept per store.
const MAX_IDLE: usize = 4;
/// Attempts of a write transaction that lost a race with another writer.
const MAX_ATTEMPTS: u32 = 8;
/// Serialises schema migrations of every sadomap store on one server.
const MIGRATION_LOCK: i64 = 0x5ad0_0a50_0001;

const RECORD_COLUMNS: &str =
    "id, data::text, provenance::text, created_at, updated_at, details_checked_at, id_checked_at";

/// The PostgreSQL place store.
pub struct PostgresStore {
    config: postgres::Config,
    schema: Option<String>,
    location: String,
    idle: Mutex<Vec<Client>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("location", &self.location)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/database`) and migrates the
    /// schema in the connection's default search path.
    pub fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        PostgresStore::build(url, None)
    }

    /// Like [`PostgresStore::connect`], but keeps every table in `schema` (created if missing):
    /// several stores can share one database. `schema` must be a plain identifier
    /// (`[A-Za-z_][A-Za-z0-9_]*`, at most 63 characters).
    pub fn connect_in_schema(url: &str, schema: &str) -> Result<PostgresStore, StoreError> {
        let valid = !schema.is_empty()
            && schema.len() <= 63
            && schema.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(StoreError::Config {
                message: format!(
                    "PostgreSQL schema name {schema:?} is not a plain identifier (letters, digits, _)"
                ),
            });
        }
        PostgresStore::build(url, Some(schema.to_owned()))
    }

    fn build(url: &str, schema: Option<String>) -> Result<PostgresStore, StoreError> {
        let location = redact(url);
        let config: postgres::Config = url.parse().map_err(|e| StoreError::Config {
            message: format!("PostgreSQL URL {location} is invalid: {e}"),
        })?;
        let store = PostgresStore {
            config,
            schema,
            location,
            idle: Mutex::new(Vec::new()),
        };
        store.with_client(|c| migrate(c, store.schema.as_deref()))?;
        Ok(store)
    }

    /// The server and database (without password), for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    fn pool(&self) -> MutexGuard<'_, Vec<Client>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on a pooled client (connecting a new one when none is idle); the client goes
    /// back to the pool afterwards unless its connection is gone.
    fn with_client<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = self.pool().pop();
        let mut client = match idle {
            Some(c) if !c.is_closed() => c,
            _ => self.connect_client()?,
        };
        let out = f(&mut client);
        let mut pool = self.pool();
        if !client.is_closed() && pool.len() < MAX_IDLE {
            pool.push(client);
        }
        out
    }

    fn connect_client(&self) -> Result<Client, StoreError> {
        let mut client = self
            .config
            .connect(NoTls)
            .map_err(|e| StoreError::Unavailable {
                location: self.location.clone(),
                reason: e.to_string(),
            })?;
        if let Some(schema) = &self.schema {
            // Validated as a plain identifier in `connect_in_schema`.
            let sql = format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\"; SET search_path TO \"{schema}\""
            );
            if let Err(e) = client.batch_execute(&sql) {
                // Two first connections may race to create the schema: retry once.
                tracing::debug!(error = %e, "creating the schema raced, retrying");
                client
                    .batch_execute(&sql)
                    .map_err(StoreError::postgres(format!("selecting schema {schema}")))?;
            }
        }
        Ok(client)
    }

    /// Runs `f` in a transaction, retrying when it lost a race; bumps the data version when `f`
    /// says it changed something.
    fn write<T>(
        &self,
        what: &str,
        mut f: impl FnMut(&mut Transaction<'_>) -> Result<(T, bool), StoreError>,
    ) -> Result<T, StoreError> {
        self.with_client(|client| {
            let mut attempt = 1;
            loop {
                let result = (|| {
                    let mut tx = client.transaction().map_err(StoreError::postgres(format!(
                        "starting a transaction for {what}"
                    )))?;
                    let (out, changed) = f(&mut tx)?;
                    if changed {
                        tx.execute(
                            "UPDATE meta SET data_version = data_version + 1 WHERE id = 1",
                            &[],
                        )
                        .map_err(StoreError::postgres("bumping the data version"))?;
                    }
                    tx.commit()
                        .map_err(StoreError::postgres(format!("committing {what}")))?;
                    Ok(out)
                })();
                match result {
                    Err(StoreError::Postgres { source, .. })
                        if pg_is_retryable(&source) && attempt < MAX_ATTEMPTS =>
                    {
                        tracing::debug!(attempt, error = %source, "{what} lost a race; retrying");
                        std::thread::sleep(Duration::from_millis(5 << attempt.min(6)));
                        attempt += 1;
                    }
                    other => return other,
                }
            }
        })
    }
}

/// `url` with any password replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

fn migrate(client: &mut Client, schema: Option<&str>) -> Result<(), StoreError> {
    let where_ = schema.unwrap_or("the default schema");
    let mut tx = client
        .transaction()
        .map_err(StoreError::postgres("starting the schema migration"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(StoreError::postgres("waiting for the migration lock"))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             id INTEGER PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL)",
    )
    .map_err(StoreError::postgres("creating the schema_version table"))?;
    let found: i64 = tx
        .query_opt("SELECT version FROM schema_version WHERE id = 1", &[])
        .map_err(StoreError::postgres("reading the schema version"))?
        .map(|r| r.get(0))
        .unwrap_or(0);
    let scripts = migrations::pending(POSTGRES, found)
        .map_err(|supported| StoreError::SchemaTooNew { found, supported })?;
    if scripts.is_empty() {
        return Ok(());
    }
    for (i, script) in scripts.iter().enumerate() {
        let version = found + i as i64 + 1;
        tx.batch_execute(script)
            .map_err(StoreError::postgres(format!(
                "migrating {where_} to schema version {version}"
            )))?;
    }
    let to = POSTGRES.len() as i64;
    tx.execute(
        "INSERT INTO schema_version (id, version) VALUES (1, $1)
         ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version",
        &[&to],
    )
    .map_err(StoreError::postgres("recording the schema version"))?;
    tx.commit()
        .map_err(StoreError::postgres("committing the schema migration"))?;
    tracing::info!(
        from = found,
        to,
        schema = where_,
        "migrated the PostgreSQL place database"
    );
    Ok(())
}

type RecordRow = (i64, String, String, i64, i64, Option<i64>, Option<i64>);

fn record_row(r: &postgres::Row) -> Result<RecordRow, StoreError> {
    let get = |e: postgres::Error| StoreError::postgres("reading a place row")(e);
    Ok((
        r.try_get(0).map_err(get)?,
        r.try_get(1).map_err(get)?,
        r.try_get(2).map_err(get)?,
        r.try_get(3).map_err(get)?,
        r.try_get(4).map_err(get)?,
        r.try_get(5).map_err(get)?,
        r.try_get(6).map_err(get)?,
    ))
}

fn to_record(row: RecordRow) -> Result<PlaceRecord, StoreError> {
    let (id, data, prov, c, u, d, i) = row;
    decode_record(id, Body::Json(&data, &prov), c, u, d, i)
}

/// The prepared statements of one write transaction.
struct Ops<'a, 'b> {
    tx: &'a mut Transaction<'b>,
    probes: [Statement; 4],
    load: Statement,
    insert: Statement,
    update: Statement,
    history: Statement,
}

impl<'a, 'b> Ops<'a, 'b> {
    fn new(tx: &'a mut Transaction<'b>) -> Result<Ops<'a, 'b>, StoreError> {
        let mut p = |sql: &str| {
            tx.prepare(sql)
                .map_err(StoreError::postgres("preparing the upsert statements"))
        };
        let probes = [
            p("SELECT id FROM places WHERE place_id = $1")?,
            p("SELECT id FROM places WHERE cid = $1")?,
            p("SELECT id FROM places WHERE osm = $1")?,
            p("SELECT id FROM places WHERE source_key = $1")?,
        ];
        let load = p("SELECT data::text, provenance::text FROM places WHERE id = $1 FOR UPDATE")?;
        let insert = p(
            "INSERT INTO places (place_id, cid, osm, source_key, kind, status, \
                        created_at, updated_at, data, provenance) \
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8::text::jsonb, $9::text::jsonb) RETURNING id",
        )?;
        let update = p(
            "UPDATE places SET place_id = $2, cid = $3, osm = $4, source_key = $5, \
                        kind = $6, status = $7, updated_at = $8, data = $9::text::jsonb, \
                        provenance = $10::text::jsonb \
                        WHERE id = $1",
        )?;
        let history = p("INSERT INTO history (place, at, source, change, fields) \
                         VALUES ($1, $2, $3, $4, $5::text::jsonb)")?;
        Ok(Ops {
            tx,
            probes,
            load,
            insert,
            update,
            history,
        })
    }
}

impl<'p> WriteOps<'p, JsonPayload> for Ops<'_, '_> {
    fn probe(&mut self, key: &KeyRef<'_>) -> Result<Option<i64>, StoreError> {
        let (stmt, value): (_, &(dyn ToSql + Sync)) = match key {
            KeyRef::PlaceId(p) => (&self.probes[0], p),
            KeyRef::Cid(c) => (&self.probes[1], c),
            KeyRef::Osm(o) => (&self.probes[2], o),
            KeyRef::Source(s) => (&self.probes[3], s),
        };
        let row = self
            .tx
            .query_opt(stmt, &[value])
            .map_err(StoreError::postgres("matching a place by its identifiers"))?;
        Ok(row.map(|r| r.get(0)))
    }

    fn load(&mut self, id: i64) -> Result<Option<Place>, StoreError> {
        let row = self
            .tx
            .query_opt(&self.load, &[&id])
            .map_err(StoreError::postgres(format!("loading place {id}")))?;
        match row {
            Some(r) => {
                let data: String = r
                    .try_get(0)
                    .map_err(StoreError::postgres(format!("loading place {id}")))?;
                let prov: String = r
                    .try_get(1)
                    .map_err(StoreError::postgres(format!("loading place {id}")))?;
                stored::decode(id, &data, &prov).map(Some)
            }
            None => Ok(None),
        }
    }

    fn insert(&mut self, row: Row<'p, JsonPayload>, at: i64) -> Result<i64, StoreError> {
        let r = self
            .tx
            .query_one(
                &self.insert,
                &[
                    &row.place_id,
                    &row.cid,
                    &row.osm,
                    &row.source_key,
                    &row.kind,
                    &row.status,
                    &at,
                    &row.payload.data,
                    &row.payload.provenance,
                ],
            )
            .map_err(StoreError::postgres(format!(
                "inserting place {:?}",
                row.source_key
            )))?;
        r.try_get(0)
            .map_err(StoreError::postgres("reading a new place's id"))
    }

    fn update(&mut self, id: i64, row: &Row<'_, JsonPayload>, at: i64) -> Result<(), StoreError> {
        self.tx
            .execute(
                &self.update,
                &[
                    &id,
                    &row.place_id,
                    &row.cid,
                    &row.osm,
                    &row.source_key,
                    &row.kind,
                    &row.status,
                    &at,
                    &row.payload.data,
                    &row.payload.provenance,
                ],
            )
            .map_err(StoreError::postgres(format!("updating place {id}")))?;
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
        self.tx
            .execute(
                &self.history,
                &[
                    &id,
                    &at,
                    &source.map(Source::as_str),
                    &change.as_str(),
                    &fields,
                ],
            )
            .map_err(StoreError::postgres(format!(
                "writing the history of place {id}"
            )))?;
        Ok(())
    }
}

impl PostgresStore {
    fn query_record(
        &self,
        where_clause: &str,
        param: &(dyn ToSql + Sync),
    ) -> Result<Option<PlaceRecord>, StoreError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM places WHERE {where_clause}");
        let row = self.with_client(|c| {
            c.query_opt(sql.as_str(), &[param])
                .map_err(StoreError::postgres("looking up a place"))
        })?;
        row.map(|r| record_row(&r).and_then(to_record)).transpose()
    }
}

impl Store for PostgresStore {
    fn upsert(&self, places: &[Place], at: DateTime<Utc>) -> Result<UpsertReport, StoreError> {
        self.write("an upsert", |tx| {
            let empty: bool = tx
                .query_one("SELECT NOT EXISTS (SELECT 1 FROM places)", &[])
                .map_err(StoreError::postgres("checking whether the store is empty"))?
                .get(0);
            let mut ops = Ops::new(tx)?;
            let report = run_upsert(&mut ops, places, at, empty)?;
            let changed = report.inserted + report.updated > 0;
            Ok((report, changed))
        })
    }

    fn get(&self, id: PlaceId) -> Result<Option<PlaceRecord>, StoreError> {
        self.query_record("id = $1", &id.0)
    }

    fn find(&self, key: &IdentityKey) -> Result<Option<PlaceRecord>, StoreError> {
        match KeyRef::from_identity(key) {
            KeyRef::PlaceId(p) => self.query_record("place_id = $1", &p),
            KeyRef::Cid(v) => self.query_record("cid = $1", &v),
            KeyRef::Osm(o) => self.query_record("osm = $1", &o),
            KeyRef::Source(s) => self.query_record("source_key = $1", &s),
        }
    }

    fn for_each(
        &self,
        f: &mut dyn FnMut(PlaceRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM places ORDER BY id");
        self.with_client(|client| {
            let mut rows = client
                .query_raw(sql.as_str(), std::iter::empty::<&(dyn ToSql + Sync)>())
                .map_err(StoreError::postgres("scanning places"))?;
            // Raw rows in batches, their JSON decoded in parallel, handed to `f` in id order.
            let mut batch = Vec::with_capacity(SCAN_BATCH);
            loop {
                let mut done = true;
                while let Some(r) = rows
                    .next()
                    .map_err(StoreError::postgres("scanning places"))?
                {
                    batch.push(record_row(&r)?);
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
        let n: i64 = self
            .with_client(|c| {
                c.query_one("SELECT COUNT(*) FROM places", &[])
                    .map_err(StoreError::postgres("counting places"))
            })?
            .get(0);
        Ok(n.max(0) as u64)
    }

    fn data_version(&self) -> Result<u64, StoreError> {
        let v: i64 = self
            .with_client(|c| {
                c.query_one("SELECT data_version FROM meta WHERE id = 1", &[])
                    .map_err(StoreError::postgres("reading the data version"))
            })?
            .get(0);
        u64::try_from(v).map_err(|_| StoreError::corrupt(0, format!("data version {v}")))
    }

    fn history(&self, id: PlaceId) -> Result<Vec<HistoryEntry>, StoreError> {
        let rows = self.with_client(|c| {
            c.query(
                "SELECT at, source, change, fields::text FROM history WHERE place = $1 ORDER BY seq",
                &[&id.0],
            )
            .map_err(StoreError::postgres(format!("reading the history of place {id}")))
        })?;
        rows.iter()
            .map(|r| {
                let source: Option<String> = r.get(1);
                let change: String = r.get(2);
                let fields: Option<String> = r.get(3);
                decode_history(
                    id.0,
                    r.get(0),
                    source.as_deref(),
                    &change,
                    fields.as_deref(),
                )
            })
            .collect()
    }

    fn due_for_refresh(
        &self,
        now: DateTime<Utc>,
        policy: &RefreshPolicy,
        limit: usize,
    ) -> Result<Vec<RefreshDue>, StoreError> {
        let cut = DueCutoffs::new(now, policy);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.with_client(|c| {
            c.query(DUE_SQL, &[&cut.details, &cut.ids, &limit])
                .map_err(StoreError::postgres("finding places due for refresh"))
        })?;
        rows.iter()
            .map(|r| cut.due(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect()
    }

    fn mark_checked(
        &self,
        id: PlaceId,
        what: CheckKind,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = match what {
            CheckKind::Details => "UPDATE places SET details_checked_at = $2 WHERE id = $1",
            CheckKind::PlaceId => "UPDATE places SET id_checked_at = $2 WHERE id = $1",
        };
        self.write("recording a check", |tx| {
            let n = tx
                .execute(sql, &[&id.0, &to_micros(at)])
                .map_err(StoreError::postgres(format!(
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

/// See the SQLite twin: `$1` details cut-off, `$2` ID cut-off (µs), `$3` limit.
const DUE_SQL: &str = "
SELECT id, place_id, details_checked_at, id_checked_at, created_at FROM (
    SELECT id, place_id, details_checked_at, id_checked_at, created_at,
           LEAST(COALESCE(details_checked_at - $1, -9223372036854775807),
                 CASE WHEN place_id IS NOT NULL THEN COALESCE(id_checked_at, created_at) - $2
                      ELSE 9223372036854775807 END) AS due_key
    FROM places WHERE status <> 'permanently_closed'
) AS candidates WHERE due_key <= 0 ORDER BY due_key, id LIMIT $3";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://me:secret@db:5432/x"),
            "postgres://me:***@db:5432/x"
        );
        assert_eq!(redact("postgres://me@db/x"), "postgres://me@db/x");
        assert_eq!(redact("host=db user=me"), "host=db user=me");
    }

    #[test]
    fn bad_schema_names_are_refused_before_connecting() {
        let err = PostgresStore::connect_in_schema("postgres://nobody@127.0.0.1:1/x", "a;drop")
            .unwrap_err();
        assert_eq!(err.code(), "store_config");
    }

    #[test]
    fn unreachable_server_is_unavailable() {
        let err = PostgresStore::connect("postgres://nobody@127.0.0.1:1/x").unwrap_err();
        assert_eq!(err.code(), "store_unavailable");
        assert!(err.to_string().contains("127.0.0.1"), "{err}");
    }
}
