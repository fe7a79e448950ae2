//! Building a time-partitioned model one window at a time (write, audit, publish per partition).
//!
//! [`stage_window`] renders the model with the window's `partition_start` / `partition_end` /
//! `partition_key`, keeps only the output rows whose event time falls inside the window (rows outside
//! it never leak into another partition), adds the [`PARTITION_COLUMN`] and registers the result
//! where checks read it. [`publish_window`] then replaces exactly that partition
//! (`WriteMode::ReplaceWhere`), which is idempotent: building a partition twice leaves one copy.
//! A window over several partitions (a model's first build) overwrites the whole table instead.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use sluice_lake::{WriteMode, WriteOutcome, WriteSpec};

use crate::error::{Result, TransformError};
use crate::materialize::{ModelRun, Published, Staged};
use crate::partition::{PARTITION_COLUMN, PartitionWindow, TimePartition};
use crate::relation::{ident, model_table};
use crate::render::render_in_window;

/// How a window is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowWrite {
    /// Replace exactly the window's partition (`_partition = '<key>'`).
    ReplacePartition,
    /// Replace the whole table (first build, full refresh, or a table that was not partitioned).
    ReplaceTable,
}

/// Whether the model's table exists with a [`PARTITION_COLUMN`] (so partitions can be replaced one
/// by one); a missing or unpartitioned table is rebuilt whole first.
pub async fn has_partitioned_table(run: &ModelRun<'_>) -> Result<bool> {
    let id = model_table(run.model.layer, &run.model.name);
    if !run.engine.lake().exists(&id).await? {
        return Ok(false);
    }
    let sql = format!("SELECT * FROM {} LIMIT 0", run.model.relation);
    Ok(match run.engine.plan(&sql).await {
        Ok(df) => df
            .schema()
            .fields()
            .iter()
            .any(|f| f.name() == PARTITION_COLUMN),
        Err(_) => false,
    })
}

/// The relation a window is staged at (distinct per partition, so partitions stage in parallel).
pub fn window_relation(model: &str, window: &PartitionWindow) -> String {
    let key: String = window
        .key()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!(
        "{}.{}",
        crate::relation::STAGING_SCHEMA,
        ident(&format!("{model}__p{key}_{}", window.last - window.first))
    )
}

/// Renders and runs the model for `window`, keeps the rows inside it, adds `_partition`, and
/// registers the result at [`window_relation`].
pub async fn stage_window(
    run: &ModelRun<'_>,
    tp: &TimePartition,
    window: &PartitionWindow,
    is_incremental: bool,
) -> Result<Staged> {
    let m = run.model;
    let rendered = render_in_window(
        &m.raw_sql,
        &m.path,
        &run.project.scope,
        Some(&m.relation),
        is_incremental,
        Some(window),
    )?;
    let sql_err = |message: String| TransformError::Sql {
        path: m.path.clone(),
        model: m.name.clone(),
        message,
    };
    let inner = run
        .engine
        .plan(&rendered.sql)
        .await
        .map_err(|e| sql_err(e.to_string()))?;
    let names: Vec<String> = inner
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    if names.iter().any(|n| n == PARTITION_COLUMN) {
        return Err(TransformError::Config {
            path: m.path.clone(),
            field: "partition_by".into(),
            message: format!(
                "the model's output has a `{PARTITION_COLUMN}` column, which Sluice adds itself; rename it"
            ),
        });
    }
    if !names.iter().any(|n| n == &tp.field) {
        return Err(TransformError::Config {
            path: m.path.clone(),
            field: "partition_by.field".into(),
            message: format!(
                "`{}` is not a column of the model's output (columns: {})",
                tp.field,
                names.join(", ")
            ),
        });
    }
    let field = format!("CAST({} AS TIMESTAMP)", ident(&tp.field));
    let key = if window.single() {
        format!("'{}'", window.key())
    } else {
        format!("to_char({field}, '{}')", window.granularity.key_format())
    };
    let sql = format!(
        "SELECT *, {key} AS {part} FROM (\n{inner}\n) AS __sluice_window \
         WHERE {field} >= TIMESTAMP '{start}' AND {field} < TIMESTAMP '{end}'",
        part = ident(PARTITION_COLUMN),
        inner = rendered.sql,
        start = window.start(),
        end = window.end(),
    );
    let df = run
        .engine
        .plan(&sql)
        .await
        .map_err(|e| sql_err(e.to_string()))?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await.map_err(|e| sql_err(e.to_string()))?;
    let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
    let relation = window_relation(&m.name, window);
    run.engine
        .register_batches(&relation, schema.clone(), batches.clone())?;
    tracing::debug!(model = %m.name, window = %window.key(), partitions = window.last - window.first + 1, rows, "staged partition");
    Ok(Staged {
        relation,
        sql: rendered.sql,
        rows,
        schema,
        batches,
        is_incremental,
        files: None,
    })
}

/// Publishes a staged window: replaces its partition, or the whole table.
pub async fn publish_window(
    run: &ModelRun<'_>,
    staged: Staged,
    window: &PartitionWindow,
    how: WindowWrite,
) -> Result<Published> {
    let id = model_table(run.model.layer, &run.model.name);
    let key = window.key();
    let mode = match how {
        WindowWrite::ReplacePartition => WriteMode::ReplaceWhere {
            predicate: format!("{PARTITION_COLUMN} = '{key}'"),
        },
        WindowWrite::ReplaceTable => WriteMode::Overwrite,
    };
    let mut metadata = serde_json::Map::new();
    metadata.insert("sluice.run_id".into(), run.run_id.into());
    metadata.insert("sluice.model".into(), run.model.name.clone().into());
    let label = if window.single() {
        key
    } else {
        format!("{}..{}", key, window.granularity.key(window.last))
    };
    metadata.insert("sluice.partition".into(), label.into());
    let spec = WriteSpec {
        mode,
        partition_by: vec![PARTITION_COLUMN.to_string()],
        // Replacing a partition is idempotent by itself; a txn per partition would grow the log's
        // snapshot by one app id per partition.
        txn: None,
        metadata,
        merge_schema: false,
    };
    let batches = if staged.batches.is_empty() {
        // An empty window still replaces its partition (with nothing).
        vec![RecordBatch::new_empty(staged.schema.clone())]
    } else {
        staged.batches
    };
    let outcome = run.engine.lake().write(&id, batches, &spec).await;
    run.engine.deregister(&staged.relation);
    let outcome = outcome?;
    run.engine.refresh_table(&id).await?;
    Ok(match outcome {
        WriteOutcome::Committed { version, rows } => Published {
            rows,
            version: Some(version),
        },
        WriteOutcome::AlreadyCommitted { version } => Published {
            rows: staged.rows,
            version,
        },
        WriteOutcome::Empty => Published {
            rows: 0,
            version: None,
        },
    })
}
