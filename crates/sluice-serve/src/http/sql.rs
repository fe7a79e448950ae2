//! `POST /api/sql`: one read-only query, streamed in the negotiated format.
//!
//! The SQL is bounded before it takes a slot ([`sluice_transform::guard`]), planned read-only by the
//! engine and streamed batch by batch ([`super::respond::stream_response`]).

use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use serde::Deserialize;

use super::negotiate::negotiate;
use super::respond::stream_response;
use crate::app::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::server::{Peer, peer_of};

#[derive(Deserialize)]
struct SqlRequest {
    sql: String,
}

/// Query parameters of `POST /api/sql`.
#[derive(Debug, Deserialize)]
pub struct SqlQuery {
    /// Response format (overrides `Accept`).
    pub format: Option<String>,
}

/// `POST /api/sql`: `{"sql": "..."}` as JSON, or the SQL itself as `application/sql`.
pub async fn sql(
    State(s): State<AppState>,
    query: Result<Query<SqlQuery>, QueryRejection>,
    headers: HeaderMap,
    peer: Option<Extension<Peer>>,
    principal: Option<Extension<Principal>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_param("query", "", e.body_text()))?;
    let format = negotiate(q.format.as_deref(), &headers)?;
    let sql = sql_of(&headers, &body)?;
    // Refused before it takes a slot: too long or too deep never reaches the parser.
    sluice_transform::guard::check_sql(&sql, &s.limits.sql)
        .map_err(|e| ApiError::Limit(e.to_string()))?;
    let ticket = s.queries.admit("http", peer_of(&peer), &sql, None).await?;
    tracing::debug!(query = ticket.id(), format = format.name(), %sql, "streaming SQL result");
    let engine = s.engine_for(principal.as_deref())?;
    let limits = s.limits.sql;
    let text = sql.clone();
    let df = ticket
        .during(async move { engine.plan_within(&text, &limits).await })
        .await?
        .map_err(ApiError::from_user_sql)?;
    let read = crate::audit::Read {
        principal: principal.as_deref().cloned(),
        protocol: "http",
        client: peer_of(&peer),
        action: "sql",
        tables: crate::audit::tables_of_plan(df.logical_plan()),
        columns: crate::audit::columns_of(df.schema().as_arrow()),
        sql,
    };
    let stream = ticket.during(df.execute_stream()).await?.map_err(|e| {
        ApiError::from_user_sql(sluice_transform::TransformError::Query(e.to_string()))
    })?;
    let stream = super::audited(&s, &read, stream).await?;
    stream_response(ticket.guard(stream), format, ApiError::Query).await
}

/// The SQL text of a request body.
fn sql_of(headers: &HeaderMap, body: &[u8]) -> Result<String, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let sql = match media.as_str() {
        "application/json" | "" => {
            serde_json::from_slice::<SqlRequest>(body)
                .map_err(|e| {
                    ApiError::BadBody(format!("expected JSON {{\"sql\": \"SELECT ...\"}}: {e}"))
                })?
                .sql
        }
        "application/sql" => String::from_utf8(body.to_vec())
            .map_err(|e| ApiError::BadBody(format!("the SQL is not UTF-8: {e}")))?,
        other => {
            // text/plain is refused on purpose: a web page may send it cross-site without asking.
            return Err(ApiError::BadBody(format!(
                "unsupported Content-Type `{other}`; send application/json {{\"sql\": ...}} or \
                 application/sql"
            )));
        }
    };
    if sql.trim().is_empty() {
        return Err(ApiError::BadBody("the SQL is empty".to_string()));
    }
    Ok(sql)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn typed(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        h
    }

    #[test]
    fn sql_comes_from_json_or_plain_bodies() {
        let json = br#"{"sql": "select 1"}"#;
        assert_eq!(sql_of(&HeaderMap::new(), json).unwrap(), "select 1");
        assert_eq!(
            sql_of(&typed("application/json; charset=utf-8"), json).unwrap(),
            "select 1"
        );
        assert_eq!(
            sql_of(&typed("application/sql"), b"select 2").unwrap(),
            "select 2"
        );
        // A content type a cross-site form can send is refused.
        assert!(sql_of(&typed("text/plain"), b"select 3").is_err());
    }

    #[test]
    fn bad_bodies_say_what_was_expected() {
        let e = sql_of(&HeaderMap::new(), b"select 1")
            .unwrap_err()
            .to_string();
        assert!(e.contains(r#"expected JSON {"sql": "SELECT ...""#), "{e}");
        let e = sql_of(&typed("image/png"), b"x").unwrap_err().to_string();
        assert!(e.contains("unsupported Content-Type `image/png`"), "{e}");
        let e = sql_of(&typed("application/sql"), b"  ")
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty"), "{e}");
    }
}
