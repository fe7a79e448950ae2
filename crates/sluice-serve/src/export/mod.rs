//! Exports: a table leaves the lake as a file (`sluice export`) or is pushed into another system by
//! an `exports/*.yml` node (reverse ETL: a PostgreSQL upsert, or a webhook).
//!
//! Every path reads the asset as a stream of record batches, so an export of any size holds about
//! one batch (one row group for Parquet, one `batch_size` for a sink) in memory.
//!
//! - [`file`]: a stream to a file or stdout in any [`Format`](crate::Format).
//! - [`postgres`]: `CREATE TABLE IF NOT EXISTS`, then one `INSERT ... ON CONFLICT (key) DO UPDATE`
//!   transaction per batch.
//! - [`webhook`]: one `POST` of a JSON array per batch, retried on 5xx with exponential backoff.
//! - [`Exporter`] runs `export:<name>` nodes for the orchestrator.

pub mod file;
pub mod postgres;
mod rebatch;
pub mod webhook;

use arrow::datatypes::DataType;
use datafusion::execution::SendableRecordBatchStream;
use futures::future::BoxFuture;
use sluice_core::ExportDecl;
use sluice_core::exports::ExportTarget;
use sluice_orchestrate::{ExportFailure, ExportReport, ExportRunner};
use sluice_transform::{CompiledProject, Engine};

pub use rebatch::Rebatcher;

use crate::format::EncodeError;

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The asset is not in the project.
    #[error("unknown asset `{0}`")]
    UnknownAsset(String),
    /// The asset's table does not exist yet.
    #[error("`{0}` has not been built yet; run `sluice run --select {0}` first")]
    NotBuilt(String),
    /// The engine failed to plan or read the asset.
    #[error("reading the asset failed: {0}")]
    Engine(String),
    /// A batch could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// Writing the output failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file (or `stdout`).
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
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
}

impl ExportError {
    /// Whether running the whole export again may succeed and is safe: the PostgreSQL upsert is
    /// idempotent, so a dropped connection is retried; a webhook is not re-sent from the start.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ExportError::Postgres {
                transient: true,
                ..
            }
        )
    }
}

/// The SQL relation of an asset name: a model (`mart_revenue`, `gold.mart_revenue`) or a source
/// table (`shop.orders`).
pub fn relation_of(project: &CompiledProject, asset: &str) -> Result<String, ExportError> {
    let node = sluice_core::exports::resolve_asset(
        asset,
        &project.project.sources,
        &project.project.models,
    )
    .ok_or_else(|| ExportError::UnknownAsset(asset.to_string()))?;
    if let Some(m) = project.models.get(&node) {
        return Ok(m.relation.clone());
    }
    project
        .sources
        .get(&node)
        .map(|s| sluice_transform::source_relation(&s.source, &s.table))
        .ok_or_else(|| ExportError::UnknownAsset(asset.to_string()))
}

/// Plans `SELECT columns FROM relation` and starts streaming it.
pub async fn read_asset(
    engine: &Engine,
    relation: &str,
    columns: Option<&[String]>,
) -> Result<SendableRecordBatchStream, ExportError> {
    let exists = engine
        .context()
        .table_exist(relation)
        .map_err(|e| ExportError::Engine(e.to_string()))?;
    if !exists {
        return Err(ExportError::NotBuilt(relation.to_string()));
    }
    let mut df = engine
        .plan(&format!("SELECT * FROM {relation}"))
        .await
        .map_err(|e| ExportError::Engine(e.to_string()))?;
    if let Some(columns) = columns {
        let available: Vec<String> = df
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        if let Some(c) = columns.iter().find(|c| !available.contains(c)) {
            return Err(ExportError::UnknownColumn {
                column: c.clone(),
                role: "columns",
                available,
            });
        }
        let names: Vec<&str> = columns.iter().map(String::as_str).collect();
        df = df
            .select_columns(&names)
            .map_err(|e| ExportError::Engine(e.to_string()))?;
    }
    df.execute_stream()
        .await
        .map_err(|e| ExportError::Engine(e.to_string()))
}

/// Runs `exports/*.yml` nodes for the orchestrator.
#[derive(Debug, Default, Clone)]
pub struct Exporter;

impl Exporter {
    /// Pushes one export's asset to its target.
    pub async fn run(
        &self,
        project: &CompiledProject,
        engine: &Engine,
        export: &ExportDecl,
        run_id: &str,
    ) -> Result<ExportReport, ExportError> {
        let relation = relation_of(project, &export.asset)?;
        let stream = read_asset(engine, &relation, export.columns.as_deref()).await?;
        match &export.target {
            ExportTarget::Postgres(target) => postgres::push(export, target, stream).await,
            ExportTarget::Webhook(target) => webhook::push(export, target, stream, run_id).await,
        }
    }
}

impl ExportRunner for Exporter {
    fn run_export<'a>(
        &'a self,
        project: &'a CompiledProject,
        engine: &'a Engine,
        export: &'a ExportDecl,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<ExportReport, ExportFailure>> {
        Box::pin(async move {
            self.run(project, engine, export, run_id)
                .await
                .map_err(|e| ExportFailure {
                    export: export.name.clone(),
                    transient: e.is_transient(),
                    message: e.to_string(),
                })
        })
    }
}
