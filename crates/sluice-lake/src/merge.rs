//! Merging (upserting) on keys, rewriting only the files whose key ranges can match.
//!
//! A Delta merge rewrites every target file that holds a matched row, and reads every file its
//! predicate cannot rule out. The predicate here is the key equality plus, for each key, the range
//! of the source's keys (`target.k BETWEEN min AND max`): a conjunct on the target alone, which
//! delta-rs checks against each file's min/max statistics before reading it, so a few changed rows
//! read and rewrite the few files whose key ranges overlap theirs, not the whole table.

use arrow::array::Array;
use arrow::datatypes::SchemaRef;
use deltalake::DeltaTable;
use deltalake::kernel::transaction::CommitProperties;
use sluice_engine::DataFrame;
use sluice_engine::expr::{Column, Expr, ScalarValue, lit, max, min};

use crate::error::{LakeError, Result};
use crate::layout::TableId;

/// Source and target aliases in merge predicates and assignments.
const SOURCE_ALIAS: &str = "source";
const TARGET_ALIAS: &str = "target";

/// The table a merge writes to, with the writer properties of its new files (bloom filters).
pub(crate) struct MergeTarget {
    pub(crate) table: DeltaTable,
    pub(crate) writer: Option<parquet::file::properties::WriterProperties>,
}

/// Upsert `source` into `table` on `keys`, in one commit.
pub(crate) async fn merge(
    id: &TableId,
    MergeTarget { table, writer }: MergeTarget,
    source: DataFrame,
    schema: &SchemaRef,
    keys: &[String],
    merge_schema: bool,
    properties: CommitProperties,
) -> Result<DeltaTable> {
    let ranges = key_ranges(id, &source, keys).await?;
    let predicate = keys
        .iter()
        .map(|key| qualified(TARGET_ALIAS, key).eq(qualified(SOURCE_ALIAS, key)))
        .chain(ranges)
        .reduce(Expr::and)
        .ok_or_else(|| LakeError::NoMergeKeys { table: id.clone() })?;
    let columns = column_names(schema);
    // The merge runs in the source's session, which knows the stores the source reads (staged
    // files of an object-store lake are read by URL from the lake's store; see `Lake::staged_session`).
    let (state, _) = source.clone().into_parts();
    let mut builder = table
        .merge(source, predicate)
        .with_session_state(std::sync::Arc::new(state));
    if let Some(writer) = writer {
        builder = builder.with_writer_properties(writer);
    }
    let (table, metrics) = builder
        .with_source_alias(SOURCE_ALIAS)
        .with_target_alias(TARGET_ALIAS)
        .with_merge_schema(merge_schema)
        .with_commit_properties(properties)
        .when_matched_update(|mut update| {
            for column in &columns {
                update = update.update(
                    Column::new_unqualified(column.clone()),
                    qualified(SOURCE_ALIAS, column),
                );
            }
            update
        })
        .and_then(|builder| {
            builder.when_not_matched_insert(|mut insert| {
                for column in &columns {
                    insert = insert.set(
                        Column::new_unqualified(column.clone()),
                        qualified(SOURCE_ALIAS, column),
                    );
                }
                insert
            })
        })
        .map_err(|e| LakeError::delta(id, "merge", e))?
        .await
        .map_err(|e| LakeError::delta(id, "merge", e))?;
    tracing::debug!(
        table = %id,
        inserted = metrics.num_target_rows_inserted,
        updated = metrics.num_target_rows_updated,
        files_added = metrics.num_target_files_added,
        files_removed = metrics.num_target_files_removed,
        files_scanned = metrics.num_target_files_scanned,
        files_skipped = metrics.num_target_files_skipped_during_scan,
        "merge metrics"
    );
    Ok(table)
}

/// `target.key BETWEEN min AND max` for each key, from one aggregate over the source (which reads
/// only the key columns). A key whose source values are all null gets no range (no row can match
/// on it anyway).
async fn key_ranges(id: &TableId, source: &DataFrame, keys: &[String]) -> Result<Vec<Expr>> {
    let err = |e: sluice_engine::DataFusionError| LakeError::datafusion(id, "merge", e);
    let aggregates = keys
        .iter()
        .flat_map(|k| {
            let column = Expr::Column(Column::new_unqualified(k.clone()));
            [min(column.clone()), max(column)]
        })
        .collect::<Vec<_>>();
    let batches = source
        .clone()
        .aggregate(Vec::new(), aggregates)
        .map_err(err)?
        .collect()
        .await
        .map_err(err)?;
    let Some(row) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(Vec::new());
    };
    let mut ranges = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let (low, high) = (row.column(2 * i), row.column(2 * i + 1));
        if low.is_null(0) || high.is_null(0) {
            continue;
        }
        let low = ScalarValue::try_from_array(low, 0).map_err(err)?;
        let high = ScalarValue::try_from_array(high, 0).map_err(err)?;
        ranges.push(qualified(TARGET_ALIAS, key).between(lit(low), lit(high)));
    }
    Ok(ranges)
}

/// `relation.column` as an expression, without re-parsing (or lower-casing) the name.
fn qualified(relation: &str, column: &str) -> Expr {
    Expr::Column(Column::new(Some(relation), column))
}

pub(crate) fn column_names(schema: &SchemaRef) -> Vec<String> {
    schema.fields().iter().map(|f| f.name().clone()).collect()
}
