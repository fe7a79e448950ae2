//! Model nodes: stage the result, check it, publish it (write–audit–publish); time-partitioned
//! models go partition by partition ([`crate::partition::build`]).

use sluice_transform::materialize::discard;
use sluice_transform::relation::model_table;
use sluice_transform::{
    CompiledModel, CompiledProject, Engine, ModelRun, TransformError, materialization_for,
};

use crate::checks::{failures, run_checks};
use crate::node::{AttemptResult, NodeError, NodeOutput};

/// Builds one model: stage, check, publish (unless an error check failed).
pub async fn build_model(
    project: &CompiledProject,
    engine: &Engine,
    model: &CompiledModel,
    run_id: &str,
    txn_version: i64,
    full_refresh: bool,
) -> AttemptResult {
    if let Some(tp) = &model.config.time_partition {
        return crate::partition::build::build_recent(
            project,
            engine,
            model,
            tp,
            run_id,
            full_refresh,
        )
        .await;
    }
    let m = materialization_for(model.config.materialized);
    let run = ModelRun {
        engine,
        project,
        model,
        run_id,
        txn_version,
        full_refresh,
    };
    let staged = m
        .stage(&run)
        .await
        .map_err(|e| (NodeError::from(e), Vec::new()))?;
    let checks = match run_checks(project, engine, &model.name, &staged.relation).await {
        Ok(checks) => checks,
        Err(e) => {
            discard(engine, staged).await;
            return Err((e, Vec::new()));
        }
    };
    let failed = failures(&checks);
    if !failed.is_empty() {
        // Nothing is published: the staged output (files, when it was streamed) goes.
        discard(engine, staged).await;
        return Err((NodeError::ChecksFailed(failed), checks));
    }
    let rows = staged.rows;
    let published = m
        .publish(&run, staged)
        .await
        .map_err(|e| (NodeError::from(e), checks.clone()))?;
    Ok(NodeOutput {
        rows_in: None,
        rows_out: Some(
            published
                .rows
                .max(if published.version.is_none() { rows } else { 0 }),
        ),
        rows_quarantined: None,
        version: published.version,
        watermark: None,
        checks,
        partitions: None,
    })
}

/// `sluice test`: runs a model's checks against its published relation; builds nothing.
pub async fn check_published(
    project: &CompiledProject,
    engine: &Engine,
    model: &CompiledModel,
) -> AttemptResult {
    let checks = run_checks(project, engine, &model.name, &model.relation)
        .await
        .map_err(|e| (e, Vec::new()))?;
    let failed = failures(&checks);
    if failed.is_empty() {
        Ok(NodeOutput {
            checks,
            ..NodeOutput::default()
        })
    } else {
        Err((NodeError::ChecksFailed(failed), checks))
    }
}

/// The next idempotency version for a model's commits.
pub async fn next_model_txn(engine: &Engine, model: &CompiledModel) -> Result<i64, NodeError> {
    let id = model_table(model.layer, &model.name);
    let app = format!("sluice:model:{}", model.name);
    let v = engine
        .lake()
        .txn_version(&id, &app)
        .await
        .map_err(TransformError::from)?;
    Ok(v.unwrap_or(0) + 1)
}
