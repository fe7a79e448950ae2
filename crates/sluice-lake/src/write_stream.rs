//! Writing a stream of batches as one commit, in bounded memory.
//!
//! [`Lake::write`] takes its rows as a `Vec`, so a full load of a table larger than memory would have
//! to hold it whole before its one commit. [`Lake::write_stream`] hands delta-rs a DataFusion plan over
//! the stream instead: delta-rs writes Parquet files (rolled at its target file size) while the stream
//! is read and commits all of them — with the txn and the commit metadata — once it ends. The table
//! changes exactly as with `write`: nothing is visible until the one commit, and an error from the
//! stream (a lost connection halfway) aborts the write with nothing committed. The files already
//! written are then in no commit; readers never see them and `VACUUM` removes them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::SaveMode;
use futures::{StreamExt, TryStreamExt};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use sluice_engine::catalog::{StreamingTable, provider_as_source};
use sluice_engine::plan::{LogicalPlanBuilder, PartitionStream, RecordBatchStreamAdapter};
use sluice_engine::{
    DataFusionError, SendableRecordBatchStream, SessionState, SessionStateBuilder, TaskContext,
};

use crate::error::{LakeError, Result};
use crate::layout::TableId;
use crate::table::Lake;
use crate::write::{WriteMode, WriteOutcome, WriteSpec, committed_version};

impl Lake {
    /// Writes the batches of `stream` (all of `schema`) to the table as one atomic commit, creating
    /// the table if needed, without holding them in memory (see the module docs).
    ///
    /// Append and overwrite stream; a merge or a replace-where needs its rows together and collects
    /// the stream, then calls [`Lake::write`]. Idempotency works as for `write`: when the table already
    /// records the spec's txn, the stream is not read and the outcome is
    /// [`WriteOutcome::AlreadyCommitted`]. Unlike `write`, an append of zero rows still commits (the
    /// stream's length is known only at its end); an overwrite of zero rows empties the table.
    pub async fn write_stream(
        &self,
        id: &TableId,
        schema: SchemaRef,
        stream: SendableRecordBatchStream,
        spec: &WriteSpec,
    ) -> Result<WriteOutcome> {
        spec.validate(id, Some(&schema))?;
        let (save_mode, overwrite) = match &spec.mode {
            WriteMode::Append => (SaveMode::Append, false),
            WriteMode::Overwrite => (SaveMode::Overwrite, true),
            WriteMode::Merge { .. } | WriteMode::ReplaceWhere { .. } => {
                let batches: Vec<RecordBatch> = stream
                    .try_collect()
                    .await
                    .map_err(|e| LakeError::datafusion(id, spec.mode.name(), e))?;
                return self.write(id, batches, spec).await;
            }
        };
        let operation = spec.mode.name();
        let table = self.load_or_uninitialized(id).await?;
        if let Some(done) = self.recorded_before(&table, id, spec).await? {
            return Ok(done);
        }
        let creating = table.version().is_none();

        let rows = Arc::new(AtomicU64::new(0));
        let counted = {
            let rows = rows.clone();
            stream.inspect_ok(move |b| {
                rows.fetch_add(b.num_rows() as u64, Ordering::Relaxed);
            })
        };
        let source = OneShot::new(Box::pin(RecordBatchStreamAdapter::new(
            schema.clone(),
            counted,
        )));
        let provider = StreamingTable::try_new(schema, vec![Arc::new(source)])
            .map_err(|e| LakeError::datafusion(id, operation, e))?;
        let plan = LogicalPlanBuilder::scan("source", provider_as_source(Arc::new(provider)), None)
            .and_then(LogicalPlanBuilder::build)
            .map_err(|e| LakeError::datafusion(id, operation, e))?;

        let properties = spec.commit_properties(creating);
        let mut builder = table
            .write(Vec::<RecordBatch>::new())
            .with_input_plan(plan)
            .with_session_state(Arc::new(single_stream_session()))
            .with_writer_properties(streaming_writer_properties(self.bloom_filter_columns(id)))
            .with_save_mode(save_mode)
            .with_commit_properties(properties);
        if overwrite {
            builder = builder
                .with_schema_mode(SchemaMode::Overwrite)
                .with_partition_columns(spec.partition_by.clone());
        } else {
            if spec.merge_schema {
                builder = builder.with_schema_mode(SchemaMode::Merge);
            }
            if creating && !spec.partition_by.is_empty() {
                builder = builder.with_partition_columns(spec.partition_by.clone());
            }
        }
        let table = match builder.await {
            Ok(table) => table,
            Err(err) => {
                // The stream is spent, so unlike `write` a lost creation race is not retried here.
                if let Some(done) = self.won_by_twin(id, spec, &err).await? {
                    return Ok(done);
                }
                return Err(LakeError::delta(id, operation, err));
            }
        };
        let version = committed_version(id, operation, &table)?;
        let rows = rows.load(Ordering::Relaxed);
        tracing::info!(table = %id, operation, version, rows, "committed (streamed)");
        Ok(WriteOutcome::Committed { version, rows })
    }
}

/// A delta-rs session that keeps the one input stream one stream. With several target partitions
/// DataFusion spreads the input round-robin and delta-rs then hash-repartitions it by the partition
/// columns; a load has one `_ingest_date`, so every batch lands in one output while the others stay
/// empty, and DataFusion's repartition buffers without limit — the whole load in memory.
fn single_stream_session() -> SessionState {
    let state = deltalake::delta_datafusion::create_session().state();
    let config = state.config().clone().with_target_partitions(1);
    SessionStateBuilder::new_from_existing(state)
        .with_config(config)
        .build()
}

/// Rows per Parquet row group of a streamed write. The writer holds the row group it is filling in
/// memory (encoded), so delta-rs' default of about a million rows would let a load's memory grow with
/// its size up to there; this many rows keep it to a few MB per column while staying large enough
/// for scans (DuckDB writes 122,880).
const STREAM_ROW_GROUP_ROWS: usize = 128 * 1024;

/// The most a column's dictionary may hold before the writer falls back to plain encoding. Every
/// row group tries a dictionary again, and for a high-cardinality column (ids, emails, uuids) the
/// hashing until the fallback was the writer's biggest cost; low-cardinality columns (statuses,
/// countries) stay far below this and keep their dictionaries.
const STREAM_DICTIONARY_BYTES: usize = 128 * 1024;

/// delta-rs' own defaults (Snappy) with [`STREAM_ROW_GROUP_ROWS`] and [`STREAM_DICTIONARY_BYTES`].
pub(crate) fn streaming_writer_properties(bloom_filter_columns: &[String]) -> WriterProperties {
    let builder = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(STREAM_ROW_GROUP_ROWS))
        .set_dictionary_page_size_limit(STREAM_DICTIONARY_BYTES);
    crate::maintain::with_bloom_filters(builder, bloom_filter_columns).build()
}

/// The stream as a one-partition DataFusion source that can be executed once.
struct OneShot {
    schema: SchemaRef,
    stream: Mutex<Option<SendableRecordBatchStream>>,
}

impl OneShot {
    fn new(stream: SendableRecordBatchStream) -> Self {
        OneShot {
            schema: stream.schema(),
            stream: Mutex::new(Some(stream)),
        }
    }
}

impl std::fmt::Debug for OneShot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneShot").finish_non_exhaustive()
    }
}

impl PartitionStream for OneShot {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let taken = self.stream.lock().unwrap_or_else(|p| p.into_inner()).take();
        taken.unwrap_or_else(|| {
            // Planning bug, not input: the plan read its source twice.
            let failed = futures::stream::once(async {
                Err(DataFusionError::Internal(
                    "a streamed write's input was read twice".into(),
                ))
            });
            Box::pin(RecordBatchStreamAdapter::new(
                self.schema.clone(),
                failed.boxed(),
            ))
        })
    }
}

#[cfg(test)]
#[path = "write_stream_tests.rs"]
mod tests;
