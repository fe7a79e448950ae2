//! The sinks against real receivers: a local HTTP server for `webhook`, the local PostgreSQL for
//! `postgres` (127.0.0.1:5432, db `test`; under `CI=true` its absence fails the test).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde_json::Value;
use sluice_core::ExportDecl;
use sluice_sink::{ExportReport, Rows, SinkContext, SinkError, build_sink};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]))
}

/// Rows `from..to` with names `n<id>` (none for id 2), in one batch.
fn batch(from: i64, to: i64, suffix: &str) -> RecordBatch {
    let ids: Vec<i64> = (from..to).collect();
    let names: Vec<Option<String>> = ids
        .iter()
        .map(|i| (*i != 2).then(|| format!("n{i}{suffix}")))
        .collect();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(StringArray::from(names)),
        ],
    )
    .unwrap()
}

/// An export of the model `orders` with `batch_size`, its sink's fields given as YAML lines.
fn export(name: &str, batch_size: usize, sink: &str) -> ExportDecl {
    let orders = sluice_core::ModelFile {
        name: "orders".into(),
        layer: sluice_core::ModelLayer::Gold,
        path: PathBuf::from("models/gold/orders.sql"),
        sql: String::new(),
        properties: sluice_core::ModelProperties::default(),
    };
    let text = format!("asset: orders\nbatch_size: {batch_size}\n{sink}");
    ExportDecl::parse(
        &PathBuf::from(format!("exports/{name}.yml")),
        &text,
        &[],
        &[orders],
    )
    .unwrap()
}

async fn write(export: &ExportDecl, rows: Rows) -> Result<ExportReport, SinkError> {
    let sink = build_sink(export)?;
    sink.write(
        rows,
        &SinkContext {
            export,
            run_id: "run-1",
        },
    )
    .await
}

/// What the test webhook saw: (idempotency key, batch header, body) of every request.
type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

/// A webhook answering `status(n)` to the n-th request (from 1).
async fn webhook(status: fn(usize) -> u16) -> (String, Seen) {
    use axum::http::{HeaderMap, StatusCode};
    let seen: Seen = Arc::default();
    let shared = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let seen = shared.clone();
            async move {
                let header = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string()
                };
                let mut s = seen.lock().unwrap();
                s.push((header("idempotency-key"), header("x-sluice-batch"), body));
                StatusCode::from_u16(status(s.len())).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn hook_target(url: String) -> String {
    format!("kind: webhook\nurl: {url}\nretries: 2\nretry_backoff: 5ms\ntimeout: 10s\n")
}

#[tokio::test]
async fn a_webhook_gets_batches_of_batch_size_in_order_with_stable_keys() {
    let (url, seen) = webhook(|n| if n == 2 { 503 } else { 200 }).await;
    let hook = export("hook", 2, &hook_target(url));
    let rows = Rows::from_batches(schema(), vec![batch(0, 3, ""), batch(3, 5, "")]);
    let report = write(&hook, rows).await.unwrap();
    assert_eq!(
        report,
        ExportReport {
            rows_read: 5,
            rows_written: 5,
            batches: 3
        }
    );
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.len(),
        4,
        "three batches, the second one sent twice after a 503"
    );
    assert_eq!(seen[1].0, seen[2].0, "a retry keeps its idempotency key");
    let keys: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(
        keys,
        [
            "run-1:hook:1",
            "run-1:hook:2",
            "run-1:hook:2",
            "run-1:hook:3"
        ]
    );
    assert_eq!(seen[3].1, "3");
    let first: Value = serde_json::from_str(&seen[0].2).unwrap();
    assert_eq!(
        first,
        serde_json::json!([{"id": 0, "name": "n0"}, {"id": 1, "name": "n1"}])
    );
    let second: Value = serde_json::from_str(&seen[2].2).unwrap();
    assert_eq!(second[0], serde_json::json!({"id": 2, "name": null}));
}

#[tokio::test]
async fn a_refused_webhook_batch_fails_the_export_at_that_batch_without_retrying() {
    let (url, seen) = webhook(|n| if n == 2 { 400 } else { 200 }).await;
    let hook = export("hook", 2, &hook_target(url));
    let rows = Rows::from_batches(schema(), vec![batch(0, 6, "")]);
    let err = write(&hook, rows).await.unwrap_err();
    assert!(matches!(err, SinkError::Webhook { batch: 2, .. }), "{err}");
    assert!(err.to_string().contains("400"), "{err}");
    assert!(!err.is_transient());
    assert_eq!(seen.lock().unwrap().len(), 2, "a 4xx is not retried");
}

const PG: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";

/// A client of the local PostgreSQL, or `None` (with a note) when it is not running outside CI.
async fn local_pg() -> Option<tokio_postgres::Client> {
    match tokio_postgres::connect(PG, tokio_postgres::NoTls).await {
        Ok((client, conn)) => {
            tokio::spawn(conn);
            Some(client)
        }
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("PostgreSQL at 127.0.0.1:5432 is required under CI: {e}")
        }
        Err(e) => {
            eprintln!("skipping: no PostgreSQL at 127.0.0.1:5432 ({e})");
            None
        }
    }
}

#[tokio::test]
async fn postgres_upserts_on_the_key_and_a_second_push_duplicates_nothing() {
    let Some(client) = local_pg().await else {
        return;
    };
    let schema_name = format!("sink_it_{}", std::process::id());
    let table = format!("{schema_name}.orders");
    let pg = export(
        "orders_pg",
        2,
        &format!("kind: postgres\nconnection: {PG}\ntable: {table}\nkey: [id]\n"),
    );
    let first = write(&pg, Rows::from_batches(schema(), vec![batch(0, 5, "")]))
        .await
        .unwrap();
    assert_eq!((first.rows_written, first.batches), (5, 3));
    // Again, with rows 3..7 renamed: 3 and 4 are updated, 5 and 6 inserted, none duplicated.
    write(&pg, Rows::from_batches(schema(), vec![batch(3, 7, "b")]))
        .await
        .unwrap();
    let rows: Vec<(i64, Option<String>)> = client
        .query(&format!("select id, name from {table} order by id"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    client
        .batch_execute(&format!("drop schema {schema_name} cascade"))
        .await
        .unwrap();
    let expected: Vec<(i64, Option<String>)> = vec![
        (0, Some("n0".into())),
        (1, Some("n1".into())),
        (2, None),
        (3, Some("n3b".into())),
        (4, Some("n4b".into())),
        (5, Some("n5b".into())),
        (6, Some("n6b".into())),
    ];
    assert_eq!(rows, expected);
}

#[tokio::test]
async fn postgres_names_a_missing_key_column() {
    let pg = export(
        "orders_pg",
        2,
        &format!("kind: postgres\nconnection: {PG}\ntable: t\nkey: [order_id]\n"),
    );
    let err = write(&pg, Rows::from_batches(schema(), vec![batch(0, 1, "")]))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("column `order_id` (key) is not in the asset; its columns: id, name"),
        "{err}"
    );
}
