//! `GET /api/assets/{name}/rows`: the rows of an asset, filtered, ordered and paged (keyset cursors),
//! streamed in the negotiated format.
//!
//! The result runs through the engine as a stream of batches ([`super::respond::stream_response`]), so
//! it is never held whole in memory. The parameters are parsed by [`crate::query::filter`], except
//! time travel: `version=N` or `as_of=TIME` reads the asset as of that version or time (the SQL
//! `VERSION AS OF` / `TIMESTAMP AS OF`, [`sluice_transform::time_travel`]).

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;

use super::negotiate::negotiate;
use super::respond::stream_response;
use crate::app::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::query::cursor::next_cursor;
use crate::query::filter::RowsRequest;
use crate::server::{Peer, peer_of};
use sluice_transform::TransformError;

/// `GET /api/assets/{name}/rows`.
pub async fn rows(
    State(s): State<AppState>,
    Path(name): Path<String>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
    peer: Option<Extension<Peer>>,
    principal: Option<Extension<Principal>>,
) -> Result<Response, ApiError> {
    let relation = s.relation_of(&name)?;
    s.check_readable(principal.as_deref(), &relation)?;
    let engine = s.engine_for(principal.as_deref())?;
    let Query(params) = params.map_err(|e| ApiError::bad_param("query", "", e.body_text()))?;
    let (as_of, rest) = as_of_clause(&params)?;
    let req = RowsRequest::parse(&rest)?;
    let format = negotiate(req.format.as_deref(), &headers)?;
    let exists = engine
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
    let clause = as_of
        .as_ref()
        .map(|a| a.clause.as_str())
        .unwrap_or_default();
    let df = engine
        .plan(&format!("SELECT * FROM {relation}{clause}"))
        .await
        .map_err(|e| match (e, &as_of) {
            (TransformError::TimeTravel(message), Some(a)) => {
                ApiError::bad_param(a.param, &a.value, message)
            }
            (e, _) => ApiError::Engine(e.to_string()),
        })?;
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
    let read = crate::audit::Read {
        principal: principal.as_deref().cloned(),
        protocol: "http",
        client: peer_of(&peer),
        action: "rows",
        tables: vec![relation.clone()],
        columns: crate::audit::columns_of(df.schema().as_arrow()),
        sql: format!("rows of {name}: {params:?}"),
    };
    let stream = ticket
        .during(df.execute_stream())
        .await?
        .map_err(|e| ApiError::Engine(e.to_string()))?;
    let stream = super::audited(&s, &read, stream).await?;
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

/// A time-travel parameter of the request, as the SQL clause it becomes.
#[derive(Debug, PartialEq)]
struct AsOf {
    /// `version` or `as_of`.
    param: &'static str,
    /// The value given.
    value: String,
    /// ` VERSION AS OF n` or ` TIMESTAMP AS OF '<RFC 3339>'`.
    clause: String,
}

/// The query string's other parameters, as (name, value) pairs in order.
type QueryPairs = Vec<(String, String)>;

/// Takes `version=N` / `as_of=TIME` out of `params`. A value that is not a version number (or a
/// time) stays a filter on a column of that name, so `version=gt.3` still filters.
fn as_of_clause(params: &[(String, String)]) -> Result<(Option<AsOf>, QueryPairs), ApiError> {
    let mut found: Option<AsOf> = None;
    let mut rest = Vec::with_capacity(params.len());
    for (key, value) in params {
        let clause = match key.as_str() {
            "version" => value
                .parse::<u64>()
                .ok()
                .map(|v| ("version", format!(" VERSION AS OF {v}"))),
            "as_of" => sluice_transform::time_travel::parse_timestamp(value)
                .map(|t| ("as_of", format!(" TIMESTAMP AS OF '{}'", t.to_rfc3339()))),
            _ => None,
        };
        match clause {
            Some((param, clause)) => {
                if let Some(first) = &found {
                    return Err(ApiError::bad_param(
                        param,
                        value,
                        format!(
                            "`{}` is given already: read one version at a time",
                            first.param
                        ),
                    ));
                }
                found = Some(AsOf {
                    param,
                    value: value.clone(),
                    clause,
                });
            }
            None => rest.push((key.clone(), value.clone())),
        }
    }
    Ok((found, rest))
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

#[cfg(test)]
#[path = "rows_tests.rs"]
mod tests;
