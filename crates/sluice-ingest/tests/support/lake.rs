//! Lake helpers shared by the connector integration tests: a temporary lake, SQL over one table,
//! and cells as strings.

#![allow(dead_code)]

use arrow::array::{Array, RecordBatch};
use arrow::util::display::array_value_to_string;
use sluice_engine::SessionContext;
use sluice_lake::{Lake, TableId};

/// A lake in a fresh temporary folder (removed when the guard goes).
pub fn lake() -> (tempfile::TempDir, Lake) {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    (dir, lake)
}

/// Runs `query` with the table registered as `t`.
pub async fn sql(lake: &Lake, id: &TableId, query: &str) -> Vec<RecordBatch> {
    let provider = lake.table_provider(id).await.unwrap().unwrap();
    let ctx = SessionContext::new();
    ctx.register_table("t", provider).unwrap();
    ctx.sql(query).await.unwrap().collect().await.unwrap()
}

/// Cells as strings, row by row (NULL as "NULL").
pub fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            out.push(
                b.columns()
                    .iter()
                    .map(|c| {
                        if c.is_null(r) {
                            "NULL".to_string()
                        } else {
                            array_value_to_string(c, r).unwrap()
                        }
                    })
                    .collect(),
            );
        }
    }
    out
}

/// The rows of `query` as strings.
pub async fn query(lake: &Lake, id: &TableId, q: &str) -> Vec<Vec<String>> {
    rows(&sql(lake, id, q).await)
}

/// Number of rows in the table.
pub async fn count(lake: &Lake, id: &TableId) -> i64 {
    query(lake, id, "SELECT count(*) FROM t").await[0][0]
        .parse()
        .unwrap()
}
