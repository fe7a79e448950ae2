//! Errors of the ingestion layer.

use std::path::PathBuf;

/// Errors raised while landing data.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The source file (`sources/*.yml`) is invalid for its kind.
    #[error(transparent)]
    Config(#[from] sluice_core::ConfigError),
    /// The source names a kind no connector implements.
    #[error("{path}: unknown source kind `{kind}`{hint}; available kinds: {available}")]
    UnknownKind {
        /// The source file.
        path: PathBuf,
        /// The kind given.
        kind: String,
        /// A suggestion.
        hint: String,
        /// Every kind.
        available: String,
    },
    /// A table name that the source does not declare.
    #[error("source `{source_name}` has no table `{table}`")]
    UnknownTable {
        /// The source.
        source_name: String,
        /// The table.
        table: String,
    },
    /// A source column whose type has no Arrow/Delta mapping.
    #[error(
        "{kind} source `{source_name}`: table `{table}`: column `{column}` has type `{type_name}`, \
         which is not supported; cast it in `query:` (e.g. {})",
        cast_example(.kind, .column)
    )]
    UnsupportedType {
        /// The connector kind (`postgres`).
        kind: &'static str,
        /// The source.
        source_name: String,
        /// The table as the source names it (`schema.table`).
        table: String,
        /// The column.
        column: String,
        /// The source's type name.
        type_name: String,
    },
    /// Reading the source system failed.
    #[error("{source_name}.{table}: {message}")]
    Read {
        /// The source.
        source_name: String,
        /// The table.
        table: String,
        /// What went wrong.
        message: String,
        /// Whether retrying may help (connection refused, busy database, timeouts).
        transient: bool,
    },
    /// A landing file could not be read at all.
    #[error(transparent)]
    Format(#[from] crate::formats::FormatError),
    /// Writing to the lake failed.
    #[error(transparent)]
    Lake(#[from] sluice_lake::LakeError),
    /// Arrow failed building a batch (a bug or an unsupported type).
    #[error("{context}: {source}")]
    Arrow {
        /// What was being built.
        context: String,
        /// Arrow's error.
        #[source]
        source: arrow::error::ArrowError,
    },
    /// A `pii: hash` rule with no PII key configured (see `sluice_core::pii`).
    #[error(
        "column `{column}` has `pii: hash`, which needs the project's PII key: set the environment \
         variable SLUICE_PII_KEY or `pii: {{key_file: <path>}}` in sluice.yml"
    )]
    PiiKeyMissing {
        /// The column.
        column: String,
    },
    /// The generator failed.
    #[error(transparent)]
    Generator(#[from] crate::generator::GeneratorError),
}

/// How to cast `column` to text in the SQL dialect of a connector `kind`, for error hints.
fn cast_example(kind: &str, column: &str) -> String {
    match kind {
        "mysql" => format!("CAST(`{column}` AS CHAR) AS `{column}`"),
        _ => format!("{column}::text"),
    }
}

impl IngestError {
    /// Whether retrying the same work may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            IngestError::Read { transient, .. } => *transient,
            IngestError::Lake(e) => e.is_transient(),
            _ => false,
        }
    }
}
