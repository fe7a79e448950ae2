//! `GET /api/assets/{name}/history`: the versions of an asset's table, newest first, as
//! `sluice history --json` prints them (see docs/time-travel.md).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_transform::time_travel::{LakeError, asset_table};

use crate::app::AppState;
use crate::error::ApiError;

/// Versions listed when `limit` is not given.
pub const DEFAULT_VERSIONS: usize = 100;

/// Query parameters of `GET /api/assets/{name}/history`.
#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    /// How many versions (default [`DEFAULT_VERSIONS`]).
    pub limit: Option<usize>,
}

/// `GET /api/assets/{name}/history?limit=`: `{"asset", "table", "versions": [...]}`, each version
/// with `version`, `timestamp`, `operation`, `run_id`, `rows_added`, `rows_removed`, `rows_total`
/// and `restored_version`.
pub async fn history(
    State(s): State<AppState>,
    Path(name): Path<String>,
    q: Result<Query<HistoryQuery>, QueryRejection>,
    principal: Option<axum::Extension<crate::auth::Principal>>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_param("limit", "", e.body_text()))?;
    // Unknown assets are a 404 with a suggestion, as on every asset route; a table the principal
    // may not read is a 403, as on its rows.
    let relation = s.relation_of(&name)?;
    s.check_readable(principal.as_deref(), &relation)?;
    let id = asset_table(&s.compiled, &name).map_err(|e| ApiError::Query(e.to_string()))?;
    let mut versions = match s.engine.lake().versions(&id).await {
        Ok(v) => v,
        Err(LakeError::NoSuchTable { .. }) => return Err(ApiError::NotBuilt { name }),
        Err(e) => return Err(ApiError::Engine(e.to_string())),
    };
    versions.reverse();
    versions.truncate(q.limit.unwrap_or(DEFAULT_VERSIONS));
    Ok(Json(json!({
        "asset": name,
        "table": id.to_string(),
        "versions": versions,
    })))
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
