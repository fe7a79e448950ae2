//! Why an export to a sink failed.

use arrow::datatypes::DataType;
use arrow::error::ArrowError;

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The asset is not in the project.
    #[error("unknown asset `{0}`")]
    UnknownAsset(String),
    /// The asset's table does not exist yet.
    #[error("`{0}` has not been built yet; run `sluice run --select {0}` first")]
    NotBuilt(String),
    /// The engine failed to plan or read the asset.
    #[error("reading the asset failed: {0}")]
    Engine(String),
    /// A batch could not be encoded for the target.
    #[error("cannot encode as {format}: {source}")]
    Encode {
        /// The encoding (`json`).
        format: &'static str,
        /// Arrow's writer error.
        #[source]
        source: ArrowError,
    },
    /// A setting could not be resolved (an unset `${ENV}`).
    #[error(transparent)]
    Config(#[from] sluice_core::ConfigError),
    /// A column the export needs is missing.
    #[error("column `{column}` ({role}) is not in the asset; its columns: {}", available.join(", "))]
    UnknownColumn {
        /// The column.
        column: String,
        /// Why it is needed (`key`, `columns`).
        role: &'static str,
        /// The asset's columns.
        available: Vec<String>,
    },
    /// A column type the target cannot hold.
    #[error("column `{column}` has type {data_type}, which a {target} export cannot write{hint}")]
    UnsupportedType {
        /// The column.
        column: String,
        /// Its Arrow type.
        data_type: DataType,
        /// `postgres`.
        target: &'static str,
        /// What to do instead.
        hint: &'static str,
    },
    /// PostgreSQL refused or the connection failed.
    #[error("postgres {doing}: {message}")]
    Postgres {
        /// What was being done (`connect`, `create table`, `upsert batch 3`).
        doing: String,
        /// The server's or client's message.
        message: String,
        /// Whether running again may succeed.
        transient: bool,
    },
    /// The webhook refused a batch (after its retries).
    #[error("webhook batch {batch}: {message}")]
    Webhook {
        /// The 1-based batch number.
        batch: u64,
        /// The status and body, or the client error.
        message: String,
    },
    /// A bug: the registry and the parsed export disagree (never the user's input).
    #[error("internal error: {0}")]
    Internal(String),
}

impl SinkError {
    /// Whether running the whole export again may succeed and is safe: the PostgreSQL upsert is
    /// idempotent, so a dropped connection is retried; a webhook is not re-sent from the start.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SinkError::Postgres {
                transient: true,
                ..
            }
        )
    }
}
