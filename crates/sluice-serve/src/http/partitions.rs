//! `GET /api/assets/{name}/partitions`: an asset's partitions and the rows in each.
//!
//! Source tables are partitioned by `_ingest_date`; a model by its `partition_by` columns. The answer
//! lists the newest partitions first (at most [`MAX_PARTITIONS`]).

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::dashboards::batches_json;
use crate::app::AppState;
use crate::error::ApiError;

/// Most partitions listed.
pub const MAX_PARTITIONS: usize = 100;

/// `GET /api/assets/{name}/partitions`: `{"columns": [...], "partitions": [{<col>: v, "rows": n}]}`;
/// an unpartitioned asset has no columns and no partitions.
pub async fn partitions(
    State(s): State<AppState>,
    Path(name): Path<String>,
    principal: Option<axum::Extension<crate::auth::Principal>>,
) -> Result<Json<Value>, ApiError> {
    let relation = s.relation_of(&name)?;
    // Partition values and counts are read from the rows: the principal's grants, masks and row
    // filter apply ([`crate::access`]).
    s.check_readable(principal.as_deref(), &relation)?;
    let engine = s.engine_for(principal.as_deref())?;
    let columns: Vec<String> = match s.compiled.models.get(&name) {
        Some(m) => m.config.partition_by.clone(),
        None => vec!["_ingest_date".to_string()],
    };
    if columns.is_empty() {
        return Ok(Json(json!({"columns": columns, "partitions": []})));
    }
    let keys = columns
        .iter()
        .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {keys}, count(*) AS \"rows\" FROM {relation} GROUP BY {keys} ORDER BY {keys} DESC LIMIT {MAX_PARTITIONS}"
    );
    let batches = match engine.query(&sql).await {
        Ok(b) => b,
        Err(e) => {
            let built = s.state.latest_successes()?.iter().any(|n| n.node == name);
            return Err(if built {
                ApiError::Engine(e.to_string())
            } else {
                ApiError::NotBuilt { name }
            });
        }
    };
    Ok(Json(
        json!({"columns": columns, "partitions": batches_json(&batches)?}),
    ))
}
