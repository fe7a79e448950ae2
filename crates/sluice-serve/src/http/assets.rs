//! The assets and their graph: `GET /api/assets`, `GET /api/assets/{name}` (status, columns, recent
//! runs, checks, SQL) and `GET /api/lineage`.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::json;

use crate::app::AppState;
use crate::error::ApiError;
use crate::status::{asset_status, count_rows};

/// `GET /api/assets`: every asset's status, with row counts.
pub async fn assets(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let mut list = asset_status(&s.compiled, &s.state)?;
    count_rows(&mut list, &s.engine).await;
    Ok(Json(json!(list)))
}

/// `GET /api/assets/{name}`.
pub async fn asset(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let relation = s.relation_of(&name)?;
    let mut found: Vec<_> = asset_status(&s.compiled, &s.state)?
        .into_iter()
        .filter(|a| a.name == name)
        .collect();
    count_rows(&mut found, &s.engine).await;
    let status = found.into_iter().next();
    let schema = match s.engine.plan(&format!("SELECT * FROM {relation} LIMIT 0")).await {
        Ok(df) => df
            .schema()
            .fields()
            .iter()
            .map(|f| json!({"name": f.name(), "type": f.data_type().to_string(), "nullable": f.is_nullable()}))
            .collect::<Vec<_>>(),
        Err(_) => Vec::new(),
    };
    let history = s.state.node_history(&name, 20)?;
    let checks: Vec<_> = s
        .state
        .latest_checks()?
        .into_iter()
        .filter(|c| c.model == name)
        .collect();
    let sql = s.compiled.models.get(&name).map(|m| m.sql.clone());
    Ok(Json(json!({
        "asset": status,
        "columns": schema,
        "runs": history,
        "checks": checks,
        "sql": sql,
    })))
}

/// `GET /api/lineage`: the asset graph (nodes with their kind and layer, edges).
pub async fn lineage(State(s): State<AppState>) -> Json<serde_json::Value> {
    let nodes: Vec<_> = s
        .compiled
        .graph
        .nodes()
        .map(|n| {
            let (kind, layer) = match s.compiled.models.get(n) {
                Some(m) => ("model", m.layer.as_str()),
                // Reverse-ETL exports leave the lake: they have no layer of their own.
                None if matches!(s.compiled.node_id(n), Some(sluice_core::NodeId::Export(_))) => {
                    ("export", "export")
                }
                None => ("source", "bronze"),
            };
            json!({"name": n, "kind": kind, "layer": layer})
        })
        .collect();
    let edges: Vec<_> = s
        .compiled
        .graph
        .edges()
        .into_iter()
        .map(|(from, to)| json!({"from": from, "to": to}))
        .collect();
    Json(json!({"nodes": nodes, "edges": edges}))
}
