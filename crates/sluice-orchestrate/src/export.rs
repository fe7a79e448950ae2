//! Export nodes (reverse ETL): `export:<name>` runs after the asset it pushes.
//!
//! The sinks (PostgreSQL upsert, webhook) live in the serving layer, which this crate cannot depend
//! on; the run reaches them through [`ExportRunner`], which the CLI passes in
//! [`RunOptions::exports`](crate::RunOptions). An export whose asset failed or was skipped is skipped
//! like any other downstream node.

use std::time::Instant;

use futures::future::BoxFuture;
use sluice_core::ExportDecl;
use sluice_core::exports::EXPORT_NODE_PREFIX;
use sluice_transform::{CompiledProject, Engine};

use crate::node::{NodeError, NodeOutput};
use crate::runner::RunOptions;

/// What one export pushed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Rows read from the asset.
    pub rows_read: u64,
    /// Rows the target accepted.
    pub rows_written: u64,
    /// Batches sent (transactions or requests).
    pub batches: u64,
}

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

/// Runs one export; implemented by the serving layer.
pub trait ExportRunner: Send + Sync {
    /// Pushes `export`'s asset (read through `engine`) to its target, in batches.
    fn run_export<'a>(
        &'a self,
        project: &'a CompiledProject,
        engine: &'a Engine,
        export: &'a ExportDecl,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<ExportReport, ExportFailure>>;
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

/// Runs an export node through the run's [`ExportRunner`].
pub async fn run_export_node(
    project: &CompiledProject,
    engine: &Engine,
    opts: &RunOptions,
    run_id: &str,
    node: &str,
) -> Result<NodeOutput, NodeError> {
    let fail = |message: String| {
        NodeError::Export(ExportFailure {
            export: node.trim_start_matches(EXPORT_NODE_PREFIX).to_string(),
            message,
            transient: false,
        })
    };
    let Some(export) = export_of(project, node) else {
        return Err(fail("no such enabled export in exports/".into()));
    };
    let Some(runner) = &opts.exports else {
        return Err(fail(
            "this run has no export runner (exports run from the `sluice` command line)".into(),
        ));
    };
    let started = Instant::now();
    let report = runner
        .run_export(project, engine, export, run_id)
        .await
        .map_err(NodeError::Export)?;
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
