//! Writing to a table: append, overwrite and merge, each one atomic Delta commit.
//!
//! Idempotency rides on the Delta *application transaction* (`txn` action, appId + version):
//! a write carrying `(app_id, version)` is skipped when the table already records a version
//! at least as high for that app id, and the txn lands in the same commit as the data. Two
//! writers racing with the same app id cannot both win either: delta-rs' conflict checker
//! rejects the second commit, and [`Lake::write`] then reports it as already committed.
//!
//! Custom metadata (watermarks, file lists, batch ids) goes into the commit's `commitInfo`
//! in that same commit, so a high-water mark never runs ahead of the data it describes.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use deltalake::kernel::Transaction;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableError};
use serde_json::{Map, Value};
use sluice_engine::SessionContext;

use crate::error::{LakeError, Result};
use crate::layout::TableId;
use crate::log::{APP_ID_KEY, DELTA_COMMIT_INFO_KEYS};
use crate::merge::{MergeTarget, column_names, merge};
use crate::table::{Lake, txn_version_of};

/// How a write combines the new rows with the table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum WriteMode {
    /// Add the rows to the table.
    #[default]
    Append,
    /// Replace the table's rows and schema (and partitioning) with the new ones.
    Overwrite,
    /// Upsert on `keys`: update every column of a matching row, insert rows with no match.
    /// On a table that does not exist yet this is an append.
    Merge {
        /// The columns that identify a row.
        keys: Vec<String>,
    },
    /// Replace exactly the rows matching `predicate` (SQL, e.g. `_partition = '2026-11-01'`) with the
    /// new rows, leaving every other row alone; every new row must match the predicate. Rewriting
    /// the same slice again gives the same table, so a retried write cannot duplicate rows. New
    /// columns are added to the schema (older rows read them as null). On a table that does not
    /// exist yet this creates it with `partition_by`.
    ReplaceWhere {
        /// The rows to replace, as a SQL boolean expression over the table's columns.
        predicate: String,
    },
}

impl WriteMode {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            WriteMode::Append => "append",
            WriteMode::Overwrite => "overwrite",
            WriteMode::Merge { .. } => "merge",
            WriteMode::ReplaceWhere { .. } => "replace_where",
        }
    }
}

/// What to write and how: the mode, partitioning, idempotency token and commit metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteSpec {
    /// Append, overwrite or merge.
    pub mode: WriteMode,
    /// Partition columns used when the write creates the table (and by an overwrite, which
    /// replaces the partitioning). Appends and merges keep an existing table's partitioning.
    pub partition_by: Vec<String>,
    /// Idempotency: Delta application transaction (appId, version) recorded in the same commit.
    /// If the table already holds a txn for app_id with version >= txn_version, write() commits
    /// nothing and returns [`WriteOutcome::AlreadyCommitted`]. `None` = no idempotency token.
    pub txn: Option<(String, i64)>,
    /// Custom commit metadata (e.g. `{"sluice.watermark": "...", "sluice.batch_id": "..."}`),
    /// stored in the commit's `commitInfo` in the same atomic commit as the data. Keys that
    /// Delta reserves for `commitInfo` (`operation`, `timestamp`, ...) are refused.
    pub metadata: Map<String, Value>,
    /// Add new columns to the table schema (schema evolution, for bronze): older rows read
    /// them as null. Overwrite always replaces the schema.
    pub merge_schema: bool,
}

impl WriteSpec {
    /// An append.
    pub fn append() -> Self {
        WriteSpec::default()
    }

    /// An overwrite.
    pub fn overwrite() -> Self {
        WriteSpec {
            mode: WriteMode::Overwrite,
            ..WriteSpec::default()
        }
    }

    /// A merge (upsert) on `keys`.
    pub fn merge<S: Into<String>>(keys: impl IntoIterator<Item = S>) -> Self {
        WriteSpec {
            mode: WriteMode::Merge {
                keys: keys.into_iter().map(Into::into).collect(),
            },
            ..WriteSpec::default()
        }
    }

    /// Set the partition columns.
    pub fn partitioned_by<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.partition_by = columns.into_iter().map(Into::into).collect();
        self
    }

    /// Set the idempotency token.
    pub fn with_txn(mut self, app_id: impl Into<String>, version: i64) -> Self {
        self.txn = Some((app_id.into(), version));
        self
    }

    /// Add one custom commit metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Turn schema evolution on or off.
    pub fn with_merge_schema(mut self, merge_schema: bool) -> Self {
        self.merge_schema = merge_schema;
        self
    }

    /// Check keys, partition columns and metadata against the data's schema.
    pub(crate) fn validate(&self, id: &TableId, schema: Option<&SchemaRef>) -> Result<()> {
        if let Some(key) = self
            .metadata
            .keys()
            .find(|k| DELTA_COMMIT_INFO_KEYS.contains(&k.as_str()))
        {
            return Err(LakeError::ReservedMetadataKey {
                table: id.clone(),
                key: key.clone(),
            });
        }
        let keys: &[String] = match &self.mode {
            WriteMode::Merge { keys } if keys.is_empty() => {
                return Err(LakeError::NoMergeKeys { table: id.clone() });
            }
            WriteMode::Merge { keys } => keys,
            _ => &[],
        };
        let Some(schema) = schema else {
            return Ok(());
        };
        let columns = keys
            .iter()
            .map(|k| ("merge key", k))
            .chain(self.partition_by.iter().map(|p| ("partition column", p)));
        for (role, column) in columns {
            if schema.field_with_name(column).is_err() {
                return Err(LakeError::MissingColumn {
                    table: id.clone(),
                    role,
                    column: column.clone(),
                    available: column_names(schema).join(", "),
                });
            }
        }
        Ok(())
    }

    /// The Delta commit properties: custom metadata plus the app transaction. A write that creates
    /// the table gets no commit retries: delta-rs commits a losing table creator as version 1
    /// without any conflict check (its retry re-reads the winner's version 0 as its own base), which
    /// would land a batch twice; without retries the loser fails (and [`Lake::write`] retries it
    /// against the existing table).
    pub(crate) fn commit_properties(&self, creating: bool) -> CommitProperties {
        let mut metadata = self.metadata.clone();
        let mut properties = CommitProperties::default();
        if let Some((app_id, version)) = &self.txn {
            metadata
                .entry(APP_ID_KEY)
                .or_insert_with(|| Value::String(app_id.clone()));
            let now = chrono::Utc::now().timestamp_millis();
            properties = properties.with_application_transaction(
                Transaction::new_with_last_update(app_id, *version, Some(now)),
            );
        }
        let properties = properties.with_metadata(metadata);
        if creating {
            properties.with_max_retries(0)
        } else {
            properties
        }
    }
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// One commit landed at table `version`, holding `rows` input rows.
    Committed {
        /// The new table version.
        version: i64,
        /// Rows handed to the write (for a merge: source rows).
        rows: u64,
    },
    /// The txn was already recorded (a retry); nothing was written. `version` is the table
    /// version of the newest commit that recorded the app id, while that commit is still
    /// in the log (see [`Lake::commit_metadata`]).
    AlreadyCommitted {
        /// Table version holding the earlier commit.
        version: Option<i64>,
    },
    /// Nothing to write and nothing to record: no commit was made.
    Empty,
}

/// The Delta operation a write turns into.
enum Plan {
    /// No commit at all.
    Nothing,
    /// A delta-rs write (append or overwrite).
    Write {
        batches: Vec<RecordBatch>,
        save_mode: SaveMode,
        schema_mode: Option<SchemaMode>,
        partition_by: Option<Vec<String>>,
        /// Overwrite only the rows matching this predicate.
        replace_where: Option<String>,
    },
    /// A delta-rs merge into an existing table.
    Merge {
        batches: Vec<RecordBatch>,
        schema: SchemaRef,
        keys: Vec<String>,
    },
}

impl Lake {
    /// Write `batches` to the table as one atomic commit, creating the table if needed.
    ///
    /// Zero rows: an append or merge without txn commits nothing ([`WriteOutcome::Empty`]);
    /// with a txn it commits an empty append so that the txn and metadata (a watermark)
    /// still advance. An overwrite with zero rows empties the table (its schema comes from
    /// the batches or, with no batches, stays the table's). Only when there is no table and
    /// no batch to take a schema from is nothing committed.
    pub async fn write(
        &self,
        id: &TableId,
        batches: Vec<RecordBatch>,
        spec: &WriteSpec,
    ) -> Result<WriteOutcome> {
        let schema = common_schema(id, &batches)?;
        spec.validate(id, schema.as_ref())?;
        let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
        let mut retried_creation = false;
        loop {
            let table = self.load_or_uninitialized(id).await?;
            if let Some(done) = self.recorded_before(&table, id, spec).await? {
                return Ok(done);
            }

            let creating = table.version().is_none();
            let plan = plan(&table, batches.clone(), schema.clone(), rows, spec);
            let err = match self.execute(id, table, plan, rows, spec, creating).await {
                Ok(outcome) => return Ok(outcome),
                Err(err) => err,
            };
            if let Some(done) = self.won_by_twin(id, spec, &err).await? {
                return Ok(done);
            }
            // Another writer created the table first: write again against its version 0, now
            // with delta-rs' conflict checks (see `execute`).
            if creating && !retried_creation && matches!(self.exists(id).await, Ok(true)) {
                tracing::warn!(table = %id, error = %err, "table created concurrently; retrying");
                retried_creation = true;
                continue;
            }
            return Err(err);
        }
    }

    /// [`WriteOutcome::AlreadyCommitted`] when `table` already records the spec's txn (a retried
    /// write), so nothing is to be written.
    pub(crate) async fn recorded_before(
        &self,
        table: &DeltaTable,
        id: &TableId,
        spec: &WriteSpec,
    ) -> Result<Option<WriteOutcome>> {
        let Some((app_id, version)) = &spec.txn else {
            return Ok(None);
        };
        match txn_version_of(table, id, app_id).await? {
            Some(done) if done >= *version => {
                tracing::info!(table = %id, app_id, version, done, "write already committed, skipping");
                self.already_committed(id, app_id).await.map(Some)
            }
            _ => Ok(None),
        }
    }

    /// After a failed commit: [`WriteOutcome::AlreadyCommitted`] when a concurrent writer with the
    /// same app id and version won the commit race.
    pub(crate) async fn won_by_twin(
        &self,
        id: &TableId,
        spec: &WriteSpec,
        err: &(dyn std::fmt::Display + Sync),
    ) -> Result<Option<WriteOutcome>> {
        let Some((app_id, version)) = &spec.txn else {
            return Ok(None);
        };
        match self.txn_version(id, app_id).await {
            Ok(Some(done)) if done >= *version => {
                tracing::warn!(table = %id, app_id, version, error = %err,
                    "write lost a race to an identical commit; treating as committed");
                self.already_committed(id, app_id).await.map(Some)
            }
            _ => Ok(None),
        }
    }

    async fn already_committed(&self, id: &TableId, app_id: &str) -> Result<WriteOutcome> {
        let version = self
            .commit_metadata(id, app_id)
            .await?
            .map(|commit| commit.version);
        Ok(WriteOutcome::AlreadyCommitted { version })
    }

    async fn execute(
        &self,
        id: &TableId,
        table: DeltaTable,
        plan: Plan,
        rows: u64,
        spec: &WriteSpec,
        creating: bool,
    ) -> Result<WriteOutcome> {
        let operation = spec.mode.name();
        let properties = spec.commit_properties(creating);
        let table = match plan {
            Plan::Nothing => {
                if spec.txn.is_some() {
                    tracing::warn!(table = %id, "no table and no schema: txn cannot be recorded");
                }
                return Ok(WriteOutcome::Empty);
            }
            Plan::Write {
                batches,
                save_mode,
                schema_mode,
                partition_by,
                replace_where,
            } => {
                let mut builder = table
                    .write(batches)
                    .with_save_mode(save_mode)
                    .with_commit_properties(properties);
                if let Some(schema_mode) = schema_mode {
                    builder = builder.with_schema_mode(schema_mode);
                }
                if let Some(columns) = partition_by {
                    builder = builder.with_partition_columns(columns);
                }
                if let Some(predicate) = replace_where {
                    builder = builder.with_replace_where(predicate);
                }
                if let Some(properties) = self.write_properties(id) {
                    builder = builder.with_writer_properties(properties);
                }
                if creating && id.layer == crate::layout::Layer::Quarantine {
                    builder = builder.with_configuration([(
                        crate::layout::STATS_COLUMNS_KEY,
                        Some(crate::layout::QUARANTINE_STATS_COLUMNS),
                    )]);
                }
                builder
                    .await
                    .map_err(|e| LakeError::delta(id, operation, e))?
            }
            Plan::Merge {
                batches,
                schema,
                keys,
            } => {
                let source = SessionContext::from(deltalake::delta_datafusion::create_session())
                    .read_batches(batches)
                    .map_err(|e| LakeError::datafusion(id, "merge", e))?;
                let target = MergeTarget {
                    table,
                    writer: self.write_properties(id),
                };
                merge(
                    id,
                    target,
                    source,
                    &schema,
                    &keys,
                    spec.merge_schema,
                    properties,
                )
                .await?
            }
        };
        let version = committed_version(id, operation, &table)?;
        tracing::info!(table = %id, operation, version, rows, "committed");
        Ok(WriteOutcome::Committed { version, rows })
    }
}

/// The version a write's commit produced.
pub(crate) fn committed_version(
    id: &TableId,
    operation: &'static str,
    table: &DeltaTable,
) -> Result<i64> {
    table
        .version()
        .and_then(|v| i64::try_from(v).ok())
        .ok_or_else(|| LakeError::delta(id, operation, DeltaTableError::NotInitialized))
}

/// Decide which Delta operation the write becomes (see [`Lake::write`] for the rules).
fn plan(
    table: &DeltaTable,
    batches: Vec<RecordBatch>,
    schema: Option<SchemaRef>,
    rows: u64,
    spec: &WriteSpec,
) -> Plan {
    let table_schema = table.snapshot().ok().map(|s| s.snapshot().arrow_schema());
    let exists = table_schema.is_some();
    let new_table_partitions =
        (!exists && !spec.partition_by.is_empty()).then(|| spec.partition_by.clone());
    let evolve = spec.merge_schema.then_some(SchemaMode::Merge);
    match (&spec.mode, rows) {
        (WriteMode::Overwrite, _) => {
            let batches = match (rows, schema, table_schema) {
                (0, None, Some(table_schema)) => vec![RecordBatch::new_empty(table_schema)],
                (0, None, None) => return Plan::Nothing,
                _ => batches,
            };
            Plan::Write {
                batches,
                save_mode: SaveMode::Overwrite,
                schema_mode: Some(SchemaMode::Overwrite),
                partition_by: Some(spec.partition_by.clone()),
                replace_where: None,
            }
        }
        (WriteMode::ReplaceWhere { predicate }, _) => {
            let batches = match (rows, schema, table_schema) {
                (0, None, Some(table_schema)) => vec![RecordBatch::new_empty(table_schema)],
                (0, None, None) => return Plan::Nothing,
                _ => batches,
            };
            Plan::Write {
                batches,
                save_mode: SaveMode::Overwrite,
                // The rest of the table keeps its rows, so its schema can only grow.
                schema_mode: Some(SchemaMode::Merge),
                partition_by: (!spec.partition_by.is_empty()).then(|| spec.partition_by.clone()),
                replace_where: Some(predicate.clone()),
            }
        }
        (_, 0) if spec.txn.is_none() => Plan::Nothing,
        (_, 0) => {
            // A commit that only records the txn and metadata: an append of no rows, in the
            // table's own schema so that it cannot change the schema.
            let Some(schema) = table_schema.or(schema) else {
                return Plan::Nothing;
            };
            Plan::Write {
                batches: vec![RecordBatch::new_empty(schema)],
                save_mode: SaveMode::Append,
                schema_mode: None,
                partition_by: new_table_partitions,
                replace_where: None,
            }
        }
        (WriteMode::Merge { keys }, _) if exists => match schema {
            Some(schema) => Plan::Merge {
                batches,
                schema,
                keys: keys.clone(),
            },
            None => Plan::Nothing,
        },
        (WriteMode::Append | WriteMode::Merge { .. }, _) => Plan::Write {
            batches,
            save_mode: SaveMode::Append,
            schema_mode: evolve,
            partition_by: new_table_partitions,
            replace_where: None,
        },
    }
}

/// The schema all batches share, or `None` for no batches.
fn common_schema(id: &TableId, batches: &[RecordBatch]) -> Result<Option<SchemaRef>> {
    let Some(first) = batches.first() else {
        return Ok(None);
    };
    let schema = first.schema();
    for (index, batch) in batches.iter().enumerate().skip(1) {
        let other = batch.schema();
        if !Arc::ptr_eq(&schema, &other) && !schema.contains(&other) {
            return Err(LakeError::SchemaMismatch {
                table: id.clone(),
                batch: index,
                expected: schema.to_string(),
                found: other.to_string(),
            });
        }
    }
    Ok(Some(schema))
}

#[cfg(test)]
#[path = "write_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "write_txn_tests.rs"]
mod txn_tests;
