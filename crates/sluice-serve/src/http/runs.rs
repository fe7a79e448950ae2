//! Run history: `GET /api/runs` and `GET /api/runs/{id}`. Starting, cancelling and retrying runs
//! are in [`super::control`].

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::json;

use super::control::running_nodes;
use crate::app::AppState;
use crate::error::ApiError;

/// Query parameters of `GET /api/runs`.
#[derive(Debug, Deserialize)]
pub struct RunsQuery {
    /// How many runs (default 50).
    pub limit: Option<usize>,
}

/// `GET /api/runs?limit=`: the latest runs, newest first.
pub async fn runs(
    State(s): State<AppState>,
    q: Result<Query<RunsQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_param("limit", "", e.body_text()))?;
    // A run whose process died shows as abandoned, not running forever.
    s.state.reap_abandoned_runs()?;
    let runs = s.state.runs(q.limit.unwrap_or(50))?;
    Ok(Json(json!(runs)))
}

/// `GET /api/runs/{id}`: one run, its nodes and checks, and the nodes in flight.
pub async fn run(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    s.state.reap_if_abandoned(&id)?;
    let Some(run) = s.state.run(&id)? else {
        return Err(ApiError::UnknownRun { id });
    };
    let nodes = s.state.nodes_of_run(&id)?;
    let checks = s.state.checks_of_run(&id)?;
    let running = running_nodes(&id);
    Ok(Json(
        json!({"run": run, "nodes": nodes, "checks": checks, "running": running}),
    ))
}
