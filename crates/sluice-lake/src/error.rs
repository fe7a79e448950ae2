//! The one error type of `sluice-lake`.
//!
//! Every variant that concerns a table carries its [`TableId`], and the message starts with it
//! (`bronze.shop/orders: ...`), so that a failed run names the dataset without the caller having
//! to add context. Failures of the underlying libraries (delta-rs, DataFusion, Arrow) keep their
//! source error and say which lake operation was running.

use std::path::PathBuf;

use arrow::error::ArrowError;
use deltalake::DeltaTableError;
use sluice_engine::DataFusionError;

use crate::layout::TableId;

/// Result alias for this crate.
pub type Result<T, E = LakeError> = std::result::Result<T, E>;

/// Everything that can go wrong while opening, reading or writing the lake.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// The lake location given to [`crate::Lake::open`] cannot be used.
    #[error("lake location `{location}`: {reason}")]
    InvalidLocation {
        /// The location as the user wrote it.
        location: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Creating or reading a local directory of the lake failed.
    #[error("lake directory {}: {source}", path.display())]
    Io {
        /// The directory or file concerned.
        path: PathBuf,
        /// The operating system error.
        source: std::io::Error,
    },

    /// A request to the lake's object store (a listing) failed.
    #[error("lake {location}: {operation} failed: {source}")]
    Store {
        /// The URL of what was asked for.
        location: String,
        /// The operation (`list`).
        operation: &'static str,
        /// The object-store error (boxed, like delta-rs's).
        source: Box<deltalake::ObjectStoreError>,
    },

    /// A layer or table name that cannot be used.
    #[error(transparent)]
    Layout(#[from] crate::layout::LayoutError),

    /// A delta-rs operation failed.
    #[error("{table}: {operation} failed: {source}")]
    Delta {
        /// The table concerned.
        table: TableId,
        /// The lake operation that was running (`load`, `append`, `merge`, ...).
        operation: &'static str,
        /// The delta-rs error (boxed: it is large, and errors travel in every `Result`).
        source: Box<DeltaTableError>,
    },

    /// DataFusion failed while preparing a write or a table provider.
    #[error("{table}: {operation} failed: {source}")]
    DataFusion {
        /// The table concerned.
        table: TableId,
        /// The lake operation that was running.
        operation: &'static str,
        /// The DataFusion error.
        source: DataFusionError,
    },

    /// Building an Arrow batch failed.
    #[error("{table}: {operation} failed: {source}")]
    Arrow {
        /// The table concerned.
        table: TableId,
        /// The lake operation that was running.
        operation: &'static str,
        /// The Arrow error.
        source: ArrowError,
    },

    /// The batches handed to one write do not share one schema.
    #[error(
        "{table}: batch {batch} of this write has schema {found}, but batch 0 has {expected}; \
         all batches of one write must share a schema"
    )]
    SchemaMismatch {
        /// The table being written.
        table: TableId,
        /// Index of the first batch that differs.
        batch: usize,
        /// Schema of batch 0.
        expected: String,
        /// Schema of the differing batch.
        found: String,
    },

    /// A merge key or partition column is not a column of the data being written.
    #[error("{table}: {role} `{column}` is not a column of the data; columns are: {available}")]
    MissingColumn {
        /// The table being written.
        table: TableId,
        /// `merge key` or `partition column`.
        role: &'static str,
        /// The missing column.
        column: String,
        /// The columns that do exist, comma separated.
        available: String,
    },

    /// A merge write without keys.
    #[error("{table}: merge needs at least one key column")]
    NoMergeKeys {
        /// The table being written.
        table: TableId,
    },

    /// Custom commit metadata uses a key that the Delta commit info reserves.
    #[error(
        "{table}: commit metadata key `{key}` is reserved by the Delta log (commitInfo); \
         use a prefixed key such as `sluice.{key}`"
    )]
    ReservedMetadataKey {
        /// The table being written.
        table: TableId,
        /// The reserved key.
        key: String,
    },

    /// The table does not exist (no commit at its location).
    #[error("{table}: there is no such table in the lake (it has never been written)")]
    NoSuchTable {
        /// The table asked for.
        table: TableId,
    },

    /// Time travel to a version the table does not have yet.
    #[error(
        "{table}: there is no version {version}; the table has versions 0 to {latest} \
         (`sluice history` lists them)"
    )]
    NoSuchVersion {
        /// The table.
        table: TableId,
        /// The version asked for.
        version: u64,
        /// Its latest version.
        latest: u64,
    },

    /// A version that existed but can no longer be read (its log or files were cleaned up).
    #[error(
        "{table}: version {version} can no longer be read (log or files cleaned up?): {source}"
    )]
    VersionUnreadable {
        /// The table.
        table: TableId,
        /// The version asked for.
        version: u64,
        /// The delta-rs error.
        source: Box<DeltaTableError>,
    },

    /// Time travel to a time before the table's first commit.
    #[error(
        "{table}: no version was committed at or before {at}{}",
        first.map(|(v, t)| format!("; the first kept version is {v}, committed at {t}"))
            .unwrap_or_default()
    )]
    BeforeFirstCommit {
        /// The table.
        table: TableId,
        /// The time asked for.
        at: chrono::DateTime<chrono::Utc>,
        /// The first kept version and its commit time.
        first: Option<(u64, chrono::DateTime<chrono::Utc>)>,
    },

    /// A restore to the version the table is at already.
    #[error(
        "{table}: version {version} is the latest version already; there is nothing to restore"
    )]
    AlreadyAtVersion {
        /// The table.
        table: TableId,
        /// Its latest version.
        version: u64,
    },

    /// A commit file of the Delta log could not be parsed.
    #[error(
        "{table}: commit {version} of the Delta log is not valid JSON at line {line}: {source}"
    )]
    CorruptLog {
        /// The table concerned.
        table: TableId,
        /// The commit version.
        version: i64,
        /// 1-based line in the commit file.
        line: usize,
        /// The JSON error.
        source: serde_json::Error,
    },

    /// A VACUUM retention that would delete files readers of retained versions still need.
    #[error(
        "{table}: VACUUM retention {retention} {why} ({minimum}); readers of versions younger \
         than that, and writes still running, would lose their files. Raise the retention, or \
         lower `min_vacuum_retention` if no reader or writer can be that old"
    )]
    UnsafeRetention {
        /// The table concerned.
        table: TableId,
        /// The retention asked for (`7d`, `36h`, ...).
        retention: String,
        /// The minimum configured.
        minimum: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

impl LakeError {
    /// Wrap a delta-rs error with the table and operation.
    pub(crate) fn delta(table: &TableId, operation: &'static str, source: DeltaTableError) -> Self {
        LakeError::Delta {
            table: table.clone(),
            operation,
            source: Box::new(source),
        }
    }

    /// Wrap a DataFusion error with the table and operation.
    pub(crate) fn datafusion(
        table: &TableId,
        operation: &'static str,
        source: DataFusionError,
    ) -> Self {
        LakeError::DataFusion {
            table: table.clone(),
            operation,
            source,
        }
    }
}

impl LakeError {
    /// Whether retrying may succeed: I/O hiccups and concurrent-commit conflicts, as opposed to
    /// schema mismatches and other errors that repeat every time.
    pub fn is_transient(&self) -> bool {
        match self {
            LakeError::Io { .. } => true,
            LakeError::Delta { source, .. } => matches!(
                source.as_ref(),
                DeltaTableError::ObjectStore { .. }
                    | DeltaTableError::Io { .. }
                    | DeltaTableError::VersionAlreadyExists(_)
                    | DeltaTableError::Transaction { .. }
            ),
            _ => false,
        }
    }
}
