//! Reading an export's asset: its relation in the engine, then its rows as a stream, so that an
//! export of any size holds about one batch in memory.

use futures::StreamExt;
use sluice_transform::{CompiledProject, Engine};

use crate::{Rows, SinkError};

/// The SQL relation of an asset name: a model (`mart_revenue`, `gold.mart_revenue`) or a source
/// table (`shop.orders`).
pub fn relation_of(project: &CompiledProject, asset: &str) -> Result<String, SinkError> {
    let node = sluice_core::exports::resolve_asset(
        asset,
        &project.project.sources,
        &project.project.models,
    )
    .ok_or_else(|| SinkError::UnknownAsset(asset.to_string()))?;
    if let Some(m) = project.models.get(&node) {
        return Ok(m.relation.clone());
    }
    project
        .sources
        .get(&node)
        .map(|s| sluice_transform::source_relation(&s.source, &s.table))
        .ok_or_else(|| SinkError::UnknownAsset(asset.to_string()))
}

/// Plans `SELECT columns FROM relation` and starts streaming it.
pub async fn read_asset(
    engine: &Engine,
    relation: &str,
    columns: Option<&[String]>,
) -> Result<Rows, SinkError> {
    let engine_error = |e: &dyn std::fmt::Display| SinkError::Engine(e.to_string());
    let exists = engine
        .context()
        .table_exist(relation)
        .map_err(|e| engine_error(&e))?;
    if !exists {
        return Err(SinkError::NotBuilt(relation.to_string()));
    }
    let mut df = engine
        .plan(&format!("SELECT * FROM {relation}"))
        .await
        .map_err(|e| engine_error(&e))?;
    if let Some(columns) = columns {
        let available: Vec<String> = df
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        if let Some(c) = columns.iter().find(|c| !available.contains(c)) {
            return Err(SinkError::UnknownColumn {
                column: c.clone(),
                role: "columns",
                available,
            });
        }
        let names: Vec<&str> = columns.iter().map(String::as_str).collect();
        df = df.select_columns(&names).map_err(|e| engine_error(&e))?;
    }
    let stream = df.execute_stream().await.map_err(|e| engine_error(&e))?;
    let schema = stream.schema();
    let batches = stream
        .map(|b| b.map_err(|e| SinkError::Engine(e.to_string())))
        .boxed();
    Ok(Rows::new(schema, batches))
}
