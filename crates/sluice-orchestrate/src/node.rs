//! Executing one node: ingest a source table, or build and check a model.

use std::collections::HashMap;
use std::sync::Arc;

use sluice_core::Project;
use sluice_ingest::{IngestContext, IngestError, Source, build_source};
use sluice_quality::{CheckResult, CheckStatus, build_check, evaluate};
use sluice_transform::relation::model_table;
use sluice_transform::{
    CompiledModel, CompiledProject, Engine, ModelRun, TransformError, materialization_for,
};

/// Why a node failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Ingestion failed.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The model failed to build.
    #[error(transparent)]
    Transform(#[from] TransformError),
    /// Error-level checks failed; the model was not published.
    #[error("{} error check(s) failed: {}", .0.len(), .0.join("; "))]
    ChecksFailed(Vec<String>),
    /// A check could not be built from its declaration.
    #[error(transparent)]
    Quality(#[from] sluice_quality::QualityError),
    /// An export (reverse ETL) failed.
    #[error(transparent)]
    Export(#[from] crate::export::ExportFailure),
    /// One attempt took longer than the node's `timeout`.
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
}

impl NodeError {
    /// Transient errors are retried; the rest fail the same way every time.
    pub fn is_transient(&self) -> bool {
        match self {
            NodeError::Ingest(e) => e.is_transient(),
            NodeError::Transform(e) => e.is_transient(),
            NodeError::Export(e) => e.transient,
            NodeError::Timeout(_) => true,
            _ => false,
        }
    }
}

/// What a node did.
#[derive(Debug, Clone, Default)]
pub struct NodeOutput {
    /// Rows read.
    pub rows_in: Option<u64>,
    /// Rows written.
    pub rows_out: Option<u64>,
    /// Rows quarantined.
    pub rows_quarantined: Option<u64>,
    /// Delta version published.
    pub version: Option<i64>,
    /// New watermark (sources).
    pub watermark: Option<serde_json::Value>,
    /// Check results (models).
    pub checks: Vec<CheckResult>,
    /// Time partitions built (time-partitioned models), recorded by the run loop.
    pub partitions: Option<crate::partition::BuiltPartitions>,
}

/// Built connectors, one per source, shared by the run.
#[derive(Default)]
pub struct Connectors {
    built: tokio::sync::Mutex<HashMap<String, Arc<dyn Source>>>,
}

impl Connectors {
    async fn get(&self, project: &Project, source: &str) -> Result<Arc<dyn Source>, NodeError> {
        let mut built = self.built.lock().await;
        if let Some(s) = built.get(source) {
            return Ok(s.clone());
        }
        let decl = project
            .source(source)
            .ok_or_else(|| IngestError::UnknownTable {
                source_name: source.to_string(),
                table: String::new(),
            })?;
        let s: Arc<dyn Source> = Arc::from(build_source(decl, &project.root)?);
        built.insert(source.to_string(), s.clone());
        Ok(s)
    }
}

/// Ingests one source table.
pub async fn ingest_table(
    project: &CompiledProject,
    connectors: &Connectors,
    engine: &Engine,
    asset: &str,
    cx: &IngestContext,
) -> Result<NodeOutput, NodeError> {
    let Some(src) = project.sources.get(asset) else {
        return Err(NodeError::Ingest(IngestError::UnknownTable {
            source_name: asset.to_string(),
            table: String::new(),
        }));
    };
    let connector = connectors.get(&project.project, &src.source).await?;
    let report = connector.ingest(&src.table, cx).await?;
    engine
        .refresh_table(&sluice_lake::TableId::bronze(&src.source, &src.table))
        .await
        .map_err(NodeError::Transform)?;
    Ok(NodeOutput {
        rows_in: Some(report.rows_read),
        rows_out: Some(report.rows_written),
        rows_quarantined: Some(report.rows_quarantined),
        version: None,
        watermark: report.watermark,
        checks: Vec::new(),
        partitions: None,
    })
}

/// Builds one model: stage, check, publish (unless an error check failed).
pub async fn build_model(
    project: &CompiledProject,
    engine: &Engine,
    model: &CompiledModel,
    run_id: &str,
    txn_version: i64,
    full_refresh: bool,
) -> Result<NodeOutput, (NodeError, Vec<CheckResult>)> {
    if let Some(tp) = &model.config.time_partition {
        // Time-partitioned: built partition by partition (crate::partition).
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
    let checks = run_checks(project, engine, &model.name, &staged.relation)
        .await
        .map_err(|e| (e, Vec::new()))?;
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .map(|c| c.message.clone())
        .collect();
    if !failed.is_empty() {
        engine.deregister(&staged.relation);
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

/// Runs every check of `model` against `relation` (staged output during a build, the published relation
/// for `sluice test`).
pub async fn run_checks(
    project: &CompiledProject,
    engine: &Engine,
    model: &str,
    relation: &str,
) -> Result<Vec<CheckResult>, NodeError> {
    let mut out = Vec::new();
    for spec in project.project.checks_of(model) {
        let check = build_check(spec, &project.scope)?;
        out.push(evaluate(check.as_ref(), engine, relation).await);
    }
    Ok(out)
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
