//! The assets and their graph: `GET /api/assets`, `GET /api/assets/{name}` (status, columns, recent
//! runs, checks, SQL) and `GET /api/lineage`.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde_json::json;

use crate::app::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::status::{asset_status, count_rows};

/// `GET /api/assets`: every asset's status, with row counts.
pub async fn assets(
    State(s): State<AppState>,
    principal: Option<Extension<Principal>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let p = principal.as_deref();
    let mut list = asset_status(&s.compiled, &s.state)?;
    // A principal does not see the tables it may not read.
    list.retain(|a| s.may_read_asset(p, &a.name));
    count_rows(&mut list, &s.engine_for(p)?).await;
    Ok(Json(json!(list)))
}

/// `GET /api/assets/{name}`.
pub async fn asset(
    State(s): State<AppState>,
    Path(name): Path<String>,
    principal: Option<Extension<Principal>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let p = principal.as_deref();
    let relation = s.relation_of(&name)?;
    s.check_readable(p, &relation)?;
    let engine = s.engine_for(p)?;
    let mut found: Vec<_> = asset_status(&s.compiled, &s.state)?
        .into_iter()
        .filter(|a| a.name == name)
        .collect();
    count_rows(&mut found, &engine).await;
    let status = found.into_iter().next();
    let schema = match engine.plan(&format!("SELECT * FROM {relation} LIMIT 0")).await {
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
pub async fn lineage(
    State(s): State<AppState>,
    principal: Option<Extension<Principal>>,
) -> Json<serde_json::Value> {
    let p = principal.as_deref();
    // The graph shows only what the principal may read (and the edges between those).
    let visible = |n: &str| s.may_read_asset(p, n);
    let nodes: Vec<_> = s
        .compiled
        .graph
        .nodes()
        .filter(|n| visible(n))
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
        .filter(|(from, to)| visible(from.as_str()) && visible(to.as_str()))
        .map(|(from, to)| json!({"from": from, "to": to}))
        .collect();
    Json(json!({"nodes": nodes, "edges": edges}))
}
