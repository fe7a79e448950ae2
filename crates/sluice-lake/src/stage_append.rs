//! Appends staged apart from their commit, for partitioned tables: the files of several loads are
//! written at once, and committed one after another in a fixed order.
//!
//! [`Lake::stage_append`] writes a stream of batches as uncommitted Parquet files of a table
//! partitioned by some columns (a bronze load: `_ingest_date`), each file in its partition's folder
//! with its partition values in its `add` action. [`Lake::append_staged`] then commits them as one
//! append, with the spec's txn and metadata, when the table exists with exactly their schema and
//! partitioning; otherwise it commits nothing and says so, and the caller writes the rows another
//! way (the table changed since the rows were read: a file before them evolved it). Files staged
//! and never committed are in no version: readers never see them and `VACUUM` removes them.

use arrow::datatypes::SchemaRef;
use deltalake::kernel::StructType;
use deltalake::kernel::engine::arrow_conversion::TryFromArrow;
use deltalake::protocol::SaveMode;
use deltalake::writer::{DeltaWriter as _, RecordBatchWriter};
use futures::StreamExt;
use sluice_engine::SendableRecordBatchStream;

use crate::error::{LakeError, Result};
use crate::layout::TableId;
use crate::stage::{STAGE_TARGET_FILE_SIZE, StagedFiles};
use crate::table::Lake;
use crate::write::{WriteMode, WriteOutcome, WriteSpec};
use crate::write_stream::streaming_writer_properties;

impl Lake {
    /// Writes `stream` (batches of `schema`, partition columns included) as uncommitted Parquet
    /// files of `id` partitioned by `partition_by`, in bounded memory (one row group per open
    /// partition). An error leaves the files written so far as orphans.
    pub async fn stage_append(
        &self,
        id: &TableId,
        schema: SchemaRef,
        partition_by: &[String],
        mut stream: SendableRecordBatchStream,
    ) -> Result<StagedFiles> {
        let url = self.checked_url(id)?;
        let options = Some(self.storage_options().clone());
        let partitions = (!partition_by.is_empty()).then(|| partition_by.to_vec());
        let mut writer = RecordBatchWriter::try_new(url.as_str(), schema, partitions, options)
            .map_err(|e| LakeError::delta(id, "stage", e))?
            .with_writer_properties(streaming_writer_properties(self.bloom_filter_columns(id)))
            .with_target_file_size(STAGE_TARGET_FILE_SIZE);
        let mut rows = 0u64;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| LakeError::datafusion(id, "stage", e))?;
            if batch.num_rows() == 0 {
                continue;
            }
            rows += batch.num_rows() as u64;
            writer
                .write(batch)
                .await
                .map_err(|e| LakeError::delta(id, "stage", e))?;
        }
        let adds = writer
            .flush()
            .await
            .map_err(|e| LakeError::delta(id, "stage", e))?;
        tracing::debug!(table = %id, rows, files = adds.len(), "staged an append");
        Ok(StagedFiles {
            id: id.clone(),
            schema: writer.arrow_schema(),
            adds,
            rows,
        })
    }

    /// Whether the table exists with exactly the schema of `staged` and the partitioning of
    /// `spec`, so that [`Lake::append_staged`] can commit the files as they are.
    pub async fn staged_fit(&self, staged: &StagedFiles, spec: &WriteSpec) -> Result<bool> {
        let Some(table) = self.load(&staged.id).await? else {
            return Ok(false);
        };
        let Ok(state) = table.snapshot() else {
            return Ok(false);
        };
        Ok(
            state.metadata().partition_columns() == spec.partition_by.as_slice()
                && same_schema(state.schema().as_ref(), &staged.schema),
        )
    }

    /// Commits `staged` as one append (`spec.mode` must be [`WriteMode::Append`]) with the spec's
    /// txn and metadata. `Ok(None)`: the table does not fit them ([`Lake::staged_fit`]); nothing
    /// was committed and the files are still staged. A txn already recorded commits nothing
    /// ([`WriteOutcome::AlreadyCommitted`]) and deletes the files.
    pub async fn append_staged(
        &self,
        staged: StagedFiles,
        spec: &WriteSpec,
    ) -> Result<Option<WriteOutcome>> {
        let id = staged.id.clone();
        if !matches!(spec.mode, WriteMode::Append) {
            return Err(LakeError::delta(
                &id,
                spec.mode.name(),
                deltalake::DeltaTableError::Generic(
                    "only an append commits staged files this way".into(),
                ),
            ));
        }
        spec.validate(&id, Some(&staged.schema))?;
        let Some(table) = self.load(&id).await? else {
            return Ok(None);
        };
        if let Some(done) = self.recorded_before(&table, &id, spec).await? {
            self.discard_staged(staged).await?;
            return Ok(Some(done));
        }
        let fits = table.snapshot().ok().is_some_and(|state| {
            state.metadata().partition_columns() == spec.partition_by.as_slice()
                && same_schema(state.schema().as_ref(), &staged.schema)
        });
        if !fits {
            return Ok(None);
        }
        match self
            .commit_files(&table, &staged, spec, SaveMode::Append, Vec::new())
            .await
        {
            Ok(version) => {
                tracing::info!(table = %id, version, rows = staged.rows,
                    files = staged.adds.len(), "committed (staged append)");
                Ok(Some(WriteOutcome::Committed {
                    version,
                    rows: staged.rows,
                }))
            }
            Err(err) => {
                if let Some(done) = self.won_by_twin(&id, spec, &err).await? {
                    self.discard_staged(staged).await?;
                    return Ok(Some(done));
                }
                Err(LakeError::delta(&id, "append", err))
            }
        }
    }
}

/// Whether the staged files can be added to the table as they are: the same columns (by name, in
/// any order: Parquet columns are read by name) of the same Delta types, and no column the table
/// declares non-nullable that the staged files may hold nulls in.
fn same_schema(table: &StructType, staged: &SchemaRef) -> bool {
    let Ok(staged) = StructType::try_from_arrow(staged.as_ref()) else {
        return false;
    };
    if table.fields().count() != staged.fields().count() {
        return false;
    }
    staged.fields().all(|s| {
        table.field(s.name()).is_some_and(|t| {
            t.data_type() == s.data_type() && (t.is_nullable() || !s.is_nullable())
        })
    })
}

#[cfg(test)]
#[path = "stage_append_tests.rs"]
mod tests;
