//! HTTP handlers.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::format::{Format, encode};
use crate::status::asset_status;

/// The API router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/health", get(health))
        .route("/api/assets", get(assets))
        .route("/api/assets/{name}", get(asset))
        .route("/api/assets/{name}/rows", get(rows))
        .route("/api/sql", post(sql))
        .route("/api/runs", get(runs))
        .route("/api/runs/{id}", get(run))
        .route("/api/lineage", get(lineage))
        .with_state(state)
}

/// An error response: `{"error": "..."}` with a status.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

fn bad_request(e: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, e.to_string())
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

async fn assets(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let list = asset_status(&s.compiled, &s.state).map_err(internal)?;
    Ok(Json(json!(list)))
}

fn relation_of(s: &AppState, name: &str) -> Result<String, ApiError> {
    if let Some(m) = s.compiled.models.get(name) {
        return Ok(m.relation.clone());
    }
    if let Some(src) = s.compiled.sources.get(name) {
        return Ok(sluice_transform::source_relation(&src.source, &src.table));
    }
    let hint = sluice_core::graph::suggest(name, s.compiled.graph.nodes())
        .map(|h| format!(" (did you mean `{h}`?)"))
        .unwrap_or_default();
    Err(ApiError(
        StatusCode::NOT_FOUND,
        format!("no asset `{name}`{hint}"),
    ))
}

async fn asset(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let relation = relation_of(&s, &name)?;
    let status = asset_status(&s.compiled, &s.state)
        .map_err(internal)?
        .into_iter()
        .find(|a| a.name == name);
    let schema = match s.engine.plan(&format!("SELECT * FROM {relation} LIMIT 0")).await {
        Ok(df) => df
            .schema()
            .fields()
            .iter()
            .map(|f| json!({"name": f.name(), "type": f.data_type().to_string(), "nullable": f.is_nullable()}))
            .collect::<Vec<_>>(),
        Err(_) => Vec::new(),
    };
    let history = s.state.node_history(&name, 20).map_err(internal)?;
    let checks: Vec<_> = s
        .state
        .latest_checks()
        .map_err(internal)?
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

#[derive(Deserialize)]
struct RowsQuery {
    limit: Option<usize>,
    offset: Option<usize>,
    format: Option<String>,
}

/// Largest page served in one response.
const MAX_LIMIT: usize = 100_000;

async fn rows(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<RowsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let relation = relation_of(&s, &name)?;
    let format = Format::negotiate(q.format.as_deref(), &headers).map_err(bad_request)?;
    let limit = q.limit.unwrap_or(100);
    if limit > MAX_LIMIT {
        return Err(bad_request(format!(
            "limit {limit} is above the maximum of {MAX_LIMIT}; page with offset"
        )));
    }
    let offset = q.offset.unwrap_or(0);
    let batches = s
        .engine
        .query(&format!(
            "SELECT * FROM {relation} LIMIT {limit} OFFSET {offset}"
        ))
        .await
        .map_err(internal)?;
    encode(&batches, format).map_err(internal)
}

#[derive(Deserialize)]
struct SqlRequest {
    sql: String,
}

#[derive(Deserialize)]
struct SqlQuery {
    format: Option<String>,
}

async fn sql(
    State(s): State<AppState>,
    Query(q): Query<SqlQuery>,
    headers: HeaderMap,
    Json(body): Json<SqlRequest>,
) -> Result<Response, ApiError> {
    let format = Format::negotiate(q.format.as_deref(), &headers).map_err(bad_request)?;
    let batches = s.engine.query(&body.sql).await.map_err(|e| match e {
        sluice_transform::TransformError::ReadOnly(m) => {
            ApiError(StatusCode::FORBIDDEN, format!("read-only: {m}"))
        }
        other => bad_request(other),
    })?;
    encode(&batches, format).map_err(internal)
}

#[derive(Deserialize)]
struct RunsQuery {
    limit: Option<usize>,
}

async fn runs(
    State(s): State<AppState>,
    Query(q): Query<RunsQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let runs = s.state.runs(q.limit.unwrap_or(50)).map_err(internal)?;
    Ok(Json(json!(runs)))
}

async fn run(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Some(run) = s.state.run(&id).map_err(internal)? else {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("no run `{id}`")));
    };
    let nodes = s.state.nodes_of_run(&id).map_err(internal)?;
    let checks = s.state.checks_of_run(&id).map_err(internal)?;
    Ok(Json(json!({"run": run, "nodes": nodes, "checks": checks})))
}

async fn lineage(State(s): State<AppState>) -> Json<serde_json::Value> {
    let nodes: Vec<_> = s
        .compiled
        .graph
        .nodes()
        .map(|n| {
            let (kind, layer) = match s.compiled.models.get(n) {
                Some(m) => ("model", m.layer.as_str()),
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
