//! Staging a model's output as files in bounded memory, and publishing those files.
//!
//! The output streams (`execute_stream`) into uncommitted Parquet files of the model's table
//! ([`sluice_lake::Lake::stage_stream`]), which are registered as `staging.<model>` for the checks.
//! Publishing commits the files themselves (a table) or adds or merges them (an incremental model):
//! no build holds its output in memory, so a model larger than the memory limit builds. When checks
//! fail, [`discard`] deletes the files; a process that dies before publishing leaves them as orphans
//! that no commit names (no reader sees them; `VACUUM` removes them).

use arrow::datatypes::SchemaRef;
use sluice_engine::DataFrame;
use sluice_lake::{WriteMode, WriteOutcome};

use super::{ModelRun, Published, Staged, write_spec};
use crate::compiled::IncrementalStrategy;
use crate::engine::Engine;
use crate::error::{Result, TransformError};
use crate::relation::{model_table, staged_relation};

/// Streams `df` (the rendered model) into staged files and registers them as `staging.<model>`.
pub(super) async fn stage_files(
    run: &ModelRun<'_>,
    df: DataFrame,
    schema: SchemaRef,
    sql: String,
    is_incremental: bool,
) -> Result<Staged> {
    let m = run.model;
    let sql_err = |message: String| TransformError::Sql {
        path: m.path.clone(),
        model: m.name.clone(),
        message,
    };
    let id = model_table(m.layer, &m.name);
    let stream = df
        .execute_stream()
        .await
        .map_err(|e| sql_err(e.to_string()))?;
    let lake = run.engine.lake();
    let files = lake
        .stage_stream(&id, schema.clone(), stream)
        .await
        .map_err(|e| match e {
            // A failing query (a division by zero, memory exhausted) is the model's error.
            sluice_lake::LakeError::DataFusion { source, .. } => sql_err(source.to_string()),
            other => other.into(),
        })?;
    let relation = staged_relation(&m.name);
    let registered = lake
        .staged_provider(&files)
        .map_err(TransformError::from)
        .and_then(|provider| run.engine.register_provider(&relation, provider));
    if let Err(e) = registered {
        if let Err(cleanup) = lake.discard_staged(files).await {
            tracing::warn!(model = %m.name, error = %cleanup, "staged files not deleted");
        }
        return Err(e);
    }
    tracing::debug!(model = %m.name, rows = files.rows(), files = files.files(),
        bytes = files.bytes(), "staged as files");
    Ok(Staged {
        relation,
        sql,
        rows: files.rows(),
        schema,
        batches: Vec::new(),
        is_incremental,
        files: Some(files),
    })
}

/// Drops staged output that will not be published (its checks failed): unregisters it and deletes
/// its staged files. A failure to delete is logged, not returned: the files are in no commit, so
/// they are harmless orphans that `VACUUM` removes.
pub async fn discard(engine: &Engine, staged: Staged) {
    engine.deregister(&staged.relation);
    engine.deregister(&format!("{}__new", staged.relation));
    if let Some(files) = staged.files {
        let table = files.table().clone();
        if let Err(e) = engine.lake().discard_staged(files).await {
            tracing::warn!(table = %table, error = %e, "staged files not deleted; VACUUM removes them");
        }
    }
}

/// Publishes staged files with `mode` (overwrite, append or merge) in one commit.
pub(super) async fn publish_files(
    run: &ModelRun<'_>,
    mut staged: Staged,
    mode: WriteMode,
) -> Result<Published> {
    let id = model_table(run.model.layer, &run.model.name);
    let Some(files) = staged.files.take() else {
        return Err(TransformError::Query(
            "internal: publishing files that were not staged".into(),
        ));
    };
    let spec = write_spec(run, mode);
    let lake = run.engine.lake();
    let outcome = match &spec.mode {
        WriteMode::Merge { .. } => lake.merge_staged(files, &spec).await,
        _ => lake.publish_staged(files, &spec).await,
    };
    run.engine.deregister(&staged.relation);
    run.engine.deregister(&format!("{}__new", staged.relation));
    let outcome = outcome?;
    run.engine.refresh_table(&id).await?;
    Ok(published(outcome, staged.rows))
}

/// Publishes an incremental model staged as files: its new rows appended or merged, delete+insert
/// rewritten as a stream of the staged view (the table after the delete and the insert), a first
/// build or a full refresh as a table.
pub(super) async fn publish_incremental(run: &ModelRun<'_>, staged: Staged) -> Result<Published> {
    let config = &run.model.config;
    if !staged.is_incremental {
        return publish_files(run, staged, WriteMode::Overwrite).await;
    }
    if staged.rows == 0 {
        discard(run.engine, staged).await;
        return Ok(Published {
            rows: 0,
            version: None,
        });
    }
    match config.incremental_strategy {
        IncrementalStrategy::Append => publish_files(run, staged, WriteMode::Append).await,
        IncrementalStrategy::Merge => {
            let keys = config.unique_key.clone();
            publish_files(run, staged, WriteMode::Merge { keys }).await
        }
        IncrementalStrategy::DeleteInsert => {
            // A key may map to several rows, which a merge cannot express: the staged view is the
            // whole table after the delete and the insert, streamed into one overwrite.
            let id = model_table(run.model.layer, &run.model.name);
            let sql_err = |e: TransformError| TransformError::Sql {
                path: run.model.path.clone(),
                model: run.model.name.clone(),
                message: e.to_string(),
            };
            let df = run
                .engine
                .plan(&format!("SELECT * FROM {}", staged.relation))
                .await
                .map_err(sql_err)?;
            let schema: SchemaRef = std::sync::Arc::new(df.schema().as_arrow().clone());
            let stream = df
                .execute_stream()
                .await
                .map_err(|e| sql_err(TransformError::Query(e.to_string())))?;
            let spec = write_spec(run, WriteMode::Overwrite);
            let outcome = run
                .engine
                .lake()
                .write_stream(&id, schema, stream, &spec)
                .await;
            let rows = staged.rows;
            discard(run.engine, staged).await;
            let outcome = outcome?;
            run.engine.refresh_table(&id).await?;
            Ok(published(outcome, rows))
        }
    }
}

fn published(outcome: WriteOutcome, staged_rows: u64) -> Published {
    match outcome {
        WriteOutcome::Committed { version, rows } => Published {
            rows,
            version: Some(version),
        },
        WriteOutcome::AlreadyCommitted { version } => Published {
            rows: staged_rows,
            version,
        },
        WriteOutcome::Empty => Published {
            rows: 0,
            version: None,
        },
    }
}
