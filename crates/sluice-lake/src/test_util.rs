//! Helpers shared by the tests of this crate: a temporary lake, small batches, SQL reads.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use sluice_engine::SessionContext;

use crate::layout::TableId;
use crate::table::Lake;

/// A lake in a fresh temporary folder (keep the `TempDir` alive for the test).
pub fn tmp_lake() -> (tempfile::TempDir, Lake) {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    (dir, lake)
}

/// One column `id: int64` with the given values.
pub fn int_batch(ids: &[i64]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
    RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(ids.to_vec()))]).unwrap()
}

/// Columns `id: int64, name: utf8, day: utf8` (day is the partition column in tests).
pub fn rows(rows: &[(i64, &str, &str)]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("day", DataType::Utf8, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

/// Run `query` against the table registered as `t`; returns the pretty-printed result.
pub async fn sql(lake: &Lake, id: &TableId, query: &str) -> String {
    let provider = lake.table_provider(id).await.unwrap().unwrap();
    let ctx = SessionContext::new();
    ctx.register_table("t", provider).unwrap();
    let batches = ctx.sql(query).await.unwrap().collect().await.unwrap();
    arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string()
}

/// `SELECT count(*)` through DataFusion SQL.
pub async fn count(lake: &Lake, id: &TableId) -> i64 {
    let provider = lake.table_provider(id).await.unwrap().unwrap();
    let ctx = SessionContext::new();
    ctx.register_table("t", provider).unwrap();
    let batches = ctx
        .sql("SELECT count(*) AS n FROM t")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0)
}

/// The JSON actions of commit `version` of a table, one `serde_json::Value` per line.
pub fn log_actions(lake: &Lake, id: &TableId, version: i64) -> Vec<serde_json::Value> {
    let path = lake
        .table_url(id)
        .to_file_path()
        .unwrap()
        .join("_delta_log")
        .join(format!("{version:020}.json"));
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}
