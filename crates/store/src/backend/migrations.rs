//! Schema migrations: an ordered list of SQL scripts per backend. Script `i` (0-based) brings the
//! schema from version `i` to `i + 1`. SQLite records the version in `PRAGMA user_version`,
//! PostgreSQL in a one-row `schema_version` table. Migrations run in one transaction at open; a
//! database whose version is newer than the last script is refused.
//!
//! Timestamps are Unix microseconds (UTC) in both backends; CIDs (unsigned 64-bit) are stored as
//! the signed integer with the same bits. `data` holds the place JSON without its provenance,
//! `provenance` the provenance grouped by source and time (see `stored`).

/// SQLite scripts, oldest first.
pub(crate) const SQLITE: &[&str] = &[r#"
CREATE TABLE places (
    id                 INTEGER PRIMARY KEY,
    place_id           TEXT,
    cid                INTEGER,
    osm                TEXT,
    source_key         TEXT NOT NULL CHECK (source_key <> ''),
    kind               TEXT NOT NULL,
    status             TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    details_checked_at INTEGER,
    id_checked_at      INTEGER,
    data               TEXT NOT NULL,
    provenance         TEXT NOT NULL
);
CREATE UNIQUE INDEX places_place_id ON places (place_id) WHERE place_id IS NOT NULL;
CREATE UNIQUE INDEX places_cid ON places (cid) WHERE cid IS NOT NULL;
CREATE UNIQUE INDEX places_osm ON places (osm) WHERE osm IS NOT NULL;
CREATE UNIQUE INDEX places_source_key ON places (source_key);
CREATE TABLE history (
    place  INTEGER NOT NULL REFERENCES places (id),
    seq    INTEGER NOT NULL,
    at     INTEGER NOT NULL,
    source TEXT,
    change TEXT NOT NULL CHECK (change IN ('created', 'updated', 'closed')),
    fields TEXT,
    PRIMARY KEY (place, seq)
) WITHOUT ROWID;
CREATE TABLE meta (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    data_version INTEGER NOT NULL
);
INSERT INTO meta (id, data_version) VALUES (1, 0);
"#];

/// PostgreSQL scripts, oldest first.
pub(crate) const POSTGRES: &[&str] = &[r#"
CREATE TABLE places (
    id                 BIGSERIAL PRIMARY KEY,
    place_id           TEXT,
    cid                BIGINT,
    osm                TEXT,
    source_key         TEXT NOT NULL CHECK (source_key <> ''),
    kind               TEXT NOT NULL,
    status             TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    details_checked_at BIGINT,
    id_checked_at      BIGINT,
    data               JSONB NOT NULL,
    provenance         JSONB NOT NULL
);
COMMENT ON COLUMN places.created_at IS 'Unix microseconds, UTC';
CREATE UNIQUE INDEX places_place_id ON places (place_id) WHERE place_id IS NOT NULL;
CREATE UNIQUE INDEX places_cid ON places (cid) WHERE cid IS NOT NULL;
CREATE UNIQUE INDEX places_osm ON places (osm) WHERE osm IS NOT NULL;
CREATE UNIQUE INDEX places_source_key ON places (source_key);
CREATE TABLE history (
    seq    BIGSERIAL PRIMARY KEY,
    place  BIGINT NOT NULL REFERENCES places (id),
    at     BIGINT NOT NULL,
    source TEXT,
    change TEXT NOT NULL CHECK (change IN ('created', 'updated', 'closed')),
    fields JSONB
);
CREATE INDEX history_place ON history (place, seq);
CREATE TABLE meta (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    data_version BIGINT NOT NULL
);
INSERT INTO meta (id, data_version) VALUES (1, 0);
"#];

/// What to do with a database at schema version `found`, given `scripts`: the scripts to run,
/// or the newest known version when the database is newer.
pub(crate) fn pending(
    scripts: &'static [&'static str],
    found: i64,
) -> Result<&'static [&'static str], i64> {
    let known = scripts.len() as i64;
    if found > known {
        return Err(known);
    }
    let from = usize::try_from(found.max(0)).unwrap_or(0);
    Ok(&scripts[from.min(scripts.len())..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_scripts_by_version() {
        assert_eq!(pending(SQLITE, 0).unwrap().len(), SQLITE.len());
        assert!(pending(SQLITE, SQLITE.len() as i64).unwrap().is_empty());
        assert_eq!(
            pending(SQLITE, SQLITE.len() as i64 + 1),
            Err(SQLITE.len() as i64)
        );
        assert_eq!(SQLITE.len(), POSTGRES.len(), "backends move in step");
    }

    #[test]
    fn sqlite_scripts_apply() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        for s in SQLITE {
            c.execute_batch(s).unwrap();
        }
        let v: i64 = c
            .query_row("SELECT data_version FROM meta", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 0);
    }
}
