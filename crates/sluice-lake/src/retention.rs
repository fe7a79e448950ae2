//! Retention: deleting a table's old partitions, or moving them to a cold lake first.
//!
//! Bronze keeps every batch a source ever sent, partitioned by `_ingest_date`; a retention of N days
//! deletes the partitions older than that with one Delta `DELETE` on the partition column, which
//! only removes whole files from the log (no data is rewritten). The files themselves go at the
//! next VACUUM past its retention, so time travel to versions before the delete keeps working until
//! then.
//!
//! Moving instead of deleting first appends the expiring rows to the same table in a *cold* lake
//! (another folder with the same layout, e.g. on cheaper storage), in one commit carrying a txn
//! (`sluice:retention:<table>`, the table's version): if the process dies between that append and
//! the delete, the retry finds the append already recorded and only deletes, so no row is copied
//! twice and none is lost.

use std::sync::Arc;

use sluice_engine::SessionContext;

use crate::error::{LakeError, Result};
use crate::layout::TableId;
use crate::table::Lake;
use crate::write::{WriteOutcome, WriteSpec};

/// Which partitions expire and where they go.
#[derive(Debug, Clone)]
pub struct ExpireSpec {
    /// The date column rows are aged by (bronze: its partition column `_ingest_date`).
    pub column: String,
    /// Rows whose `column` is before this date expire.
    pub before: chrono::NaiveDate,
    /// Move the rows to this lake (same table id) before deleting them; `None`: delete only.
    pub cold: Option<Lake>,
    /// Report only.
    pub dry_run: bool,
}

/// What [`Lake::expire_partitions`] did (or would do).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ExpireReport {
    /// Rows expired (moved or deleted).
    pub rows: u64,
    /// Files the delete removed from the table.
    pub files_removed: u64,
    /// Rows moved to the cold lake (0 when deleting only).
    pub rows_moved: u64,
    /// The version of the delete commit (`None`: nothing expired, or a dry run).
    pub version: Option<u64>,
}

impl Lake {
    /// Deletes (or moves to `spec.cold`, then deletes) the rows of `id` whose `spec.column` is
    /// before `spec.before`; `None` when the table does not exist. See the module docs.
    pub async fn expire_partitions(
        &self,
        id: &TableId,
        spec: &ExpireSpec,
    ) -> Result<Option<ExpireReport>> {
        let Some(table) = self.load(id).await? else {
            return Ok(None);
        };
        let schema = crate::table::arrow_schema(&table)?;
        if schema.field_with_name(&spec.column).is_err() {
            let available: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(LakeError::MissingColumn {
                table: id.clone(),
                role: "retention column",
                column: spec.column.clone(),
                available: available.join(", "),
            });
        }
        let predicate = format!(
            "\"{}\" < CAST('{}' AS DATE)",
            spec.column.replace('"', "\"\""),
            spec.before.format("%Y-%m-%d")
        );
        let version = table.version().unwrap_or_default();
        let ctx = SessionContext::new();
        let provider = table
            .table_provider()
            .await
            .map_err(|e| LakeError::datafusion(id, "expire partitions", e))?;
        ctx.register_table("expiring", provider)
            .map_err(|e| LakeError::datafusion(id, "expire partitions", e))?;
        let rows = count_rows(&ctx, id, &predicate).await?;
        let mut report = ExpireReport {
            rows,
            ..ExpireReport::default()
        };
        if rows == 0 || spec.dry_run {
            return Ok(Some(report));
        }
        if let Some(cold) = &spec.cold {
            let frame = ctx
                .sql(&format!("SELECT * FROM expiring WHERE {predicate}"))
                .await
                .map_err(|e| LakeError::datafusion(id, "move partitions", e))?;
            let schema = Arc::new(frame.schema().as_arrow().clone());
            let stream = frame
                .execute_stream()
                .await
                .map_err(|e| LakeError::datafusion(id, "move partitions", e))?;
            let partitions = crate::maintain::partition_columns(&table);
            let cold_spec = WriteSpec::append()
                .partitioned_by(partitions)
                .with_merge_schema(true)
                .with_txn(
                    format!("sluice:retention:{id}"),
                    i64::try_from(version).unwrap_or(i64::MAX),
                );
            match cold.write_stream(id, schema, stream, &cold_spec).await? {
                WriteOutcome::Committed { rows, .. } => report.rows_moved = rows,
                // A retry after a crash between the move and the delete: the rows are there.
                WriteOutcome::AlreadyCommitted { .. } | WriteOutcome::Empty => {
                    report.rows_moved = rows;
                }
            }
        }
        let (table, metrics) = table
            .delete()
            .with_predicate(predicate)
            .await
            .map_err(|e| LakeError::delta(id, "expire partitions", e))?;
        report.files_removed = metrics.num_removed_files as u64;
        report.version = table.version();
        tracing::info!(table = %id, ?report, "expired partitions");
        Ok(Some(report))
    }
}

async fn count_rows(ctx: &SessionContext, id: &TableId, predicate: &str) -> Result<u64> {
    let frame = ctx
        .sql(&format!("SELECT count(*) FROM expiring WHERE {predicate}"))
        .await
        .map_err(|e| LakeError::datafusion(id, "count expiring rows", e))?;
    let batches = frame
        .collect()
        .await
        .map_err(|e| LakeError::datafusion(id, "count expiring rows", e))?;
    let count = batches
        .first()
        .filter(|b| b.num_rows() > 0)
        .and_then(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .map(|a| a.value(0))
        })
        .unwrap_or_default();
    Ok(u64::try_from(count).unwrap_or_default())
}
