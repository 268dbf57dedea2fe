//! The sadomap place database.
//!
//! A [`Store`] keeps places (SQLite embedded by default, PostgreSQL for larger deployments) with
//! per-field provenance and a history of every change; an [`Index`] answers map queries in memory;
//! `formats` reads and writes the file formats places arrive and leave in.
#![deny(missing_docs)]

mod backend;
mod formats;
mod import;
mod index;
mod live;

pub use backend::{
    merge, ChangeKind, CheckKind, FieldChange, HistoryEntry, IdConflict, Merged, PostgresStore,
    RefreshDue, RefreshPolicy, SqliteStore, Store, StoreError, UpsertReport,
};
pub use formats::{
    check_file, read_file, read_geojson, read_jsonl, read_osm_pbf, read_overpass, read_sheet_csv,
    short_address, write_file, ExportFormat, Flow, Format, FormatError, GeoJsonWriter,
    JsonLinesReader, JsonLinesWriter, OsmStats, Position, SheetCsvReader, SheetCsvWriter,
    SheetLayout, CHECK_LIMIT, MAX_RECORD_BYTES,
};
pub use import::{
    import_files, import_files_indexed, import_places, load_index, prepare_all, ImportError,
    ImportFile, ImportReport, Stage, StepCounts,
};
pub use index::{
    Cursor, Hit, Index, IndexCounts, IndexMemory, Query, QueryError, QueryResult, Sort,
    DEFAULT_LIMIT, MAX_LIMIT,
};
pub use live::LiveIndex;
