//! Backfills over HTTP: `POST /api/backfills` plans one and builds it in the background;
//! `GET /api/backfills/{id}` reports its progress (see docs/partitions.md).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_orchestrate::partition::{BackfillError, BackfillRequest, execute, plan, progress};

use crate::app::AppState;
use crate::error::ApiError;

/// Body of `POST /api/backfills`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackfillBody {
    /// Selection as `sluice backfill --select`.
    #[serde(default)]
    pub select: String,
    /// Leave out what this selects (same grammar), as `sluice backfill --exclude`.
    #[serde(default)]
    pub exclude: String,
    /// First partition (a date or time inside it); default: each model's `partition_by.start`.
    #[serde(default)]
    pub from: Option<String>,
    /// Last partition, included; default: the current one.
    #[serde(default)]
    pub to: Option<String>,
    /// Only partitions never built.
    #[serde(default)]
    pub missing: bool,
    /// Partitions built at once (default: `defaults.threads`).
    #[serde(default)]
    pub threads: Option<usize>,
}

/// `POST /api/backfills`: 202 `{"id", "resumed", "url"}`; the backfill goes on in the background.
/// The same request as an unfinished backfill resumes that one.
pub async fn start_backfill(
    State(s): State<AppState>,
    body: Result<Json<BackfillBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body.map_err(|e| {
        ApiError::BadBody(format!(
            "expected JSON {{\"select\": \"model\", \"from\": \"2024-01-01\", \"to\": \"2024-01-31\", \"missing\": false}}: {}",
            e.body_text()
        ))
    })?;
    let (nodes, selection) = if body.exclude.trim().is_empty() {
        (None, body.select.trim().to_string())
    } else {
        let (nodes, display) =
            crate::http::control::resolve_selection(&s, &body.select, &body.exclude)?;
        (Some(nodes), display)
    };
    let req = BackfillRequest {
        selection,
        nodes,
        from: body.from,
        to: body.to,
        missing: body.missing,
    };
    let (record, resumed) = plan(&s.compiled, &s.state, &req).map_err(|e| match e {
        BackfillError::State(e) => ApiError::State(e),
        other => ApiError::BadBody(other.to_string()),
    })?;
    let id = record.id.clone();
    let threads = body
        .threads
        .unwrap_or(s.compiled.project.config.defaults.threads)
        .max(1);
    let (compiled, engine, state, task_id) = (
        s.compiled.clone(),
        s.engine.clone(),
        s.state.clone(),
        id.clone(),
    );
    tracing::info!(backfill = %id, resumed, "starting a backfill from the API");
    tokio::spawn(async move {
        match execute(compiled, engine, state, &task_id, threads, None).await {
            Ok(p) => {
                tracing::info!(backfill = %task_id, status = %p.record.status, done = p.done, failed = p.failed, "backfill finished")
            }
            Err(e) => tracing::error!(backfill = %task_id, error = %e, "backfill failed"),
        }
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "resumed": resumed, "url": format!("/api/backfills/{id}")})),
    ))
}

/// `GET /api/backfills/{id}`: status, counts per model, failed partitions; 404 for an unknown id.
pub async fn get_backfill(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(match progress(&s.state, &id)? {
        Some(p) => Json(json!(p)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no backfill `{id}`")})),
        )
            .into_response(),
    })
}

/// The OpenAPI descriptions of the two routes: `(path, operations)`.
pub fn openapi_paths() -> [(&'static str, Value); 2] {
    let error = json!({"description": "A bad request body, dates or selection.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    [
        (
            "/api/backfills",
            json!({"post": {
                "operationId": "startBackfill",
                "summary": "Plans a backfill of the selected time-partitioned models (partitions from `from` to `to`, both included, or only never-built ones with `missing`) and builds it in the background; the same request as an unfinished backfill resumes it. Poll `GET /api/backfills/{id}`.",
                "parameters": [],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": {
                    "select": {"type": "string"}, "exclude": {"type": "string"}, "from": {"type": "string"}, "to": {"type": "string"},
                    "missing": {"type": "boolean", "default": false}, "threads": {"type": "integer", "minimum": 1}}}}}},
                "responses": {
                    "202": {"description": "Started: `{\"id\", \"resumed\", \"url\"}`.",
                        "content": {"application/json": {"schema": {"type": "object"}}}},
                    "400": error,
                },
            }}),
        ),
        (
            "/api/backfills/{id}",
            json!({"get": {
                "operationId": "getBackfill",
                "summary": "A backfill's status (`planned`, `running`, `success`, `failed`), partitions planned / built / failed per model, and the first failures.",
                "parameters": [{"name": "id", "in": "path", "required": true, "description": "Backfill id.", "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "Progress.", "content": {"application/json": {"schema": {"type": "object"}}}},
                    "404": {"description": "No such backfill.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                },
            }}),
        ),
    ]
}
