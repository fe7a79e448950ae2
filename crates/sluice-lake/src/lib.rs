//! # sluice-lake: the lake's storage layer
//!
//! Every dataset Sluice keeps is a [Delta Lake](https://delta.io) table (Parquet files plus a
//! transaction log) in a fixed folder layout, written and read through
//! [delta-rs](https://github.com/delta-io/delta-rs). This crate owns that layout and the
//! write rules that make pipelines safe to retry:
//!
//! ```text
//! <lake>/bronze/<source>/<table>/   raw data, as the source sent it
//! <lake>/silver/<model>/            cleaned, conformed models
//! <lake>/gold/<model>/              marts and features
//! <lake>/_quarantine/<node>/        rejected rows with their reason
//! ```
//!
//! - **One commit per write.** [`Lake::write`] appends, overwrites or merges (upserts) a set
//!   of Arrow batches as one atomic Delta commit. Readers of the previous version keep
//!   seeing it, and time travel to it keeps working.
//! - **Idempotent by token.** A write can carry a Delta application transaction
//!   `(app_id, version)`: a retry with a version already recorded commits nothing and
//!   returns [`WriteOutcome::AlreadyCommitted`].
//! - **Metadata in the same commit.** Watermarks, file lists and batch ids go into the
//!   commit's `commitInfo` with the data, and [`Lake::commit_metadata`] reads them back.
//! - **Open format.** Tables use the base Delta protocol (reader 1, writer 2): no deletion
//!   vectors, column mapping or other table features, so Spark, Trino, DuckDB and the
//!   Python `deltalake` package read them.
//!
//! ## Example
//!
//! ```
//! use std::sync::Arc;
//! use arrow::array::{Int64Array, RecordBatch};
//! use arrow::datatypes::{DataType, Field, Schema};
//! use sluice_lake::{Lake, TableId, WriteOutcome, WriteSpec};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let lake_path = dir.path().to_str().ok_or("path")?;
//! let lake = Lake::open(lake_path)?;
//! let orders = TableId::bronze("shop", "orders");
//!
//! let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
//! let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2, 3]))])?;
//!
//! // Batch 7 of node `load_orders`, with its watermark, in one commit.
//! let spec = WriteSpec::append()
//!     .with_txn("load_orders", 7)
//!     .with_metadata("sluice.watermark", "2024-05-01T00:00:00Z");
//! let first = lake.write(&orders, vec![batch.clone()], &spec).await?;
//! assert_eq!(first, WriteOutcome::Committed { version: 0, rows: 3 });
//!
//! // A retry of the same batch lands nothing.
//! let retry = lake.write(&orders, vec![batch], &spec).await?;
//! assert_eq!(retry, WriteOutcome::AlreadyCommitted { version: Some(0) });
//!
//! let last = lake.commit_metadata(&orders, "load_orders").await?.ok_or("no commit")?;
//! assert_eq!(last.txn_version, Some(7));
//! assert_eq!(last.metadata["sluice.watermark"], "2024-05-01T00:00:00Z");
//! # Ok(())
//! # }
//! ```
//!
//! ## Modules
//!
//! - [`layout`]: [`Layer`] and [`TableId`], names and folders.
//! - [`table`]: the [`Lake`] handle — open, exists, load, list, probe, DataFusion provider, txn.
//! - [`write`](mod@write): [`WriteSpec`], [`WriteMode`], [`WriteOutcome`] and [`Lake::write`].
//! - [`stage`]: write, audit, publish in bounded memory — [`Lake::stage_stream`] writes uncommitted
//!   files, [`Lake::publish_staged`] / [`Lake::merge_staged`] commit them, [`Lake::discard_staged`]
//!   drops them. Merges read and rewrite only the files whose key ranges can match.
//! - [`log`]: reading commits back — [`Lake::commit_metadata`], [`Lake::history`].
//! - [`history`]: time travel — [`Lake::versions`] (row counts per version),
//!   [`Lake::provider_at`], [`Lake::version_at`], [`Lake::restore`].
//! - [`quarantine`]: [`Lake::quarantine`] and the quarantine table schema.
//! - [`maintain`]: [`Lake::maintain`] — compaction, Z-order, bloom filters, checkpoints, VACUUM.
//! - [`retention`]: [`Lake::expire_partitions`] — deleting or moving old partitions.
//! - [`error`]: the crate's error type, [`LakeError`].
//!
//! - [`store`]: where the files live — a local folder or an object store (S3 and S3-compatible
//!   servers, GCS, Azure) — the `lake_options` mapping, and the concurrent-writer story
//!   (conditional puts).
//! - [`testing`]: a real S3-protocol server for the tests of this and other crates.
//!
//! A lake is a local folder (a path or `file://` URL) or an object-store prefix (`s3://bucket/lake`,
//! `gs://…`, `az://…`, `abfss://…`; [`Lake::open_with`] takes the [`LakeOptions`] of `sluice.yml`).
//! Every read, write, listing and probe goes through one object store per lake
//! (docs/object-storage.md).

pub mod error;
pub mod files;
pub mod history;
pub mod layout;
pub mod log;
pub mod maintain;
mod merge;
pub mod quarantine;
pub mod retention;
pub mod stage;
pub mod stage_append;
pub mod store;
pub mod table;
pub mod testing;
pub mod write;
pub mod write_stream;

#[cfg(test)]
mod test_util;

pub use error::{LakeError, Result};
pub use files::{DataFile, VersionFiles};
pub use history::{RUN_ID_KEY, RestoreOutcome, VersionInfo, parse_timestamp};
pub use layout::{Layer, LayoutError, TableId};
pub use log::{APP_ID_KEY, CommitSummary, CommittedBatch};
pub use maintain::{FileStats, MaintainReport, MaintainSpec, VacuumSpec};
pub use quarantine::{BATCH_ID_KEY, QuarantinedRow, quarantine_schema};
pub use retention::{ExpireReport, ExpireSpec};
pub use sluice_core::lake_options::LakeOptions;
pub use stage::StagedFiles;
pub use store::StoreKind;
pub use table::{Lake, arrow_schema};
pub use write::{WriteMode, WriteOutcome, WriteSpec};

/// delta-rs, re-exported so that callers use the same version as the lake.
pub use deltalake;
