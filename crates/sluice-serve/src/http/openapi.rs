//! `GET /api/openapi.json`: an OpenAPI 3.1 description of every endpoint.
//!
//! Written by hand with `serde_json`: the API is small, and a derive crate would add a dependency
//! tree for what is one function. A test of the router (`http/tests.rs`) checks that every route of
//! [`super::routes`] is described (and nothing else), so the document cannot drift from the router.

use axum::Json;
use serde_json::{Value, json};

use crate::format::Format;
use crate::query::filter::{DEFAULT_LIMIT, MAX_LIMIT, OPERATORS};

/// `GET /api/openapi.json`.
pub async fn openapi() -> Json<Value> {
    Json(document())
}

/// The OpenAPI document.
pub fn document() -> Value {
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Sluice API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Assets, rows, SQL, runs and lineage of a Sluice project. Query results \
                stream in JSON, NDJSON, CSV, Arrow IPC or Parquet, chosen by `?format=` or `Accept`. \
                See docs/http-api.md.",
        },
        "paths": {
            "/api/health": {"get": op("health", "Liveness and version.", vec![],
                ok_json("`{\"status\": \"ok\", \"version\": ...}`", json!({"type": "object"})))},
            "/api/ready": {"get": ready_op()},
            "/api/assets": {"get": op("listAssets", "Every asset with its state.", vec![],
                ok_json("Asset states.", json!({"type": "array", "items": {"$ref": "#/components/schemas/AssetStatus"}})))},
            "/api/assets/{name}": {"get": with_errors(op("getAsset",
                "One asset: state, columns, recent runs, latest checks, SQL.",
                vec![name_param()],
                ok_json("Asset detail.", json!({"type": "object"}))), &["404"])},
            "/api/assets/{name}/rows": {"get": with_errors(op("getAssetRows",
                "Rows of an asset's table, streamed. Any other query parameter is a filter \
                 `<column>=<op>.<value>`.",
                rows_params(),
                ok_rows()), &["400", "404", "406", "500"])},
            "/api/sql": {"post": with_errors(sql_op(), &["400", "403", "406"])},
            "/api/runs": {"get": op("listRuns", "Recent runs, newest first.",
                vec![query_param("limit", "Runs to return.", json!({"type": "integer", "minimum": 0, "default": 50}))],
                ok_json("Runs.", json!({"type": "array", "items": {"type": "object"}}))),
                "post": start_run_op()},
            "/api/freshness": {"get": op("listFreshness",
                "Every asset's owner, last new data, freshness SLA (`warn_after`, `error_after`), state \
                 (`fresh`, `warn`, `error`, `no_data`, `no_sla`) and open incidents. See docs/alerts.md.",
                vec![], ok_json("Asset freshness.", json!({"type": "array", "items": {"type": "object",
                    "properties": {"asset": {"type": "string"}, "owner": {"type": ["string", "null"]},
                        "last_updated": {"type": ["string", "null"]}, "state": {"type": "string"},
                        "open_incidents": {"type": "array", "items": {"type": "object"}}}}})))},
            "/api/checks": {"get": op("listChecks",
                "The latest result of every check, fail first, with failing-row samples.", vec![],
                ok_json("`{\"summary\": {\"pass\", \"warn\", \"fail\"}, \"checks\": [...]}`",
                    json!({"type": "object", "properties": {"summary": {"type": "object"},
                        "checks": {"type": "array", "items": {"type": "object"}}}})))},
            "/api/assets/{name}/partitions": {"get": with_errors(op("getAssetPartitions",
                "An asset's partitions (source tables: `_ingest_date`; models: `partition_by`) with \
                 their row counts, newest first.",
                vec![name_param()],
                ok_json("`{\"columns\": [...], \"partitions\": [{<column>: value, \"rows\": n}]}`",
                    json!({"type": "object"}))), &["404"])},
            "/api/dashboards": {"get": op("listDashboards", "Every dashboard of `dashboards/*.yml`.",
                vec![], ok_json("Dashboards: name, title, description, charts, refresh_seconds.",
                    json!({"type": "array", "items": {"type": "object"}})))},
            "/api/dashboards/{name}": {"get": with_errors(op("getDashboard",
                "One dashboard's definition: title, refresh, time range, charts.",
                vec![path_param("name", "Dashboard name (its file name).")],
                ok_json("Dashboard.", json!({"type": "object"}))), &["404"])},
            "/api/dashboards/{name}/charts/{index}": {"get": with_errors(op("getChartData",
                "One chart's rows over a time range: the chart's query (group by x and series, \
                 aggregate y) with the dashboard's time filter.",
                vec![path_param("name", "Dashboard name."), path_param("index", "Chart index, from 0."),
                    query_param("range", "Duration back from the anchor (`7d`, `12w`) or `all`; \
                        default: the dashboard's `time_range.default`.", json!({"type": "string"})),
                    query_param("from", "First date/timestamp (inclusive); overrides `range`.",
                        json!({"type": "string"})),
                    query_param("to", "Last date (inclusive) or timestamp (exclusive).",
                        json!({"type": "string"}))],
                ok_json("`{\"chart\", \"range\", \"columns\", \"rows\", \"sql\"}`",
                    json!({"type": "object"}))), &["400", "404"])},
            "/api/runs/{id}": {"get": with_errors(op("getRun", "One run with its node results and checks.",
                vec![path_param("id", "Run id.")],
                ok_json("Run detail.", json!({"type": "object"}))), &["404"])},
            "/api/runs/{id}/cancel": {"post": with_errors(op("cancelRun",
                "Asks a running run to stop (also one started by another process): running nodes \
                 stop, no new ones start.",
                vec![path_param("id", "Run id.")],
                json!({"202": {"description": "Cancel requested: `{\"run_id\": \"...\", \"cancel_requested\": true}`."}})),
                &["404", "409"])},
            "/api/runs/{id}/retry": {"post": with_errors(op("retryRun",
                "Starts a run of the nodes that did not succeed in this run (failed, skipped, \
                 cancelled): its failures and their downstream.",
                vec![path_param("id", "Run id.")],
                json!({"202": {"description": "Started: `{\"run_id\", \"url\", \"retry_of\", \"nodes\"}`.",
                    "content": {"application/json": {"schema": {"type": "object", "properties": {
                        "run_id": {"type": "string"}, "url": {"type": "string"},
                        "retry_of": {"type": "string"},
                        "nodes": {"type": "array", "items": {"type": "string"}}}}}}}})),
                &["404", "409", "500"])},
            "/api/schedules": {"get": op("listSchedules",
                "Every asset that starts by itself (a schedule, an upstream change, a file \
                 arrival), with its trigger, next tick and missed ticks.",
                vec![],
                ok_json("Schedules.", json!({"type": "object", "properties": {
                    "now": {"type": "string"},
                    "schedules": {"type": "array", "items": {"type": "object", "properties": {
                        "asset": {"type": "string"}, "trigger": {"type": "string"},
                        "next_tick": {"type": ["string", "null"]},
                        "missed": {"type": "integer"}}}}}})))},
            "/api/lineage": {"get": op("getLineage", "The asset graph: nodes and edges.", vec![],
                ok_json("Graph.", json!({"type": "object", "properties": {
                    "nodes": {"type": "array"}, "edges": {"type": "array"}}})))},
            "/api/queries": {"get": op("listQueries",
                "The queries running now (HTTP and PostgreSQL wire): id, protocol, client, SQL, \
                 elapsed and remaining time; and the server's query limits.",
                vec![],
                ok_json("Running queries.", json!({"type": "object", "properties": {
                    "queries": {"type": "array", "items": {"type": "object", "properties": {
                        "id": {"type": "integer"}, "protocol": {"type": "string"},
                        "peer": {"type": "string"}, "sql": {"type": "string"},
                        "started_at": {"type": "string"}, "elapsed_ms": {"type": "integer"},
                        "timeout_ms": {"type": "integer"}}}},
                    "limits": {"type": "object"}}})))},
            "/api/queries/{id}/cancel": {"post": with_errors(op("cancelQuery",
                "Cancels a running query: it stops within a second and its client gets an error.",
                vec![path_param("id", "Query id (from GET /api/queries).")],
                json!({"202": {"description": "Cancelled: `{\"cancelled\": id}`."}})),
                &["404"])},
            "/api/audit": {"get": with_errors(op("getAudit",
                "The audit log (admins): every read (who, when, tables, columns, rows, query text \
                 and hash, client, protocol), write (runs, commits) and administrative change, \
                 oldest first. `format=ndjson` exports it one record per line. See docs/security.md.",
                vec![
                    query_param("after", "Records after this sequence number.", json!({"type": "integer", "default": 0})),
                    query_param("limit", "Records to return.", json!({"type": "integer", "minimum": 0, "default": 1000, "maximum": 10000})),
                    query_param("format", "`json` or `ndjson`.", json!({"type": "string", "enum": ["json", "ndjson"]})),
                ],
                ok_json("`{\"records\": [...], \"next_after\": seq}`", json!({"type": "object"}))),
                &["400", "403"])},
            "/api/openapi.json": {"get": op("getOpenApi", "This document.", vec![],
                ok_json("OpenAPI 3.1 document.", json!({"type": "object"})))},
            "/metrics": {"get": op("getMetrics", "Prometheus metrics: sluice_build_info, sluice_assets, \
                sluice_runs_total, sluice_checks, sluice_http_requests_total.", vec![],
                json!({"200": {"description": "Prometheus text format 0.0.4.",
                    "content": {"text/plain": {"schema": {"type": "string"}}}}}))},
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {"type": "string", "description": "What went wrong and what was expected."},
                        "supported": {"type": "array", "items": {"type": "string"},
                            "description": "With 406: the supported format names."},
                        "media_types": {"type": "array", "items": {"type": "string"},
                            "description": "With 406: the supported media types."},
                        "available": {"type": "array", "items": {"type": "string"},
                            "description": "With an unknown column: the table's columns."},
                    },
                },
                "AssetStatus": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"}, "kind": {"enum": ["source", "model"]},
                        "layer": {"enum": ["bronze", "silver", "gold"]}, "relation": {"type": "string"},
                        "materialized": {"type": ["string", "null"]}, "description": {"type": ["string", "null"]},
                        "owner": {"type": ["string", "null"]}, "rows": {"type": ["integer", "null"]},
                        "last_success_at": {"type": ["string", "null"]},
                        "state": {"enum": ["fresh", "stale", "failed", "never built"]},
                        "failing_checks": {"type": "array", "items": {"type": "string"}},
                        "upstream": {"type": "array", "items": {"type": "string"}},
                        "downstream": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "SqlRequest": {
                    "type": "object", "required": ["sql"],
                    "properties": {"sql": {"type": "string", "description": "One read-only query."}},
                },
            },
        },
    });
    // Routes described next to their handlers.
    doc["paths"]["/api/assets/{name}/history"] = json!({"get": history_op()});
    let [asset_columns, column] = column_lineage_ops();
    doc["paths"]["/api/lineage/columns/{name}"] = json!({"get": asset_columns});
    doc["paths"]["/api/lineage/columns/{name}/{column}"] = json!({"get": column});
    for (path, operations) in super::backfills::openapi_paths() {
        doc["paths"][path] = operations;
    }
    with_security(&mut doc);
    doc
}

/// The bearer token of docs/security.md: required (when authentication is on) on every operation
/// but the probes, which answer 401 without it; `{}` in the top-level list says that a server in
/// development mode needs none.
fn with_security(doc: &mut Value) {
    doc["components"]["securitySchemes"] = json!({"bearerAuth": {
        "type": "http", "scheme": "bearer",
        "description": "An API token (`sluice auth token create`); required once the server's \
            state holds a token or with `serve.auth: required`. See docs/security.md."}});
    doc["security"] = json!([{"bearerAuth": []}, {}]);
    let unauthorized = json!({"description": "No bearer token, or one that is unknown, expired \
        or revoked (with `WWW-Authenticate: Bearer`).",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let probe = matches!(path.as_str(), "/api/health" | "/api/ready");
            if let Some(operations) = item.as_object_mut() {
                for operation in operations.values_mut() {
                    if probe {
                        operation["security"] = json!([]);
                    } else {
                        operation["responses"]["401"] = unauthorized.clone();
                    }
                }
            }
        }
    }
}

fn op(id: &str, summary: &str, parameters: Vec<Value>, responses: Value) -> Value {
    json!({"operationId": id, "summary": summary, "parameters": parameters, "responses": responses})
}

fn ok_json(description: &str, schema: Value) -> Value {
    json!({"200": {"description": description, "content": {"application/json": {"schema": schema}}}})
}

/// Adds the JSON error responses `codes` to an operation.
/// `GET /api/ready`: 200 and 503 share one body, naming each check.
fn ready_op() -> Value {
    let body = json!({"type": "object", "properties": {
        "status": {"type": "string", "enum": ["ready", "not_ready"]},
        "checks": {"type": "object", "additionalProperties": {"type": "object",
            "properties": {"ok": {"type": "boolean"}, "error": {"type": "string"}}}}}});
    let mut operation = op(
        "ready",
        "Readiness: 200 when the state database and the lake answer, 503 naming the failed check.",
        vec![],
        ok_json(
            "`{\"status\": \"ready\", \"checks\": {\"state\": {\"ok\": true}, ...}}`",
            body.clone(),
        ),
    );
    operation["responses"]["503"] = json!({"description": "A check failed; the body names it.",
        "content": {"application/json": {"schema": body}}});
    operation
}

fn with_errors(mut operation: Value, codes: &[&str]) -> Value {
    for code in codes {
        let description = match *code {
            "400" => "A bad parameter, filter value or query.",
            "403" => {
                "A write, DDL or file-reading function was refused, or the role may not read the table (access.yml)."
            }
            "404" => "No such asset (or its table is not built yet), run, dashboard or chart.",
            "406" => "The requested format is not supported (the body lists the supported ones).",
            "409" => {
                "The run is not in a state for this (finished, still running, nothing to retry)."
            }
            _ => "The server failed.",
        };
        operation["responses"][*code] = json!({"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    }
    operation
}

/// The 200 response of a streamed query result in every format.
fn ok_rows() -> Value {
    let mut content = serde_json::Map::new();
    for f in Format::ALL {
        let schema = match f {
            Format::Json => json!({"type": "array", "items": {"type": "object"}}),
            Format::Ndjson | Format::Csv => json!({"type": "string"}),
            Format::Arrow | Format::Parquet => {
                json!({"type": "string", "contentMediaType": f.media_type()})
            }
        };
        content.insert(f.media_type().to_string(), json!({"schema": schema}));
    }
    json!({"200": {"description": "The rows, streamed batch by batch (chunked). A failure after the \
        first byte ends the body early without the final chunk.", "content": content}})
}

fn format_param() -> Value {
    query_param(
        "format",
        "Response format; overrides `Accept`. Unsupported: 406.",
        json!({"enum": Format::ALL.map(Format::name)}),
    )
}

/// `GET /api/assets/{name}/history` (added after the document's `json!`, which is at the macro
/// recursion limit).
fn history_op() -> Value {
    let version = json!({"type": "object", "properties": {
        "version": {"type": "integer"}, "timestamp": {"type": ["string", "null"]},
        "operation": {"type": ["string", "null"]}, "run_id": {"type": ["string", "null"]},
        "rows_added": {"type": ["integer", "null"]}, "rows_removed": {"type": ["integer", "null"]},
        "rows_total": {"type": ["integer", "null"]},
        "restored_version": {"type": ["integer", "null"]}}});
    with_errors(
        op(
            "getAssetHistory",
            "The versions of an asset's table, newest first: commit time, Delta operation, the run \
             that made it, rows added, removed and total (from the Delta log). Read one with \
             `?version=` on the rows endpoint or `VERSION AS OF` in SQL. See docs/time-travel.md.",
            vec![
                name_param(),
                query_param(
                    "limit",
                    "Versions to return.",
                    json!({"type": "integer", "minimum": 0, "default": super::history::DEFAULT_VERSIONS}),
                ),
            ],
            ok_json(
                "`{\"asset\", \"table\", \"versions\": [...]}`",
                json!({"type": "object", "properties": {"asset": {"type": "string"},
                    "table": {"type": "string"}, "versions": {"type": "array", "items": version}}}),
            ),
        ),
        &["400", "404"],
    )
}

fn rows_params() -> Vec<Value> {
    vec![
        name_param(),
        format_param(),
        query_param(
            "columns",
            "Comma-separated columns to return, in order. Unknown: 400 listing the available ones.",
            json!({"type": "string"}),
        ),
        query_param(
            "order",
            "`col[.asc|.desc][.nullsfirst|.nullslast]`, comma-separated.",
            json!({"type": "string"}),
        ),
        query_param(
            "limit",
            "Rows to return.",
            json!({"type": "integer", "minimum": 0, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}),
        ),
        query_param(
            "offset",
            "Rows to skip.",
            json!({"type": "integer", "minimum": 0, "default": 0}),
        ),
        query_param(
            "version",
            "Time travel: read the asset as of this version (`GET /api/assets/{name}/history` lists \
             them). A value that is not a number is a filter on a column `version`.",
            json!({"type": "integer", "minimum": 0}),
        ),
        query_param(
            "as_of",
            "Time travel: read the asset as of the version current at this time (`2026-01-01 10:00`, \
             UTC, or RFC 3339).",
            json!({"type": "string"}),
        ),
        query_param(
            "cursor",
            "Keyset paging: the `X-Next-Cursor` header of the previous page (same `order`, no \
             `offset`). A response to an ordered request that has more rows after its page carries \
             `X-Next-Cursor` and `Link: <next page>; rel=\"next\"`.",
            json!({"type": "string"}),
        ),
        json!({
            "name": "filters", "in": "query", "style": "form", "explode": true,
            "description": format!("Filters `<column>=<op>.<value>`, op one of {}; `not.` negates; \
                `in` takes `(a,b)`, `is` takes null|notnull|true|false, like/ilike take `*` as \
                wildcard. Keyset paging: `order=id&id=gt.<last id>`.", OPERATORS.join(", ")),
            "schema": {"type": "object", "additionalProperties": {"type": "string"}},
        }),
    ]
}

fn sql_op() -> Value {
    json!({
        "operationId": "runSql",
        "summary": "Runs one read-only SQL query over the lake (schemas bronze, silver, gold, \
            quarantine) and streams the result.",
        "parameters": [format_param()],
        "requestBody": {"required": true, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/SqlRequest"}},
            "application/sql": {"schema": {"type": "string"}},
            "text/plain": {"schema": {"type": "string"}},
        }},
        "responses": ok_rows(),
    })
}

fn start_run_op() -> Value {
    let mut operation = with_errors(
        op(
            "startRun",
            "Starts a run of a selection in the background (as `sluice run --select`); poll \
             `GET /api/runs/{id}` for its progress.",
            vec![],
            json!({"202": {"description": "Started: `{\"run_id\": \"...\", \"url\": \"/api/runs/...\"}`.",
                "content": {"application/json": {"schema": {"type": "object",
                    "properties": {"run_id": {"type": "string"}, "url": {"type": "string"}}}}}}}),
        ),
        &["400", "500"],
    );
    operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema":
        {"type": "object", "properties": {
            "select": {"type": "string", "description": "dbt's selection grammar (space = union, comma = intersection, `name+`, `+name`, `tag:x`, ...); empty: everything."},
            "exclude": {"type": "string", "description": "What to leave out, in the same grammar (as `--exclude`)."},
            "full_refresh": {"type": "boolean", "default": false}}}}}});
    operation
}

fn name_param() -> Value {
    path_param(
        "name",
        "Asset name: a model (`daily_sales`) or a source table (`shop.orders`).",
    )
}

/// `GET /api/lineage/columns/{name}` and `GET /api/lineage/columns/{name}/{column}`.
fn column_lineage_ops() -> [Value; 2] {
    let asset_columns = with_errors(
        op(
            "getColumnLineage",
            "Column lineage of an asset, from its query plan: each column with the upstream \
             columns it is computed from and the columns that read it (one step each way), each \
             with OpenLineage transformation subtypes; and the inputs that shape the whole table \
             (filters, join and grouping keys).",
            vec![path_param("name", "The asset.")],
            ok_json(
                "Columns.",
                json!({"type": "object", "properties": {
                    "asset": {"type": "string"},
                    "columns": {"type": "array", "items": {"type": "object", "properties": {
                        "name": {"type": "string"},
                        "inputs": {"type": "array", "items": edge_schema()},
                        "readers": {"type": "array", "items": edge_schema()}}}},
                    "dataset": {"type": "array", "items": edge_schema()},
                    "error": {"type": ["string", "null"]}}}),
            ),
        ),
        &["403", "404"],
    );
    let column = with_errors(
        op(
            "getColumnLineagePath",
            "The whole upstream and downstream of one column, depth first (`depth` 1 is a direct \
             input or reader).",
            vec![
                path_param("name", "The asset."),
                path_param("column", "The column."),
            ],
            ok_json(
                "Upstream and downstream.",
                json!({"type": "object", "properties": {
                    "asset": {"type": "string"}, "column": {"type": "string"},
                    "upstream": {"type": "array", "items": step_schema()},
                    "downstream": {"type": "array", "items": step_schema()},
                    "error": {"type": ["string", "null"]}}}),
            ),
        ),
        &["400", "403", "404"],
    );
    [asset_columns, column]
}

/// One input or reader of a column in the lineage endpoints.
fn edge_schema() -> Value {
    json!({"type": "object", "properties": {
        "asset": {"type": "string"}, "column": {"type": "string"},
        "transformations": {"type": "array", "items": {"type": "string", "enum": [
            "IDENTITY", "TRANSFORMATION", "AGGREGATION", "FILTER", "JOIN", "GROUP_BY", "SORT",
            "WINDOW", "CONDITIONAL"]}}}})
}

/// An [`edge_schema`] with its distance from the column asked about.
fn step_schema() -> Value {
    let mut step = edge_schema();
    step["properties"]["depth"] = json!({"type": "integer"});
    step
}

fn path_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description,
        "schema": {"type": "string"}})
}

fn query_param(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn operations_are_well_formed() {
        let doc = document();
        let mut ids = BTreeSet::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap();
                assert!(ids.insert(id.to_string()), "duplicate operationId {id}");
                let ok = &op["responses"];
                assert!(
                    ok["200"].is_object() || ok["202"].is_object(),
                    "{method} {path}"
                );
                // Every `{param}` of the path is declared as a path parameter.
                for seg in path.split('/').filter(|s| s.starts_with('{')) {
                    let name = seg.trim_matches(['{', '}']);
                    let declared = op["parameters"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|p| p["name"] == name && p["in"] == "path");
                    assert!(declared, "{method} {path} lacks {name}");
                }
            }
        }
        let rows = &doc["paths"]["/api/assets/{name}/rows"]["get"]["responses"]["200"]["content"];
        for f in Format::ALL {
            assert!(rows[f.media_type()].is_object(), "{}", f.media_type());
        }
    }
}
