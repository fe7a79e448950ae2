//! Errors of the ShopFlow generator: each names the file (and table or line) it concerns.

use std::path::{Path, PathBuf};

/// Why generating or appending ShopFlow data failed.
#[derive(Debug, thiserror::Error)]
pub enum GeneratorError {
    /// The configured scale is not usable.
    #[error(
        "invalid generator scale {scale}: expected a finite number greater than 0 and at most {max}"
    )]
    InvalidScale {
        /// The scale given.
        scale: f64,
        /// The largest accepted scale.
        max: f64,
    },
    /// Creating, writing, renaming or removing a file or folder failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A SQLite statement on `shop.db` failed.
    #[error("{path}: SQLite error while {action}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What was being done, e.g. `inserting into orders`.
        action: String,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// A PostgreSQL statement of the live application database (`postgres.rs`) failed.
    #[error("PostgreSQL error while {action}: {message}")]
    Postgres {
        /// What was being done, e.g. `loading orders`.
        action: String,
        /// The server's or the driver's message.
        message: String,
    },
    /// Serializing a clickstream event failed.
    #[error("{path}: line {line}: cannot write JSON event: {source}")]
    Json {
        /// The JSONL file.
        path: PathBuf,
        /// 1-based line being written.
        line: u64,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// Writing a CSV record failed.
    #[error("{path}: line {line}: cannot write CSV record: {source}")]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// 1-based line being written (the header is line 1).
        line: u64,
        /// The CSV writer's error.
        #[source]
        source: csv::Error,
    },
    /// `append_orders` found a table it needs empty.
    #[error(
        "{path}: table `{table}` has no rows; append_orders extends a generated shop.db (run the generator first)"
    )]
    EmptyTable {
        /// The database file.
        path: PathBuf,
        /// The empty table.
        table: &'static str,
    },
    /// A timestamp column holds text that is not an ISO-8601 UTC timestamp.
    #[error(
        "{path}: column {table}.{column} holds {value:?}; expected an ISO-8601 UTC timestamp like 2026-01-05T13:04:11Z"
    )]
    BadTimestamp {
        /// The database file.
        path: PathBuf,
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
        /// The offending text.
        value: String,
    },
    /// A computed timestamp is outside what can be written (seconds since the Unix epoch).
    #[error(
        "timestamp {seconds} s since the Unix epoch is out of range (a shop.db with timestamps near year 262143?)"
    )]
    TimestampOutOfRange {
        /// Seconds since 1970-01-01T00:00:00Z.
        seconds: i64,
    },
}

impl GeneratorError {
    /// An [`GeneratorError::Io`] for `path`.
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A closure turning a SQLite error into a [`GeneratorError::Sqlite`] for `path` and `action`.
    pub(crate) fn sqlite<'a>(
        path: &'a Path,
        action: &'a str,
    ) -> impl Fn(rusqlite::Error) -> Self + 'a {
        move |source| Self::Sqlite {
            path: path.to_path_buf(),
            action: action.to_string(),
            source,
        }
    }
}
