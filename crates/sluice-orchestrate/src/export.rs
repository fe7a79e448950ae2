//! Export nodes (reverse ETL): `export:<name>` runs after the asset it pushes.
//!
//! The sinks (PostgreSQL upsert, webhook) are `sluice-sink`'s registry, which [`run_export_node`] calls
//! directly. An export whose asset failed or was skipped is skipped like any other downstream node.

use std::time::Instant;

use sluice_core::ExportDecl;
use sluice_core::exports::EXPORT_NODE_PREFIX;
use sluice_transform::{CompiledProject, Engine};

use crate::node::{NodeError, NodeOutput};

pub use sluice_sink::ExportReport;

/// Why an export failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("export `{export}` failed: {message}")]
pub struct ExportFailure {
    /// The export's name.
    pub export: String,
    /// What went wrong.
    pub message: String,
    /// Whether running the whole export again may succeed (a dropped connection) and is safe (the
    /// sink is idempotent).
    pub transient: bool,
}

/// The export behind an `export:<name>` node (enabled ones only).
pub fn export_of<'a>(project: &'a CompiledProject, node: &str) -> Option<&'a ExportDecl> {
    let name = node.strip_prefix(EXPORT_NODE_PREFIX)?;
    project.project.export(name).filter(|e| e.enabled)
}

/// `model`, `export` or `source`: the kind recorded for a node.
pub fn node_kind(project: &CompiledProject, node: &str) -> &'static str {
    if project.models.contains_key(node) {
        "model"
    } else if node.starts_with(EXPORT_NODE_PREFIX) {
        "export"
    } else {
        "source"
    }
}

/// Whether `node` is an export node.
pub fn is_export(node: &str) -> bool {
    node.starts_with(EXPORT_NODE_PREFIX)
}

/// Runs an export node: reads its asset and writes it to the sink its `kind:` names.
pub async fn run_export_node(
    project: &CompiledProject,
    engine: &Engine,
    run_id: &str,
    node: &str,
) -> Result<NodeOutput, NodeError> {
    let Some(export) = export_of(project, node) else {
        return Err(NodeError::Export(ExportFailure {
            export: node.trim_start_matches(EXPORT_NODE_PREFIX).to_string(),
            message: "no such enabled export in exports/".into(),
            transient: false,
        }));
    };
    let started = Instant::now();
    let report = sluice_sink::run_export(project, engine, export, run_id)
        .await
        .map_err(|e| {
            NodeError::Export(ExportFailure {
                export: export.name.clone(),
                transient: e.is_transient(),
                message: e.to_string(),
            })
        })?;
    tracing::info!(
        export = %export.name,
        kind = export.kind(),
        rows = report.rows_written,
        batches = report.batches,
        ms = started.elapsed().as_millis() as u64,
        "export pushed"
    );
    Ok(NodeOutput {
        rows_in: Some(report.rows_read),
        rows_out: Some(report.rows_written),
        ..NodeOutput::default()
    })
}
