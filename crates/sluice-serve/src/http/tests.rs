//! End-to-end tests of the router over a real lake (`tower::ServiceExt::oneshot`, no sockets).

use std::io::Cursor;

use arrow::array::RecordBatch;
use arrow::ipc::reader::StreamReader;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Value, json};

use crate::format::Format;
use crate::test_support::{SALES_ROWS, Served};

const ROWS: &str = "/api/assets/files.sales/rows";

/// Batches as the JSON array the API would send.
fn as_json(batches: &[RecordBatch]) -> Value {
    let Some(first) = batches.first() else {
        return json!([]);
    };
    let mut enc = Format::Json.encoder(&first.schema()).unwrap();
    let mut out = Vec::new();
    for b in batches {
        out.extend(enc.batch(b).unwrap());
    }
    out.extend(enc.finish().unwrap());
    serde_json::from_slice(&out).unwrap()
}

fn arrow_batches(body: &[u8]) -> Vec<RecordBatch> {
    StreamReader::try_new(Cursor::new(body.to_vec()), None)
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

fn parquet_batches(body: axum::body::Bytes) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(body)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

fn ids(rows: &Value) -> Vec<i64> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r["sale_id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn rows_default_to_a_json_page_of_100_with_explicit_nulls() {
    let s = Served::new().await;
    let r = s.get(ROWS, "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.content_type(), "application/json");
    let rows = r.json();
    assert_eq!(rows.as_array().unwrap().len(), 100);
    let with_null = s.get(&format!("{ROWS}?sale_id=eq.10"), "").await.json();
    assert_eq!(
        with_null,
        json!([{"sale_id": 10, "region": null, "amount": 5.0, "sold_on": "2022-01-18"}])
    );
}

#[tokio::test]
async fn every_format_carries_the_same_rows() {
    let s = Served::new().await;
    let q = format!("{ROWS}?order=sale_id&limit={SALES_ROWS}");
    let json_rows = s.get(&q, "application/json").await.json();
    assert_eq!(json_rows.as_array().unwrap().len(), SALES_ROWS as usize);

    let arrow = s.get(&format!("{q}&format=arrow"), "").await;
    assert_eq!(arrow.content_type(), "application/vnd.apache.arrow.stream");
    assert!(arrow.chunks > 1, "the IPC stream goes out batch by batch");
    assert_eq!(as_json(&arrow_batches(&arrow.body)), json_rows);

    let parquet = s.get(&q, "application/vnd.apache.parquet").await;
    assert_eq!(parquet.content_type(), "application/vnd.apache.parquet");
    assert_eq!(as_json(&parquet_batches(parquet.body)), json_rows);

    let ndjson = s.get(&format!("{q}&format=ndjson"), "").await;
    assert_eq!(ndjson.content_type(), "application/x-ndjson");
    let lines: Vec<Value> = ndjson
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(Value::Array(lines), json_rows);

    let csv = s.get(&q, "text/csv").await;
    assert!(csv.content_type().starts_with("text/csv"));
    let text = csv.text();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("sale_id,region,amount,sold_on"));
    assert_eq!(lines.next(), Some("1,south,0.5,2022-01-09"));
    assert_eq!(lines.count(), SALES_ROWS as usize - 1);
}

#[tokio::test]
async fn accept_q_values_choose_and_unsupported_formats_are_406() {
    let s = Served::new().await;
    let r = s
        .get(
            ROWS,
            "application/json;q=0.4, application/vnd.apache.arrow.stream;q=0.9",
        )
        .await;
    assert_eq!(r.content_type(), "application/vnd.apache.arrow.stream");
    let r = s.get(&format!("{ROWS}?format=xlsx"), "").await;
    assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE);
    let err = r.json();
    assert!(err["error"].as_str().unwrap().contains("`xlsx`"), "{err}");
    assert_eq!(
        err["supported"],
        json!(["json", "ndjson", "csv", "arrow", "parquet"])
    );
    let r = s.get(ROWS, "application/xml").await;
    assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(r.content_type(), "application/json");
    let r = s.sql("?format=csv", "select make_array(1, 2) as l").await;
    assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE, "{}", r.text());
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("cannot encode as csv")
    );
}

#[tokio::test]
async fn filters_projection_order_and_paging() {
    let s = Served::new().await;
    let r = s
        .get(
            &format!("{ROWS}?columns=sale_id,amount&region=eq.north&amount=gt.100&order=amount.desc&limit=5"),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let rows = r.json();
    let expected: Vec<i64> = (1..=SALES_ROWS)
        .rev()
        .filter(|i| i % 3 == 0 && i % 10 != 0 && i % 7 != 0 && *i > 200)
        .take(5)
        .collect();
    assert_eq!(ids(&rows), expected);
    let csv = s
        .get(
            &format!("{ROWS}?columns=amount,sale_id&limit=1&order=sale_id"),
            "text/csv",
        )
        .await;
    assert_eq!(csv.text(), "amount,sale_id\n0.5,1\n");

    let page = s
        .get(&format!("{ROWS}?order=sale_id&limit=10&offset=10"), "")
        .await
        .json();
    assert_eq!(ids(&page), (11..=20).collect::<Vec<_>>());

    // Keyset paging by hand, and typed filters on dates, null tests and lists.
    let next = s
        .get(&format!("{ROWS}?order=sale_id&limit=3&sale_id=gt.2497"), "")
        .await;
    assert_eq!(ids(&next.json()), [2498, 2499, 2500]);
    let dated = s
        .get(&format!("{ROWS}?sold_on=eq.2022-01-08&limit=1000"), "")
        .await
        .json();
    assert_eq!(dated.as_array().unwrap().len(), (SALES_ROWS / 30) as usize);
    let nulls = s
        .get(
            &format!("{ROWS}?region=is.null&limit=1000&columns=region"),
            "",
        )
        .await
        .json();
    assert_eq!(nulls.as_array().unwrap().len(), (SALES_ROWS / 10) as usize);
    let listed = s
        .get(&format!("{ROWS}?sale_id=in.(3,1,2)&order=sale_id.desc"), "")
        .await
        .json();
    assert_eq!(ids(&listed), [3, 2, 1]);

    // No match: still a valid document in every format.
    let none = format!("{ROWS}?region=eq.nowhere");
    assert_eq!(s.get(&none, "").await.json(), json!([]));
    assert_eq!(
        s.get(&none, "text/csv").await.text(),
        "sale_id,region,amount,sold_on\n"
    );
    let empty = s.get(&format!("{none}&format=parquet"), "").await;
    let builder = ParquetRecordBatchReaderBuilder::try_new(empty.body).unwrap();
    assert_eq!(builder.metadata().file_metadata().num_rows(), 0);
    assert_eq!(builder.schema().fields().len(), 4);
}

#[tokio::test]
async fn bad_parameters_are_400_and_unknown_things_404() {
    let s = Served::new().await;
    let r = s.get(&format!("{ROWS}?columns=sale_id,regio"), "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let err = r.json();
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("unknown column `regio`"),
        "{err}"
    );
    assert_eq!(
        err["available"],
        json!(["sale_id", "region", "amount", "sold_on"])
    );
    for q in [
        "amount=gt.lots",
        "limit=100001",
        "order=",
        "sale_id=between.1",
        "cursor=x",
    ] {
        let r = s.get(&format!("{ROWS}?{q}"), "").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}: {}", r.text());
        assert!(r.json()["error"].is_string());
    }
    let r = s.get("/api/assets/by_regon/rows", "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("did you mean `by_region`")
    );
    let r = s.get("/api/assets/unbuilt/rows", "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("sluice run --select unbuilt")
    );
    assert_eq!(
        s.get("/api/runs/nope", "").await.status,
        StatusCode::NOT_FOUND
    );
    let r = s.get("/api/runs?limit=many", "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["error"].as_str().unwrap().contains("limit"));
}

#[tokio::test]
async fn sql_streams_in_every_format_and_stays_read_only() {
    let s = Served::new().await;
    let sql = "select region, revenue from gold.by_region order by revenue";
    let json_rows = s.sql("", sql).await.json();
    assert_eq!(json_rows[0], json!({"region": null, "revenue": 1.5}));
    let arrow = s.sql("?format=arrow", sql).await;
    assert_eq!(as_json(&arrow_batches(&arrow.body)), json_rows);
    let parquet = s.sql("?format=parquet", sql).await;
    assert_eq!(as_json(&parquet_batches(parquet.body)), json_rows);

    let raw = Request::post("/api/sql?format=csv")
        .header("content-type", "application/sql")
        .body(Body::from("select count(*) as n from bronze.files__sales"))
        .unwrap();
    assert_eq!(s.send(raw).await.text(), format!("n\n{SALES_ROWS}\n"));

    assert_eq!(
        s.sql("", "drop table gold.by_region").await.status,
        StatusCode::FORBIDDEN
    );
    let r = s.sql("", "select nope from gold.by_region").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("query failed")
    );
}

#[tokio::test]
async fn a_large_result_streams_in_many_bounded_chunks() {
    let s = Served::new().await;
    let n = 300_000;
    let r = s
        .sql("?format=ndjson", &format!("select value from range({n})"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.text().lines().count(), n);
    assert!(
        r.chunks >= 20,
        "one chunk per engine batch, got {}",
        r.chunks
    );
    assert!(
        r.body.len() / r.chunks < 512 * 1024,
        "chunks stay batch-sized"
    );
}

#[tokio::test]
async fn every_route_answers_its_method_and_the_openapi_document_lists_it() {
    let s = Served::new().await;
    let doc = s.get("/api/openapi.json", "").await.json();
    assert_eq!(doc["openapi"], "3.1.0");
    for (method, path, _) in crate::http::routes() {
        assert!(
            doc["paths"][path][method.to_lowercase()].is_object(),
            "{method} {path} is not in the OpenAPI document"
        );
        let uri = if path.starts_with("/api/dashboards") {
            path.replace("{name}", "sales").replace("{index}", "1")
        } else {
            path.replace("{name}", "by_region")
                .replace("{id}", "r1")
                .replace("{column}", "revenue")
        };
        let body = if path == "/api/runs" {
            r#"{"select": "by_region"}"#
        } else {
            r#"{"sql": "select 1 as one"}"#
        };
        let req = Request::builder()
            .method(method)
            .uri(&uri)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let r = s.send(req).await;
        // Starting a run answers 202 Accepted; everything else 200, but cancelling or retrying the
        // fixture's run, which finished with success: 409 from the handler.
        let control = path.ends_with("/cancel") || path.ends_with("/retry");
        // The fixture has no time-partitioned model: a backfill is a 400 and an unknown one a 404
        // (crates/sluice/tests/backfill.rs runs them for real).
        let backfill = path.starts_with("/api/backfills") && r.status.is_client_error();
        // No query runs while the test does: cancelling one is a 404 (tests/hostile.rs cancels
        // a running one).
        let no_query =
            path.starts_with("/api/queries/") && r.status == axum::http::StatusCode::NOT_FOUND;
        assert!(
            r.status.is_success()
                || backfill
                || no_query
                || (control && r.status == axum::http::StatusCode::CONFLICT),
            "{method} {uri}: {} {}",
            r.status,
            r.text()
        );
    }
}

#[tokio::test]
async fn metrics_report_assets_runs_checks_and_requests() {
    let s = Served::new().await;
    s.get(ROWS, "").await;
    s.get(ROWS, "").await;
    s.get("/api/runs/nope", "").await;
    s.get("/no/such/route", "").await;
    let r = s.get("/metrics", "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.content_type().starts_with("text/plain; version=0.0.4"));
    let text = r.text();
    for line in [
        format!(
            "sluice_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        ),
        "sluice_assets{layer=\"bronze\"} 1".to_string(),
        "sluice_assets{layer=\"gold\"} 2".to_string(),
        "sluice_assets{layer=\"silver\"} 0".to_string(),
        "sluice_runs_total{status=\"success\"} 1".to_string(),
        "sluice_runs_total{status=\"failed\"} 0".to_string(),
        "sluice_checks{status=\"fail\"} 1".to_string(),
        "sluice_checks{status=\"pass\"} 1".to_string(),
        "sluice_http_requests_total{route=\"/api/assets/{name}/rows\",status=\"200\"} 2"
            .to_string(),
        "sluice_http_requests_total{route=\"/api/runs/{id}\",status=\"404\"} 1".to_string(),
        "sluice_http_requests_total{route=\"unmatched\",status=\"404\"} 1".to_string(),
        "# TYPE sluice_http_requests_total counter".to_string(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in\n{text}"
        );
    }
}

#[test]
fn every_route_of_the_router_is_described_and_nothing_else() {
    let doc: serde_json::Value =
        serde_json::from_str(&super::openapi::document().to_string()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let described: std::collections::BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(|m| (m.to_uppercase(), p.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let routed: std::collections::BTreeSet<(String, String)> = super::routes()
        .into_iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(described, routed);
}

#[test]
fn the_document_says_which_operations_need_a_bearer_token() {
    let doc = super::openapi::document();
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if matches!(path.as_str(), "/api/health" | "/api/ready") {
                assert_eq!(op["security"], serde_json::json!([]), "{method} {path}");
                assert!(op["responses"].get("401").is_none(), "{method} {path}");
            } else {
                assert!(op["responses"]["401"].is_object(), "{method} {path}");
            }
        }
    }
}
