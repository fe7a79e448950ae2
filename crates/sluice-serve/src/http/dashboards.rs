//! Dashboards over HTTP: `GET /api/dashboards`, `GET /api/dashboards/{name}` and
//! `GET /api/dashboards/{name}/charts/{index}` (one chart's data over a time range).
//!
//! A chart's query is built here from its definition (`sluice_core::dashboard`): the asset's relation
//! (or the chart's own SQL as a subquery), the dashboard's time filter, and a `GROUP BY` of `x` and
//! `series` with the chart's aggregation of each `y`. Column names were checked to be plain
//! identifiers when the project loaded and are quoted here; time bounds from the request are checked
//! to be dates or timestamps before they reach SQL.

use arrow::array::RecordBatch;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_core::dashboard::{Aggregation, Chart, ChartKind, Dashboard, RangeAnchor, TimeRange};

use crate::app::AppState;
use crate::error::ApiError;
use crate::format::Format;

/// Rows a table chart shows when its `limit` is not set.
pub const DEFAULT_TABLE_ROWS: usize = 50;

/// Points a line or bar chart returns at most (a guard against a chart over a huge, ungrouped table).
pub const MAX_POINTS: usize = 5_000;

/// `GET /api/dashboards`: every dashboard's name, title, description and chart count.
pub async fn list(State(s): State<AppState>) -> Json<Value> {
    let list: Vec<Value> = s
        .compiled
        .project
        .dashboards
        .iter()
        .map(|d| {
            json!({"name": d.name, "title": d.title, "description": d.description,
                "charts": d.charts.len(), "refresh_seconds": d.refresh_seconds})
        })
        .collect();
    Json(json!(list))
}

/// `GET /api/dashboards/{name}`: the definition.
pub async fn get(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(find(&s, &name)?)))
}

/// Query parameters of a chart's data.
#[derive(Debug, Default, Deserialize)]
pub struct RangeQuery {
    /// A duration counted back from the anchor (`7d`, `12w`), or `all`.
    pub range: Option<String>,
    /// First date or timestamp (inclusive); with `to`, replaces `range`.
    pub from: Option<String>,
    /// Last date (inclusive) or timestamp (exclusive).
    pub to: Option<String>,
}

/// `GET /api/dashboards/{name}/charts/{index}`: the chart's rows over the time range.
pub async fn chart_data(
    State(s): State<AppState>,
    Path((name, index)): Path<(String, String)>,
    q: Result<Query<RangeQuery>, QueryRejection>,
    principal: Option<axum::Extension<crate::auth::Principal>>,
) -> Result<Json<Value>, ApiError> {
    // Charts read through the principal's catalog: its grants, masks and row filters hold.
    let engine = s.engine_for(principal.as_deref())?;
    let Query(q) = q.map_err(|e| ApiError::bad_param("query", "", e.body_text()))?;
    let dashboard = find(&s, &name)?;
    let chart = index
        .parse::<usize>()
        .ok()
        .and_then(|i| dashboard.charts.get(i))
        .ok_or_else(|| ApiError::UnknownChart {
            dashboard: name.clone(),
            index: index.clone(),
            count: dashboard.charts.len(),
        })?;
    let from = match (&chart.asset, &chart.sql) {
        (Some(asset), _) => {
            let relation = s.relation_of(asset)?;
            s.check_readable(principal.as_deref(), &relation)?;
            relation
        }
        (None, Some(sql)) => format!("({sql}) AS chart_source"),
        (None, None) => return Err(ApiError::BadBody("chart has no asset or sql".into())),
    };
    // The time range applies to charts whose table has the column (a chart over a dimension table
    // shows all of it); the response's `range` is null when it did not apply.
    let time_range = match &dashboard.time_range {
        Some(tr)
            if columns_of(&engine, &from, chart)
                .await?
                .contains(&tr.column) =>
        {
            Some(tr)
        }
        _ => None,
    };
    let filter = time_filter(time_range, &q, &from)?;
    let sql = chart_sql(chart, &from, filter.as_deref());
    tracing::debug!(dashboard = %name, chart = %index, %sql, "chart query");
    // A chart is a query like any other: a slot, the statement timeout, listed in /api/queries.
    let ticket = s
        .queries
        .admit(
            "http",
            String::new(),
            &format!("chart {index} of {name}: {sql}"),
            None,
        )
        .await?;
    let df = ticket
        .during(engine.plan(&sql))
        .await?
        .map_err(ApiError::from_user_sql)?;
    let read = crate::audit::Read {
        principal: principal.as_deref().cloned(),
        protocol: "http",
        client: String::new(),
        action: "chart",
        tables: crate::audit::tables_of_plan(df.logical_plan()),
        columns: crate::audit::columns_of(df.schema().as_arrow()),
        sql: sql.clone(),
    };
    let stream = ticket
        .during(df.execute_stream())
        .await?
        .map_err(|e| ApiError::Query(e.to_string()))?;
    let stream = super::audited(&s, &read, stream).await?;
    let batches: Vec<RecordBatch> = futures::TryStreamExt::try_collect(stream)
        .await
        .map_err(|e| ApiError::Query(e.to_string()))?;
    let rows = batches_json(&batches)?;
    let columns: Vec<String> = batches
        .first()
        .map(|b| {
            b.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect()
        })
        .unwrap_or_default();
    Ok(Json(json!({
        "dashboard": name,
        "index": index,
        "chart": chart,
        "range": range_text(time_range, &q),
        "columns": columns,
        "rows": rows,
        "sql": sql,
    })))
}

/// The columns of a chart's source; an asset that is not built yet is a 404 saying how to build it.
async fn columns_of(
    engine: &sluice_transform::Engine,
    from: &str,
    chart: &Chart,
) -> Result<Vec<String>, ApiError> {
    let df = engine
        .plan(&format!("SELECT * FROM {from} LIMIT 0"))
        .await
        .map_err(|e| match &chart.asset {
            Some(asset) => {
                tracing::debug!(%asset, error = %e, "chart source not readable");
                ApiError::NotBuilt {
                    name: asset.clone(),
                }
            }
            None => ApiError::from_user_sql(e),
        })?;
    Ok(df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect())
}

fn find<'a>(s: &'a AppState, name: &str) -> Result<&'a Dashboard, ApiError> {
    let dashboards = &s.compiled.project.dashboards;
    dashboards
        .iter()
        .find(|d| d.name == name)
        .ok_or_else(|| ApiError::UnknownDashboard {
            name: name.to_string(),
            hint: sluice_core::graph::suggest(name, dashboards.iter().map(|d| d.name.as_str()))
                .map(|h| format!(" (did you mean `{h}`?)"))
                .unwrap_or_default(),
        })
}

/// The range the response reports: explicit bounds, or the relative range.
fn range_text(tr: Option<&TimeRange>, q: &RangeQuery) -> Value {
    match tr {
        None => json!(null),
        Some(tr) => json!({
            "column": tr.column,
            "range": q.range.clone().unwrap_or_else(|| tr.default.clone()),
            "from": q.from, "to": q.to, "anchor": tr.anchor,
        }),
    }
}

/// The SQL condition of the time range, or `None` for all time.
pub fn time_filter(
    tr: Option<&TimeRange>,
    q: &RangeQuery,
    from_clause: &str,
) -> Result<Option<String>, ApiError> {
    let Some(tr) = tr else {
        return Ok(None);
    };
    let col = format!("CAST({} AS TIMESTAMP)", quote(&tr.column));
    if q.from.is_some() || q.to.is_some() {
        let mut parts = Vec::new();
        if let Some(f) = &q.from {
            check_time("from", f)?;
            parts.push(format!("{col} >= CAST('{f}' AS TIMESTAMP)"));
        }
        if let Some(t) = &q.to {
            check_time("to", t)?;
            // A plain date includes its whole day.
            if t.len() == 10 {
                parts.push(format!(
                    "{col} < CAST('{t}' AS TIMESTAMP) + INTERVAL '1 day'"
                ));
            } else {
                parts.push(format!("{col} < CAST('{t}' AS TIMESTAMP)"));
            }
        }
        return Ok(Some(parts.join(" AND ")));
    }
    let range = q.range.as_deref().unwrap_or(&tr.default);
    if range == "all" {
        return Ok(None);
    }
    let span = sluice_core::duration::parse_duration(range)
        .map_err(|e| ApiError::bad_param("range", range, format!("{e}, or `all`")))?;
    let secs = span.as_secs().max(1);
    let end = match tr.anchor {
        RangeAnchor::Latest => format!("(SELECT max({col}) FROM {from_clause})"),
        RangeAnchor::Now => "CAST(now() AS TIMESTAMP)".to_string(),
    };
    Ok(Some(format!("{col} > {end} - INTERVAL '{secs} seconds'")))
}

/// A date (`2024-03-01`) or an RFC 3339-like timestamp; nothing else reaches SQL.
fn check_time(param: &str, value: &str) -> Result<(), ApiError> {
    let ok = value.len() >= 10
        && value.len() <= 35
        && value.as_bytes()[..10].iter().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                *b == b'-'
            } else {
                b.is_ascii_digit()
            }
        })
        && value[10..]
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, 'T' | ' ' | ':' | '.' | 'Z' | '+' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_param(
            param,
            value,
            "a date `YYYY-MM-DD` or a timestamp `YYYY-MM-DDTHH:MM:SSZ`",
        ))
    }
}

/// `"name"` with inner quotes doubled.
fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// The query of one chart.
pub fn chart_sql(chart: &Chart, from: &str, filter: Option<&str>) -> String {
    let where_clause = filter.map(|f| format!(" WHERE {f}")).unwrap_or_default();
    let y = chart.y.list();
    let keys: Vec<String> = chart
        .x
        .iter()
        .chain(chart.series.iter())
        .map(|c| quote(c))
        .collect();
    let values: Vec<String> = match chart.agg.sql_function() {
        Some(f) => y
            .iter()
            .map(|c| format!("{f}({q}) AS {q}", q = quote(c)))
            .collect(),
        None => y.iter().map(|c| quote(c)).collect(),
    };
    if chart.kind == ChartKind::Number {
        return format!("SELECT {} FROM {from}{where_clause}", values.join(", "));
    }
    if keys.is_empty() && values.is_empty() {
        // A table with no columns named: the rows as they are.
        let limit = chart.limit.unwrap_or(DEFAULT_TABLE_ROWS);
        return format!("SELECT * FROM {from}{where_clause} LIMIT {limit}");
    }
    let select: Vec<String> = keys.iter().cloned().chain(values).collect();
    let group_by = if chart.agg != Aggregation::None && !keys.is_empty() {
        format!(" GROUP BY {}", keys.join(", "))
    } else {
        String::new()
    };
    let (order, limit) = if chart.kind == ChartKind::Table {
        // Newest (or last) first on the first key; the other keys in order inside it.
        let order = match keys.split_first() {
            Some((first, rest)) => std::iter::once(format!("{first} DESC"))
                .chain(rest.iter().cloned())
                .collect::<Vec<_>>()
                .join(", "),
            None => String::new(),
        };
        let order = if order.is_empty() {
            order
        } else {
            format!(" ORDER BY {order}")
        };
        (order, chart.limit.unwrap_or(DEFAULT_TABLE_ROWS))
    } else {
        (format!(" ORDER BY {}", keys.join(", ")), MAX_POINTS)
    };
    format!(
        "SELECT {} FROM {from}{where_clause}{group_by}{order} LIMIT {limit}",
        select.join(", ")
    )
}

/// Batches as JSON row objects (dates as `YYYY-MM-DD`, nulls as `null`).
pub fn batches_json(batches: &[RecordBatch]) -> Result<Vec<Value>, ApiError> {
    let Some(first) = batches.first() else {
        return Ok(Vec::new());
    };
    let mut enc = Format::Json
        .encoder(&first.schema())
        .map_err(|e| ApiError::Engine(e.to_string()))?;
    let mut out = Vec::new();
    for b in batches {
        out.extend(enc.batch(b).map_err(|e| ApiError::Engine(e.to_string()))?);
    }
    out.extend(enc.finish().map_err(|e| ApiError::Engine(e.to_string()))?);
    serde_json::from_slice(&out).map_err(|e| ApiError::Engine(e.to_string()))
}

#[cfg(test)]
#[path = "dashboards_tests.rs"]
mod tests;
