//! Quarantine: rows a node rejected, kept with the reason instead of being dropped.
//!
//! Each node that rejects input appends to its own Delta table `<lake>/_quarantine/<node>/`,
//! so that nothing is lost and the rejected rows can be queried like any other table. The
//! schema is fixed:
//!
//! | column | type | |
//! |---|---|---|
//! | `source_file` | utf8, nullable | file the row came from, if any |
//! | `line` | int64, nullable | 1-based line in that file, if known |
//! | `reason` | utf8 | why the row was rejected |
//! | `raw` | utf8 | the row as received |
//! | `batch_id` | utf8 | the batch the row arrived in |
//! | `quarantined_at` | timestamp µs UTC | when it was quarantined |
//!
//! `reason` and `raw` hold what the rejected rows said, so neither the Parquet footers nor the Delta
//! log repeat them as min/max statistics: their Parquet statistics are off, and the table is created
//! with `delta.dataSkippingStatsColumns` naming only the other columns.

use std::sync::{Arc, LazyLock};

use arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use parquet::file::properties::{EnabledStatistics, WriterPropertiesBuilder};
use parquet::schema::types::ColumnPath;

use crate::error::{LakeError, Result};
use crate::layout::TableId;
use crate::table::Lake;
use crate::write::{WriteOutcome, WriteSpec};

/// Commit metadata key holding the batch id of a quarantine append.
pub const BATCH_ID_KEY: &str = "sluice.batch_id";

/// The columns of a quarantine table that carry the rejected rows' content: no statistics.
pub const CONTENT_COLUMNS: [&str; 2] = ["reason", "raw"];

/// `builder` with Parquet statistics (chunk and page min/max) off for [`CONTENT_COLUMNS`].
pub(crate) fn without_content_statistics(
    builder: WriterPropertiesBuilder,
) -> WriterPropertiesBuilder {
    CONTENT_COLUMNS.iter().fold(builder, |b, column| {
        b.set_column_statistics_enabled(ColumnPath::from(*column), EnabledStatistics::None)
    })
}

/// One rejected row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinedRow {
    /// The file the row came from, if it came from a file.
    pub source_file: Option<String>,
    /// 1-based line number in that file, if known.
    pub line: Option<u64>,
    /// Why the row was rejected (which field, what was expected).
    pub reason: String,
    /// The row as received.
    pub raw: String,
}

/// The schema of every quarantine table.
pub fn quarantine_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        Arc::new(Schema::new(vec![
            Field::new("source_file", DataType::Utf8, true),
            Field::new("line", DataType::Int64, true),
            Field::new("reason", DataType::Utf8, false),
            Field::new("raw", DataType::Utf8, false),
            Field::new("batch_id", DataType::Utf8, false),
            Field::new(
                "quarantined_at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
        ]))
    });
    SCHEMA.clone()
}

impl Lake {
    /// Append `rows` to `_quarantine/<node>` in one commit tagged with `batch_id`; returns
    /// the number of rows written (0 without a commit when `rows` is empty).
    ///
    /// Not idempotent on its own: a retried batch quarantines its rows again (they share the
    /// `batch_id`, so readers can deduplicate).
    pub async fn quarantine(
        &self,
        node: &str,
        rows: Vec<QuarantinedRow>,
        batch_id: &str,
    ) -> Result<u64> {
        self.quarantine_with_txn(node, rows, batch_id, None).await
    }

    /// [`Lake::quarantine`] guarded by an idempotency token: a retried batch with the same
    /// `(app_id, version)` quarantines its rows once.
    pub async fn quarantine_with_txn(
        &self,
        node: &str,
        rows: Vec<QuarantinedRow>,
        batch_id: &str,
        txn: Option<(String, i64)>,
    ) -> Result<u64> {
        let id = TableId::quarantine(node);
        id.validate()?;
        if rows.is_empty() {
            return Ok(0);
        }
        let batch = quarantine_batch(&id, &rows, batch_id)?;
        let mut spec = WriteSpec::append().with_metadata(BATCH_ID_KEY, batch_id);
        if let Some((app, version)) = txn {
            spec = spec.with_txn(app, version);
        }
        match self.write(&id, vec![batch], &spec).await? {
            WriteOutcome::Committed { rows, .. } => {
                tracing::warn!(table = %id, rows, batch_id, "rows quarantined");
                Ok(rows)
            }
            WriteOutcome::AlreadyCommitted { .. } | WriteOutcome::Empty => Ok(0),
        }
    }
}

/// Build the Arrow batch for `rows`.
fn quarantine_batch(id: &TableId, rows: &[QuarantinedRow], batch_id: &str) -> Result<RecordBatch> {
    let now = chrono::Utc::now().timestamp_micros();
    let line = rows
        .iter()
        .map(|r| r.line.map(|l| i64::try_from(l).unwrap_or(i64::MAX)));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.source_file.as_deref()),
        )),
        Arc::new(Int64Array::from_iter(line)),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.reason.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.raw.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|_| batch_id))),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(rows.iter().map(|_| now))
                .with_timezone("UTC"),
        ),
    ];
    RecordBatch::try_new(quarantine_schema(), columns).map_err(|source| LakeError::Arrow {
        table: id.clone(),
        operation: "build quarantine batch",
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{QUARANTINE_STATS_COLUMNS as STATS_COLUMNS, STATS_COLUMNS_KEY};
    use crate::test_util::{sql, tmp_lake};

    fn row(line: Option<u64>, reason: &str) -> QuarantinedRow {
        QuarantinedRow {
            source_file: line.map(|_| "orders.csv".to_string()),
            line,
            reason: reason.to_string(),
            raw: "1,,x".to_string(),
        }
    }

    #[tokio::test]
    async fn quarantined_rows_land_with_reason_and_batch() {
        let (_dir, lake) = tmp_lake();
        let rows = vec![
            row(Some(3), "amount: expected a number, found ``"),
            row(None, "bad"),
        ];
        assert_eq!(
            lake.quarantine("load_orders", rows, "batch-1")
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            lake.quarantine("load_orders", vec![], "batch-2")
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            lake.quarantine("load_orders", vec![row(Some(9), "late")], "batch-3")
                .await
                .unwrap(),
            1
        );

        let id = TableId::quarantine("load_orders");
        let table = lake.load(&id).await.unwrap().unwrap();
        let schema = table.snapshot().unwrap().snapshot().arrow_schema();
        let names: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
        assert_eq!(
            names,
            [
                "source_file",
                "line",
                "reason",
                "raw",
                "batch_id",
                "quarantined_at"
            ]
        );
        assert!(matches!(
            schema.field_with_name("quarantined_at").unwrap().data_type(),
            DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) if tz.as_ref() == "UTC"
        ));

        let out = sql(
            &lake,
            &id,
            "SELECT source_file, line, reason, batch_id FROM t ORDER BY batch_id, line",
        )
        .await;
        assert_eq!(
            out,
            [
                "+-------------+------+-------------------------------------+----------+",
                "| source_file | line | reason                              | batch_id |",
                "+-------------+------+-------------------------------------+----------+",
                "| orders.csv  | 3    | amount: expected a number, found `` | batch-1  |",
                "|             |      | bad                                 | batch-1  |",
                "| orders.csv  | 9    | late                                | batch-3  |",
                "+-------------+------+-------------------------------------+----------+",
            ]
            .join("\n")
        );
        let commit = lake.history(&id, 1).await.unwrap().remove(0);
        assert_eq!(commit.metadata.get(BATCH_ID_KEY).unwrap(), "batch-3");
    }

    #[tokio::test]
    async fn rejected_content_is_not_repeated_in_statistics() {
        let (dir, lake) = tmp_lake();
        let secret = "victim.secret@example.com";
        let mut r = row(Some(2), &format!("bad value {secret}"));
        r.raw = format!("1,{secret},x");
        lake.quarantine("n", vec![r.clone()], "b1").await.unwrap();
        lake.quarantine("n", vec![r], "b2").await.unwrap();
        let id = TableId::quarantine("n");
        let table = lake.load(&id).await.unwrap().unwrap();
        let config = table.snapshot().unwrap().metadata().configuration().clone();
        assert_eq!(
            config.get(STATS_COLUMNS_KEY).map(String::as_str),
            Some(STATS_COLUMNS)
        );
        let folder = dir.path().join("_quarantine/n");
        let mut logs = 0;
        for entry in std::fs::read_dir(folder.join("_delta_log")).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(!text.contains("victim"), "{}: {text}", path.display());
            logs += usize::from(text.contains("\"stats\""));
        }
        assert_eq!(logs, 2, "both appends still record (other columns') stats");
        let mut files = 0;
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "parquet") {
                continue;
            }
            files += 1;
            let file = std::fs::File::open(&path).unwrap();
            let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
            let meta = parquet::file::reader::FileReader::metadata(&reader);
            for rg in meta.row_groups() {
                for c in rg.columns() {
                    let name = c.column_path().string();
                    let has_stats = c.statistics().is_some();
                    assert_eq!(
                        has_stats,
                        !CONTENT_COLUMNS.contains(&name.as_str()),
                        "{name}"
                    );
                }
            }
        }
        assert_eq!(files, 2);
    }

    #[tokio::test]
    async fn bad_node_names_are_refused() {
        let (_dir, lake) = tmp_lake();
        let err = lake
            .quarantine("a/b", vec![row(None, "x")], "b")
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                LakeError::Layout(crate::layout::LayoutError::InvalidTableId { .. })
            ),
            "{err}"
        );
    }
}
