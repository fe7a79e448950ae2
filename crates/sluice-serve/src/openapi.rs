//! `GET /api/openapi.json`: an OpenAPI 3.1 description of every endpoint.
//!
//! Written by hand with `serde_json`: the API is small, and a derive crate would add a dependency
//! tree for what is one function. The test below checks that every route of [`crate::api::routes`]
//! is described (and nothing else), so the document cannot drift from the router.

use axum::Json;
use serde_json::{Value, json};

use crate::filter::{DEFAULT_LIMIT, MAX_LIMIT, OPERATORS};
use crate::format::Format;

/// `GET /api/openapi.json`.
pub async fn openapi() -> Json<Value> {
    Json(document())
}

/// The OpenAPI document.
pub fn document() -> Value {
    json!({
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
                ok_json("Runs.", json!({"type": "array", "items": {"type": "object"}})))},
            "/api/runs/{id}": {"get": with_errors(op("getRun", "One run with its node results and checks.",
                vec![path_param("id", "Run id.")],
                ok_json("Run detail.", json!({"type": "object"}))), &["404"])},
            "/api/lineage": {"get": op("getLineage", "The asset graph: nodes and edges.", vec![],
                ok_json("Graph.", json!({"type": "object", "properties": {
                    "nodes": {"type": "array"}, "edges": {"type": "array"}}})))},
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
    })
}

fn op(id: &str, summary: &str, parameters: Vec<Value>, responses: Value) -> Value {
    json!({"operationId": id, "summary": summary, "parameters": parameters, "responses": responses})
}

fn ok_json(description: &str, schema: Value) -> Value {
    json!({"200": {"description": description, "content": {"application/json": {"schema": schema}}}})
}

/// Adds the JSON error responses `codes` to an operation.
fn with_errors(mut operation: Value, codes: &[&str]) -> Value {
    for code in codes {
        let description = match *code {
            "400" => "A bad parameter, filter value or query.",
            "403" => "A write, DDL or file-reading function was refused.",
            "404" => "No such asset (or its table is not built yet) or run.",
            "406" => "The requested format is not supported (the body lists the supported ones).",
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

fn name_param() -> Value {
    path_param(
        "name",
        "Asset name: a model (`daily_sales`) or a source table (`shop.orders`).",
    )
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
    fn every_route_of_the_router_is_described_and_nothing_else() {
        let doc: Value = serde_json::from_str(&document().to_string()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        let described: BTreeSet<(String, String)> = paths
            .iter()
            .flat_map(|(p, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .map(|m| (m.to_uppercase(), p.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let routed: BTreeSet<(String, String)> = crate::api::routes()
            .into_iter()
            .map(|(m, p, _)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(described, routed);
    }

    #[test]
    fn operations_are_well_formed() {
        let doc = document();
        let mut ids = BTreeSet::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap();
                assert!(ids.insert(id.to_string()), "duplicate operationId {id}");
                assert!(op["responses"]["200"].is_object(), "{method} {path}");
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
