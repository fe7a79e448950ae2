//! The query endpoints: rows of an asset and read-only SQL, streamed in the negotiated format.
//!
//! Both run through the engine as a stream of batches ([`crate::format::stream_response`]), so neither
//! holds a whole result in memory.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use serde::Deserialize;

use crate::AppState;
use crate::api::relation_of;
use crate::cursor::next_cursor;
use crate::error::ApiError;
use crate::filter::RowsRequest;
use crate::format::{negotiate, stream_response};

/// `GET /api/assets/{name}/rows`.
pub async fn rows(
    State(s): State<AppState>,
    Path(name): Path<String>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
    peer: Option<Extension<Peer>>,
) -> Result<Response, ApiError> {
    let relation = relation_of(&s, &name)?;
    let Query(params) = params.map_err(|e| ApiError::bad_param("query", "", e.body_text()))?;
    let req = RowsRequest::parse(&params)?;
    let format = negotiate(req.format.as_deref(), &headers)?;
    let exists = s
        .engine
        .context()
        .table_exist(relation.as_str())
        .map_err(|e| ApiError::Engine(e.to_string()))?;
    if !exists {
        return Err(ApiError::NotBuilt { name });
    }
    let ticket = s
        .queries
        .admit("http", peer_of(&peer), &format!("rows of {name}"), None)
        .await?;
    let df = s
        .engine
        .plan(&format!("SELECT * FROM {relation}"))
        .await
        .map_err(|e| ApiError::Engine(e.to_string()))?;
    let sorted = req.filter_and_sort(df)?;
    let next = if req.wants_cursor() {
        ticket
            .during(next_cursor(sorted.clone(), &req.order, req.limit))
            .await??
    } else {
        None
    };
    let df = req.page(sorted)?;
    tracing::debug!(asset = %name, format = format.name(), "streaming rows");
    let stream = ticket
        .during(df.execute_stream())
        .await?
        .map_err(|e| ApiError::Engine(e.to_string()))?;
    let mut response = stream_response(ticket.guard(stream), format, ApiError::Engine).await?;
    if let Some(cursor) = next {
        let link = next_link(&name, &params, &cursor);
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&cursor) {
            headers.insert(NEXT_CURSOR, v);
        }
        if let Ok(v) = HeaderValue::from_str(&format!("<{link}>; rel=\"next\"")) {
            headers.insert(header::LINK, v);
        }
    }
    Ok(response)
}

/// The header carrying the next page's cursor.
pub const NEXT_CURSOR: &str = "x-next-cursor";

/// The next page's URL: the same parameters, with `cursor` replaced.
fn next_link(name: &str, params: &[(String, String)], cursor: &str) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params.iter().filter(|(k, _)| k != "cursor") {
        query.append_pair(k, v);
    }
    query.append_pair("cursor", cursor);
    let path: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
    format!("/api/assets/{path}/rows?{}", query.finish())
}

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
    let engine = s.engine.clone();
    let limits = s.limits.sql;
    let stream = ticket
        .during(async move {
            engine
                .plan_within(&sql, &limits)
                .await?
                .execute_stream()
                .await
                .map_err(|e| sluice_transform::TransformError::Query(e.to_string()))
        })
        .await?
        .map_err(ApiError::from_user_sql)?;
    stream_response(ticket.guard(stream), format, ApiError::Query).await
}

/// The client's address, as the server records it on each request.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::SocketAddr);

fn peer_of(peer: &Option<Extension<Peer>>) -> String {
    peer.as_ref()
        .map(|Extension(Peer(a))| a.to_string())
        .unwrap_or_default()
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
