//! The router and the JSON endpoints over the graph and the state database.
//!
//! Query results (`/api/assets/{name}/rows`, `/api/sql`) live in [`crate::query`]; `/metrics` in
//! [`crate::metrics`]; `/api/openapi.json` in [`crate::openapi`]. Every route is listed once, in
//! [`routes`], which both builds the router and is checked against the OpenAPI document.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::routing::{MethodRouter, get, post};
use axum::{Json, middleware};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::error::ApiError;
use crate::metrics::{count_requests, metrics};
use crate::openapi::openapi;
use crate::query::{rows, sql};
use crate::status::asset_status;

/// Every route: method (for the OpenAPI check), path template and handler.
pub fn routes() -> Vec<(&'static str, &'static str, MethodRouter<AppState>)> {
    vec![
        ("GET", "/api/health", get(health)),
        ("GET", "/api/assets", get(assets)),
        ("GET", "/api/assets/{name}", get(asset)),
        ("GET", "/api/assets/{name}/rows", get(rows)),
        ("POST", "/api/sql", post(sql)),
        ("GET", "/api/runs", get(runs)),
        ("GET", "/api/runs/{id}", get(run)),
        ("POST", "/api/runs", post(crate::control::trigger_run)),
        (
            "POST",
            "/api/runs/{id}/cancel",
            post(crate::control::cancel_run),
        ),
        (
            "POST",
            "/api/runs/{id}/retry",
            post(crate::control::retry_run),
        ),
        ("GET", "/api/schedules", get(crate::control::schedules)),
        (
            "POST",
            "/api/backfills",
            post(crate::backfills::start_backfill),
        ),
        (
            "GET",
            "/api/backfills/{id}",
            get(crate::backfills::get_backfill),
        ),
        ("GET", "/api/checks", get(crate::checks::checks)),
        (
            "GET",
            "/api/assets/{name}/partitions",
            get(crate::partitions::partitions),
        ),
        ("GET", "/api/dashboards", get(crate::dashboards::list)),
        ("GET", "/api/dashboards/{name}", get(crate::dashboards::get)),
        (
            "GET",
            "/api/dashboards/{name}/charts/{index}",
            get(crate::dashboards::chart_data),
        ),
        ("GET", "/api/freshness", get(crate::freshness::freshness)),
        ("GET", "/api/lineage", get(lineage)),
        ("GET", "/api/queries", get(queries)),
        ("POST", "/api/queries/{id}/cancel", post(cancel_query)),
        ("GET", "/api/openapi.json", get(openapi)),
        ("GET", "/metrics", get(metrics)),
    ]
}

/// The API router and the web UI ([`crate::ui`], at `/`), counting every request for `/metrics`.
pub fn router(state: AppState) -> Router {
    let counters = state.metrics.clone();
    routes()
        .into_iter()
        .fold(Router::new(), |r, (_, path, handler)| {
            r.route(path, handler)
        })
        .with_state(state)
        .merge(crate::ui::router())
        .layer(middleware::from_fn_with_state(counters, count_requests))
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

async fn assets(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let mut list = asset_status(&s.compiled, &s.state)?;
    crate::status::count_rows(&mut list, &s.engine).await;
    Ok(Json(json!(list)))
}

/// The SQL relation of an asset, or 404 with a suggestion.
pub(crate) fn relation_of(s: &AppState, name: &str) -> Result<String, ApiError> {
    if let Some(m) = s.compiled.models.get(name) {
        return Ok(m.relation.clone());
    }
    if let Some(src) = s.compiled.sources.get(name) {
        return Ok(sluice_transform::source_relation(&src.source, &src.table));
    }
    let hint = sluice_core::graph::suggest(name, s.compiled.graph.nodes())
        .map(|h| format!(" (did you mean `{h}`?)"))
        .unwrap_or_default();
    Err(ApiError::UnknownAsset {
        name: name.to_string(),
        hint,
    })
}

async fn asset(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let relation = relation_of(&s, &name)?;
    let mut found: Vec<_> = asset_status(&s.compiled, &s.state)?
        .into_iter()
        .filter(|a| a.name == name)
        .collect();
    crate::status::count_rows(&mut found, &s.engine).await;
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

#[derive(Deserialize)]
struct RunsQuery {
    limit: Option<usize>,
}

async fn runs(
    State(s): State<AppState>,
    q: Result<Query<RunsQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_param("limit", "", e.body_text()))?;
    // A run whose process died shows as abandoned, not running forever.
    s.state.reap_abandoned_runs()?;
    let runs = s.state.runs(q.limit.unwrap_or(50))?;
    Ok(Json(json!(runs)))
}

async fn run(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    s.state.reap_if_abandoned(&id)?;
    let Some(run) = s.state.run(&id)? else {
        return Err(ApiError::UnknownRun { id });
    };
    let nodes = s.state.nodes_of_run(&id)?;
    let checks = s.state.checks_of_run(&id)?;
    let running = crate::control::running_nodes(&id);
    Ok(Json(
        json!({"run": run, "nodes": nodes, "checks": checks, "running": running}),
    ))
}

async fn queries(State(s): State<AppState>) -> Json<serde_json::Value> {
    let running = s.queries.list();
    Json(json!({
        "queries": running,
        "limits": {
            "max_concurrent_queries": s.limits.max_concurrent_queries,
            "statement_timeout_ms": u64::try_from(s.limits.statement_timeout.as_millis()).unwrap_or(u64::MAX),
            "query_memory_limit": s.limits.query_memory_limit,
            "memory_limit": s.limits.memory_limit,
        },
    }))
}

async fn cancel_query(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<(axum::http::StatusCode, Json<serde_json::Value>), ApiError> {
    let parsed: Option<u64> = id.parse().ok();
    match parsed {
        Some(n) if s.queries.cancel(n) => Ok((
            axum::http::StatusCode::ACCEPTED,
            Json(json!({"cancelled": n})),
        )),
        _ => Err(ApiError::UnknownQuery { id }),
    }
}

async fn lineage(State(s): State<AppState>) -> Json<serde_json::Value> {
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

#[cfg(test)]
#[path = "api_tests.rs"]
mod tests;
