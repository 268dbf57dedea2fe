//! The error every [`Store`](super::Store) operation returns, with a stable code and a suggested
//! HTTP status (a plain number: no web types below the server crate).

use std::path::PathBuf;

use sadomap_core::PlaceId;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or reached.
    #[error("the place database at {location} is unavailable: {reason} (check that it exists, is writable and, for PostgreSQL, that the server is running)")]
    Unavailable {
        /// The file or server (URL without password) that was tried.
        location: String,
        /// What went wrong.
        reason: String,
    },
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No place has this id.
    #[error("no place with id {id}")]
    NotFound {
        /// The id asked for.
        id: PlaceId,
    },
    /// The database holds a schema newer than this program understands.
    #[error("the place database has schema version {found}, but this sadomap only knows versions up to {supported}: upgrade sadomap before opening it")]
    SchemaTooNew {
        /// The version found in the database.
        found: i64,
        /// The newest version this code knows.
        supported: i64,
    },
    /// An incoming place was rejected; the whole batch was rolled back.
    #[error("place #{index} of the batch ({name:?}) was rejected: {reason}; nothing of the batch was stored")]
    InvalidPlace {
        /// Position in the batch.
        index: usize,
        /// The place's primary name, to find it in the input.
        name: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A stored record could not be read back.
    #[error("stored place {id} is corrupt: {reason}")]
    CorruptRecord {
        /// The record's id (0 when the row has none, such as the version row).
        id: i64,
        /// What could not be decoded.
        reason: String,
    },
    /// A place or history entry could not be serialised to JSON.
    #[error("cannot serialise {what} to JSON: {source}")]
    Serialize {
        /// What was being serialised.
        what: String,
        /// The serde error.
        source: serde_json::Error,
    },
    /// Bad store configuration (e.g. a schema name that is not a plain identifier).
    #[error("invalid store configuration: {message}")]
    Config {
        /// What is wrong.
        message: String,
    },
    /// SQLite failed.
    #[error("SQLite failed while {context}: {source}")]
    Sqlite {
        /// What the store was doing.
        context: String,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// PostgreSQL failed.
    #[error("PostgreSQL failed while {context}: {source}")]
    Postgres {
        /// What the store was doing.
        context: String,
        /// The client error.
        source: postgres::Error,
    },
}

impl StoreError {
    /// A stable machine code for this error (the server's API error table keys on it).
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Unavailable { .. } | StoreError::DataDir { .. } => "store_unavailable",
            StoreError::NotFound { .. } => "not_found",
            StoreError::SchemaTooNew { .. } => "schema_too_new",
            StoreError::InvalidPlace { .. } => "invalid_place",
            StoreError::CorruptRecord { .. } => "corrupt_record",
            StoreError::Serialize { .. } => "serialize_failed",
            StoreError::Config { .. } => "store_config",
            StoreError::Sqlite { source, .. } if sqlite_is_busy(source) => "store_busy",
            StoreError::Postgres { source, .. } if source.is_closed() => "store_unavailable",
            StoreError::Postgres { source, .. } if pg_is_retryable(source) => "conflict",
            StoreError::Sqlite { .. } | StoreError::Postgres { .. } => "database_error",
        }
    }

    /// The HTTP status a server should answer with.
    pub fn http_status(&self) -> u16 {
        match self.code() {
            "not_found" => 404,
            "invalid_place" => 422,
            "conflict" => 409,
            "store_unavailable" | "store_busy" => 503,
            _ => 500,
        }
    }

    pub(crate) fn sqlite(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StoreError {
        let context = context.into();
        move |source| StoreError::Sqlite { context, source }
    }

    pub(crate) fn postgres(
        context: impl Into<String>,
    ) -> impl FnOnce(postgres::Error) -> StoreError {
        let context = context.into();
        move |source| StoreError::Postgres { context, source }
    }

    pub(crate) fn corrupt(id: i64, reason: impl std::fmt::Display) -> StoreError {
        StoreError::CorruptRecord {
            id,
            reason: reason.to_string(),
        }
    }
}

fn sqlite_is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Serialization failures, deadlocks and unique violations caused by a concurrent writer: the
/// transaction can be retried.
pub(crate) fn pg_is_retryable(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::UNIQUE_VIOLATION
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses() {
        let e = StoreError::NotFound { id: PlaceId(3) };
        assert_eq!((e.code(), e.http_status()), ("not_found", 404));
        assert!(e.to_string().contains('3'));
        let e = StoreError::SchemaTooNew {
            found: 9,
            supported: 1,
        };
        assert_eq!((e.code(), e.http_status()), ("schema_too_new", 500));
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        let e = StoreError::sqlite("writing")(busy);
        assert_eq!((e.code(), e.http_status()), ("store_busy", 503));
        let e = StoreError::InvalidPlace {
            index: 2,
            name: "x".into(),
            reason: "empty source key".into(),
        };
        assert_eq!((e.code(), e.http_status()), ("invalid_place", 422));
        let e = StoreError::Unavailable {
            location: "/nope".into(),
            reason: "gone".into(),
        };
        assert_eq!((e.code(), e.http_status()), ("store_unavailable", 503));
    }
}
