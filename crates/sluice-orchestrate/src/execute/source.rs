//! Source table nodes: land what is new through the source's connector.

use std::collections::HashMap;
use std::sync::Arc;

use sluice_core::Project;
use sluice_ingest::{IngestContext, IngestError, Source, build_source};
use sluice_transform::{CompiledProject, Engine};

use crate::node::{NodeError, NodeOutput};

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

/// Ingests table `table` of source `source`.
pub async fn ingest_table(
    project: &CompiledProject,
    connectors: &Connectors,
    engine: &Engine,
    source: &str,
    table: &str,
    cx: &IngestContext,
) -> Result<NodeOutput, NodeError> {
    if cx.pii_key.is_none()
        && let Some(decl) = project.project.source(source)
        && let Some(e) = sluice_core::pii::missing_key_errors(decl, Some(table))
            .into_iter()
            .next()
    {
        return Err(IngestError::Config(e).into());
    }
    let connector = connectors.get(&project.project, source).await?;
    let report = connector.ingest(table, cx).await?;
    engine
        .refresh_table(&sluice_lake::TableId::bronze(source, table))
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
