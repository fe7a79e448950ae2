//! The real [`NodeExecutor`]: what one attempt of a node of a compiled project does, by what the
//! node is ([`NodeId`]): a source table is ingested ([`source`]), a model is staged, checked and
//! published ([`model`]), an export pushes its asset to its sink ([`export`]).

pub mod export;
pub mod model;
pub mod source;

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use sluice_core::{NodeId, NodeKind};
use sluice_ingest::{IngestContext, IngestError};
use sluice_transform::{CompiledProject, Engine};

use crate::node::{AttemptResult, NodeError, NodeExecutor, NodeOutput};
use source::Connectors;

/// How the nodes of a run are built.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExecuteOptions {
    /// Rebuild incremental models from scratch.
    pub full_refresh: bool,
    /// Only run checks against published data (`sluice test`): sources and exports do nothing.
    pub checks_only: bool,
}

/// Ingests source tables, builds and checks models and pushes exports of a compiled project.
pub struct ProjectExecutor {
    project: Arc<CompiledProject>,
    engine: Engine,
    connectors: Connectors,
    cx: IngestContext,
    run_id: String,
    opts: ExecuteOptions,
    /// Each model's idempotency version, fixed at its first attempt so that a retry after a commit
    /// whose reply was lost does not commit twice.
    txns: tokio::sync::Mutex<HashMap<String, i64>>,
}

impl ProjectExecutor {
    /// The executor of one run.
    pub fn new(
        project: Arc<CompiledProject>,
        engine: Engine,
        run_id: &str,
        opts: ExecuteOptions,
    ) -> ProjectExecutor {
        let cx = IngestContext::new(engine.lake().clone(), run_id.to_string())
            .with_pii_key(project.project.config.pii_key.clone());
        ProjectExecutor {
            project,
            engine,
            connectors: Connectors::default(),
            cx,
            run_id: run_id.to_string(),
            opts,
            txns: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// A model's idempotency version for this run (the same for every attempt).
    async fn model_txn(&self, name: &str) -> Result<i64, NodeError> {
        let mut txns = self.txns.lock().await;
        if let Some(v) = txns.get(name) {
            return Ok(*v);
        }
        let Some(m) = self.project.models.get(name) else {
            return Err(unknown_model(name));
        };
        let v = model::next_model_txn(&self.engine, m).await?;
        txns.insert(name.to_string(), v);
        Ok(v)
    }

    async fn model_attempt(&self, name: &str) -> AttemptResult {
        let Some(m) = self.project.models.get(name) else {
            return Err((unknown_model(name), Vec::new()));
        };
        if self.opts.checks_only {
            return model::check_published(&self.project, &self.engine, m).await;
        }
        let txn = self.model_txn(name).await.map_err(|e| (e, Vec::new()))?;
        model::build_model(
            &self.project,
            &self.engine,
            m,
            &self.run_id,
            txn,
            self.opts.full_refresh,
        )
        .await
    }
}

fn unknown_model(name: &str) -> NodeError {
    NodeError::ChecksFailed(vec![format!("unknown model `{name}`")])
}

impl NodeExecutor for ProjectExecutor {
    fn kind(&self, node: &str) -> NodeKind {
        // A graph node the project has no asset for (a reference to a disabled model) is taken
        // for a source table, whose ingestion then says the table is unknown.
        self.project
            .node_id(node)
            .map_or(NodeKind::Source, |id| id.kind())
    }

    fn attempt<'a>(&'a self, node: &'a str, _attempt: u32) -> BoxFuture<'a, AttemptResult> {
        Box::pin(async move {
            let id = self.project.node_id(node);
            if let Some(NodeId::Model(name)) = &id {
                return self.model_attempt(name).await;
            }
            if self.opts.checks_only {
                return Ok(NodeOutput::default());
            }
            let out = match id {
                Some(NodeId::Export(name)) => {
                    export::run_export_node(&self.project, &self.engine, &self.run_id, &name).await
                }
                Some(NodeId::SourceTable { source, table }) => {
                    let (c, e, cx) = (&self.connectors, &self.engine, &self.cx);
                    source::ingest_table(&self.project, c, e, &source, &table, cx).await
                }
                Some(NodeId::Model(_)) | None => {
                    Err(NodeError::Ingest(IngestError::UnknownTable {
                        source_name: node.to_string(),
                        table: String::new(),
                    }))
                }
            };
            out.map_err(|e| (e, Vec::new()))
        })
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
