//! Export nodes (reverse ETL): `export:<name>` runs after the asset it pushes.
//!
//! The sinks (PostgreSQL upsert, webhook) are `sluice-sink`'s registry, which [`run_export_node`] calls
//! directly. An export whose asset failed or was skipped is skipped like any other downstream node.

use std::time::Instant;

use sluice_transform::{CompiledProject, Engine};

use crate::node::{ExportFailure, NodeError, NodeOutput};

pub use sluice_sink::ExportReport;

/// Runs the export `name`: reads its asset and writes it to the sink its `kind:` names.
pub async fn run_export_node(
    project: &CompiledProject,
    engine: &Engine,
    run_id: &str,
    name: &str,
) -> Result<NodeOutput, NodeError> {
    let Some(export) = project.project.export(name).filter(|e| e.enabled) else {
        return Err(NodeError::Export(ExportFailure {
            export: name.to_string(),
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
