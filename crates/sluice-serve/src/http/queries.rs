//! Running queries for admins: `GET /api/queries` (with the limits in force) and
//! `POST /api/queries/{id}/cancel`. The registry itself is [`crate::query::registry`].

use axum::Json;
use axum::extract::{Path, State};
use serde_json::json;

use crate::app::AppState;
use crate::error::ApiError;

/// `GET /api/queries`.
pub async fn queries(State(s): State<AppState>) -> Json<serde_json::Value> {
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

/// `POST /api/queries/{id}/cancel`: 202 when the query was running, 404 otherwise.
pub async fn cancel_query(
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
