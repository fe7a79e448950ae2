//! `GET /api/audit`: the audit log, for principals who may administer (the admin role, or a role
//! with `administer: true` in access.yml; the check is in [`super::auth`]).
//!
//! `?after=SEQ` pages (records after that sequence number, oldest first), `?limit=N` (default
//! 1000, at most 10000). `?format=ndjson` answers one JSON record per line: an export that
//! `jq`, `duckdb` or a SIEM reads as it is.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::error::ApiError;

/// The most records one request returns.
pub const MAX_AUDIT_LIMIT: usize = 10_000;

/// Query parameters of `GET /api/audit`.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    /// Records after this sequence number.
    #[serde(default)]
    pub after: i64,
    /// How many (default 1000).
    pub limit: Option<usize>,
    /// `json` (default) or `ndjson`.
    pub format: Option<String>,
}

/// `GET /api/audit`.
pub async fn audit(
    State(s): State<AppState>,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_param("query", "", e.body_text()))?;
    let limit = q.limit.unwrap_or(1000).min(MAX_AUDIT_LIMIT);
    let state = s.state.clone();
    let after = q.after;
    let records = tokio::task::spawn_blocking(move || state.backend().audit_records(after, limit))
        .await
        .map_err(|e| ApiError::Engine(e.to_string()))??;
    match q.format.as_deref() {
        None | Some("json") => {
            let next = records.last().map(|r| r.seq);
            Ok(axum::Json(json!({"records": records, "next_after": next})).into_response())
        }
        Some("ndjson") => {
            let mut body = String::new();
            for r in &records {
                body.push_str(
                    &serde_json::to_string(r).map_err(|e| ApiError::Engine(e.to_string()))?,
                );
                body.push('\n');
            }
            Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
        }
        Some(other) => Err(ApiError::bad_param("format", other, "json or ndjson")),
    }
}
