//! Errors of compiling and running models.

use std::path::PathBuf;

/// Errors raised by the transform layer.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    /// The model's Jinja failed to render.
    #[error("{path}{}{}: template error: {message}", line.map(|l| format!(":{l}")).unwrap_or_default(), line.and(*column).map(|c| format!(":{c}")).unwrap_or_default())]
    Template {
        /// The model file.
        path: PathBuf,
        /// Line in the template, when known.
        line: Option<usize>,
        /// Column (in characters) of the failing expression on that line, when known.
        column: Option<usize>,
        /// minijinja's message.
        message: String,
    },
    /// The model's configuration is invalid.
    #[error("{path}: config `{field}`: {message}")]
    Config {
        /// The model file (or properties file).
        path: PathBuf,
        /// The config key.
        field: String,
        /// What was expected.
        message: String,
    },
    /// The database rejected the model's SQL (planning or execution).
    #[error("{path}: SQL error in model `{model}`: {message}")]
    Sql {
        /// The model file.
        path: PathBuf,
        /// The model.
        model: String,
        /// DataFusion's message.
        message: String,
    },
    /// A query (ad-hoc or from the API) failed.
    #[error("query failed: {0}")]
    Query(String),
    /// A query is longer or deeper than the limits allow (checked before planning).
    #[error("query refused: {0}")]
    Limit(String),
    /// A query tried to change data or read outside the lake.
    #[error("read-only: {0}")]
    ReadOnly(String),
    /// A `VERSION AS OF` / `TIMESTAMP AS OF` that cannot be resolved (see [`crate::time_travel`]).
    #[error("time travel: {0}")]
    TimeTravel(String),
    /// The distributed engine a model runs on cannot be reached (within its `connect_timeout`).
    #[error("distributed engine unreachable: {0}")]
    EngineUnreachable(String),
    /// What a model asks of a distributed engine that it cannot do (a table it cannot scan, a
    /// plan it cannot ship); docs/distributed.md lists the limits.
    #[error("distributed engine: {0}")]
    Distributed(String),
    /// The lake failed.
    #[error(transparent)]
    Lake(#[from] sluice_lake::LakeError),
    /// A graph problem (unknown ref, cycle).
    #[error(transparent)]
    Graph(#[from] sluice_core::GraphError),
    /// A value of a project file that is invalid, with its place (`file:line:column`).
    #[error(transparent)]
    Project(#[from] sluice_core::ConfigError),
}

impl TransformError {
    /// Whether retrying the same work may succeed (I/O and storage hiccups), as opposed to errors in the
    /// user's SQL or config that fail the same way every time.
    pub fn is_transient(&self) -> bool {
        match self {
            TransformError::Lake(e) => e.is_transient(),
            // A scheduler restarting, or a network partition: the next attempt may connect.
            TransformError::EngineUnreachable(_) => true,
            _ => false,
        }
    }
}

/// Result alias.
pub type Result<T, E = TransformError> = std::result::Result<T, E>;
