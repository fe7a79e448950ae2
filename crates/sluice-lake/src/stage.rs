//! Staged writes: write, audit, publish without holding the data in memory.
//!
//! [`Lake::stage_stream`] writes a stream of batches as Parquet files into the table's folder
//! (rolled at [`STAGE_TARGET_FILE_SIZE`]) and commits nothing: the files are in no Delta commit, so
//! every reader of the table still sees its current version. [`Lake::staged_provider`] reads them
//! (a model's checks run there), then [`Lake::publish_staged`] makes them the table's data in one
//! commit (append, or overwrite with the old files removed), with the txn and the commit metadata,
//! or [`Lake::merge_staged`] merges them on keys. [`Lake::discard_staged`] deletes them when checks
//! failed.
//!
//! A process that dies between staging and publishing leaves the files behind: they are in no
//! commit, so no reader ever sees them, and `VACUUM` removes them as orphans. Only unpartitioned
//! tables are staged this way (the staged files are read back by their paths, and a partitioned
//! file carries its partition values in its folder name, not in its rows).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use deltalake::kernel::engine::arrow_conversion::{TryFromArrow, TryIntoKernel};
use deltalake::kernel::transaction::{CommitBuilder, TableReference};
use deltalake::kernel::{Action, Add, StructType};
use deltalake::operations::create::CreateBuilder;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::table::state::DeltaTableState;
use deltalake::writer::{DeltaWriter as _, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableError, Path};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt as _;
use sluice_engine::catalog::TableProvider;
use sluice_engine::{SendableRecordBatchStream, SessionContext};

use crate::error::{LakeError, Result};
use crate::layout::TableId;
use crate::merge::{MergeTarget, merge};
use crate::table::Lake;
use crate::write::{WriteMode, WriteOutcome, WriteSpec};
use crate::write_stream::streaming_writer_properties;

/// Size at which a staged Parquet file is closed and the next one started (delta-rs' default
/// target file size): big enough for scans, small enough that a merge that touches a few keys
/// rewrites little.
pub const STAGE_TARGET_FILE_SIZE: u64 = 100 << 20;

/// Parquet files written for a table and not committed yet (see the module docs).
#[derive(Debug, Clone)]
pub struct StagedFiles {
    pub(crate) id: TableId,
    /// The schema of the files, as Delta stores it (e.g. nanosecond timestamps as microseconds).
    pub(crate) schema: SchemaRef,
    pub(crate) adds: Vec<Add>,
    pub(crate) rows: u64,
}

impl StagedFiles {
    /// The table they are staged for.
    pub fn table(&self) -> &TableId {
        &self.id
    }

    /// The schema of the staged rows, as the table will store it.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Rows staged.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Files staged.
    pub fn files(&self) -> usize {
        self.adds.len()
    }

    /// Bytes staged (Parquet, compressed).
    pub fn bytes(&self) -> u64 {
        self.adds
            .iter()
            .map(|a| u64::try_from(a.size).unwrap_or(0))
            .sum()
    }
}

impl Lake {
    /// Writes `stream` (batches of `schema`) as uncommitted Parquet files of the unpartitioned table
    /// `id`, in bounded memory: the writer holds one row group at a time. An error from the stream
    /// or the store leaves the files written so far as orphans (in no commit; `VACUUM` removes them).
    pub async fn stage_stream(
        &self,
        id: &TableId,
        schema: SchemaRef,
        mut stream: SendableRecordBatchStream,
    ) -> Result<StagedFiles> {
        let url = self.checked_url(id)?;
        // The lake's storage options (endpoint, region, addressing, conditional puts): without
        // them a writer on an object-store lake would build a store for the cloud's default
        // endpoint, whose first upload fails (and whose abort then finds the upload shut down).
        let options = Some(self.storage_options().clone());
        let mut writer = RecordBatchWriter::try_new(url.as_str(), schema, None, options)
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
        tracing::debug!(table = %id, rows, files = adds.len(), "staged");
        Ok(StagedFiles {
            id: id.clone(),
            schema: writer.arrow_schema(),
            adds,
            rows,
        })
    }

    /// A table provider over the staged files (for checks before publishing).
    pub fn staged_provider(&self, staged: &StagedFiles) -> Result<Arc<dyn TableProvider>> {
        let id = &staged.id;
        let base = self.checked_url(id)?;
        let urls = staged
            .adds
            .iter()
            .map(|a| {
                base.join(&a.path).map(String::from).map_err(|e| {
                    LakeError::delta(
                        id,
                        "read staged files",
                        DeltaTableError::Generic(e.to_string()),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        sluice_engine::session::parquet_files(staged.schema.clone(), &urls)
            .map_err(|e| LakeError::datafusion(id, "read staged files", e))
    }

    /// A session that reads staged files (by URL) as delta-rs' own operations do: delta-rs' session
    /// defaults, and on an object-store lake the lake's store registered for its bucket (without it
    /// a read of `s3://bucket/…` finds no object store).
    fn staged_session(&self) -> SessionContext {
        let ctx: SessionContext = deltalake::delta_datafusion::create_session().into();
        if let Some((url, store)) = self.root_object_store() {
            ctx.runtime_env().register_object_store(&url, store);
        }
        ctx
    }

    /// Deletes staged files that will not be published. A file already gone is fine.
    pub async fn discard_staged(&self, staged: StagedFiles) -> Result<()> {
        let id = &staged.id;
        let table = self.unloaded(id)?;
        let store = table.log_store().object_store(None);
        for add in &staged.adds {
            let path = Path::parse(&add.path).map_err(|e| {
                LakeError::delta(
                    id,
                    "discard staged files",
                    DeltaTableError::Generic(e.to_string()),
                )
            })?;
            match store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(LakeError::delta(id, "discard staged files", e.into())),
            }
        }
        tracing::debug!(table = %id, files = staged.adds.len(), "discarded staged files");
        Ok(())
    }

    /// Publishes staged files in one commit: `spec.mode` is [`WriteMode::Append`] (the files are
    /// added) or [`WriteMode::Overwrite`] (they replace every file of the table, and the table
    /// takes their schema; a table that does not exist is created). The spec's txn and metadata go
    /// into that commit, and a txn already recorded commits nothing
    /// ([`WriteOutcome::AlreadyCommitted`], the staged files are deleted). An append whose files do
    /// not have the table's schema is written again through delta-rs (which casts them) and the
    /// staged files deleted.
    pub async fn publish_staged(
        &self,
        staged: StagedFiles,
        spec: &WriteSpec,
    ) -> Result<WriteOutcome> {
        let id = staged.id.clone();
        spec.validate(&id, Some(&staged.schema))?;
        let operation = spec.mode.name();
        let table = self.load_or_uninitialized(&id).await?;
        if let Some(done) = self.recorded_before(&table, &id, spec).await? {
            self.discard_staged(staged).await?;
            return Ok(done);
        }
        let creating = table.version().is_none();
        let fits = table
            .snapshot()
            .ok()
            .is_some_and(|state| same_layout(state, &staged.schema));
        let result = match (&spec.mode, fits) {
            (WriteMode::Append, true) => {
                self.commit_files(&table, &staged, spec, SaveMode::Append, Vec::new())
                    .await
            }
            (WriteMode::Append, false) => return self.rewrite_staged(staged, spec).await,
            (WriteMode::Overwrite, true) => {
                let removes = current_files(&table, &id).await?;
                self.commit_files(&table, &staged, spec, SaveMode::Overwrite, removes)
                    .await
            }
            (WriteMode::Overwrite, false) => {
                let removed = if creating {
                    0
                } else {
                    current_files(&table, &id).await?.len()
                };
                replace_table(&table, &staged, spec, creating, removed).await
            }
            (WriteMode::Merge { .. } | WriteMode::ReplaceWhere { .. }, _) => {
                return Err(LakeError::delta(
                    &id,
                    operation,
                    DeltaTableError::Generic(format!(
                        "a {operation} cannot publish staged files; use merge_staged"
                    )),
                ));
            }
        };
        match result {
            Ok(version) => {
                tracing::info!(table = %id, operation, version, rows = staged.rows,
                    files = staged.adds.len(), "committed (staged)");
                Ok(WriteOutcome::Committed {
                    version,
                    rows: staged.rows,
                })
            }
            Err(err) => {
                if let Some(done) = self.won_by_twin(&id, spec, &err).await? {
                    self.discard_staged(staged).await?;
                    return Ok(done);
                }
                Err(LakeError::delta(&id, operation, err))
            }
        }
    }

    /// Commits the staged files as added (after `removes`), as a WRITE of `mode`.
    pub(crate) async fn commit_files(
        &self,
        table: &DeltaTable,
        staged: &StagedFiles,
        spec: &WriteSpec,
        mode: SaveMode,
        removes: Vec<Action>,
    ) -> std::result::Result<i64, DeltaTableError> {
        let state = table.snapshot()?;
        let properties = with_metrics(spec, staged, removes.len()).commit_properties(false);
        let mut actions = removes;
        actions.extend(staged.adds.iter().cloned().map(Action::Add));
        let partition_by = state.metadata().partition_columns().to_vec();
        let operation = DeltaOperation::Write {
            mode,
            partition_by: (!partition_by.is_empty()).then_some(partition_by),
            predicate: None,
        };
        let commit = CommitBuilder::from(properties)
            .with_actions(actions)
            .build(
                Some(state as &dyn TableReference),
                table.log_store(),
                operation,
            )
            .await?;
        i64::try_from(commit.version())
            .map_err(|_| DeltaTableError::Generic("version out of range".into()))
    }

    /// An append whose files do not fit the table: streams them through delta-rs' write (which
    /// casts to the table's schema), then deletes them.
    async fn rewrite_staged(&self, staged: StagedFiles, spec: &WriteSpec) -> Result<WriteOutcome> {
        let id = staged.id.clone();
        let provider = self.staged_provider(&staged)?;
        let stream = self
            .staged_session()
            .read_table(provider)
            .map_err(|e| LakeError::datafusion(&id, "append", e))?
            .execute_stream()
            .await
            .map_err(|e| LakeError::datafusion(&id, "append", e))?;
        let outcome = self
            .write_stream(&id, staged.schema.clone(), stream, spec)
            .await?;
        self.discard_staged(staged).await?;
        Ok(outcome)
    }
}

/// Whether an unpartitioned table has exactly this schema (as Delta types: a `Utf8View` column is a
/// `string` like `Utf8`), so that files of it can be added as they are.
fn same_layout(state: &DeltaTableState, schema: &SchemaRef) -> bool {
    if !state.metadata().partition_columns().is_empty() {
        return false;
    }
    let Ok(staged) = StructType::try_from_arrow(schema.as_ref()) else {
        return false;
    };
    let bare = |s: &StructType| {
        s.fields()
            .map(|f| (f.name().clone(), f.data_type().clone(), f.is_nullable()))
            .collect::<Vec<_>>()
    };
    bare(state.schema().as_ref()) == bare(&staged)
}

/// A remove action for every file of the table's current version.
async fn current_files(table: &DeltaTable, id: &TableId) -> Result<Vec<Action>> {
    let state = table
        .snapshot()
        .map_err(|e| LakeError::delta(id, "overwrite", e))?;
    let log_store = table.log_store();
    state
        .snapshot()
        .file_views(log_store.as_ref(), None)
        .map_ok(|file| Action::Remove(file.remove_action(true)))
        .try_collect()
        .await
        .map_err(|e| LakeError::delta(id, "overwrite", e))
}

/// Creates the table with the staged files, or replaces an existing one (schema, partitioning and
/// files) in one commit; the table's properties are kept.
async fn replace_table(
    table: &DeltaTable,
    staged: &StagedFiles,
    spec: &WriteSpec,
    creating: bool,
    removed: usize,
) -> std::result::Result<i64, DeltaTableError> {
    let schema: StructType = staged.schema.as_ref().try_into_kernel()?;
    let configuration: HashMap<String, Option<String>> = match table.snapshot() {
        Ok(state) => state
            .metadata()
            .configuration()
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect(),
        Err(_) => HashMap::new(),
    };
    let properties = with_metrics(spec, staged, removed).commit_properties(creating);
    let created = CreateBuilder::new()
        .with_log_store(table.log_store())
        .with_columns(schema.fields().cloned())
        .with_configuration(configuration)
        .with_raise_if_key_not_exists(false)
        .with_save_mode(if creating {
            SaveMode::ErrorIfExists
        } else {
            SaveMode::Overwrite
        })
        .with_commit_properties(properties)
        .with_actions(staged.adds.iter().cloned().map(Action::Add))
        .await?;
    created
        .version()
        .and_then(|v| i64::try_from(v).ok())
        .ok_or(DeltaTableError::NotInitialized)
}

/// The spec with delta-rs' `operationMetrics` (rows and files added, files removed) in its commit
/// metadata, as its own writes record them.
fn with_metrics(spec: &WriteSpec, staged: &StagedFiles, removed: usize) -> WriteSpec {
    let mut spec = spec.clone();
    spec.metadata.insert(
        "operationMetrics".into(),
        serde_json::json!({
            "num_added_rows": staged.rows,
            "num_added_files": staged.adds.len(),
            "num_removed_files": removed,
        }),
    );
    spec
}

impl Lake {
    /// Merges staged files into their table on the keys of `spec` (a [`WriteMode::Merge`]), in one
    /// commit, then deletes them (the merge wrote what it kept into files of its own). Only files
    /// whose key ranges overlap the staged keys are read and rewritten (see the module docs). A txn
    /// already recorded commits nothing; on a table that does not exist yet this is an append.
    pub async fn merge_staged(
        &self,
        staged: StagedFiles,
        spec: &WriteSpec,
    ) -> Result<WriteOutcome> {
        let id = staged.table().clone();
        let schema = staged.schema();
        spec.validate(&id, Some(&schema))?;
        let WriteMode::Merge { keys } = &spec.mode else {
            return Err(LakeError::delta(
                &id,
                spec.mode.name(),
                DeltaTableError::Generic("merge_staged needs a merge spec".into()),
            ));
        };
        let table = self.load_or_uninitialized(&id).await?;
        if let Some(done) = self.recorded_before(&table, &id, spec).await? {
            self.discard_staged(staged).await?;
            return Ok(done);
        }
        if table.version().is_none() {
            let append = WriteSpec {
                mode: WriteMode::Append,
                ..spec.clone()
            };
            return self.publish_staged(staged, &append).await;
        }
        let source = self
            .staged_session()
            .read_table(self.staged_provider(&staged)?)
            .map_err(|e| LakeError::datafusion(&id, "merge", e))?;
        let properties = spec.commit_properties(false);
        let target = MergeTarget {
            table,
            writer: self.write_properties(&id),
        };
        let merged = match merge(
            &id,
            target,
            source,
            &schema,
            keys,
            spec.merge_schema,
            properties,
        )
        .await
        {
            Ok(table) => table,
            Err(err) => {
                if let Some(done) = self.won_by_twin(&id, spec, &err).await? {
                    self.discard_staged(staged).await?;
                    return Ok(done);
                }
                return Err(err);
            }
        };
        let version = crate::write::committed_version(&id, "merge", &merged)?;
        let rows = staged.rows();
        self.discard_staged(staged).await?;
        tracing::info!(table = %id, operation = "merge", version, rows, "committed (staged)");
        Ok(WriteOutcome::Committed { version, rows })
    }
}

#[cfg(test)]
#[path = "stage_tests.rs"]
mod tests;
